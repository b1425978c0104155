"""Every bench in turn (``make bench``): each ``bench/bench_*.py`` and ``bench/postgis.py``.

    .venv/bin/python bench/run_all.py [--full] [--only NAME] [--dry-run]

By default each script runs with the short options of ``QUICK`` (fewer sizes, rounds and
seconds; a script not listed there runs with its own defaults), so the whole set takes
minutes rather than the better part of an hour; ``--full`` runs each with its own defaults,
the settings of the figures in docs/. Each script prints its own figures as it goes; at the
end a summary gives each script's time and exit status, and the exit status is 1 if any
failed. Scripts that need what the machine lacks (PostgreSQL, wrk, Chromium) say so
themselves. ``bench/load.py`` (the production soak, docs/operations.md) is left to be run
on its own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Short options per script: each is one the script's argparse declares.
QUICK: dict[str, list[str]] = {
    "bench_backends.py": ["--quick"],
    "bench_check_http.py": ["--seconds", "5"],
    "bench_check_under_uploads.py": ["--seconds", "5", "--runs", "1"],
    "bench_crs.py": [],
    "bench_flag.py": ["--sizes", "10000", "--runs", "1", "--checks", "1000"],
    "bench_flag_file.py": ["--rows", "100000", "--runs", "1"],
    "bench_flag_scale.py": ["--rows", "200000", "--partition-rows", "50000"],
    "bench_maps.py": ["--only", "relocation"],
    "bench_ogc.py": ["--sites", "0", "10000", "--repeat", "3"],
    "bench_parcel_page.py": ["--vertices", "20000"],
    "bench_parcels.py": ["--runs", "5", "--parcels", "200"],
    "bench_weekly.py": ["--runs", "1"],
    "postgis.py": ["--sizes", "10000"],
}


def scripts() -> list[Path]:
    """The benches, in name order: every ``bench_*.py``, then ``postgis.py``."""
    return [*sorted(HERE.glob("bench_*.py")), HERE / "postgis.py"]


def command(script: Path, *, full: bool) -> list[str]:
    return [sys.executable, str(script), *([] if full else QUICK.get(script.name, []))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true",
                    help="each script with its own defaults (long: the figures of docs/)")
    ap.add_argument("--only", help="run only the scripts whose name contains this text")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    args = ap.parse_args()
    chosen = [s for s in scripts() if not args.only or args.only in s.name]
    if not chosen:
        ap.error(f"no bench script matches {args.only!r}")
    results: list[tuple[str, int, float]] = []
    for script in chosen:
        cmd = command(script, full=args.full)
        shown = " ".join(["python", f"bench/{script.name}", *cmd[2:]])
        if args.dry_run:
            print(shown)
            continue
        print(f"\n=== {shown}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=HERE.parent, check=False).returncode
        results.append((script.name, code, time.perf_counter() - started))
    if args.dry_run:
        return 0
    print("\n=== summary")
    for name, code, seconds in results:
        print(f"{name:32s} {'ok' if code == 0 else f'FAILED (exit {code})':18s} {seconds:7.1f} s")
    return 1 if any(code != 0 for _, code, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
