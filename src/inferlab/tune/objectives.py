"""What a tuning reads from a TrialResult: objective values, their own measurement noise, and constraints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from inferlab.records.trial import LatencyStats, TrialResult
from inferlab.tune.spec import DIRECTION, TuneConfig

_LATENCY = {"median": "median_3sigma_ms", "p50": "p50_ms", "p90": "p90_ms", "p95": "p95_ms", "p99": "p99_ms"}
_WHY_MISSING = {"energy": "energy per sample was not measured here (no RAPL or NVML energy counter)",
                "memory": "peak memory was not measured"}


def latency_ms(lat: LatencyStats | None, percentile: str) -> float | None:
    return getattr(lat, _LATENCY[percentile]) if lat is not None else None


def value(result: TrialResult, objective: str) -> float | None:
    """The objective's value, or None when the trial did not measure it."""
    if objective == "throughput":
        return result.throughput_sps
    if objective.startswith("latency_"):
        return latency_ms(result.latency, objective.removeprefix("latency_"))
    if objective == "energy":
        return result.energy_j_per_sample
    return result.peak_rss_mb


def missing_reason(objective: str) -> str:
    return _WHY_MISSING.get(objective, f"{objective} was not measured")


def noise(result: TrialResult, objective: str) -> float:
    """Half the width of the 95% confidence interval, relative to the value: how much a later trial must beat
    this one by to count as better (the median latency's interval stands in for latency percentiles)."""
    if objective == "throughput" and result.throughput_ci_low_sps is not None and result.throughput_sps:
        high = result.throughput_ci_high_sps or result.throughput_sps
        return (high - result.throughput_ci_low_sps) / 2 / result.throughput_sps
    lat = result.latency
    if objective.startswith("latency_") and lat is not None and lat.median_3sigma_ms > 0:
        return (lat.median_ci_high_ms - lat.median_ci_low_ms) / 2 / lat.median_3sigma_ms
    return 0.0


def better(a: float, b: float, objective: str, margin: float = 0.0) -> bool:
    """Whether `a` beats `b` by more than `margin` (relative to b)."""
    if DIRECTION[objective] == "maximize":
        return a > b * (1 + margin)
    return a < b * (1 - margin)


def headline(result: TrialResult) -> float | None:
    """The accuracy figure a drop is measured on: the first metric (top-1, mAP ...)."""
    acc = result.accuracy
    if acc is None or not acc.metrics:
        return None
    v = next(iter(acc.metrics.values()))
    return None if math.isnan(v) else v


@dataclass(frozen=True)
class Check:
    """One constraint on one trial: feasible when value ≤ limit."""

    name: str
    value: float | None
    limit: float

    @property
    def violation(self) -> float:
        """≤ 0 when met (optuna's convention); a missing value counts as violated."""
        return math.inf if self.value is None else self.value - self.limit

    @property
    def met(self) -> bool:
        return self.violation <= 0

    def text(self) -> str:
        shown = "not measured" if self.value is None else f"{self.value:.4g}"
        return f"{self.name} {shown} {'≤' if self.met else '>'} {self.limit:g}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def checks(result: TrialResult, cfg: TuneConfig, reference: float | None) -> list[Check]:
    out = []
    if cfg.max_latency_ms is not None:
        out.append(Check(f"latency {cfg.latency_percentile} ms", latency_ms(result.latency, cfg.latency_percentile),
                         cfg.max_latency_ms))
    if cfg.max_accuracy_drop is not None:
        got = headline(result)
        drop = None if got is None or reference is None else reference - got
        out.append(Check("accuracy drop", drop, cfg.max_accuracy_drop))
    if cfg.max_memory_mb is not None:
        out.append(Check("memory MB", result.peak_rss_mb, cfg.max_memory_mb))
    return out
