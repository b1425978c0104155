"""A batch flag on a Dask distributed cluster: the partitions flagged by the workers.

The client sends the rule engine to every worker once (``Client.scatter(broadcast=True)``;
a worker that joins later gets it from a peer), then one task per partition
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

import logging
import secrets
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

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


def _run(eng: RuleEngine, job: FlagJob, part: Part) -> PartResult:
    """The task: one partition, on a worker."""
    from distributed import get_worker  # noqa: PLC0415 - runs on the worker

    from geoapp.services.flagfile import flag_part  # noqa: PLC0415

    result = flag_part(eng, job, part)
    if isinstance(result.data, list):  # one bytes object travels; a list of pieces would not
        result.data = b"".join(result.data)
    result.worker = get_worker().address
    return result


def connect(cluster: str | None, workers: int | None):
    """(client, local cluster or None): a client of the scheduler at ``cluster``, or of a
    new local cluster of ``workers`` single-threaded worker processes."""
    from distributed import Client, LocalCluster  # noqa: PLC0415 - only cluster runs need it

    if workers:
        if workers < 1:
            raise InvalidInput("--workers must be at least 1")
        local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                             dashboard_address=None)
        return Client(local), local
    try:
        client = Client(cluster, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InvalidInput(f"无法连接 Dask 调度器 Cannot reach the Dask scheduler at {cluster}: "
                           f"{exc}") from None
    return client, None


def flag_on_cluster(eng: RuleEngine, job: FlagJob, parts: list[Part], *,
                    cluster: str | None = None, workers: int | None = None,
                    ) -> Iterator[PartResult]:
    """The partitions' answers in input order, flagged on the cluster."""
    client, local = connect(cluster, workers)
    try:
        n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        if not n_workers:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
            n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        log.info("flagging %d partitions on %d Dask workers", len(parts), n_workers)
        engine = client.scatter(eng, broadcast=True, hash=False)
        run = secrets.token_hex(4)
        window = max(4, 2 * n_workers)
        pending: deque = deque()
        todo = iter(parts)

        def submit_next() -> None:
            part = next(todo, None)
            if part is not None:
                pending.append(client.submit(_run, engine, job, part, pure=False,
                                             retries=RETRIES,
                                             key=f"geoapp-flag-{run}-{part.index}"))

        for _ in range(window):
            submit_next()
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            submit_next()
            yield result
    finally:
        client.close()
        if local is not None:
            local.close()
