"""Runs: plan an experiment and execute it (run, bench, benchmark), and read stored trials back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferlab import config as cfg
from inferlab.api.lifecycle import Opening, lifecycle
from inferlab.config.plan import Plan
from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError, NotFound
from inferlab.execute import environment
from inferlab.execute.base import Reporter
from inferlab.execute.trial_process import check_artifacts
from inferlab.optimize.lineage import Lineage
from inferlab.records.trial import TrialResult, TrialSpec
from inferlab.store import Store

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Run:
    """A stored run and its results."""

    id: str
    db: str
    results: list[TrialResult]
    skipped: list[str] = field(default_factory=list)
    resumed_skipped: int = 0   # on resume: finished trials of earlier sessions, kept and not run again

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        from inferlab.report.rows import flatten  # with SciPy behind it: not for every command

        return pd.DataFrame([flatten(r, self.id) for r in self.results])

    @property
    def ok(self) -> bool:
        """Every trial ran to a result: measured, or judged INVALID by LoadGen (a verdict, not a failure)."""
        return all(r.status in ("ok", "invalid") for r in self.results)


log = logging.getLogger(__name__)


def execute(exp: Experiment, db: str | None = None, resume: str | None = None,
            reporter: Reporter | None = None, on_plan: Callable[[Plan], None] | None = None,
            resume_command: str | None = None, cluster: str | None = None,
            stop: threading.Event | None = None, on_run: Callable[[str], None] | None = None) -> Run:
    """Plan (resolve) the experiment, store the run, run every pending trial, store each result.

    `resume_command`: the command line that started the run, without --resume (e.g. "inferlab run x.yaml
    --db r.db"); an interrupted or stopped run names it, plus `--resume RUN`, as the way to continue. `cluster`:
    a Ray address (or "local") whose nodes run the trials. `stop`: set from another thread, it cancels the run
    (the trial running is killed; Cancelled is raised); `on_run` is told the run's id once it is stored.
    Raises Interrupted on Ctrl-C and RunStopped when the database or the artifacts folder fails mid-run;
    finished trials stay stored either way."""
    environment.collect_soon()  # this host's fingerprint, while the experiment is planned
    plan = cfg.plan(exp, devices_here=cluster is None)
    if on_plan is not None:
        on_plan(plan)
    todo: list[TrialSpec] = []

    def create(store: Store, env_id: str) -> str:
        todo.extend(plan.specs)
        source = str(exp.source) if exp.source else None
        return store.create_run(exp.name, exp.model_dump(mode="json"), plan.specs, source, env_id)

    def resume_run(store: Store, run_id: str) -> int:
        stored = store.specs(run_id)
        if {s.key() for s in plan.specs} != {s.key() for s in stored}:
            raise ConfigError(f"run {run_id} was planned from a different config "
                              f"({len(stored)} trials stored, {len(plan.specs)} planned now); "
                              "resume it with the config it started from")
        done = store.finished_keys(run_id)
        by_key = {s.key(): s for s in plan.specs}  # today's specs: this host's paths, the stored trials' keys
        todo.extend(by_key[s.key()] for s in stored if s.key() not in done)
        log.info("resuming run %s: %d finished trials kept, %d to run", run_id, len(stored) - len(todo), len(todo))
        return len(stored) - len(todo)

    opening = Opening("run", exp.source, create, resume_run, len(plan.specs), plan.specs, exp.nodes)
    with lifecycle(opening, db, resume, reporter, resume_command, cluster,
                   before_create=lambda store: check_artifacts(store.artifacts_root(), plan.specs),
                   stop=stop) as session:
        if on_run is not None:
            on_run(session.run_id)
        for _ in session.measure(todo):
            pass
        session.finish()
        return Run(session.run_id, session.store.url, session.store.results(session.run_id, with_samples=True),
                   plan.skipped, session.resumed)


def run(config_path: str | Path, db: str | None = None, resume: str | None = None,
        reporter: Reporter | None = None, resume_command: str | None = None, cluster: str | None = None) -> Run:
    """Run an experiment config; every result is stored (in the default database, see
    `inferlab.store.default_location()`, unless `db` says otherwise). `cluster`: a Ray address whose nodes
    run the trials."""
    return execute(cfg.load(config_path), db=db, resume=resume, reporter=reporter, resume_command=resume_command,
                   cluster=cluster)


@dataclass(frozen=True)
class DataOptions:
    """A dataset and how a model reads it, for the commands that take them without a config."""

    dataset: dict[str, Any]
    preprocess: dict[str, Any] = field(default_factory=dict)
    postprocess: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None


def _model_ref(model: str) -> str:
    return str(Path(model).resolve()) if ":" not in model or "/" in model else model


def _knobs_of(backend: str, params: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The flags' knobs that this backend has, when several backends are benchmarked at once (OpenVINO's
    performance_hint is not ONNX Runtime's); a knob none of them has stays, so that it is refused by name."""
    from inferlab import backends as registry

    if len(names) < 2 or backend not in registry.names():
        return params
    mine = registry.get(backend).knobs("cpu")
    known = [registry.get(n).knobs("cpu") for n in names if n in registry.names()]
    return {k: v for k, v in params.items() if k in mine or not any(k in kn for kn in known)}


def bench_experiment(model: str | list[str], backends: list[str], devices: list[str], batch: list[int] | None,
                     modes: list[str], params: dict[str, Any] | None = None, measure: dict[str, Any] | None = None,
                     name: str = "bench", scenarios: list[str] | None = None,
                     loadgen: dict[str, Any] | None = None, data: DataOptions | None = None,
                     with_speed: bool = False, inputs: dict[str, dict[str, Any]] | None = None,
                     command: str | None = None, profile: list[str] | None = None,
                     names: list[str] | None = None, framework: str | None = None) -> Experiment:
    """The experiment behind an ad-hoc `bench` (benchmark_app's role, or MLPerf's with scenarios), `accuracy`,
    `quantize` and `compare`. `batch` None: the batch the input shapes give, else 1. `inputs`: per input name,
    a config's `inputs.NAME` settings (shape, dtype, range, value, data, batch_axis). `command`: the command
    line, so that errors name its flags rather than config fields. `names`: the models' names in results
    (default: their file names' stems). `framework`: the backend of the models' source framework, the report's
    baseline."""
    models = [model] if isinstance(model, str) else model
    entries: list[dict[str, Any]] = [{"path": _model_ref(m), **({"inputs": inputs} if inputs else {}),
                                      **({"framework": framework} if framework else {})} for m in models]
    for entry, given in zip(entries, names or [], strict=False):
        entry["name"] = given
    exp: dict[str, Any] = {
        "name": name, "models": entries,
        "backends": [{"name": b, "params": _knobs_of(b, params or {}, backends)} for b in backends],
        "devices": devices, "mode": modes or None, "measure": measure or {},
    }
    if batch is not None:
        exp["batch"] = batch
    if profile:
        exp["profile"] = profile
    if scenarios:
        exp["scenario"] = scenarios
        exp["loadgen"] = loadgen or {}
    if data is not None:
        exp["dataset"] = data.dataset
        exp["accuracy"] = {"with_speed": with_speed, "metrics": data.metrics}
        for e in entries:
            e.update({"preprocess": data.preprocess, "postprocess": data.postprocess})
    return cfg.loader.from_data(exp, name, command)


def benchmark(model: str, backend: str = "onnxruntime", device: str = "cpu", batch: int = 1,
              mode: str = "latency", db: str | None = None, measure: dict[str, Any] | None = None,
              inputs: dict[str, dict[str, Any]] | None = None, profile: list[str] | None = None,
              **knobs: Any) -> TrialResult:
    """Measure one model on one backend and device in a fresh process; the result is stored too. `profile`:
    analyses after the measured window ("layers", "roofline": `r.layers`, `r.roofline`). `inputs`: per
    input name, what to feed it, as a config's `inputs` (e.g. {"sr": {"value": 16000}, "input": {"shape":
    [-1, 512]}})."""
    exp = bench_experiment(model, [backend], [device], [batch], [mode], knobs, measure, inputs=inputs,
                           profile=profile)
    return execute(exp, db=db).results[0]


def trial(ref: str, db: str | None = None) -> TrialResult:
    """A stored trial by 'RUN:N' (the N-th result of run RUN, from 1; RUN may be 'latest')."""
    run_ref, sep, index = ref.rpartition(":")
    if not sep or not index.isdigit():
        raise ConfigError(f"'{ref}': name a trial as RUN:N (the N-th row of `inferlab results RUN`), or give "
                          "two model files")
    store = Store(db)
    try:
        info = store.run_info(run_ref)
        results = store.results(info.id, with_samples=True)
    finally:
        store.close()
    n = int(index)
    if not 1 <= n <= len(results):
        raise NotFound(f"'{ref}': run {info.id} has {len(results)} results; N is 1..{len(results)}")
    return results[n - 1]


def lineage(ref: str, db: str | None = None) -> list[Lineage]:
    """A derived model's lineage (itself first, then what it came from), by path or content hash."""
    store = Store(db)
    try:
        key = str(Path(ref).resolve()) if Path(ref).exists() else ref
        chain = store.lineage(key)
    finally:
        store.close()
    if not chain:
        raise NotFound(f"'{ref}': no derived model with that path or hash; `inferlab quantize` records them")
    return chain


# tuning and reports have modules of their own, re-exported so that `api.tune` and `api.report` are where
# the rest of the API is
