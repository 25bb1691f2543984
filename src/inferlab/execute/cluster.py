"""The Ray cluster executor: each trial is a Ray task on a node that has what it needs (its backend, its
device), one trial at a time per node (the node's `inferlab_trial` resource), and in a fresh process there
(TrialProcess, as on one host). inferlab itself travels to the nodes in Ray's runtime environment; a trial's
files travel as content-keyed bundles (execute/deploy.py); results come back to the head, which stores them.
A trial whose node dies is queued again once on another node, then stored as failed with the reason."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import inferlab
from inferlab.errors import ClusterError
from inferlab.execute import deploy
from inferlab.execute.base import QuietReporter, Reporter
from inferlab.records.trial import TrialResult, TrialSpec, utc_now

log = logging.getLogger(__name__)
TRIAL_RESOURCE = "inferlab_trial"   # one per node: two trials never share a measured machine
REFRESH_S = 2.0                      # how often the node list is read while trials run
ATTEMPTS = 2                         # a trial whose node dies runs once more elsewhere


@dataclass(frozen=True)
class Node:
    """A cluster node as inferlab sees it: where it is, what it can run, what it is."""

    node_id: str
    address: str
    alive: bool
    labels: dict[str, str] = field(default_factory=dict)
    backends: dict[str, list[str]] = field(default_factory=dict)   # backend -> its devices there
    fingerprint: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    slots: int = 0                                                 # its inferlab_trial resource

    def can_run(self, spec: TrialSpec) -> bool:
        return self.alive and self.slots > 0 and spec.device in self.backends.get(spec.backend, [])

    def has(self, labels: dict[str, str]) -> bool:
        return all(self.labels.get(k) == v for k, v in labels.items())

    def describe(self) -> str:
        have = ", ".join(f"{b} ({'/'.join(d)})" for b, d in sorted(self.backends.items())) or "no backend"
        return f"{self.address}: {have}"


def runtime_env() -> dict[str, Any]:
    """inferlab's own package, shipped to every node by Ray (uploaded once, cached by content hash)."""
    return {"py_modules": [str(Path(inferlab.__file__).parent)],
            "env_vars": {k: v for k, v in os.environ.items() if k in ("INFERLAB_NODE_CACHE",)}}


def connect(address: str) -> None:
    """Join the Ray cluster at `address` as its driver (once per process); "local" starts a throwaway
    single-node cluster on this machine whose one node takes trials."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"runtime_env": runtime_env(), "log_to_driver": False, "logging_level": logging.WARNING,
                              "configure_logging": False}
    sigterm = signal.getsignal(signal.SIGTERM)  # ray.init installs its own; the CLI's turns SIGTERM into Ctrl-C
    try:
        if address == "local":
            # token authentication on, with a token of this process's own (Ray would otherwise write one to
            # ~/.ray/auth_token, readable by every user)
            os.environ.setdefault("RAY_AUTH_MODE", "token")
            os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
            _reread_auth()
            ray.init(address="local", resources={TRIAL_RESOURCE: 1}, include_dashboard=False, num_cpus=1, **kwargs)
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "token")  # a driver must ask for it; Ray never assumes it
            _reread_auth()
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.AuthenticationError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"--cluster {address}: cannot join the Ray cluster there ({first}); start its head "
                           "with `ray start --head` (see the README's cluster section), set RAY_AUTH_TOKEN if it "
                           "uses token authentication, or use --cluster local") from None
    finally:
        if callable(sigterm) and signal.getsignal(signal.SIGTERM) is not sigterm:
            with contextlib.suppress(ValueError):  # only the main thread may set handlers
                signal.signal(signal.SIGTERM, sigterm)


def _reread_auth() -> None:
    """Ray reads RAY_AUTH_* once per process (at import): have it read what this process just set. (Ray's own
    tests refresh it the same way; no public call does.)"""
    with contextlib.suppress(Exception):
        from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


@functools.cache
def _node_environment() -> dict[str, Any]:
    """This node's environment, with its address so each node is told apart: collected once per worker
    process (it runs git and reads /proc), not once per trial."""
    from inferlab.execute import environment

    env = environment.collect()
    env["node_address"] = ray.util.get_node_ip_address()
    return env


@ray.remote(num_cpus=0, max_retries=0)
def _probe() -> dict[str, Any]:
    """What this node can run, and its environment (with its address, so each node is told apart)."""
    from inferlab import backends
    from inferlab.execute import environment

    have: dict[str, list[str]] = {}
    for name in backends.names():
        with contextlib.suppress(Exception):
            b = backends.get(name)
            if b.available():
                have[name] = list(b.devices())
    env = _node_environment()
    return {"backends": have, "environment": env, "fingerprint": environment.fingerprint(env)}


def nodes(probe: bool = True) -> list[Node]:
    """The cluster's nodes (alive ones probed for backends, devices and environment)."""
    out = []
    listing = ray.nodes()
    refs = {}
    for n in listing:
        if n.get("Alive") and probe:
            strategy = NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            refs[n["NodeID"]] = _probe.options(scheduling_strategy=strategy).remote()
    for n in listing:
        info: dict[str, Any] = {}
        if n["NodeID"] in refs:
            try:
                info = ray.get(refs[n["NodeID"]], timeout=120)
            except Exception as exc:  # a node that cannot run the probe runs no trial
                log.warning("node %s could not be probed: %s", n.get("NodeManagerAddress"), exc)
        out.append(Node(n["NodeID"], str(n.get("NodeManagerAddress", "?")), bool(n.get("Alive")),
                        dict(n.get("Labels") or {}), info.get("backends", {}), info.get("fingerprint"),
                        info.get("environment", {}), int((n.get("Resources") or {}).get(TRIAL_RESOURCE, 0))))
    return out


def check_placement(specs: Sequence[TrialSpec], known: list[Node]) -> None:
    """Refuse, before anything runs, a trial that no node of the cluster can take."""
    for spec in specs:
        if not any(n.can_run(spec) for n in known):
            able = "; ".join(n.describe() for n in known if n.alive and n.slots > 0)
            raise ClusterError(f"{spec.label()}: no node of the cluster runs {spec.backend} on {spec.device} "
                               f"(nodes that take trials: {able or f'none with the {TRIAL_RESOURCE} resource'}); "
                               "start a node that has it, or leave that backend or device out")


@ray.remote(num_cpus=0, max_retries=0, resources={TRIAL_RESOURCE: 1})
def _run_on_node(spec_json: dict[str, Any], bundles: list[tuple[str, str, str, list[Any]]], owner: str,
                 head_artifacts: str | None, compiled: str | None = None) -> dict[str, Any]:
    """One trial on this node: unpack (or find cached) its files, run it in a fresh process under this
    host's lock, and send back the result, this node's environment and the trial's files. `compiled`: the
    run's name for the node-local folder where runtimes keep what they compile for its later trials."""
    from inferlab.execute.protocol import encode_result
    from inferlab.execute.trial_process import TrialProcess

    mapping = {}
    for host_path, key, name, ref in bundles:
        local = deploy.cached(key, name)
        if local is None:
            local = deploy.unpack(key, name, ray.get(ref[0]))
        mapping[host_path] = str(local)
    spec = TrialSpec.from_json(deploy.localise(spec_json, mapping))
    scratch = Path(tempfile.mkdtemp(prefix="inferlab-node-artifacts-"))
    try:
        process = TrialProcess(QuietReporter(), None, scratch, owner)
        if compiled is not None:
            process.compiled = deploy.node_cache() / "compiled" / compiled
        result = process.run(spec)
        files = deploy.pack_folder(scratch / spec.key())
        data = encode_result(result)
        if head_artifacts is not None:  # paths of the trial's files as the head will keep them
            data = deploy.rebase(data, str(scratch), head_artifacts)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    env = _node_environment()
    return {"result": data, "environment": env, "files": files, "node": ray.get_runtime_context().get_node_id(),
            "address": env["node_address"]}


@dataclass
class _Job:
    spec: TrialSpec
    attempts: int = 0
    excluded: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


class RayExecutor:
    """Trials as Ray tasks, one per node at a time, as many nodes at once as can take them."""

    def __init__(self, address: str, reporter: Reporter | None, register: Callable[[dict[str, Any]], str],
                 artifacts: Path | None = None, owner: str = "an inferlab run",
                 labels: dict[str, str] | None = None) -> None:
        connect(address)
        self.address = address
        self.reporter = reporter or QuietReporter()
        self.artifacts = artifacts
        self.compiled: str | None = None  # the run's name for the nodes' compile caches (a tuning)
        self.owner = owner
        self.register = register
        self.labels = dict(labels or {})
        every = [n for n in nodes() if n.alive and n.slots > 0]
        self.nodes = [n for n in every if n.has(self.labels)]
        if not self.nodes:
            wanted = ", ".join(f"{k}={v}" for k, v in self.labels.items())
            raise ClusterError(
                f"--cluster {address}: no node takes trials " + (
                    f"with the labels nodes: {{{wanted}}} (nodes that take trials: "
                    f"{'; '.join(n.address + ' ' + str(n.labels) for n in every) or 'none'}); fix the labels or "
                    "start such a node" if every and self.labels else
                    f"(none has the {TRIAL_RESOURCE} resource); start nodes as the README's cluster section says"))
        self.slots = len(self.nodes)
        self.queue: deque[_Job] = deque()
        self.running: dict[Any, tuple[_Job, Node]] = {}
        self.bundles: dict[str, tuple[str, str, Any]] = {}   # host path -> (key, name, object ref)
        self.started = 0
        self.total = 0
        self.fixed_total: int | None = None
        self.placed: dict[str, str] = {}                     # spec key -> the address of the node that ran it
        self._refreshed = time.monotonic()

    def check(self, specs: Sequence[TrialSpec]) -> None:
        check_placement(specs, self.nodes)

    def bind(self, owner: str, artifacts: Path | None, compiled: bool = False) -> None:
        self.owner, self.artifacts = owner, artifacts
        self.compiled = "".join(c if c.isalnum() or c in "-_" else "-" for c in owner) if compiled else None

    def show_progress(self, done: int, total: int | None) -> None:
        self.started, self.fixed_total = done, total

    def submit(self, specs: Sequence[TrialSpec]) -> None:
        self.queue.extend(_Job(s) for s in specs)
        self.total += len(specs)

    def _bundles(self, spec: TrialSpec) -> list[tuple[str, str, str, list[Any]]]:
        out = []
        for path in deploy.spec_paths(spec):
            host = str(path)
            if host not in self.bundles:
                key, blob = deploy.pack(path)
                self.bundles[host] = (key, path.name, ray.put(blob))
            key, name, ref = self.bundles[host]
            out.append((host, key, name, [ref]))  # nested: fetched on the node only when not cached there
        return out

    def _free(self) -> list[Node]:
        busy = {node.node_id for _, node in self.running.values()}
        return [n for n in self.nodes if n.alive and n.node_id not in busy]

    def _refresh(self) -> None:
        if time.monotonic() - self._refreshed < REFRESH_S:
            return
        self._refreshed = time.monotonic()
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        known = {n.node_id for n in self.nodes}
        self.nodes = [n for n in self.nodes if n.node_id in alive]
        if alive - known:  # nodes that joined while the run goes on take trials too
            self.nodes += [n for n in nodes() if n.node_id in alive - known and n.alive and n.slots > 0
                           and n.has(self.labels)]

    def _dispatch(self) -> list[TrialResult]:
        """Start queued trials on free nodes that can take them; a trial no live node can take any more is
        failed here."""
        failed = []
        for node in self._free():
            job = next((j for j in self.queue if node.can_run(j.spec) and node.node_id not in j.excluded), None)
            if job is None:
                continue
            self.queue.remove(job)
            strategy = NodeAffinitySchedulingStrategy(node.node_id, soft=False)
            ref = _run_on_node.options(scheduling_strategy=strategy).remote(
                job.spec.to_json(), self._bundles(job.spec), self.owner,
                str(self.artifacts / job.spec.key()) if self.artifacts is not None else None, self.compiled)
            self.running[ref] = (job, node)
            self.reporter.trial_started(self.started, self.fixed_total or self.total, job.spec)
            self.started += 1
        for job in list(self.queue):
            if not any(n.can_run(job.spec) and n.node_id not in job.excluded for n in self.nodes):
                self.queue.remove(job)
                why = "; ".join(job.failures) or f"no live node runs {job.spec.backend} on {job.spec.device}"
                failed.append(TrialResult(spec=job.spec, status="failed", reason=f"not run on the cluster: {why}",
                                          started_at=utc_now(), finished_at=utc_now()))
        return failed

    def _finished(self, ref: Any) -> TrialResult | None:
        job, node = self.running.pop(ref)
        try:
            out = ray.get(ref)
        except Exception as exc:  # the node or its worker died, or the node could not set the trial up
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            job.failures.append(f"node {node.address} failed it ({type(exc).__name__}: {first})")
            job.attempts += 1
            job.excluded.add(node.node_id)
            log.warning("trial %s: node %s failed (%s)", job.spec.label(), node.address, type(exc).__name__)
            if job.attempts < ATTEMPTS:
                self.queue.appendleft(job)
                return None
            return TrialResult(spec=job.spec, status="failed", reason="; ".join(job.failures),
                               started_at=utc_now(), finished_at=utc_now())
        from inferlab.execute.protocol import decode_result

        if out.get("files") and self.artifacts is not None:
            deploy.unpack_folder(out["files"], self.artifacts / job.spec.key())
        result = decode_result(out["result"])
        self.placed[job.spec.key()] = out["address"]
        runtime = {**result.runtime, "node": out["address"]}
        warnings = result.warnings + ((f"ran again on node {out['address']}: " + "; ".join(job.failures),)
                                      if job.failures else ())
        return result.with_(spec=job.spec, environment_id=self.register(out["environment"]), runtime=runtime,
                            warnings=warnings)

    def results(self) -> Iterator[TrialResult]:
        while self.queue or self.running:
            for failed in self._dispatch():
                self.reporter.trial_finished(failed)
                yield failed
            if not self.running:
                if self.queue:
                    time.sleep(0.2)
                    self._refresh()
                continue
            ready, _ = ray.wait(list(self.running), num_returns=1, timeout=REFRESH_S)
            for ref in ready:
                result = self._finished(ref)
                if result is not None:
                    self.reporter.trial_finished(result)
                    yield result
            self._refresh()

    def cancel(self) -> None:
        self.queue.clear()
        for ref in list(self.running):
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)  # kills the worker; its trial process dies with it
        self.running.clear()

    def close(self) -> None:
        self.cancel()
