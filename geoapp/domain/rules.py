"""Restriction rules as data: the schema, the loader and the decisions.

A city's rules live in a YAML file (``data/rules.yaml``) so that a new distance, a new legal
basis or a new city needs no code change. This module validates that file (JSON Schema plus
semantic checks, reporting every problem at once) and decides, from facts measured by the
spatial layer (distance to the nearest feature, inside or not), whether a rule is broken.
It never touches geometry itself, so rules are testable with plain numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import yaml

from geoapp.domain.errors import ConfigError
from geoapp.domain.results import Hit, Severity, round_distance

log = logging.getLogger(__name__)

TESTS = ("within_distance", "inside", "not_inside")
POINTS = ("site", "new_site")
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
                    "note": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Condition:
    """``attr`` must be one of ``values`` (compared as text; a missing attribute never matches)."""

    attr: str
    values: frozenset[str]

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
    def search_distance_m(self) -> float:
        """How far the engine must look for this rule (0 for inside; ∞ for not_inside)."""
        if self.test == "within_distance":
            return float(self.distance_m or 0.0)
        return float("inf") if self.test == "not_inside" else 0.0

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

    def layers(self) -> tuple[str, ...]:
        """Every layer key the rules read, in first-use order."""
        return tuple(dict.fromkeys(r.layer for r in self.rules))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _conditions(clause: Mapping[str, Any]) -> tuple[Condition, ...]:
    out = [Condition(FILTER_KEYS[k], frozenset(_text(v) for v in vals))
           for k, vals in clause.items() if k in FILTER_KEYS]
    for attr, vals in (clause.get("attrs") or {}).items():
        out.append(Condition(attr, frozenset(_text(v) for v in vals)))
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
    where = tuple(Condition(attr, frozenset(_text(v) for v in vals))
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


def applies(rule: RuleSpec, site_attrs: Mapping[str, Any], point: str = "site") -> bool:
    """Whether ``rule`` concerns a site with these attributes, checked at this ``point``."""
    return rule.applies_to.point == point and rule.applies_to.matches(site_attrs)


def is_hit(rule: RuleSpec, measured_distance_m: float | None, inside: bool) -> bool:
    """The decision alone: within_distance → distance ≤ limit; inside → on/in the feature;
    not_inside → not in any allowed area. No measurement (empty layer) never decides a hit."""
    if measured_distance_m is None:
        return False
    if rule.test == "within_distance":
        return measured_distance_m <= float(rule.distance_m or 0.0)
    if rule.test == "inside":
        return bool(inside)
    return not inside


def evaluate(rule: RuleSpec, measured_distance_m: float | None, inside: bool,
             feature: Mapping[str, Any] | None, point: str = "site") -> Hit | None:
    """Turn one measurement (nearest feature of the rule's layer) into a ``Hit`` or ``None``.

    ``feature`` carries ``id``, ``name`` and any attribute ``severity_by`` reads. Inside
    counts as distance 0. ``point`` is where the site was measured (``site``/``new_site``).
    """
    if feature is None or not is_hit(rule, measured_distance_m, inside):
        return None
    distance = 0.0 if inside else round_distance(measured_distance_m or 0.0)
    return Hit(
        rule_id=rule.id,
        title=rule.title,
        feature_id=None if feature.get("id") is None else str(feature.get("id")),
        feature_name=None if feature.get("name") is None else str(feature.get("name")),
        distance_m=distance,
        severity=rule.severity_for(feature),
        basis=rule.basis,
        action=rule.action,
        limit_m=rule.distance_m if rule.test == "within_distance" else None,
        test=rule.test,
        basis_note=rule.basis_note,
        point=point,
    )
