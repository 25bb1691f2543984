"""A LiteRT (TensorFlow Lite) model through ai-edge-litert, which needs no TensorFlow: the interpreter, its
tensors by the names of the serving signature, and the int8 quantization of its inputs and outputs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inferlab.errors import BackendError, ModelError
from inferlab.models.inputs import infer_batch_axes
from inferlab.models.quiet import native_output
from inferlab.models.tensors import TensorSpec

log = logging.getLogger(__name__)
INSTALL = "pip install 'inferlab[litert]'"


@dataclass(frozen=True)
class Port:
    """One input or output: its name (the signature's, else the tensor's), the interpreter's tensor index, the
    stored dtype, the shape with -1 where the model leaves a dimension open, and the affine quantization
    (scale, zero point) of an integer tensor that stands for real values."""

    name: str
    index: int
    dtype: str
    shape: tuple[int, ...]
    quant: tuple[float, int] | None

    def spec(self) -> TensorSpec:
        """What a caller feeds or reads: real values (float32) for a quantized tensor."""
        return TensorSpec(self.name, self.shape, "float32" if self.quant else self.dtype)


def interpreter(path: Path, threads: int | None = None, xnnpack: bool = True) -> Any:
    """A LiteRT interpreter with its tensors allocated; a one-line ModelError for a model it cannot run (an op
    it has no kernel for, a custom op)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise BackendError(f"running a .tflite model needs ai-edge-litert, which is not installed; {INSTALL}") from None
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with native_output((2,)) as said:  # its "Created TensorFlow Lite XNNPACK delegate" notice, its errors
            it = Interpreter(model_path=str(path), num_threads=threads if threads else None,
                             experimental_op_resolver_type=resolver)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: LiteRT cannot run the model: {_why(exc, said.text)}") from None
    return it


def _why(exc: BaseException, said: str) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [
        line.strip() for line in said.splitlines() if line.strip() and "XNNPACK delegate" not in line]
    text = " ".join(line for line in lines[:3] if not line.startswith("See instructions"))
    if "custom op" in text.lower() or "unresolved" in text.lower():
        return (f"{text[:200].rstrip('.')}; it has a custom op LiteRT has no kernel for: convert it with builtin ops "
                "only (TFLiteConverter without allow_custom_ops), or run the original model on the tensorflow backend")
    return text[:300]


def _ports(details: list[dict[str, Any]], names: dict[int, str]) -> list[Port]:
    out = []
    for d in details:
        scale, zero = d.get("quantization", (0.0, 0))
        dtype = np.dtype(d["dtype"]).name
        quant = (float(scale), int(zero)) if scale and dtype in ("int8", "uint8", "int16") else None
        sig = d.get("shape_signature")
        shape = tuple(int(x) for x in (sig if sig is not None and len(sig) else d["shape"]))
        out.append(Port(names.get(d["index"], d["name"]), d["index"], dtype, shape, quant))
    return out


def ports(it: Any) -> tuple[list[Port], list[Port]]:
    """The model's inputs and outputs, named by its serving signature where it has one (`image`, not
    `serving_default_image:0`), in the signature's order."""
    sigs = it.get_signature_list()
    key = "serving_default" if "serving_default" in sigs else next(iter(sigs), None)
    in_names: dict[int, str] = {}
    out_names: dict[int, str] = {}
    if key is not None:
        runner = it.get_signature_runner(key)
        in_names = {d["index"]: n for n, d in runner.get_input_details().items()}
        out_names = {d["index"]: n for n, d in runner.get_output_details().items()}
    ins, outs = _ports(it.get_input_details(), in_names), _ports(it.get_output_details(), out_names)
    return sorted(ins, key=lambda p: p.name), sorted(outs, key=lambda p: p.name)


def tflite_inputs(path: Path) -> tuple[TensorSpec, ...]:
    it = interpreter(path, threads=1, xnnpack=False)
    return infer_batch_axes([p.spec() for p in ports(it)[0]])


def quantize(x: np.ndarray, port: Port) -> np.ndarray:
    """Real values to the stored integers of a quantized input (round half to even, clipped to the dtype)."""
    if port.quant is None:
        return np.asarray(x, dtype=port.dtype)
    scale, zero = port.quant
    info = np.iinfo(port.dtype)
    return np.clip(np.rint(np.asarray(x, np.float32) / scale) + zero, info.min, info.max).astype(port.dtype)


def dequantize(q: np.ndarray, port: Port) -> np.ndarray:
    if port.quant is None:
        return q
    scale, zero = port.quant
    return ((q.astype(np.float32) - zero) * scale).astype(np.float32)
