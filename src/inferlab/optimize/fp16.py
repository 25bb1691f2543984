"""FP16 artifacts: an ONNX model with float16 weights and compute (float32 inputs and outputs kept), and an
OpenVINO IR with weights compressed to FP16."""

from __future__ import annotations

from pathlib import Path

from inferlab.errors import OptimizeError


def onnx_fp16(src: Path, dst: Path) -> None:
    """Convert every float32 initializer and op to float16; Cast nodes keep the model's interface float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        model = onnx.load(str(src))
        converted = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    except Exception as exc:
        raise OptimizeError(f"{src}: FP16 conversion failed ({type(exc).__name__}: {exc}); try OpenVINO's FP16 "
                            "IR instead") from exc
    onnx.save(converted, str(dst))


def openvino_fp16(src: Path, dst: Path) -> None:
    """Convert (ONNX, IR) to an IR whose weights are stored as FP16 (OpenVINO decompresses them at load and
    computes at its inference precision)."""
    import openvino as ov

    if dst.suffix != ".xml":
        raise OptimizeError(f"{dst}: an OpenVINO IR is written as .xml (with its .bin)")
    model = ov.Core().read_model(str(src))
    ov.save_model(model, str(dst), compress_to_fp16=True)
