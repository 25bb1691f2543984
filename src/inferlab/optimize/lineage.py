"""Lineage: where a derived model came from (parent, method, parameters, calibration data) and how it did."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Lineage:
    """One derived artifact. `outcome` holds what the method found (accuracies, drop, operators kept in
    float); `params` what it was asked."""

    hash: str
    name: str
    path: str
    format: str
    parent_hash: str | None
    parent_path: str | None
    method: str                      # fp16, int8, int8-accuracy-aware
    params: dict[str, Any] = field(default_factory=dict)
    calibration_hash: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)
    size_bytes: int = 0
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> Lineage:
        return Lineage(**d)
