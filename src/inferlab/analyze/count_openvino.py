"""inferlab's own OpenVINO op counter: the `ov.Model` reshaped to the concrete inputs, MACs of its convolution,
matmul and recurrent ops from their static shapes, one op per element for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferlab.analyze.cost import INT8, numel, precision_name
from inferlab.analyze.dataflow import Graph, Node, Tensor
from inferlab.errors import InputSpecError, ModelError, first_line
from inferlab.models.tensors import TensorSpec

MAC_TYPES = frozenset({"Convolution", "GroupConvolution", "ConvolutionBackpropData", "GroupConvolutionBackpropData",
                       "MatMul", "LSTMSequence", "GRUSequence", "RNNSequence", "LSTMCell", "GRUCell", "RNNCell",
                       "ScaledDotProductAttention"})
QUANTIZERS: dict[str, tuple[int, ...]] = {"FakeQuantize": (1, 2, 3, 4)}
# Ops that move data and compute nothing; the rest count one op per element they write.
_MOVES = frozenset({"Parameter", "Result", "Constant", "Reshape", "Transpose", "Concat", "Split", "VariadicSplit",
                    "Gather", "GatherND", "GatherElements", "Squeeze", "Unsqueeze", "Convert", "ConvertLike",
                    "ShapeOf", "Broadcast", "StridedSlice", "Slice", "Tile", "Pad", "ScatterUpdate",
                    "ScatterNDUpdate", "ScatterElementsUpdate", "DepthToSpace", "SpaceToDepth", "ShuffleChannels",
                    "Range", "ReadValue", "Assign", "Roll", "Reverse"})
_POOLS = frozenset({"MaxPool", "AvgPool"})
_LOOPS = frozenset({"TensorIterator", "Loop", "If"})
# (weights, recurrent weights) input positions of the recurrent ops
_RECURRENT = {"LSTMSequence": (4, 5), "GRUSequence": (3, 4), "RNNSequence": (3, 4), "LSTMCell": (3, 4),
              "GRUCell": (2, 3), "RNNCell": (2, 3)}


def counter_name() -> str:
    import openvino as ov

    return f"inferlab's OpenVINO op counter (openvino {ov.get_version().split('-')[0]})"


def read(path: Path, inputs: list[TensorSpec]) -> Any:
    """The model reshaped to the concrete input shapes."""
    import openvino as ov

    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line texts
        raise ModelError(f"{path}: OpenVINO cannot read the model ({first_line(exc)}); "
                         "re-convert it") from exc
    ports = {}
    for port in model.inputs:
        names = set(port.get_names()) | {port.get_node().get_friendly_name()}
        spec = next((s for s in inputs if s.name in names), None)
        if spec is None:
            raise InputSpecError(f"{path}: input '{port.get_any_name()}' has no shape; give it with --shape")
        ports[port] = ov.PartialShape(list(spec.shape))
    try:
        model.reshape(ports)
    except Exception as exc:
        shapes = ", ".join(f"{s.name}={'x'.join(map(str, s.shape))}" for s in inputs)
        raise InputSpecError(f"{path}: the model does not take the shapes {shapes} "
                             f"({first_line(exc)}); give shapes it accepts with --shape") from exc
    return model


def ov_graph(model: Any) -> tuple[Graph, list[str]]:
    """The graph of a reshaped ov.Model with each op's count, and notes on what is not counted."""
    tensors: dict[str, Tensor] = {}
    stored: dict[str, Tensor] = {}
    nodes: list[Node] = []
    inputs: list[str] = []
    outputs: list[str] = []
    dynamic: list[str] = []
    loops: list[str] = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        ins = [f"{i.get_source_output().get_node().get_name()}:{i.get_source_output().get_index()}"
               for i in op.inputs()]
        if kind == "Result":
            outputs += ins
            continue
        outs = []
        for port in op.outputs():
            tid = f"{op.get_name()}:{port.get_index()}"
            ps, et = port.get_partial_shape(), port.get_element_type()
            if ps.is_static:
                shape = tuple(int(d) for d in ps.to_shape())
            else:
                dynamic.append(op.get_friendly_name())
                shape = (0,)
            t = Tensor(shape, et.get_type_name(), -(-numel(shape) * et.bitwidth // 8))
            if kind == "Constant":
                stored[tid] = t
            elif port.get_target_inputs() or kind == "Parameter":  # an output nobody reads is never written
                tensors[tid] = t
                outs.append(tid)
        if kind == "Constant":
            continue
        if kind == "Parameter":
            inputs += outs
            continue
        if kind in _LOOPS:
            loops.append(op.get_friendly_name())
        node = Node(op.get_friendly_name(), kind, ins, outs)
        node.macs, node.other_ops = _count(op, kind)
        nodes.append(node)
    tensors.update(stored)
    graph = Graph(nodes, tensors, stored, inputs, outputs, QUANTIZERS, MAC_TYPES, shape_types=frozenset({"ShapeOf"}))
    notes = []
    if dynamic:
        notes.append(f"{len(dynamic)} ops have output shapes known only at run time ({', '.join(dynamic[:3])}"
                     f"{' ...' if len(dynamic) > 3 else ''}); their activations are not counted")
    if loops:
        notes.append(f"the bodies of {', '.join(loops[:3])} ({len(loops)} loop/condition ops) are not counted")
    _decompression_qparams(graph)
    return graph, notes


def _count(op: Any, kind: str) -> tuple[int, int]:
    """(convolution/matmul MACs, other ops) of one op from its static shapes."""

    def shape(i: int) -> tuple[int, ...]:
        ps = op.input(i).get_partial_shape()
        return tuple(int(d) for d in ps.to_shape()) if ps.is_static else ()

    def out_shape() -> tuple[int, ...]:
        ps = op.output(0).get_partial_shape()
        return tuple(int(d) for d in ps.to_shape()) if ps.is_static else ()

    out = out_shape()
    if not out and kind not in _MOVES:
        return 0, 0
    if kind == "Convolution":            # weights [Cout, Cin, k...]
        return numel(out) * numel(shape(1)[1:]), 0
    if kind == "GroupConvolution":       # weights [G, Cout/G, Cin/G, k...]
        return numel(out) * numel(shape(1)[2:]), 0
    if kind == "ConvolutionBackpropData":   # weights [Cin, Cout, k...]: every input element meets a kernel
        return numel(shape(0)) * numel(shape(1)[1:]), 0
    if kind == "GroupConvolutionBackpropData":  # weights [G, Cin/G, Cout/G, k...]
        return numel(shape(0)) * numel(shape(1)[2:]), 0
    if kind == "MatMul":
        a = shape(0)
        transpose_a = bool(op.get_attributes().get("transpose_a"))
        k = a[0] if len(a) == 1 else a[-2] if transpose_a else a[-1]
        return numel(out) * k, 0
    if kind == "ScaledDotProductAttention":   # (the ONNX frontend fuses MatMul-Softmax-MatMul into it)
        query, key = shape(0), shape(1)       # query [..., L, E], key [..., S, E], out [..., L, Ev]
        scores = numel(query[:-1]) * key[-2]
        return scores * query[-1] + numel(out) * key[-2], scores
    if kind in _RECURRENT:
        w, r = _RECURRENT[kind]
        x = shape(0)                     # [batch, seq, input] (a cell: [batch, input])
        steps = x[0] * (x[1] if kind.endswith("Sequence") else 1)
        return (numel(shape(w)) + numel(shape(r))) * steps, 0
    if kind in _MOVES:
        return 0, 0
    if kind in _POOLS:
        return 0, numel(out) * numel(op.get_attributes().get("kernel") or [1])
    if kind.startswith("Reduce"):
        return 0, numel(shape(0))
    return 0, numel(out)


def _decompression_qparams(g: Graph) -> None:
    """Weights stored in INT8 (NNCF, or ov.save_model's compression of a FakeQuantize) read as Constant i8 ->
    Convert -> [Subtract zero point] -> Multiply scale: those scales and zero points are quantization parameters,
    as ONNX's DequantizeLinear inputs are; they join the FakeQuantize ranges in their weight group."""
    producer = {o: n for n in g.nodes for o in n.outputs}
    low = {n for n, t in g.stored.items() if precision_name(t.dtype) in INT8}
    decompressed = {n.outputs[0] for n in g.nodes if n.type == "Convert" and n.inputs and n.inputs[0] in low}
    for n in g.nodes:
        if n.type not in ("Subtract", "Multiply") or not n.inputs or n.inputs[0] not in decompressed:
            continue
        decompressed.update(n.outputs)
        stack = [i for i in n.inputs[1:] if i]   # the zero point, the scale (possibly converted from f16 or u8)
        while stack:
            t = stack.pop()
            if t in g.stored:
                g.extra_qparams.add(t)
            elif t in producer:
                stack.extend(x for x in producer[t].inputs if x)
