"""Conversions the backends need: PyTorch (exported program or factory) to a module, and to ONNX."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from inferlab.errors import ModelError
from inferlab.models.artifact import Artifact, ModelFormat, load_factory
from inferlab.models.inputs import infer_batch_axes
from inferlab.models.tensors import TensorSpec


def cache_dir() -> Path:
    """Where converted artifacts are kept, keyed by the source's content hash."""
    root = Path(os.environ.get("INFERLAB_CACHE", Path.home() / ".cache" / "inferlab"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def load_torch_module(artifact: Artifact) -> Any:
    """Return an eval-mode torch.nn.Module for a .pt2 archive or a factory reference."""
    import torch

    if artifact.format is ModelFormat.TORCH_EXPORT:
        return load_exported(artifact).module()
    if artifact.format is ModelFormat.TORCH_FACTORY:
        module = load_factory(artifact.ref)
        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"{artifact.ref}: the factory returned {type(module).__name__}, not a torch.nn.Module")
        return module.eval()
    raise ModelError(f"{artifact.ref}: a {artifact.format.value} model cannot be loaded by PyTorch")


def load_exported(artifact: Artifact) -> Any:
    """The torch.export program of a .pt2 archive, or a one-line error saying what the file is instead."""
    import torch

    try:
        return torch.export.load(str(artifact.path))
    except Exception as exc:
        raise ModelError(f"{artifact.path}: cannot load the exported program ({str(exc).splitlines()[0][:200]}); "
                         "save the model with torch.export.save(torch.export.export(model, example_inputs), "
                         "PATH), or name a module factory 'package.module:factory'") from exc


def torch_inputs(artifact: Artifact) -> tuple[TensorSpec, ...]:
    """Input specs of an exported program (from its signature); factories declare theirs in config."""
    if artifact.format is ModelFormat.TORCH_FACTORY:
        if not artifact.inputs or any(t.shape is None for t in artifact.inputs):
            raise ModelError(f"{artifact.ref}: a factory model does not declare its inputs; give each input's "
                             "name and shape (config: models[].inputs.NAME.shape; bench: --shape NAME=1x3x224x224)")
        specs = [TensorSpec(t.name, t.shape or (), t.dtype or "float32", t.low, t.high,
                            None if t.batch_axis == "none" or not t.shape else
                            t.batch_axis if isinstance(t.batch_axis, int) else 0) for t in artifact.inputs]
        # the batch axis takes the trial's batch, whatever the example shape gave
        return tuple(replace(s, shape=tuple(-1 if i == s.batch_axis else d for i, d in enumerate(s.shape)))
                     for s in specs)
    program = load_exported(artifact)
    specs = []
    user_inputs = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            val = node.meta.get("val")
            shape = tuple(int(d) if isinstance(d, int) else -1 for d in val.shape)
            # a dynamic size is a symbol (s0, s1) shared by every input it sizes: kept as the dim's name, so a
            # sequence length given for input_ids sizes attention_mask too
            names = tuple("" if isinstance(d, int) else str(d) for d in val.shape)
            specs.append(TensorSpec(node.name, shape, str(val.dtype).replace("torch.", ""),
                                    dim_names=names if any(names) else ()))
    return infer_batch_axes(specs)


def torch_to_onnx(artifact: Artifact, specs: list[TensorSpec]) -> Path:
    """Export a PyTorch artifact to ONNX (dynamic batch), cached by content hash."""
    import numpy as np
    import torch

    key = hashlib.sha256((artifact.hash + repr([s.to_json() for s in specs])).encode()).hexdigest()[:20]
    target = cache_dir() / f"{artifact.name}-{key}.onnx"
    if target.is_file():
        return target
    tmp = target.with_suffix(".tmp.onnx")
    names = [s.name for s in specs]
    if artifact.format is ModelFormat.TORCH_EXPORT:
        # An exported program carries its own dynamic shapes; the dynamo exporter takes it as it is.
        program = load_exported(artifact)
        torch.onnx.export(program, (), str(tmp), dynamo=True, external_data=False, optimize=True)
    else:
        module = load_torch_module(artifact)
        examples = tuple(torch.from_numpy(np.zeros(s.shape, dtype=s.dtype)) for s in specs)
        torch.onnx.export(module, examples, str(tmp), input_names=names, dynamo=False,
                          dynamic_axes={s.name: {s.batch_axis: "batch"} for s in specs if s.batch_axis is not None},
                          opset_version=17)
    tmp.replace(target)
    return target

