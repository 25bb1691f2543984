"""The local executor: the trials of a run on this host, one after another, each in a fresh process
(execute/trial_process.py)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from inferlab.errors import Cancelled
from inferlab.execute.base import Reporter
from inferlab.execute.trial_process import TrialProcess
from inferlab.records.trial import TrialResult, TrialSpec


class LocalExecutor:
    slots = 1

    def __init__(self, reporter: Reporter | None = None, environment_id: str | None = None,
                 artifacts: Path | None = None, owner: str = "an inferlab run",
                 stop: threading.Event | None = None) -> None:
        self.process = TrialProcess(reporter, environment_id, artifacts, owner)
        self.process.stop = self.stop = stop  # set from another thread: the run stops, its trial killed
        self.reporter = self.process.reporter
        self.queue: deque[TrialSpec] = deque()
        self.total = 0
        self.started = 0
        self.fixed_total: int | None = None
        self.cancelled = False

    def check(self, specs: Sequence[TrialSpec]) -> None:
        return None  # this host was checked when the experiment was planned

    def bind(self, owner: str, artifacts: Path | None, compiled: bool = False) -> None:
        self.process.owner, self.process.artifacts = owner, artifacts
        self.process.compiled = artifacts / "compiled" if compiled and artifacts is not None else None

    def show_progress(self, done: int, total: int | None) -> None:
        self.started, self.fixed_total = done, total

    def submit(self, specs: Sequence[TrialSpec]) -> None:
        self.queue.extend(specs)
        self.total += len(specs)

    def results(self) -> Iterator[TrialResult]:
        """Runs the queued trials here, in order; Ctrl-C (or SIGTERM turned into it) kills the trial running, and
        so does `stop` when it is set (raising Cancelled)."""
        while self.queue and not self.cancelled:
            if self.stop is not None and self.stop.is_set():
                raise Cancelled("run cancelled")
            spec = self.queue.popleft()
            self.reporter.trial_started(self.started, self.fixed_total or self.total, spec)
            self.started += 1
            result = self.process.run(spec)
            self.reporter.trial_finished(result)
            yield result

    def cancel(self) -> None:
        self.cancelled = True
        self.queue.clear()

    def close(self) -> None:
        self.cancel()
