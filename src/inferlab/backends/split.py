"""Heterogeneous execution for PyTorch: `hetero:A,B` splits one model's exported graph across devices, op by
op. Every op runs on the first device of the list unless an affinity rule sends it elsewhere; a rule names a
layer by its module path (a glob: `stages.3*`), a layer type (`Conv2d`) or an op (`conv2d`). Where an op's
input lives on another device a copy is inserted, and the copies are counted: the cost of crossing."""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inferlab.errors import BackendError

PREFIX = "hetero:"


def hetero_members(device: str) -> list[str] | None:
    """The devices of `hetero:A,B` in fallback order, or None for any other device."""
    if not device.lower().startswith(PREFIX):
        return None
    return [d.strip() for d in device[len(PREFIX):].split(",") if d.strip()]


@dataclass
class Placement:
    """Where the split put the graph's ops, and what crosses between devices per inference."""

    devices: list[str]
    ops: dict[str, int] = field(default_factory=dict)        # device -> ops placed there
    layers: dict[str, str] = field(default_factory=dict)     # layer (module path) -> device, in graph order
    crossings: int = 0                                       # edges of the graph that cross devices

    def summary(self) -> str:
        return ", ".join(f"{d}: {n} ops" for d, n in self.ops.items()) + f"; {self.crossings} crossings"


def _crossing_module() -> Any:
    import torch

    class Crossing(torch.nn.Module):
        """Copies a tensor to another device and counts the bytes it moved (read per inference after runs)."""

        def __init__(self) -> None:
            super().__init__()
            self.bytes = 0

        def forward(self, t: Any, device: Any) -> Any:
            self.bytes += t.numel() * t.element_size()
            return t.to(device)

    return Crossing()


CROSSING = "_inferlab_crossing"


def _leaf(node: Any) -> tuple[str, str]:
    """(module path, layer type) of the innermost module that ran `node`; ("", "") at the top level."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    path, cls = list(stack.values())[-1]
    name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
    return path, name.rsplit(".", 1)[-1]


def _op(node: Any) -> str:
    """aten.conv2d.default -> conv2d; an in-place op by its plain name (aten.add_.Tensor -> add)."""
    name = getattr(node.target, "__name__", str(node.target))
    return name.split(".")[0].rstrip("_")


def _matches(rule: str, node: Any) -> bool:
    path, cls = _leaf(node)
    return bool((path and fnmatch.fnmatchcase(path, rule)) or rule.lower() in (cls.lower(), _op(node).lower()))


def _computes(node: Any) -> bool:
    return node.op == "call_function" and node.target is not operator.getitem


def check_rules(gm: Any, rules: Sequence[tuple[str, str]], model: str) -> None:
    """Every rule must name at least one op of the graph; raise naming the rule and what the graph has."""
    nodes = [n for n in gm.graph.nodes if _computes(n)]
    for rule, _ in rules:
        if not any(_matches(rule, n) for n in nodes):
            types = sorted({_leaf(n)[1] for n in nodes if _leaf(n)[1]})
            paths = [p for p in dict.fromkeys(_leaf(n)[0] for n in nodes) if p][:4]
            raise BackendError(f"affinity rule '{rule}' matches no layer of model '{model}': it has layer types "
                               f"{', '.join(types[:12])}, layers named like {', '.join(paths)}, and aten ops like "
                               f"{', '.join(sorted({_op(n) for n in nodes})[:8])}; name one of those (globs match "
                               "layer names)")


def split(gm: Any, devices: Sequence[str], rules: Sequence[tuple[str, str]]) -> Placement:
    """Place every op of `gm` (a torch.export graph module, modified in place) on a device of `devices`: the first
    rule (pattern, device) that matches it, else the first device. Parameters move to the device of the op that
    uses them; an input from another device is copied there first. Inputs are expected on the first device."""
    import torch

    first = devices[0]
    where: dict[Any, str] = {}
    placement = Placement(list(devices), {d: 0 for d in dict.fromkeys(devices)})
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op == "placeholder":
            where[node] = first
        elif node.op == "call_function" and node.target is operator.getitem:
            where[node] = where.get(node.args[0], first)  # a part of a multi-output op stays with it
        elif node.op == "call_function":
            device = next((d for rule, d in rules if _matches(rule, node)), first)
            where[node] = device
            placement.ops[device] += 1
            path = _leaf(node)[0]
            if path and path not in placement.layers:
                placement.layers[path] = device
            if "device" in node.kwargs:  # a factory op (zeros, arange): make it there
                node.kwargs = {**node.kwargs, "device": torch.device(device)}
    # parameters and buffers go where their first user runs
    for node in graph.nodes:
        if node.op == "get_attr":
            users = [u for u in node.users if u in where]
            device = where[users[0]] if users else first
            where[node] = device
            owner, _, name = str(node.target).rpartition(".")
            module = gm.get_submodule(owner) if owner else gm
            value = getattr(module, name)
            if isinstance(value, torch.Tensor):
                moved = value.to(device)
                if isinstance(value, torch.nn.Parameter):
                    moved = torch.nn.Parameter(moved, requires_grad=False)
                setattr(module, name, moved)
    gm.add_submodule(CROSSING, _crossing_module())
    copies: dict[tuple[Any, str], Any] = {}
    for node in list(graph.nodes):
        if not _computes(node):
            continue
        device = where[node]

        def crossed(arg: Any, device: str = device, user: Any = node) -> Any:
            if not hasattr(arg, "op") or arg not in where or where[arg] == device:
                return arg
            key = (arg, device)
            if key not in copies:
                with graph.inserting_before(user):
                    copies[key] = graph.call_module(CROSSING, (arg, torch.device(device)))
                placement.crossings += 1
            return copies[key]

        node.args = torch.fx.node.map_arg(node.args, crossed)
        node.kwargs = torch.fx.node.map_arg(node.kwargs, crossed)
    graph.lint()
    gm.recompile()
    return placement
