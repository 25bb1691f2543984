"""PyTorch complexity: FLOPs per module from torch.utils.flop_counter.FlopCounterMode, parameters and buffers from
the module, activations from a trace of the tensors each operation allocates (the lifetimes for the memory)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from inferlab.analyze.cost import (
    LayerCost,
    Lifetime,
    WeightGroup,
    group_weights,
    peak_bytes,
    precision_name,
    quiet_torch_load,
)
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.inputs import random_feeds
from inferlab.models.tensors import TensorSpec


def counter_name() -> str:
    return f"torch.utils.flop_counter (torch {torch.__version__})"


@dataclass
class _Buffer:
    bytes: int
    first: int
    last: int
    owner: str
    dtype: str


def _module(artifact: Artifact) -> tuple[Any, dict[str, str], list[str]]:
    """The module to run, the class names of its submodules by path, and notes. An exported program is unflattened
    back into its module tree, so that FlopCounterMode sees the submodules (`program.module()` runs as one flat
    graph); the class names come from the program's record of the modules it traced."""
    from inferlab.models.convert import load_exported, load_torch_module

    if artifact.format is not ModelFormat.TORCH_EXPORT:
        module = load_torch_module(artifact)
        return module, {name: type(m).__name__ for name, m in module.named_modules()}, []
    with quiet_torch_load():
        program = load_exported(artifact)
        types: dict[str, str] = {}
        for node in program.graph.nodes:
            for path, kind in (node.meta.get("nn_module_stack") or {}).values():
                types.setdefault(path, str(getattr(kind, "__name__", kind)).rsplit(".", 1)[-1])
        try:
            return torch.export.unflatten(program), types, []
        except Exception as exc:  # unflatten refuses some programs; the totals stay right without the tree
            return program.module(), types, [f"the per-module breakdown is unavailable ({type(exc).__name__}): "
                                              "one layer holds the whole model"]


def torch_count(artifact: Artifact, inputs: list[TensorSpec]) -> tuple[tuple[LayerCost, ...], tuple[WeightGroup, ...],
                                                                       int, int, list[str]]:
    """(layers, weight groups, input bytes, peak activation bytes, notes) at the inputs' shapes."""
    from torch.utils.flop_counter import FlopCounterMode

    module, types, notes = _module(artifact)
    feeds = random_feeds(inputs, np.random.default_rng(0))
    args = [torch.from_numpy(feeds[s.name]) for s in inputs]
    held: dict[int, tuple[str, Any]] = {}
    for kind, tensors in (("parameter", module.named_parameters()), ("buffer", module.named_buffers())):
        for _, t in tensors:
            held.setdefault(t.untyped_storage().data_ptr(), (kind, t))
    counter = FlopCounterMode(display=False)
    trace = _Trace(set(held), counter, {id(m): name for name, m in module.named_modules()})
    for a in args:
        trace.take(a, owner="", step=0)
    with torch.no_grad(), counter, trace.calls(), trace:
        result = module(*args)
    for t in _tensors(result):
        trace.keep_to_end(t)
    if sum(trace.flops.values()) != counter.get_total_flops():  # every operation's count went to one module
        raise RuntimeError(f"FLOPs per module sum to {sum(trace.flops.values())}, FlopCounterMode counted "
                           f"{counter.get_total_flops()}")
    layers = _layers(module, types, trace)
    weights = group_weights((precision_name(t.dtype), t.numel(), t.untyped_storage().nbytes())
                            for _, t in held.values())
    n_params = sum(t.numel() for kind, t in held.values() if kind == "parameter")
    n_buffers = sum(t.numel() for kind, t in held.values() if kind == "buffer")
    if n_buffers:
        notes.append(f"parameters count the module's {n_params:,} parameters and {n_buffers:,} buffer elements "
                     "(BatchNorm statistics and other constants it reads)")
    notes.append("FLOPs count convolutions, matmuls and attention (FlopCounterMode), each operation's in the "
                 "innermost module running it; elementwise work is not counted")
    recurrent = sorted({path for path, kind in types.items() if kind in ("LSTM", "GRU", "RNN") and path})
    if recurrent:
        notes.append(f"recurrent layers ({', '.join(recurrent[:3])}) run as one aten op FlopCounterMode has no "
                     "formula for: their matmuls are not counted")
    input_bytes = sum(b.bytes for b in trace.buffers() if b.first == 0)
    return layers, weights, input_bytes, peak_bytes(trace.lifetimes()), notes


def _tensors(x: Any) -> list[Any]:
    return [t for t in tree_flatten(x)[0] if isinstance(t, torch.Tensor)]


class _Trace(TorchDispatchMode):
    """Records, per aten operation, the module running it (the top of a stack kept by module hooks), the FLOPs
    FlopCounterMode counts for it, the buffers it allocates and the buffers it reads, so each activation lives
    from its writer to its last reader. Views and in-place results share their input's storage and are no new
    buffer; the module's parameters and buffers are weights. It runs inside FlopCounterMode: what an operation
    adds to the counter's total is that operation's count."""

    def __init__(self, weights: set[int], counter: Any, names: dict[int, str]) -> None:
        super().__init__()
        self.weights, self.counter, self.names = weights, counter, names
        self.stack: list[str] = []
        self.step = 0
        self.live: dict[int, _Buffer] = {}
        self.done: list[_Buffer] = []
        self.flops: dict[str, int] = {}

    @contextlib.contextmanager
    def calls(self) -> Iterator[None]:
        """Keep the stack of modules running (any module: FlopCounterMode's own tracker names a module by its first
        path and cannot tell a shared module's caller)."""
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        def enter(m: Any, args: Any) -> None:
            self.stack.append(self.names.get(id(m), self.stack[-1] if self.stack else ""))

        def leave(m: Any, args: Any, out: Any) -> None:
            if self.stack:
                self.stack.pop()

        handles = [register_module_forward_pre_hook(enter), register_module_forward_hook(leave)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        before = self.counter.get_total_flops()
        out = func(*args, **(kwargs or {}))
        owner = self.stack[-1] if self.stack else ""
        if (added := self.counter.get_total_flops() - before):
            self.flops[owner] = self.flops.get(owner, 0) + added
        self.step += 1
        read = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs)) if _has_storage(t)}
        for ptr in read:
            if ptr in self.live:
                self.live[ptr].last = self.step
        for t in _tensors(out):
            if _has_storage(t) and t.untyped_storage().data_ptr() not in read:
                self.take(t, owner, self.step)
        return out

    def take(self, t: Any, owner: str, step: int) -> None:
        ptr = t.untyped_storage().data_ptr()
        if ptr in self.weights or t.untyped_storage().nbytes() == 0:
            return
        old = self.live.pop(ptr, None)
        if old is not None:  # the allocator reused freed memory: the old buffer died at its last read
            self.done.append(old)
        self.live[ptr] = _Buffer(t.untyped_storage().nbytes(), step, step, owner, str(t.dtype))

    def keep_to_end(self, t: Any) -> None:
        if _has_storage(t) and (b := self.live.get(t.untyped_storage().data_ptr())) is not None:
            b.last = self.step + 1

    def buffers(self) -> list[_Buffer]:
        return [*self.done, *self.live.values()]

    def lifetimes(self) -> list[Lifetime]:
        return [Lifetime(b.bytes, b.first, b.last) for b in self.buffers()]


def _has_storage(t: Any) -> bool:
    try:
        t.untyped_storage()
    except (RuntimeError, NotImplementedError):  # sparse, nested or fake tensors
        return False
    return True


def _layers(module: Any, types: dict[str, str], trace: _Trace) -> tuple[LayerCost, ...]:
    """One row per module with work of its own, in the module tree's order: the FLOPs of the operations it runs
    itself (not through a child), the parameters and buffers it holds directly, the activations it allocates.
    The root is '(model)'."""
    acts: dict[str, list[_Buffer]] = {}
    for b in trace.buffers():
        if b.first > 0:
            acts.setdefault(b.owner, []).append(b)
    seen: set[int] = set()
    rows = []
    for path, m in module.named_modules():
        own = [p for p in [*m.parameters(recurse=False), *m.buffers(recurse=False)]
               if p.untyped_storage().data_ptr() not in seen]
        seen.update(p.untyped_storage().data_ptr() for p in own)
        f = trace.flops.get(path, 0)
        written = acts.get(path, [])
        if not (f or own or written):
            continue
        dtype = own[0].dtype if own else written[0].dtype if written else "float32"
        rows.append(LayerCost(path or "(model)", types.get(path, type(m).__name__), f // 2, f, 0,
                              sum(p.numel() for p in own), sum(p.untyped_storage().nbytes() for p in own),
                              sum(b.bytes for b in written), precision_name(dtype)))
    return tuple(rows)
