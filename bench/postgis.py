"""The flagging workload of bench_flag.py in PostGIS, side by side with the engine.

    .venv/bin/python bench/postgis.py [--sizes 10000,100000,1000000]

Needs PostgreSQL with PostGIS (Debian: postgresql-15 postgresql-15-postgis-3) and psycopg
(the ``bench`` optional dependencies). Starts its own throw-away cluster in a temporary
directory, listening on 127.0.0.1 only on a free port, with ``jit = off``; loads the layers in
the engine's metric CRS, zones and lines cut with ST_Subdivide, GiST indexes; answers every
rule with ST_DWithin / ST_Intersects / KNN; stops the cluster and deletes it. Prints a clear
message and exits 0 when PostgreSQL, PostGIS or psycopg is missing.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_flag  # noqa: E402  (sibling script)


def find_pg_bin() -> Path | None:
    for cand in [shutil.which("initdb"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))]:
        if cand:
            return Path(cand).resolve().parent
    return None


def has_postgis(pg_bin: Path) -> bool:
    try:
        share = subprocess.run([str(pg_bin / "pg_config"), "--sharedir"], check=True,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        version = pg_bin.parent.name
        share = f"/usr/share/postgresql/{version}"
    return bool(glob.glob(f"{share}/extension/postgis.control"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A private PostgreSQL cluster; as root it runs as the ``postgres`` system user."""

    def __init__(self, pg_bin: Path) -> None:
        self.bin = pg_bin
        self.dir = Path(tempfile.mkdtemp(prefix="geoapp-pg-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)
            os.chmod(self.dir, 0o700)

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, user=self.user,
                       capture_output=True, text=True, cwd=self.dir)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "bench", "--auth=trust",
                  "-E", "UTF8", "--no-locale")
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c jit=off "
                f"-c unix_socket_directories={self.dir} -c shared_buffers=256MB "
                "-c work_mem=64MB -c fsync=off -c synchronous_commit=off")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", opts, "-l",
                  str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="bench",
                               dbname="postgres", autocommit=True)


def _sql_list(values) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in sorted(values))


def filter_sql(rule, columns: set[str]) -> str:
    """The rule's applies_to as a SQL condition on the sites table."""
    ors = []
    for clause in rule.applies_to.clauses:
        ands = [f"s.{c.attr} IN ({_sql_list(c.values)})" if c.attr in columns else "false"
                for c in clause]
        ors.append("(" + (" AND ".join(ands) or "true") + ")")
    return "(" + " OR ".join(ors) + ")"


def load_layers(conn, layers, rules, engine, srid: int) -> float:
    import shapely

    t0 = time.perf_counter()
    for name in dict.fromkeys(r.layer for r in rules):
        geoms = engine.projected.get(name)
        table = "l_" + "".join(ch if ch.isalnum() else "_" for ch in name)
        feats = engine.prepared.features[name]
        conn.execute(f"DROP TABLE IF EXISTS {table}_raw; DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table}_raw (fid int, geom geometry)")
        with conn.cursor().copy(f"COPY {table}_raw (fid, geom) FROM STDIN") as cp:
            for i, g in enumerate(geoms if geoms is not None else []):
                if g is not None and not g.is_empty:
                    cp.write_row((i, shapely.to_wkb(g, hex=True, include_srid=False)))
        conn.execute(f"""CREATE TABLE {table} AS
            SELECT fid, ST_Subdivide(ST_Segmentize(ST_SetSRID(geom, {srid}), 1000), 64) AS geom
            FROM {table}_raw""")
        conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")
        conn.execute(f"ANALYZE {table}")
        conn.execute(f"CREATE TABLE {table}_names AS SELECT * FROM (VALUES "
                     + (", ".join(f"({i}, {_sql_list([v])})" for i, v in enumerate(feats['id']))
                        or "(0, 'none')") + ") AS t(fid, id)")
    return time.perf_counter() - t0


def load_sites(conn, s, engine, srid: int) -> float:
    t0 = time.perf_counter()
    x, y = engine.prepared.to_metric.transform(s["lon"], s["lat"])
    nx, ny = engine.prepared.to_metric.transform(np.nan_to_num(s["new_lon"], nan=0.0),
                                   np.nan_to_num(s["new_lat"], nan=0.0))
    has_new = np.isfinite(s["new_lon"])
    conn.execute("DROP TABLE IF EXISTS sites")
    conn.execute("""CREATE TABLE sites (row int, site_type text, industry text, status text,
        classification text, fuel text, x float8, y float8, nx float8, ny float8)""")
    with conn.cursor().copy("COPY sites FROM STDIN") as cp:
        for i in range(len(x)):
            cp.write_row((i, s["site_type"][i], s["industry"][i], s["status"][i],
                          s["classification"][i], s["fuel"][i], x[i], y[i],
                          nx[i] if has_new[i] else None, ny[i] if has_new[i] else None))
    conn.execute(f"""ALTER TABLE sites ADD COLUMN geom geometry(Point, {srid}),
        ADD COLUMN new_geom geometry(Point, {srid})""")
    conn.execute(f"""UPDATE sites SET geom = ST_SetSRID(ST_MakePoint(x, y), {srid}),
        new_geom = CASE WHEN nx IS NULL THEN NULL
                        ELSE ST_SetSRID(ST_MakePoint(nx, ny), {srid}) END""")
    conn.execute("CREATE INDEX ON sites USING gist (geom)")
    conn.execute("ANALYZE sites")
    return time.perf_counter() - t0


def run_rules(conn, rules) -> tuple[float, int]:
    cols = {"site_type", "industry", "status", "classification", "fuel"}
    t0 = time.perf_counter()
    total = 0
    for rule in rules:
        table = "l_" + "".join(ch if ch.isalnum() else "_" for ch in rule.layer)
        geom = "s.new_geom" if rule.applies_to.point == "new_site" else "s.geom"
        where = f"{filter_sql(rule, cols)} AND {geom} IS NOT NULL"
        if rule.test == "within_distance":
            sql = f"""SELECT DISTINCT ON (s.row) s.row, l.fid, ST_Distance({geom}, l.geom)
                FROM sites s JOIN {table} l ON ST_DWithin({geom}, l.geom, {rule.distance_m})
                WHERE {where} ORDER BY s.row, 3"""
        elif rule.test == "inside":
            sql = f"""SELECT DISTINCT ON (s.row) s.row, l.fid FROM sites s
                JOIN {table} l ON ST_Intersects({geom}, l.geom) WHERE {where} ORDER BY s.row"""
        else:
            sql = f"""SELECT s.row, n.fid, n.d FROM sites s CROSS JOIN LATERAL (
                    SELECT l.fid, ST_Distance({geom}, l.geom) AS d FROM {table} l
                    ORDER BY l.geom <-> {geom} LIMIT 1) n
                WHERE {where} AND NOT EXISTS (SELECT 1 FROM {table} z
                                              WHERE ST_Intersects({geom}, z.geom))"""
        total += len(conn.execute(sql).fetchall())
    return time.perf_counter() - t0, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    args = ap.parse_args()
    pg_bin = find_pg_bin()
    if pg_bin is None or not has_postgis(pg_bin):
        print("PostgreSQL with PostGIS is not installed; skipping the PostGIS comparison "
              "(Debian: apt-get install postgresql-15 postgresql-15-postgis-3).")
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("psycopg is not installed; skipping (pip install 'psycopg[binary]').")
        return
    from pyproj import CRS

    from geoapp.spatial.engine import RuleEngine

    layers, sites, rules, metric = bench_flag.load_city()
    t0 = time.perf_counter()
    # built as the service builds it: the layers the rules read, the grid over the city
    engine = RuleEngine.build(bench_flag.rule_layers(layers, rules), rules, metric, sites=sites,
                              extent=tuple(layers["city"].total_bounds))
    build_s = time.perf_counter() - t0
    srid = CRS(metric).to_epsg()
    cluster = Cluster(pg_bin)
    try:
        cluster.start()
        with cluster.connect() as conn:
            conn.execute("CREATE EXTENSION postgis")
            version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
            layer_s = load_layers(conn, layers, rules, engine, srid)
            print(f"PostGIS {version}; layers loaded and subdivided in {layer_s:.2f} s; "
                  f"engine build {build_s:.2f} s")
            print(f"{'sites':>9} {'engine s':>9} {'hits':>8} {'pg query s':>10} {'pg hits':>8} "
                  f"{'pg e2e s':>9} {'query x':>8} {'e2e x':>6}")
            for n in (int(v) for v in args.sizes.split(",")):
                s = bench_flag.synthetic_sites(n, layers["city"].total_bounds)
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    hits = len(engine.flag(**s))
                    times.append(time.perf_counter() - t0)
                eng = float(np.median(times))
                load_s = load_sites(conn, s, engine, srid)
                query_s, pg_hits = run_rules(conn, rules)
                print(f"{n:>9} {eng:>9.3f} {hits:>8} {query_s:>10.2f} {pg_hits:>8} "
                      f"{load_s + query_s:>9.2f} {query_s / eng:>8.1f} "
                      f"{(load_s + query_s) / eng:>6.1f}", flush=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
