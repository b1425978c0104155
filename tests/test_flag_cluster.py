"""``geoapp flag`` on a Dask cluster: real ``dask scheduler`` and ``dask worker`` processes
(tests/daskutil.py), on the loopback interface and with the workers in network namespaces
of their own, joined to the scheduler by a bridge.

First the clusters themselves: tasks run in the worker processes started (their PIDs, their
addresses), and in the namespaces' network stacks, not the test's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daskutil import (
    Cluster,
    NetnsLab,
    NetnsUnavailable,
    scheduler_state,
    start_cluster,
    where_task,
)

pytestmark = pytest.mark.backends("gpkg")  # the store is read by the command, not the cluster


def _own_netns() -> int:
    return os.stat("/proc/self/ns/net").st_ino


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A scheduler and two workers on 127.0.0.1, shared by the module's tests (none kills
    one of them)."""
    with start_cluster(2, tmp_path_factory.mktemp("dask")) as c:
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
    with start_cluster(2, tmp_path_factory.mktemp("dask-netns"), lab=lab) as c:
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
