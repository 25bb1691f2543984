"""The public Python API: what a notebook imports.

    import inferlab
    r = inferlab.benchmark("model.onnx", backend="openvino", batch=8, mode="throughput")
    run = inferlab.run("experiment.yaml"); run.to_dataframe()
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferlab import config as cfg
from inferlab.accuracy.datasets import open_dataset
from inferlab.config.plan import Plan
from inferlab.config.schema import Experiment
from inferlab.errors import ArtifactsError, ConfigError, Interrupted, RunStopped, StoreError
from inferlab.execute import environment
from inferlab.execute.local import LocalExecutor, Reporter, check_artifacts
from inferlab.optimize.derive import Method, Request, derive
from inferlab.optimize.lineage import Lineage
from inferlab.records.accuracy import AccuracySpec
from inferlab.records.trial import TrialResult
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
    resumed_skipped: int = 0   # on resume: finished trials of earlier sessions, kept and not run again

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([flatten(r, self.id) for r in self.results])

    @property
    def ok(self) -> bool:
        """Every trial ran to a result: measured, or judged INVALID by LoadGen (a verdict, not a failure)."""
        return all(r.status in ("ok", "invalid") for r in self.results)


log = logging.getLogger(__name__)


def _resume_hint(command: str | None, verb: str, source: Path | None, db: str | None, run_id: str) -> str:
    """How the user continues a run, as a phrase with a command line to paste: `command` (the command line that
    started it, without --resume), else `inferlab VERB CONFIG [--db DB]` when the experiment came from a file."""
    if command is None and source is not None:
        command = f"inferlab {verb} {shlex.quote(str(source))}"
        if db:
            command += f" --db {shlex.quote(db if '://' in db else str(Path(db).expanduser().resolve()))}"
    if command is None:
        return f"continue it by running the same experiment again with resume='{run_id}'"
    return f"continue it with `{command} --resume {run_id}`"


def _mark(store: Store, run_id: str, status: str) -> bool:
    """Set a run's status if the database still takes writes (it may be the fault being reported)."""
    try:
        store.finish_run(run_id, status)
    except StoreError:
        return False
    return True


def _stopped(store: Store, what: str, run_id: str, cause: Exception, kept: int, total: int | None,
             hint: str) -> RunStopped:
    """Mark a run that its environment stopped (database or artifacts folder failing) and say what was kept
    and what to do."""
    marked = ("it is marked 'stopped'" if _mark(store, run_id, "stopped") else
              "it could not be marked 'stopped' (the database takes no writes) and still reads 'running'")
    of = f" of {total}" if total is not None else ""
    return RunStopped(f"{what} {run_id} stopped: {cause}. {kept}{of} results are stored and {marked}; once that "
                      f"is fixed, {hint}", run_id, kept, total or kept)


def execute(exp: Experiment, db: str | None = None, resume: str | None = None,
            reporter: Reporter | None = None, on_plan: Callable[[Plan], None] | None = None,
            resume_command: str | None = None) -> Run:
    """Plan (resolve) the experiment, store the run, run every pending trial, store each result.

    `resume_command`: the command line that started the run, without --resume (e.g. "inferlab run x.yaml
    --db r.db"); an interrupted or stopped run names it, plus `--resume RUN`, as the way to continue. Raises
    Interrupted on Ctrl-C and RunStopped when the database or the artifacts folder fails mid-run; finished
    trials stay stored either way."""
    plan = cfg.plan(exp)
    if on_plan is not None:
        on_plan(plan)
    store = Store(db)
    try:
        check_artifacts(store.artifacts_root(), plan.specs)  # before anything of the run is written
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
            total = len(stored)
            log.info("resuming run %s: %d finished trials kept, %d to run", run_id, total - len(todo), len(todo))
        else:
            source = str(exp.source) if exp.source else None
            run_id = store.create_run(exp.name, exp.model_dump(mode="json"), plan.specs, source, env_id)
            todo = plan.specs
            total = len(todo)
        resumed = total - len(todo)
        hint = _resume_hint(resume_command, "run", exp.source, db, run_id)
        executor = LocalExecutor(reporter, env_id, store.artifacts_dir(run_id))
        saved = 0
        try:
            for result in executor.run(todo):
                store.save_result(run_id, result)
                saved += 1
            store.finish_run(run_id, "finished")
        except KeyboardInterrupt:
            _mark(store, run_id, "interrupted")
            raise Interrupted(f"run {run_id} interrupted; finished trials are stored; {hint}") from None
        except (StoreError, ArtifactsError) as exc:  # the environment failed under the run: stop, keep, say
            raise _stopped(store, "run", run_id, exc, resumed + saved, total, hint) from None
        return Run(run_id, store.url, store.results(run_id, with_samples=True), plan.skipped, resumed)
    finally:
        store.close()


def run(config_path: str | Path, db: str | None = None, resume: str | None = None,
        reporter: Reporter | None = None, resume_command: str | None = None) -> Run:
    """Run an experiment config; every result is stored (in the default database, see
    `inferlab.store.default_location()`, unless `db` says otherwise)."""
    return execute(cfg.load(config_path), db=db, resume=resume, reporter=reporter, resume_command=resume_command)


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
                     command: str | None = None) -> Experiment:
    """The experiment behind an ad-hoc `bench` (benchmark_app's role, or MLPerf's with scenarios), `accuracy`,
    `quantize` and `compare`. `batch` None: the batch the input shapes give, else 1. `inputs`: per input name,
    a config's `inputs.NAME` settings (shape, dtype, range, value, data, batch_axis). `command`: the command
    line, so that errors name its flags rather than config fields."""
    models = [model] if isinstance(model, str) else model
    entries: list[dict[str, Any]] = [{"path": _model_ref(m), **({"inputs": inputs} if inputs else {})}
                                     for m in models]
    exp: dict[str, Any] = {
        "name": name, "models": entries,
        "backends": [{"name": b, "params": _knobs_of(b, params or {}, backends)} for b in backends],
        "devices": devices, "mode": modes or None, "measure": measure or {},
    }
    if batch is not None:
        exp["batch"] = batch
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
              inputs: dict[str, dict[str, Any]] | None = None, **knobs: Any) -> TrialResult:
    """Measure one model on one backend and device in a fresh process; the result is stored too. `inputs`: per
    input name, what to feed it, as a config's `inputs` (e.g. {"sr": {"value": 16000}, "input": {"shape":
    [-1, 512]}})."""
    exp = bench_experiment(model, [backend], [device], [batch], [mode], knobs, measure, inputs=inputs)
    return execute(exp, db=db).results[0]


@dataclass
class QuantizeOutcome:
    lineage: Lineage
    run: Run                 # the original and the derived model measured side by side (speed + accuracy)


def exact_params(backend: str) -> dict[str, Any]:
    """Knobs that make a backend compute at the model's own precision (OpenVINO defaults to bf16 on CPUs
    that have it), so accuracies of original and derived models compare what the files hold."""
    return {"inference_precision": "f32"} if backend == "openvino" else {}


def calibration_set(validation: AccuracySpec, size: int, split: str | None) -> AccuracySpec:
    """The calibration set: a seeded random subset of the dataset (digits: of its training split when the
    validation uses the test split, so calibration never sees the test samples)."""
    config = validation.dataset.config
    chosen = split or ("train" if config.format == "digits" and config.split == "test" else config.split)
    cal = config.model_copy(update={"split": chosen, "subset": size, "subset_mode": "random"})
    return validation.model_copy(update={"dataset": open_dataset(cal).resolved()})


def derive_model(model: str, backend: str, data: DataOptions, method: Method = "int8",
                 max_drop: float | None = None, calibration_size: int = 300, calibration_split: str | None = None,
                 batch: int = 1, db: str | None = None, note: Callable[[str], None] | None = None,
                 output_dir: Path | None = None) -> Lineage:
    """Derive an FP16 or INT8 model (accuracy-aware with `max_drop`) and store its lineage."""
    probe = cfg.plan(bench_experiment(model, [backend], ["cpu"], [batch], ["accuracy"], exact_params(backend),
                                      name="derive",
                                      data=data))
    spec = probe.specs[0]
    assert spec.accuracy is not None
    calibration = calibration_set(spec.accuracy, calibration_size, calibration_split) if method == "int8" else None
    request = Request(backend, method, max_drop, calibration_size, batch=batch, output_dir=output_dir)
    lineage = derive(spec.model, request, spec.accuracy, calibration, note)
    store = Store(db)
    try:
        store.save_artifact(lineage)
    finally:
        store.close()
    return lineage


def quantize(model: str, backend: str, data: DataOptions, method: Method = "int8", max_drop: float | None = None,
             calibration_size: int = 300, calibration_split: str | None = None, batch: int = 1,
             measure: dict[str, Any] | None = None, db: str | None = None, reporter: Reporter | None = None,
             note: Callable[[str], None] | None = None, output_dir: Path | None = None) -> QuantizeOutcome:
    """Derive a model (see derive_model), then measure the original and the derived model side by side:
    latency and accuracy on the same sessions, each trial in its own process."""
    lineage = derive_model(model, backend, data, method, max_drop, calibration_size, calibration_split, batch, db,
                           note, output_dir)
    exp = bench_experiment([str(lineage.parent_path), lineage.path], [backend], ["cpu"], [batch], ["latency"],
                           exact_params(backend), measure, name=f"quantize {Path(model).name} {lineage.method}",
                           data=data, with_speed=True)
    return QuantizeOutcome(lineage, execute(exp, db=db, reporter=reporter))


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
        raise StoreError(f"'{ref}': run {info.id} has {len(results)} results; N is 1..{len(results)}")
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
        raise StoreError(f"'{ref}': no derived model with that path or hash; `inferlab quantize` records them")
    return chain


# tuning and reports have modules of their own, re-exported so that `api.tune` and `api.report` are where
# the rest of the API is
from inferlab.api.reports import report, report_runs  # noqa: E402
from inferlab.api.tuning import TuneRun, tune  # noqa: E402

__all__ = ["DataOptions", "QuantizeOutcome", "Run", "TuneRun", "bench_experiment", "benchmark", "derive_model",
           "exact_params", "execute", "lineage", "quantize", "report", "report_runs", "run", "trial", "tune"]
