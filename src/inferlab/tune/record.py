"""What a tuning keeps of each proposal, so that a study can be shown, reported and resumed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from inferlab.tune.space import Point

Role = Literal["reference", "ladder", "search", "confirm", "baseline"]
State = Literal["complete", "failed", "pruned"]


def measured_count(records: Iterable[TrialRecord]) -> int:
    """Trials a study spent measuring: batch ladder, searched, re-measured and baseline; not pruned, not the
    accuracy reference."""
    return sum(r.state != "pruned" and r.role != "reference" for r in records)


@dataclass(frozen=True)
class TrialRecord:
    """One proposal: measured (complete: feasible or not), failed, or pruned without measuring."""

    position: int
    role: Role
    state: State
    point: Point | None                       # None for the accuracy reference
    spec_key: str | None = None
    number: int | None = None                 # optuna's trial number (search trials)
    values: tuple[float, ...] = ()            # one per objective (complete only)
    noise: float = 0.0                        # relative CI half-width of the first objective
    checks: tuple[dict[str, Any], ...] = ()   # constraints: name, value, limit
    feasible: bool | None = None
    note: str | None = None                   # why it failed or was pruned, or what it confirms
    params: dict[str, Any] = field(default_factory=dict)         # optuna's parameters
    distributions: dict[str, str] = field(default_factory=dict)  # optuna's distributions, as JSON
    elapsed_s: float = 0.0                    # since the study began (its first session)
    accuracy: float | None = None             # the headline accuracy, when measured

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["point"] = self.point.to_json() if self.point is not None else None
        d["values"], d["checks"] = list(self.values), list(self.checks)
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> TrialRecord:
        d = dict(d)
        d["point"] = Point.from_json(d["point"]) if d.get("point") else None
        d["values"], d["checks"] = tuple(d.get("values") or ()), tuple(d.get("checks") or ())
        return TrialRecord(**d)
