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


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (-1 marks a dynamic dimension), dtype and value range."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None

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

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "low": self.low, "high": self.high}

    @staticmethod
    def from_json(d: dict[str, object]) -> TensorSpec:
        shape = d["shape"]
        assert isinstance(shape, list)
        low, high = d.get("low"), d.get("high")
        return TensorSpec(str(d["name"]), tuple(int(x) for x in shape), str(d["dtype"]),
                          None if low is None else float(low),  # type: ignore[arg-type]
                          None if high is None else float(high))  # type: ignore[arg-type]
