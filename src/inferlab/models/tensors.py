"""Tensor descriptions shared by models, backends and drivers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inferlab.errors import InputSpecError

# Names a user may type for a dtype, mapped to numpy's canonical name.
_DTYPE_ALIASES = {
    "float": "float32", "f32": "float32", "fp32": "float32", "float32": "float32",
    "half": "float16", "f16": "float16", "fp16": "float16", "float16": "float16",
    "double": "float64", "f64": "float64", "float64": "float64",
    "int64": "int64", "i64": "int64", "long": "int64",
    "int32": "int32", "i32": "int32", "int": "int32",
    "int8": "int8", "i8": "int8", "uint8": "uint8", "u8": "uint8",
    "bool": "bool", "boolean": "bool",
}


def canonical_dtype(name: str) -> str:
    """Return numpy's name for a dtype a user or a runtime wrote, or raise naming the value."""
    key = name.lower().strip()
    if key in _DTYPE_ALIASES:
        return _DTYPE_ALIASES[key]
    raise InputSpecError(f"dtype '{name}' is not supported; use one of {sorted(set(_DTYPE_ALIASES.values()))}")


BatchAxis = int | None          # the axis that carries the batch; None: the input has none (state, scalar)


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (-1 marks a dynamic dimension), dtype, value range, and which axis
    carries the batch. A concrete input spec (after `inputs.merge`) may also hold a constant `value` or a
    `data` source (a .npy file or a folder of arrays/images) that its feeds come from."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None
    batch_axis: BatchAxis = 0
    dim_names: tuple[str, ...] = ()   # the model's names for its dimensions ("" where it gives none)
    value: float | None = None        # every element is this constant
    data: str | None = None           # absolute path of the real data

    def value_range(self) -> tuple[float, float]:
        """The range synthetic values are drawn from: the declared one, else a dtype-sensible default."""
        if self.low is not None and self.high is not None:
            return self.low, self.high
        if self.dtype == "bool":
            return 0.0, 1.0
        if np.issubdtype(np.dtype(self.dtype), np.integer):
            # Integer inputs are usually token ids or indices: keep them small and valid.
            return 0.0, 100.0
        return 0.0, 1.0

    def dims_text(self) -> str:
        """The declared dimensions as a user reads them: [batch, 3, height, width], '?' for unnamed dynamic."""
        names = self.dim_names or ("",) * len(self.shape)
        return "[" + ", ".join(n if n and d < 0 else ("?" if d < 0 else str(d))
                               for d, n in zip(self.shape, names, strict=False)) + "]"

    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: the shape without its batch axis."""
        if self.batch_axis is None:
            return self.shape
        return self.shape[:self.batch_axis] + self.shape[self.batch_axis + 1:]

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                                  "low": self.low, "high": self.high}
        # only what differs from the defaults, so the keys of trials stored before these fields stay the same
        if self.batch_axis != 0:
            out["batch_axis"] = self.batch_axis
        if self.dim_names:
            out["dim_names"] = list(self.dim_names)
        if self.value is not None:
            out["value"] = self.value
        if self.data is not None:
            out["data"] = self.data
        return out

    @staticmethod
    def from_json(d: dict[str, object]) -> TensorSpec:
        shape = d["shape"]
        assert isinstance(shape, list)
        low, high, value = d.get("low"), d.get("high"), d.get("value")
        axis = d.get("batch_axis", 0)
        names = d.get("dim_names") or []
        assert isinstance(names, list)
        return TensorSpec(str(d["name"]), tuple(int(x) for x in shape), str(d["dtype"]),
                          None if low is None else float(low),  # type: ignore[arg-type]
                          None if high is None else float(high),  # type: ignore[arg-type]
                          None if axis is None else int(axis),  # type: ignore[call-overload]
                          tuple(str(n) for n in names),
                          None if value is None else float(value),  # type: ignore[arg-type]
                          None if d.get("data") is None else str(d["data"]))


@dataclass(frozen=True)
class InputHint:
    """What the user said about one model input (a config's `inputs.NAME`, or `--shape`/`--input`); what is
    left out comes from the model. `batch_axis`: an axis, "none" (no batch axis), or None (inferred)."""

    name: str
    shape: tuple[int, ...] | None = None   # -1 marks the batch (and any dimension left to the model)
    dtype: str | None = None
    low: float | None = None
    high: float | None = None
    value: float | None = None
    data: str | None = None                # absolute path
    data_hash: str | None = None           # content hash of the data, part of the trial's identity
    batch_axis: int | str | None = None

    def to_json(self) -> dict[str, object]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if v is not None}

    @staticmethod
    def from_json(d: dict[str, object]) -> InputHint:
        d = dict(d)
        if d.get("dtype") == "" and d.get("shape") == []:  # stored before hints existed: "" and [] meant unset
            d.pop("shape")
        if d.get("shape") is not None:
            d["shape"] = tuple(int(x) for x in d["shape"])  # type: ignore[attr-defined]
        if not d.get("dtype"):
            d.pop("dtype", None)
        return InputHint(**d)  # type: ignore[arg-type]
