"""Real Dask clusters for tests: a ``dask scheduler`` process and ``dask worker`` processes,
on the loopback interface or with the workers in network namespaces of their own.

``start_cluster(n, folder)`` starts the scheduler on 127.0.0.1 (a free port the scheduler
picks itself, read back from its scheduler file; no dashboards) and ``n`` workers of one
thread each, and returns once the scheduler counts ``n`` workers. The workers run without a
nanny: a worker killed with ``Cluster.kill_worker`` stays dead, as when its machine is lost
(a nanny would start a new worker at a new address in its place). Every process runs in a
process group of its own and gets SIGKILL when the test process dies; ``Cluster.close``
kills the groups and waits for them, so nothing is left running.

``NetnsLab`` (with ``netns_lab``) builds, as root with ``ip``, a bridge in the root network
namespace with an address on a private test subnet no interface or route of the machine
uses, and namespaces each joined to the bridge by a veth pair, with its own address and
``lo`` up. ``start_cluster(n, folder, lab=lab)`` puts the scheduler on the bridge address and
worker ``i`` in namespace ``i`` (``ip netns exec NS dask worker ... --host NS_IP``). The lab
removes its namespaces, veths and bridge when it closes, also after a failure;
``NetnsUnavailable`` says why namespaces cannot be made here (not root, no ``ip``, EPERM).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distributed import Client
from netlock import NetworkLock

#: How long the scheduler and the workers may take to come up on a busy machine.
START_TIMEOUT = 90
#: Subnets (/24) a lab may use, tried in order: the first one nothing on the machine uses.
LAB_SUBNETS = tuple(f"10.231.{n}.0/24" for n in range(17, 250, 7))

_PR_SET_PDEATHSIG = 1


def dask_command() -> Path:
    """The ``dask`` entry point of the Python running the tests."""
    return Path(sys.executable).parent / "dask"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Kill the process group of ``proc`` (SIGTERM, then SIGKILL) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError):  # anything left in the group
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout)


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# -- network namespaces --------------------------------------------------------------------
class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made on this machine (the message says why)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network an address or a route of the root namespace covers."""
    nets = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        dest = line.split()[0] if line.split() else ""
        if dest in ("default", "broadcast", "local", "unreachable", "blackhole", "prohibit"):
            dest = line.split()[1] if dest != "default" else ""
        with contextlib.suppress(ValueError):
            if dest:
                nets.append(ipaddress.ip_network(dest, strict=False))
    return nets


def free_subnet(candidates: Sequence[str] = LAB_SUBNETS) -> ipaddress.IPv4Network:
    """One of ``candidates`` that no address or route of this machine overlaps, tried from
    a place this process's ID picks (two test processes building labs at once try
    different subnets first)."""
    used = _used_networks()
    start = os.getpid() % len(candidates)
    for text in [*candidates[start:], *candidates[:start]]:
        net = ipaddress.ip_network(text)
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise RuntimeError(f"every test subnet is in use: {', '.join(candidates)}")


@dataclass
class NetnsLab:
    """A bridge with an address in the root namespace and namespaces joined to it."""

    count: int
    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000:05d}")
    subnet: ipaddress.IPv4Network | None = None
    namespaces: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    _links: list[str] = field(default_factory=list)
    _lock: NetworkLock = field(default_factory=NetworkLock)

    @property
    def bridge(self) -> str:
        return f"gfbr{self.tag}"  # interface names: at most 15 characters

    @property
    def bridge_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    def prefix(self, i: int) -> list[str]:
        """What runs a command in namespace ``i``."""
        return ["ip", "netns", "exec", self.namespaces[i]]

    def open(self) -> NetnsLab:
        if os.geteuid() != 0:
            raise NetnsUnavailable("网络命名空间需要 root Network namespaces need root")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("没有 ip 命令 No `ip` command (iproute2) on this machine")
        probe = f"gfprobe{self.tag}"
        made = _ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            raise NetnsUnavailable(f"无法创建网络命名空间 Cannot make a network namespace: "
                                   f"{made.stderr.strip()}")
        _ip("netns", "del", probe)
        self._lock.acquire(exclusive=True)  # no browser test runs while interfaces change
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        self.subnet = free_subnet()
        plen = self.subnet.prefixlen
        _ip("link", "add", self.bridge, "type", "bridge")
        self._links.append(self.bridge)
        _ip("addr", "add", f"{self.bridge_ip}/{plen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(self.count):
            ns, host_end, ns_end = f"gfns{self.tag}-{i}", f"gfv{self.tag}h{i}", f"gfv{self.tag}n{i}"
            address = str(self.subnet.network_address + 10 + i)
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            self._links.append(host_end)
            _ip("link", "set", ns_end, "netns", ns)
            _ip("link", "set", host_end, "master", self.bridge)
            _ip("link", "set", host_end, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{address}/{plen}", "dev", ns_end)
            _ip("-n", ns, "link", "set", ns_end, "up")
            self.addresses.append(address)

    def close(self) -> None:
        """Remove the namespaces, the veths and the bridge (whatever of them exists)."""
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns, check=False)  # takes its veth end along
        for link in reversed(self._links):
            if _ip("link", "show", link, check=False).returncode == 0:
                _ip("link", "del", link, check=False)
        self.namespaces.clear()
        self._links.clear()
        self._lock.release()

    def leftovers(self) -> list[str]:
        """Namespaces or links of this lab that still exist (none after ``close``)."""
        names = set(_ip("netns", "list").stdout.split())
        links = _ip("-o", "link", "show").stdout
        return sorted({n for n in names if n.startswith(f"gfns{self.tag}-")}
                      | {w.rstrip(":").split("@")[0] for w in links.split()
                         if w.startswith((f"gfv{self.tag}", self.bridge))})


@contextlib.contextmanager
def netns_lab(count: int) -> Iterator[NetnsLab]:
    """``count`` namespaces on a bridge, removed afterwards (see ``NetnsLab``)."""
    lab = NetnsLab(count)
    lab.open()
    try:
        yield lab
    finally:
        lab.close()


# -- the cluster ---------------------------------------------------------------------------
@dataclass
class Worker:
    """One ``dask worker`` process: its address as the scheduler knows it, and its PID."""

    address: str
    pid: int
    proc: subprocess.Popen
    log: Path
    netns: str | None = None


@dataclass
class Cluster:
    """A running scheduler and its workers (see ``start_cluster``)."""

    scheduler_address: str
    scheduler: subprocess.Popen
    workers: list[Worker]
    folder: Path

    @property
    def addresses(self) -> list[str]:
        return [w.address for w in self.workers]

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def client(self, **kwargs) -> Client:
        return Client(self.scheduler_address, timeout=START_TIMEOUT, **kwargs)

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i`` (its whole process group) and reap it: it stays dead."""
        proc = self.workers[i].proc
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def close(self) -> None:
        for w in self.workers:
            _stop(w.proc)
        _stop(self.scheduler)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _spawn(cmd: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True, preexec_fn=_die_with_parent)


def start_cluster(n: int, folder: Path, *, lab: NetnsLab | None = None,
                  env: dict[str, str] | None = None,
                  timeout: float = START_TIMEOUT) -> Cluster:
    """A scheduler and ``n`` one-thread workers without nanny, all up (see the module doc).

    ``folder`` holds the scheduler file, the logs and the workers' local directories; ``env``
    is the processes' environment (default: this one's). With ``lab`` the scheduler listens
    on the bridge address and worker ``i`` runs in namespace ``i`` at its address."""
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ if env is None else env)
    env.setdefault("DASK_DISTRIBUTED__WORKER__DAEMON", "False")
    host = lab.bridge_ip if lab is not None else "127.0.0.1"
    dask = str(dask_command())
    sched_file = folder / "scheduler.json"
    sched_file.unlink(missing_ok=True)
    scheduler = _spawn([dask, "scheduler", "--host", host, "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(sched_file)], folder / "scheduler.log", env,
                       folder)
    procs: list[tuple[subprocess.Popen, Path, str | None]] = []
    cluster = Cluster("", scheduler, [], folder)
    try:
        deadline = time.monotonic() + timeout
        address = None
        while address is None:
            if scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited ({scheduler.returncode}):\n"
                                   f"{_tail(folder / 'scheduler.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start in {timeout} s:\n"
                                   f"{_tail(folder / 'scheduler.log')}")
            with contextlib.suppress(OSError, ValueError):
                address = json.loads(sched_file.read_text(encoding="utf-8"))["address"]
            if address is None:
                time.sleep(0.1)
        cluster.scheduler_address = address
        for i in range(n):
            local = folder / f"worker-{i}"
            local.mkdir(exist_ok=True)
            cmd = [dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                   "--no-nanny", "--no-dashboard", "--memory-limit", "0",
                   "--name", f"w{i}", "--local-directory", str(local),
                   "--death-timeout", "60"]
            ns = None
            if lab is not None:
                ns = lab.namespaces[i]
                cmd = [*lab.prefix(i), *cmd, "--host", lab.addresses[i]]
            else:
                cmd += ["--host", "127.0.0.1"]
            log = folder / f"worker-{i}.log"
            procs.append((_spawn(cmd, log, env, folder), log, ns))
        with Client(address, timeout=timeout) as client:
            try:
                client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
            except TimeoutError as e:
                logs = "\n".join(f"--- worker {i} (exit {p.poll()}):\n{_tail(log)}"
                                 for i, (p, log, _) in enumerate(procs))
                raise RuntimeError(f"{n} dask workers did not join in {timeout} s:\n"
                                   f"{logs}") from e
            by_pid = {pid: addr for addr, pid in client.run(os.getpid).items()}
        for proc, log, ns in procs:
            if proc.pid not in by_pid:
                raise RuntimeError(f"no worker with PID {proc.pid} joined: {by_pid}")
            cluster.workers.append(Worker(by_pid[proc.pid], proc.pid, proc, log, ns))
    except BaseException:
        for proc, _, _ in procs:
            _stop(proc)
        _stop(scheduler)
        raise
    return cluster




def where_task():
    """A task that says where it runs: its worker's address, host name, PID and network
    namespace (the inode of ``/proc/self/ns/net``). A local function, so it is pickled by
    value: the scheduler and the workers need not import this module."""
    def whereabouts() -> dict:
        import os

        from distributed import get_worker

        return {"address": get_worker().address, "hostname": socket.gethostname(),
                "pid": os.getpid(), "netns": os.stat("/proc/self/ns/net").st_ino}

    return whereabouts


def scheduler_state(client: Client) -> dict[str, dict]:
    """The workers the scheduler counts now: for each, the keys of the tasks it processes
    (``processing``) and how many keys it alone holds that no task can compute again
    (``irreplaceable``: scattered data with no other replica, lost if the worker is)."""
    def state(dask_scheduler) -> dict:
        return {addr: {"processing": sorted(str(t.key) for t in ws.processing),
                       "irreplaceable": sum(1 for t in ws.has_what
                                            if t.run_spec is None and len(t.who_has) == 1)}
                for addr, ws in dask_scheduler.workers.items()}

    return client.run_on_scheduler(state)
