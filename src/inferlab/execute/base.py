"""What runs trials: the Executor protocol (submit specs, take results as they finish, cancel), and the Reporter
that an executor tells of progress. LocalExecutor (this host) and RayExecutor (a Ray cluster) implement it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from inferlab.records.trial import TrialResult, TrialSpec


class Reporter(Protocol):
    """Where an executor reports progress (the CLI renders it with rich). With several trials in flight (a
    cluster), `trial_phase` and `trial_progress` speak of the trial started last."""

    def trial_started(self, index: int, total: int, spec: TrialSpec) -> None: ...
    def trial_phase(self, name: str) -> None: ...
    def trial_progress(self, elapsed_s: float, planned_s: float, requests: int) -> None: ...
    def trial_finished(self, result: TrialResult) -> None: ...


class QuietReporter:
    def trial_started(self, index: int, total: int, spec: TrialSpec) -> None:
        return None

    def trial_phase(self, name: str) -> None:
        return None

    def trial_progress(self, elapsed_s: float, planned_s: float, requests: int) -> None:
        return None

    def trial_finished(self, result: TrialResult) -> None:
        return None


class Executor(Protocol):
    """Runs trial specs, each in a fresh process on a host where it is measured alone.

    `submit` queues specs (it may be called again while results are being taken); `results` yields each
    submitted trial's result once, as trials finish, in any order, and returns when none is queued or running;
    `cancel` stops queued and running trials (their results are not yielded); `slots` is how many trials may
    run at once (a tuner asks for that many proposals); `close` frees what the executor holds. Before the
    first submit: `check` refuses specs no host of the executor can run (before anything of the run is
    stored), `bind` names the run (shown to whoever waits for a host), where trials keep their files and
    whether the runtimes keep what they compile for the run's later trials (`compiled`: a tuning), and
    `show_progress` sets where the reporter's count starts and what it counts to (a resumed tuning)."""

    slots: int

    def check(self, specs: Sequence[TrialSpec]) -> None: ...
    def bind(self, owner: str, artifacts: Path | None, compiled: bool = False) -> None: ...
    def show_progress(self, done: int, total: int | None) -> None: ...
    def submit(self, specs: Sequence[TrialSpec]) -> None: ...
    def results(self) -> Iterator[TrialResult]: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...
