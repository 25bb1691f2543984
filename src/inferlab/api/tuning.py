"""The public API of tuning: prepare the model at each precision, measure the FP32 accuracy reference, and
run the tuner over the executor, storing every trial and the study (so that it can be resumed)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inferlab import backends as backend_registry
from inferlab.api.derivation import calibration_set, exact_params
from inferlab.api.lifecycle import Opening, lifecycle, mark
from inferlab.config.plan import accuracy_spec, check_inputs, choose, model_artifacts, resolve_dataset
from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError, StoreError
from inferlab.execute.base import Reporter
from inferlab.execute.trial_process import check_writable
from inferlab.models.artifact import Artifact
from inferlab.models.artifact import resolve as resolve_model
from inferlab.models.inputs import Wording
from inferlab.optimize.derive import TARGETS, Method, Request, derive
from inferlab.records.accuracy import AccuracySpec
from inferlab.records.trial import MeasureSettings, TrialResult, TrialSpec
from inferlab.store import Store
from inferlab.tune import emit
from inferlab.tune import objectives as tune_objectives
from inferlab.tune.record import TrialRecord, measured_count
from inferlab.tune.search import Events as TuneEvents
from inferlab.tune.search import Outcome, Tuner
from inferlab.tune.space import Point, Space, build, tunable_backends
from inferlab.tune.spec import TuneConfig

log = logging.getLogger(__name__)

@dataclass
class TuneRun:
    """A stored tuning: its study outcome, its space and every trial's result."""

    id: str
    db: str
    outcome: Outcome
    space: Space
    results: dict[str, TrialResult]          # by spec key
    snippet: dict[str, Any] | None = None    # the winner as a ready experiment config
    resumed_skipped: int = 0                 # on resume: trials measured by earlier sessions, not measured again

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


def _tune_models(exp: Experiment, tc: TuneConfig, mode: str, store: Store,
                 note: Callable[[str], None] | None) -> tuple[dict[tuple[str, str], Artifact], AccuracySpec | None]:
    """The model file each backend runs at each precision searched: the original for fp32, and an FP16 or
    INT8 model derived for the backend (INT8 accuracy-aware when an accuracy drop is bounded)."""
    data = resolve_dataset(exp)
    entry = exp.models[0]
    artifacts = model_artifacts(entry, 0, exp)
    validation = accuracy_spec(exp, entry, data, "accuracy") if data is not None else None
    out: dict[tuple[str, str], Artifact] = {}
    for name in tunable_backends(exp):
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
            calibration = calibration_set(validation, 300, None) if validation is not None and method == "int8" \
                else None
            request = Request(name, method, tc.max_accuracy_drop if method == "int8" else None,
                              output_dir=Path(original.path).parent / "inferlab-derived")
            lineage = derive(original, request, validation, calibration, note)
            store.save_artifact(lineage)
            out[(name, precision)] = resolve_model(original.name, lineage.path, inputs=original.inputs)
    batches = list(exp.batch) if isinstance(exp.batch, list) else [exp.batch]
    checked: set[str] = set()
    for artifact in out.values():
        check_inputs(artifact, batches, Wording(f"{exp.source or exp.name}: models[0]"), checked)
    return out, accuracy_spec(exp, entry, data, mode)  # type: ignore[arg-type]


def tune(exp: Experiment, db: str | None = None, resume: str | None = None, reporter: Reporter | None = None,
         events: TuneEvents | None = None, note: Callable[[str], None] | None = None,
         resume_command: str | None = None, cluster: str | None = None, stop: threading.Event | None = None,
         on_run: Callable[[str], None] | None = None) -> TuneRun:
    """Search the experiment's space for the best configuration under its `tune` constraints. Every trial runs
    isolated through the executor and is stored; the study is stored too, so `resume` continues it.

    `resume_command`: the command line that started the tuning, without --resume (default: `inferlab tune
    CONFIG [--db DB]`), named with `--resume RUN` when it is interrupted (Interrupted) or its database or
    artifacts folder fails (RunStopped). `cluster`: a Ray address whose nodes run the trials, several at once
    (the tuner then asks for as many proposals as there are free nodes). `stop` and `on_run`: as for
    `api.execute` (a tuning started from the workbench, cancelled from it)."""
    tc = exp.tune or TuneConfig()
    mode = _tune_checks(exp, tc)
    if exp.dataset is not None:  # trials check accuracy on the session they measured
        exp = exp.model_copy(update={"accuracy": exp.accuracy.model_copy(update={"with_speed": True})})
    settings = MeasureSettings(**exp.measure.model_dump())
    store = Store(db)
    try:
        models, acc = _tune_models(exp, tc, mode, store, note)
    finally:
        store.close()
    space = build(exp, {b: tuple(p for (bb, p) in models if bb == b) for b, _ in models}, mode)
    study_data = {"objectives": tc.objectives, "constraints": tc.constraint_text(), "space": space.to_json(),
                  "mode": mode, "model": exp.models[0].display_name(), "config": tc.model_dump(mode="json")}

    short = search_settings(settings, tc)

    def make_spec(point: Point, repeat: int, full: bool) -> TrialSpec:
        return TrialSpec(models[(point.backend, point.precision)], point.backend, point.device, point.params,
                         point.batch, mode, settings if full else short, repeat, None, acc)  # type: ignore[arg-type]

    history: list[TrialRecord] = []

    def create(store: Store, env_id: str) -> str:
        source = str(exp.source) if exp.source else None
        run_id = store.create_run(exp.name, exp.model_dump(mode="json"), [], source, env_id)
        store.create_study(run_id, study_data)
        return run_id

    def resume_study(store: Store, run_id: str) -> int:
        run_id, stored, _status, _best, records = store.study(run_id)
        if {k: stored.get(k) for k in ("objectives", "constraints", "space", "mode")} != \
                {k: study_data[k] for k in ("objectives", "constraints", "space", "mode")}:
            raise ConfigError(f"tuning {run_id} searched another space or goal; resume it with the config it "
                              "started from (only max_trials, time_budget_s, patience and confirm may change)")
        history.extend(TrialRecord.from_json(r) for r in records)
        log.info("resuming tuning %s: %d trials measured before are kept", run_id, measured_count(history))
        return measured_count(history)

    def writable(store: Store) -> None:
        if acc is not None and acc.keep_outputs:  # trials keep their outputs: the folder must take them
            check_writable(store.artifacts_root())

    # the trials of a study reuse what the runtimes compiled for earlier ones (inductor's and OpenVINO's caches)
    opening = Opening("tune", exp.source, create, resume_study, labels=exp.nodes, compiled=True)
    with lifecycle(opening, db, resume, reporter, resume_command, cluster, before_create=writable,
                   stop=stop) as session:
        run_id, store = session.run_id, session.store
        if on_run is not None:
            on_run(run_id)
        session.on_end.append(lambda status: _mark_study(store, run_id, status))
        session.executor.show_progress(session.resumed, tc.max_trials)

        def measure(specs: Sequence[TrialSpec]) -> Iterator[TrialResult]:
            store.add_trials(run_id, list(specs))
            yield from session.measure(specs)

        def save(record: TrialRecord) -> None:
            store.save_study_trial(run_id, record.position, record.state, record.spec_key, record.to_json())

        try:
            reference = next((r.accuracy for r in history if r.role == "reference"), None)
            if tc.max_accuracy_drop is not None and reference is None:
                reference, ref_record = _reference(exp, models, acc, settings, measure, len(history))
                save(ref_record)
                history.append(ref_record)
            tuner = Tuner(tc, space, make_spec, measure, save, reference, history, events,
                          slots=session.executor.slots, windows=(short.min_duration_s, settings.min_duration_s))
            outcome = tuner.run()
        except ConfigError:  # the FP32 reference could not be measured: the run ends here, marked so
            _mark_study(store, run_id, "failed")
            mark(store, run_id, "failed")
            raise
        results = {r.spec.key(): r for r in store.results(run_id)}
        snippet = None
        if outcome.winner is not None and outcome.winner.point is not None:
            p = outcome.winner.point
            snippet = emit.snippet(exp, models[(p.backend, p.precision)], p, mode, outcome.winner_values)
        best = {"record": outcome.winner.to_json(), "values": list(outcome.winner_values), "snippet": snippet} \
            if outcome.winner is not None else {"message": outcome.message}
        store.finish_study(run_id, "finished", {
            **best, "stop_reason": outcome.stop_reason, "front": [r.position for r in outcome.front],
            "summary": outcome.summary, "baseline": outcome.baseline.to_json() if outcome.baseline else None,
            "batches": list(tuner.space.batch.values)})
        session.finish()
        return TuneRun(run_id, store.url, outcome, space, results, snippet, session.resumed)


def search_settings(settings: MeasureSettings, tc: TuneConfig) -> MeasureSettings:
    """How a search trial measures: a short window (tune.search_window_s, else the measure window up to 1 s) and
    fewer warm-up and minimum iterations; the leaders are re-measured with the full settings."""
    window = tc.search_window_s or min(settings.min_duration_s, 1.0)
    return replace(settings, min_duration_s=min(window, settings.min_duration_s),
                   max_duration_s=min(settings.max_duration_s, max(window * 4, window + 5)),
                   min_iterations=min(settings.min_iterations, 10),
                   warmup_iterations=min(settings.warmup_iterations, 5))


def _mark_study(store: Store, run_id: str, status: str) -> None:
    with contextlib.suppress(StoreError):  # the database may be the fault being reported; the run's mark says so
        store.finish_study(run_id, status, None)


def _reference(exp: Experiment, models: dict[tuple[str, str], Artifact], acc: AccuracySpec | None,
               settings: MeasureSettings, measure: Callable[[Sequence[TrialSpec]], Iterator[TrialResult]],
               position: int) -> tuple[float, TrialRecord]:
    """The FP32 model's accuracy, which accuracy drops are measured from (ONNX Runtime when it can run it)."""
    backend, _ = min((k for k in models if k[1] == "fp32"), key=lambda k: k[0] != "onnxruntime")
    b = backend_registry.get(backend)
    params = b.check_params("cpu", exact_params(backend), "params")
    assert acc is not None
    spec = TrialSpec(models[(backend, "fp32")], backend, "cpu", tuple(sorted(params.items())), 1, "accuracy",
                     settings, 0, None, acc)
    (result,) = measure([spec])
    value = tune_objectives.headline(result)
    if result.status != "ok" or value is None:
        raise ConfigError(f"the FP32 reference accuracy could not be measured ({result.reason or 'no metric'}); "
                          "check the dataset and the model's pre/post-processing")
    return value, TrialRecord(position, "reference", "complete", None, spec.key(), accuracy=value,
                              note=f"FP32 reference on {backend}")


def winner_config(run_id: str, db: str | None = None, base: Path | None = None) -> tuple[str, str | None]:
    """A stored tuning's winner as a ready config (YAML, its files named relative to `base`, default the
    current folder): (the run's id, the text), the text None when the run is no tuning or none has won yet."""
    store = Store(db)
    try:
        info = store.run_info(run_id)
        try:
            _, _, _, best, _ = store.study(info.id)
        except StoreError:
            return info.id, None
    finally:
        store.close()
    snippet = (best or {}).get("snippet")
    return info.id, emit.text(snippet, base or Path.cwd()) if snippet else None
