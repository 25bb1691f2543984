"""Statistics derived from raw per-request timings: percentiles, DLI's 3-sigma median, confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from inferlab.records.trial import LatencyStats

NS_PER_MS = 1e6
CI_BLOCKS = 20                         # time blocks of the throughput window that the throughput CI resamples
MIN_COMPLETIONS_FOR_CI = 2 * CI_BLOCKS  # fewer completions than this give no throughput CI
BOOTSTRAP_RESAMPLES = 1000
_TAIL_SINGLETONS = 256   # the lowest and highest samples each resampled on their own: they decide the 3-sigma cut
_MIDDLE_GROUPS = 512     # the rest in this many groups of neighbouring (sorted) samples


def median_3sigma(x: np.ndarray) -> tuple[float, int]:
    """DLI's figure: the median after dropping samples more than three standard deviations from the mean."""
    mean, std = float(np.mean(x)), float(np.std(x))
    if std == 0.0:
        return float(np.median(x)), 0
    kept = x[np.abs(x - mean) <= 3.0 * std]
    return float(np.median(kept)), int(x.size - kept.size)


def _binomial_tail(n: int, r: int) -> Callable[[float], float]:
    """p -> P(Binomial(n, p) >= r), summed exactly in log space (scipy.stats.binom.sf(r - 1, n, p) without
    importing SciPy into every trial process)."""
    j = np.arange(r, n + 1, dtype=np.float64)
    steps = np.log(np.arange(n, 0, -1, dtype=np.float64)) - np.log(np.arange(1, n + 1, dtype=np.float64))
    log_choose = np.concatenate(([0.0], np.cumsum(steps)))[r:]  # log C(n, j) for j = r..n

    def tail(p: float) -> float:
        if p >= 1.0:
            return 1.0
        if p <= 0.0:
            return 0.0 if r > 0 else 1.0
        terms = log_choose + j * math.log(p) + (n - j) * math.log1p(-p)
        top = float(terms.max())
        return min(1.0, math.exp(top) * float(np.exp(terms - top).sum()))

    return tail


def median_ci(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median, computed exactly rather than by resampling.

    For the (lower) sample median of a resample, P(median* <= x_(k)) = P(Binomial(n, k/n) >= ceil(n/2)),
    so the whole bootstrap distribution is known and no Monte Carlo noise enters the interval; that
    probability grows with k, so each bound is found by bisection over k.
    """
    s = np.sort(np.asarray(x, dtype=np.float64))
    n = s.size
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(s[0]), float(s[0])
    at_least = _binomial_tail(n, (n + 1) // 2)
    alpha = (1.0 - confidence) / 2.0

    def first(level: float) -> int:  # the first 0-based k whose P(median* <= s[k]) reaches the level
        lo, hi = 0, n - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if at_least((mid + 1) / n) >= level:
                hi = mid
            else:
                lo = mid + 1
        return lo

    lo, hi = first(alpha), first(1.0 - alpha)
    return float(s[min(lo, n - 1)]), float(s[min(hi, n - 1)])


def _group_edges(n: int) -> np.ndarray:
    """Boundaries of the groups of sorted positions the bootstrap draws counts for: every position on its own
    when n is small, otherwise the tails one by one and the middle in equal-count groups."""
    if n <= 2 * _TAIL_SINGLETONS + _MIDDLE_GROUPS:
        return np.arange(n + 1)
    middle = np.linspace(_TAIL_SINGLETONS, n - _TAIL_SINGLETONS, _MIDDLE_GROUPS + 1).round().astype(np.int64)
    return np.unique(np.concatenate([np.arange(_TAIL_SINGLETONS), middle,
                                     np.arange(n - _TAIL_SINGLETONS + 1, n + 1)]))


def _row_search(cum: np.ndarray, ranks: np.ndarray, n: int) -> np.ndarray:
    """Per row of `cum` (non-decreasing from 0 to n), the first column whose value reaches that row's rank."""
    row = np.arange(cum.shape[0])
    shift = row * (n + 1)  # lifts each row above the one before, so one search serves every row
    flat = (cum + shift[:, None]).ravel()
    return np.searchsorted(flat, ranks + shift, side="left") - row * cum.shape[1]


def median_3sigma_ci(x: np.ndarray, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap CI of DLI's figure itself: each resample is filtered at three of *its* standard
    deviations and its median taken, so the interval is of the statistic the headline reports.

    A resample is drawn as multinomial counts over groups of neighbouring sorted samples (every sample its own
    group below about a thousand samples, which makes it the plain bootstrap); within a group, how many draws fall
    below a cut is binomial and the rank-k draw's position follows a Beta law, both exact given the group's count.
    Only the resample's mean and variance take each middle group at its mean and variance (a middle group spans
    a sliver of the range; the tails, which move the cut, are single samples). Cost: O(resamples x 1,024)
    whatever the sample size; seeded, so the same samples give the same interval.
    """
    s = np.sort(np.asarray(x, dtype=np.float64))
    n = s.size
    if n == 0:
        return math.nan, math.nan
    if s[0] == s[-1]:
        return float(s[0]), float(s[0])
    rng = np.random.default_rng(seed)
    c = s - s.mean()  # centred: the variance from sums of squares without cancellation
    edges = _group_edges(n)
    size = np.diff(edges)
    csum = np.concatenate([[0.0], np.cumsum(c)])
    c2sum = np.concatenate([[0.0], np.cumsum(c * c)])
    g_mean = (csum[edges[1:]] - csum[edges[:-1]]) / size
    g_sq = (c2sum[edges[1:]] - c2sum[edges[:-1]]) / size
    counts = rng.multinomial(n, size / n, size=resamples)                  # (resamples, groups)
    cum = np.concatenate([np.zeros((resamples, 1), np.int64), np.cumsum(counts, axis=1)], axis=1)
    mean = counts @ g_mean / n
    sd = np.sqrt(np.maximum(counts @ g_sq / n - mean * mean, 0.0))
    rows = np.arange(resamples)
    last = size.size - 1

    def draws_before(position: np.ndarray) -> np.ndarray:
        """How many draws of each resample fall on sorted positions below `position`."""
        g = np.minimum(np.searchsorted(edges, position, side="right") - 1, last)
        inside = rng.binomial(counts[rows, g], (position - edges[g]) / size[g])
        return cum[rows, g] + inside

    # a hair of slack, so a resample of one repeated value (sd 0, its mean a rounding off) keeps that value
    slack = 1e-9 * max(abs(c[0]), abs(c[-1]))
    below = draws_before(np.searchsorted(c, mean - 3.0 * sd - slack, side="left"))
    upto = draws_before(np.searchsorted(c, mean + 3.0 * sd + slack, side="right"))
    kept = np.maximum(upto - below, 1)
    r1 = np.clip(below + (kept + 1) // 2, 1, n)   # 1-based ranks, among all draws, of the kept draws' middle one(s)
    r2 = np.clip(below + kept // 2 + 1, 1, n)
    g1 = _row_search(cum, r1, n) - 1
    g2 = _row_search(cum, r2, n) - 1
    k1, q1 = counts[rows, g1], r1 - cum[rows, g1]
    k2, q2 = counts[rows, g2], r2 - cum[rows, g2]
    # the q-th smallest of k uniform draws over a group's positions is at floor(size * Beta(q, k - q + 1))
    u1 = rng.beta(q1, k1 - q1 + 1)
    following = u1 + (1.0 - u1) * rng.beta(1, np.maximum(k1 - q1, 1))   # the next order statistic, same group
    u2 = np.where(r2 == r1, u1, np.where(g2 == g1, following, rng.beta(q2, np.maximum(k2 - q2 + 1, 1))))
    p1 = edges[g1] + np.minimum((size[g1] * u1).astype(np.int64), size[g1] - 1)
    p2 = edges[g2] + np.minimum((size[g2] * u2).astype(np.int64), size[g2] - 1)
    medians = 0.5 * (s[p1] + s[p2])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def latency_stats(samples_ns: np.ndarray) -> LatencyStats:
    x = np.asarray(samples_ns, dtype=np.float64) / NS_PER_MS
    if x.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p95, p99 = np.percentile(x, [50, 90, 95, 99])
    m3, dropped = median_3sigma(x)
    lo, hi = median_ci(x)
    lo3, hi3 = median_3sigma_ci(x)
    return LatencyStats(
        count=int(x.size), mean_ms=float(np.mean(x)), std_ms=float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
        min_ms=float(np.min(x)), max_ms=float(np.max(x)), p50_ms=float(p50), p90_ms=float(p90),
        p95_ms=float(p95), p99_ms=float(p99), median_3sigma_ms=m3, outliers_dropped=dropped,
        median_ci_low_ms=lo, median_ci_high_ms=hi, median_3sigma_ci_low_ms=lo3, median_3sigma_ci_high_ms=hi3)


def ci_relative_width(samples_ns: np.ndarray) -> float:
    """Width of the median's 95% CI as a fraction of the median (the stop-when-precise criterion)."""
    x = np.asarray(samples_ns, dtype=np.float64)
    med = float(np.median(x))
    lo, hi = median_ci(x)
    return (hi - lo) / med if med > 0 else math.inf


THROUGHPUT_RESAMPLES = 2000


def throughput_ci(completions_ns: np.ndarray, window_ns: int, samples_per_request: int,
                  blocks: int = CI_BLOCKS, seed: int = 0) -> tuple[float, float] | None:
    """Bootstrap 95% CI of throughput from the completion counts of equal time blocks of the window."""
    if window_ns <= 0 or completions_ns.size < 2 * blocks:
        return None
    edges = np.linspace(0, window_ns, blocks + 1)
    counts, _ = np.histogram(completions_ns, bins=edges)
    rates = counts * samples_per_request / ((window_ns / blocks) / 1e9)
    if np.all(rates == rates[0]):
        return float(rates[0]), float(rates[0])
    # the percentile bootstrap of the mean (scipy.stats.bootstrap's method="percentile"), in numpy: a trial
    # process that imported scipy.stats for it would pay 1.3 s before its first request
    resamples = rates[np.random.default_rng(seed).integers(0, rates.size, (THROUGHPUT_RESAMPLES, rates.size))]
    low, high = np.percentile(resamples.mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


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
