"""12369 complaints and the registered sites that may be their source, free of I/O.

A complaint about smoke is not caused by a pig farm, and one about manure in a ditch not by a
foundry's dust. Which sites may be the source of a complaint of each category is city data
(``[complaints.sources]`` in city.toml): per category a list of site types, each optionally
narrowed to industries. The spatial part (which sites lie within the radius, how far) is
measured elsewhere; this module decides which of those candidates match, vectorised over
candidate pairs, and holds the map's colour and glyph of every category.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from geoapp.domain.errors import ConfigError
from geoapp.domain.vocab import ComplaintCategory, SiteType

#: Industries whose enterprises emit to air (dust, smoke, VOCs, odour).
AIR_INDUSTRIES: tuple[str, ...] = (
    "钢铁", "铸造", "焦化", "火电", "化工", "煤化工", "危险化学品生产", "有色金属冶炼", "水泥",
    "水泥预制", "商混站", "砂石料场", "建材", "砖瓦", "陶瓷", "耐火材料", "家具", "喷涂",
    "木材加工", "石材加工", "橡胶制品", "造纸")
#: Industries whose enterprises discharge waste water.
WATER_INDUSTRIES: tuple[str, ...] = (
    "化工", "煤化工", "危险化学品生产", "焦化", "钢铁", "有色金属冶炼", "火电", "造纸", "陶瓷")


@dataclass(frozen=True)
class SourceSpec:
    """Sites of ``site_type`` (``*``: any type) may cause a complaint; ``industries`` narrows
    them to these industries (empty: any industry)."""

    site_type: str
    industries: tuple[str, ...] = ()

    def label(self) -> str:
        kind = "全部登记点位" if self.site_type == "*" else SiteType(self.site_type).zh
        return f"{kind}（{'、'.join(self.industries)}）" if self.industries else kind


ANY = "*"

#: The mapping used when city.toml has no [complaints.sources] (docs/complaints.md).
DEFAULT_SOURCES: dict[str, tuple[SourceSpec, ...]] = {
    ComplaintCategory.AIR.value: (SourceSpec(SiteType.ENTERPRISE.value, AIR_INDUSTRIES),
                                  SourceSpec(SiteType.SCATTERED_WORKSHOP.value)),
    ComplaintCategory.WATER.value: (SourceSpec(SiteType.LIVESTOCK_FARM.value),
                                    SourceSpec(SiteType.ENTERPRISE.value, WATER_INDUSTRIES)),
    ComplaintCategory.NOISE.value: (SourceSpec(SiteType.ENTERPRISE.value),
                                    SourceSpec(SiteType.SCATTERED_WORKSHOP.value)),
    ComplaintCategory.SOLID_WASTE.value: (SourceSpec(SiteType.ENTERPRISE.value),
                                          SourceSpec(SiteType.SCATTERED_WORKSHOP.value)),
    ComplaintCategory.OTHER.value: (SourceSpec(ANY),),
}

#: Map style of each category: (marker colour, one-character glyph). Distinct hues that stay
#: apart for the common colour-vision deficiencies, and a glyph so colour is not the only cue.
CATEGORY_STYLE: dict[str, tuple[str, str]] = {
    ComplaintCategory.AIR.value: ("#d95f02", "气"),
    ComplaintCategory.NOISE.value: ("#7570b3", "声"),
    ComplaintCategory.WATER.value: ("#1f78b4", "水"),
    ComplaintCategory.SOLID_WASTE.value: ("#5b4a3f", "废"),
    ComplaintCategory.OTHER.value: ("#1b9e77", "他"),
}


def parse_sources(raw: Any) -> dict[str, tuple[SourceSpec, ...]]:
    """``[complaints.sources]`` of city.toml (category -> list of ``{site_type, industries}``)
    validated; None gives :data:`DEFAULT_SOURCES`. A category left out keeps its default.
    Categories may be named in Chinese (大气) or English (air); ``site_type = "*"`` is any site."""
    if raw is None:
        return dict(DEFAULT_SOURCES)
    if not isinstance(raw, Mapping):
        raise ConfigError("city file: [complaints.sources] must be a table")
    out = dict(DEFAULT_SOURCES)
    types = {t.value for t in SiteType} | {ANY}
    for key, items in raw.items():
        where = f"complaints.sources.{key}"
        try:
            category = ComplaintCategory.parse(str(key)).value
        except ValueError:
            raise ConfigError(f"city file: {where}: not a complaint category (大气, 噪声, 水, "
                              "固废, 其他 or air, noise, water, solid_waste, other)") from None
        if not isinstance(items, list):
            raise ConfigError(f"city file: {where} must be a list of tables")
        specs = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or set(item) - {"site_type", "industries"}:
                raise ConfigError(f"city file: {where}[{i}] must be a table with site_type "
                                  "and optional industries")
            kind = item.get("site_type")
            if kind not in types:
                raise ConfigError(f"city file: {where}[{i}].site_type must be one of "
                                  f"{', '.join(sorted(types))}, got {kind!r}")
            industries = item.get("industries", [])
            if isinstance(industries, str) or not isinstance(industries, list) or not all(
                    isinstance(v, str) and v.strip() for v in industries):
                raise ConfigError(f"city file: {where}[{i}].industries must be a list of "
                                  "industry names")
            specs.append(SourceSpec(kind, tuple(dict.fromkeys(v.strip() for v in industries))))
        out[category] = tuple(specs)
    return out


def matches(sources: Mapping[str, tuple[SourceSpec, ...]], categories: Any, site_types: Any,
            industries: Any) -> np.ndarray:
    """For candidate pairs (a complaint's category, a site's type and industry, aligned
    arrays), whether the site may be that complaint's source."""
    cats = np.asarray(categories, dtype=object)
    kinds = np.asarray(site_types, dtype=object)
    inds = np.asarray(["" if v is None else str(v) for v in industries], dtype=object)
    out = np.zeros(len(cats), dtype=bool)
    for category, specs in sources.items():
        of_cat = cats == category
        if not of_cat.any():
            continue
        for spec in specs:
            ok = of_cat if spec.site_type == ANY else of_cat & (kinds == spec.site_type)
            if spec.industries:
                ok = ok & np.isin(inds, list(spec.industries))
            out |= ok
    return out


def category_label(value: Any) -> str:
    """大气 for ``air`` (the stored value); unknown text comes back as it is."""
    try:
        return ComplaintCategory(str(value)).zh
    except ValueError:
        return "" if value is None else str(value)
