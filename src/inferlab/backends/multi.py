"""inferlab's multi-device: `multi:A,B,...` loads one session of the same runtime per member device and sends
each request to whichever member has a free slot, so a faster member takes more; the same device named twice
means sessions that split its cores. Each member's share, latency and throughput are kept beside the total."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from inferlab.backends.base import Backend, DoneCallback, Session, SessionInfo, usable_cores
from inferlab.backends.split import hetero_members
from inferlab.models.artifact import Artifact
from inferlab.models.tensors import TensorSpec
from inferlab.records.trial import MemberResult, Scalar

PREFIX = "multi:"


def members_of(device: str) -> list[str] | None:
    """The member devices of `multi:A,B` (in order, repeats kept), or None for any other device."""
    if not device.lower().startswith(PREFIX):
        return None
    return [d.strip() for d in device[len(PREFIX):].split(",") if d.strip()]


def compound(device: str) -> list[str] | None:
    """The member devices of a multi-device or a split (`hetero:A,B`), or None for one device."""
    return members_of(device) or hetero_members(device)


def accepts(backend: Backend, device: str) -> bool:
    """Whether `backend` can name `device`: a multi-device when it can name every member; a split when it can
    also split a model."""
    members = compound(device)
    if members is None:
        return backend.accepts_device(device)
    if hetero_members(device) is not None and not backend.can_split:
        return False
    return len(members) >= 2 and all(backend.accepts_device(m) and compound(m) is None for m in members)


def knob_device(device: str) -> str:
    """The device whose knobs a trial's params are checked against: a compound device's first member."""
    members = compound(device)
    return members[0] if members else device


@dataclass
class _Member:
    device: str
    session: Session
    done: list[tuple[int, int]]      # (completion clock ns, latency ns) of each request, in completion order
    # a member with one slot runs its request inline in `submit`: on its own thread here, so that the members
    # still run side by side
    worker: ThreadPoolExecutor | None = None


class MultiSession(Session):
    """One session per member device behind the Session interface. Synchronous runs go round the members in
    turn; requests in flight go to the first member with a free slot (a queue of slot tokens)."""

    def __init__(self, members: Sequence[tuple[str, Session]]) -> None:
        self._members = [_Member(d, s, []) for d, s in members]
        first = self._members[0].session
        self.inputs, self.outputs = first.inputs, first.outputs
        self.info = SessionInfo(
            effective={f"{m.device}#{i}.{k}": v for i, m in enumerate(self._members)
                       for k, v in m.session.info.effective.items()},
            runtime={**first.info.runtime, "members": ",".join(m.device for m in self._members)},
            notes=[f"{m.device} (member {i}): {n}" for i, m in enumerate(self._members) for n in m.session.info.notes])
        self._turn = 0
        self._lock = threading.Lock()
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._next = 0

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        return tuple(m.session.prepare(feeds) for m in self._members)

    def run(self, prepared: Any) -> Any:
        i = self._turn
        self._turn = (i + 1) % len(self._members)
        m = self._members[i]
        t0 = time.perf_counter_ns()
        raw = m.session.run(prepared[i])
        t1 = time.perf_counter_ns()
        m.done.append((t1, t1 - t0))
        return i, raw

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        i, member_raw = raw
        return self._members[i].session.outputs_of(member_raw)

    def recommended_in_flight(self) -> int:
        return sum(max(1, m.session.recommended_in_flight()) for m in self._members)

    def start_async(self, depth: int) -> None:
        """Each member gets its share of the `depth` slots (at least one), as tokens in one queue."""
        k = len(self._members)
        depths = [max(1, depth // k + (1 if i < depth % k else 0)) for i in range(k)]
        self._free = queue.SimpleQueue()
        for m in self._members:  # the first-inference and warm-up runs are not the window's
            m.done.clear()
        for i, (m, d) in enumerate(zip(self._members, depths, strict=True)):
            m.session.start_async(d)
            if d == 1:
                m.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"inferlab-member{i}")
            for _ in range(d):
                self._free.put(i)

    def wait_slot(self) -> None:
        self._next = self._free.get()  # the first member with a free slot
        self._members[self._next].session.wait_slot()

    def submit(self, prepared: Any, on_done: DoneCallback) -> None:
        i = self._next
        m = self._members[i]
        t0 = time.perf_counter_ns()

        def done(exc: BaseException | None) -> None:
            t1 = time.perf_counter_ns()
            with self._lock:
                m.done.append((t1, t1 - t0))
            self._free.put(i)
            on_done(exc)

        if m.worker is not None:
            m.worker.submit(m.session.submit, prepared[i], done)
        else:
            m.session.submit(prepared[i], done)

    def wait_all(self) -> None:
        for m in self._members:
            if m.worker is not None:  # its one request, if any, is done when the worker is idle again
                m.worker.submit(lambda: None).result()
            m.session.wait_all()

    def stop_async(self) -> None:
        for m in self._members:
            if m.worker is not None:
                m.worker.shutdown(wait=True)
                m.worker = None
            m.session.stop_async()

    def close(self) -> None:
        self.stop_async()
        for m in self._members:
            m.session.close()

    def member_figures(self, requests: int, window_s: float, batch: int) -> tuple[MemberResult, ...]:
        log = sorted((t, i, lat) for i, m in enumerate(self._members) for t, lat in m.done)[-requests:]
        out = []
        for i, m in enumerate(self._members):
            lats = np.array([lat for _, j, lat in log if j == i], dtype=np.int64)
            n = int(lats.size)
            out.append(MemberResult(m.device, i, n, n / len(log) if log else 0.0,
                                    n * batch / window_s if window_s > 0 else None,
                                    float(np.median(lats)) / 1e6 if n else None,
                                    float(np.percentile(lats, 99)) / 1e6 if n else None))
        return tuple(out)


def open_session(backend: Backend, model: Artifact, device: str, params: Mapping[str, Scalar],
                 inputs: list[TensorSpec] | None, mode: str, affinity: Sequence[tuple[str, str]] = ()) -> Session:
    """The trial's session: the runtime's own for a single device, the model split by `affinity` for
    `hetero:A,B`, a MultiSession for `multi:A,B`. Members on the CPU split its cores evenly
    (`Backend.cpu_share`), less one core per accelerator member."""
    if (split_over := hetero_members(device)) is not None:
        return backend.load_split(model, split_over, params, inputs, mode, affinity)
    members = members_of(device)
    if members is None:
        return backend.load(model, device, params, inputs, mode=mode)
    cpus = [m for m in members if m == "cpu"]
    accelerators = len(members) - len(cpus)
    # each accelerator keeps a core for the host thread that launches its work; the CPU members share the rest
    cores = max(1, (usable_cores() - accelerators) // max(1, len(cpus)))
    shared = len(cpus) > 1 or (bool(cpus) and accelerators > 0)
    loaded: list[tuple[str, Session]] = []
    try:
        for m in members:
            member_params = backend.cpu_share(params, cores) if m == "cpu" and shared else params
            loaded.append((m, backend.load(model, m, member_params, inputs, mode=mode)))
    except BaseException:
        for _, s in loaded:
            s.close()
        raise
    session = MultiSession(loaded)
    if shared:
        session.info.notes.append(f"{len(cpus)} CPU session(s) beside {accelerators} accelerator(s): {cores} "
                                  f"cores' threads each" + (f", {accelerators} core(s) left to launch the "
                                                            "accelerators' work" if accelerators else ""))
    return session
