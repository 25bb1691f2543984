"""What a complexity count yields: per-layer costs and the model's totals (FLOPs, integer ops, parameters and
weight bytes by precision, activation memory), plus the memory peak of a tensor schedule."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Short precision names, as OpenVINO's and DL Workbench's tables write them; numpy and OpenVINO spellings in.
_SHORT = {"float32": "fp32", "f32": "fp32", "float16": "fp16", "f16": "fp16", "bfloat16": "bf16", "bf16": "bf16",
          "float64": "fp64", "f64": "fp64", "int8": "int8", "i8": "int8", "uint8": "uint8", "u8": "uint8",
          "int16": "int16", "i16": "int16", "uint16": "uint16", "u16": "uint16", "int32": "int32", "i32": "int32",
          "uint32": "uint32", "u32": "uint32", "int64": "int64", "i64": "int64", "uint64": "uint64", "u64": "uint64",
          "bool": "bool", "boolean": "bool", "i4": "int4", "u4": "uint4", "int4": "int4", "uint4": "uint4",
          "nf4": "nf4", "f8e4m3": "fp8", "f8e5m2": "fp8"}
INT8 = frozenset({"int8", "uint8", "int4", "uint4"})   # what a weight quantized for integer arithmetic is stored in
QPARAMS = "scales/zero points"    # the weight group of quantization parameters (not weights a layer multiplies by)


def precision_name(dtype: object) -> str:
    """'fp32', 'fp16', 'int8' ... for a numpy dtype, a torch dtype or an OpenVINO element type name."""
    text = str(dtype).replace("torch.", "").replace("<Type: '", "").rstrip("'>").lower()
    if text in _SHORT:
        return _SHORT[text]
    try:
        return _SHORT.get(np.dtype(text).name, text)
    except TypeError:
        return text


@dataclass(frozen=True)
class LayerCost:
    """One layer (an ONNX node, an OpenVINO op, a PyTorch module's own work) at the counted batch.

    `macs` are the multiply-accumulates of convolution- and matmul-like work (what FlopCounterMode counts too);
    they become `flops` (2 × macs) when the layer computes in floating point, `int_ops` (2 × macs) when it
    computes in INT8. `other_ops` is the elementwise, normalisation and reduction work, in the counter's own
    cost model (onnx-tool weighs an exp as 32, an add as 1), kept apart so figures from different counters stay
    comparable. `params`/`weight_bytes` are the constants the layer reads, counted at their first reader;
    `activation_bytes` are the tensors it writes."""

    name: str
    type: str
    macs: int
    flops: int
    int_ops: int
    params: int
    weight_bytes: int
    activation_bytes: int
    precision: str
    other_ops: int = 0

    @property
    def ops(self) -> int:
        """FLOPs plus integer ops: the layer's arithmetic, whatever it runs in."""
        return self.flops + self.int_ops


@dataclass(frozen=True)
class WeightGroup:
    """The model's constants of one precision: how many elements, how many bytes. Quantization scales and zero
    points are a group of their own (`QPARAMS`), whatever their type."""

    precision: str
    params: int
    bytes: int


@dataclass(frozen=True)
class InputShape:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Complexity:
    """A model's complexity at one input shape and batch, counted statically by `counted_by`.

    Totals are for the whole batch. Memory: `activation_bytes` is every activation tensor (the inputs and each
    layer's outputs) counted once, the bytes written once and read once; `max_memory_bytes` keeps them all
    (weights + activation_bytes); `min_memory_bytes` is the weights plus the peak of the tensors alive at once
    along the counted order, each living from its producer to its last consumer (an ideal allocator)."""

    model: str
    format: str
    counted_by: str
    batch: int
    inputs: tuple[InputShape, ...]
    layers: tuple[LayerCost, ...]
    weights: tuple[WeightGroup, ...]     # by precision, largest first
    input_bytes: int                      # the model's inputs, part of the activations
    peak_activation_bytes: int            # the largest set of activations alive at once
    notes: tuple[str, ...] = ()

    @property
    def macs(self) -> int:
        return sum(x.macs for x in self.layers)

    @property
    def float_flops(self) -> int:
        return sum(x.flops for x in self.layers)

    @property
    def int_ops(self) -> int:
        return sum(x.int_ops for x in self.layers)

    @property
    def flops(self) -> int:
        """Float FLOPs plus integer ops of the convolution/matmul-like work, whole batch (the roofline's work)."""
        return self.float_flops + self.int_ops

    @property
    def other_ops(self) -> int:
        return sum(x.other_ops for x in self.layers)

    @property
    def params(self) -> int:
        return sum(w.params for w in self.weights)

    @property
    def weight_bytes(self) -> int:
        """Every constant the model holds, scales and zero points included: what one batch reads once."""
        return sum(w.bytes for w in self.weights)

    @property
    def activation_bytes(self) -> int:
        """Every activation tensor (inputs and layer outputs) once: the bytes written once and read once (traffic
        that writes and reads each is twice this)."""
        return self.input_bytes + sum(x.activation_bytes for x in self.layers)

    @property
    def min_memory_bytes(self) -> int:
        return self.weight_bytes + self.peak_activation_bytes

    @property
    def max_memory_bytes(self) -> int:
        return self.weight_bytes + self.activation_bytes

    @property
    def int8_macs(self) -> int:
        return sum(x.int_ops for x in self.layers) // 2

    @property
    def int8_share(self) -> float:
        """The share (0..1) of the convolution/matmul-like multiply-accumulates that run in INT8."""
        return self.int8_macs / self.macs if self.macs else 0.0

    def weights_by_precision(self) -> dict[str, int]:
        return {w.precision: w.bytes for w in self.weights}

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "format": self.format, "counted_by": self.counted_by, "batch": self.batch,
                "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in self.inputs],
                "totals": {"macs": self.macs, "flops": self.flops, "float_flops": self.float_flops,
                           "int_ops": self.int_ops, "other_ops": self.other_ops, "params": self.params,
                           "weight_bytes": self.weight_bytes, "activation_bytes": self.activation_bytes,
                           "input_bytes": self.input_bytes, "peak_activation_bytes": self.peak_activation_bytes,
                           "min_memory_bytes": self.min_memory_bytes, "max_memory_bytes": self.max_memory_bytes,
                           "int8_share": self.int8_share},
                "weights": [asdict(w) for w in self.weights],
                "layers": [asdict(x) for x in self.layers],
                "notes": list(self.notes)}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Complexity:
        return Complexity(str(d["model"]), str(d["format"]), str(d["counted_by"]), int(d["batch"]),
                          tuple(InputShape(i["name"], tuple(i["shape"]), i["dtype"]) for i in d["inputs"]),
                          tuple(LayerCost(**x) for x in d["layers"]), tuple(WeightGroup(**w) for w in d["weights"]),
                          int(d["totals"]["input_bytes"]), int(d["totals"]["peak_activation_bytes"]),
                          tuple(d.get("notes") or ()))


@dataclass(frozen=True)
class Lifetime:
    """An activation buffer: its bytes, the step that writes it and the last step that reads it."""

    bytes: int
    first: int
    last: int


def peak_bytes(buffers: Iterable[Lifetime]) -> int:
    """The most bytes alive at one step when each buffer lives from its first to its last step inclusive (a
    step's inputs and outputs are alive together)."""
    delta: dict[int, int] = {}
    for b in buffers:
        delta[b.first] = delta.get(b.first, 0) + b.bytes
        delta[b.last + 1] = delta.get(b.last + 1, 0) - b.bytes
    peak = live = 0
    for step in sorted(delta):
        live += delta[step]
        peak = max(peak, live)
    return peak


def group_weights(items: Iterable[tuple[str, int, int]]) -> tuple[WeightGroup, ...]:
    """(precision, elements, bytes) of each constant -> the groups, largest first."""
    groups: dict[str, list[int]] = {}
    for precision, n, size in items:
        g = groups.setdefault(precision, [0, 0])
        g[0] += n
        g[1] += size
    return tuple(sorted((WeightGroup(p, n, b) for p, (n, b) in groups.items()), key=lambda w: (-w.bytes, w.precision)))


def numel(shape: Sequence[int]) -> int:
    """Elements of a tensor of this shape (a scalar has one)."""
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


@contextlib.contextmanager
def quiet_torch_load() -> Iterator[None]:
    """Loading and unflattening an exported program warns about torch's own classes (FutureWarning) and logs
    about its symbols ("Symbol u1 did not appear ..."): nothing a user can act on, and noise before a table."""
    serde = logging.getLogger("torch._export.serde.serialize")
    quiet = _BelowError()   # a filter, not a level: importing torch inside sets its loggers' levels
    serde.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        serde.removeFilter(quiet)


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR
