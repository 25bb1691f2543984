"""A real multi-node Ray cluster on one machine for tests: a Linux bridge, one network namespace per worker node.

The head runs on the host side of the bridge (so a driver in the host's default namespace connects to it as it
would on a real head machine); each worker runs `ray start --block` inside its own namespace. Everything this module
starts is stopped by PID and every namespace, veth and bridge it creates is deleted: never `ray stop`, which would
kill every Ray node in the PID namespace, other sessions' included.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

TRIAL_RESOURCE = "inferlab_trial"
# Each node's `ray start` leads a session of its own; every process of the node (raylet, agents, workers, which Ray
# moves into process groups of their own) keeps that session id, even once re-parented. Environment markers would
# not do: Ray's processes rename themselves (setproctitle), which overwrites /proc/PID/environ.
# What a cluster created is recorded here, so that a later session can remove what a crashed one left.
REGISTRY_DIR = Path("/run/inferlab-test-clusters")
# AF_UNIX paths are at most 107 bytes; Ray puts "<temp dir>/session_<date>_<time>_<pid>/sockets/plasma_store"
# (at most 64 bytes after the temp dir) under each node's temp dir.
_MAX_NODE_TEMP_DIR = 107 - 64
_NETNS_PREFIX = "inferlab-"
_LINK_ALIAS_PREFIX = "inferlab-test-cluster pid="


class ClusterError(RuntimeError):
    """The test cluster could not be set up, or a node did not come up in time."""


@dataclass
class NodeRecord:
    """One Ray node this cluster started."""

    name: str
    namespace: str | None  # None: the head, on the host side of the bridge
    ip: str
    pid: int  # the `ray start --block` process: leader of the session that holds all the node's processes
    is_head: bool
    resources: dict[str, float]
    labels: dict[str, str]
    temp_dir: Path
    log_path: Path
    node_id: str | None = None  # Ray's node id (hex), once the node has registered with the GCS
    alive: bool = True
    host_veth: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def environment_problem() -> str | None:
    """Why a netns cluster cannot run here (None when it can): not root, no `ip`, Ray not importable."""
    if os.geteuid() != 0:
        return f"network namespaces need root (running as uid {os.geteuid()})"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        return f"ray is not importable ({exc}); install inferlab[cluster]"
    probe = f"{_NETNS_PREFIX}probe-{os.getpid()}"
    made = _run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    _run(["ip", "netns", "del", probe], check=False)
    return None


def _used_networks() -> list[ipaddress.IPv4Network]:
    nets = []
    for line in _run(["ip", "-4", "-o", "addr", "show"]).stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    for line in _run(["ip", "-4", "route", "show", "table", "all"]).stdout.splitlines():
        dest = line.split()[0] if line.split() else ""
        if dest and dest[0].isdigit():
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(dest, strict=False))
    return nets


def _pick_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{rng.randint(64, 250)}.{rng.randint(1, 254)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise ClusterError("no free 10.X.Y.0/24 subnet found")


def _free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _session_processes(sids: Iterable[int]) -> list[psutil.Process]:
    """Processes whose session id is one of `sids` (each node's `ray start` is a session leader)."""
    wanted = set(sids)
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.pid != os.getpid() and os.getsid(proc.pid) in wanted:
                found.append(proc)
    return found


def _netns_processes(namespace: str) -> list[psutil.Process]:
    out = _run(["ip", "netns", "pids", namespace], check=False).stdout.split()
    procs = []
    for pid in out:
        with contextlib.suppress(psutil.Error, ValueError):
            procs.append(psutil.Process(int(pid)))
    return procs


def _kill_all(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _reset_ray_auth_cache() -> None:
    # Ray reads RAY_AUTH_* once into a process-wide cache (C++); Ray's own tests refresh it the same way.
    with contextlib.suppress(Exception):
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def _alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def _wait_gone(procs: Iterable[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until no process is running (a zombie counts as gone: its re-parented ones are reaped by init)."""
    left = list(procs)
    deadline = time.monotonic() + timeout_s
    while True:
        left = _alive(left)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


_NODE_QUERY = r"""
import json, os, sys, time
from ray._raylet import GcsClient
address, want, timeout, parent = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + timeout
client, last = None, None
while os.getppid() == parent:  # not outliving the test process
    try:
        client = client or GcsClient(address=address)
        nodes = {}
        for node_id, info in client.get_all_node_info(timeout=5).items():
            nodes.setdefault(info.node_manager_address, []).append(
                {"node_id": node_id.hex(), "alive": info.state == 0})
        last = nodes
        if all(any(n["alive"] for n in nodes.get(ip, [])) for ip in want):
            print(json.dumps(nodes)); sys.exit(0)
    except Exception as exc:
        last = repr(exc)
    if time.monotonic() > deadline:
        print(json.dumps({"error": last})); sys.exit(3)
    time.sleep(0.2)
sys.exit(4)
"""


class Cluster:
    """A head on the host side of a bridge plus worker nodes in network namespaces; token authentication on.

    Use `start_cluster()` (or `Cluster(...).start()`), then `shutdown()` (also registered with atexit).
    `temp_dir` holds every node's Ray temp dir (`<temp_dir>/<node name>`, kept short: AF_UNIX paths), their logs
    (`<name>.log`), the token file and the nodes' $HOME. `env` is added to every node's environment, e.g.
    {"RAY_health_check_period_ms": "1000"} to have the GCS declare a killed node dead sooner than Ray's ~15 s.
    """

    def __init__(
        self,
        temp_dir: str | os.PathLike[str],
        *,
        head_runs_trials: bool = False,
        head_num_cpus: int = 1,
        head_labels: Mapping[str, str] | None = None,
        object_store_memory: int = 128 * 1024**2,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.temp_dir = Path(temp_dir).resolve()
        self.head_runs_trials = head_runs_trials
        self.head_num_cpus = head_num_cpus
        self.head_labels = dict(head_labels or {})
        self.object_store_memory = object_store_memory
        self.python = python
        self.extra_env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._short = secrets.token_hex(3)  # link names are at most 15 bytes
        self.bridge = f"ilbr{self._short}"
        self.subnet: ipaddress.IPv4Network | None = None
        self.token = secrets.token_hex(32)
        self.token_path = self.temp_dir / "auth_token"
        self.nodes: list[NodeRecord] = []
        self.port: int | None = None
        self._namespaces: list[str] = []
        self._next_host = 2
        self._bridge_made = False
        self._closed = False
        self._lock = threading.Lock()
        self._registry_path = REGISTRY_DIR / f"{self.tag}.json"

    # ---- what a driver needs -------------------------------------------------------------------------------
    @property
    def head_ip(self) -> str:
        assert self.subnet is not None, "cluster not started"
        return str(self.subnet.network_address + 1)

    @property
    def address(self) -> str:
        """What `ray.init(address=...)` takes in the host's default namespace (the GCS address)."""
        return f"{self.head_ip}:{self.port}"

    @property
    def driver_env(self) -> dict[str, str]:
        """Environment variables a driver process needs (set them before `ray.init`; Ray reads them once)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    @contextlib.contextmanager
    def driver_auth(self) -> Iterator[None]:
        """This process's environment set up as a driver of this cluster (the token), restored on exit, with
        Ray's cached token dropped both ways so a `ray.init` inside (or later) reads the right one."""
        saved = {k: os.environ.get(k) for k in (*self.driver_env, "RAY_AUTH_TOKEN_PATH")}
        os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
        os.environ.update(self.driver_env)
        _reset_ray_auth_cache()
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            _reset_ray_auth_cache()

    @contextlib.contextmanager
    def connect(self, **init_kwargs: Any) -> Iterator[Any]:
        """Connect this process as a driver (`ray.init(address=self.address, ...)`) with the token; yields `ray`.

        On exit: `ray.shutdown()`, the environment restored and Ray's cached token dropped, so a later
        `ray.init` in this process starts clean.
        """
        import ray

        with self.driver_auth():
            try:
                init_kwargs.setdefault("log_to_driver", False)
                ray.init(address=self.address, **init_kwargs)
                yield ray
            finally:
                ray.shutdown()

    @property
    def head(self) -> NodeRecord:
        return next(n for n in self.nodes if n.is_head)

    @property
    def workers(self) -> list[NodeRecord]:
        return [n for n in self.nodes if not n.is_head]

    def node(self, name: str) -> NodeRecord:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r}; nodes: {[n.name for n in self.nodes]}")

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, workers: int = 2, worker_labels: Iterable[Mapping[str, str]] | None = None) -> Cluster:
        _live_clusters.add(self)
        try:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            self.token_path.write_text(self.token)
            self.token_path.chmod(0o600)
            (self.temp_dir / "home").mkdir(exist_ok=True)
            self._make_bridge()
            self._start_head()
            labels = list(worker_labels or [])
            for i in range(workers):
                self.add_node(labels=labels[i] if i < len(labels) else None, wait=False)
            self.wait_for_nodes()
        except BaseException:
            self.shutdown()
            raise
        return self

    def _make_bridge(self) -> None:
        self.subnet = _pick_subnet()
        self._record()
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self._bridge_made = True
        _run(["ip", "link", "set", self.bridge, "alias", f"{_LINK_ALIAS_PREFIX}{os.getpid()}"])
        # br_netfilter may send bridged frames through iptables; the cluster's traffic should not depend on it.
        _run(["ip", "link", "set", self.bridge, "type", "bridge", "nf_call_iptables", "0"], check=False)
        _run(["ip", "addr", "add", f"{self.head_ip}/{self.subnet.prefixlen}", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])

    def _node_env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(self.extra_env)
        env.update({
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_path),
            "RAY_USAGE_STATS_ENABLED": "0",
            # Nodes and the trial processes they start write under $HOME (caches); keep that in the cluster's dir.
            "HOME": str(self.temp_dir / "home"),
            # Each node stands for a host of its own: its own inferlab host lock and cache of shipped files.
            "INFERLAB_HOST_LOCK": str(self.temp_dir / name / "host.lock"),
            "INFERLAB_NODE_CACHE": str(self.temp_dir / name / "node-cache"),
        })
        return env

    def _node_temp_dir(self, name: str) -> Path:
        path = self.temp_dir / name
        if len(str(path)) > _MAX_NODE_TEMP_DIR:
            raise ClusterError(
                f"temp dir {path} is {len(str(path))} bytes; Ray's socket paths under it would pass the 107-byte "
                f"AF_UNIX limit: give a temp_dir of at most {_MAX_NODE_TEMP_DIR - len(name) - 1} bytes")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _ray_start_args(self, name: str, ip: str, num_cpus: int, resources: Mapping[str, float],
                        labels: Mapping[str, str]) -> list[str]:
        args = [self.python, "-m", "ray.scripts.scripts", "start", "--block", "--node-ip-address", ip,
                "--num-cpus", str(num_cpus), "--object-store-memory", str(self.object_store_memory),
                "--temp-dir", str(self._node_temp_dir(name)), "--disable-usage-stats",
                "--resources", json.dumps(dict(resources))]
        if labels:
            args += ["--labels", ",".join(f"{k}={v}" for k, v in labels.items())]
        return args

    def _spawn(self, name: str, args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = self.temp_dir / f"{name}.log"
        with open(log_path, "ab") as out:
            # Its own session: the node's processes keep its session id, which finds them all (see REGISTRY_DIR).
            popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self._node_env(name), start_new_session=True)
        return popen, log_path

    def _start_head(self) -> None:
        ip = self.head_ip
        self.port = _free_port(ip)
        resources = {TRIAL_RESOURCE: 1.0} if self.head_runs_trials else {}
        args = self._ray_start_args("head", ip, self.head_num_cpus, resources, self.head_labels)
        # The head shares the host's port space with everything else: no fixed default port.
        args += ["--head", "--port", str(self.port), "--include-dashboard=false",
                 "--dashboard-agent-listen-port", str(_free_port(ip))]
        popen, log_path = self._spawn("head", args)
        self.nodes.append(NodeRecord("head", None, ip, popen.pid, True, resources, dict(self.head_labels),
                                     self.temp_dir / "head", log_path, popen=popen))
        self._record()
        self.wait_for_nodes()

    def add_node(self, name: str | None = None, *, labels: Mapping[str, str] | None = None,
                 resources: Mapping[str, float] | None = None, num_cpus: int = 1, wait: bool = True) -> NodeRecord:
        """Start a worker node in a new namespace; `resources` defaults to {"inferlab_trial": 1}."""
        assert self.subnet is not None and not self._closed, "cluster not started or already shut down"
        with self._lock:
            index = self._next_host
            self._next_host += 1
        name = name or f"w{index - 1}"
        if any(n.name == name for n in self.nodes):
            raise ValueError(f"node {name!r} exists")
        ip = str(self.subnet.network_address + index)
        namespace = f"{_NETNS_PREFIX}{self.tag}-{name}"
        veth = f"ilv{self._short}{index}"
        self._namespaces.append(namespace)
        self._record()
        _run(["ip", "netns", "add", namespace])
        _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace])
        _run(["ip", "link", "set", veth, "alias", f"{_LINK_ALIAS_PREFIX}{os.getpid()}"])
        _run(["ip", "link", "set", veth, "master", self.bridge])
        _run(["ip", "link", "set", veth, "up"])
        _run(["ip", "-n", namespace, "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", "eth0"])
        _run(["ip", "-n", namespace, "link", "set", "eth0", "up"])
        _run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        res = {TRIAL_RESOURCE: 1.0} if resources is None else dict(resources)
        args = self._ray_start_args(name, ip, num_cpus, res, labels or {})
        args += ["--address", self.address]
        popen, log_path = self._spawn(name, ["ip", "netns", "exec", namespace, *args])
        record = NodeRecord(name, namespace, ip, popen.pid, False, res, dict(labels or {}), self.temp_dir / name,
                            log_path, host_veth=veth, popen=popen)
        self.nodes.append(record)
        self._record()
        if wait:
            self.wait_for_nodes()
        return record

    def wait_for_nodes(self, timeout_s: float | None = None) -> None:
        """Block until every live node is registered and alive in the GCS; fills in `node_id`."""
        timeout_s = self.start_timeout_s if timeout_s is None else timeout_s
        want = [n.ip for n in self.nodes if n.alive]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(self.driver_env)
        env["HOME"] = str(self.temp_dir)
        proc = subprocess.Popen([self.python, "-c", _NODE_QUERY, self.address, json.dumps(want), str(timeout_s),
                                 str(os.getpid())],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        try:
            deadline = time.monotonic() + timeout_s + 30
            while proc.poll() is None:
                for n in self.nodes:
                    if n.alive and n.popen is not None and n.popen.poll() is not None:
                        raise ClusterError(f"node {n.name} exited ({n.popen.returncode}) while starting:\n"
                                           f"{self._log_tail(n)}")
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            tails = "\n".join(f"--- {n.name}:\n{self._log_tail(n)}" for n in self.nodes if n.alive)
            raise ClusterError(f"nodes {want} not all alive after {timeout_s}s: {stdout.strip()} "
                               f"{stderr.strip()[-2000:]}\n{tails}")
        by_ip = json.loads(stdout)
        for n in self.nodes:
            if n.alive:
                n.node_id = next(x["node_id"] for x in by_ip[n.ip] if x["alive"])

    def _record(self) -> None:
        """Write what exists so far to the registry: creator, node session ids, namespaces, links."""
        REGISTRY_DIR.mkdir(mode=0o700, exist_ok=True)
        state = {"creator_pid": os.getpid(), "sids": [n.pid for n in self.nodes], "namespaces": self._namespaces,
                 "links": [self.bridge, *(n.host_veth for n in self.nodes if n.host_veth)]}
        tmp = self._registry_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self._registry_path)

    @staticmethod
    def _log_tail(node: NodeRecord, chars: int = 3000) -> str:
        try:
            return node.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def node_processes(self, name: str) -> list[psutil.Process]:
        """Every live process of a node: its `ray start` session, its process tree and, for a worker, its namespace."""
        node = self.node(name)
        procs = {p.pid: p for p in _session_processes([node.pid])}
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(node.pid)
            procs[root.pid] = root
            for child in root.children(recursive=True):
                procs[child.pid] = child
        if node.namespace is not None:
            for proc in _netns_processes(node.namespace):
                procs[proc.pid] = proc
        procs.pop(os.getpid(), None)
        return _alive(procs.values())

    def kill_node(self, name: str, timeout_s: float = 10.0) -> list[int]:
        """SIGKILL a node's processes (the `ray start` process, raylet, its workers, agents); returns their PIDs."""
        node = self.node(name)
        procs = self.node_processes(name)
        _kill_all(procs, signal.SIGKILL)
        alive = _wait_gone(procs, timeout_s)
        if node.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.popen.wait(timeout=timeout_s)
        node.alive = False
        if alive:
            raise ClusterError(f"node {name}: processes survived SIGKILL: {[p.pid for p in alive]}")
        return [p.pid for p in procs]

    def _stop_nodes(self, nodes: list[NodeRecord], grace_s: float) -> None:
        procs = [p for node in nodes for p in self.node_processes(node.name)]
        # `ray start --block` stops its node's processes on SIGTERM; whatever is left after the grace gets SIGKILL.
        for node in nodes:
            if node.alive:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(node.pid).send_signal(signal.SIGTERM)
        alive = _wait_gone(procs, grace_s)
        _kill_all(alive + [p for node in nodes for p in self.node_processes(node.name)], signal.SIGKILL)
        _wait_gone([p for node in nodes for p in self.node_processes(node.name)], 5)
        for node in nodes:
            if node.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.popen.wait(timeout=5)
            node.alive = False

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop every process this cluster started (by PID) and delete its namespaces, veths and bridge."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        # Workers first (together), so none of them spends the grace period reconnecting to a vanished head.
        for group in (self.workers, [n for n in self.nodes if n.is_head]):
            try:
                self._stop_nodes(group, grace_s)
            except Exception as exc:  # keep cleaning up the rest
                errors.append(f"{[n.name for n in group]}: {exc!r}")
        leftovers = _alive(_session_processes(n.pid for n in self.nodes))
        _kill_all(leftovers, signal.SIGKILL)
        _wait_gone(leftovers, 5)
        existing = _run(["ip", "netns", "list"], check=False).stdout.split()
        for namespace in self._namespaces:
            if namespace not in existing:  # recorded, then its creation failed
                continue
            _kill_all(_netns_processes(namespace), signal.SIGKILL)
            res = _run(["ip", "netns", "del", namespace], check=False)
            if res.returncode != 0:
                errors.append(f"ip netns del {namespace}: {res.stderr.strip()}")
        for node in self.nodes:  # deleting the namespace deletes the veth pair; make sure
            if node.host_veth is not None and _run(["ip", "link", "show", node.host_veth], check=False).returncode == 0:
                _run(["ip", "link", "del", node.host_veth], check=False)
        if self._bridge_made:
            res = _run(["ip", "link", "del", self.bridge], check=False)
            if res.returncode != 0:
                errors.append(f"ip link del {self.bridge}: {res.stderr.strip()}")
        _live_clusters.discard(self)
        if not errors:
            self._registry_path.unlink(missing_ok=True)
        if errors:
            raise ClusterError("shutdown left something behind: " + "; ".join(errors))

    def leftovers(self) -> list[str]:
        """What of this cluster still exists (processes, namespaces, links); empty after a clean shutdown."""
        procs = _session_processes(n.pid for n in self.nodes)
        for namespace in self._namespaces:
            procs += _netns_processes(namespace)
        found = [f"process {p.pid} {' '.join(p.cmdline())[:80]}" for p in _alive(procs)]
        namespaces = _run(["ip", "netns", "list"]).stdout
        found += [f"netns {ns}" for ns in self._namespaces if ns in namespaces.split()]
        links = _run(["ip", "-o", "link", "show"]).stdout
        names = [self.bridge, *(n.host_veth for n in self.nodes if n.host_veth)]
        found += [f"link {name}" for name in names if f": {name}:" in links or f": {name}@" in links]
        return found

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class _Registry:
    def __init__(self) -> None:
        self._clusters: list[Cluster] = []
        atexit.register(self._shutdown_all)

    def add(self, cluster: Cluster) -> None:
        if cluster not in self._clusters:
            self._clusters.append(cluster)

    def discard(self, cluster: Cluster) -> None:
        if cluster in self._clusters:
            self._clusters.remove(cluster)

    def _shutdown_all(self) -> None:
        for cluster in list(self._clusters):
            with contextlib.suppress(Exception):
                cluster.shutdown(grace_s=1.0)


_live_clusters = _Registry()


def start_cluster(
    temp_dir: str | os.PathLike[str],
    workers: int = 2,
    *,
    head_runs_trials: bool = False,
    worker_labels: Iterable[Mapping[str, str]] | None = None,
    **options: object,
) -> Cluster:
    """Start a head plus `workers` worker nodes (each with {"inferlab_trial": 1}); see `Cluster` for options."""
    cluster = Cluster(temp_dir, head_runs_trials=head_runs_trials, **options)  # type: ignore[arg-type]
    return cluster.start(workers=workers, worker_labels=worker_labels)


def _looks_like_ray(proc: psutil.Process) -> bool:
    # A recorded session id may, after its processes are long gone, belong to an unrelated new session.
    with contextlib.suppress(psutil.Error):
        text = " ".join(proc.cmdline())
        return proc.name().startswith("ray::") or "/ray/" in text or "ray.scripts" in text
    return False


def cleanup_stale() -> list[str]:
    """Remove processes, namespaces and links left by test clusters whose creating process is gone."""
    removed = []

    def dead(pid: object) -> bool:
        return str(pid).isdigit() and not psutil.pid_exists(int(str(pid)))

    for path in sorted(REGISTRY_DIR.glob("*.json")) if REGISTRY_DIR.is_dir() else []:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not dead(state.get("creator_pid")):
            continue
        procs = [p for p in _session_processes(state.get("sids", [])) if _looks_like_ray(p)]
        existing = _run(["ip", "netns", "list"], check=False).stdout.split()
        for ns in state.get("namespaces", []):
            if ns in existing:
                procs += _netns_processes(ns)
        procs = list({p.pid: p for p in procs}.values())
        _kill_all(procs, signal.SIGKILL)
        _wait_gone(procs, 5)
        removed += [f"process {p.pid}" for p in procs]
        for ns in state.get("namespaces", []):
            if ns in existing and _run(["ip", "netns", "del", ns], check=False).returncode == 0:
                removed.append(f"netns {ns}")
        for link in state.get("links", []):
            if _run(["ip", "link", "del", link], check=False).returncode == 0:
                removed.append(f"link {link}")
        path.unlink(missing_ok=True)
    # Without a registry entry (it could not be written): namespaces and links name or alias their creator's PID.
    for line in _run(["ip", "netns", "list"]).stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        if ns.startswith(_NETNS_PREFIX) and dead(ns[len(_NETNS_PREFIX):].split("-", 1)[0]):
            _kill_all(_netns_processes(ns), signal.SIGKILL)
            _run(["ip", "netns", "del", ns], check=False)
            removed.append(f"netns {ns}")
    for line in _run(["ip", "-o", "link", "show"]).stdout.splitlines():
        if _LINK_ALIAS_PREFIX in line:
            name = line.split(":")[1].strip().split("@")[0]
            pid = line.split(_LINK_ALIAS_PREFIX, 1)[1].split()[0]
            if dead(pid):
                _run(["ip", "link", "del", name], check=False)
                removed.append(f"link {name}")
    return removed
