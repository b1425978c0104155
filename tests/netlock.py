"""One lock between the tests that change the host's network interfaces and the browser tests.

The Dask tests' network-namespace lab adds a bridge and veth pairs in the root namespace.
Chromium watches the host's interfaces and aborts every request in flight when they change
(``net::ERR_NETWORK_CHANGED``): a browser test on the other pytest worker then loses a script
and fails for nothing it did. Browser tests hold this lock shared, one test at a time; the
lab holds it exclusive from before it makes its first interface until it has removed its last.
The lock is an ``flock`` on one file in the temporary folder, shared by every worker process.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

LOCK_FILE = Path(tempfile.gettempdir()) / "geoapp-tests-network.lock"


class NetworkLock:
    """``acquire(exclusive)`` / ``release()``; blocking, released when the process ends.

    Within one process the lock is re-entrant: a second lab opened while the first holds it
    (a test of a lab failing halfway) or a shared hold under an exclusive one only counts;
    ``flock`` would otherwise make the process wait for itself.
    """

    _fh: IO[str] | None = None  # this process's open lock file, while anything holds it
    _holders = 0
    _exclusive = False

    def __init__(self) -> None:
        self._held = False

    def acquire(self, exclusive: bool) -> None:
        if self._held:
            return
        cls = type(self)
        if cls._fh is None:
            cls._fh = LOCK_FILE.open("a")
            fcntl.flock(cls._fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            cls._exclusive = exclusive
        elif exclusive and not cls._exclusive:
            fcntl.flock(cls._fh, fcntl.LOCK_EX)  # shared → exclusive in this process
            cls._exclusive = True
        cls._holders += 1
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        cls = type(self)
        self._held = False
        cls._holders -= 1
        if cls._holders == 0 and cls._fh is not None:
            fcntl.flock(cls._fh, fcntl.LOCK_UN)
            cls._fh.close()
            cls._fh, cls._exclusive = None, False


@contextlib.contextmanager
def network_lock(*, exclusive: bool) -> Iterator[None]:
    lock = NetworkLock()
    lock.acquire(exclusive)
    try:
        yield
    finally:
        lock.release()
