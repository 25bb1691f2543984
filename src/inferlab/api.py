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

from inferlab import backends as backend_registry
from inferlab import config as cfg
from inferlab.accuracy.datasets import open_dataset
from inferlab.accuracy.spec import AccuracySpec
from inferlab.config.plan import (
    Plan,
    accuracy_spec,
    check_inputs,
    choose,
    model_artifacts,
    resolve_dataset,
)
from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError, Interrupted, StoreError
from inferlab.execute import environment
from inferlab.execute.local import LocalExecutor, QuietReporter, Reporter
from inferlab.measure.trial import MeasureSettings, TrialResult, TrialSpec
from inferlab.models.artifact import Artifact
from inferlab.models.artifact import resolve as resolve_model
from inferlab.optimize.derive import TARGETS, Method, Request, derive
from inferlab.optimize.lineage import Lineage
from inferlab.report.charts import Study
from inferlab.report.html import RunData, render, render_tables, study_summary
from inferlab.report.rows import flatten
from inferlab.store import Store
from inferlab.tune import emit
from inferlab.tune import objectives as tune_objectives
from inferlab.tune.record import TrialRecord
from inferlab.tune.search import Events as TuneEvents
from inferlab.tune.search import Outcome, Tuner
from inferlab.tune.space import Point, Space, build
from inferlab.tune.spec import TuneConfig

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
        return Run(run_id, store.url, store.results(run_id, with_samples=True), plan.skipped)
    finally:
        store.close()


def run(config_path: str | Path, db: str | None = None, resume: str | None = None,
        reporter: Reporter | None = None) -> Run:
    """Run an experiment config; every result is stored (./inferlab.db unless `db` says otherwise)."""
    return execute(cfg.load(config_path), db=db, resume=resume, reporter=reporter)


@dataclass(frozen=True)
class DataOptions:
    """A dataset and how a model reads it, for the commands that take them without a config."""

    dataset: dict[str, Any]
    preprocess: dict[str, Any] = field(default_factory=dict)
    postprocess: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None


def _model_ref(model: str) -> str:
    return str(Path(model).resolve()) if ":" not in model or "/" in model else model


def bench_experiment(model: str | list[str], backends: list[str], devices: list[str], batch: list[int],
                     modes: list[str], params: dict[str, Any] | None = None, measure: dict[str, Any] | None = None,
                     name: str = "bench", scenarios: list[str] | None = None,
                     loadgen: dict[str, Any] | None = None, data: DataOptions | None = None,
                     with_speed: bool = False) -> Experiment:
    """The experiment behind an ad-hoc `bench` (benchmark_app's role, or MLPerf's with scenarios), `accuracy`,
    `quantize` and `compare`."""
    models = [model] if isinstance(model, str) else model
    entries: list[dict[str, Any]] = [{"path": _model_ref(m)} for m in models]
    exp: dict[str, Any] = {
        "name": name, "models": entries,
        "backends": [{"name": b, "params": params or {}} for b in backends],
        "devices": devices, "batch": batch, "mode": modes or None, "measure": measure or {},
    }
    if scenarios:
        exp["scenario"] = scenarios
        exp["loadgen"] = loadgen or {}
    if data is not None:
        exp["dataset"] = data.dataset
        exp["accuracy"] = {"with_speed": with_speed, "metrics": data.metrics}
        for e in entries:
            e.update({"preprocess": data.preprocess, "postprocess": data.postprocess})
    return cfg.loader.from_data(exp, name)


def benchmark(model: str, backend: str = "onnxruntime", device: str = "cpu", batch: int = 1,
              mode: str = "latency", db: str | None = None, measure: dict[str, Any] | None = None,
              **knobs: Any) -> TrialResult:
    """Measure one model on one backend and device in a fresh process; the result is stored too."""
    exp = bench_experiment(model, [backend], [device], [batch], [mode], knobs, measure)
    return execute(exp, db=db).results[0]


@dataclass
class QuantizeOutcome:
    lineage: Lineage
    run: Run                 # the original and the derived model measured side by side (speed + accuracy)


def exact_params(backend: str) -> dict[str, Any]:
    """Knobs that make a backend compute at the model's own precision (OpenVINO defaults to bf16 on CPUs
    that have it), so accuracies of original and derived models compare what the files hold."""
    return {"inference_precision": "f32"} if backend == "openvino" else {}


def _calibration(validation: AccuracySpec, size: int, split: str | None) -> AccuracySpec:
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
    calibration = _calibration(spec.accuracy, calibration_size, calibration_split) if method == "int8" else None
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


# tuning ---------------------------------------------------------------------------------------------------


@dataclass
class TuneRun:
    """A stored tuning: its study outcome, its space and every trial's result."""

    id: str
    db: str
    outcome: Outcome
    space: Space
    results: dict[str, TrialResult]          # by spec key
    snippet: dict[str, Any] | None = None    # the winner as a ready experiment config

    @property
    def winner_result(self) -> TrialResult | None:
        w = self.outcome.winner
        return self.results.get(w.spec_key) if w is not None and w.spec_key else None


def _tune_checks(exp: Experiment, tc: TuneConfig) -> str:
    modes = exp.modes()
    src = f"{exp.source or exp.name}"
    if len(modes) != 1 or modes[0] not in ("latency", "throughput"):
        raise ConfigError(f"{src}: mode: a tuning measures in one mode, latency or throughput (got "
                          f"{', '.join(modes)})")
    if len(exp.models) != 1:
        raise ConfigError(f"{src}: models: a tuning searches for one model ({len(exp.models)} given); "
                          "tune them one at a time")
    wants_data = tc.max_accuracy_drop is not None or "int8" in (tc.precision or [])
    if wants_data and exp.dataset is None:
        what = "tune.max_accuracy_drop" if tc.max_accuracy_drop is not None else "tune.precision int8"
        raise ConfigError(f"{src}: {what} needs a dataset (to measure accuracy and calibrate); add a 'dataset:' "
                          "block, e.g. {format: digits, split: test}")
    return modes[0]


def _tune_models(exp: Experiment, tc: TuneConfig, mode: str, db: str | None,
                 note: Callable[[str], None] | None) -> tuple[dict[tuple[str, str], Artifact], AccuracySpec | None]:
    """The model file each backend runs at each precision searched: the original for fp32, and an FP16 or
    INT8 model derived for the backend (INT8 accuracy-aware when an accuracy drop is bounded)."""
    data = resolve_dataset(exp)
    entry = exp.models[0]
    artifacts = model_artifacts(entry, 0, exp)
    validation = accuracy_spec(exp, entry, data, "accuracy") if data is not None else None
    names = [b.name for b in exp.backends] or [n for n in backend_registry.names()
                                               if n != "null" and backend_registry.get(n).available()]
    out: dict[tuple[str, str], Artifact] = {}
    for name in dict.fromkeys(names):
        original = choose(artifacts, backend_registry.get(name))
        if original is None:
            continue
        for precision in tc.precision or ["fp32"]:
            if precision == "fp32":
                out[(name, precision)] = original
                continue
            if name not in TARGETS:
                continue
            method: Method = "int8" if precision == "int8" else "fp16"
            calibration = _calibration(validation, 300, None) if validation is not None and method == "int8" \
                else None
            request = Request(name, method, tc.max_accuracy_drop if method == "int8" else None,
                              output_dir=Path(original.path).parent / "inferlab-derived")
            lineage = derive(original, request, validation, calibration, note)
            store = Store(db)
            try:
                store.save_artifact(lineage)
            finally:
                store.close()
            out[(name, precision)] = resolve_model(original.name, lineage.path, inputs=original.inputs)
    batches = list(exp.batch) if isinstance(exp.batch, list) else [exp.batch]
    checked: set[str] = set()
    for artifact in out.values():
        check_inputs(artifact, batches, f"{exp.source or exp.name}: models[0]", checked)
    return out, accuracy_spec(exp, entry, data, mode)  # type: ignore[arg-type]


def tune(exp: Experiment, db: str | None = None, resume: str | None = None, reporter: Reporter | None = None,
         events: TuneEvents | None = None, note: Callable[[str], None] | None = None) -> TuneRun:
    """Search the experiment's space for the best configuration under its `tune` constraints. Every trial runs
    isolated through the executor and is stored; the study is stored too, so `resume` continues it."""
    tc = exp.tune or TuneConfig()
    mode = _tune_checks(exp, tc)
    if exp.dataset is not None:  # trials check accuracy on the session they measured
        exp = exp.model_copy(update={"accuracy": exp.accuracy.model_copy(update={"with_speed": True})})
    models, acc = _tune_models(exp, tc, mode, db, note)
    space = build(exp, {b: tuple(p for (bb, p) in models if bb == b) for b, _ in models}, mode)
    settings = MeasureSettings(**exp.measure.model_dump())
    study_data = {"objectives": tc.objectives, "constraints": tc.constraint_text(), "space": space.to_json(),
                  "mode": mode, "model": exp.models[0].display_name(), "config": tc.model_dump(mode="json")}

    def make_spec(point: Point, repeat: int) -> TrialSpec:
        return TrialSpec(models[(point.backend, point.precision)], point.backend, point.device, point.params,
                         point.batch, mode, settings, repeat, None, acc)  # type: ignore[arg-type]

    store = Store(db)
    try:
        env = environment.collect()
        env_id = store.ensure_environment(environment.fingerprint(env), env)
        history: list[TrialRecord] = []
        if resume:
            run_id, stored, _status, _best, records = store.study(resume)
            if {k: stored.get(k) for k in ("objectives", "constraints", "space", "mode")} != \
                    {k: study_data[k] for k in ("objectives", "constraints", "space", "mode")}:
                raise ConfigError(f"tuning {run_id} searched another space or goal; resume it with the config it "
                                  "started from (only max_trials, time_budget_s, patience and confirm may change)")
            history = [TrialRecord.from_json(r) for r in records]
        else:
            source = str(exp.source) if exp.source else None
            run_id = store.create_run(exp.name, exp.model_dump(mode="json"), [], source, env_id)
            store.create_study(run_id, study_data)
        executor = LocalExecutor(reporter or QuietReporter(), env_id, store.artifacts_dir(run_id))

        def measure(spec: TrialSpec) -> TrialResult:
            store.add_trials(run_id, [spec])
            done = sum(r.state != "pruned" and r.role != "reference" for r in history) + len(measured)
            executor.reporter.trial_started(done, tc.max_trials, spec)
            result = executor.run_one(spec)
            executor.reporter.trial_finished(result)
            store.save_result(run_id, result)
            measured.append(spec.key())
            return result

        measured: list[str] = []
        position = len(history)

        def save(record: TrialRecord) -> None:
            store.save_study_trial(run_id, record.position, record.state, record.spec_key, record.to_json())

        reference = next((r.accuracy for r in history if r.role == "reference"), None)
        if tc.max_accuracy_drop is not None and reference is None:
            reference, ref_record = _reference(exp, models, acc, settings, measure, position)
            save(ref_record)
            history.append(ref_record)
        tuner = Tuner(tc, space, make_spec, measure, save, reference, history, events)
        try:
            outcome = tuner.run()
        except KeyboardInterrupt:
            store.finish_study(run_id, "interrupted", None)
            store.finish_run(run_id, "interrupted")
            raise Interrupted(f"tuning {run_id} interrupted; its trials are stored; continue it with "
                              f"`inferlab tune CONFIG --resume {run_id}`") from None
        results = {r.spec.key(): r for r in store.results(run_id)}
        snippet = None
        if outcome.winner is not None and outcome.winner.point is not None:
            p = outcome.winner.point
            snippet = emit.snippet(exp, models[(p.backend, p.precision)], p, mode, outcome.winner_values)
        best = {"record": outcome.winner.to_json(), "values": list(outcome.winner_values), "snippet": snippet} \
            if outcome.winner is not None else {"message": outcome.message}
        store.finish_study(run_id, "finished", {**best, "stop_reason": outcome.stop_reason,
                                                "front": [r.position for r in outcome.front]})
        store.finish_run(run_id, "finished")
        return TuneRun(run_id, store.url, outcome, space, results, snippet)
    finally:
        store.close()


def _reference(exp: Experiment, models: dict[tuple[str, str], Artifact], acc: AccuracySpec | None,
               settings: MeasureSettings, measure: Callable[[TrialSpec], TrialResult],
               position: int) -> tuple[float, TrialRecord]:
    """The FP32 model's accuracy, which accuracy drops are measured from (ONNX Runtime when it can run it)."""
    backend, _ = min((k for k in models if k[1] == "fp32"), key=lambda k: k[0] != "onnxruntime")
    b = backend_registry.get(backend)
    params = b.check_params("cpu", exact_params(backend), "params")
    assert acc is not None
    spec = TrialSpec(models[(backend, "fp32")], backend, "cpu", tuple(sorted(params.items())), 1, "accuracy",
                     settings, 0, None, acc)
    result = measure(spec)
    value = tune_objectives.headline(result)
    if result.status != "ok" or value is None:
        raise ConfigError(f"the FP32 reference accuracy could not be measured ({result.reason or 'no metric'}); "
                          "check the dataset and the model's pre/post-processing")
    return value, TrialRecord(position, "reference", "complete", None, spec.key(), accuracy=value,
                              note=f"FP32 reference on {backend}")


# reports --------------------------------------------------------------------------------------------------


def report_runs(refs: list[str], db: str | None = None) -> tuple[list[RunData], dict[str, dict[str, Any] | None]]:
    """Stored runs (with their tuning studies) and their environments, as the report reads them."""
    store = Store(db)
    try:
        runs = []
        envs: dict[str, dict[str, Any] | None] = {}
        for ref in refs or ["latest"]:
            info = store.run_info(ref)
            run = RunData(info.id, info.name, store.results(info.id))
            try:
                _, data, status, best, records = store.study(info.id)
            except StoreError:
                pass  # not a tuning run
            else:
                tc = TuneConfig.model_validate(data["config"])
                winner = (best or {}).get("record")
                run.study = Study(info.id, list(data["objectives"]), data["constraints"],
                                  [TrialRecord.from_json(r) for r in records],
                                  winner["position"] if winner else None)
                run.study_summary = study_summary(run.study, best, status)
                run.threshold_ms, run.percentile = tc.max_latency_ms, tc.latency_percentile
            runs.append(run)
            for r in run.results:
                if r.environment_id and r.environment_id not in envs:
                    envs[r.environment_id] = store.environment(r.environment_id)
        return runs, envs
    finally:
        store.close()


def report(refs: list[str], output: Path, db: str | None = None, threshold_ms: float | None = None,
           percentile: str | None = None) -> Path:
    """Write a report of stored runs: .html (self-contained, charts included), .md or .csv (the tables)."""
    suffix = output.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".csv"):
        raise ConfigError(f"-o {output}: write a report to .html, .md or .csv")
    runs, envs = report_runs(refs, db)
    if suffix in (".html", ".htm"):
        text = render(runs, envs, threshold_ms, percentile)
    else:
        text = render_tables(runs, envs, "markdown" if suffix == ".md" else "csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return output
