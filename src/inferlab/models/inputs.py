"""Concrete input specs for a trial: the model's declared inputs, which axis carries the batch, the user's
hints (shape, dtype, value range, constant, real data), and the feeds made from them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from inferlab.errors import InputSpecError
from inferlab.models.tensors import InputHint, TensorSpec

# Dimension names that say "this is the batch" (ONNX dim_param, torch.export Dim names).
_BATCH_NAME = re.compile(r"^(n|b|bs|nb|batch|.*batch.*|num_?samples)$", re.IGNORECASE)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class Wording:
    """Where the user gives input settings, so that errors name the fix in the words of the command they typed:
    `prefix` is a config's model entry ("x.yaml: models[0]"); None means the `bench` command line."""

    prefix: str | None = None

    def key(self, name: str, key: str, example: str = "") -> str:
        if self.prefix is None:
            flag = {"shape": "--shape", "batch_axis": "--batch-axis"}.get(key, "--input")
            return f"{flag} {name}={example or key.upper()}"
        return f"{self.prefix}.inputs.{name}.{key}" + (f": {example}" if example else "")

    def shape(self, name: str, dims: Sequence[str]) -> str:
        if self.prefix is None:
            return f"--shape {name}={'x'.join(dims)}"
        return f"{self.prefix}.inputs.{name}.shape: [{', '.join(dims)}]"

    def input(self, name: str) -> str:
        return f"--shape/--input {name}" if self.prefix is None else f"{self.prefix}.inputs.{name}"

    def given_shape(self, name: str, dims: Sequence[int]) -> str:
        if self.prefix is None:
            return f"--shape {name}={'x'.join(str(d) if d >= 0 else '?' for d in dims)}"
        return f"{self.prefix}.inputs.{name}.shape {list(dims)}"


def infer_batch_axes(specs: Sequence[TensorSpec]) -> tuple[TensorSpec, ...]:
    """Which axis carries the batch, per input: a dimension named like a batch; none for a rank-0 input;
    else the first axis. An input whose first axis is fixed while the model's other inputs have a dynamic
    batch (a recurrent state [2, ?, 128] beside an input [?, ?]) carries it in its first dynamic axis."""
    axes: list[int | None] = []
    for s in specs:
        named = [i for i, n in enumerate(s.dim_names) if n and s.shape[i] < 0 and _BATCH_NAME.match(n)]
        axes.append(None if not s.shape else named[0] if named else 0)
    dynamic_batch = any(a is not None and s.shape[a] < 0 for s, a in zip(specs, axes, strict=True))
    out = []
    for s, axis in zip(specs, axes, strict=True):
        if axis == 0 and s.shape[0] >= 0 and dynamic_batch and any(d < 0 for d in s.shape[1:]):
            axis = next(i for i, d in enumerate(s.shape) if d < 0)
        out.append(replace(s, batch_axis=axis))
    return tuple(out)


def _hint_axis(hint: InputHint, spec: TensorSpec, model: str, words: Wording) -> int | None:
    if hint.batch_axis is None:
        return spec.batch_axis
    if hint.batch_axis == "none":
        return None
    axis = hint.batch_axis
    if not isinstance(axis, int) or not 0 <= axis < len(spec.shape):
        raise InputSpecError(f"{model}: {words.key(spec.name, 'batch_axis', str(axis))}: input '{spec.name}' "
                             f"{spec.dims_text()} has no axis {axis}; give 0..{len(spec.shape) - 1} or none")
    return axis


def _placeholder(spec: TensorSpec, i: int) -> str:
    name = spec.dim_names[i] if i < len(spec.dim_names) else ""
    return f"<{name if name.isidentifier() else f'dim{i}'}>"


def merge(declared: Sequence[TensorSpec], hints: Sequence[InputHint], batch: int, model: str,
          words: Wording = Wording("models[]")) -> list[TensorSpec]:
    """The trial's concrete input specs: the model's inputs with the user's hints applied and every dimension
    fixed (the batch in each input's batch axis). Raises naming the input, its dims and the fix."""
    by_name = {h.name: h for h in hints}
    known = [s.name for s in declared]
    for name in by_name:
        if name not in known:
            from inferlab.errors import did_you_mean

            raise InputSpecError(f"{words.input(name)}: '{name}' is not an input of model '{model}'"
                                 + (did_you_mean(name, known) or f"; its inputs are {', '.join(known)}"))
    named = _named_sizes(declared, by_name)
    return [_concrete(spec, by_name.get(spec.name, InputHint(spec.name)), batch, model, words, named)
            for spec in declared]


def _named_sizes(declared: Sequence[TensorSpec], hints: dict[str, InputHint]) -> dict[str, int]:
    """Sizes the user gave to named dimensions: a dimension of the same name in another input (the sequence
    of input_ids and attention_mask) takes the same size."""
    sizes: dict[str, int] = {}
    for spec in declared:
        hint = hints.get(spec.name)
        if hint is None or hint.shape is None or len(hint.shape) != len(spec.shape):
            continue
        for i, (given, name) in enumerate(zip(hint.shape, spec.dim_names, strict=False)):
            if name and given > 0 and spec.shape[i] < 0:
                sizes.setdefault(name, given)
    return sizes


def _concrete(spec: TensorSpec, hint: InputHint, batch: int, model: str, words: Wording,
              named: dict[str, int]) -> TensorSpec:
    axis = _hint_axis(hint, spec, model, words)
    shape = list(spec.shape)
    if hint.shape is not None:
        shape = _fit_shape(spec, hint.shape, axis, batch, model, words)
    if hint.data is not None:
        shape = _shape_from_data(spec, shape, axis, hint.data, model, words)
    shape = [named.get(n, d) if d < 0 and i != axis and n else d
             for i, (d, n) in enumerate(zip(shape, spec.dim_names or ("",) * len(shape), strict=True))]
    if axis is not None:
        # a size given for a dynamic batch axis is the batch when none is asked for (bench takes it from the
        # shape); the trial's batch wins otherwise. Only a batch the model itself fixes can refuse it.
        if spec.shape[axis] >= 0 and spec.shape[axis] != batch:
            raise InputSpecError(
                f"{model}: input '{spec.name}' {spec.dims_text()}: its batch axis {axis} is fixed at "
                f"{spec.shape[axis]}, so batch {batch} cannot run; run batch {spec.shape[axis]}, or export the model "
                f"with a dynamic batch dimension (if axis {axis} is not the batch, say which is: "
                f"{words.key(spec.name, 'batch_axis', 'AXIS')} or none)")
        shape[axis] = batch
    missing = [i for i, d in enumerate(shape) if d < 0]
    if missing:
        example = [str(d) if d >= 0 else _placeholder(spec, i) for i, d in enumerate(shape)]
        raise InputSpecError(f"{model}: input '{spec.name}' has dynamic dimensions {spec.dims_text()}; give its "
                             f"shape: {words.shape(spec.name, example)}")
    dtype = hint.dtype or spec.dtype
    low, high = (hint.low, hint.high) if hint.low is not None else (spec.low, spec.high)
    _check_values(spec.name, dtype, low, high, hint.value, model, words)
    return TensorSpec(spec.name, tuple(shape), dtype, low, high, axis, spec.dim_names, hint.value, hint.data)


def _fit_shape(spec: TensorSpec, given: tuple[int, ...], axis: int | None, batch: int, model: str,
               words: Wording) -> list[int]:
    where = words.given_shape(spec.name, given)
    if len(given) != len(spec.shape):
        raise InputSpecError(f"{model}: {where}: rank {len(given)}, but input '{spec.name}' is "
                             f"{spec.dims_text()} (rank {len(spec.shape)})")
    out = []
    for i, (g, m) in enumerate(zip(given, spec.shape, strict=True)):
        if g >= 0 and m >= 0 and g != m and i != axis:
            raise InputSpecError(f"{model}: {where}: dimension {i} is {g}, but the model fixes it at {m} "
                                 f"({spec.dims_text()})")
        out.append(g if g >= 0 else m)
    return out


def _check_values(name: str, dtype: str, low: float | None, high: float | None, value: float | None,
                  model: str, words: Wording) -> None:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        bounds = (0.0, 1.0)
    elif np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        bounds = (float(info.min), float(info.max))
    else:
        bounds = (-float(np.finfo(dt).max), float(np.finfo(dt).max))
    if value is not None:
        if not bounds[0] <= value <= bounds[1] or (np.issubdtype(dt, np.integer) and value != int(value)):
            article = "an" if dtype.startswith("int") else "a"
            raise InputSpecError(f"{model}: {words.key(name, 'value', _num(value))}: {_num(value)} is not {article} "
                                 f"{dtype} value (it holds {_num(bounds[0])}..{_num(bounds[1])})")
        if low is not None and high is not None and not low <= value <= high:
            raise InputSpecError(f"{model}: {words.key(name, 'value', _num(value))}: {_num(value)} is outside "
                                 f"the declared range {_num(low)}..{_num(high)}")
    if low is not None and high is not None:
        rng = f"{_num(low)}..{_num(high)}"
        if low >= high:
            raise InputSpecError(f"{model}: {words.key(name, 'range', rng)}: the low end must be below the high end")
        if low < bounds[0] or high - (1 if np.issubdtype(dt, np.integer) else 0) > bounds[1]:
            raise InputSpecError(f"{model}: {words.key(name, 'range', rng)}: outside what {dtype} holds "
                                 f"({_num(bounds[0])}..{_num(bounds[1])})")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


# -- real data -------------------------------------------------------------------------------------------

def data_files(path: Path) -> list[Path]:
    """The files of a data source: the .npy file itself, or a folder's arrays and images in name order."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix.lower() in (".npy", *IMAGE_SUFFIXES))


def data_digest(path: Path) -> str:
    """Content hash of a data source, part of the trial's identity."""
    h = hashlib.sha256()
    for f in data_files(path):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _sample_rank(spec: TensorSpec, axis: int | None) -> int:
    return len(spec.shape) - (0 if axis is None else 1)


def _raw_shape(f: Path) -> tuple[int, ...]:
    if f.suffix.lower() == ".npy":
        return tuple(np.load(f, mmap_mode="r", allow_pickle=False).shape)
    from PIL import Image

    with Image.open(f) as im:
        return (im.height, im.width, len(im.getbands()))


def _shape_from_data(spec: TensorSpec, shape: list[int], axis: int | None, data: str, model: str,
                     words: Wording) -> list[int]:
    """Fill dynamic dimensions other than the batch from the data's first sample."""
    if all(d >= 0 for i, d in enumerate(shape) if i != axis):
        return shape
    first = data_files(Path(data))[0]
    rank = _sample_rank(spec, axis)
    raw = _raw_shape(first)
    if first.suffix.lower() != ".npy":
        raw = _image_layout(raw, shape, axis)
    elif len(raw) == rank + 1:
        raw = raw[1:]
    if len(raw) != rank:
        raise InputSpecError(f"{model}: {words.key(spec.name, 'data', str(first))}: its samples have shape "
                             f"{list(raw)}, but input '{spec.name}' {spec.dims_text()} takes samples of rank {rank}")
    sample_dims = iter(raw)
    out = []
    for i, d in enumerate(shape):
        if i == axis:
            out.append(d)
            continue
        found = next(sample_dims)
        out.append(found if d < 0 else d)
    return out


def _image_layout(hwc: tuple[int, ...], shape: list[int], axis: int | None) -> tuple[int, ...]:
    """An image's sample shape in the input's layout: CHW when the channel axis comes first."""
    sample = [d for i, d in enumerate(shape) if i != axis]
    if len(sample) == 3 and sample[0] in (1, 3) and sample[2] not in (1, 3):
        return (hwc[2], hwc[0], hwc[1])
    return hwc


def load_samples(spec: TensorSpec) -> np.ndarray:
    """The samples of an input's real data, stacked on a new first axis, in the input's dtype and layout
    (images resized to the input's height and width; pixel values as they are, 0..255)."""
    assert spec.data is not None
    sample = spec.sample_shape()
    out = []
    for f in data_files(Path(spec.data)):
        if f.suffix.lower() == ".npy":
            arr = np.load(f, allow_pickle=False)
            arrs = list(arr) if arr.ndim == len(sample) + 1 else [arr]
        else:
            arrs = [_image(f, sample)]
        for a in arrs:
            if tuple(a.shape) != sample:
                raise InputSpecError(f"{f}: a sample of shape {list(a.shape)}, but input '{spec.name}' takes "
                                     f"{list(sample)}; give samples of one shape")
            out.append(a.astype(spec.dtype, copy=False))
    if not out:
        raise InputSpecError(f"{spec.data}: no .npy arrays or images for input '{spec.name}'")
    return np.stack(out)


def _image(f: Path, sample: tuple[int, ...]) -> np.ndarray:
    from PIL import Image

    chw = len(sample) == 3 and sample[0] in (1, 3) and sample[2] not in (1, 3)
    channels, height, width = (sample[0], sample[1], sample[2]) if chw else (sample[-1], sample[0], sample[1])
    with Image.open(f) as opened:
        im = opened.convert("L" if channels == 1 else "RGB")
        if (im.height, im.width) != (height, width):
            im = im.resize((width, height), Image.Resampling.BILINEAR)
        arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1) if chw else arr)


# -- feeds -----------------------------------------------------------------------------------------------

def _random(spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(spec.dtype)
    if spec.value is not None:
        return np.full(shape, spec.value, dtype=dt)
    low, high = spec.value_range()
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dt, np.integer):
        return rng.integers(int(low), max(int(low) + 1, int(high)), size=shape, dtype=dt)
    return rng.uniform(low, high, size=shape).astype(dt)


def random_feeds(specs: Sequence[TensorSpec], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One set of feeds of the right shapes and dtypes: constants where given, else random values in range."""
    return {s.name: np.require(_random(s, s.shape, rng), requirements="C") for s in specs}


def batch_of(spec: TensorSpec, samples: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """Samples (stacked on axis 0) gathered into one feed: along the batch axis, or the first row as it is
    for an input without one."""
    if spec.batch_axis is None:
        return samples[rows[0] % len(samples)]
    picked = samples.take([r % len(samples) for r in rows], axis=0)
    return np.ascontiguousarray(np.moveaxis(picked, 0, spec.batch_axis))


def batch_size(specs: Sequence[TensorSpec]) -> int:
    """The batch the specs were made for (1 when no input has a batch axis)."""
    return next((s.shape[s.batch_axis] for s in specs if s.batch_axis is not None), 1)


def make_pool(specs: Sequence[TensorSpec], size: int, seed: int) -> list[dict[str, np.ndarray]]:
    """A pool of distinct feeds, to be rotated by the drivers: real data where an input has it (the pool walks
    through its samples), a constant where one is given, else seeded random values."""
    rng = np.random.default_rng(seed)
    data = {s.name: load_samples(s) for s in specs if s.data is not None}
    batch = batch_size(specs)
    pool = []
    for k in range(max(1, size)):
        feeds = random_feeds([s for s in specs if s.data is None], rng)
        for s in specs:
            if s.data is not None:
                feeds[s.name] = batch_of(s, data[s.name], range(k * batch, (k + 1) * batch))
        pool.append({s.name: feeds[s.name] for s in specs})
    return pool


_STATE_NAME = re.compile(r"state|hidden|past|cache|memory|^[hc]0?$|^[hc]_?in$", re.IGNORECASE)


def feeding_notes(specs: Sequence[TensorSpec], output_names: Sequence[str]) -> list[str]:
    """What the measurement feeds to inputs that are not plain data, to record with the result: inputs without
    a batch axis (a scalar, a state) are fed as given at every batch; a recurrent state (an input named like
    one, or one whose name starts an output's: state -> stateN) gets fresh values each request, not the
    previous request's output."""
    notes = []
    fixed = [s.name for s in specs if s.batch_axis is None]
    if fixed:
        notes.append(f"inputs without a batch axis ({', '.join(fixed)}) are fed as given at every request")
    states = [s.name for s in specs if s.shape and (_STATE_NAME.search(s.name) or any(
        o != s.name and o.startswith(s.name) for o in output_names))]
    if states:
        notes.append(f"state inputs ({', '.join(states)}) get their initial value at every request (the input "
                     "pool's or the one given), not the previous request's output")
    return notes
