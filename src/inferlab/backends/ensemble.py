"""A co-located ensemble behind the Session interface: one session per member model on the same device, every
request fed to every member. At the same time, each member runs on its own thread (on a GPU, its own CUDA
stream); one after another, they run in turn on the thread that sent the request. The members run
at the same time (`concurrent`), one after another (`sequential`), or one member alone, switched between
measurement windows on the same loaded sessions, so that all three are measured in one trial."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from inferlab.backends.base import Session, SessionInfo
from inferlab.records.trial import MemberResult

Schedule = Literal["concurrent", "sequential"]


class EnsembleSession(Session):
    """`prepared` is a tuple with each member's prepared inputs (`prepare_members`); `run` returns a tuple
    with each active member's raw outputs (None for a member left out by `use`)."""

    def __init__(self, members: Sequence[tuple[str, Session]], device: str) -> None:
        self.names = [n for n, _ in members]
        self.sessions = [s for _, s in members]
        self.device = device
        first = self.sessions[0]
        self.inputs, self.outputs = first.inputs, first.outputs
        self.info = SessionInfo(
            effective={f"{n}.{k}": v for n, s in members for k, v in s.info.effective.items()},
            runtime={**first.info.runtime, "members": ",".join(self.names)},
            notes=[f"{n}: {note}" for n, s in members for note in s.info.notes])
        self._workers = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"inferlab-member{i}")
                         for i in range(len(members))]
        self._lock = threading.Lock()
        self._log: list[list[tuple[int, int]]] = [[] for _ in members]  # (completion ns, latency ns) per member
        self.active: tuple[int, ...] = tuple(range(len(members)))
        self.schedule: Schedule = "concurrent"

    def use(self, active: Sequence[int], schedule: Schedule) -> None:
        """Which members the next requests go to, and how; clears the members' timing logs."""
        self.active, self.schedule = tuple(active), schedule
        for log in self._log:
            log.clear()

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        raise TypeError("an ensemble's members take their own inputs: use prepare_members")

    def prepare_members(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> tuple[Any, ...]:
        return tuple(s.prepare(f) for s, f in zip(self.sessions, feeds, strict=True))

    def _timed(self, i: int, prepared: Any) -> Any:
        t0 = time.perf_counter_ns()
        raw = self.sessions[i].run(prepared)
        t1 = time.perf_counter_ns()
        with self._lock:
            self._log[i].append((t1, t1 - t0))
        return raw

    def run(self, prepared: Any) -> Any:
        raws: list[Any] = [None] * len(self.sessions)
        if self.schedule == "sequential":  # on the calling thread: no hand-off between members
            for i in self.active:
                raws[i] = self._timed(i, prepared[i])
        else:
            futures = [(i, self._workers[i].submit(self._timed, i, prepared[i])) for i in self.active]
            for i, f in futures:
                raws[i] = f.result()
        return tuple(raws)

    def member_outputs(self, raw: Any) -> list[dict[str, np.ndarray] | None]:
        return [s.outputs_of(r) if r is not None else None for s, r in zip(self.sessions, raw, strict=True)]

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        first = next(i for i, r in enumerate(raw) if r is not None)
        return self.sessions[first].outputs_of(raw[first])

    def recommended_in_flight(self) -> int:
        # concurrent: one request per member in flight keeps every member busy; one after another: one
        return len(self.active) if self.schedule == "concurrent" else 1

    def start_async(self, depth: int) -> None:
        # members one after another keep one request at a time: with more, a member would start the next
        # request while another member works on the last one, which is co-location again
        super().start_async(depth if self.schedule == "concurrent" else 1)

    def member_figures(self, requests: int, window_s: float, batch: int) -> tuple[MemberResult, ...]:
        """Each active member's part of the last `requests` requests: every member serves every request."""
        out = []
        for i in self.active:
            lats = np.array([lat for _, lat in sorted(self._log[i])[-requests:]], dtype=np.int64)
            n = int(lats.size)
            out.append(MemberResult(self.device, i, n, 1.0 if n else 0.0,
                                    n * batch / window_s if window_s > 0 and n else None,
                                    float(np.median(lats)) / 1e6 if n else None,
                                    float(np.percentile(lats, 99)) / 1e6 if n else None, model=self.names[i]))
        return tuple(out)

    def close(self) -> None:
        self.stop_async()
        for w in self._workers:
            w.shutdown(wait=True)
        for s in self.sessions:
            s.close()
