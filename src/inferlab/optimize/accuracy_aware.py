"""Accuracy-aware INT8: quantize, then give back float precision where it costs accuracy, until the metric's
drop is within `max_drop` (absolute, in the metric's unit) or nothing more can be given back.

OpenVINO: NNCF's `quantize_with_accuracy_control` (it ranks quantizers by their effect and reverts the worst).
ONNX Runtime: quantize everything; if the drop is over budget, rank each quantizable operator by how much
accuracy keeping it alone in float recovers, then keep the most sensitive in float one at a time."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferlab.accuracy.datasets import Dataset
from inferlab.accuracy.evaluator import Scorer, batches
from inferlab.accuracy.preprocess import Geometry
from inferlab.optimize.int8 import Feeds, nncf_preset, ort_int8, ov_model, quantizable_nodes, quiet_nncf
from inferlab.records.accuracy import AccuracySpec

log = logging.getLogger(__name__)
Score = Callable[[Path], float]      # a model file → its metric on the validation set
Step = Callable[[str], None]         # progress notes


@dataclass
class Outcome:
    """What an accuracy-aware search found (stored in the artifact's lineage)."""

    metric: str
    original: float
    quantized: float
    max_drop: float
    kept_float: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)  # ONNX Runtime: each operator's recovery
    fake_quantize_ops: int | None = None                       # OpenVINO: quantizers left in the model

    @property
    def drop(self) -> float:
        return self.original - self.quantized

    @property
    def met(self) -> bool:
        return self.drop <= self.max_drop + 1e-12

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "original": self.original, "quantized": self.quantized, "drop": self.drop,
                "max_drop": self.max_drop, "met": self.met, "kept_float": self.kept_float, "steps": self.steps,
                "fake_quantize_ops": self.fake_quantize_ops}


def ort_accuracy_aware(src: Path, dst: Path, calibration: Sequence[Feeds], score: Score, metric: str,
                       max_drop: float, max_candidates: int = 32, step: Step | None = None) -> Outcome:
    """The ONNX Runtime search. Writes the best model found to `dst`: the first within budget, otherwise the
    most accurate one tried."""
    note = step or (lambda _msg: None)
    work = Path(tempfile.mkdtemp(prefix="inferlab-aa-"))
    try:
        original = score(src)
        note(f"float model: {metric} {original:.4f}")
        tried: list[tuple[float, list[str], Path]] = []

        def attempt(exclude: list[str]) -> float:
            path = work / f"q{len(tried)}.onnx"
            ort_int8(src, path, calibration, exclude)
            value = score(path)
            tried.append((value, list(exclude), path))
            note(f"INT8 with {len(exclude)} operator(s) in float: {metric} {value:.4f} (drop {original - value:+.4f})")
            return value

        outcome = Outcome(metric, original, attempt([]), max_drop)
        if not outcome.met:
            candidates = quantizable_nodes(src)[:max_candidates]
            recovery = {n: attempt([n]) - outcome.quantized for n in candidates}
            ranked = sorted(candidates, key=lambda n: -recovery[n])
            outcome.steps = [{"operator": n, "recovery": recovery[n]} for n in ranked]
            kept: list[str] = []
            for n in ranked:
                kept.append(n)
                value = attempt(kept) if len(kept) > 1 else recovery[n] + outcome.quantized
                if original - value <= max_drop + 1e-12:
                    break
        within = [t for t in tried if original - t[0] <= max_drop + 1e-12]
        value, exclude, path = (min(within, key=lambda t: len(t[1])) if within
                                else max(tried, key=lambda t: (t[0], -len(t[1]))))
        shutil.copyfile(path, dst)
        outcome.quantized, outcome.kept_float = value, exclude
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ov_outputs(result: Any) -> dict[str, Any]:
    return {k.get_any_name(): v for k, v in result.items()}


def ov_accuracy_aware(src: Path, dst: Path, calibration: Sequence[Feeds], ds: Dataset, spec: AccuracySpec,
                      model_name: str, input_name: str, dtype: str, metric: str, max_drop: float,
                      preset: str = "performance") -> Outcome:
    """NNCF's accuracy control on the OpenVINO model; validation runs our metric on the dataset (NNCF compiles
    with f32 inference precision for it)."""
    import nncf
    import openvino as ov

    items: list[tuple[Feeds, int, Geometry]] = [
        (feeds, index, geometry) for feeds, [index], [geometry] in batches(ds, spec, input_name, dtype, 1)]

    def validate(compiled: Any, data: Any) -> tuple[float, None]:
        scorer = Scorer(ds, spec, model_name)
        for feeds, index, geometry in data:
            scorer.add(_ov_outputs(compiled(feeds)), [index], [geometry], 1)
        return scorer.metrics()[metric], None

    quiet_nncf()
    model = ov_model(src)
    core = ov.Core()
    original = validate(core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), items)[0]
    quantized = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(list(calibration)), nncf.Dataset(items), validate, max_drop=max_drop,
        drop_type=nncf.DropType.ABSOLUTE, preset=nncf_preset(preset), subset_size=len(calibration))
    ov.save_model(quantized, str(dst), compress_to_fp16=False)
    final = validate(core.compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), items)[0]
    fq = sum(1 for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize")
    return Outcome(metric, original, final, max_drop, fake_quantize_ops=fq)
