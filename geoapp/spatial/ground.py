"""From projected distance to distance on the ground.

A Gauss-Krüger zone is 3° wide; at its edge the scale factor reaches ~1.00023, so 2 km
measured on the projection is ~0.46 m longer than on the ground. For a conformal projection
the scale factor k depends only on position, not direction, and varies smoothly: a quadratic
in (x, y) fitted to PROJ's own factors over the city reproduces it to ~1e-8. The ground
length of a short straight piece is then its projected length divided by k at its midpoint
(error ~L³/24R², 0.1 m at 50 km). When the projection is not conformal or the fit is poor,
the engine falls back to geodesic distances between the point and its nearest point
(``pyproj.Geod.inv``), which is exact but costs more per call.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

import numpy as np
from pyproj import CRS, Proj, Transformer

from geoapp.spatial.index import Measure

log = logging.getLogger(__name__)

MAX_FIT_ERROR = 1e-7
#: Coordinates enter the fit as (x - x0) / UNIT, (y - y0) / UNIT.
UNIT = 1e5


class GroundScale:
    """A fitted scale-factor surface of the metric CRS over a lon/lat extent."""

    def __init__(self, metric_crs: str, bounds: tuple[float, float, float, float],
                 forward) -> None:
        lon, lat = np.meshgrid(np.linspace(bounds[0], bounds[2], 25),
                               np.linspace(bounds[1], bounds[3], 25))
        lon, lat = lon.ravel(), lat.ravel()
        self.ok = False
        try:
            factors = Proj(CRS(metric_crs)).get_factors(lon, lat)
        except Exception as exc:  # not a projection PROJ can give factors for
            log.info("no scale factors for %s (%s); using geodesic distances", metric_crs, exc)
            return
        k, h = np.asarray(factors.parallel_scale), np.asarray(factors.meridional_scale)
        x, y = forward(lon, lat)
        good = np.isfinite(k) & np.isfinite(h) & np.isfinite(x) & np.isfinite(y)
        if good.sum() < 10 or np.abs(k - h)[good].max() > MAX_FIT_ERROR:
            log.info("%s is not conformal over the city; using geodesic distances", metric_crs)
            return
        self.x0, self.y0 = float(np.mean(x[good])), float(np.mean(y[good]))
        X, Y = (x[good] - self.x0) / UNIT, (y[good] - self.y0) / UNIT
        design = np.stack([np.ones_like(X), X, Y, X * X, X * Y, Y * Y], 1)
        self.coef = np.linalg.lstsq(design, k[good], rcond=None)[0]
        self.coef_list = [float(c) for c in self.coef]  # plain floats, for scalar code
        self.max_error = float(np.abs(design @ self.coef - k[good]).max())
        self.ok = self.max_error < MAX_FIT_ERROR
        log.debug("scale fit for %s: k in [%.6f, %.6f], max error %.1e", metric_crs,
                  k[good].min(), k[good].max(), self.max_error)

    def ground(self, px, py, nx, ny, d):
        """Projected distance ``d`` from (px, py) to (nx, ny), as metres on the ground.

        ``RuleEngine._measure_point`` repeats these operations on plain floats, in the same
        order, so the single-point and batch paths give the same figures to the bit."""
        c0, c1, c2, c3, c4, c5 = self.coef
        X = ((px + nx) * 0.5 - self.x0) / UNIT
        Y = ((py + ny) * 0.5 - self.y0) / UNIT
        return d / (c0 + X * (c1 + c3 * X + c4 * Y) + Y * (c2 + c5 * Y))


class GroundDistance:
    """Ground distances from points to their measured nearest points (``index.Measure``):
    the fitted scale factor where it holds (``GroundScale``), else geodesics."""

    def __init__(self, metric_crs: str, geographic_crs: Any,
                 bounds: tuple[float, float, float, float], forward) -> None:
        self.metric_crs = metric_crs
        self.geographic_crs = CRS(geographic_crs)
        self.scale = GroundScale(metric_crs, bounds, forward)
        self.geod = CRS(metric_crs).get_geod()

    @cached_property
    def inverse(self) -> Transformer:
        """Metric CRS to lon/lat: only the geodesic fallback needs it."""
        return Transformer.from_crs(self.metric_crs, self.geographic_crs, always_xy=True)

    def __call__(self, lon, lat, x, y, m: Measure) -> np.ndarray:
        """Ground distance from each point (lon/lat and metric x/y) to its measured nearest
        point: 0 inside, inf where nothing was measured."""
        out = np.where(m.inside, 0.0, np.inf)
        todo = np.flatnonzero((m.feat >= 0) & ~m.inside)
        if len(todo) == 0:
            return out
        if self.scale.ok:
            out[todo] = self.scale.ground(np.asarray(x)[todo], np.asarray(y)[todo],
                                          m.nx[todo], m.ny[todo], m.dist[todo])
        else:
            nlon, nlat = self.inverse.transform(m.nx[todo], m.ny[todo])
            out[todo] = self.geod.inv(np.asarray(lon)[todo], np.asarray(lat)[todo],
                                      nlon, nlat)[2]
        return out
