"""When a measurement stops: at least min_iterations AND min_duration, at most max_duration, optionally
as soon as the median's confidence interval is narrow enough."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from inferlab.measure.stats import ci_relative_width
from inferlab.records.trial import MeasureSettings

CHECK_NS = 250_000_000  # how often the loop looks up from timing: progress and stop checks


class Events(Protocol):
    """What a driver tells the outside world (the runner forwards it to the parent process)."""

    def phase(self, name: str) -> None: ...
    def progress(self, elapsed_s: float, planned_s: float, requests: int) -> None: ...


class QuietEvents:
    def phase(self, name: str) -> None:
        return None

    def progress(self, elapsed_s: float, planned_s: float, requests: int) -> None:
        return None


class StopRule:
    def __init__(self, settings: MeasureSettings, start_ns: int) -> None:
        self.s = settings
        self.start_ns = start_ns
        self.min_ns = int(settings.min_duration_s * 1e9)
        self.max_ns = int(max(settings.max_duration_s, 0.0) * 1e9)

    def check(self, requests: int, now_ns: int, samples: Sequence[int]) -> str | None:
        """The reason to stop now, or None to go on."""
        elapsed = now_ns - self.start_ns
        if elapsed >= self.max_ns:
            return "max_duration"
        if requests < self.s.min_iterations or elapsed < self.min_ns:
            return None
        target = self.s.target_ci_rel_width
        if target is None:
            return "min_iterations_and_duration"
        if len(samples) >= 10 and ci_relative_width(np.asarray(samples)) <= target:
            return "ci_target"
        return None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage-collector pauses inside a measured window (as timeit does): what exists is collected and
    frozen first, and collection resumes afterwards. A full collection in a process holding a runtime's
    millions of objects takes milliseconds, which would land in some request's latency."""
    gc.collect()
    gc.freeze()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()
