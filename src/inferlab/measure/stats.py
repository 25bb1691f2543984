"""Statistics derived from raw per-request timings: percentiles, DLI's 3-sigma median, confidence intervals."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from inferlab.measure.trial import LatencyStats

NS_PER_MS = 1e6


def median_3sigma(x: np.ndarray) -> tuple[float, int]:
    """DLI's figure: the median after dropping samples more than three standard deviations from the mean."""
    mean, std = float(np.mean(x)), float(np.std(x))
    if std == 0.0:
        return float(np.median(x)), 0
    kept = x[np.abs(x - mean) <= 3.0 * std]
    return float(np.median(kept)), int(x.size - kept.size)


def median_ci(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median, computed exactly rather than by resampling.

    For the (lower) sample median of a resample, P(median* <= x_(k)) = P(Binomial(n, k/n) >= ceil(n/2)),
    so the whole bootstrap distribution is known in O(n) and no Monte Carlo noise enters the interval.
    """
    s = np.sort(np.asarray(x, dtype=np.float64))
    n = s.size
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(s[0]), float(s[0])
    r = (n + 1) // 2
    k = np.arange(1, n + 1)
    cdf = sps.binom.sf(r - 1, n, k / n)
    alpha = (1.0 - confidence) / 2.0
    lo = int(np.searchsorted(cdf, alpha, side="left"))
    hi = int(np.searchsorted(cdf, 1.0 - alpha, side="left"))
    return float(s[min(lo, n - 1)]), float(s[min(hi, n - 1)])


def latency_stats(samples_ns: np.ndarray) -> LatencyStats:
    x = np.asarray(samples_ns, dtype=np.float64) / NS_PER_MS
    if x.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p95, p99 = np.percentile(x, [50, 90, 95, 99])
    m3, dropped = median_3sigma(x)
    lo, hi = median_ci(x)
    return LatencyStats(
        count=int(x.size), mean_ms=float(np.mean(x)), std_ms=float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
        min_ms=float(np.min(x)), max_ms=float(np.max(x)), p50_ms=float(p50), p90_ms=float(p90),
        p95_ms=float(p95), p99_ms=float(p99), median_3sigma_ms=m3, outliers_dropped=dropped,
        median_ci_low_ms=lo, median_ci_high_ms=hi)


def ci_relative_width(samples_ns: np.ndarray) -> float:
    """Width of the median's 95% CI as a fraction of the median (the stop-when-precise criterion)."""
    x = np.asarray(samples_ns, dtype=np.float64)
    med = float(np.median(x))
    lo, hi = median_ci(x)
    return (hi - lo) / med if med > 0 else math.inf


def throughput_ci(completions_ns: np.ndarray, window_ns: int, samples_per_request: int,
                  blocks: int = 20, seed: int = 0) -> tuple[float, float] | None:
    """Bootstrap 95% CI of throughput from the completion counts of equal time blocks of the window."""
    if window_ns <= 0 or completions_ns.size < 2 * blocks:
        return None
    edges = np.linspace(0, window_ns, blocks + 1)
    counts, _ = np.histogram(completions_ns, bins=edges)
    rates = counts * samples_per_request / ((window_ns / blocks) / 1e9)
    if np.all(rates == rates[0]):
        return float(rates[0]), float(rates[0])
    res = sps.bootstrap((rates,), np.mean, confidence_level=0.95, n_resamples=2000, method="percentile",
                        random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def spread_warnings(s: LatencyStats, samples_ns: np.ndarray) -> list[str]:
    """Plain-language cautions about a measurement, in the spirit of torch.utils.benchmark."""
    out = []
    if s.count < 30:
        out.append(f"only {s.count} timed requests: percentiles are rough; measure longer")
    q1, q3 = np.percentile(np.asarray(samples_ns, dtype=np.float64) / NS_PER_MS, [25, 75])
    if s.p50_ms > 0 and (q3 - q1) / s.p50_ms > 0.10:
        out.append(f"high spread: the interquartile range is {100 * (q3 - q1) / s.p50_ms:.0f}% of the median; "
                   "other load on the machine or unpinned threads may be interfering")
    if s.count and s.outliers_dropped / s.count > 0.02:
        out.append(f"{s.outliers_dropped} of {s.count} requests were beyond 3 sigma")
    return out
