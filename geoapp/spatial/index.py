"""Per-layer spatial index: short segments, one STRtree, and a coarse cell grid.

Why not just ``STRtree.query_nearest`` per point? On these machines a shapely Point costs
~1 µs to build and a nearest query 1–2 µs, so a million sites against a dozen layers would
take tens of seconds. Instead every layer is broken into straight segments (lines are cut at
every vertex and at most every ``max_segment_m``; polygons contribute their boundary) and a
lon/lat cell grid precomputes, per cell and layer:

* a lower bound of the distance from any point of the cell to the layer, so sites far from
  every feature are dropped with one array comparison;
* the feature that covers the whole cell, if any, so sites deep inside a zone need no test;
* the short list of segments that can be nearest to some point of the cell, so exact
  point-to-segment distances are computed with numpy over (site, segment) pairs, and the list
  of polygons whose boundary crosses the cell, for ``shapely.intersects_xy``.

The candidate lists are found top-down over a pyramid of ever larger blocks of cells (2x2,
4x4, … up to one block for the whole grid): a block's list is cut from its parent's, so each
level measures only a few segments per block instead of every segment per cell.

Results are exact (not grid-approximated): the grid only prunes candidates. Sites outside the
grid fall back to the STRtree. All coordinates here are in the metric CRS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely

from geoapp.domain.rules import INSIDE_TOLERANCE_M

log = logging.getLogger(__name__)

#: Longest straight piece a line is cut into before indexing.
MAX_SEGMENT_M = 1000.0
#: Points per block in unbounded searches (caps the size of the pair arrays).
BLOCK = 8192
#: (block, segment) pairs measured at once while building candidate lists: small enough
#: for the temporaries to stay in cache.
PAIR_BLOCK = 1 << 16
#: Added to every pruning bound: the bounds are exact, the arithmetic is not.
PRUNE_SLACK_M = 1e-3
#: Projected and geodesic distances differ by the projection's scale error (~2e-4 at the
#: edge of a 3-degree zone); candidates are searched this much further, then decided exactly.
SEARCH_SLACK = 1.002


def projected_reach(ground_m: float) -> float:
    """How far (projected metres) to search so that a decision on ground distances up to
    ``ground_m`` (e.g. ``RuleSpec.search_distance_m``) is exact: ``SEARCH_SLACK`` for the
    projection's scale error, plus 1 m. Infinite stays infinite."""
    return float(ground_m) * SEARCH_SLACK + 1.0


@dataclass(frozen=True)
class Grid:
    """A regular lon/lat grid; cells are indexed ``row * nx + col``."""

    lon0: float
    lat0: float
    dlon: float
    dlat: float
    nx: int
    ny: int

    @property
    def size(self) -> int:
        return self.nx * self.ny

    def cells(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Cell index of each point, -1 outside the grid (or NaN)."""
        col = np.asarray(lon, dtype=float) - self.lon0
        col /= self.dlon
        row = np.asarray(lat, dtype=float) - self.lat0
        row /= self.dlat
        with np.errstate(invalid="ignore"):  # NaN compares False, casts to anything
            ok = (col >= 0) & (col < self.nx) & (row >= 0) & (row < self.ny)
            out = row.astype(np.int64)  # truncation is floor where ok (non-negative)
            out *= self.nx
            out += col.astype(np.int64)
        return np.where(ok, out, -1)

    def cell(self, lon: float, lat: float) -> int:
        """Scalar version of :meth:`cells` for the single-point path."""
        col = int((lon - self.lon0) // self.dlon)
        row = int((lat - self.lat0) // self.dlat)
        if 0 <= col < self.nx and 0 <= row < self.ny:
            return row * self.nx + col
        return -1

    def boxes(self, pad: float) -> np.ndarray:
        """Lon/lat corner arrays (n, 4, 2) of every cell, padded by ``pad`` degrees."""
        col, row = np.meshgrid(np.arange(self.nx), np.arange(self.ny))
        x0 = self.lon0 + col.ravel() * self.dlon - pad
        y0 = self.lat0 + row.ravel() * self.dlat - pad
        x1, y1 = x0 + self.dlon + 2 * pad, y0 + self.dlat + 2 * pad
        return np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1),
                         np.stack([x1, y1], 1), np.stack([x0, y1], 1)], axis=1)


def make_grid(bounds: tuple[float, float, float, float], margin_m: float,
              cell_m: float) -> Grid:
    """A grid over lon/lat ``bounds`` plus ``margin_m``, with cells about ``cell_m`` wide."""
    lon_min, lat_min, lon_max, lat_max = bounds
    coslat = max(np.cos(np.radians((lat_min + lat_max) / 2)), 0.1)
    dlat = cell_m / 111_000.0
    dlon = cell_m / (111_000.0 * coslat)
    mlat, mlon = margin_m / 111_000.0, margin_m / (111_000.0 * coslat)
    lon0, lat0 = lon_min - mlon, lat_min - mlat
    nx = max(1, int(np.ceil((lon_max + mlon - lon0) / dlon)))
    ny = max(1, int(np.ceil((lat_max + mlat - lat0) / dlat)))
    return Grid(lon0, lat0, dlon, dlat, nx, ny)


@dataclass
class NodeLevel:
    """One level of the block pyramid: every block's centre, a radius around the centre that
    holds all of the block's cells, and its parent block one level up (the top level's
    parent is 0, the whole layer)."""

    cx: np.ndarray
    cy: np.ndarray
    rho: np.ndarray
    parent: np.ndarray


@dataclass
class CellGeometry:
    """The grid's cells projected into the metric CRS (padded), with centres and radii, and
    the block pyramid above them (``levels[0]`` is the cells themselves)."""

    polys: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray
    levels: list[NodeLevel]


def project_cells(grid: Grid, forward) -> CellGeometry:
    """Project every cell; ``forward(lon, lat) -> (x, y)``. Padding absorbs edge curvature."""
    corners = grid.boxes(pad=min(grid.dlon, grid.dlat) * 0.01)
    x, y = forward(corners[..., 0].ravel(), corners[..., 1].ravel())
    x = np.asarray(x).reshape(-1, 4)
    y = np.asarray(y).reshape(-1, 4)
    polys = shapely.polygons(np.stack([x, y], axis=2))
    cx, cy = x.mean(axis=1), y.mean(axis=1)
    radius = np.sqrt(((x - cx[:, None]) ** 2 + (y - cy[:, None]) ** 2).max(axis=1))
    return CellGeometry(polys, cx, cy, radius, _pyramid(grid.nx, grid.ny, cx, cy, radius))


def _pyramid(nx: int, ny: int, cx: np.ndarray, cy: np.ndarray,
             radius: np.ndarray) -> list[NodeLevel]:
    """Blocks of 2^L x 2^L cells for L = 0, 1, … until one block covers the grid. A block's
    centre is the middle of its cells' centres, its radius the largest |c - C| + r over its
    cells, so every point of its cells is within the radius of its centre."""
    row, col = np.divmod(np.arange(nx * ny), nx)
    levels = []
    node_cx, node_cy, node_rho = cx, cy, radius
    shift = 0
    while True:
        bnx, bny = ((nx - 1) >> shift) + 1, ((ny - 1) >> shift) + 1
        if bnx * bny == 1:
            levels.append(NodeLevel(node_cx, node_cy, node_rho, np.zeros(1, dtype=np.int64)))
            return levels
        pnx = ((nx - 1) >> (shift + 1)) + 1
        brow, bcol = np.divmod(np.arange(bnx * bny), bnx)
        levels.append(NodeLevel(node_cx, node_cy, node_rho, (brow >> 1) * pnx + (bcol >> 1)))
        shift += 1
        owner = (row >> shift) * pnx + (col >> shift)
        k = pnx * (((ny - 1) >> shift) + 1)
        lo_x, lo_y = np.full(k, np.inf), np.full(k, np.inf)
        hi_x, hi_y = np.full(k, -np.inf), np.full(k, -np.inf)
        np.minimum.at(lo_x, owner, cx)
        np.minimum.at(lo_y, owner, cy)
        np.maximum.at(hi_x, owner, cx)
        np.maximum.at(hi_y, owner, cy)
        node_cx, node_cy = (lo_x + hi_x) * 0.5, (lo_y + hi_y) * 0.5
        node_rho = np.zeros(k)
        np.maximum.at(node_rho, owner,
                      np.hypot(cx - node_cx[owner], cy - node_cy[owner]) + radius)


def _csr(n: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((cols, rows))
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, rows + 1, 1)
    return np.cumsum(ptr), cols[order].astype(np.int64)


def expand_positions(ptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each requested row, the positions of its CSR entries: (position in ``rows``,
    position in the index array), by row then entry."""
    start, stop = ptr[rows], ptr[rows + 1]
    counts = stop - start
    owner = np.repeat(np.arange(len(rows)), counts)
    if owner.size == 0:
        return owner, owner
    offset = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, start[owner] + offset


def expand(ptr: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each requested row, its CSR entries: returns (position in ``rows``, entry)."""
    owner, pos = expand_positions(ptr, rows)
    return owner, idx[pos]


def segment_distance(px, py, x0, y0, dx, dy, inv_ll):
    """Distance from points to segments, and the vector (rx, ry) from the nearest point on
    the segment to the point (nearest point = p - r); arrays of pairs, in place where it can.

    Segments are given by start, direction and 1/length² (0 for a point), precomputed once.
    ``RuleEngine._measure_point`` repeats these operations in the same order for one point,
    so both paths give bit-identical distances.
    """
    ex, ey = px - x0, py - y0
    t = ex * dx
    t += ey * dy
    t *= inv_ll
    np.minimum(np.maximum(t, 0.0, out=t), 1.0, out=t)
    ex -= t * dx
    ey -= t * dy
    return np.hypot(ex, ey), ex, ey


def candidate_lists(index: LayerIndex, levels: list[NodeLevel], leaves: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell in ``leaves``: the segments that can be nearest to some point of the cell
    (CSR over all cells, segments ascending), the distance from the cell's centre to the
    layer (inf for cells not in ``leaves``) and each candidate's distance from the centre.

    For a block with centre C and radius rho (every point of the block's cells is within
    rho of C; see ``_pyramid``), every such point p is within D(C) + rho of the layer and
    d(p, s) >= d(C, s) - rho, so a segment farther than D(C) + 2 rho from C is nearest to no
    point of the block: the list holds the nearest segments (ties included) of every point
    of every cell below. Each child measures its own centre against its parent's list; a
    child's D can only come out too large (its centre need not be a point of a cell), which
    only widens its bound, and at the cells, whose centres are points of the cell, D is
    exact. The top block starts from every segment; at the cells rho is the cell's radius r
    (the bound min d(c, s) + 2r).
    """
    nseg = len(index.x0)
    ptr, idx = np.array([0, nseg], dtype=np.int64), np.arange(nseg, dtype=np.int64)
    ncell = len(levels[0].cx)
    dist = np.full(ncell, np.inf)
    for depth in range(len(levels) - 1, -1, -1):
        lv = levels[depth]
        nodes = leaves if depth == 0 else np.arange(len(lv.cx))
        ptr, idx, low, seg_dist = _refine(index, ptr, idx, lv.parent[nodes], lv.cx[nodes],
                                          lv.cy[nodes], lv.rho[nodes])
    counts = np.zeros(ncell, dtype=np.int64)
    counts[leaves] = np.diff(ptr)
    dist[leaves] = low
    return np.r_[0, np.cumsum(counts)], idx, dist, seg_dist


def _refine(index: LayerIndex, ptr: np.ndarray, idx: np.ndarray, parent: np.ndarray,
            cx: np.ndarray, cy: np.ndarray, rho: np.ndarray):
    """One level of :func:`candidate_lists`: each node's list cut from its parent's, with
    each node's distance to the layer and each kept segment's distance from the centre."""
    n = len(parent)
    ends = np.cumsum(ptr[parent + 1] - ptr[parent])
    counts = np.zeros(n, dtype=np.int64)
    low = np.full(n, np.inf)
    kept, kept_d = [], []
    a = 0
    while a < n:
        b = int(np.searchsorted(ends, (ends[a - 1] if a else 0) + PAIR_BLOCK, side="right"))
        b = min(max(b, a + 1), n)
        owner, seg = expand(ptr, idx, parent[a:b])
        if owner.size:
            node = owner + a
            d = segment_distance(cx[node], cy[node], index.x0[seg], index.y0[seg],
                                 index.dx[seg], index.dy[seg], index.inv_ll[seg])[0]
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            first = node[starts]
            low[first] = np.minimum.reduceat(d, starts)
            bound = low[first] + 2.0 * rho[first] + PRUNE_SLACK_M
            keep = d <= np.repeat(bound, np.diff(np.r_[starts, len(d)]))
            counts[a:b] = np.bincount(owner[keep], minlength=b - a)
            kept.append(seg[keep])
            kept_d.append(d[keep])
        a = b
    out = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
    out_d = np.concatenate(kept_d) if kept_d else np.empty(0)
    return np.r_[0, np.cumsum(counts)].astype(np.int64), out, low, out_d


def first_min(owner: np.ndarray, d: np.ndarray, n: int) -> np.ndarray:
    """Index (into ``d``) of the first minimum of each owner's run; owners sorted ascending."""
    out = np.full(n, -1, dtype=np.int64)
    if owner.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    low = np.minimum.reduceat(d, starts)
    at = np.flatnonzero(d == np.repeat(low, np.diff(np.r_[starts, len(d)])))
    out[owner[starts]] = at[np.searchsorted(at, starts)]
    return out


@dataclass
class Measure:
    """Nearest feature of one layer for each point (feat -1 where none within reach)."""

    feat: np.ndarray
    dist: np.ndarray
    inside: np.ndarray
    nx: np.ndarray
    ny: np.ndarray


class LayerIndex:
    """One layer, projected, cut into segments and indexed (see the module docstring)."""

    def __init__(self, name: str, geoms: np.ndarray, cells: CellGeometry,
                 max_segment_m: float = MAX_SEGMENT_M) -> None:
        self.name = name
        self.n_features = len(geoms)
        geoms = np.asarray(geoms, dtype=object)
        self.areal = np.zeros(len(geoms), dtype=bool)
        self._build_polygons(geoms)
        self._build_segments(geoms, max_segment_m)
        self.radius_lists: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._build_grid(cells)

    # -- construction -----------------------------------------------------------------
    def _build_polygons(self, geoms: np.ndarray) -> None:
        parts, owner = shapely.get_parts(geoms, return_index=True)
        poly = shapely.get_type_id(parts) == 3
        self.polys = np.empty(self.n_features, dtype=object)
        for f in np.unique(owner[poly]):
            self.polys[f] = shapely.multipolygons(parts[poly & (owner == f)])
        self.areal = np.array([p is not None for p in self.polys], dtype=bool)
        self.poly_feats = np.flatnonzero(self.areal)
        shapely.prepare(self.polys[self.poly_feats])
        self.poly_tree = shapely.STRtree(self.polys[self.poly_feats])

    def _build_segments(self, geoms: np.ndarray, max_segment_m: float) -> None:
        parts, owner = shapely.get_parts(geoms, return_index=True)
        kind = shapely.get_type_id(parts)
        lines = np.where(kind == 3, shapely.boundary(parts), parts)
        lines, sub = shapely.get_parts(lines, return_index=True)
        owner = owner[sub]
        is_pt = shapely.get_type_id(lines) == 0
        pts = shapely.get_coordinates(lines[is_pt])
        pt_owner = owner[is_pt]
        if len(pts):  # sort points in 2 km strips: neighbours stay near in index order
            order = np.lexsort((pts[:, 1], np.floor(pts[:, 0] / 2000.0)))
            pts, pt_owner = pts[order], pt_owner[order]
        lines = shapely.segmentize(lines[~is_pt], max_segment_m)
        coords, part = shapely.get_coordinates(lines, return_index=True)
        same = part[1:] == part[:-1]
        a, b = coords[:-1][same], coords[1:][same]
        self.x0 = np.r_[a[:, 0], pts[:, 0]]
        self.y0 = np.r_[a[:, 1], pts[:, 1]]
        self.x1 = np.r_[b[:, 0], pts[:, 0]]
        self.y1 = np.r_[b[:, 1], pts[:, 1]]
        self.dx, self.dy = self.x1 - self.x0, self.y1 - self.y0
        ll = self.dx * self.dx + self.dy * self.dy
        self.inv_ll = np.divide(1.0, ll, out=np.zeros_like(ll), where=ll > 0)
        self.seg_feat = np.r_[owner[~is_pt][part[:-1][same]], pt_owner].astype(np.int64)
        seg_geoms = np.empty(len(self.x0), dtype=object)
        lines_xy = np.stack([self.x0, self.y0, self.x1, self.y1], 1).reshape(-1, 2, 2)
        seg_geoms[: len(a)] = shapely.linestrings(lines_xy[: len(a)]) if len(a) else []
        seg_geoms[len(a):] = shapely.points(pts) if len(pts) else []
        self.tree = shapely.STRtree(seg_geoms)

    def _build_grid(self, cells: CellGeometry) -> None:
        n = len(cells.polys)
        self.cover = np.full(n, -1, dtype=np.int64)
        lb = np.full(n, np.inf)
        touched = np.zeros(n, dtype=bool)
        poly_rows = poly_cols = np.empty(0, dtype=np.int64)
        if len(self.poly_feats):
            cell_i, tree_i = self.poly_tree.query(cells.polys, predicate="intersects")
            feat = self.poly_feats[tree_i]
            touched[cell_i] = True
            low = np.full(n, np.iinfo(np.int64).max)
            np.minimum.at(low, cell_i, feat)
            first = feat == low[cell_i]
            covered = shapely.covers(self.polys[feat[first]], cells.polys[cell_i[first]])
            self.cover[cell_i[first][covered]] = feat[first][covered]
            keep = self.cover[cell_i] < 0
            poly_rows, poly_cols = cell_i[keep], feat[keep]
        self.poly_ptr, self.poly_idx = _csr(n, poly_rows, poly_cols)
        self.cand_ptr = np.zeros(n + 1, dtype=np.int64)
        self.cand_idx = np.empty(0, dtype=np.int64)
        self.centre_dist = np.full(n, np.inf)
        self.cand_dist: np.ndarray | None = None
        self._cells = cells
        if len(self.x0):
            todo = np.flatnonzero(self.cover < 0)
            self.cand_ptr, self.cand_idx, self.centre_dist, self.cand_dist = candidate_lists(
                self, cells.levels, todo)
            lb = np.maximum(self.centre_dist - cells.radius, 0.0)
        lb[touched] = 0.0
        self.lower_bound = lb
        log.debug("layer %s: %d segments, %d polygons, %d cell-segment candidates",
                  self.name, len(self.x0), len(self.poly_feats), len(self.cand_idx))

    def add_radius(self, radius: float, cells: CellGeometry) -> None:
        """Precompute, per cell, the candidates that can be within ``radius`` of a point of
        the cell (within r + ``radius`` of its centre), so queries bounded by that radius
        (within_distance rules) test only those: often far fewer than the full list."""
        if not np.isfinite(radius) or radius in self.radius_lists or not len(self.x0):
            return
        ptr, seg = self.cand_ptr, self.cand_idx
        cell = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
        d = self.cand_dist
        if d is None:
            d = segment_distance(cells.cx[cell], cells.cy[cell], self.x0[seg], self.y0[seg],
                                 self.dx[seg], self.dy[seg], self.inv_ll[seg])[0]
        keep = d <= radius + cells.radius[cell] + PRUNE_SLACK_M
        counts = np.bincount(cell[keep], minlength=len(ptr) - 1)
        self.radius_lists[radius] = (np.r_[0, np.cumsum(counts)], seg[keep])
        log.debug("layer %s: %d cell-segment pairs within %.0f m", self.name, keep.sum(), radius)

    def drop_centre_distances(self) -> None:
        """Free the candidates' centre distances (kept for per-point pruning of unbounded
        queries, see ``_cell_nearest``) once the radius lists are built, if the layer is
        never queried without a bound."""
        self.cand_dist = None

    # -- queries ----------------------------------------------------------------------
    def measure(self, x: np.ndarray, y: np.ndarray, cells: np.ndarray,
                max_distance: float = np.inf) -> Measure:
        """Nearest feature, distance and inside flag for each point, up to ``max_distance``."""
        n = len(x)
        m = Measure(np.full(n, -1, dtype=np.int64), np.full(n, np.inf),
                    np.zeros(n, dtype=bool), np.full(n, np.nan), np.full(n, np.nan))
        if self.n_features == 0 or n == 0:
            return m
        on = cells >= 0
        c = np.where(on, cells, 0)
        cov = np.where(on, self.cover[c], -1)
        hit = cov >= 0
        m.feat[hit], m.dist[hit], m.inside[hit] = cov[hit], 0.0, True
        active = np.flatnonzero(on & ~hit & (self.lower_bound[c] <= max_distance))
        if len(active) and len(self.poly_idx):
            owner, feat = expand(self.poly_ptr, self.poly_idx, cells[active])
            ins = shapely.intersects_xy(self.polys[feat], x[active][owner], y[active][owner])
            low = np.full(len(active), np.iinfo(np.int64).max)
            np.minimum.at(low, owner[ins], feat[ins])
            got = low < np.iinfo(np.int64).max
            m.feat[active[got]], m.dist[active[got]] = low[got], 0.0
            m.inside[active[got]] = True
            active = active[~got]
        if len(active) and max_distance in self.radius_lists:
            owner, seg = expand(*self.radius_lists[max_distance], cells[active])
            self._nearest_segments(m, active, owner, seg, x, y)
        elif len(active) and len(self.cand_idx):
            for a in range(0, len(active), BLOCK):
                self._cell_nearest(m, active[a:a + BLOCK], cells, x, y)
        off = np.flatnonzero(~on)
        if len(off) and len(self.x0):
            self._tree_nearest(m, off, x, y)
        far = m.dist > max_distance
        m.feat[far], m.dist[far] = -1, np.inf
        near = ~m.inside & (m.dist < INSIDE_TOLERANCE_M)
        m.inside[near] = True
        inside = m.inside
        m.nx[inside], m.ny[inside] = x[inside], y[inside]
        return m

    def _cell_nearest(self, m: Measure, pts: np.ndarray, cells: np.ndarray, x: np.ndarray,
                      y: np.ndarray) -> None:
        """Unbounded nearest from the cells' candidate lists, pruned per point p when the
        candidates' distances from the cell centre c are known: p is within D(c) + |p - c| of
        the layer (D: the centre's distance), so a segment farther than D(c) + 2|p - c| from
        c is not nearest to p (r >= |p - c| made the cell's list keep up to D(c) + 2r)."""
        cell = cells[pts]
        owner, pos = expand_positions(self.cand_ptr, cell)
        if self.cand_dist is not None and owner.size:
            off = np.hypot(x[pts] - self._cells.cx[cell], y[pts] - self._cells.cy[cell])
            reach = self.centre_dist[cell] + 2.0 * off + PRUNE_SLACK_M
            keep = np.flatnonzero(self.cand_dist[pos] <= reach[owner])
            owner, pos = owner[keep], pos[keep]
        self._nearest_segments(m, pts, owner, self.cand_idx[pos], x, y)

    def _tree_nearest(self, m: Measure, pts: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        owner, seg = self.tree.query_nearest(shapely.points(x[pts], y[pts]), all_matches=True)
        order = np.lexsort((seg, owner))
        self._nearest_segments(m, pts, owner[order], seg[order], x, y)

    def _nearest_segments(self, m: Measure, pts: np.ndarray, owner: np.ndarray,
                          seg: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        px, py = x[pts][owner], y[pts][owner]
        d, rx, ry = segment_distance(px, py, self.x0[seg], self.y0[seg], self.dx[seg],
                                     self.dy[seg], self.inv_ll[seg])
        best = first_min(owner, d, len(pts))
        ok = best >= 0
        rows, b = pts[ok], best[ok]
        m.feat[rows], m.dist[rows] = self.seg_feat[seg[b]], d[b]
        m.nx[rows], m.ny[rows] = x[rows] - rx[b], y[rows] - ry[b]
