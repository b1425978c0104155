"""Restriction rules as data: the schema, the loader and the decisions.

A city's rules live in a YAML file (``data/rules.yaml``) so that a new distance, a new legal
basis or a new city needs no code change. This module validates that file (JSON Schema plus
semantic checks, reporting every problem at once) and decides, from facts measured by the
spatial layer (distance to the nearest feature, inside or not), whether a rule is broken.
It never touches geometry itself, so rules are testable with plain numbers.

The decision lives here once, in :func:`decide`: numpy arrays of measured facts in (the
rule's test and limit, the ground distance to the nearest feature, inside or not, whether the
layer had a feature at all, whether the rule applies to the site or only might), a decision
per row out (no hit, hit, conditional hit). The single-point check calls it with one row per
rule, batch flagging with one row per site; neither decides anything itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import numpy as np
import yaml

from geoapp.domain.errors import ConfigError
from geoapp.domain.results import ConditionalHit, Hit, Severity, round_distance
from geoapp.domain.vocab import SiteType

log = logging.getLogger(__name__)

TESTS = ("within_distance", "inside", "not_inside")
#: Each test as a small integer, for vectorised decisions (``decide``).
WITHIN, INSIDE, NOT_INSIDE = 0, 1, 2
TEST_CODES: dict[str, int] = {"within_distance": WITHIN, "inside": INSIDE,
                              "not_inside": NOT_INSIDE}
POINTS = ("site", "new_site")
#: What else the app does with a rule's hits (``purpose`` in the rules file): ``relapse`` —
#: its hits are the 散乱污 register's suspected relapses (a new find near a banned workshop).
PURPOSES = ("relapse",)
#: A measured distance below this counts as "on the feature" (it rounds to 0.0 m).
INSIDE_TOLERANCE_M = 0.05
#: Filter keys of ``applies_to`` and the site attribute each one reads.
FILTER_KEYS: dict[str, str] = {
    "site_types": "site_type",
    "industries": "industry",
    "classifications": "classification",
    "stages": "stage",
    "statuses": "status",
    "programmes": "programme",
}

_str_list = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
_clause = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **{k: _str_list for k in FILTER_KEYS},
        "attrs": {"type": "object", "additionalProperties": _str_list},
    },
}
_severity = {"enum": [s.value for s in Severity]}

#: JSON Schema of the rules file (YAML is parsed first, then validated against this).
RULES_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["rules"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "title", "applies_to", "test", "severity", "basis", "action"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "title": {
                        "type": "object",
                        "required": ["zh", "en"],
                        "additionalProperties": False,
                        "properties": {"zh": {"type": "string", "minLength": 1},
                                       "en": {"type": "string", "minLength": 1}},
                    },
                    "applies_to": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            **_clause["properties"],
                            "any_of": {"type": "array", "items": _clause, "minItems": 1},
                            "point": {"enum": list(POINTS)},
                        },
                    },
                    "layer": {"type": "string", "minLength": 1},
                    "layer_where": {"type": "object", "minProperties": 1,
                                    "additionalProperties": _str_list},
                    "source": {
                        "type": "object",
                        "required": ["sites"],
                        "additionalProperties": False,
                        "properties": {"sites": {"type": "string", "minLength": 1},
                                       "where": _clause,
                                       "name": {"type": "string",
                                                "pattern": "^[a-z][a-z0-9_]*$"},
                                       "title": {"type": "object",
                                                 "required": ["zh", "en"],
                                                 "additionalProperties": False,
                                                 "properties": {
                                                     "zh": {"type": "string", "minLength": 1},
                                                     "en": {"type": "string", "minLength": 1}}}},
                    },
                    "test": {"enum": list(TESTS)},
                    "distance_m": {"type": "number", "exclusiveMinimum": 0},
                    "severity": _severity,
                    "severity_by": {
                        "type": "object",
                        "required": ["attr", "map"],
                        "additionalProperties": False,
                        "properties": {
                            "attr": {"type": "string", "minLength": 1},
                            "map": {"type": "object", "additionalProperties": _severity,
                                    "minProperties": 1},
                        },
                    },
                    "basis": {"type": "string", "minLength": 1},
                    "basis_note": {"type": "string", "minLength": 1},
                    "action": {"type": "string", "minLength": 1},
                    "purpose": {"enum": list(PURPOSES)},
                    "show_on_map": {"type": "boolean"},
                    "note": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Condition:
    """``attr`` must be one of ``values`` (compared as text; a missing attribute never matches).

    ``ordered`` keeps the values in the rules file's order, for messages only.
    """

    attr: str
    values: frozenset[str]
    ordered: tuple[str, ...] = field(default=(), compare=False)

    def matches(self, value: Any) -> bool:
        return value is not None and _text(value) in self.values


@dataclass(frozen=True)
class SiteFilter:
    """Which sites a rule applies to, in disjunctive normal form.

    ``clauses`` is an OR of ANDs: the rule applies when every condition of at least one clause
    holds. A filter with one empty clause applies to every site. ``point`` says which point of
    the site is checked: the site itself, or the new site of a relocation.
    """

    clauses: tuple[tuple[Condition, ...], ...]
    point: str = "site"

    def matches(self, attrs: Mapping[str, Any]) -> bool:
        return any(all(c.matches(attrs.get(c.attr)) for c in clause) for clause in self.clauses)


@dataclass(frozen=True)
class LayerSource:
    """A layer derived from the site registers, e.g. the banned 散乱污 workshops."""

    sites: str
    where: tuple[Condition, ...] = ()
    name: str | None = None
    title_zh: str | None = None
    title_en: str | None = None

    @property
    def key(self) -> str:
        """The layer name: ``name`` when the rules file gives one (e.g. banned_workshops),
        else a stable generated one such as ``sites:scattered_workshop?status=banned``."""
        if self.name:
            return self.name
        parts = "&".join(f"{c.attr}={','.join(sorted(c.values))}" for c in self.where)
        return f"sites:{self.sites}" + (f"?{parts}" if parts else "")


@dataclass(frozen=True)
class RuleSpec:
    """One restriction rule, validated. ``layer`` is always set (derived layers get their key)."""

    id: str
    title_zh: str
    title_en: str
    applies_to: SiteFilter
    layer: str
    test: str
    severity: str
    basis: str
    action: str
    distance_m: float | None = None
    source: LayerSource | None = None
    severity_attr: str | None = None
    severity_map: tuple[tuple[str, str], ...] = ()
    #: Only the features of ``base_layer`` whose attributes meet these conditions (e.g. the
    #: 一级 zones of the water-source layer); ``layer`` is then a derived key.
    layer_where: tuple[Condition, ...] = ()
    base_layer: str | None = None
    #: What is uncertain about ``basis`` (e.g. the provincial document could not be
    #: identified); shown beside the basis wherever a hit is shown.
    basis_note: str | None = None
    #: What else the app does with the rule's hits (one of ``PURPOSES``), if anything.
    purpose: str | None = None
    #: Whether the rule's zone is switched on when the overview map opens.
    show_on_map: bool = False

    @property
    def title(self) -> dict[str, str]:
        return {"zh": self.title_zh, "en": self.title_en}

    @property
    def stored_layer(self) -> str | None:
        """The stored layer the rule reads (None for layers derived from site registers)."""
        if self.source is not None:
            return None
        return self.base_layer or self.layer

    @property
    def test_code(self) -> int:
        """The rule's test as ``WITHIN``, ``INSIDE`` or ``NOT_INSIDE`` (see ``decide``)."""
        return TEST_CODES[self.test]

    @property
    def limit_m(self) -> float:
        """The distance limit ``decide`` compares with (0 for tests without one)."""
        return float(self.distance_m or 0.0)

    @property
    def search_distance_m(self) -> float:
        """How far from a site (metres on the ground) a feature can be and still decide this
        rule: the limit for within_distance, the on-the-boundary tolerance for inside, and
        everywhere for not_inside (the nearest allowed area is reported however far). The
        spatial layer measures this far (plus its own slack for the projection) and no
        further."""
        if self.test == "within_distance":
            return self.limit_m
        return float("inf") if self.test == "not_inside" else INSIDE_TOLERANCE_M

    def severity_for(self, feature: Mapping[str, Any] | None = None) -> str:
        """The rule's severity, or the one its ``severity_by`` attribute maps the feature to."""
        if self.severity_attr and feature is not None:
            value = feature.get(self.severity_attr)
            if value is not None:
                mapped = dict(self.severity_map).get(_text(value).lower())
                if mapped:
                    return mapped
        return self.severity


class RuleSet:
    """An ordered, validated collection of rules, looked up by id."""

    def __init__(self, rules: Iterable[RuleSpec]) -> None:
        self.rules: tuple[RuleSpec, ...] = tuple(rules)
        self._by_id = {r.id: r for r in self.rules}
        self._attributes = tuple(dict.fromkeys(c.attr for r in self.rules
                                               for clause in r.applies_to.clauses
                                               for c in clause))

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __getitem__(self, rule_id: str) -> RuleSpec:
        return self._by_id[rule_id]

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._by_id

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    def for_purpose(self, purpose: str) -> RuleSpec | None:
        """The rule the file marks with ``purpose`` (at most one may be), or None."""
        return next((r for r in self.rules if r.purpose == purpose), None)

    def reach_m(self) -> float:
        """The largest finite ``search_distance_m`` of the rules (0 without any): how far
        beyond its layers (and the city outline) a rule can still decide anything."""
        return max([d for r in self.rules if math.isfinite(d := r.search_distance_m)] + [0.0])

    def layers(self) -> tuple[str, ...]:
        """Every layer key the rules read, in first-use order."""
        return tuple(dict.fromkeys(r.layer for r in self.rules))

    def attributes(self) -> tuple[str, ...]:
        """Every site attribute the rules' ``applies_to`` filters read (``site_type``,
        ``industry``, ``fuel``…), in first-use order."""
        return self._attributes


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _condition(attr: str, vals: Iterable[Any]) -> Condition:
    ordered = tuple(dict.fromkeys(_text(v) for v in vals))
    return Condition(attr, frozenset(ordered), ordered)


def _conditions(clause: Mapping[str, Any]) -> tuple[Condition, ...]:
    out = [_condition(FILTER_KEYS[k], vals) for k, vals in clause.items() if k in FILTER_KEYS]
    for attr, vals in (clause.get("attrs") or {}).items():
        out.append(_condition(attr, vals))
    return tuple(out)


def _site_filter(spec: Mapping[str, Any]) -> SiteFilter:
    base = _conditions(spec)
    alternatives = spec.get("any_of") or [{}]
    clauses = tuple(base + _conditions(alt) for alt in alternatives)
    return SiteFilter(clauses=clauses, point=spec.get("point", "site"))


def _schema_problems(data: Any) -> list[dict[str, str]]:
    problems = []
    validator = jsonschema.Draft202012Validator(RULES_SCHEMA)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        path = list(err.path)
        rule = "(file)"
        if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
            item = data["rules"][path[1]]
            rule = str(item.get("id")) if isinstance(item, Mapping) and item.get("id") \
                else f"rules[{path[1]}]"
            path = path[2:]
        field = ".".join(str(p) for p in path)
        if err.validator == "required":
            missing = [f for f in err.validator_value if f not in err.instance]
            field = ".".join(filter(None, [field, ",".join(missing)]))
            reason = "is required"
        elif err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            field = ".".join(filter(None, [field, ",".join(map(str, extra))]))
            reason = "is not a known field"
        else:
            reason = err.message
        problems.append({"rule": rule, "field": field or "(rule)", "reason": reason})
    return problems


def _semantic_problems(items: list[Mapping[str, Any]],
                       layers: set[str] | None) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    purposes: dict[str, str] = {}
    for item in items:
        rid = item["id"]

        def bad(field: str, reason: str, rid: str = rid) -> None:
            problems.append({"rule": rid, "field": field, "reason": reason})

        if rid in seen:
            bad("id", "is used by more than one rule")
        seen.add(rid)
        test = item["test"]
        if test == "within_distance" and "distance_m" not in item:
            bad("distance_m", "is required when test is within_distance")
        if test != "within_distance" and "distance_m" in item:
            bad("distance_m", f"only applies to within_distance, not {test}")
        if ("layer" in item) == ("source" in item):
            bad("layer", "give exactly one of layer or source")
        elif layers is not None and "layer" in item and item["layer"] not in layers:
            bad("layer", f"unknown layer {item['layer']!r}; known: {', '.join(sorted(layers))}")
        if "source" in item and test == "not_inside":
            bad("test", "not_inside needs an area layer, not a site register")
        if "layer_where" in item and "layer" not in item:
            bad("layer_where", "filters the features of a layer; give layer")
        purpose = item.get("purpose")
        if purpose is not None:
            if purpose in purposes:
                bad("purpose", f"{purpose} is already the purpose of rule {purposes[purpose]}")
            purposes.setdefault(purpose, rid)
            if purpose == "relapse" and (test != "within_distance" or "source" not in item):
                bad("purpose", "relapse needs test within_distance and a source (the banned "
                               "sites a new find lies near)")
    return problems


def load_rules(source: str | bytes | Mapping[str, Any],
               layers: Iterable[str] | None = None) -> RuleSet:
    """Parse and validate a rules file given as YAML text or an already-parsed mapping.

    Every problem is collected and raised together in one ``ConfigError`` whose message lists
    rule id, field and reason line by line (``details`` holds the same as dicts), so a city's
    GIS officer fixes the file in one pass. ``layers``, when given, are the layer names the
    city defines; a rule naming another layer is an error.
    """
    if isinstance(source, str | bytes):
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise ConfigError(f"rules file is not valid YAML: {exc}") from None
    else:
        data = source
    problems = _schema_problems(data)
    if not problems:
        problems = _semantic_problems(data["rules"], set(layers) if layers is not None else None)
    if problems:
        lines = "\n".join(f"  rule {p['rule']}, field {p['field']}: {p['reason']}"
                          for p in problems)
        raise ConfigError(f"rules file has {len(problems)} problem(s):\n{lines}",
                          details=problems)
    rules = [_rule(item) for item in data["rules"]]
    log.debug("loaded %d rules", len(rules))
    return RuleSet(rules)


def _rule(item: Mapping[str, Any]) -> RuleSpec:
    source = None
    if "source" in item:
        src = item["source"]
        title = src.get("title") or {}
        source = LayerSource(sites=src["sites"], where=_conditions(src.get("where") or {}),
                             name=src.get("name"), title_zh=title.get("zh"),
                             title_en=title.get("en"))
    sev_by = item.get("severity_by") or {}
    where = tuple(_condition(attr, vals)
                  for attr, vals in sorted((item.get("layer_where") or {}).items()))
    layer = source.key if source else item["layer"]
    if where:
        layer = layer_key(item["layer"], where)
    return RuleSpec(
        id=item["id"],
        title_zh=item["title"]["zh"],
        title_en=item["title"]["en"],
        applies_to=_site_filter(item.get("applies_to") or {}),
        layer=layer,
        test=item["test"],
        severity=item["severity"],
        basis=item["basis"].strip(),
        action=item["action"].strip(),
        distance_m=float(item["distance_m"]) if "distance_m" in item else None,
        source=source,
        severity_attr=sev_by.get("attr"),
        severity_map=tuple((_text(k).lower(), v) for k, v in (sev_by.get("map") or {}).items()),
        layer_where=where,
        base_layer=item["layer"] if where else None,
        basis_note=(item.get("basis_note") or "").strip() or None,
        purpose=item.get("purpose"),
        show_on_map=bool(item.get("show_on_map", False)),
    )


def layer_key(layer: str, where: Iterable[Condition]) -> str:
    """The key of a layer's subset, e.g. ``water_source_zones?level=一级``."""
    parts = "&".join(f"{c.attr}={','.join(sorted(c.values))}" for c in where)
    return f"{layer}?{parts}" if parts else layer


def split_layer_key(key: str) -> tuple[str, dict[str, list[str]]]:
    """``water_source_zones?level=一级`` -> (``water_source_zones``, {``level``: [``一级``]})."""
    base, _, query = key.partition("?")
    where: dict[str, list[str]] = {}
    for part in filter(None, query.split("&")):
        attr, _, values = part.partition("=")
        where[attr] = values.split(",")
    return base, where


def checked_at(rule: RuleSpec, point: str) -> bool:
    """Whether ``rule`` is evaluated at this point of a site: every rule at the new site of a
    relocation (the enterprise will operate there), only ``point: site`` rules at the site."""
    return point == "new_site" or rule.applies_to.point == "site"


def applies(rule: RuleSpec, site_attrs: Mapping[str, Any], point: str = "site") -> bool:
    """Whether ``rule`` surely concerns a site with these attributes, checked at ``point``."""
    return checked_at(rule, point) and \
        rule.applies_to.matches(with_implied(site_attrs))


# -- could a rule apply? -------------------------------------------------------------------
#
# A rule's filter is an OR of clauses, each an AND of conditions on site attributes. With
# some attributes unknown a filter has three answers: it APPLIES (some clause holds), it
# CANNOT apply (every clause has a condition whose attribute is known and does not match),
# or it is CONDITIONAL (some clause has every condition either met or on a missing attribute).
# A conditional rule whose geometry holds makes the verdict needs_info (待核实), never pass.

APPLIES, CONDITIONAL, CANNOT = "applies", "conditional", "cannot"

#: What a site kind implies when the attribute is not given. A livestock farm's industry is
#: 畜禽养殖 (the rules name both ``site_types: [livestock_farm]`` and ``industries: [畜禽养殖]``
#: for the same farms), so a farm is not needs_info for every rule on other industries.
IMPLIED_ATTRS: dict[str, dict[str, str]] = {"livestock_farm": {"industry": "畜禽养殖"}}


def is_missing(value: Any) -> bool:
    """None, NaN, NA or blank text: the attribute was not given."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pandas.NA and other values that refuse a truth value
        return True


def with_implied(site: Mapping[str, Any]) -> Mapping[str, Any]:
    """``site`` with the attributes its kind implies filled in where missing."""
    implied = IMPLIED_ATTRS.get(site.get("site_type"))  # type: ignore[arg-type]
    if not implied or not any(is_missing(site.get(k)) for k in implied):
        return site
    out = dict(site)
    for k, v in implied.items():
        if is_missing(out.get(k)):
            out[k] = v
    return out


def _clause_state(clause: tuple[Condition, ...], site: Mapping[str, Any]) -> tuple[str, ...] | None:
    """None if some condition fails on a known attribute, else the missing attributes."""
    missing: list[str] = []
    for c in clause:
        v = site.get(c.attr)
        if is_missing(v):
            missing.append(c.attr)
        elif not c.matches(v):
            return None
    return tuple(dict.fromkeys(missing))


def applicability(flt: SiteFilter, site: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(APPLIES | CONDITIONAL | CANNOT, missing attributes of the best conditional clause).

    The best clause is the one needing the fewest missing attributes (the first on ties).
    """
    site = with_implied(site)
    best: tuple[str, ...] | None = None
    for clause in flt.clauses:
        missing = _clause_state(clause, site)
        if missing is None:
            continue
        if not missing:
            return APPLIES, ()
        if best is None or len(missing) < len(best):
            best = missing
    return (CANNOT, ()) if best is None else (CONDITIONAL, best)


def applicability_masks(flt: SiteFilter, n: int, met: Callable[[Condition], np.ndarray],
                        missing: Callable[[str], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``applicability`` over ``n`` sites: (applies, conditional) boolean masks.

    ``met(cond)`` gives the rows meeting a condition, ``missing(attr)`` the rows without the
    attribute, both after ``IMPLIED_ATTRS`` (the caller fills implied values in).
    """
    applies_ = np.zeros(n, dtype=bool)
    possible = np.zeros(n, dtype=bool)
    for clause in flt.clauses:
        if not clause:
            applies_[:] = True
            possible[:] = True
            continue
        a = met(clause[0]).copy()
        p = a | missing(clause[0].attr)
        for c in clause[1:]:
            m = met(c)
            a &= m
            p &= m | missing(c.attr)
        applies_ |= a
        possible |= p
    return applies_, possible & ~applies_


_ATTR_LABELS = {"industry": ("行业", "the industry"), "classification": ("整治分类", "the classification"),
                "stage": ("进度", "the stage"), "status": ("状态", "the status"),
                "programme": ("专项", "the programme")}


def _site_label(value: str, lang: str) -> str:
    try:
        kind = SiteType(value)
    except ValueError:
        return value
    return kind.zh if lang == "zh" else kind.en.lower()


def _condition_phrase(c: Condition) -> tuple[str, str]:
    vals = c.ordered or tuple(sorted(c.values))
    if c.attr == "site_type":
        return ("为" + "或".join(_site_label(v, "zh") for v in vals),
                "it is a " + " or a ".join(_site_label(v, "en") for v in vals))
    if c.attr == "industry":
        return "行业为" + "、".join(vals), "the industry is " + ", ".join(vals)
    zh, en = _ATTR_LABELS.get(c.attr, (f" {c.attr} ", c.attr))
    return f"{zh}为 " + "/".join(vals), f"{en} is " + "/".join(vals)


def _implied_by(a: tuple[Condition, ...], b: tuple[Condition, ...]) -> bool:
    """Whether every site kind clause ``a`` names implies clause ``b`` (see IMPLIED_ATTRS)."""
    kind = next((c for c in a if c.attr == "site_type"), None)
    return kind is not None and bool(b) and all(
        all(c.matches(IMPLIED_ATTRS.get(v, {}).get(c.attr)) for c in b) for v in kind.values)


def condition_text(flt: SiteFilter, site: Mapping[str, Any]) -> dict[str, str]:
    """What would make a conditional rule apply, e.g. {zh: 若为畜禽养殖场, en: If it is a
    livestock farm}; alternatives joined by “或”, only the conditions on missing attributes."""
    site = with_implied(site)
    kept: list[tuple[Condition, ...]] = []
    for clause in flt.clauses:
        missing = _clause_state(clause, site)
        if not missing:
            continue
        conds = tuple(c for c in clause if c.attr in missing)
        if not any(_implied_by(k, conds) for k in kept):
            kept.append(conds)
    zh = "，或".join("且".join(_condition_phrase(c)[0] for c in k) for k in kept)
    en = ", or ".join(" and ".join(_condition_phrase(c)[1] for c in k) for k in kept)
    return {"zh": "若" + zh, "en": "If " + en}


def rules_for_site(rules: Iterable[RuleSpec], site: Mapping[str, Any], point: str
                   ) -> tuple[list[RuleSpec], list[tuple[tuple[str, ...], dict[str, str]] | None]]:
    """The rules checked at ``point`` that apply to ``site`` or may apply (an attribute they
    read is unknown), and per rule ``None`` (applies) or (missing attributes, condition
    sentence) — what the point check and the parcel check both decide over."""
    chosen: list[RuleSpec] = []
    conditions: list[tuple[tuple[str, ...], dict[str, str]] | None] = []
    for r in rules:
        if not checked_at(r, point):
            continue
        state, missing = applicability(r.applies_to, site)
        if state == CANNOT:
            continue
        chosen.append(r)
        conditions.append(None if state == APPLIES
                          else (missing, condition_text(r.applies_to, site)))
    return chosen, conditions


def conditional_hit(hit: Hit, rule: RuleSpec, missing: tuple[str, ...],
                    condition: Mapping[str, str]) -> ConditionalHit:
    """A measured hit of a rule that applies only under ``condition``, with its sentence."""
    d = hit.distance_m or 0.0
    name = hit.feature_name or hit.feature_id or ""
    title_zh, title_en = rule.title_zh, rule.title_en
    if rule.test == "within_distance":
        limit = f"{rule.distance_m:g}"
        zh = f"距{name} {d:.1f} m，违反“{title_zh}”规定（{limit} m 以内）"
        en = f"{d:.1f} m from {name}, breaking “{title_en}” (within {limit} m)"
    elif rule.test == "inside":
        zh = f"位于{name}内，违反“{title_zh}”规定"
        en = f"inside {name}, breaking “{title_en}”"
    else:
        zh = f"不在任何允许区域内（最近的{name}距 {d:.1f} m），违反“{title_zh}”规定"
        en = f"outside every allowed area (nearest, {name}, is {d:.1f} m away), breaking " \
             f"“{title_en}”"
    sentence = {"zh": f"{condition['zh']}：{zh}", "en": f"{condition['en']}: {en}"}
    return ConditionalHit(
        rule_id=hit.rule_id, title=hit.title, feature_id=hit.feature_id,
        feature_name=hit.feature_name, distance_m=hit.distance_m, severity=hit.severity,
        basis=hit.basis, action=hit.action, limit_m=hit.limit_m, test=hit.test,
        basis_note=hit.basis_note, point=hit.point, missing=tuple(missing),
        condition=dict(condition), sentence=sentence)


#: The decisions of ``decide``: no hit, a hit, a hit of a rule that applies only if a
#: missing attribute has the value the rule names (a conditional hit).
NO_HIT, HIT, CONDITIONAL_HIT = 0, 1, 2


@dataclass(frozen=True)
class RuleRows:
    """The rule side of the decision for a set of rows, prepared once (see ``decide``).

    A row is one rule at one site: the single-point check lays out one row per rule that
    applies or may apply to the site (prepared once per kind of site, then reused), batch
    flagging one rule for every site (scalars). ``within``: the test is within_distance;
    ``limit_m``: its limit; ``outside``: the test is not_inside; ``outcome``: what a row
    whose geometry holds is — ``HIT`` if the rule applies, ``CONDITIONAL_HIT`` if it only
    might (a missing attribute), ``NO_HIT`` if it cannot.
    """

    within: Any
    limit_m: Any
    outside: Any
    outcome: Any

    @classmethod
    def of(cls, test: Any, limit_m: Any, applies: Any = True,
           conditional: Any = False) -> RuleRows:
        """Rows from tests (``RuleSpec.test_code``), limits (``RuleSpec.limit_m``) and the
        applicability (``applicability``, ``applicability_masks``), arrays or scalars."""
        if np.ndim(test) == 0:
            within, outside = bool(test == WITHIN), bool(test == NOT_INSIDE)
        else:
            within = np.equal(test, WITHIN)
            outside = np.equal(test, NOT_INSIDE)
        outcome = np.where(applies, HIT, np.multiply(conditional, CONDITIONAL_HIT))
        return cls(within, limit_m, outside, outcome)

    def decide(self, distance_m: Any, inside: Any, found: Any) -> np.ndarray:
        """Per row ``NO_HIT``, ``HIT`` or ``CONDITIONAL_HIT`` from the measured facts: the
        ground distance to the nearest feature of the rule's layer, whether the site is in
        or on it, whether the layer had a feature to measure at all.

        The geometry holds for within_distance when the distance is at most the limit, for
        inside when the site is inside (or on) a feature, for not_inside when it is in
        none. No measurement (an empty layer) never decides a hit, not even for not_inside.
        A row whose geometry holds gets its ``outcome``.
        """
        if isinstance(self.within, bool):  # one rule for every row: only its own test
            holds = (np.less_equal(distance_m, self.limit_m) if self.within
                     else np.not_equal(inside, self.outside))
        else:
            holds = np.where(self.within, np.less_equal(distance_m, self.limit_m),
                             np.not_equal(inside, self.outside))
        return np.where(np.logical_and(holds, found), self.outcome, NO_HIT)


def decide(test: Any, limit_m: Any, distance_m: Any, inside: Any, found: Any,
           applies: Any = True, conditional: Any = False) -> np.ndarray:
    """The rule decision, vectorised: per row ``NO_HIT``, ``HIT`` or ``CONDITIONAL_HIT``.

    Each argument is an array (one value per row) or a scalar for every row; a row is one
    rule at one site (the single-point check: one row per rule) or one site for one rule
    (batch flagging: one row per site).

    * ``test``: ``WITHIN``, ``INSIDE`` or ``NOT_INSIDE`` (``RuleSpec.test_code``);
      ``limit_m``: the within_distance limit (``RuleSpec.limit_m``; ignored by the others);
    * ``distance_m``, ``inside``, ``found``: what the spatial layer measured (see
      ``RuleRows.decide``);
    * ``applies``, ``conditional``: whether the rule's filter selects the site, or might
      if a missing attribute were given (``applicability``, ``applicability_masks``).

    A rule that applies and whose geometry holds is a hit; one that might apply and holds is
    a conditional hit. The same as ``RuleRows.of(test, limit_m, applies,
    conditional).decide(distance_m, inside, found)``, which callers deciding the same rows
    again (the single-point check) prepare once.
    """
    return RuleRows.of(test, limit_m, applies, conditional).decide(distance_m, inside, found)


def make_hit(rule: RuleSpec, distance_m: float, inside: bool, feature: Mapping[str, Any],
             point: str = "site") -> Hit:
    """The ``Hit`` reporting a decided rule: the feature's id, name and severity, the
    distance to 0.1 m (inside counts as 0), the rule's texts. Decides nothing."""
    return Hit(
        rule_id=rule.id,
        title=rule.title,
        feature_id=None if feature.get("id") is None else str(feature.get("id")),
        feature_name=None if feature.get("name") is None else str(feature.get("name")),
        distance_m=0.0 if inside else round_distance(distance_m),
        severity=rule.severity_for(feature),
        basis=rule.basis,
        action=rule.action,
        limit_m=rule.distance_m if rule.test == "within_distance" else None,
        test=rule.test,
        basis_note=rule.basis_note,
        point=point,
    )


def evaluate(rule: RuleSpec, measured_distance_m: float | None, inside: bool,
             feature: Mapping[str, Any] | None, point: str = "site") -> Hit | None:
    """One measurement (nearest feature of the rule's layer) of a rule that applies: the
    ``Hit`` if ``decide`` says so, else None. ``feature`` (None: the layer had none) carries
    ``id``, ``name`` and any attribute ``severity_by`` reads; ``point`` is where the site was
    measured (``site``/``new_site``)."""
    found = feature is not None and measured_distance_m is not None
    distance = measured_distance_m if measured_distance_m is not None else math.inf
    if not decide(rule.test_code, rule.limit_m, distance, bool(inside), found):
        return None
    return make_hit(rule, distance, inside, feature or {}, point)
