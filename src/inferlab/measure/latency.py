"""Latency mode (DLI): one request after another; every request timed with perf_counter_ns around a
synchronous `Session.run` (which returns only when device work is complete)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from inferlab.backends.base import Session
from inferlab.measure.budget import CHECK_NS, Events, StopRule, gc_paused
from inferlab.measure.summary import Measurement
from inferlab.records.trial import MeasureSettings


def first_and_warmup(session: Session, prepared: list[Any], settings: MeasureSettings) -> int:
    """Run the first inference (timed on its own, reported apart) and the untimed warm-up."""
    clock = time.perf_counter_ns
    t0 = clock()
    session.run(prepared[0])
    first = clock() - t0
    for i in range(settings.warmup_iterations):
        session.run(prepared[(i + 1) % len(prepared)])
    return first


def measure_latency(session: Session, prepared: list[Any], settings: MeasureSettings, batch: int,
                    events: Events) -> Measurement:
    events.phase("warmup")
    first = first_and_warmup(session, prepared, settings)
    n = len(prepared)
    samples: list[int] = []
    append = samples.append
    run = session.run
    clock = time.perf_counter_ns
    min_it = settings.min_iterations
    planned_s = settings.min_duration_s
    events.phase("measure")
    with gc_paused():
        start = clock()
        rule = StopRule(settings, start)
        next_check = start + CHECK_NS
        i = 0
        t1 = start
        while True:
            feeds = prepared[i % n]
            t0 = clock()
            run(feeds)
            t1 = clock()
            append(t1 - t0)
            i += 1
            if t1 >= next_check or i == min_it:
                reason = rule.check(i, t1, samples)
                if reason is not None:
                    break
                events.progress((t1 - start) / 1e9, planned_s, i)
                next_check = t1 + CHECK_NS
    events.phase("measured")
    return Measurement("latency", np.asarray(samples, dtype=np.int64), t1 - start, i, batch, 1, first, reason)
