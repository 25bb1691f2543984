"""Deriving an optimised artifact from a model: FP16 or INT8 (optionally accuracy-aware) for one backend,
calibrated and validated on datasets through the same pre-processing as accuracy checks; returns its lineage."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inferlab import backends
from inferlab.accuracy.datasets import Dataset, reopen
from inferlab.accuracy.evaluator import batches, evaluate
from inferlab.errors import DatasetError, OptimizeError
from inferlab.models.artifact import Artifact, ModelFormat, model_size, resolve
from inferlab.models.inputs import merge
from inferlab.models.introspect import declared_inputs
from inferlab.optimize import accuracy_aware, fp16, int8
from inferlab.optimize.lineage import Lineage
from inferlab.records.accuracy import AccuracySpec
from inferlab.records.trial import utc_now

log = logging.getLogger(__name__)
Method = Literal["fp16", "int8"]
TARGETS = ("onnxruntime", "openvino", "litert")
_SUFFIX = {"openvino": ".xml", "onnxruntime": ".onnx", "litert": ".tflite"}


@dataclass(frozen=True)
class Request:
    """What to derive. `max_drop` (absolute, in the first metric's unit) makes INT8 accuracy-aware."""

    backend: str
    method: Method = "int8"
    max_drop: float | None = None
    calibration_size: int = 300
    preset: Literal["performance", "mixed"] = "performance"
    batch: int = 1                      # batch used while scoring candidates
    output_dir: Path | None = None      # default: beside the parent

    def tag(self) -> str:
        return self.method if self.max_drop is None or self.method == "fp16" else f"{self.method}-aa"


def _output(parent: Artifact, req: Request) -> Path:
    suffix = _SUFFIX[req.backend]
    folder = req.output_dir or parent.path.parent
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{parent.path.stem}.{req.tag()}{suffix}"


def _check(parent: Artifact, req: Request, validation: AccuracySpec | None, calibration: AccuracySpec | None) -> None:
    if req.backend not in TARGETS:
        raise OptimizeError(f"--backend '{req.backend}': inferlab quantizes for {', '.join(TARGETS)}")
    if req.backend == "litert":
        if parent.format not in (ModelFormat.KERAS, ModelFormat.SAVED_MODEL):
            raise OptimizeError(f"{parent.ref}: LiteRT quantization converts a TensorFlow model; give a Keras .keras "
                                "file or a SavedModel folder")
    elif parent.format in (ModelFormat.KERAS, ModelFormat.SAVED_MODEL):
        pass  # converted for the runtime first (`_source`)
    elif req.backend == "onnxruntime" and parent.format is not ModelFormat.ONNX:
        raise OptimizeError(f"{parent.ref}: ONNX Runtime quantization needs an .onnx model")
    elif parent.format not in (ModelFormat.ONNX, ModelFormat.OPENVINO):
        raise OptimizeError(f"{parent.ref}: give an .onnx or OpenVINO .xml model to optimise")
    if req.method == "int8" and calibration is None:
        raise OptimizeError("INT8 quantization needs calibration data; give --dataset")
    if req.max_drop is not None and req.method == "int8" and validation is None:
        raise OptimizeError("--max-drop needs a labelled validation dataset; give --dataset")
    if req.max_drop is not None and req.max_drop < 0:
        raise OptimizeError(f"--max-drop {req.max_drop}: give a drop of zero or more, in the metric's unit")


def _source(parent: Artifact, req: Request) -> Path:
    """The file the runtime's quantizer reads: the model's own, or a TensorFlow model converted for it (cached)."""
    if parent.format in (ModelFormat.KERAS, ModelFormat.SAVED_MODEL) and req.backend != "litert":
        from inferlab.models.convert_tf import converted

        return converted(parent, "onnx" if req.backend == "onnxruntime" else "openvino")
    return parent.path


def _input(parent: Artifact) -> tuple[str, str]:
    declared = declared_inputs(parent)
    assert declared is not None
    if len(declared) != 1:
        raise OptimizeError(f"{parent.ref}: calibration feeds one input, but the model has {len(declared)}")
    return declared[0].name, declared[0].dtype


def _scorer(parent: Artifact, ds: Dataset, spec: AccuracySpec, metric: str,
            batch: int, runtime: str = "onnxruntime") -> Callable[[Path], float]:
    """Score a model file with a runtime (ONNX Runtime, LiteRT) in this process, on the already opened validation
    set."""
    backend = backends.get(runtime)

    def score(path: Path) -> float:
        artifact = resolve(parent.name, str(path), inputs=parent.inputs)
        declared = declared_inputs(artifact)
        assert declared is not None
        session = backend.load(artifact, "cpu", backend.check_params("cpu", {}, "params"),
                               merge(declared, artifact.inputs, batch, artifact.name))
        try:
            result = evaluate(session, ds, spec, batch, parent.name)
        finally:
            session.close()
        if metric not in result.metrics:
            raise DatasetError(f"{spec.dataset.name}: no '{metric}' to hold the drop to (the dataset has no labels)")
        return result.metrics[metric]
    return score


def derive(parent: Artifact, req: Request, validation: AccuracySpec | None = None,
           calibration: AccuracySpec | None = None, note: Callable[[str], None] | None = None) -> Lineage:
    """Write the derived model and return its lineage (not yet stored)."""
    _check(parent, req, validation, calibration)
    say = note or (lambda _msg: None)
    dst = _output(parent, req)
    src = _source(parent, req)
    params: dict[str, object] = {"backend": req.backend, "method": req.method}
    outcome: dict[str, object] = {}
    cal_hash = None
    if req.method == "fp16" and req.backend == "litert":
        from inferlab.models.convert_tf import to_tflite

        to_tflite(parent, dst, "fp16")
    elif req.method == "fp16":
        (fp16.openvino_fp16 if req.backend == "openvino" else fp16.onnx_fp16)(src, dst)
    else:
        assert calibration is not None
        name, dtype = _input(parent)
        cal_ds = reopen(calibration.dataset)
        cal_hash = calibration.dataset.hash
        feeds = [f for f, _, _ in batches(cal_ds, calibration, name, dtype, 1, limit=req.calibration_size)]
        params.update({"calibration_samples": len(feeds), "calibration_dataset": calibration.dataset.name})
        say(f"calibrating on {len(feeds)} samples of {calibration.dataset.describe()}")
        if req.backend == "litert":
            params.update({"format": "full integer", "activations": "s8", "weights": "s8 per channel"})
            found_lite = _litert_int8(parent, dst, feeds, req, validation, say)
            if found_lite is not None:
                outcome = found_lite.to_json()
        elif req.max_drop is None:
            if req.backend == "openvino":
                int8.ov_int8(src, dst, feeds, req.preset)
                params["preset"] = req.preset
            else:
                int8.ort_int8(src, dst, feeds)
                params.update({"format": "QDQ", "per_channel": True, "activations": "u8", "weights": "s8"})
        else:
            assert validation is not None
            metric = validation.metric_names()[0]
            params.update({"max_drop": req.max_drop, "metric": metric,
                           "validation_dataset": validation.dataset.name, "validation_hash": validation.dataset.hash})
            val_ds = reopen(validation.dataset)
            if req.backend == "openvino":
                found = accuracy_aware.ov_accuracy_aware(
                    src, dst, feeds, val_ds, validation, parent.name, name, dtype, metric, req.max_drop,
                    req.preset)
                params["preset"] = req.preset
            else:
                found = accuracy_aware.ort_accuracy_aware(
                    src, dst, feeds, _scorer(parent, val_ds, validation, metric, req.batch), metric,
                    req.max_drop, step=say)
            outcome = found.to_json()
            say(f"{metric}: float {found.original:.4f}, INT8 {found.quantized:.4f}, drop {found.drop:+.4f} "
                f"({'within' if found.met else 'over'} the budget of {req.max_drop})")
    child = resolve(f"{parent.name}-{req.tag()}", str(dst), inputs=parent.inputs)
    return _lineage(parent, child, dst, req, params, cal_hash, outcome)


def _litert_int8(parent: Artifact, dst: Path, feeds: list[dict[str, Any]], req: Request,
                 validation: AccuracySpec | None, say: Callable[[str], None]) -> accuracy_aware.Outcome | None:
    """Full-integer INT8 through TensorFlow's converter. With a budget (`max_drop`): scored by LiteRT against the
    float LiteRT conversion on the validation set; over budget, INT8 weights with float activations (dynamic
    range) instead, the one step back LiteRT's converter offers for a whole model."""
    from inferlab.models.convert_tf import to_tflite

    to_tflite(parent, dst, "int8", feeds)
    if req.max_drop is None:
        return None
    assert validation is not None
    metric = validation.metric_names()[0]
    score = _scorer(parent, reopen(validation.dataset), validation, metric, req.batch, "litert")
    original = score(to_tflite(parent, dst.with_name(dst.stem + ".float.tflite"), "float"))
    dst.with_name(dst.stem + ".float.tflite").unlink(missing_ok=True)
    quantized = score(dst)
    found = accuracy_aware.Outcome(metric, original, quantized, req.max_drop,
                                   steps=[{"try": "full integer", metric: quantized}])
    say(f"{metric}: float {original:.4f}, full-integer INT8 {quantized:.4f}")
    if not found.met:
        to_tflite(parent, dst, "dynamic")
        found.quantized = score(dst)
        found.kept_float = ["activations"]
        found.steps.append({"try": "int8 weights, float activations", metric: found.quantized})
        say(f"{metric}: over the budget; INT8 weights with float activations: {found.quantized:.4f}")
    say(f"{metric}: drop {found.drop:+.4f} ({'within' if found.met else 'over'} the budget of {req.max_drop})")
    return found


def _lineage(parent: Artifact, child: Artifact, dst: Path, req: Request, params: dict[str, object],
             cal_hash: str | None, outcome: dict[str, object]) -> Lineage:
    return Lineage(child.hash, child.name, str(dst), child.format.value, parent.hash, parent.ref,
                   req.tag(), params, cal_hash, outcome, model_size(dst) or 0, utc_now())
