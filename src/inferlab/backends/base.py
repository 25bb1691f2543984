"""The backend contract: a Backend turns (artifact, device, params) into a Session that runs inference.

What is timed: drivers time `Session.run` (synchronous: returns when outputs are complete, device work
included) and the interval from `submit` to its `on_done` callback. Buffers: feeds passed to `prepare`
belong to the caller and must stay alive while the prepared form is used; outputs belong to the runtime.
What may block: `run` blocks; `wait_slot` blocks while `depth` requests are in flight, so that `submit`,
called next, starts at once (the driver's per-request clock starts between the two); `on_done` runs on a
runtime thread and must not block.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from inferlab.errors import BackendError, did_you_mean
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.tensors import TensorSpec
from inferlab.records.trial import MemberResult, Scalar

DoneCallback = Callable[[BaseException | None], None]

# Modes whose driver keeps several requests in flight; the others send one request at a time.
ASYNC_MODES = frozenset({"throughput", "Server", "Offline"})

# Intra-op threads per request when a CPU runtime splits its cores between requests on its own. One request
# per core was fastest for throughput on the example CNNs and encoder: ONNX Runtime on 2 cores (2x1 1.2-1.5x
# one 2-thread request) and 16 (16x1 1.2-1.8x 8x2, 2.3-5x one 16-thread request), torch on 2 cores (2x1
# 1.1-1.6x 1x2; on more cores torch caps the number of requests, see backends/pt.py).
THREADS_PER_REQUEST = 1


def is_async(mode: str) -> bool:
    """Whether `mode` keeps several requests in flight (throughput, MLPerf Server and Offline)."""
    return mode in ASYNC_MODES


def usable_cores() -> int:
    """The CPUs this process may run on (after any `cpus` pinning)."""
    return len(os.sched_getaffinity(0))


def split_cores(cores: int, in_flight: int, threads: int, max_in_flight: int | None = None) -> tuple[int, int]:
    """(requests in flight, intra-op threads per request) that keep every core busy, for a CPU runtime whose
    requests run side by side; 0 means "choose". Values the user gave are kept and the other one fills the
    cores (N requests × cores/N threads); with both left to choose, one request per THREADS_PER_REQUEST
    cores, at most `max_in_flight` requests."""
    if in_flight and threads:
        return in_flight, threads
    if in_flight:
        return in_flight, max(1, cores // in_flight)
    if threads:
        return max(1, cores // threads), threads
    n = max(1, cores // THREADS_PER_REQUEST)
    if max_in_flight:
        n = min(n, max_in_flight)
    return n, max(1, cores // n)


def oversubscribed(runtime: str, in_flight: int, threads: int, cores: int) -> str | None:
    """A note when requests × threads per request ask for more CPUs than the process has."""
    if in_flight > 1 and in_flight * threads > cores:
        return (f"{runtime}: {in_flight} requests in flight × {threads} threads each = {in_flight * threads} "
                f"threads on {cores} CPUs, so requests compete for cores (oversubscribed)")
    return None


@dataclass(frozen=True)
class Knob:
    """A tunable parameter of a backend: its domain, default and meaning."""

    name: str
    doc: str
    default: Scalar
    choices: tuple[Scalar, ...] = ()
    low: int | None = None          # for integer knobs
    high: int | None = None
    kind: str = "choice"            # "choice" | "int" | "bool"
    per_core: int = 1               # an open-ended integer knob is searched up to per_core × the CPU count
    async_only: bool = False        # matters only with requests in flight (throughput mode, MLPerf scenarios)
    searched: bool = True           # a tuning searches it when left open (not, e.g., CPU placement on a GPU)
    search: tuple[Scalar, ...] = () # the values a tuning tries when it is left open (default: its whole domain)

    def domain(self) -> str:
        if self.kind == "int":
            return f"int {self.low}..{self.high if self.high is not None else '∞'}"
        if self.kind == "bool":
            return "true|false"
        return "|".join(str(c) for c in self.choices)

    def candidates(self, cores: int) -> tuple[Scalar, ...]:
        """Every value a search tries when the user leaves this knob open."""
        if self.search:
            return self.search
        if self.kind == "bool":
            return (False, True)
        if self.kind == "int":
            low = self.low or 0
            high = self.high if self.high is not None else max(low, self.per_core * cores)
            return tuple(range(low, high + 1))
        return self.choices

    def validate(self, value: Any, where: str) -> Scalar:
        """Return the value in canonical form, or raise naming `where` (the config field)."""
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise BackendError(f"{where}: {value!r} is not true/false")
        if self.kind == "int":
            if value is None and self.default is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise BackendError(f"{where}: {value!r} is not an integer ({self.domain()})")
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise BackendError(f"{where}: {value} is outside {self.domain()}")
            return value
        canon = {str(c).lower(): c for c in self.choices}
        key = str(value).lower()
        if key not in canon:
            raise BackendError(f"{where}: {value!r} is not one of {self.domain()}"
                               + did_you_mean(str(value), [str(c) for c in self.choices]))
        return canon[key]


def int_knob(name: str, doc: str, default: int | None, low: int = 0, high: int | None = None, per_core: int = 1,
             async_only: bool = False, searched: bool = True, search: Sequence[int] = ()) -> Knob:
    return Knob(name, doc, default, low=low, high=high, kind="int", per_core=per_core, async_only=async_only,
                searched=searched, search=tuple(search))


def cpus_knob(searched: bool = True) -> Knob:
    """Thread placement every CPU backend shares: the trial process is pinned (sched_setaffinity) to this many
    of the CPUs it may use, before the runtime starts its threads."""
    return int_knob("cpus", "pin the trial process to its first N allowed CPUs (0: no pinning)", 0, searched=searched)


def choice_knob(name: str, doc: str, default: Scalar, choices: Sequence[Scalar], searched: bool = True,
                search: Sequence[Scalar] = ()) -> Knob:
    return Knob(name, doc, default, choices=tuple(choices), searched=searched, search=tuple(search))


def bool_knob(name: str, doc: str, default: bool, searched: bool = True) -> Knob:
    return Knob(name, doc, default, kind="bool", searched=searched)


@dataclass(frozen=True)
class Constraint:
    """Knob values that cannot go together: while knob `when` takes one of `values`, knob `then` must take one of
    `allowed`. A tuning never proposes a point that breaks one, and a config that names one is refused."""

    when: str
    values: tuple[Scalar, ...]
    then: str
    allowed: tuple[Scalar, ...]
    why: str

    def broken(self, params: Mapping[str, Any]) -> bool:
        """Whether `params` break it (a knob missing from `params` breaks nothing yet)."""
        return (self.when in params and self.then in params and params[self.when] in self.values
                and params[self.then] not in self.allowed)

    def text(self) -> str:
        def alts(vs: tuple[Scalar, ...]) -> str:
            return "|".join(word(v) for v in vs)

        return f"{self.when}={alts(self.values)} ⇒ {self.then}={alts(self.allowed)}: {self.why}"


@dataclass(frozen=True)
class LayerTiming:
    """One layer as the runtime's profiler reports it: its times summed over every inference run since the
    session was loaded with `profile=True` (or since the last `layer_profile` call)."""

    name: str
    op_type: str
    time_ms: float                 # wall (real) time, summed
    kernel: str | None = None      # the implementation: OpenVINO's exec type, a kernel, ORT's provider kernel
    precision: str | None = None   # the precision it ran in, where the runtime says
    cpu_ms: float | None = None    # CPU time, summed, where the runtime reports it apart from wall time
    device: str | None = None      # where it ran: an execution provider, cpu, cuda:0
    order: int = 0                 # execution order


@dataclass
class SessionInfo:
    """What the session actually is after loading: effective knob values and runtime facts. `notes` are
    plain-language remarks for the result's warnings (e.g. that requests in flight cannot run in parallel)."""

    effective: dict[str, Scalar] = field(default_factory=dict)
    runtime: dict[str, Scalar] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Session:
    """A loaded model ready to run. Subclasses implement `prepare`, `run` and `outputs_of`."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    info: SessionInfo
    _pool: ThreadPoolExecutor | None = None
    _slots: threading.BoundedSemaphore
    _depth: int = 1

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """Turn host arrays into the runtime's own input form (device tensors, ...). Untimed."""
        return dict(feeds)

    def run(self, prepared: Any) -> Any:
        """Run one inference synchronously; returns the runtime's raw outputs. This is what is timed."""
        raise NotImplementedError

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        """Copy raw outputs to named host arrays."""
        raise NotImplementedError

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Convenience: prepare, run and return host outputs."""
        return self.outputs_of(self.run(self.prepare(feeds)))

    def recommended_in_flight(self) -> int:
        """How many requests the runtime wants in flight for throughput (its own hint where it has one)."""
        return 1

    def start_async(self, depth: int) -> None:
        """Get ready for `submit` with up to `depth` requests in flight."""
        # One request in flight needs no worker: running it on the calling thread avoids a second
        # OpenMP thread team (and its spinning) in runtimes that keep one per calling thread.
        self._pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="inferlab-req") if depth > 1 else None
        self._slots = threading.BoundedSemaphore(depth)
        self._depth = depth

    def wait_slot(self) -> None:
        """Block until fewer than `depth` requests are in flight; the next `submit` starts at once."""
        if self._pool is not None:  # one request in flight runs inside `submit`, so a slot is always free here
            self._slots.acquire()

    def submit(self, prepared: Any, on_done: DoneCallback) -> None:
        """Start one inference in the slot `wait_slot` found; `on_done(None)` or `on_done(exc)` is called
        when it completes.

        The default runs `run` on a worker thread, which is real parallelism for runtimes that release
        the GIL while computing (all those shipped here do); with one request in flight it runs inline, with no
        slot bookkeeping: what the request costs beyond `run` lands in throughput mode's wall time."""
        def run() -> None:
            try:
                self.run(prepared)
            except BaseException as exc:  # reported to the driver, which ends the measurement
                on_done(exc)
            else:
                on_done(None)

        if self._pool is None:
            run()
            return

        def task() -> None:
            try:
                run()
            finally:
                self._slots.release()
        self._pool.submit(task)

    def wait_all(self) -> None:
        """Block until every submitted request has completed."""
        if self._pool is None:  # inline requests have completed when `submit` returns
            return
        for _ in range(self._depth):
            self._slots.acquire()
        for _ in range(self._depth):
            self._slots.release()

    def stop_async(self) -> None:
        """Wait for every submitted request, then release async resources."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def member_figures(self, requests: int, window_s: float, batch: int) -> tuple[MemberResult, ...]:
        """Each member device's part of the last `requests` completions (the measured window's); none for a
        session on one device (a multi-device session has them)."""
        return ()

    def layer_profile(self) -> list[LayerTiming]:
        """The layers' times since loading with `profile=True` (or since the last call), and reset. Only a
        session of a backend whose `can_profile` is true, loaded with `profile=True`, has any."""
        return []

    def runtime_graph(self, folder: Path) -> Path | None:
        """Write the graph the runtime executes, after its own optimisations, into `folder` (a file Netron
        opens); None for a runtime that has none to show."""
        return None

    def close(self) -> None:
        self.stop_async()


def refusal(c: Constraint, params: Mapping[str, Any], given: Mapping[str, Any], where: str) -> str:
    """One line refusing `params` for breaking `c`, naming the knob the user gave (`given`)."""
    named = [k for k in (c.when, c.then) if k in given]
    return (f"{where}.{named[-1] if named else c.then}: {c.then} {word(params[c.then])} cannot go with {c.when} "
            f"{word(params[c.when])} ({c.why}); change one of them")


def word(v: Any) -> str:
    """A knob value as a config spells it (true, not True)."""
    return str(v).lower() if isinstance(v, bool) else str(v)


class Backend:
    """Base for runtimes. `name` is the entry-point name; `formats` are the model formats it loads."""

    name: ClassVar[str]
    formats: ClassVar[tuple[ModelFormat, ...]]
    distribution: ClassVar[str]  # the pip distribution whose version is reported
    can_profile: ClassVar[bool] = False  # whether `load(..., profile=True)` gives a per-layer profile
    can_split: ClassVar[bool] = False    # whether `hetero:A,B` splits one model across devices (`load_split`)

    @property
    def install(self) -> str:
        """The line that installs this runtime where `available` is false (its inferlab extra)."""
        return f"pip install 'inferlab[{self.name}]'"

    def available(self) -> bool:
        raise NotImplementedError

    def version(self) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.distribution)
        except PackageNotFoundError:
            return None

    def devices(self) -> list[str]:
        return ["cpu"]

    def accepts_device(self, device: str) -> bool:
        """Whether the device string is one this runtime can name (not whether it is present)."""
        return device == "cpu"

    def knobs(self, device: str) -> dict[str, Knob]:
        return {}

    def device_kinds(self) -> list[str]:
        """One device of each kind this runtime can name, whether present or not (each kind has its own knobs
        and search space: `inferlab backends` shows them all)."""
        return ["cpu"]

    def constraints(self, device: str) -> tuple[Constraint, ...]:
        """Knob values that cannot go together on `device`."""
        return ()

    def seeds(self, device: str) -> tuple[dict[str, Scalar], ...]:
        """Configurations a tuning on `device` measures first, where the knobs are left open (what engineers
        know to be fast there); the sampler takes over after them."""
        return ()

    def precision_of(self, params: Mapping[str, Scalar]) -> str | None:
        """The compute precision that `params` select (fp32, fp16, bf16 ...), for a runtime whose precision is a
        knob; None where the model file's own precision is what runs."""
        return None

    def thread_environment(self, params: Mapping[str, Scalar]) -> dict[str, str]:
        """Environment variables to set in the trial process before the runtime is imported."""
        return {}

    def cpu_share(self, params: Mapping[str, Scalar], cores: int) -> dict[str, Scalar]:
        """`params` for one of several sessions that share the CPU, each with `cores` cores' worth of threads
        (a multi-device naming the CPU more than once); a thread count the user gave is kept."""
        return dict(params)

    def cache_environment(self, folder: str) -> dict[str, str]:
        """Environment variables that make the runtime keep what it compiles under `folder`, for the later trials
        of a tuning to reuse (set in the trial process before the runtime is imported)."""
        return {}

    def convert(self, model: Artifact, inputs: list[TensorSpec] | None) -> None:
        """Make (and cache) the file `load` reads when `model` is in another format (a .pt2 or a Keras model for
        ONNX Runtime), so that a trial's load time is its runtime's load, not a conversion."""
        return None

    def load(self, model: Artifact, device: str, params: Mapping[str, Scalar],
             inputs: list[TensorSpec] | None = None, mode: str = "latency", profile: bool = False) -> Session:
        """Load and compile `model` for `device`; `inputs` are the trial's concrete input specs. `mode` is the
        trial's mode: knobs left at 0 (auto) resolve for it, e.g. threads split across requests when the
        mode keeps several in flight (`is_async`). `profile` turns the runtime's per-layer profiler on (only
        where `can_profile`): such a session is never the one measured."""
        raise NotImplementedError

    def load_split(self, model: Artifact, devices: Sequence[str], params: Mapping[str, Scalar],
                   inputs: list[TensorSpec] | None, mode: str, affinity: Sequence[tuple[str, str]]) -> Session:
        """Load `model` split across `devices` (`hetero:A,B`): every op on the first device unless a rule of
        `affinity` (pattern, device) sends it to another (only where `can_split`)."""
        raise BackendError(f"{self.name} cannot split a model across devices")

    def preflight(self, model: Artifact, device: str, params: Sequence[Mapping[str, Scalar]],
                  inputs: list[TensorSpec]) -> None:
        """Raise naming the knob when `model` cannot run on `device` with any of `params` in a way only loading
        it would otherwise find (at planning, once per model and device, before any trial)."""
        return None

    def check_split(self, model: Artifact, affinity: Sequence[tuple[str, str]], inputs: list[TensorSpec]) -> None:
        """Raise naming a rule of `affinity` that matches no layer of `model` (at planning, before any trial)."""
        return None

    def mode_defaults(self, device: str, mode: str) -> dict[str, Scalar]:
        """Knob values that replace a knob's declared default in `mode` when the user left the knob out
        (e.g. OpenVINO's THROUGHPUT hint for the async modes)."""
        return {}

    def broken(self, device: str, params: Mapping[str, Any]) -> Constraint | None:
        """The first constraint that `params` break on `device`, if any."""
        return next((c for c in self.constraints(device) if c.broken(params)), None)

    def check_params(self, device: str, params: Mapping[str, Any], where: str,
                     mode: str = "latency", constraints: bool = True) -> dict[str, Scalar]:
        """Validate knob names and values; return them with defaults filled in: the knob's own default, or
        the mode's (`mode_defaults`) where it has one. Values that break a constraint are refused, naming the
        knob the user set, unless `constraints` is False (a sweep skips such combinations instead)."""
        knobs = self.knobs(device)
        out: dict[str, Scalar] = {}
        for key, value in params.items():
            if key not in knobs:
                raise BackendError(f"{where}.{key}: '{key}' is not a knob of backend '{self.name}'"
                                   + (did_you_mean(key, knobs) or f"; its knobs are {sorted(knobs)}"))
            out[key] = knobs[key].validate(value, f"{where}.{key}")
        defaults = {**{k: knob.default for k, knob in knobs.items()}, **self.mode_defaults(device, mode)}
        for key, value in defaults.items():
            if key in knobs:
                out.setdefault(key, value)
        if constraints and (c := self.broken(device, out)) is not None:
            raise BackendError(refusal(c, out, params, where))
        return out
