"""A static-shaped dataflow graph in a format-neutral form (ONNX and OpenVINO fill it) and its tally: constants
folded into the layers that read them, weights by precision, INT8 layers, activation lifetimes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from inferlab.analyze.cost import (
    INT8,
    QPARAMS,
    LayerCost,
    Lifetime,
    WeightGroup,
    group_weights,
    numel,
    peak_bytes,
    precision_name,
)


@dataclass(frozen=True)
class Tensor:
    shape: tuple[int, ...]
    dtype: str                    # numpy or OpenVINO element type name
    nbytes: int

    @staticmethod
    def of(shape: Sequence[int], dtype: str, itemsize: float) -> Tensor:
        return Tensor(tuple(int(d) for d in shape), dtype, int(-(-numel(shape) * itemsize // 1)))


@dataclass
class Node:
    """One operation. `macs`/`other_ops` are filled by the format's counter before the tally."""

    name: str
    type: str
    inputs: list[str]             # tensor ids, "" for an optional input left out
    outputs: list[str]
    macs: int = 0
    other_ops: int = 0


@dataclass
class Graph:
    """Nodes in a topological order; `stored` are the constants the file holds (ONNX initialisers, OpenVINO
    Constant ops): the model's parameters. `quantizers` are the op types that mark a quantized tensor
    (DequantizeLinear, FakeQuantize), with the input positions that hold scales, zero points or ranges."""

    nodes: list[Node]
    tensors: dict[str, Tensor]
    stored: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]
    quantizers: dict[str, tuple[int, ...]]
    mac_types: frozenset[str]
    integer_types: frozenset[str] = frozenset()     # ops that compute in integers by definition (QLinearConv)
    shape_types: frozenset[str] = frozenset()       # their output is known once shapes are static (Shape, ShapeOf)
    qparam_inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # scales/zero points of integer ops
    extra_qparams: set[str] = field(default_factory=set)  # stored constants the format's reader knows are such


# Ops that move or relabel data without arithmetic: a quantized tensor stays quantized through them.
PASS_THROUGH = frozenset({"Identity", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Convert",
                          "MaxPool", "Slice", "StridedSlice", "Concat", "Split", "VariadicSplit", "Gather"})


def tally(g: Graph) -> tuple[tuple[LayerCost, ...], tuple[WeightGroup, ...], int, int]:
    """(layers, weight groups, input bytes, peak activation bytes) of a graph whose nodes carry their counts.

    A node whose inputs are all constants (a DequantizeLinear of a weight, an Identity of an initialiser, the
    shape arithmetic of a static graph) is folded, as runtimes fold it at load: it is no layer, writes no
    activation, and the stored constants it reads belong to the layer that reads its result."""
    qparam_names = _qparams(g)
    const: set[str] = set(g.stored)
    origin: dict[str, set[str]] = {name: {name} for name in g.stored}      # folded tensor -> stored constants
    quantized: set[str] = {n for n, t in g.stored.items() if precision_name(t.dtype) in INT8 and n not in qparam_names}
    layers: list[Node] = []
    for node in g.nodes:
        ins = [i for i in node.inputs if i]
        if node.type in g.quantizers:
            quantized.update(node.outputs)
        if all(i in const for i in ins) or node.type in g.shape_types:
            const.update(node.outputs)
            # a shape op reads no values: the constants it looks at stay their readers' own
            reads = set().union(*(origin.get(i, set()) for i in ins)) if node.type not in g.shape_types else set()
            for o in node.outputs:
                origin[o] = reads
            if any(i in quantized for i in ins if i not in qparam_names):
                quantized.update(node.outputs)
            continue
        if node.type in PASS_THROUGH and ins and ins[0] in quantized:
            quantized.update(node.outputs)
        layers.append(node)

    step = {id(n): k + 1 for k, n in enumerate(layers)}       # step 0 holds the inputs
    end = len(layers) + 1
    last: dict[str, int] = {}
    for n in layers:
        for i in n.inputs:
            if i and i not in const:
                last[i] = step[id(n)]
    for o in g.outputs:
        last[o] = end
    lives = [Lifetime(g.tensors[i].nbytes, 0, last.get(i, 0)) for i in g.inputs]
    seen: set[str] = set()
    out: list[LayerCost] = []
    for n in layers:
        k = step[id(n)]
        fresh = sorted(set().union(*(origin.get(i, set()) for i in n.inputs if i in const)) - seen)
        seen.update(fresh)
        written = [o for o in n.outputs if o and o in g.tensors]
        act = sum(g.tensors[o].nbytes for o in written)
        lives += [Lifetime(g.tensors[o].nbytes, k, last.get(o, k)) for o in written]
        int8 = n.type in g.integer_types or (
            n.type in g.mac_types and len(n.inputs) > 1 and n.inputs[0] in quantized and n.inputs[1] in quantized)
        dtype = g.tensors[written[0]].dtype if written else "float32"
        out.append(LayerCost(n.name, n.type, n.macs, 0 if int8 else 2 * n.macs, 2 * n.macs if int8 else 0,
                             sum(numel(g.stored[r].shape) for r in fresh), sum(g.stored[r].nbytes for r in fresh),
                             act, "int8" if int8 else precision_name(dtype), n.other_ops))
    groups = group_weights((QPARAMS if name in qparam_names else precision_name(t.dtype), numel(t.shape), t.nbytes)
                           for name, t in g.stored.items())
    return tuple(out), groups, sum(g.tensors[i].nbytes for i in g.inputs), peak_bytes(lives)


def _qparams(g: Graph) -> set[str]:
    """The stored constants that are scales, zero points or quantization ranges (read at a quantizer's or an
    integer op's parameter positions, directly or through folded ops such as a Convert)."""
    producer = {o: n for n in g.nodes for o in n.outputs}
    found: set[str] = set(g.extra_qparams)
    for n in g.nodes:
        positions = g.quantizers.get(n.type, ()) or g.qparam_inputs.get(n.type, ())
        stack = [n.inputs[p] for p in positions if p < len(n.inputs) and n.inputs[p]]
        while stack:
            t = stack.pop()
            if t in g.stored:
                found.add(t)
            elif t in producer and producer[t].type not in g.quantizers:
                stack.extend(i for i in producer[t].inputs if i)
    return found


def topological(nodes: Sequence[Node], available: set[str]) -> list[Node]:
    """The nodes in an order where each runs after the producers of its inputs (stable: the file's order where it
    already is one). `available` holds the tensors present before any node runs."""
    ready = set(available)
    pending = list(nodes)
    ordered: list[Node] = []
    while pending:
        rest = []
        for n in pending:
            if all(not i or i in ready for i in n.inputs):
                ordered.append(n)
                ready.update(n.outputs)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # inputs no node produces: keep the file's order for the rest
            ordered += rest
            break
        pending = rest
    return ordered
