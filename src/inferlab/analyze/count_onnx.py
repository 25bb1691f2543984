"""ONNX complexity through onnx-tool: its shape inference and per-node MACs at the concrete input shapes, with the
convolution/matmul work split from the elementwise work and parameters read from the initialisers themselves."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from inferlab.analyze.cost import numel
from inferlab.analyze.dataflow import Graph, Node, Tensor, topological
from inferlab.errors import first_line
from inferlab.models.inputs import random_feeds
from inferlab.models.tensors import TensorSpec

log = logging.getLogger(__name__)

MAC_TYPES = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum", "LSTM", "GRU", "RNN", "QLinearConv",
                       "QLinearMatMul", "ConvInteger", "MatMulInteger"})
INTEGER_TYPES = frozenset({"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"})
QUANTIZERS: dict[str, tuple[int, ...]] = {"QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2)}
QPARAM_INPUTS: dict[str, tuple[int, ...]] = {
    "QLinearConv": (1, 2, 4, 5, 6, 7), "QLinearMatMul": (1, 2, 4, 5, 6, 7), "ConvInteger": (2, 3),
    "MatMulInteger": (2, 3)}
_INT4 = {21: 0.5, 22: 0.5}    # ONNX UINT4, INT4: two to a byte


class CounterFailed(Exception):
    """onnx-tool could not infer shapes or count this graph (an operator it does not know, a shape it cannot
    follow); the caller may count with another counter."""


def counter_name() -> str:
    return f"onnx-tool {version('onnx-tool')}"


def onnx_graph(path: Path, inputs: list[TensorSpec]) -> tuple[Graph, list[str]]:
    """The graph at the inputs' shapes, each node carrying onnx-tool's count, and notes on what was corrected."""
    import onnx
    import onnx_tool  # type: ignore[import-untyped]

    proto = onnx.load(str(path), load_external_data=False)
    stored = {i.name: _initializer(i) for i in proto.graph.initializer}
    feeds = random_feeds(inputs, np.random.default_rng(0))  # values matter only where they decide a shape
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = onnx_tool.Model(str(path)).graph
            g.shape_infer(feeds)
            g.profile()
    except Exception as exc:  # onnx-tool raises whatever its node implementations raise
        raise CounterFailed(f"{type(exc).__name__}: {first_line(exc)}") from exc
    finally:
        if chatter.getvalue().strip():
            log.debug("onnx-tool: %s", chatter.getvalue().strip())
    if not g.valid_profile:
        raise CounterFailed("its shape inference did not reach every node")
    tensors: dict[str, Tensor] = {}
    for name, t in g.tensormap.items():
        dt = np.dtype(t.dtype)
        tensors[name] = Tensor.of(t.get_shape(), dt.name, dt.itemsize)
    tensors.update(stored)
    notes: list[str] = []
    nodes = []
    for name, n in g.nodemap.items():
        node = Node(name, n.op_type, list(n.input), list(n.output))
        node.macs, node.other_ops = _split(n, tensors, notes)
        nodes.append(node)
    graph_inputs = [i for i in g.input if i not in stored]
    ordered = topological(nodes, set(graph_inputs) | set(stored))
    return Graph(ordered, tensors, stored, graph_inputs, list(g.output), QUANTIZERS, MAC_TYPES, INTEGER_TYPES,
                 frozenset({"Shape", "Size"}), QPARAM_INPUTS), notes


def _initializer(t: Any) -> Tensor:
    import onnx

    itemsize = _INT4.get(t.data_type) or np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    dtype = {21: "uint4", 22: "int4"}.get(t.data_type) or np.dtype(
        onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).name
    return Tensor.of(tuple(t.dims), dtype, itemsize)


def _split(n: Any, tensors: dict[str, Tensor], notes: list[str]) -> tuple[int, int]:
    """(convolution/matmul MACs, other ops) of one node from onnx-tool's single figure, which adds a bias to its
    Conv and Gemm MACs (kept as elementwise work, as FlopCounterMode leaves it out) and weighs elementwise ops by
    their cost (an exp 32 adds). Two counts are inferlab's own: ConvTranspose (onnx-tool multiplies the output,
    not the input, by the kernel) and the matmuls inside an LSTM/GRU/RNN."""
    total = int(n.macs[0])
    t = n.op_type
    if t not in MAC_TYPES:
        return 0, total

    def shape(i: int) -> tuple[int, ...]:
        return tensors[n.input[i]].shape

    out = numel(tensors[n.output[0]].shape)
    if t in ("Conv", "Gemm"):
        core = total - (out if len(n.input) > 2 and n.input[2] else 0)
    elif t == "QLinearConv":
        core = total - (out if len(n.input) == 9 and n.input[8] else 0)
    elif t == "ConvTranspose":
        core = numel(shape(0)) * numel(shape(1)[1:])
        if total != core + (out if len(n.input) > 2 and n.input[2] else 0):
            note = "ConvTranspose MACs are inferlab's (input × kernel); onnx-tool 1.0.1 counts output × kernel"
            if note not in notes:
                notes.append(note)
        return core, out if len(n.input) > 2 and n.input[2] else 0
    elif t in ("LSTM", "GRU", "RNN"):
        x = shape(0)   # [seq, batch, input] or [batch, seq, input]: their product is what matters
        core = (numel(shape(1)) + numel(shape(2))) * x[0] * x[1]
        return core, max(0, total - core)
    else:
        core = total
    return core, total - core
