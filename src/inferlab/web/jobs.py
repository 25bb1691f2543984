"""Runs started from the workbench: each in a thread of the server that goes through the same run lifecycle
as `inferlab run` (so every trial still runs in its own process, and a crash stays there), with its progress
kept as numbered events for the pages' live view, and a cancel that stops the trial running."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inferlab import api
from inferlab.config.schema import Experiment
from inferlab.errors import Cancelled, InferlabError, first_line
from inferlab.records.trial import TrialResult, TrialSpec

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.25  # a trial's progress events, at most this often


@dataclass
class Job:
    """A run started here: its events (each with a sequence number), whether it still runs, how it ended."""

    stop: threading.Event = field(default_factory=threading.Event)
    events: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    done: bool = False
    outcome: str | None = None        # finished, cancelled, failed: ... (one line)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None

    def add(self, kind: str, **data: Any) -> None:
        with self.lock:
            self.events.append({"seq": len(self.events), "type": kind, "t": time.time(), **data})

    def since(self, seq: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.events[seq:]


class JobReporter:
    """The executor's Reporter, turned into a job's events."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.last_progress = 0.0

    def trial_started(self, index: int, total: int, spec: TrialSpec) -> None:
        self.job.add("trial-started", index=index, total=total, label=spec.label())

    def trial_phase(self, name: str) -> None:
        self.job.add("phase", name=name)

    def trial_progress(self, elapsed_s: float, planned_s: float, requests: int) -> None:
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY_S:
            self.last_progress = now
            self.job.add("progress", elapsed_s=round(elapsed_s, 2), planned_s=round(planned_s, 2),
                         requests=requests)

    def trial_finished(self, result: TrialResult) -> None:
        lat = result.latency
        self.job.add("trial-finished", label=result.spec.label(), status=result.status, reason=result.reason,
                     throughput_sps=result.throughput_sps, latency_median_ms=lat.median_3sigma_ms if lat else None)


class Jobs:
    """The runs this server started, by run id."""

    def __init__(self, db: str | None) -> None:
        self.db = db
        self.jobs: dict[str, Job] = {}

    def start(self, exp: Experiment, wait_s: float = 300.0) -> str:
        """Plan and store the run, then run it in a thread; returns the run's id once it is stored. A config
        the plan refuses raises its InferlabError here, before anything is stored."""
        if exp.tune is not None:  # a tuning: the study is stored with the run
            return self.launch(lambda job, on_run: api.tune(exp, db=self.db, reporter=JobReporter(job),
                                                            stop=job.stop, on_run=on_run), wait_s)
        return self.launch(lambda job, on_run: api.execute(exp, db=self.db, reporter=JobReporter(job),
                                                           stop=job.stop, on_run=on_run), wait_s)

    def launch(self, body: Callable[[Job, Callable[[str], None]], object], wait_s: float = 300.0) -> str:
        """Run `body(job, on_run)` in a thread (it calls `on_run` with the run's id once the run is stored) and
        return that id; an InferlabError raised before then is raised here."""
        job = Job()
        created = threading.Event()
        error: list[BaseException] = []

        def on_run(run_id: str) -> None:
            job.run_id = run_id
            self.jobs[run_id] = job
            job.add("run-started", run_id=run_id)
            created.set()

        def work() -> None:
            try:
                body(job, on_run)
                job.outcome = "finished"
            except Cancelled:
                job.outcome = "cancelled"
            except InferlabError as exc:
                job.outcome = f"failed: {first_line(exc, 300)}"
                error.append(exc)
            except BaseException as exc:
                log.exception("a run started from the workbench failed")
                job.outcome = "failed: the server failed while running it; its log has the details"
                error.append(exc)
            finally:
                job.done = True
                job.add("run-ended", outcome=job.outcome)
                created.set()

        job.thread = threading.Thread(target=work, name="inferlab-web-run", daemon=True)
        job.thread.start()
        if not created.wait(wait_s):
            job.stop.set()
            raise InferlabError(f"the run was not stored within {wait_s:g} s; is another run holding the database?")
        if job.run_id is None:
            exc = error[0] if error else InferlabError("the run could not start")
            if isinstance(exc, InferlabError):
                raise exc
            raise InferlabError("the server failed while planning the run; its log has the details")
        return job.run_id

    def get(self, run_id: str) -> Job | None:
        return self.jobs.get(run_id)

    def cancel(self, run_id: str) -> bool:
        job = self.jobs.get(run_id)
        if job is None or job.done:
            return False
        job.stop.set()
        return True

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Cancel every run still going and wait (bounded) for its trial to be stopped."""
        for job in self.jobs.values():
            job.stop.set()
        deadline = time.monotonic() + timeout_s
        for job in self.jobs.values():
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))
