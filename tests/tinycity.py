"""A tiny but complete city data folder, for tests (fixtures in conftest.py use it).

The tiny city has two square counties side by side around 113.3°E 35.2°N, one river running
east-west through both at about 35.2°N, one urban-core zone, and two or three sites of each
type. Tests that need a broken file call ``write_tiny_city(path, ...)`` and overwrite one file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

TINY_CITY_TOML = """
[city]
name = "测试市"
name_en = "Testcity"
adcode = "419900"
province = "河南省"
metric_crs = ""
zoom = 11
counties = [
  { name = "西区", adcode = "419901" },
  { name = "东区", adcode = "419902", full_name = "测试市东区" },
]

[layers.counties]
file = "boundaries/counties.geojson"
title = { zh = "区县界", en = "Counties" }
kind = "boundary"

[layers.rivers]
file = "boundaries/rivers.geojson"
title = { zh = "河流", en = "Rivers" }
kind = "water"

[layers.urban_core]
file = "boundaries/urban_core.geojson"
title = { zh = "主城区", en = "Urban core" }
kind = "zone"

[sites.enterprise]
file = "sites/enterprises.csv"
[sites.livestock_farm]
file = "sites/livestock_farms.csv"
[sites.scattered_workshop]
file = "sites/workshops.csv"

[tables.grid_warnings]
file = "sites/grid_warnings.csv"
[tables.complaints]
file = "sites/complaints.csv"
"""


def _box(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def feature_collection(features: list[tuple[dict, dict]]) -> dict:
    """GeoJSON FeatureCollection from (properties, geometry) pairs."""
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": p, "geometry": g}
                         for p, g in features]}


TINY_LAYERS: dict[str, dict] = {
    "counties": feature_collection([
        ({"id": "419901", "name": "西区", "adcode": "419901", "source": "synthetic"},
         _box(113.0, 35.0, 113.3, 35.4)),
        ({"id": "419902", "name": "东区", "adcode": "419902", "source": "synthetic"},
         _box(113.3, 35.0, 113.6, 35.4)),
    ]),
    "rivers": feature_collection([
        ({"id": "r1", "name": "测试河", "source": "synthetic"},
         {"type": "LineString", "coordinates": [[113.0, 35.2], [113.6, 35.2]]}),
    ]),
    "urban_core": feature_collection([
        ({"id": "core", "name": "主城区", "source": "synthetic"}, _box(113.2, 35.22, 113.4, 35.3)),
    ]),
}

ENTERPRISE_FIELDS = [
    "id", "seq", "district", "name", "address", "credit_code", "industry", "industry_code",
    "employees", "land_tenure", "safety_assessment", "energy_review", "online_monitoring",
    "eia_approval", "discharge_permit", "main_problems", "measures", "classification",
    "deadline", "progress", "remarks", "stage", "planned_start", "actual_start",
    "planned_completion", "actual_completion", "new_site_name", "new_lon", "new_lat",
    "new_site_area_mu", "vacated_mu", "listed_mu", "sale_revenue_wan", "programme", "lon",
    "lat", "source",
]
_ENTERPRISE_BLANK = dict.fromkeys(ENTERPRISE_FIELDS, "")

TINY_SITES: dict[str, list[dict]] = {
    "enterprises.csv": [
        {**_ENTERPRISE_BLANK, "id": "E1", "seq": "1", "district": "西区", "name": "甲钢铁厂",
         "industry": "钢铁", "employees": "420", "online_monitoring": "true",
         "classification": "relocate", "stage": "started", "planned_start": "2019-03-01",
         "actual_start": "2019-04-15", "new_site_name": "产业集聚区", "new_lon": "113.5",
         "new_lat": "35.05", "new_site_area_mu": "300", "vacated_mu": "210.5",
         "programme": "百企退城", "lon": "113.25", "lat": "35.25", "source": "synthetic"},
        {**_ENTERPRISE_BLANK, "id": "E2", "seq": "2", "district": "东区", "name": "乙化工厂",
         "industry": "化工", "employees": "80", "online_monitoring": "false",
         "classification": "upgrade", "stage": "not_started", "programme": "百企退城",
         "lon": "113.45", "lat": "35.1", "source": "synthetic"},
        {**_ENTERPRISE_BLANK, "id": "E3", "seq": "3", "district": "测试市东区",
         "name": "丙水泥厂", "industry": "水泥", "online_monitoring": "",
         "classification": "close", "stage": "completed", "actual_completion": "2020-06-30",
         "programme": "百企退城", "lon": "113.35", "lat": "35.28", "source": "synthetic"},
    ],
    "livestock_farms.csv": [
        {"id": "F1", "name": "河边养猪场", "district": "西区", "species": "生猪",
         "head_count": "1200", "scale": "规模", "industry": "畜禽养殖", "lon": "113.1",
         "lat": "35.2035", "source": "synthetic"},
        {"id": "F2", "name": "山坡养鸡场", "district": "东区", "species": "蛋鸡",
         "head_count": "", "scale": "", "industry": "畜禽养殖", "lon": "113.5", "lat": "35.35",
         "source": "synthetic"},
    ],
    "workshops.csv": [
        {"id": "W1", "name": "无名塑料作坊", "district": "西区", "industry": "塑料",
         "status": "banned", "found_date": "2019-05-01", "banned_date": "2019-05-20",
         "water_cut_date": "2019-05-20", "power_cut_date": "2019-05-20",
         "materials_cleared_date": "2019-05-25", "products_cleared_date": "2019-05-25",
         "equipment_cleared_date": "2019-05-28", "lon": "113.15", "lat": "35.3",
         "source": "synthetic"},
        {"id": "W2", "name": "小石材加工点", "district": "东区", "industry": "石材加工",
         "status": "found", "found_date": "2019-06-01", "banned_date": "",
         "water_cut_date": "", "power_cut_date": "", "materials_cleared_date": "",
         "products_cleared_date": "", "equipment_cleared_date": "", "lon": "113.42",
         "lat": "35.33", "source": "synthetic"},
    ],
    "grid_warnings.csv": [
        {"grid_code": "G01", "warned_at": "2026-11-16T09:00", "pollutant": "PM2.5",
         "value": "118"},
        {"grid_code": "G02", "warned_at": "2026-11-17T14:30:00", "pollutant": "PM10",
         "value": "205"},
    ],
    "complaints.csv": [
        {"id": "C1", "received_at": "2026-11-16T08:12", "category": "air", "lon": "113.26",
         "lat": "35.24", "crs": "wgs84", "district": "西区", "summary": "夜间焚烧异味"},
        {"id": "C2", "received_at": "2026-11-17T21:40", "category": "噪声", "lon": "",
         "lat": "", "crs": "", "district": "东区", "summary": "工地夜间施工"},
    ],
}


def write_csv(path: Path, rows: list[dict], fields: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = fields or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_tiny_city(root: Path) -> Path:
    """Write the tiny city's data folder under ``root``; return ``root``."""
    (root / "boundaries").mkdir(parents=True, exist_ok=True)
    (root / "city.toml").write_text(TINY_CITY_TOML, encoding="utf-8")
    for name, fc in TINY_LAYERS.items():
        (root / "boundaries" / f"{name}.geojson").write_text(
            json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    for file, rows in TINY_SITES.items():
        write_csv(root / "sites" / file, rows)
    return root
