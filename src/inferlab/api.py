"""The public Python API: what a notebook imports.

    import inferlab
    r = inferlab.benchmark("model.onnx", backend="openvino", batch=8, mode="throughput")
    run = inferlab.run("experiment.yaml"); run.to_dataframe()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferlab import config as cfg
from inferlab.config.plan import Plan
from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError, Interrupted
from inferlab.execute import environment
from inferlab.execute.local import LocalExecutor, Reporter
from inferlab.measure.trial import TrialResult
from inferlab.report.rows import flatten
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

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([flatten(r, self.id) for r in self.results])

    @property
    def ok(self) -> bool:
        """Every trial ran to a result: measured, or judged INVALID by LoadGen (a verdict, not a failure)."""
        return all(r.status in ("ok", "invalid") for r in self.results)


def execute(exp: Experiment, db: str | None = None, resume: str | None = None,
            reporter: Reporter | None = None, on_plan: Callable[[Plan], None] | None = None) -> Run:
    """Plan (resolve) the experiment, store the run, run every pending trial, store each result."""
    plan = cfg.plan(exp)
    if on_plan is not None:
        on_plan(plan)
    store = Store(db)
    try:
        env = environment.collect()
        env_id = store.ensure_environment(environment.fingerprint(env), env)
        if resume:
            info = store.run_info(resume)
            stored = store.specs(info.id)
            planned = {s.key() for s in plan.specs}
            if planned != {s.key() for s in stored}:
                raise ConfigError(f"run {info.id} was planned from a different config "
                                  f"({len(stored)} trials stored, {len(plan.specs)} planned now); "
                                  "resume it with the config it started from")
            run_id = info.id
            done = store.finished_keys(run_id)
            todo = [s for s in stored if s.key() not in done]
        else:
            source = str(exp.source) if exp.source else None
            run_id = store.create_run(exp.name, exp.model_dump(mode="json"), plan.specs, source, env_id)
            todo = plan.specs
        executor = LocalExecutor(reporter, env_id, store.artifacts_dir(run_id))
        try:
            for result in executor.run(todo):
                store.save_result(run_id, result)
        except KeyboardInterrupt:
            store.finish_run(run_id, "interrupted")
            raise Interrupted(f"run {run_id} interrupted; finished trials are stored; "
                              f"continue it with `inferlab run CONFIG --resume {run_id}`") from None
        store.finish_run(run_id, "finished")
        return Run(run_id, store.url, store.results(run_id), plan.skipped)
    finally:
        store.close()


def run(config_path: str | Path, db: str | None = None, resume: str | None = None,
        reporter: Reporter | None = None) -> Run:
    """Run an experiment config; every result is stored (./inferlab.db unless `db` says otherwise)."""
    return execute(cfg.load(config_path), db=db, resume=resume, reporter=reporter)


def bench_experiment(model: str, backends: list[str], devices: list[str], batch: list[int], modes: list[str],
                     params: dict[str, Any] | None = None, measure: dict[str, Any] | None = None,
                     name: str = "bench", scenarios: list[str] | None = None,
                     loadgen: dict[str, Any] | None = None) -> Experiment:
    """The experiment behind an ad-hoc `bench` (benchmark_app's role, or MLPerf's with scenarios)."""
    data: dict[str, Any] = {
        "name": name,
        "models": [{"path": str(Path(model).resolve()) if ":" not in model or "/" in model else model}],
        "backends": [{"name": b, "params": params or {}} for b in backends],
        "devices": devices, "batch": batch, "mode": modes or None, "measure": measure or {},
    }
    if scenarios:
        data["scenario"] = scenarios
        data["loadgen"] = loadgen or {}
    return cfg.loader.from_data(data, "bench")


def benchmark(model: str, backend: str = "onnxruntime", device: str = "cpu", batch: int = 1,
              mode: str = "latency", db: str | None = None, measure: dict[str, Any] | None = None,
              **knobs: Any) -> TrialResult:
    """Measure one model on one backend and device in a fresh process; the result is stored too."""
    exp = bench_experiment(model, [backend], [device], [batch], [mode], knobs, measure)
    return execute(exp, db=db).results[0]
