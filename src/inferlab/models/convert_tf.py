"""Conversions of TensorFlow models (a Keras .keras file, a SavedModel folder) for the other runtimes, each
cached by the source's content hash as torch_to_onnx does: a SavedModel from a Keras file, ONNX through tf2onnx,
OpenVINO IR through openvino.convert_model, and LiteRT flatbuffers (float, or INT8 from calibration samples)
through TensorFlow's TFLiteConverter."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inferlab.errors import BackendError, ModelError
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.convert import cache_dir, torch_to_onnx
from inferlab.models.quiet import native_output
from inferlab.models.tensors import TensorSpec

INSTALL = "pip install 'inferlab[tensorflow]'"
Feeds = dict[str, np.ndarray]


def quiet_environment() -> dict[str, str]:
    """Environment for a process about to import TensorFlow: C++ info logs off, Keras's settings file in
    inferlab's cache instead of ~/.keras."""
    return {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "KERAS_HOME": os.environ.get("KERAS_HOME", str(cache_dir() / "keras"))}


def import_tf() -> Any:
    """TensorFlow, imported quietly; a one-line error naming the extra when it is not installed."""
    for k, v in quiet_environment().items():
        os.environ.setdefault(k, v)
    try:
        with native_output((2,)):  # its oneDNN and absl notices, printed whatever TF_CPP_MIN_LOG_LEVEL says
            import tensorflow as tf
    except ImportError:
        raise BackendError(f"this needs TensorFlow, which is not installed; {INSTALL}") from None
    return tf


def _key(artifact: Artifact, *extra: object) -> str:
    return hashlib.sha256((artifact.hash + repr(extra)).encode()).hexdigest()[:20]


def _publish(tmp: Path, target: Path) -> Path:
    """Move a finished conversion into place; another process that finished first wins."""
    try:
        tmp.replace(target) if tmp.is_file() else tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_keras(path: Path) -> Any:
    """A Keras model from a .keras file, called once (Keras exports only a model that has been called)."""
    import_tf()
    with native_output((2,)):
        import keras

    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as exc:
        raise ModelError(f"{path}: Keras cannot load the model ({str(exc).splitlines()[0][:200]})") from exc
    return model


def saved_model(artifact: Artifact) -> Path:
    """The SavedModel folder of a TensorFlow artifact: its own, or one exported from its .keras file (cached)."""
    if artifact.format is ModelFormat.SAVED_MODEL:
        return artifact.path
    if artifact.format is not ModelFormat.KERAS:
        raise ModelError(f"{artifact.ref}: a {artifact.format.value} model is not a TensorFlow model")
    target = cache_dir() / f"{artifact.name}-{_key(artifact, 'savedmodel')}.savedmodel"
    if (target / "saved_model.pb").is_file():
        return target
    model = load_keras(artifact.path)
    tmp = Path(tempfile.mkdtemp(prefix=".savedmodel-", dir=cache_dir())) / "m"
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(tmp), verbose=False)
    return _publish(tmp, target)


def converted(artifact: Artifact, target: str) -> Path:
    """`artifact` converted for a runtime (target: onnx, openvino or tflite), in a process of its own: the process
    that asks (a trial's) never imports TensorFlow, so its memory and load time are the runtime's own."""
    done = _target(artifact, target)
    if done.is_file():
        return done
    import json

    proc = subprocess.run([sys.executable, "-m", "inferlab.models.convert_tf", target, json.dumps(artifact.to_json())],
                          capture_output=True, text=True, env={**os.environ, **quiet_environment()})
    if proc.returncode != 0 or not done.is_file():
        lines = [line for line in proc.stderr.splitlines() if line.startswith("inferlab: ")]
        raise ModelError(lines[-1].removeprefix("inferlab: ") if lines else
                         f"{artifact.ref}: converting the model for {target} failed "
                         f"({(proc.stderr.strip().splitlines() or ['no message'])[-1][:200]})")
    return done


def _target(artifact: Artifact, target: str) -> Path:
    if target == "onnx":
        return cache_dir() / f"{artifact.name}-{_key(artifact, 'onnx', 17)}.onnx"
    if target == "openvino":
        return cache_dir() / f"{artifact.name}-{_key(artifact, 'openvino')}.xml"
    return cache_dir() / f"{artifact.name}-{_key(artifact, 'tflite', 'float')}.tflite"


def to_onnx(artifact: Artifact) -> Path:
    """ONNX (opset 17) through tf2onnx, from the SavedModel's serving signature (its input and output names kept), in a
    process of its own: tf2onnx imports TensorFlow and sets its logging up at import."""
    source = ["--saved-model", str(saved_model(artifact)), "--tag", "serve", "--signature_def", "serving_default"]
    target = _target(artifact, "onnx")
    if target.is_file():
        return target
    tmp = target.with_suffix(f".{os.getpid()}.tmp.onnx")
    proc = subprocess.run([sys.executable, "-m", "tf2onnx.convert", *source, "--opset", "17",
                           "--output", str(tmp)], capture_output=True, text=True,
                          env={**os.environ, **quiet_environment()})
    if proc.returncode != 0 or not tmp.is_file():
        if "No module named tf2onnx" in proc.stderr:
            raise BackendError(f"converting a TensorFlow model to ONNX needs tf2onnx; {INSTALL}")
        last = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or ["no message"]
        raise ModelError(f"{artifact.ref}: tf2onnx cannot convert the model to ONNX ({last[0][:200]})")
    return _publish(tmp, target)


def to_openvino(artifact: Artifact) -> Path:
    """OpenVINO IR (f32 weights) through openvino.convert_model, which reads a SavedModel without TensorFlow (a
    .keras file goes through its SavedModel, which needs it)."""
    import openvino as ov

    source = saved_model(artifact)
    target = _target(artifact, "openvino")
    if target.is_file() and target.with_suffix(".bin").is_file():
        return target
    try:
        model = ov.convert_model(str(source))
    except Exception as exc:
        raise ModelError(f"{artifact.ref}: OpenVINO cannot convert the model ({str(exc).splitlines()[0][:200]})") \
            from exc
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    tmp.with_suffix(".bin").replace(target.with_suffix(".bin"))
    return _publish(tmp, target)


def to_tflite(artifact: Artifact, dst: Path | None = None, method: str = "float",
              calibration: Sequence[Feeds] = ()) -> Path:
    """A LiteRT flatbuffer through TensorFlow's converter, from the serving signature: `float` (float32),
    `fp16` (float16 weights), `int8` (full integer: int8 weights and activations, int8 input and output,
    calibrated on `calibration`, one feed per sample) or `dynamic` (int8 weights, float activations). Written
    to `dst`, else cached."""
    if method == "int8" and not calibration:
        raise ModelError("INT8 conversion to LiteRT needs calibration samples")
    target = dst or cache_dir() / f"{artifact.name}-{_key(artifact, 'tflite', method)}.tflite"
    if dst is None and target.is_file():
        return target
    tf = import_tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model(artifact)),
                                                          signature_keys=["serving_default"])
    if method in ("int8", "dynamic", "fp16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if method == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if method == "int8":
        def samples() -> Iterator[dict[str, np.ndarray]]:
            for feeds in calibration:
                yield {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()}

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with native_output(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the calibrator's use of TensorFlow's deprecated tf.lite.Interpreter
            blob = converter.convert()
    except Exception as exc:
        raise ModelError(f"{artifact.ref}: TensorFlow's LiteRT converter failed "
                         f"({str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__})") \
            from exc
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(blob)
    return _publish(tmp, target)


def readable_by(model: Artifact, target: str, inputs: list[TensorSpec] | None) -> Path:
    """The file a runtime reading `target` files ("onnx", or "openvino": IR or ONNX) loads for `model`: its own,
    a PyTorch model exported to ONNX, or a TensorFlow model converted (each cached by content hash)."""
    if model.format in (ModelFormat.TORCH_EXPORT, ModelFormat.TORCH_FACTORY):
        if inputs is None:
            raise ModelError(f"{model.ref}: converting to ONNX needs the input specs")
        return torch_to_onnx(model, inputs)
    if model.format in (ModelFormat.SAVED_MODEL, ModelFormat.KERAS):
        return converted(model, target)
    return model.path


def _main(argv: list[str]) -> int:
    """`python -m inferlab.models.convert_tf TARGET ARTIFACT_JSON` (see `converted`)."""
    import json

    artifact = Artifact.from_json(json.loads(argv[1]))
    try:
        {"onnx": to_onnx, "openvino": to_openvino, "tflite": to_tflite}[argv[0]](artifact)
    except (ModelError, BackendError) as exc:
        print(f"inferlab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
