"""Throughput mode: N requests kept in flight through the session's async path; FPS = completed samples /
wall time of the measured window (first submission to last completion). Per-request latency is the time
from submission to the completion callback. N is `MeasureSettings.in_flight` when set, else the session's
`recommended_in_flight()`: what the runtime recommends for throughput, as the backend was loaded for the mode."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from inferlab.backends.base import Session
from inferlab.measure.budget import CHECK_NS, Events, StopRule, gc_paused
from inferlab.measure.latency import first_and_warmup
from inferlab.measure.summary import Measurement
from inferlab.records.trial import MeasureSettings


class _Recorder:
    """Submits requests (the session bounds how many are in flight) and records their completions."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.latencies: list[int] = []
        self.completions: list[int] = []
        self.errors: list[BaseException] = []
        self.record = False

    def submit(self, prepared: Any) -> None:
        clock = time.perf_counter_ns
        record = self.record
        latencies, completions, errors = self.latencies, self.completions, self.errors
        self.session.wait_slot()  # waiting for a free request is queueing, not the request's latency
        t_submit = clock()

        def done(exc: BaseException | None) -> None:
            t_done = clock()
            if exc is not None:
                errors.append(exc)
            elif record:
                latencies.append(t_done - t_submit)
                completions.append(t_done)

        self.session.submit(prepared, done)

    def drain(self) -> None:
        self.session.wait_all()
        if self.errors:
            raise self.errors[0]


def measure_throughput(session: Session, prepared: list[Any], settings: MeasureSettings, batch: int,
                       events: Events) -> Measurement:
    events.phase("warmup")
    first = first_and_warmup(session, prepared, settings)
    depth = settings.in_flight or session.recommended_in_flight()
    session.start_async(depth)
    flight = _Recorder(session)
    n = len(prepared)
    try:
        for i in range(max(settings.warmup_iterations, 2 * depth)):
            flight.submit(prepared[i % n])
        flight.drain()
        clock = time.perf_counter_ns
        events.phase("measure")
        with gc_paused():
            flight.record = True
            start = clock()
            rule = StopRule(settings, start)
            next_check = start + CHECK_NS
            i = 0
            while True:
                flight.submit(prepared[i % n])
                i += 1
                now = clock()
                if now >= next_check or i == settings.min_iterations:
                    reason = rule.check(len(flight.completions), now, flight.latencies)
                    if reason is not None:
                        break
                    events.progress((now - start) / 1e9, settings.min_duration_s, i)
                    next_check = now + CHECK_NS
            flight.drain()
    finally:
        session.stop_async()
    events.phase("measured")
    completions = np.asarray(flight.completions, dtype=np.int64) - start
    end = int(completions.max()) if completions.size else clock() - start
    return Measurement("throughput", np.asarray(flight.latencies, dtype=np.int64), end, len(flight.latencies),
                       batch, depth, first, reason, completions)
