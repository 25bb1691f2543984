"""What a tuning found, per device: the best configuration, the best of each other compute precision (the
runner-up a user would fall back to), and each one's speed-up over the runtime's defaults on that device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferlab.tune.record import TrialRecord
from inferlab.tune.spec import DIRECTION


@dataclass(frozen=True)
class Leader:
    device: str
    precision: str
    record: TrialRecord
    value: float                  # the first objective
    best: bool                    # the device's best; the others are the best of their precision
    defaults: TrialRecord | None  # the runtime's defaults on the device, at the same batch when measured there
    speedup: float | None         # over `defaults`, in the objective's better direction (2.0: twice as good)


def _defaults(records: Sequence[TrialRecord], r: TrialRecord, baseline: TrialRecord | None) -> TrialRecord | None:
    """The defaults measured for `r`'s backend and device: the stored baseline, else the ladder rung at `r`'s
    batch (the ladder measures the defaults), else none."""
    assert r.point is not None
    p = r.point
    for d in ([baseline] if baseline is not None else []) + [x for x in records if x.role == "ladder"]:
        q = d.point
        if q is not None and d.state == "complete" and d.values and (q.backend, q.device, q.batch) == \
                (p.backend, p.device, p.batch):
            return d
    return None


def leaders(records: Sequence[TrialRecord], objective: str, baseline: TrialRecord | None = None) -> list[Leader]:
    """Per device (in order of first appearance): its best feasible configuration, then the best of each other
    precision, from the search's measurements (ladder rungs and climbs included, re-measurements not)."""
    sign = 1 if DIRECTION[objective] == "maximize" else -1
    done = [r for r in records if r.role in ("search", "ladder") and r.state == "complete" and r.feasible
            and r.values and r.point is not None]
    out: list[Leader] = []
    for device in dict.fromkeys(r.point.device for r in done if r.point is not None):
        here = sorted((r for r in done if r.point is not None and r.point.device == device),
                      key=lambda r: -sign * r.values[0])
        seen: set[str] = set()
        for r in here:
            assert r.point is not None
            precision = r.point.compute_precision()
            if precision in seen:
                continue
            seen.add(precision)
            base = _defaults(records, r, baseline)
            speedup = None
            if base is not None and base.values[0] > 0 and r.values[0] > 0:
                speedup = (r.values[0] / base.values[0]) ** sign
            out.append(Leader(device, precision, r, r.values[0], not out or out[-1].device != device, base, speedup))
    return out
