"""Derived models: FP16/INT8 derivation with its lineage stored, and quantize (derive, then measure the original
and the derived model side by side)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferlab import config as cfg
from inferlab.accuracy.datasets import open_dataset
from inferlab.api.runs import DataOptions, Run, bench_experiment, execute
from inferlab.execute.base import Reporter
from inferlab.optimize.derive import Method, Request, derive
from inferlab.optimize.lineage import Lineage
from inferlab.records.accuracy import AccuracySpec
from inferlab.store import Store


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
             note: Callable[[str], None] | None = None, output_dir: Path | None = None,
             stop: threading.Event | None = None, on_run: Callable[[str], None] | None = None,
             name: str | None = None) -> QuantizeOutcome:
    """Derive a model (see derive_model), then measure the original and the derived model side by side:
    latency and accuracy on the same sessions, each trial in its own process (`stop` and `on_run` as in
    execute, for the measurement; `name`: the original's name in results, the derived one's gets its method)."""
    lineage = derive_model(model, backend, data, method, max_drop, calibration_size, calibration_split, batch, db,
                           note, output_dir)
    exp = bench_experiment([str(lineage.parent_path), lineage.path], [backend], ["cpu"], [batch], ["latency"],
                           exact_params(backend), measure, name=f"quantize {name or Path(model).name} {lineage.method}",
                           data=data, with_speed=True, names=[name, f"{name}.{lineage.method}"] if name else None)
    return QuantizeOutcome(lineage, execute(exp, db=db, reporter=reporter, stop=stop, on_run=on_run))
