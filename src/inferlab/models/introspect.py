"""Read a model's declared inputs without a runtime: ONNX through the onnx package, IR from its XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from inferlab.errors import ModelError
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.inputs import infer_batch_axes, merge
from inferlab.models.tensors import TensorSpec

# ONNX TensorProto element types -> numpy names (the subset models use for inputs).
_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
                11: "float64", 16: "bfloat16"}
_IR_DTYPES = {"f32": "float32", "f16": "float16", "i64": "int64", "i32": "int32", "u8": "uint8",
              "i8": "int8", "boolean": "bool", "f64": "float64"}


def onnx_inputs(path: Path) -> tuple[TensorSpec, ...]:
    import onnx

    model = onnx.load_model(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    specs = []
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        tt = inp.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        names = tuple(d.dim_param if d.HasField("dim_param") else "" for d in tt.shape.dim)
        specs.append(TensorSpec(inp.name, shape, _ONNX_DTYPES.get(tt.elem_type, "float32"),
                                dim_names=names if any(names) else ()))
    return infer_batch_axes(specs)


def ir_inputs(path: Path) -> tuple[TensorSpec, ...]:
    root = ET.parse(path).getroot()
    specs = []
    for layer in root.iter("layer"):
        if layer.get("type") != "Parameter":
            continue
        data = layer.find("data")
        shape_text = data.get("shape", "") if data is not None else ""
        dims = tuple(-1 if d.strip() in ("?", "-1") or ".." in d else int(d)
                     for d in shape_text.split(",") if d.strip())
        et = data.get("element_type", "f32") if data is not None else "f32"
        name = layer.get("name", "")
        port = layer.find("output/port")
        if port is not None and port.get("names"):
            name = port.get("names", name).split(",")[0]
        specs.append(TensorSpec(name, dims, _IR_DTYPES.get(et, "float32")))
    return infer_batch_axes(specs)


def keras_inputs(path: Path) -> tuple[TensorSpec, ...]:
    """A .keras file's inputs from its config.json: the InputLayers of a functional or sequential model (in the
    model's input order), else the shape a subclassed model was built with."""
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    body = config.get("config") or {}
    layers = {layer.get("name") or (layer.get("config") or {}).get("name"): layer.get("config") or {}
              for layer in body.get("layers") or [] if layer.get("class_name") == "InputLayer"}
    order = body.get("input_layers") or []
    if order and isinstance(order[0], str):  # one input: [name, 0, 0]
        order = [order]
    names = [entry[0] for entry in order if isinstance(entry, list) and entry] or list(layers)
    specs = []
    for name in names:
        cfg = layers.get(name, {})
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape") or []
        dtype = cfg.get("dtype")
        dtype = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
        specs.append(TensorSpec(name, tuple(-1 if d is None else int(d) for d in shape), str(dtype or "float32")))
    if not specs:
        built = (config.get("build_config") or {}).get("input_shape")
        if not built:
            raise ModelError(f"{path}: the .keras file declares no input (a subclassed model that was never "
                             "built); call the model on an example input before saving it, or export a SavedModel")
        specs.append(TensorSpec("input", tuple(-1 if d is None else int(d) for d in built), "float32"))
    return infer_batch_axes(specs)


def declared_inputs(artifact: Artifact, cheap_only: bool = False) -> tuple[TensorSpec, ...] | None:
    """The model's own input specs. With cheap_only, None for formats that need PyTorch to read."""
    if artifact.format is ModelFormat.ONNX:
        return onnx_inputs(artifact.path)
    if artifact.format is ModelFormat.OPENVINO:
        return ir_inputs(artifact.path)
    if artifact.format is ModelFormat.SAVED_MODEL:
        from inferlab.models.savedmodel import saved_model_inputs

        return saved_model_inputs(artifact.path)
    if artifact.format is ModelFormat.KERAS:
        return keras_inputs(artifact.path)
    if artifact.format is ModelFormat.TFLITE:
        from inferlab.models.tflite import tflite_inputs

        return tflite_inputs(artifact.path)
    if cheap_only:
        return None
    from inferlab.models.convert import torch_inputs

    return torch_inputs(artifact)


def concrete_inputs(artifact: Artifact, batch: int) -> list[TensorSpec]:
    """The concrete input specs a trial of `artifact` at `batch` loads with: the model's own, with the
    artifact's hints applied and every dimension fixed."""
    declared = declared_inputs(artifact)
    assert declared is not None  # only the cheap_only form answers None
    return merge(declared, artifact.inputs, batch, artifact.name)


def stored_precision(artifact: Artifact) -> str | None:
    """What the model file itself is: 'int8' (quantize/dequantize or FakeQuantize ops), 'f16' (float16
    weights), 'f32'; None for PyTorch models, which carry no such marks."""
    if artifact.format is ModelFormat.ONNX:
        import onnx

        model = onnx.load(str(artifact.path), load_external_data=False)
        ops = {n.op_type for n in model.graph.node}
        if ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger"}:
            return "int8"
        f16 = onnx.TensorProto.FLOAT16
        return "f16" if any(t.data_type == f16 for t in model.graph.initializer) else "f32"
    if artifact.format is ModelFormat.OPENVINO:
        root = ET.parse(artifact.path).getroot()
        types = []
        for layer in root.iter("layer"):
            data = layer.find("data")
            types.append((layer.get("type"), data.get("element_type") if data is not None else None))
        if any(t == "FakeQuantize" for t, _ in types):
            return "int8"
        return "f16" if any(t == "Const" and e == "f16" for t, e in types) else "f32"
    if artifact.format is ModelFormat.TFLITE:
        from inferlab.models.tflite import interpreter

        kinds = {d["dtype"].__name__ for d in interpreter(artifact.path, 1, False).get_tensor_details()}
        return "int8" if kinds & {"int8", "uint8"} else "f16" if "float16" in kinds else "f32"
    return None
