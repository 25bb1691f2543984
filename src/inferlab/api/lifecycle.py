"""One run lifecycle for `run`, `bench`, `tune` (and later the web workbench): open the store, create or
resume the run, record the environment, pick the executor (this host, or a Ray cluster), store each result
as it arrives, and end the run as finished, interrupted (Ctrl-C, SIGTERM) or stopped (the database or the
artifacts folder failed under it), always saying how to continue."""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferlab.errors import ArtifactsError, Cancelled, ClusterError, Interrupted, RunStopped, StoreError
from inferlab.execute import environment
from inferlab.execute.base import Executor, Reporter
from inferlab.execute.local import LocalExecutor
from inferlab.records.trial import TrialResult, TrialSpec
from inferlab.store import Store

log = logging.getLogger(__name__)


def resume_hint(command: str | None, verb: str, source: Path | None, db: str | None, run_id: str) -> str:
    """How the user continues a run, as a phrase with a command line to paste: `command` (the command line that
    started it, without --resume), else `inferlab VERB CONFIG [--db DB]` when the experiment came from a file."""
    if command is None and source is not None:
        command = f"inferlab {verb} {shlex.quote(str(source))}"
        if db:
            command += f" --db {shlex.quote(db if '://' in db else str(Path(db).expanduser().resolve()))}"
    if command is None:
        return f"continue it by running the same experiment again with resume='{run_id}'"
    return f"continue it with `{command} --resume {run_id}`"


def mark(store: Store, run_id: str, status: str) -> bool:
    """Set a run's status if the database still takes writes (it may be the fault being reported)."""
    try:
        store.finish_run(run_id, status)
    except StoreError:
        return False
    return True


def make_executor(cluster: str | None, reporter: Reporter | None, env_id: str,
                  register: Callable[[dict[str, Any]], str], labels: dict[str, str] | None = None,
                  stop: threading.Event | None = None) -> Executor:
    """This host's executor, or a Ray cluster's at `cluster` (an address, or "local" for a throwaway one).
    `register` stores a node's environment and returns its id (each result carries its node's); `labels`: the
    node labels a cluster node must have to take trials; `stop`: set from another thread, it cancels the run
    (this host's executor only)."""
    if cluster is None:
        return LocalExecutor(reporter, env_id, stop=stop)
    if stop is not None:
        raise ClusterError("a run on a cluster cannot be cancelled from another thread yet; run it on this host")
    from inferlab.execute.cluster import RayExecutor  # Ray is imported only when a cluster is asked for

    return RayExecutor(cluster, reporter, register, labels=labels)


@dataclass
class RunSession:
    """A run being executed: its store, id, environment and executor. Use `measure` to run specs and store each
    result as it arrives; `finish` ends it. Leaving the `lifecycle` block by an exception ends it as
    interrupted or stopped."""

    store: Store
    run_id: str
    env_id: str
    executor: Executor
    hint: str
    verb: str
    resumed: int = 0                  # results kept from earlier sessions
    total: int | None = None          # trials planned, when known up front
    saved: int = 0
    on_end: list[Callable[[str], None]] = field(default_factory=list)  # told "interrupted", "stopped", ...

    def measure(self, specs: Sequence[TrialSpec]) -> Iterator[TrialResult]:
        """Run `specs` on the executor; store each result as it finishes and yield it (in any order)."""
        self.executor.submit(specs)
        for result in self.executor.results():
            self.store.save_result(self.run_id, result)
            self.saved += 1
            yield result

    def finish(self) -> None:
        self.store.finish_run(self.run_id, "finished")

    def end(self, status: str) -> None:
        for hook in self.on_end:
            hook(status)


@dataclass
class Opening:
    """How a run begins: `create` stores a new run and returns its id; `resume` checks a stored run against
    this session's plan and returns the specs still to run (or None when the caller decides itself)."""

    verb: str                                     # "run" or "tune": the command named in hints
    source: Path | None
    create: Callable[[Store, str], str]           # (store, env_id) -> run id
    resume: Callable[[Store, str], int] | None = None  # (store, run id) -> results kept from earlier sessions
    total: int | None = None
    specs: Sequence[TrialSpec] = ()               # the trials known up front, checked against the executor
    labels: dict[str, str] = field(default_factory=dict)  # cluster node labels the trials need
    compiled: bool = False  # runtimes keep what they compile for the run's later trials (a tuning)


class lifecycle:
    """`with lifecycle(opening, db, resume_id, ...) as run:` opens the store, creates or resumes the run, records
    the environment and builds the executor; on leaving, Ctrl-C becomes Interrupted (run marked 'interrupted')
    and a failing database or artifacts folder becomes RunStopped (run marked 'stopped'), both naming the
    command that continues the run. The store is closed on every path."""

    def __init__(self, opening: Opening, db: str | None, resume: str | None, reporter: Reporter | None,
                 resume_command: str | None = None, cluster: str | None = None,
                 before_create: Callable[[Store], None] | None = None, stop: threading.Event | None = None) -> None:
        self.opening, self.db, self.resume_id, self.reporter = opening, db, resume, reporter
        self.resume_command, self.cluster, self.before_create = resume_command, cluster, before_create
        self.stop = stop
        self.session: RunSession | None = None
        self.store: Store | None = None

    def __enter__(self) -> RunSession:
        self.store = store = Store(self.db)
        try:
            if self.before_create is not None:
                self.before_create(store)  # checks that must pass before anything of the run is written
            env = environment.collect()
            env_id = store.ensure_environment(environment.fingerprint(env), env)

            def register(node_env: dict[str, Any]) -> str:
                return store.ensure_environment(environment.fingerprint(node_env), node_env)

            executor = make_executor(self.cluster, self.reporter, env_id, register, self.opening.labels, self.stop)
            try:
                executor.check(self.opening.specs)  # a trial no host can run is refused before the run exists
            except BaseException:
                executor.close()
                raise
            resumed = 0
            if self.resume_id:
                run_id = store.run_info(self.resume_id).id
                imported = store.import_pending(run_id)
                if imported:
                    log.info("run %s: %d results kept beside the database were stored", run_id, imported)
                assert self.opening.resume is not None
                resumed = self.opening.resume(store, run_id)
            else:
                run_id = self.opening.create(store, env_id)
            hint = resume_hint(self.resume_command, self.opening.verb, self.opening.source, self.db, run_id)
            executor.bind(f"{self.opening.verb} {run_id}", store.artifacts_dir(run_id), self.opening.compiled)
        except BaseException:
            store.close()
            raise
        self.session = RunSession(store, run_id, env_id, executor, hint, self.opening.verb, resumed,
                                  self.opening.total)
        return self.session

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        assert self.store is not None
        s = self.session
        try:
            if s is None or exc is None:
                return
            s.executor.cancel()
            what = "tuning" if s.verb == "tune" else "run"
            if isinstance(exc, KeyboardInterrupt):
                s.end("interrupted")
                mark(self.store, s.run_id, "interrupted")
                stored = "its trials are stored" if s.verb == "tune" else "finished trials are stored"
                raise Interrupted(f"{what} {s.run_id} interrupted; {stored}; {s.hint}") from None
            if isinstance(exc, Cancelled):
                s.end("cancelled")
                mark(self.store, s.run_id, "cancelled")
                raise Cancelled(f"{what} {s.run_id} cancelled; finished trials are stored; {s.hint}") from None
            if isinstance(exc, StoreError | ArtifactsError):  # the environment failed under the run
                s.end("stopped")
                raise stopped(self.store, what, s.run_id, exc, s.resumed + s.saved, s.total, s.hint) from None
        finally:
            if s is not None:
                s.executor.close()
            self.store.close()


def stopped(store: Store, what: str, run_id: str, cause: BaseException, kept: int, total: int | None,
            hint: str) -> RunStopped:
    """Mark a run that its environment stopped (database or artifacts folder failing) and say what was kept
    and what to do."""
    marked = ("it is marked 'stopped'" if mark(store, run_id, "stopped") else
              "it could not be marked 'stopped' (the database takes no writes) and still reads 'running'")
    of = f" of {total}" if total is not None else ""
    return RunStopped(f"{what} {run_id} stopped: {cause}. {kept}{of} results are stored and {marked}; once that "
                      f"is fixed, {hint}", run_id, kept, total or kept)
