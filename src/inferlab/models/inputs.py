"""Concrete input specs for a trial (model specs + user overrides + batch) and the synthetic input pool."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inferlab.errors import InputSpecError
from inferlab.models.tensors import TensorSpec


def merge(model_specs: Sequence[TensorSpec], overrides: Sequence[TensorSpec], batch: int,
          model_name: str) -> list[TensorSpec]:
    """Apply overrides to the model's inputs and fix every dimension; raise naming the input and dimension."""
    by_name = {o.name: o for o in overrides}
    known = {s.name for s in model_specs}
    for name in by_name:
        if name not in known:
            raise InputSpecError(f"{model_name}: inputs.{name} is not an input of the model; "
                                 f"its inputs are {sorted(known)}")
    result = []
    for spec in model_specs:
        o = by_name.get(spec.name)
        shape = spec.shape
        dtype = spec.dtype
        low, high = spec.low, spec.high
        if o is not None:
            if o.shape:
                shape = _fit_shape(spec, o.shape, model_name)
            dtype = o.dtype or dtype
            if o.low is not None:
                low, high = o.low, o.high
        shape = _fix_batch(spec.name, shape, batch, model_name)
        if any(d < 0 for d in shape):
            raise InputSpecError(
                f"{model_name}: input '{spec.name}' has dynamic dimensions {list(shape)}; "
                f"give models[].inputs.{spec.name}.shape in the config")
        result.append(TensorSpec(spec.name, shape, dtype, low, high))
    return result


def _fit_shape(spec: TensorSpec, given: tuple[int, ...], model_name: str) -> tuple[int, ...]:
    if spec.shape and len(given) != len(spec.shape):
        raise InputSpecError(f"{model_name}: inputs.{spec.name}.shape {list(given)} has rank {len(given)}, "
                             f"but the model's input is {list(spec.shape)}")
    for i, (g, m) in enumerate(zip(given, spec.shape, strict=False)):
        if m >= 0 and g >= 0 and g != m and i > 0:
            raise InputSpecError(f"{model_name}: inputs.{spec.name}.shape {list(given)} does not match the "
                                 f"model's {list(spec.shape)} at dimension {i}; fix the shape in the config")
    return tuple(g if g >= 0 else m for g, m in zip(given, spec.shape or given, strict=False))


def _fix_batch(name: str, shape: tuple[int, ...], batch: int, model_name: str) -> tuple[int, ...]:
    if not shape:
        return shape
    first = shape[0]
    if first < 0:
        return (batch, *shape[1:])
    if first != batch:
        raise InputSpecError(f"{model_name}: input '{name}' has a fixed batch of {first}, so batch {batch} "
                             "cannot run; export the model with a dynamic batch dimension")
    return shape


def random_feeds(specs: Sequence[TensorSpec], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One set of random feeds of the right dtype and value range."""
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        low, high = spec.value_range()
        dt = np.dtype(spec.dtype)
        if dt == np.bool_:
            arr = rng.integers(0, 2, size=spec.shape).astype(np.bool_)
        elif np.issubdtype(dt, np.integer):
            arr = rng.integers(int(low), max(int(low) + 1, int(high)), size=spec.shape, dtype=dt)
        else:
            arr = rng.uniform(low, high, size=spec.shape).astype(dt)
        feeds[spec.name] = np.ascontiguousarray(arr)
    return feeds


def make_pool(specs: Sequence[TensorSpec], size: int, seed: int) -> list[dict[str, np.ndarray]]:
    """A pool of distinct random feeds, to be rotated by the drivers."""
    rng = np.random.default_rng(seed)
    return [random_feeds(specs, rng) for _ in range(max(1, size))]
