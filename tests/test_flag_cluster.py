"""``geoapp flag`` on a Dask cluster: real ``dask scheduler`` and ``dask worker`` processes
(tests/daskutil.py), on the loopback interface and with the workers in network namespaces
of their own, joined to the scheduler by a bridge.

First the clusters themselves: tasks run in the worker processes started (their PIDs, their
addresses), and in the namespaces' network stacks, not the test's. Then the command: the
same ~20,000 synthetic sites (some beside rivers, some outside the city) as CSV, GeoParquet
and GeoPackage, screened in one process and with ``--cluster ADDRESS --partition-rows``,
give the same output row for row and the same counts, and the summary's ``workers`` names
both workers with the rows each screened; likewise with the workers in the namespaces, with
``--workers 2``, and when a worker is killed in the middle of a run.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from daskutil import (
    Cluster,
    NetnsLab,
    NetnsUnavailable,
    scheduler_state,
    start_cluster,
    where_task,
)
from serveutil import geoapp_command

from webutil import copy_database

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
GEOAPP = geoapp_command()

pytestmark = pytest.mark.backends("gpkg")  # the store is read by the command, not the cluster


def _own_netns() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def workers_env() -> dict[str, str]:
    """What the cluster's processes see: no geoapp setting (the instance is the command's)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GEOAPP_")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A scheduler and two workers on 127.0.0.1, shared by the module's tests (none kills
    one of them)."""
    with start_cluster(2, tmp_path_factory.mktemp("dask"), env=workers_env()) as c:
        yield c


@pytest.fixture(scope="module")
def lab() -> Iterator[NetnsLab]:
    """Two network namespaces on a bridge; skipped only where namespaces cannot be made."""
    made = NetnsLab(2)
    try:
        made.open()
    except NetnsUnavailable as e:
        pytest.skip(str(e))
    try:
        yield made
    finally:
        made.close()
        assert made.leftovers() == [], "namespaces or links were left behind"


@pytest.fixture(scope="module")
def netns_cluster(lab: NetnsLab, tmp_path_factory) -> Iterator[Cluster]:
    """The scheduler on the bridge address, worker i in namespace i."""
    with start_cluster(2, tmp_path_factory.mktemp("dask-netns"), lab=lab,
                       env=workers_env()) as c:
        yield c


def _where_each(c: Cluster) -> list[dict]:
    with c.client() as client:
        futures = [client.submit(where_task(), pure=False, workers=[w.address])
                   for w in c.workers]
        return client.gather(futures)


# -- the infrastructure --------------------------------------------------------------------
def test_cluster_infrastructure(cluster: Cluster) -> None:
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert len(set(cluster.addresses)) == 2
    where = _where_each(cluster)
    assert [w["address"] for w in where] == cluster.addresses
    assert [w["pid"] for w in where] == cluster.pids  # the processes started, no nanny's child
    assert os.getpid() not in cluster.pids
    assert {w["netns"] for w in where} == {_own_netns()}
    assert {w["hostname"] for w in where} == {socket.gethostname()}
    with cluster.client() as client:
        assert sorted(client.scheduler_info()["workers"]) == sorted(cluster.addresses)


def test_a_killed_worker_stays_dead_and_its_tasks_run_elsewhere(tmp_path: Path) -> None:
    with start_cluster(2, tmp_path / "dask") as c, c.client() as client:
        c.kill_worker(0)
        assert c.workers[0].proc.returncode == -9
        deadline = time.monotonic() + 30
        while c.addresses[0] in scheduler_state(client) and time.monotonic() < deadline:
            time.sleep(0.1)  # the scheduler notices the closed connection
        futures = [client.submit(where_task(), pure=False) for _ in range(4)]
        assert {w["pid"] for w in client.gather(futures)} == {c.pids[1]}
        assert list(scheduler_state(client)) == [c.addresses[1]]
    assert all(w.proc.poll() is not None for w in c.workers)
    assert c.scheduler.poll() is not None


def test_netns_infrastructure(lab: NetnsLab, netns_cluster: Cluster) -> None:
    assert netns_cluster.scheduler_address.startswith(f"tcp://{lab.bridge_ip}:")
    assert not lab.subnet.is_global and lab.subnet.prefixlen == 24
    where = _where_each(netns_cluster)
    assert [w["pid"] for w in where] == netns_cluster.pids
    for i, w in enumerate(where):
        assert w["address"].startswith(f"tcp://{lab.addresses[i]}:")
    inodes = [w["netns"] for w in where]
    assert len(set(inodes)) == 2 and _own_netns() not in inodes  # each in its own stack
    for ns, inode in zip(lab.namespaces, inodes, strict=True):
        assert os.stat(f"/run/netns/{ns}").st_ino == inode


def test_a_lab_that_fails_halfway_removes_what_it_made(lab: NetnsLab) -> None:
    half = NetnsLab(2, tag=f"f{lab.tag[1:]}")
    taken = f"gfns{half.tag}-1"  # the second namespace's name is taken: it fails there
    subprocess.run(["ip", "netns", "add", taken], check=True)
    try:
        with pytest.raises(RuntimeError, match=taken):
            half.open()
        assert half.leftovers() == [taken]  # the bridge, the first namespace and veth went
    finally:
        subprocess.run(["ip", "netns", "del", taken], check=True)
    assert half.leftovers() == []


# -- the feature: `geoapp flag --cluster/--workers` -----------------------------------------
#: The summary's counts, the same however the rows were screened.
COUNTS = ("rows", "flagged", "passed", "needs_info", "out_of_area", "bad_rows", "hits",
          "conditional_hits")
SITES = 20_000
#: Rows per partition on the cluster: several partitions per worker.
PART_ROWS = 2_000
#: The kill test's worker dies once this many of its 100 tasks were seen running, as soon
#: as a worker running one holds data no other has (the worst moment), else at ``KILL_BY``.
KILL_FROM, KILL_BY = 5, 40
INDUSTRIES = ("钢铁", "铸造", "焦化", "化工", "水泥", "家具", "商混站", "砖瓦", "木材加工", "食品",
              "机械", "纺织")


def synthetic_sites(n: int, seed: int = 11) -> pd.DataFrame:
    """``n`` sites spread over the city's extent, one in twenty a few hundred metres from a
    river vertex (hits), one in fifty outside the city (out of area); relocations with a new
    site, some coal, names with commas, quotes, line breaks and a leading ``=``, and a note
    only the first rows have (partitions without any)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = gpd.read_file(DATA / "boundaries" / "city.geojson").total_bounds
    lon, lat = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    rivers = gpd.read_file(DATA / "boundaries" / "rivers.geojson")
    vertices = shapely.get_coordinates(rivers.geometry.to_numpy())
    near = rng.random(n) < 0.05
    pick = vertices[rng.integers(0, len(vertices), near.sum())]
    lon[near] = pick[:, 0] + rng.uniform(-0.004, 0.004, near.sum())
    lat[near] = pick[:, 1] + rng.uniform(-0.004, 0.004, near.sum())
    away = rng.random(n) < 0.02
    lon[away] = x1 + rng.uniform(0.3, 1.0, away.sum())
    site_type = rng.choice(np.array(["enterprise", "livestock_farm", "scattered_workshop"],
                                    dtype=object), n, p=[0.5, 0.35, 0.15])
    industry = rng.choice(np.array(INDUSTRIES, dtype=object), n)
    industry[site_type == "livestock_farm"] = "畜禽养殖"
    status = np.where(site_type == "scattered_workshop",
                      rng.choice(np.array(["found", "banned", "rectifying"], dtype=object), n),
                      None)
    classification = rng.choice(np.array(["relocate", "upgrade", "close"], dtype=object), n)
    reloc = (site_type == "enterprise") & (classification == "relocate")
    names = np.array([f"场点{i:06d}" for i in range(n)], dtype=object)
    odd = rng.choice(n, 60, replace=False)
    for k, i in enumerate(odd):
        names[i] = ('某厂, "东区"', "多行\n名称", "=1+1", "Café ünïcode")[k % 4] + f" {i}"
    note = np.full(n, None, dtype=object)
    note[:40] = [f"备注 {i}" for i in range(40)]
    return pd.DataFrame({
        "site_id": np.arange(1, n + 1), "name": names, "site_type": site_type,
        "industry": industry, "status": status, "classification": classification,
        "lon": lon.round(6), "lat": lat.round(6),
        "new_lon": np.where(reloc, rng.uniform(x0, x1, n).round(6), np.nan),
        "new_lat": np.where(reloc, rng.uniform(y0, y1, n).round(6), np.nan),
        "fuel": np.where(rng.random(n) < 0.05, "coal", None).astype(object),
        "note": note})


def write_sites(sites: pd.DataFrame, path: Path) -> Path:
    """``sites`` as CSV, GeoParquet (point geometry, row groups of 1,000 rows) or
    GeoPackage; the spatial formats carry the coordinates as the geometry only."""
    if path.suffix == ".csv":
        sites.to_csv(path, index=False)
        return path
    gdf = gpd.GeoDataFrame(sites.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy(sites["lon"], sites["lat"]), crs=4326)
    if path.suffix == ".parquet":
        gdf.to_parquet(path, row_group_size=1_000)
        assert pq.ParquetFile(path).metadata.num_row_groups == -(-len(sites) // 1_000)
    else:
        pyogrio.write_dataframe(gdf, path, driver="GPKG")
    return path


def read_output(path: Path) -> pd.DataFrame:
    """A CSV or GeoPackage output as a frame (CSV cells as text, geometry as WKB)."""
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    df = pd.DataFrame(pyogrio.read_dataframe(path))
    df["geometry"] = shapely.to_wkb(df["geometry"].to_numpy())
    return df


def _same(x, y) -> bool:
    """Equal values, NaN equal to NaN, also inside lists and structs."""
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return type(x) is type(y) and x == y


def _first_difference(col: str, a: list, b: list) -> None:
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if not _same(x, y)]
    if diff:
        i = diff[0]
        pytest.fail(f"column {col!r} differs first at row {i}: {a[i]!r} (single) != "
                    f"{b[i]!r} (cluster); {len(diff)} rows differ", pytrace=False)


def assert_same_rows(single: Path, clustered: Path) -> None:
    """The two outputs hold the same columns (and types), the same values, in the same
    order; a difference is named by its column and first row."""
    if single.suffix == ".parquet":  # Arrow tables: list and struct columns compared as such
        a, b = pq.read_table(single), pq.read_table(clustered)
        assert b.column_names == a.column_names
        assert b.schema.equals(a.schema), f"{b.schema}\n!=\n{a.schema}"
        assert b.num_rows == a.num_rows
        for col in a.column_names:
            if not b.column(col).equals(a.column(col)):
                _first_difference(col, a.column(col).to_pylist(), b.column(col).to_pylist())
        return
    a, b = read_output(single), read_output(clustered)
    assert list(b.columns) == list(a.columns)
    assert len(b) == len(a)
    for col in a.columns:
        _first_difference(col, a[col].astype(object).tolist(), b[col].astype(object).tolist())
    pd.testing.assert_frame_equal(b, a, check_dtype=True)


def run_flag(env: dict[str, str], src: Path, dst: Path, *extra: str,
             timeout: float = 300) -> dict:
    done = subprocess.run([str(GEOAPP), "flag", str(src), "-o", str(dst), *extra], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n" \
                                 f"{done.stderr[-5000:]}"
    return json.loads(done.stdout)


def assert_same_summary(single: dict, clustered: dict, addresses: list[str]) -> None:
    assert {k: clustered[k] for k in COUNTS} == {k: single[k] for k in COUNTS}
    workers = clustered["workers"]
    assert sorted(workers) == sorted(addresses), workers  # both workers screened rows
    assert all(rows > 0 for rows in workers.values()), workers
    assert sum(workers.values()) == single["rows"], workers


@pytest.fixture(scope="module")
def flag_env(jiaozuo_db, tmp_path_factory) -> dict[str, str]:
    """The environment of a ``geoapp flag`` on a private copy of the Jiaozuo database."""
    inst = copy_database(jiaozuo_db, tmp_path_factory.mktemp("flag-instance")).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOAPP_")}
    # one instance for the module: the first command builds the engine, the others load it
    return {**env, "GEOAPP_INSTANCE_PATH": str(inst), "GEOAPP_ENGINE_CACHE": "true"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """The same ``SITES`` sites as CSV, GeoParquet and GeoPackage."""
    folder = tmp_path_factory.mktemp("flag-inputs")
    sites = synthetic_sites(SITES)
    return {ext: write_sites(sites, folder / f"sites.{ext}") for ext in ("csv", "parquet",
                                                                          "gpkg")}


@pytest.fixture(scope="module")
def single(flag_env, inputs, tmp_path_factory) -> Callable[[str], tuple[Path, dict]]:
    """The single-process answer for an input format (output in the same format), run once:
    what every cluster run must give, row for row."""
    folder = tmp_path_factory.mktemp("flag-single")
    done: dict[str, tuple[Path, dict]] = {}

    def answer(ext: str) -> tuple[Path, dict]:
        if ext not in done:
            out = folder / f"out.{ext}"
            summary = run_flag(flag_env, inputs[ext], out)
            assert summary["rows"] == SITES and summary["bad_rows"] == 0
            assert min(summary[k] for k in ("flagged", "passed", "needs_info",
                                            "out_of_area")) > 0, summary
            done[ext] = out, summary
        return done[ext]

    return answer


@pytest.mark.parametrize("ext", ["csv", "parquet", "gpkg"])
def test_flag_on_a_cluster_gives_the_single_process_answer(ext, cluster, flag_env, inputs,
                                                           single, tmp_path) -> None:
    one, one_summary = single(ext)
    out = tmp_path / f"out.{ext}"
    summary = run_flag(flag_env, inputs[ext], out, "--cluster", cluster.scheduler_address,
                       "--partition-rows", str(PART_ROWS))
    assert_same_summary(one_summary, summary, cluster.addresses)
    assert_same_rows(one, out)


def test_flag_with_workers_in_other_network_namespaces(lab, netns_cluster, flag_env, inputs,
                                                       single, tmp_path) -> None:
    """The workers reach the scheduler and the shared files (GeoParquet row groups) across
    the bridge only: the answer is the single process's, and the summary names their
    namespace addresses."""
    one, one_summary = single("parquet")
    out = tmp_path / "out.parquet"
    summary = run_flag(flag_env, inputs["parquet"], out, "--cluster",
                       netns_cluster.scheduler_address, "--partition-rows", str(PART_ROWS))
    assert_same_summary(one_summary, summary, netns_cluster.addresses)
    assert {a.split("://")[1].rsplit(":", 1)[0] for a in summary["workers"]} == \
        set(lab.addresses)
    assert_same_rows(one, out)


def _group_alive(pgid: int, grace: float) -> bool:
    """Whether process group ``pgid`` still has a process after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)


def test_flag_on_a_local_cluster_of_its_own(flag_env, inputs, single, tmp_path) -> None:
    """``--workers 2`` starts two worker processes, uses both, and leaves none behind."""
    one, one_summary = single("csv")
    out = tmp_path / "out.csv"
    cmd = [str(GEOAPP), "flag", str(inputs["csv"]), "-o", str(out), "--workers", "2",
           "--partition-rows", str(PART_ROWS)]
    proc = subprocess.Popen(cmd, env=flag_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        left = _group_alive(proc.pid, grace=5)  # a worker the command left behind
        if left:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0, stderr[-5000:]
    assert not left, "the command left processes of its cluster running"
    summary = json.loads(stdout)
    assert {k: summary[k] for k in COUNTS} == {k: one_summary[k] for k in COUNTS}
    assert len(summary["workers"]) == 2 and all(r > 0 for r in summary["workers"].values())
    assert sum(summary["workers"].values()) == SITES
    assert_same_rows(one, out)


def test_a_worker_killed_mid_run_changes_nothing(flag_env, tmp_path) -> None:
    """100 partitions on two workers; in the middle of the run a worker with tasks running is
    killed (SIGKILL, no nanny to restart it): at the worst moment, when it holds data no
    other worker has and no task can compute again, if that happens. The command still
    succeeds, the survivor screens what was lost, and the answer is the single process's; and while tasks ran before the kill no worker
    held the only copy of such data (whose loss, at another moment, would have failed the
    run)."""
    src = write_sites(synthetic_sites(100_000, seed=5), tmp_path / "big.csv")
    one = tmp_path / "one.csv"
    one_summary = run_flag(flag_env, src, one)
    out = tmp_path / "cluster.csv"
    with start_cluster(2, tmp_path / "dask", env=workers_env()) as c, c.client() as client:
        proc = subprocess.Popen([str(GEOAPP), "flag", str(src), "-o", str(out), "--cluster",
                                 c.scheduler_address, "--partition-rows", "1000"],
                                env=flag_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            seen: set[str] = set()  # the tasks seen running (a lower bound of the progress)
            exposed = set()  # workers that alone held data no task can compute again
            while True:
                assert proc.poll() is None, "the command ended before a worker was killed"
                assert time.monotonic() < deadline, "no task ran in 120 s"
                state = scheduler_state(client)
                busy = [a for a, w in state.items() if w["processing"]]
                seen.update(k for a in busy for k in state[a]["processing"])
                worst = [a for a in busy if state[a]["irreplaceable"]]
                exposed.update(worst)
                if busy and (len(seen) >= KILL_FROM and worst or len(seen) >= KILL_BY):
                    break
                time.sleep(0.02)
            victim = max(busy, key=lambda a: state[a]["irreplaceable"])
            c.kill_worker(c.addresses.index(victim))
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        survivor = next(a for a in c.addresses if a != victim)
        assert list(scheduler_state(client)) == [survivor]
    lonely = (f"; while tasks ran, before the kill, {sorted(exposed)} alone held data the "
              "cluster cannot compute again (scattered, one replica): losing it loses that")
    assert proc.returncode == 0, stderr[-5000:] + (lonely if exposed else "")
    assert not exposed, lonely[2:]  # the kill was lucky: another moment would have failed
    summary = json.loads(stdout)
    assert {k: summary[k] for k in COUNTS} == {k: one_summary[k] for k in COUNTS}
    assert survivor in summary["workers"] and set(summary["workers"]) <= {victim, survivor}
    assert sum(summary["workers"].values()) == 100_000
    assert_same_rows(one, out)
