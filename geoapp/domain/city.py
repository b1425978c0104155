"""The city file model: what ``city.toml`` says about a city, validated once.

Another city is another data folder with its own ``city.toml``; nothing in the code names
Jiaozuo. Parsing (TOML) happens in the storage layer; this module only checks the parsed
mapping and turns it into frozen values, so a typo in the city file fails at start-up with the
key named instead of deep inside a map builder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from geoapp.domain.bulletin import IsoWeek
from geoapp.domain.complaints import SourceSpec, parse_sources
from geoapp.domain.errors import ConfigError
from geoapp.domain.units import keyword_table
from geoapp.domain.vocab import SiteType

#: ``units``: the 三线一单 environmental control units (at most one layer; docs/units.md).
LAYER_KINDS: tuple[str, ...] = ("boundary", "water", "zone", "grid", "point", "units",
                                "other")


@dataclass(frozen=True)
class County:
    """A county-level unit, in the order bulletins list them."""

    name: str
    adcode: str = ""
    full_name: str = ""


@dataclass(frozen=True)
class LayerSpec:
    """One geometry layer: its name (used by rules and the API) and its source file."""

    name: str
    file: str
    title_zh: str
    title_en: str
    kind: str


@dataclass(frozen=True)
class City:
    """Everything the app needs to know about the city before reading any geometry."""

    name: str
    name_en: str
    adcode: str
    province: str
    metric_crs: str = ""
    zoom: int = 10
    counties: tuple[County, ...] = ()
    layers: dict[str, LayerSpec] = field(default_factory=dict)
    site_files: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    #: The control units' 准入清单 file ([units] requirements), and the industry keyword
    #: table ([units.industry_keywords]: industry -> words naming it in a list line).
    unit_requirements: str = ""
    industry_keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Industries the rules do not restrict, named exactly ([industries] other): a check
    #: takes them as given; free text that names no industry at all is checked as not given.
    other_industries: tuple[str, ...] = ()
    #: Which sites may be the source of a 12369 complaint, per category ([complaints.sources];
    #: defaults in geoapp.domain.complaints.DEFAULT_SOURCES).
    complaint_sources: dict[str, tuple[SourceSpec, ...]] = field(
        default_factory=lambda: parse_sources(None))
    #: The documents' issuing unit (发文机关, [documents] issuing_unit; default
    #: ``<name>生态环境局``), the week of the weekly bulletin's 第1期 ([documents]
    #: bulletin_first_week; None: the issue number is the ISO week number, a new series each
    #: year) and the check sheets' serial prefix ([documents] check_prefix; default the
    #: city's first character + 环核). docs/documents.md.
    issuing_unit: str = ""
    bulletin_first_week: IsoWeek | None = None
    check_prefix: str = ""

    @property
    def issuer(self) -> str:
        """The issuing unit named at the end of every document."""
        return self.issuing_unit or f"{self.name}生态环境局"

    def issue_number(self, week: IsoWeek) -> int | None:
        """The weekly bulletin's 第N期: weeks since ``bulletin_first_week`` plus one (None
        before it), or the ISO week number when no first week is set."""
        if self.bulletin_first_week is None:
            return week.week
        n = (week.monday - self.bulletin_first_week.monday).days // 7 + 1
        return n if n >= 1 else None

    def check_serial(self, when: date | int, record_id: int) -> str:
        """A check sheet's serial number, e.g. ``焦环核〔2026〕0012号``: the prefix, the year of
        the record (a date or the year) and the record's id (unique and never reused) in four
        digits at least."""
        prefix = self.check_prefix or f"{self.name[:1]}环核"
        year = when if isinstance(when, int) else when.year
        return f"{prefix}〔{year}〕{int(record_id):04d}号"

    @property
    def units_layer(self) -> str | None:
        """The name of the layer of kind ``units``, or None."""
        return next((n for n, s in self.layers.items() if s.kind == "units"), None)

    @property
    def county_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.counties)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> City:
        """Validate a parsed city.toml; raise ConfigError naming the offending key."""
        if not isinstance(d, Mapping):
            raise ConfigError("city file: expected a table at the top level")
        city = _table(d, "city")
        layers = _layers(d)
        requirements, keywords = _units(d, layers)
        unit, first_week, prefix = _documents(d)
        return cls(
            name=_text(city, "name", "city"),
            name_en=_text(city, "name_en", "city"),
            adcode=_text(city, "adcode", "city"),
            province=_text(city, "province", "city"),
            metric_crs=_text(city, "metric_crs", "city", required=False),
            zoom=_zoom(city),
            counties=_counties(city),
            layers=layers,
            site_files=_site_files(d),
            tables=_tables(d),
            unit_requirements=requirements,
            industry_keywords=keywords,
            other_industries=_other_industries(d),
            complaint_sources=parse_sources(_complaints(d).get("sources")),
            issuing_unit=unit,
            bulletin_first_week=first_week,
            check_prefix=prefix,
        )


def _table(d: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    path = f"{where}.{key}" if where else key
    value = d.get(key)
    if value is None:
        raise ConfigError(f"city file: missing [{path}]")
    if not isinstance(value, Mapping):
        raise ConfigError(f"city file: [{path}] must be a table")
    return value


def _text(d: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = d.get(key)
    if value is None:
        if required:
            raise ConfigError(f"city file: missing key {where}.{key}")
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"city file: {where}.{key} must be a string, got {value!r}")
    if required and not value.strip():
        raise ConfigError(f"city file: {where}.{key} must not be empty")
    return value.strip()


def _zoom(city: Mapping[str, Any]) -> int:
    zoom = city.get("zoom", 10)
    if isinstance(zoom, bool) or not isinstance(zoom, int) or not 1 <= zoom <= 20:
        raise ConfigError(f"city file: city.zoom must be a whole number 1-20, got {zoom!r}")
    return zoom


def _counties(city: Mapping[str, Any]) -> tuple[County, ...]:
    raw = city.get("counties")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("city file: city.counties must be a non-empty list of tables")
    out: list[County] = []
    for i, item in enumerate(raw):
        where = f"city.counties[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"city file: {where} must be a table")
        name = _text(item, "name", where)
        out.append(County(name=name, adcode=_text(item, "adcode", where, required=False),
                          full_name=_text(item, "full_name", where, required=False) or name))
    names = [c.name for c in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"city file: city.counties lists {', '.join(dupes)} more than once")
    return tuple(out)


def _layers(d: Mapping[str, Any]) -> dict[str, LayerSpec]:
    layers = _table(d, "layers")
    out: dict[str, LayerSpec] = {}
    for name, spec in layers.items():
        where = f"layers.{name}"
        if not name.isidentifier() or name != name.lower():
            raise ConfigError(f"city file: layer name {name!r} must be lower-case letters, "
                              "digits and underscores")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"city file: [{where}] must be a table")
        title = _table(spec, "title", where)
        kind = _text(spec, "kind", where)
        if kind not in LAYER_KINDS:
            raise ConfigError(f"city file: {where}.kind must be one of {', '.join(LAYER_KINDS)}, "
                              f"got {kind!r}")
        out[name] = LayerSpec(name=name, file=_file(spec, where),
                              title_zh=_text(title, "zh", f"{where}.title"),
                              title_en=_text(title, "en", f"{where}.title"), kind=kind)
    if not out:
        raise ConfigError("city file: [layers] names no layer")
    return out


def _units(d: Mapping[str, Any], layers: Mapping[str, LayerSpec]
           ) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The optional [units] table: the 准入清单 file and the industry keyword table."""
    kinds = [n for n, s in layers.items() if s.kind == "units"]
    if len(kinds) > 1:
        raise ConfigError(f"city file: only one layer may have kind units, got {', '.join(kinds)}")
    raw = d.get("units")
    if raw is None:
        return "", {}
    if not isinstance(raw, Mapping):
        raise ConfigError("city file: [units] must be a table")
    unknown = sorted(set(raw) - {"requirements", "industry_keywords"})
    if unknown:
        raise ConfigError(f"city file: [units] has unknown key(s) {', '.join(unknown)}")
    requirements = _text(raw, "requirements", "units", required=False)
    if requirements:
        requirements = _file({"file": requirements}, "units.requirements")
    if requirements and not kinds:
        raise ConfigError("city file: units.requirements is given but no layer has kind units")
    try:
        keywords = keyword_table(raw.get("industry_keywords"))
    except ValueError as exc:
        raise ConfigError(f"city file: {exc}") from None
    return requirements, keywords


def _other_industries(d: Mapping[str, Any]) -> tuple[str, ...]:
    """The optional [industries] table: ``other``, the industries no rule restricts."""
    raw = d.get("industries")
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or set(raw) - {"other"}:
        raise ConfigError("city file: [industries] must be a table with the key other only")
    other = raw.get("other") or []
    if isinstance(other, str) or not isinstance(other, list) \
            or not all(isinstance(v, str) and v.strip() for v in other):
        raise ConfigError("city file: industries.other must be a list of industry names")
    return tuple(dict.fromkeys(v.strip() for v in other))


def _documents(d: Mapping[str, Any]) -> tuple[str, IsoWeek | None, str]:
    """The optional [documents] table: issuing_unit, bulletin_first_week, check_prefix."""
    raw = d.get("documents", {})
    if not isinstance(raw, Mapping):
        raise ConfigError("city file: [documents] must be a table")
    unknown = sorted(set(raw) - {"issuing_unit", "bulletin_first_week", "check_prefix"})
    if unknown:
        raise ConfigError(f"city file: [documents] has unknown key(s) {', '.join(unknown)}")
    unit = _text(raw, "issuing_unit", "documents", required=False)
    week_text = _text(raw, "bulletin_first_week", "documents", required=False)
    try:
        week = IsoWeek.parse(week_text) if week_text else None
    except Exception as exc:  # noqa: BLE001 - InvalidInput names what is wrong
        raise ConfigError(f"city file: documents.bulletin_first_week: {exc}") from None
    return unit, week, _text(raw, "check_prefix", "documents", required=False)


def _complaints(d: Mapping[str, Any]) -> Mapping[str, Any]:
    """The optional [complaints] table (key ``sources`` only)."""
    raw = d.get("complaints", {})
    if not isinstance(raw, Mapping) or set(raw) - {"sources"}:
        raise ConfigError("city file: [complaints] must be a table with the key sources only")
    return raw


def _site_files(d: Mapping[str, Any]) -> dict[str, str]:
    sites = _table(d, "sites")
    allowed = {t.value for t in SiteType}
    out: dict[str, str] = {}
    for key, spec in sites.items():
        if key not in allowed:
            raise ConfigError(f"city file: [sites.{key}] is not a site type; expected one of "
                              f"{', '.join(sorted(allowed))}")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"city file: [sites.{key}] must be a table")
        out[key] = _file(spec, f"sites.{key}")
    return out


def _tables(d: Mapping[str, Any]) -> dict[str, str]:
    raw = d.get("tables", {})
    if not isinstance(raw, Mapping):
        raise ConfigError("city file: [tables] must be a table")
    out: dict[str, str] = {}
    for key, spec in raw.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"city file: [tables.{key}] must be a table")
        out[key] = _file(spec, f"tables.{key}")
    return out


def _file(spec: Mapping[str, Any], where: str) -> str:
    path = _text(spec, "file", where)
    if path.startswith(("/", "\\")) or ".." in path.replace("\\", "/").split("/"):
        raise ConfigError(f"city file: {where}.file must be a path inside the data folder, "
                          f"got {path!r}")
    return path
