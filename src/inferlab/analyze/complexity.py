"""A model's complexity at concrete input shapes: `count(artifact, inputs)` picks the counter for the format
(onnx-tool for ONNX, FlopCounterMode for PyTorch, inferlab's op counter for OpenVINO IR) and says which counted."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import replace

import numpy as np

from inferlab.analyze.cost import Complexity, InputShape, LayerCost, WeightGroup
from inferlab.errors import ModelError, first_line
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.inputs import batch_size
from inferlab.models.tensors import TensorSpec

__all__ = ["Complexity", "InputShape", "LayerCost", "WeightGroup", "count"]

log = logging.getLogger(__name__)


def count(artifact: Artifact, inputs: list[TensorSpec]) -> Complexity:
    """Count `artifact` at `inputs` (concrete specs with the batch applied, as `models.inputs.merge` makes them).
    Totals are for the whole batch."""
    shapes = tuple(InputShape(s.name, tuple(s.shape), s.dtype) for s in inputs)
    batch = batch_size(inputs)
    inputs = [_zeros_for_integers(s) for s in inputs]
    if artifact.format is ModelFormat.ONNX:
        return _onnx(artifact, inputs, shapes, batch)
    if artifact.format is ModelFormat.OPENVINO:
        return _openvino(artifact, inputs, shapes, batch, [])
    if artifact.format in (ModelFormat.KERAS, ModelFormat.SAVED_MODEL):  # counted on its ONNX conversion (cached)
        from inferlab.models.convert_tf import converted

        onnx = replace(artifact, ref=str(converted(artifact, "onnx")), format=ModelFormat.ONNX)
        counted = _onnx(onnx, inputs, shapes, batch)
        return replace(counted, format=artifact.format.value, notes=(
            *counted.notes, "counted on the ONNX model tf2onnx converted it to (TensorFlow's layers as ONNX ops)"))
    if artifact.format is ModelFormat.TFLITE:
        raise ModelError(f"{artifact.ref}: inferlab counts a LiteRT model on the TensorFlow model it was converted "
                         "from; give the .keras file or the SavedModel folder")
    from inferlab.analyze import count_torch

    try:
        layers, weights, input_bytes, peak, notes = count_torch.torch_count(artifact, inputs)
    except (ModelError, MemoryError):
        raise
    except Exception as exc:  # the model's own forward failed at these shapes: the user's to fix
        raise ModelError(f"{artifact.ref}: running the model at "
                         f"{', '.join(f'{s.name}={_dims(s.shape)}' for s in shapes)} failed "
                         f"({type(exc).__name__}: {first_line(exc)}); give shapes it accepts with --shape, and "
                         "values with --input NAME=VALUE where zeros (integer inputs) or 0..1 (float ones) do not "
                         "fit") from exc
    return Complexity(artifact.name, artifact.format.value, count_torch.counter_name(), batch, shapes, layers,
                      weights, input_bytes, peak, tuple(notes))


def _onnx(artifact: Artifact, inputs: list[TensorSpec], shapes: tuple[InputShape, ...], batch: int) -> Complexity:
    from inferlab.analyze import count_onnx
    from inferlab.analyze.dataflow import tally

    try:
        graph, notes = count_onnx.onnx_graph(artifact.path, inputs)
    except count_onnx.CounterFailed as exc:
        if importlib.util.find_spec("openvino") is None:
            raise ModelError(f"{artifact.path}: onnx-tool cannot count this model ({exc}); convert it to OpenVINO "
                             "IR and analyze the .xml") from None
        log.info("onnx-tool failed on %s (%s): counting with OpenVINO", artifact.path, exc)
        return _openvino(artifact, inputs, shapes, batch, [f"onnx-tool could not count this model ({exc}); "
                                                           "OpenVINO read the ONNX file and inferlab counted"])
    layers, weights, input_bytes, peak = tally(graph)
    return Complexity(artifact.name, artifact.format.value, count_onnx.counter_name(), batch, shapes, layers,
                      weights, input_bytes, peak, tuple(notes) + _onnx_notes(weights))


def _onnx_notes(weights: tuple[WeightGroup, ...]) -> tuple[str, ...]:
    notes = ["parameters are the elements of every initialiser (scalars count one); values of Constant nodes are "
             "not parameters", "other ops are onnx-tool's elementwise cost model (an add 1, a division 4, an exp "
             "32 per element), and include the bias adds of Conv and Gemm"]
    if any(w.precision == "scales/zero points" for w in weights):
        notes.append("quantization scales and zero points count as parameters, in a group of their own, not as "
                     "INT8 weights")
    return tuple(notes)


def _openvino(artifact: Artifact, inputs: list[TensorSpec], shapes: tuple[InputShape, ...], batch: int,
              notes: list[str]) -> Complexity:
    from inferlab.analyze import count_openvino
    from inferlab.analyze.dataflow import tally

    graph, more = count_openvino.ov_graph(count_openvino.read(artifact.path, inputs))
    layers, weights, input_bytes, peak = tally(graph)
    notes = [*notes, *more, "parameters are the elements of every Constant op, shape constants included",
             "other ops count one per element written (per element read for reductions and pooling windows)"]
    return Complexity(artifact.name, artifact.format.value, count_openvino.counter_name(), batch, shapes, layers,
                      weights, input_bytes, peak, tuple(notes))


def _zeros_for_integers(spec: TensorSpec) -> TensorSpec:
    """Integer inputs the user gave no value or range get zeros: an index every table has, a valid token type and
    mask value, where random ones may fall outside an embedding (the values decide no count, only whether the
    model runs)."""
    if spec.value is None and spec.low is None and spec.data is None and np.dtype(spec.dtype).kind in "iub":
        return replace(spec, value=0.0)
    return spec


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"
