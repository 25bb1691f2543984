"""The complexity count: MACs, parameters and memory of small graphs built here and checked by hand, the INT8
share of QDQ models, the same figures from the OpenVINO and PyTorch counters, and bad input in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inferlab.analyze.complexity import Complexity, count
from inferlab.analyze.cost import QPARAMS, Lifetime, peak_bytes
from inferlab.api.analysis import analyze
from inferlab.errors import InputSpecError, ModelError
from inferlab.models.artifact import resolve
from inferlab.models.inputs import Wording, merge
from inferlab.models.introspect import declared_inputs

# conv: 4 filters 3x3 over 3 channels, padded, on 8x8 -> 4x8x8 outputs of 27 MACs; gemm: 256 -> 10
CONV_MACS = 4 * 8 * 8 * 27
GEMM_MACS = 10 * 256
PARAMS = 4 * 3 * 3 * 3 + 4 + 10 * 256 + 10


def _save(path: Path, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
          outputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto]) -> str:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def conv_gemm(path: Path) -> str:
    """x [N,3,8,8] -> Conv(+bias) -> Relu -> Flatten -> Gemm(+bias) -> y [N,10]."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((10, 256)).astype(np.float32), "fw"),
             numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    return _save(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], inits)


def _count(ref: str, batch: int = 1) -> Complexity:
    artifact = resolve("m", ref)
    declared = declared_inputs(artifact)
    assert declared is not None
    return count(artifact, merge(declared, artifact.inputs, batch, "m", Wording(None)))


def test_macs_flops_params_and_memory_of_a_conv_and_a_gemm(tmp_path: Path) -> None:
    c = _count(conv_gemm(tmp_path / "m.onnx"), batch=2)
    assert c.counted_by.startswith("onnx-tool ")
    assert c.batch == 2 and c.inputs[0].shape == (2, 3, 8, 8)
    by = {x.name: x for x in c.layers}
    assert by["conv"].macs == 2 * CONV_MACS and by["fc"].macs == 2 * GEMM_MACS
    assert c.macs == 2 * (CONV_MACS + GEMM_MACS) and c.flops == c.float_flops == 2 * c.macs
    assert c.int_ops == 0 and c.int8_share == 0.0
    # the bias adds and the ReLU are elementwise work, not MACs (FlopCounterMode leaves them out too)
    assert by["conv"].other_ops == 2 * 4 * 64 and by["relu"].other_ops == 2 * 4 * 64 and by["fc"].other_ops == 20
    assert c.params == PARAMS and by["conv"].params == 112 and by["fc"].params == 2570
    assert [(w.precision, w.params, w.bytes) for w in c.weights] == [("fp32", PARAMS, 4 * PARAMS)]
    # activations, bytes at batch 2: x 1536, conv 2048, relu 2048, flatten 2048, y 80
    assert c.input_bytes == 1536 and c.activation_bytes == 1536 + 3 * 2048 + 80
    # alive at once: conv+relu (or relu+flatten) outputs; the input is dead once the conv has read it
    assert c.peak_activation_bytes == 4096
    assert c.min_memory_bytes == 4 * PARAMS + 4096 and c.max_memory_bytes == 4 * PARAMS + c.activation_bytes


def test_a_skip_connection_keeps_its_input_alive(tmp_path: Path) -> None:
    """x -> r1 -> r2 -> add(x, r2): x lives until the add, so three 4000-byte tensors are alive at once."""
    nodes = [helper.make_node("Relu", ["x"], ["r1"], name="r1"), helper.make_node("Relu", ["r1"], ["r2"], name="r2"),
             helper.make_node("Add", ["x", "r2"], ["s"], name="add")]
    ref = _save(tmp_path / "skip.onnx", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1000])],
                [helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 1000])], [])
    c = _count(ref)
    assert c.activation_bytes == 16000 and c.peak_activation_bytes == 12000
    assert c.weight_bytes == 0 and c.min_memory_bytes == 12000 and c.max_memory_bytes == 16000
    assert c.macs == 0 and c.other_ops == 3000


def test_peak_of_lifetimes() -> None:
    assert peak_bytes([Lifetime(10, 0, 1), Lifetime(20, 1, 2), Lifetime(40, 3, 3)]) == 40
    assert peak_bytes([Lifetime(10, 0, 2), Lifetime(20, 1, 2), Lifetime(5, 2, 4)]) == 35
    assert peak_bytes([]) == 0


def test_conv_transpose_counts_input_times_kernel(tmp_path: Path) -> None:
    """onnx-tool 1.0.1 multiplies the output by the kernel; a transposed convolution does input × kernel work."""
    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])]
    ref = _save(tmp_path / "up.onnx", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 9, 9])], [w])
    c = _count(ref)
    assert c.macs == 2 * 4 * 4 * 3 * 3 * 3
    assert any("ConvTranspose" in n for n in c.notes)


def test_scalar_initialisers_count_one_parameter(tmp_path: Path) -> None:
    """onnx-tool counts a scalar as 0 elements; the parameters are every initialiser's elements."""
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    ref = _save(tmp_path / "add.onnx", [helper.make_node("Add", ["x", "one"], ["y"], name="add")],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [one])
    c = _count(ref)
    assert c.params == 1 and c.weight_bytes == 4 and c.layers[0].params == 1


def _quantized(src: str, dst: Path, exclude: tuple[str, ...] = ()) -> str:
    from inferlab.optimize.int8 import ort_int8

    rng = np.random.default_rng(0)
    feeds = [{"x": rng.random((1, 3, 8, 8), dtype=np.float32)} for _ in range(4)]
    ort_int8(Path(src), dst, feeds, exclude=exclude)
    return str(dst)


def _initialiser_elements(ref: str) -> int:
    model = onnx.load(ref)
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


@pytest.mark.slow
def test_int8_share_of_qdq_models(tmp_path: Path) -> None:
    src = conv_gemm(tmp_path / "m.onnx")
    int8 = _quantized(src, tmp_path / "int8.onnx")
    full = _count(int8)
    assert full.int8_share == 1.0 and full.float_flops == 0
    assert full.int_ops == 2 * (CONV_MACS + GEMM_MACS)
    assert {x.precision for x in full.layers if x.macs} == {"int8"}
    # integer weights are parameters; scales and zero points too, in their own group, never "int8 weights"
    assert full.params == _initialiser_elements(int8)
    groups = {w.precision: w for w in full.weights}
    assert groups["int8"].params == 4 * 3 * 3 * 3 + 10 * 256 and QPARAMS in groups
    # the Gemm left in float: the conv's share of the MACs runs in INT8
    part = _count(_quantized(src, tmp_path / "part.onnx", exclude=("fc",)))
    assert part.int8_share == pytest.approx(CONV_MACS / (CONV_MACS + GEMM_MACS))
    assert part.float_flops == 2 * GEMM_MACS and part.int_ops == 2 * CONV_MACS


@pytest.mark.slow
def test_openvino_counter_agrees_with_onnx_tool(tmp_path: Path) -> None:
    ov = pytest.importorskip("openvino")
    src = conv_gemm(tmp_path / "m.onnx")
    xml = tmp_path / "m.xml"
    ov.save_model(ov.convert_model(src), str(xml), compress_to_fp16=False)
    a, b = _count(src, batch=3), _count(str(xml), batch=3)
    assert b.counted_by.startswith("inferlab's OpenVINO op counter")
    assert b.macs == a.macs == 3 * (CONV_MACS + GEMM_MACS)
    assert b.params >= PARAMS and b.weights_by_precision()["fp32"] == 4 * PARAMS
    assert b.input_bytes == a.input_bytes and b.int8_share == 0.0


@pytest.mark.slow
def test_openvino_attention_op(tmp_path: Path) -> None:
    """OpenVINO's ONNX reader fuses MatMul-Softmax-MatMul into ScaledDotProductAttention: both matmuls count."""
    ov = pytest.importorskip("openvino")
    import openvino.opset13 as ops

    q = ops.parameter([1, 2, 8, 4], ov.Type.f32, name="q")
    k = ops.parameter([1, 2, 6, 4], ov.Type.f32, name="k")
    v = ops.parameter([1, 2, 6, 5], ov.Type.f32, name="v")
    model = ov.Model([ops.scaled_dot_product_attention(q, k, v, causal=False)], [q, k, v], "attention")
    ov.save_model(model, str(tmp_path / "a.xml"))
    c = analyze(tmp_path / "a.xml")
    assert c.macs == 2 * 8 * 6 * 4 + 2 * 8 * 6 * 5   # scores q·kᵀ, then the weighted sum of v


@pytest.mark.slow
def test_torch_counter_counts_what_onnx_tool_counts(tiny_models: dict[str, str]) -> None:
    """tests.fixtures.tiny_models: Conv2d(3, 8, 3, padding=1) on 16x16 and Linear(8, 5)."""
    macs = 8 * 16 * 16 * 27 + 8 * 5
    factory = analyze("tests.fixtures.tiny_models:tiny_convnet", shape={"x": [2, 3, 16, 16]})
    assert factory.counted_by.startswith("torch.utils.flop_counter")
    assert factory.batch == 2 and factory.macs == 2 * macs and factory.flops == 4 * macs
    assert factory.params == 8 * 27 + 8 + 8 * 5 + 5
    by = {x.name: x for x in factory.layers}
    assert by["conv"].type == "Conv2d" and by["conv"].macs == 2 * 8 * 16 * 16 * 27
    assert by["conv"].activation_bytes == 2 * 8 * 16 * 16 * 4
    exported = analyze(tiny_models["tiny.pt2"], batch=2)
    assert exported.macs == 2 * macs and {x.name: x.type for x in exported.layers}["fc"] == "Linear"
    assert analyze(tiny_models["tiny.onnx"], batch=2).macs == 2 * macs


def test_the_batch_comes_from_the_shape_when_none_is_given(tmp_path: Path) -> None:
    ref = conv_gemm(tmp_path / "m.onnx")
    assert analyze(ref, shape=[4, 3, 8, 8]).batch == 4
    assert analyze(ref, shape={"x": [-1, 3, 8, 8]}, batch=3).macs == 3 * (CONV_MACS + GEMM_MACS)
    assert analyze(ref).batch == 1


def test_json_round_trip(tmp_path: Path) -> None:
    c = _count(conv_gemm(tmp_path / "m.onnx"), batch=2)
    back = Complexity.from_json(c.to_json())
    assert back == c and back.to_json()["totals"]["flops"] == c.flops


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    dynamic = tmp_path / "dyn.onnx"
    _save(dynamic, [helper.make_node("Relu", ["x"], ["y"])],
          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "n"])], [])
    with pytest.raises(InputSpecError, match=r"'x' has dynamic dimensions .*--shape x=1x<n>"):
        analyze(dynamic)
    assert analyze(dynamic, shape={"x": [1, 7]}).activation_bytes == 2 * 7 * 4
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(ModelError, match="not a valid ONNX file"):
        analyze(corrupt)
    with pytest.raises(ModelError, match="model file not found"):
        analyze(tmp_path / "modle.onnx")


def picky() -> object:
    """A PyTorch model that runs only at sr 8000 or 16000 (as Silero VAD): the values come from `values`."""
    import torch

    class Picky(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor, sr: torch.Tensor) -> torch.Tensor:
            if int(sr) not in (8000, 16000):
                raise ValueError(f"sr must be 8000 or 16000, not {int(sr)}")
            return self.fc(x)

    return Picky().eval()


@pytest.mark.slow
def test_values_for_a_model_that_runs_only_on_them() -> None:
    ref = "tests.analyze.test_complexity:picky"
    with pytest.raises(ModelError, match=r"sr must be 8000 or 16000.*--input NAME=VALUE"):
        analyze(ref, shape={"x": [3, 4], "sr": []})
    c = analyze(ref, shape={"x": [3, 4], "sr": []}, values={"sr": 16000})
    assert c.batch == 3 and c.macs == 3 * 4 * 2 and c.params == 10
