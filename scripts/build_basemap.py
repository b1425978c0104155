#!/usr/bin/env python
"""Build the city's own basemap package, data/basemap/basemap.pmtiles, from its layers.

The package is what TILES=local serves when LOCAL_TILES is empty (docs/basemap.md): the
city outline, counties, urban core, rivers, the Yellow River, the canal and the county names
(at each county's representative point) from data/boundaries, cut into gzip'd Mapbox vector
tiles (zooms 7-14) with mapbox-vector-tile and written with the pmtiles package. The same
data gives byte-identical output, so the committed file can be checked:

    .venv/bin/python scripts/build_basemap.py            # writes data/basemap/basemap.pmtiles
    .venv/bin/python scripts/build_basemap.py --check    # fails if the file is out of date
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geoapp.services.basemap_build import (  # noqa: E402
    MAX_ZOOM,
    MIN_ZOOM,
    build_basemap,
    summary_text,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "data"), help="data folder (city.toml)")
    parser.add_argument("--out", default=None, help="output file (default: DATA/basemap/basemap.pmtiles)")
    parser.add_argument("--minzoom", type=int, default=MIN_ZOOM)
    parser.add_argument("--maxzoom", type=int, default=MAX_ZOOM)
    parser.add_argument("--check", action="store_true",
                        help="build into a temporary file and compare with the committed one")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(args.data) / "basemap" / "basemap.pmtiles"
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "basemap.pmtiles"
            build_basemap(args.data, fresh, minzoom=args.minzoom, maxzoom=args.maxzoom)
            same = out.is_file() and out.read_bytes() == fresh.read_bytes()
        print(f"{out}: {'up to date' if same else 'OUT OF DATE, run scripts/build_basemap.py'}")
        return 0 if same else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = build_basemap(args.data, out, minzoom=args.minzoom, maxzoom=args.maxzoom)
    print(f"{out}: {summary_text(summary)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
