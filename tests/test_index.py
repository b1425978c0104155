"""The per-layer spatial index: the per-cell candidate lists only prune, never decide.

Layers are built directly in the metric CRS (EPSG:4547) around Jiaozuo, with many short
segments, polygons, isolated points and a segment shared by two features (exact ties), and
every answer is compared with measuring every segment of the layer by brute force with the
same arithmetic, so equality is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPoint, Polygon, box

from geoapp.spatial.index import (
    LayerIndex,
    expand,
    make_grid,
    project_cells,
    segment_distance,
)

METRIC = "EPSG:4547"
FWD = Transformer.from_crs("EPSG:4326", METRIC, always_xy=True)
INV = Transformer.from_crs(METRIC, "EPSG:4326", always_xy=True)


def _wiggle(x0, y0, n, step, seed):
    rng = np.random.default_rng(seed)
    pts = np.cumsum(rng.normal(0, step, (n, 2)) + [step, 0], axis=0) + [x0, y0]
    return LineString(pts)


@pytest.fixture(scope="module")
def city():
    """Grid, projected cells and a mixed layer: a wiggly river, two polygons sharing an
    edge (the shared edge is an exact tie between features), a multipoint."""
    cx, cy = FWD.transform(113.2, 35.2)
    shared = box(cx - 4000, cy + 3000, cx - 2000, cy + 5000)
    neighbour = box(cx - 2000, cy + 3000, cx, cy + 5000)
    geoms = np.array([
        _wiggle(cx - 9000, cy - 2000, 160, 120.0, 1),
        shared,
        neighbour,
        Polygon([(cx + 3000, cy - 5000), (cx + 6000, cy - 4500), (cx + 5000, cy - 1500)]),
        MultiPoint([(cx + 8000, cy + 6000), (cx + 8200, cy + 6100), (cx - 7000, cy + 7000)]),
    ], dtype=object)
    lon, lat = INV.transform(*shapely.get_coordinates(geoms).T)
    grid = make_grid((lon.min(), lat.min(), lon.max(), lat.max()), margin_m=3000, cell_m=500)
    cells = project_cells(grid, FWD.transform)
    return grid, cells, LayerIndex("mixed", geoms, cells)


def _brute(index, x, y):
    """Distance of each point to every segment of the layer, with the index's arithmetic."""
    d = segment_distance(x[:, None], y[:, None], index.x0[None], index.y0[None],
                         index.dx[None], index.dy[None], index.inv_ll[None])[0]
    return d


def _points_all_over_the_cells(grid, n_random=6, seed=5):
    """Corners, edge midpoints and random points of every cell, in lon/lat."""
    rng = np.random.default_rng(seed)
    col, row = np.meshgrid(np.arange(grid.nx), np.arange(grid.ny))
    col, row = col.ravel(), row.ravel()
    fx = np.r_[[0.0, 1.0, 0.0, 1.0, 0.5, 0.0, 0.5, 1.0], rng.uniform(0, 1, n_random)]
    fy = np.r_[[0.0, 0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.5], rng.uniform(0, 1, n_random)]
    # Keep the points a hair inside their cell so the cell index is unambiguous.
    fx, fy = np.clip(fx, 1e-9, 1 - 1e-9), np.clip(fy, 1e-9, 1 - 1e-9)
    lon = grid.lon0 + (col[:, None] + fx[None]) * grid.dlon
    lat = grid.lat0 + (row[:, None] + fy[None]) * grid.dlat
    return lon.ravel(), lat.ravel()


def test_pyramid_blocks_hold_every_point_of_their_cells(city):
    grid, cells, _ = city
    levels = cells.levels
    assert len(levels[-1].cx) == 1
    node = np.arange(grid.size)
    for depth in range(1, len(levels)):
        node = levels[depth - 1].parent[node]
        lv = levels[depth]
        reach = np.hypot(cells.cx - lv.cx[node], cells.cy - lv.cy[node]) + cells.radius
        assert (reach <= lv.rho[node] + 1e-6).all()


def test_cell_lists_hold_every_nearest_segment_of_every_point_of_the_cell(city):
    grid, cells, index = city
    lon, lat = _points_all_over_the_cells(grid)
    x, y = FWD.transform(lon, lat)
    cell = grid.cells(lon, lat)
    todo = np.flatnonzero((cell >= 0) & (index.cover[np.maximum(cell, 0)] < 0))
    assert len(todo) > 20_000
    for block in np.array_split(todo, 20):
        full = _brute(index, x[block], y[block])
        low = full.min(axis=1)
        owner, seg = expand(index.cand_ptr, index.cand_idx, cell[block])
        listed = np.zeros_like(full, dtype=bool)
        listed[owner, seg] = True
        nearest = full == low[:, None]
        assert not (nearest & ~listed).any()  # every nearest segment, ties included
        assert listed.sum(axis=1).mean() < index.x0.size / 4  # and the lists do prune


def test_cell_centre_distance_is_the_distance_to_the_layer(city):
    _, cells, index = city
    todo = np.flatnonzero(index.cover < 0)[::7]
    full = _brute(index, cells.cx[todo], cells.cy[todo])
    assert np.array_equal(index.centre_dist[todo], full.min(axis=1))
    lb = index.lower_bound[todo]
    assert (lb <= np.maximum(full.min(axis=1) - cells.radius[todo], 0.0) + 1e-9).all()


def test_shared_edge_tie_goes_to_the_first_feature(city):
    grid, _, index = city
    cx, cy = FWD.transform(113.2, 35.2)
    # Straight below the middle of the edge the two squares share: equally near both.
    x, y = np.array([cx - 2000.0]), np.array([cy + 2500.0])
    lon, lat = INV.transform(x, y)
    m = index.measure(x, y, grid.cells(lon, lat))
    assert m.feat.tolist() == [1] and m.dist[0] == pytest.approx(500.0, abs=1e-6)


def test_unbounded_query_pruned_per_point_matches_brute_force(city):
    grid, _, index = city
    lon, lat = _points_all_over_the_cells(grid, n_random=3, seed=9)
    x, y = FWD.transform(lon, lat)
    cell = grid.cells(lon, lat)
    assert index.cand_dist is not None
    pruned = index.measure(x, y, cell)
    kept, index.cand_dist = index.cand_dist, None
    try:
        unpruned = index.measure(x, y, cell)
    finally:
        index.cand_dist = kept
    for field in ("feat", "dist", "inside", "nx", "ny"):
        assert np.array_equal(getattr(pruned, field), getattr(unpruned, field), equal_nan=True)
    sample = np.flatnonzero(~pruned.inside)[::13]
    full = _brute(index, x[sample], y[sample])
    assert np.array_equal(pruned.dist[sample], full.min(axis=1))
    assert np.array_equal(pruned.feat[sample], index.seg_feat[full.argmin(axis=1)])


@pytest.mark.parametrize("radius", [150.0, 1200.0])
def test_bounded_query_finds_every_feature_within_the_radius(city, radius):
    grid, cells, index = city
    index.add_radius(radius, cells)
    lon, lat = _points_all_over_the_cells(grid, n_random=2, seed=int(radius))
    x, y = FWD.transform(lon, lat)
    m = index.measure(x, y, grid.cells(lon, lat), radius)
    outside = np.flatnonzero(~m.inside)
    full = _brute(index, x[outside], y[outside])
    low = full.min(axis=1)
    within = low <= radius
    assert within.any() and (~within).any()
    assert np.array_equal(m.dist[outside][within], low[within])
    assert np.array_equal(m.feat[outside][within], index.seg_feat[full.argmin(axis=1)][within])
    assert (m.feat[outside][~within] == -1).all()
