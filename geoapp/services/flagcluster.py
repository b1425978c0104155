"""A batch flag on a Dask distributed cluster: the partitions flagged by the workers.

The client sends the rule engine to every worker once (a worker plugin, ``EngineOnWorkers``:
a worker that joins later gets it from the scheduler), then one task per partition
(``services.flagparts``): the worker reads its partition from the input's path itself (a
CSV byte range, Parquet row groups; formats that cannot be read piecewise travel with the
task), flags it with the same ``flagfile.flag_part`` the single process runs, and returns
its output rows. The client takes the answers in input order and writes them, keeping a
window of tasks in flight so that answers waiting to be written stay bounded. A worker lost
mid-run is the scheduler's business: its tasks run again elsewhere (``allowed-failures``
and ``retries``), and as every task is a pure function of its partition the answer is the
same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from distributed.diagnostics.plugin import WorkerPlugin

from geoapp.domain.errors import InvalidInput

if TYPE_CHECKING:
    from geoapp.services.flagfile import FlagJob, PartResult
    from geoapp.services.flagparts import Part
    from geoapp.spatial.engine import RuleEngine

log = logging.getLogger(__name__)

#: Seconds to wait for the scheduler before telling the user it is not there.
CONNECT_TIMEOUT_S = 20
#: Times a task may be run again after an error on a worker (a lost worker is counted by
#: the scheduler apart: ``distributed.scheduler.allowed-failures``).
RETRIES = 2


class EngineOnWorkers(WorkerPlugin):
    """The rule engine, sent with the plugin to every worker of the cluster (and to any
    that joins later: the scheduler keeps registered plugins) and unpickled there once.

    A plugin rather than scattered data: Dask's memory manager keeps a single copy of
    scattered data, which a lost worker takes with it; every worker holds its own plugin."""

    def __init__(self, name: str, payload: bytes) -> None:
        self.name = name
        self.payload: bytes | None = payload
        self.engine: RuleEngine | None = None

    def setup(self, worker) -> None:
        self.engine = pickle.loads(self.payload)  # noqa: S301 - our own engine, just sent
        self.payload = None  # the engine is what this worker keeps

    def teardown(self, worker) -> None:
        self.engine = None


def _run(plugin: str, job: FlagJob, part: Part) -> PartResult:
    """The task: one partition, on a worker."""
    from distributed import get_worker  # noqa: PLC0415 - runs on the worker

    from geoapp.services.flagfile import flag_part  # noqa: PLC0415

    eng = get_worker().plugins[plugin].engine
    try:
        result = flag_part(eng, job, part)
    except FileNotFoundError as exc:
        raise InvalidInput(f"Dask 工作进程 {get_worker().address} 读不到输入文件 The worker cannot "
                           f"read {exc.filename}: put the input on a path every worker sees "
                           "(a shared folder), under the same name") from None
    if isinstance(result.data, list):  # one bytes object travels; a list of pieces would not
        result.data = b"".join(result.data)
    result.worker = get_worker().address
    return result


def _code() -> str:
    """The fingerprint of the geoapp code and libraries a process runs (on a worker)."""
    from geoapp.services.engine_cache import code_fingerprint  # noqa: PLC0415

    return code_fingerprint()


def check_workers(client) -> int:
    """The number of workers, once each is known to run the same geoapp code as this
    process (an older worker would answer with older rules or measures)."""
    mine = _code()
    theirs = client.run(_code)
    other = sorted(addr for addr, code in theirs.items() if code != mine)
    if other:
        raise InvalidInput(f"Dask 工作进程的 geoapp 版本不同 Workers run other geoapp code or "
                           f"libraries than this command: {', '.join(other)}; install the same "
                           "release on every worker and restart them")
    return len(theirs)


def connect(cluster: str | None, workers: int | None):
    """(client, local cluster or None): a client of the scheduler at ``cluster``, or of a
    new local cluster of ``workers`` single-threaded worker processes."""
    from distributed import Client, LocalCluster  # noqa: PLC0415 - only cluster runs need it

    if workers:
        if workers < 1:
            raise InvalidInput("--workers must be at least 1")
        # its processes' INFO lines (workers started, closed…) are not for the user
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        logging.getLogger("distributed").setLevel(logging.WARNING)
        # loopback only, any free port (the scheduler's HTTP endpoints always start)
        local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                             host="127.0.0.1", dashboard_address="127.0.0.1:0")
        return Client(local), local
    try:
        client = Client(cluster, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InvalidInput(f"无法连接 Dask 调度器 Cannot reach the Dask scheduler at {cluster}: "
                           f"{exc}") from None
    except Exception:  # noqa: BLE001 - e.g. an HTTP server's answer read as a Dask frame
        raise InvalidInput(f"该地址不是 Dask 调度器 Not a Dask scheduler at {cluster} (give the "
                           "scheduler's port, usually 8786, not the dashboard's)") from None
    return client, None


def flag_on_cluster(eng: RuleEngine, job: FlagJob, parts: list[Part], *,
                    cluster: str | None = None, workers: int | None = None,
                    ) -> Iterator[PartResult]:
    """The partitions' answers in input order, flagged on the cluster."""
    client, local = connect(cluster, workers)
    plugin = None
    try:
        if not client.scheduler_info(n_workers=-1).get("workers"):
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
            except TimeoutError:
                raise InvalidInput(f"Dask 集群没有工作进程 The Dask cluster at {cluster} has no "
                                   f"worker (waited {CONNECT_TIMEOUT_S} s)") from None
        n_workers = check_workers(client)
        log.info("flagging %d partitions on %d Dask workers", len(parts), n_workers)
        run = secrets.token_hex(4)
        plugin = f"geoapp-engine-{run}"
        client.register_plugin(EngineOnWorkers(plugin, pickle.dumps(eng, protocol=5)))
        window = max(4, 2 * n_workers)
        pending: deque = deque()
        todo = iter(parts)

        def submit_next() -> None:
            part = next(todo, None)
            if part is not None:
                pending.append(client.submit(_run, plugin, job, part, pure=False,
                                             retries=RETRIES,
                                             key=f"geoapp-flag-{run}-{part.index}"))

        for _ in range(window):
            submit_next()
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            if result.bad_rows and not job.opts.skip_bad and not job.check_only:
                job = replace(job, check_only=True)  # refused: only count the bad rows
            submit_next()
            yield result
    finally:
        if plugin:
            with contextlib.suppress(Exception):  # the cluster may be gone: nothing to free
                client.unregister_worker_plugin(plugin)
        client.close()
        if local is not None:
            local.close()
