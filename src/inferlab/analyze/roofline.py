"""The roofline: the micro-benchmarks that measure a device's roofs through a runtime (a GEMM for FLOP/s, a
streaming add for bytes/s), and the verdict that places a measured trial between them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inferlab.models.artifact import Artifact, ModelFormat, resolve
from inferlab.models.tensors import InputHint
from inferlab.records.analysis import Peaks, Roofline

# Below this fraction of the roof it could reach at its intensity, a trial is held back by neither roof but by
# what surrounds the arithmetic: launches, dispatch, small kernels, the framework (overhead-bound).
FAR_BELOW = 0.2

_BYTES = {"fp32": 4, "f32": 4, "fp16": 2, "f16": 2, "bf16": 2, "int8": 1, "i8": 1}


@dataclass(frozen=True)
class Micro:
    """One micro-benchmark: the model to run, and the work one run of it does."""

    kind: str                # "gemm" or "stream"
    artifact: Artifact
    flops: float
    bytes: float
    text: str


def sizes(device: str) -> tuple[int, int]:
    """(GEMM side, streamed elements): large enough that one run takes about a millisecond or more and the
    stream passes the last-level cache, so launch costs and caches do not flatter the roofs."""
    if device.startswith(("cuda", "gpu")):
        return 8192, 1 << 29
    return 2048, 1 << 24


def micros(formats: tuple[ModelFormat, ...], device: str, precision: str, folder: Path) -> tuple[Micro, Micro]:
    """The GEMM and the stream in a format the runtime loads: ONNX files written into `folder`, or PyTorch
    factories for a runtime that loads only PyTorch models."""
    n, elems = sizes(device)
    hints_gemm = (InputHint("a", (n, n), "float32", batch_axis="none"),
                  InputHint("b", (n, n), "float32", batch_axis="none"))
    hints_stream = (InputHint("x", (elems,), "float32", batch_axis="none"),)
    if ModelFormat.ONNX in formats:
        folder.mkdir(parents=True, exist_ok=True)
        if precision == "int8":  # a quantized model's convolutions and matmuls run on integer kernels
            gemm = resolve("roofline-gemm", str(_onnx_gemm_int8(folder, n)), None, hints_gemm[:1])
        else:
            gemm = resolve("roofline-gemm", str(_onnx_gemm(folder, n)), None, hints_gemm)
        stream = resolve("roofline-stream", str(_onnx_stream(folder, elems)), None, hints_stream)
        streamed = "fp32"  # the runtime reads and writes the float32 tensors it is fed, whatever it computes in
    elif ModelFormat.TORCH_FACTORY in formats:
        gemm = resolve("roofline-gemm", "inferlab.analyze.kernels:Gemm", None, hints_gemm)
        stream = resolve("roofline-stream", "inferlab.analyze.kernels:Stream", None, hints_stream)
        streamed = precision  # torch casts the inputs to its dtype before the timed run
    else:
        raise ValueError(f"no micro-benchmark format among {[f.value for f in formats]}")
    item = _BYTES.get(streamed, 4)
    return (Micro("gemm", gemm, 2.0 * n**3, 3.0 * n * n * _BYTES.get(precision, 4), f"GEMM {n}×{n}×{n} {precision}"),
            Micro("stream", stream, float(elems), 2.0 * elems * item,
                  f"y = x + 1 over {elems / 2**20:.0f} Mi {streamed} elements"))


def _onnx_gemm(folder: Path, n: int) -> Path:
    import onnx
    from onnx import TensorProto, helper

    path = folder / f"roofline-gemm-{n}.onnx"
    if not path.is_file():
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["y"])], "gemm",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
             helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _onnx_gemm_int8(folder: Path, n: int) -> Path:
    """A statically quantized GEMM in the QDQ form quantizers write: the input quantized to uint8 on the way in,
    int8 weights, each dequantized into the MatMul, which runtimes fuse into one integer kernel."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = folder / f"roofline-gemm-int8-{n}.onnx"
    if not path.is_file():
        weights = np.random.default_rng(0).integers(-127, 128, (n, n), dtype=np.int8)
        inits = [numpy_helper.from_array(weights, "w_q"), helper.make_tensor("w_scale", TensorProto.FLOAT, [], [0.01]),
                 helper.make_tensor("w_zero", TensorProto.INT8, [], [0]),
                 helper.make_tensor("a_scale", TensorProto.FLOAT, [], [0.02]),
                 helper.make_tensor("a_zero", TensorProto.UINT8, [], [128])]
        nodes = [helper.make_node("QuantizeLinear", ["a", "a_scale", "a_zero"], ["a_q"]),
                 helper.make_node("DequantizeLinear", ["a_q", "a_scale", "a_zero"], ["a_dq"]),
                 helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_dq"]),
                 helper.make_node("MatMul", ["a_dq", "w_dq"], ["y"])]
        graph = helper.make_graph(nodes, "gemm_int8", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])], initializer=inits)
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _onnx_stream(folder: Path, elems: int) -> Path:
    import onnx
    from onnx import TensorProto, helper

    path = folder / f"roofline-stream-{elems}.onnx"
    if not path.is_file():
        one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
        graph = helper.make_graph(
            [helper.make_node("Add", ["x", "one"], ["y"])], "stream",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [elems])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [elems])], initializer=[one])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def peaks_from(backend: str, device: str, precision: str, gemm: Micro, gemm_runs_per_s: float,
               stream: Micro, stream_runs_per_s: float, measured_at: str) -> Peaks:
    return Peaks(backend, device, precision, gemm.flops * gemm_runs_per_s, stream.bytes * stream_runs_per_s,
                 gemm.text, stream.text, measured_at=measured_at)


def place(flops_per_sample: float, bytes_per_sample: float, counted_by: str, throughput_sps: float,
          peaks: Peaks) -> Roofline:
    """Where a trial that does `flops_per_sample` and moves `bytes_per_sample` at `throughput_sps` sits under
    the roofs, with a one-line verdict."""
    achieved_f = flops_per_sample * throughput_sps
    achieved_b = bytes_per_sample * throughput_sps
    intensity = flops_per_sample / bytes_per_sample if bytes_per_sample else float("inf")
    attainable = min(peaks.flops_per_s, intensity * peaks.bytes_per_s)
    fraction = achieved_f / attainable if attainable else 0.0
    bound = "compute" if intensity >= peaks.ridge else "memory"
    where = (f"intensity {intensity:.1f} FLOP/byte, {'above' if bound == 'compute' else 'below'} the ridge "
             f"{peaks.ridge:.1f}")
    cached = ""
    if bound == "memory" and achieved_f > attainable:
        # Faster than streaming every byte from memory allows: the working set stays in the caches, so the memory
        # roof does not bind and the compute roof is the one to hold it against.
        cached = (f"above the memory roof at this intensity ({_g(attainable)}FLOP/s): its data stay in the "
                  "caches; ")
        bound, attainable = "compute", peaks.flops_per_s
        fraction = achieved_f / attainable
    roof = (f"the compute roof ({_g(peaks.flops_per_s)}FLOP/s)" if bound == "compute"
            else f"the memory roof at this intensity ({_g(attainable)}FLOP/s)")
    share = f"{fraction:.1%}" if fraction < 0.01 else f"{fraction:.0%}"
    if fraction < FAR_BELOW:
        verdict = "overhead-bound"
        why = (f"{cached}{_g(achieved_f)}FLOP/s is {share} of {roof}: far below both roofs, so launches, dispatch "
               f"or small kernels hold it back ({where})")
    else:
        verdict = f"{bound}-bound"
        why = f"{cached}{_g(achieved_f)}FLOP/s is {share} of {roof} ({where})"
    return Roofline(flops_per_sample, bytes_per_sample, counted_by, peaks, achieved_f, achieved_b, verdict, why,
                    {"fraction_of_attainable": fraction})


def _g(x: float) -> str:
    """A rate with an SI prefix and a trailing space: '1.2 T'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}"
    return f"{x:.3g} "

