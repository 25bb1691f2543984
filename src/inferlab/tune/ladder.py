"""The batch domain of a tuning whose batch was left out is found, not fixed: on each arm the runtime's defaults are
measured at batch 1, 2, 4, ... while the first objective still gains by more than GAIN (or the noise of the two
measurements, if larger) and the constraints hold. The ladder stops at the first batch that fails to load or run,
breaks a bound, or gains too little, and says which. The search then tries the rungs whose objective is within
NEAR of the best rung's and, where the ladder stopped only because the defaults stopped gaining, AHEAD doublings
past it (a faster configuration, half precision or a compiler, fills the device at a larger batch than the
defaults do); the leader is then climbed by doubling while it still gains."""

from __future__ import annotations

from collections.abc import Sequence

from inferlab.tune.record import TrialRecord
from inferlab.tune.spec import DIRECTION

GAIN = 0.03        # a doubling that gains less than this (relative) ends the ladder
NEAR = 0.15        # rungs within this of the best rung's objective stay in the search's batch domain
MAX_BATCH = 8192   # no ladder goes past this
AHEAD = 2          # doublings past a ladder that stopped gaining that the search may try unmeasured


def gains(new: TrialRecord, old: TrialRecord, objective: str) -> float:
    """The relative gain of `new` over `old` on the first objective (positive: better)."""
    a, b = new.values[0], old.values[0]
    if DIRECTION[objective] == "maximize":
        return a / b - 1 if b > 0 else float("inf")
    return b / a - 1 if a > 0 else float("inf")


def enough(new: TrialRecord, old: TrialRecord, objective: str) -> bool:
    """Whether `new` beats `old` by more than GAIN and more than either measurement's own noise."""
    return gains(new, old, objective) > max(GAIN, new.noise, old.noise)


def batch_of(r: TrialRecord) -> int:
    assert r.point is not None
    return r.point.batch


def stop_reason(rungs: Sequence[TrialRecord], objective: str) -> str | None:
    """Why the ladder whose measured rungs (in order) are `rungs` ends, or None to measure the next doubling."""
    if not rungs:
        return None
    last = rungs[-1]
    b = batch_of(last)
    if last.state == "failed":
        return f"batch {b} {last.note or 'failed'}"
    if not last.feasible:
        return f"batch {b} breaks a bound: {last.note}"
    good = [r for r in rungs[:-1] if r.state == "complete" and r.feasible]
    if good:
        prev = good[-1]
        if not enough(last, prev, objective):
            return (f"batch {b} gains {gains(last, prev, objective):+.1%} over batch {batch_of(prev)} "
                    f"(less than {max(GAIN, last.noise, prev.noise):.1%})")
    if b * 2 > MAX_BATCH:
        return f"batch {b} is the largest a ladder tries"
    return None


def domain(rungs: Sequence[TrialRecord], objective: str) -> tuple[int, ...]:
    """The batches the search tries: the measured rungs within NEAR of the best one, or for a latency objective
    the smallest of them alone (no configuration answers a larger batch sooner); batch 1 when none could be
    measured (the search then says why)."""
    good = [r for r in rungs if r.state == "complete" and r.feasible and r.values]
    if not good:
        return (1,)
    sign = 1 if DIRECTION[objective] == "maximize" else -1
    best = max(good, key=lambda r: sign * r.values[0])
    if objective.startswith("latency"):  # a larger batch cannot answer a request sooner: any gain is noise
        return (min(batch_of(r) for r in good if gains(best, r, objective) <= NEAR),)
    near = {batch_of(r) for r in good if gains(best, r, objective) <= NEAR}
    last = rungs[-1]
    if last.state == "complete" and last.feasible and stop_reason(rungs, objective) is not None \
            and DIRECTION[objective] == "maximize":  # stopped gaining, not failing: room above for faster points
        near.update(b for i in range(1, AHEAD + 1) if (b := batch_of(last) * 2 ** i) <= MAX_BATCH)
    return tuple(sorted(near))


def describe(label: str, rungs: Sequence[TrialRecord], objective: str) -> str:
    """One line for the search summary: the rungs measured and why the ladder stopped."""
    steps = ", ".join(f"b{batch_of(r)} {r.values[0]:.4g}" if r.state == "complete" and r.values
                      else f"b{batch_of(r)} {r.state}" for r in rungs)
    why = stop_reason(rungs, objective) or "the trial or time budget ran out"
    return f"batch ladder on {label} (its defaults): {steps}; stopped: {why}"
