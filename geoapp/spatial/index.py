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
#: Consecutive segments grouped under one bounding box for the cell candidate lists.
CHUNK = 8
#: Points per block in unbounded searches (caps the size of the pair arrays).
BLOCK = 8192
#: Projected and geodesic distances differ by the projection's scale error (~2e-4 at the
#: edge of a 3-degree zone); candidates are searched this much further, then decided exactly.
SEARCH_SLACK = 1.002


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
        with np.errstate(invalid="ignore"):
            col = np.floor((np.asarray(lon, dtype=float) - self.lon0) / self.dlon)
            row = np.floor((np.asarray(lat, dtype=float) - self.lat0) / self.dlat)
            ok = (col >= 0) & (col < self.nx) & (row >= 0) & (row < self.ny)
        out = np.full(col.shape, -1, dtype=np.int64)
        out[ok] = (row[ok] * self.nx + col[ok]).astype(np.int64)
        return out

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
class CellGeometry:
    """The grid's cells projected into the metric CRS (padded), with centres and radii."""

    polys: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray


def project_cells(grid: Grid, forward) -> CellGeometry:
    """Project every cell; ``forward(lon, lat) -> (x, y)``. Padding absorbs edge curvature."""
    corners = grid.boxes(pad=min(grid.dlon, grid.dlat) * 0.01)
    x, y = forward(corners[..., 0].ravel(), corners[..., 1].ravel())
    x = np.asarray(x).reshape(-1, 4)
    y = np.asarray(y).reshape(-1, 4)
    polys = shapely.polygons(np.stack([x, y], axis=2))
    cx, cy = x.mean(axis=1), y.mean(axis=1)
    radius = np.sqrt(((x - cx[:, None]) ** 2 + (y - cy[:, None]) ** 2).max(axis=1))
    return CellGeometry(polys, cx, cy, radius)


def _csr(n: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((cols, rows))
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, rows + 1, 1)
    return np.cumsum(ptr), cols[order].astype(np.int64)


def expand(ptr: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each requested row, its CSR entries: returns (position in ``rows``, entry)."""
    start, stop = ptr[rows], ptr[rows + 1]
    counts = stop - start
    owner = np.repeat(np.arange(len(rows)), counts)
    if owner.size == 0:
        return owner, owner
    offset = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, idx[start[owner] + offset]


def chunk_segments(owner: np.ndarray, start: np.ndarray,
                   length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand (owner, chunk) pairs into (owner, segment) pairs, order kept."""
    total = int(length.sum())
    offset = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
    return np.repeat(owner, length), np.repeat(start, length) + offset


def box_distances(px, py, bx0, by0, bx1, by1):
    """Nearest and farthest distance from points to axis-aligned boxes."""
    near = np.hypot(np.maximum(np.maximum(bx0 - px, px - bx1), 0.0),
                    np.maximum(np.maximum(by0 - py, py - by1), 0.0))
    far = np.hypot(np.maximum(np.abs(px - bx0), np.abs(px - bx1)),
                   np.maximum(np.abs(py - by0), np.abs(py - by1)))
    return near, far


def segment_distance(px, py, x0, y0, dx, dy, inv_ll):
    """Distance from points to segments, and the vector (rx, ry) from the nearest point on
    the segment to the point (nearest point = p - r). numpy, as few operations as possible:
    the single-point check calls this on a few hundred segments and pays per operation.

    Segments are given by start, direction and 1/length² (0 for a point), precomputed once.
    """
    ex, ey = px - x0, py - y0
    t = np.minimum(np.maximum((ex * dx + ey * dy) * inv_ll, 0.0), 1.0)
    rx, ry = ex - t * dx, ey - t * dy
    return np.hypot(rx, ry), rx, ry


def near_segments(index: LayerIndex, cells: CellGeometry,
                  max_pairs: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
    """(cell, segment) pairs, by cell then segment, of every segment that can be nearest to
    some point of the cell: from the cell's chunk list, those within min d(c, s) + 2r of its
    centre c (r: the cell's radius). Blocks of cells keep the pair arrays bounded."""
    ncell = len(cells.cx)
    per_cell = np.diff(index.chunk_ptr) * CHUNK
    cum = np.cumsum(per_cell)
    out_c, out_s = [], []
    a = 0
    while a < ncell:
        b = int(np.searchsorted(cum, (cum[a - 1] if a else 0) + max_pairs, side="right"))
        b = min(max(b, a + 1), ncell)
        rows = np.arange(a, b)
        owner, chunk = expand(index.chunk_ptr, index.chunk_idx, rows)
        if owner.size:
            owner, seg = chunk_segments(owner, index.chunk_start[chunk], index.chunk_len[chunk])
            cell = rows[owner]
            d = segment_distance(cells.cx[cell], cells.cy[cell], index.x0[seg], index.y0[seg],
                                 index.dx[seg], index.dy[seg], index.inv_ll[seg])[0]
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            lowest = np.repeat(np.minimum.reduceat(d, starts), np.diff(np.r_[starts, len(d)]))
            keep = d <= lowest + 2.0 * cells.radius[cell] + 1e-6
            out_c.append(cell[keep])
            out_s.append(seg[keep])
        a = b
    empty = np.empty(0, dtype=np.int64)
    return np.concatenate(out_c + [empty]), np.concatenate(out_s + [empty])


def first_min(owner: np.ndarray, d: np.ndarray, n: int) -> np.ndarray:
    """Index (into ``d``) of the first minimum of each owner's run; owners sorted ascending."""
    if owner.size == 0:
        return np.full(n, -1, dtype=np.int64)
    best = np.full(n, np.inf)
    np.minimum.at(best, owner, d)
    is_min = d == best[owner]
    cand = np.flatnonzero(is_min)
    first = np.r_[True, owner[cand][1:] != owner[cand][:-1]]
    out = np.full(n, -1, dtype=np.int64)
    out[owner[cand[first]]] = cand[first]
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
        if len(pts):  # sort points in 2 km strips so each chunk's box stays small
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
        nseg = len(self.x0)
        self.chunk_start = np.arange(0, nseg, CHUNK, dtype=np.int64)
        self.chunk_len = np.minimum(self.chunk_start + CHUNK, nseg) - self.chunk_start
        if nseg:
            lo_x, hi_x = np.minimum(self.x0, self.x1), np.maximum(self.x0, self.x1)
            lo_y, hi_y = np.minimum(self.y0, self.y1), np.maximum(self.y0, self.y1)
            st = self.chunk_start
            self.chunk_box = (np.minimum.reduceat(lo_x, st), np.minimum.reduceat(lo_y, st),
                              np.maximum.reduceat(hi_x, st), np.maximum.reduceat(hi_y, st))
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
        seg_rows = seg_cols = np.empty(0, dtype=np.int64)
        if len(self.x0):
            lb, seg_rows, seg_cols = self._chunk_candidates(cells)
        lb[touched] = 0.0
        self.lower_bound = lb
        self.chunk_ptr, self.chunk_idx = _csr(n, seg_rows, seg_cols)
        log.debug("layer %s: %d segments in %d chunks, %d polygons, %d cell-chunk pairs",
                  self.name, len(self.x0), len(self.chunk_start), len(self.poly_feats),
                  len(self.chunk_idx))

    def _chunk_candidates(self, cells: CellGeometry, block: int = 2048):
        """Per cell: distance lower bound and the chunks that may hold a point's nearest.

        With r the cell's radius around its centre c, every point p of the cell has its
        nearest segment within U + r, U = min over chunks of the farthest distance from c to
        the chunk's box; a chunk whose box is farther than U + 2r from c cannot hold it.
        """
        n = len(cells.cx)
        lb = np.empty(n)
        rows, cols = [], []
        bx0, by0, bx1, by1 = self.chunk_box
        for a in range(0, n, block):
            cx, cy = cells.cx[a:a + block, None], cells.cy[a:a + block, None]
            r = cells.radius[a:a + block, None]
            ddx = np.maximum(np.maximum(bx0 - cx, cx - bx1), 0.0)
            ddy = np.maximum(np.maximum(by0 - cy, cy - by1), 0.0)
            near = np.hypot(ddx, ddy)
            far = np.hypot(np.maximum(np.abs(cx - bx0), np.abs(cx - bx1)),
                           np.maximum(np.abs(cy - by0), np.abs(cy - by1)))
            lb[a:a + block] = np.maximum(near.min(axis=1) - r[:, 0], 0.0)
            keep = near <= far.min(axis=1, keepdims=True) + 2 * r
            keep &= (self.cover[a:a + block] < 0)[:, None]
            i, j = np.nonzero(keep)
            rows.append(i + a)
            cols.append(j)
        return lb, np.concatenate(rows), np.concatenate(cols)

    def add_radius(self, radius: float, cells: CellGeometry) -> None:
        """Precompute, per cell, the segments within ``radius`` of it, so queries bounded by
        that radius (within_distance rules) test only those: a far smaller list than the
        one that must hold the nearest segment at any distance."""
        if not np.isfinite(radius) or radius in self.radius_lists or not len(self.x0):
            return
        todo = np.flatnonzero(self.cover < 0)
        rows, cols = self.tree.query(cells.polys[todo], predicate="dwithin", distance=radius)
        self.radius_lists[radius] = _csr(len(self.cover), todo[rows], cols)
        log.debug("layer %s: %d cell-segment pairs within %.0f m", self.name, len(cols), radius)

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
        elif len(active) and len(self.chunk_idx):
            for a in range(0, len(active), BLOCK):
                self._ring_nearest(m, active[a:a + BLOCK], cells, x, y)
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

    def _ring_nearest(self, m: Measure, pts: np.ndarray, cells: np.ndarray, x: np.ndarray,
                      y: np.ndarray) -> None:
        """Unbounded nearest via the cell's chunk list, pruned per point: a chunk whose box is
        farther than the smallest farthest-corner distance U of any chunk cannot hold the
        nearest segment (every segment of that chunk is within U)."""
        owner, chunk = expand(self.chunk_ptr, self.chunk_idx, cells[pts])
        if owner.size == 0:
            return
        near, far = box_distances(x[pts][owner], y[pts][owner],
                                  *(b[chunk] for b in self.chunk_box))
        counts = np.bincount(owner, minlength=len(pts))
        starts = np.cumsum(counts) - counts
        has = counts > 0
        bound = np.full(len(pts), np.inf)
        bound[has] = np.minimum.reduceat(far, starts[has])
        keep = near <= bound[owner]
        owner, seg = chunk_segments(owner[keep], self.chunk_start[chunk[keep]],
                                    self.chunk_len[chunk[keep]])
        self._nearest_segments(m, pts, owner, seg, x, y)

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
