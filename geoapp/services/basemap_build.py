"""Build the city's own basemap package: its layers (data/boundaries: city outline, counties,
urban core, rivers, the Yellow River, the canal, and a label point per county) cut into
gzip'd Mapbox vector tiles and written as one PMTiles file. ``scripts/build_basemap.py`` runs
it for the shipped ``data/basemap/basemap.pmtiles`` (docs/basemap.md); the same data gives
the same bytes.
"""

from __future__ import annotations

import gzip
import tomllib
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import shapely

from geoapp.services.basemap import SOURCE_LAYERS
from geoapp.storage.tiles import tile_range, write_pmtiles

#: The shipped package's zooms: a whole city at 7, streets' scale at 14 (Leaflet draws
#: deeper zooms from the level-14 data).
MIN_ZOOM, MAX_ZOOM = 7, 14
EXTENT = 4096
#: Tile edge kept around each tile (in tile units) so lines and fills meet across edges.
BUFFER = 64
ATTRIBUTION = "焦作市生态环境局 底图（市界、区县、河流，部分为示意数据）"


def _world(geoms: np.ndarray) -> np.ndarray:
    """lon/lat -> spherical Web Mercator in units of the world (0..1 both ways, y down)."""

    def to_world(c: np.ndarray) -> np.ndarray:
        lat = np.clip(c[:, 1], -85.0511287798, 85.0511287798)
        out = np.empty_like(c)
        out[:, 0] = (c[:, 0] + 180.0) / 360.0
        out[:, 1] = (1.0 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2.0
        return out

    return shapely.transform(geoms, to_world)


def read_source_layers(data_dir: str | Path) -> tuple[dict[str, gpd.GeoDataFrame], str]:
    """The package's layers from a data folder (city.toml's files), and the city's name."""
    data_dir = Path(data_dir)
    with (data_dir / "city.toml").open("rb") as fh:
        city = tomllib.load(fh)
    layers = {}
    for name in SOURCE_LAYERS:
        spec = city.get("layers", {}).get(name)
        if not spec:
            continue
        layers[name] = gpd.read_file(data_dir / spec["file"])
    if "counties" in layers:
        c = layers["counties"]
        layers["places"] = gpd.GeoDataFrame({"name": c["name"]},
                                            geometry=c.geometry.representative_point(),
                                            crs=c.crs)
    return layers, str(city.get("city", {}).get("name", ""))


def build_basemap(data_dir: str | Path, out: str | Path, *, minzoom: int = MIN_ZOOM,
                  maxzoom: int = MAX_ZOOM) -> dict[str, Any]:
    """Cut the city's layers from ``data_dir`` into vector tiles (zooms ``minzoom`` ..
    ``maxzoom``) and write them to the PMTiles file ``out``. The same data gives the same
    bytes. Returns a summary (tiles per zoom, size)."""
    layers, city_name = read_source_layers(data_dir)
    world = {name: (_world(gdf.geometry.values), gdf["name"].astype(str).tolist())
             for name, gdf in layers.items()}
    boxes = np.array([df.total_bounds for df in layers.values()])
    bounds = (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
              float(boxes[:, 3].max()))
    tiles: list[tuple[int, int, int, bytes]] = []
    per_zoom: dict[int, int] = {}
    for z in range(minzoom, maxzoom + 1):
        n = 1 << z
        # Simplify once per zoom to a quarter of a tile unit.
        simple = {name: (shapely.simplify(g, 0.25 / (n * EXTENT), preserve_topology=True), names)
                  for name, (g, names) in world.items()}
        x0, y0, x1, y1 = tile_range(bounds, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                data = _tile(simple, z, x, y)
                if data is not None:
                    tiles.append((z, x, y, data))
                    per_zoom[z] = per_zoom.get(z, 0) + 1
    metadata = {
        "name": f"{city_name} 底图 basemap", "format": "pbf",
        "attribution": ATTRIBUTION,
        "description": "Built by scripts/build_basemap.py from data/boundaries (docs/basemap.md)",
        "vector_layers": [{"id": name, "fields": {"name": "String"},
                           "minzoom": minzoom, "maxzoom": maxzoom} for name in world],
    }
    path = write_pmtiles(out, tiles, fmt="pbf", bounds=bounds, metadata=metadata, gzipped=True)
    return {"tiles": len(tiles), "per_zoom": per_zoom, "bytes": path.stat().st_size,
            "bounds": bounds}


def _tile(layers: dict[str, tuple[np.ndarray, list[str]]], z: int, x: int,
          y: int) -> bytes | None:
    n = 1 << z
    pad = BUFFER / EXTENT
    box = ((x - pad) / n, (y - pad) / n, (x + 1 + pad) / n, (y + 1 + pad) / n)
    out = []
    for name, (geoms, names) in layers.items():
        clipped = shapely.clip_by_rect(geoms, *box) if name != "places" else geoms
        feats = []
        for label, geom in zip(names, clipped, strict=True):
            if geom is None or geom.is_empty:
                continue
            if name == "places" and not (box[0] <= geom.x <= box[2] and box[1] <= geom.y <= box[3]):
                continue
            local = shapely.transform(geom, lambda c, x=x, y=y: np.column_stack(
                ((c[:, 0] * n - x) * EXTENT, (c[:, 1] * n - y) * EXTENT)))
            local = shapely.set_precision(local, 1.0)
            if local.is_empty:
                continue
            feats.append({"geometry": local, "properties": {"name": label}})
        if feats:
            out.append({"name": name, "features": feats})
    if not out:
        return None
    raw = mapbox_vector_tile.encode(out, default_options={"extents": EXTENT,
                                                          "y_coord_down": True})
    return gzip.compress(raw, compresslevel=9, mtime=0)


def summary_text(summary: dict[str, Any]) -> str:
    """A one-line account of a built package."""
    zooms = ", ".join(f"z{z}: {c}" for z, c in sorted(summary["per_zoom"].items()))
    return f"{summary['tiles']} tiles ({zooms}), {summary['bytes'] / 1024:.0f} KiB"
