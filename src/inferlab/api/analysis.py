"""Model analysis for the API and the CLI: `analyze(model, shape, batch)` resolves the model, fixes its inputs the
way `bench` does, and counts its complexity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from inferlab.analyze.complexity import Complexity, InputShape, LayerCost, WeightGroup, count
from inferlab.analyze.cost import quiet_torch_load
from inferlab.errors import ConfigError, InputSpecError
from inferlab.models.artifact import Artifact, resolve
from inferlab.models.inputs import Wording, merge
from inferlab.models.introspect import declared_inputs
from inferlab.models.tensors import InputHint, TensorSpec

__all__ = ["Complexity", "InputShape", "LayerCost", "WeightGroup", "analyze"]

Shapes = Mapping[str, Sequence[int]] | Sequence[int]
Values = Mapping[str, float | tuple[float, float]]


def analyze(model: str | Path, shape: Shapes | None = None, batch: int | None = None,
            values: Values | None = None) -> Complexity:
    """Count a model's FLOPs, integer ops, parameters, weights and activation memory at one input shape.

    `model`: an .onnx, OpenVINO .xml, torch.export .pt2 file or 'package.module:factory'. `shape`: input name ->
    dims (-1 for the batch, '' naming a one-input model's only input) or a bare shape for a one-input model, as
    `--shape` gives them; needed for dynamic dimensions other than the batch, and for factories. `batch`: the
    batch (default: the one `shape` gives, else 1). `values`: input name -> a constant or a (low, high) range,
    as `--input` gives them, for a PyTorch model that runs only on such values (integer inputs get zeros, float
    ones 0..1 otherwise). Totals are for the whole batch."""
    if batch is not None and batch < 1:
        raise ConfigError(f"--batch {batch}: give a positive batch size")
    ref = str(model)
    hints = _hints(shape, values or {})
    artifact = resolve(Path(ref).stem if ":" not in ref else ref, ref, None, hints)
    with quiet_torch_load():  # a .pt2's inputs come from its exported program
        declared = declared_inputs(artifact)
    assert declared is not None
    if any(h.name == "" for h in hints):
        artifact = _name_the_input(artifact, declared)
    specs = merge(declared, artifact.inputs, batch or _batch_from_shapes(artifact, declared) or 1, artifact.name,
                  Wording(None))
    return count(artifact, specs)


def _hints(shape: Shapes | None, values: Values) -> tuple[InputHint, ...]:
    shapes: dict[str, tuple[int, ...]] = {}
    if isinstance(shape, Mapping):
        shapes = {name: tuple(int(d) for d in dims) for name, dims in shape.items()}
    elif shape is not None:
        shapes = {"": tuple(int(d) for d in shape)}
    out = []
    for name in [*shapes, *(n for n in values if n not in shapes)]:
        v = values.get(name)
        low, high = (float(v[0]), float(v[1])) if isinstance(v, tuple | list) else (None, None)
        out.append(InputHint(name, shapes.get(name), low=low, high=high,
                             value=float(v) if isinstance(v, int | float) else None))
    return tuple(out)


def _name_the_input(artifact: Artifact, declared: Sequence[TensorSpec]) -> Artifact:
    """A bare shape is the only input's (as `bench --shape 1x3x224x224`)."""
    from dataclasses import replace

    if len(declared) != 1:
        names = ", ".join(f"{s.name} {s.dims_text()}" for s in declared)
        raise InputSpecError(f"{artifact.ref}: the model has {len(declared)} inputs ({names}); name the one you mean, "
                             "e.g. --shape NAME=1x3x224x224")
    return replace(artifact, inputs=tuple(replace(h, name=declared[0].name) if h.name == "" else h
                                          for h in artifact.inputs))


def _batch_from_shapes(artifact: Artifact, declared: Sequence[TensorSpec]) -> int | None:
    """The batch the given shapes put in their inputs' batch axes, when they agree (as `bench` takes it)."""
    axes = {s.name: s.batch_axis for s in declared}
    found = {h.shape[axis] for h in artifact.inputs
             if h.shape is not None and (axis := axes.get(h.name)) is not None and axis < len(h.shape)
             and h.shape[axis] > 0}
    return found.pop() if len(found) == 1 else None
