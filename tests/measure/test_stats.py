"""Statistics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from inferlab.measure.stats import (
    ci_relative_width,
    latency_stats,
    median_3sigma,
    median_3sigma_ci,
    median_ci,
    spread_warnings,
    throughput_ci,
)
from inferlab.measure.summary import Measurement, summarise
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.trial import LatencyStats, TrialResult, TrialSpec


def test_median_3sigma_drops_far_outlier() -> None:
    # 20 samples of 10 and one of 1000: mean = 57.14, std = 211.0; 1000 is beyond mean + 3 std (690.2)
    x = np.array([10.0] * 20 + [1000.0])
    med, dropped = median_3sigma(x)
    assert dropped == 1
    assert med == 10.0


def test_median_3sigma_keeps_everything_within_three_sigma() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert median_3sigma(x) == (3.0, 0)


def test_median_3sigma_constant_samples() -> None:
    assert median_3sigma(np.array([4.0, 4.0, 4.0])) == (4.0, 0)


def test_latency_stats_hand_computed() -> None:
    ns = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], dtype=np.int64) * 1_000_000  # 1..10 ms
    s = latency_stats(ns)
    assert s.count == 10
    assert s.mean_ms == pytest.approx(5.5)
    assert s.std_ms == pytest.approx(3.0276503540974917)  # sample std (ddof=1) of 1..10
    assert s.min_ms == 1.0 and s.max_ms == 10.0
    assert s.p50_ms == pytest.approx(5.5)
    assert s.p90_ms == pytest.approx(9.1)  # linear interpolation: 1 + 0.9 * 9
    assert s.p99_ms == pytest.approx(9.91)
    assert s.median_3sigma_ms == pytest.approx(5.5)
    assert s.median_ci_low_ms <= 5.5 <= s.median_ci_high_ms


def test_median_ci_matches_monte_carlo_bootstrap() -> None:
    rng = np.random.default_rng(1)
    x = rng.lognormal(0.0, 0.3, size=301)
    lo, hi = median_ci(x)
    # Monte Carlo percentile bootstrap of the lower median, which the exact method computes.
    s = np.sort(x)
    idx = rng.integers(0, x.size, size=(20000, x.size))
    meds = np.sort(s[idx], axis=1)[:, (x.size + 1) // 2 - 1]
    mc_lo, mc_hi = np.percentile(meds, [2.5, 97.5])
    step = np.median(np.diff(s))
    assert abs(lo - mc_lo) <= 3 * step
    assert abs(hi - mc_hi) <= 3 * step


@pytest.mark.parametrize("n", [2, 3, 4, 7, 30, 301, 1000, 4096, 50_001])
def test_median_ci_picks_the_order_statistics_scipys_binomial_gives(n: int) -> None:
    """The exact CI sums the binomial tail itself (no SciPy in the trial process); SciPy's binom.sf over every
    k picks the same two order statistics."""
    from scipy import stats as sps

    x = np.random.default_rng(n).lognormal(0.0, 0.4, size=n)
    s = np.sort(x)
    cdf = sps.binom.sf((n + 1) // 2 - 1, n, np.arange(1, n + 1) / n)
    for confidence in (0.95, 0.99, 0.5):
        alpha = (1 - confidence) / 2
        lo = min(int(np.searchsorted(cdf, alpha, side="left")), n - 1)
        hi = min(int(np.searchsorted(cdf, 1 - alpha, side="left")), n - 1)
        assert median_ci(x, confidence) == (s[lo], s[hi]), confidence


def test_median_ci_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(2)
    small = rng.normal(10, 1, 50)
    large = rng.normal(10, 1, 5000)
    assert (median_ci(large)[1] - median_ci(large)[0]) < (median_ci(small)[1] - median_ci(small)[0])
    assert ci_relative_width(large * 1e6) < 0.02


def test_median_ci_degenerate() -> None:
    assert median_ci(np.array([3.0])) == (3.0, 3.0)


def test_throughput_ci_contains_rate() -> None:
    # 1000 completions evenly over 1 s, batch 2: 2000 samples/s
    completions = np.linspace(0, 1e9, 1000, endpoint=False).astype(np.int64)
    ci = throughput_ci(completions, int(1e9), 2)
    assert ci is not None
    assert ci[0] <= 2000.0 <= ci[1]
    assert ci[1] - ci[0] < 50


def test_throughput_ci_needs_enough_requests() -> None:
    assert throughput_ci(np.array([1, 2, 3]), 10, 1) is None


def test_summarise_latency_mode_fps_is_batch_over_3sigma_median() -> None:
    ns = np.full(100, 4_000_000, dtype=np.int64)  # 4 ms each
    m = Measurement("latency", ns, int(0.4e9), 100, 8, 1, 9_000_000, "min_iterations_and_duration")
    out = summarise(m, 50)
    assert out["throughput_sps"] == pytest.approx(8 / 0.004)
    assert out["first_inference_ms"] == pytest.approx(9.0)
    assert out["samples"] == 800


def test_summarise_throughput_mode_fps_is_samples_over_window() -> None:
    ns = np.full(200, 10_000_000, dtype=np.int64)
    completions = np.linspace(0, 1e9, 200).astype(np.int64)
    m = Measurement("throughput", ns, int(1e9), 200, 4, 2, 1, "min_iterations_and_duration", completions)
    out = summarise(m, 50)
    assert out["throughput_sps"] == pytest.approx(800.0)
    assert out["in_flight"] == 2


def test_spread_warning_in_plain_language() -> None:
    rng = np.random.default_rng(3)
    ns = (rng.uniform(1, 3, 500) * 1e6).astype(np.int64)
    s = latency_stats(ns)
    warnings = spread_warnings(s, ns)
    assert any("high spread" in w for w in warnings)
    tight = np.full(500, 2_000_000, dtype=np.int64)
    assert spread_warnings(latency_stats(tight), tight) == []


def _fast_model_ns(n: int, seed: int = 7) -> np.ndarray:
    """A fast model's latencies (~14.2 us) with 5% slow requests (~40 us, beyond 3 sigma): the 3-sigma median
    sits below the raw median by more than the raw median's CI is wide."""
    rng = np.random.default_rng(seed)
    slow = n // 20
    return np.concatenate([rng.normal(14_200, 300, n - slow), rng.normal(40_000, 3_000, slow)]).astype(np.int64)


def _brute_force_3sigma_ci(x: np.ndarray, resamples: int, seed: int = 11) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    meds = np.empty(resamples)
    for i in range(resamples):
        r = x[rng.integers(0, x.size, x.size)]
        meds[i] = np.median(r[np.abs(r - r.mean()) <= 3 * r.std()])
    lo, hi = np.percentile(meds, [2.5, 97.5])
    return float(lo), float(hi)


@pytest.mark.parametrize("n", [300, 3000])  # every sample its own group; grouped middle, single tails
def test_median_3sigma_ci_matches_a_brute_force_bootstrap_of_the_whole_statistic(n: int) -> None:
    x = _fast_model_ns(n).astype(np.float64) / 1e6
    lo, hi = median_3sigma_ci(x)
    mc_lo, mc_hi = _brute_force_3sigma_ci(x, 800)
    width = mc_hi - mc_lo
    assert abs(lo - mc_lo) <= 0.15 * width and abs(hi - mc_hi) <= 0.15 * width, ((lo, hi), (mc_lo, mc_hi))
    # and it is the filtered statistic's interval, not the raw median's: the raw one lies elsewhere
    raw_lo, raw_hi = median_ci(x)
    assert raw_lo > lo and raw_hi > hi


def test_median_3sigma_ci_is_seeded_and_narrows_with_more_samples() -> None:
    small, large = _fast_model_ns(2_000).astype(np.float64), _fast_model_ns(200_000).astype(np.float64)
    assert median_3sigma_ci(large) == median_3sigma_ci(large)
    lo_s, hi_s = median_3sigma_ci(small)
    lo_l, hi_l = median_3sigma_ci(large)
    assert hi_l - lo_l < (hi_s - lo_s) / 3
    assert lo_l <= median_3sigma(large)[0] <= hi_l


def test_median_3sigma_ci_degenerate() -> None:
    assert median_3sigma_ci(np.array([3.0])) == (3.0, 3.0)
    assert median_3sigma_ci(np.full(5000, 2.5)) == (2.5, 2.5)
    lo, hi = median_3sigma_ci(np.array([1.0, 2.0, 3.0]))
    assert 1.0 <= lo <= 2.0 <= hi <= 3.0
    # heavy ties: many resamples hold one repeated value, whose standard deviation is 0
    for n in (20, 21, 33):
        ties = np.array([0.022] * (n - 1) + [0.066])
        assert median_3sigma_ci(ties) == (0.022, 0.022)


def test_headline_fps_lies_within_its_ci_when_the_two_medians_differ() -> None:
    # The reported case: a fast model's FPS (batch / 3-sigma median) printed beside the raw median's CI,
    # which it fell outside of.
    ns = _fast_model_ns(100_000)
    lat = latency_stats(ns)
    assert lat.median_3sigma_ms < lat.median_ci_low_ms  # the two medians differ beyond the raw CI
    assert lat.median_3sigma_ci_low_ms is not None and lat.median_3sigma_ci_high_ms is not None
    assert lat.median_3sigma_ci_low_ms <= lat.median_3sigma_ms <= lat.median_3sigma_ci_high_ms
    m = Measurement("latency", ns, int(ns.sum()), ns.size, 4, 1, 50_000, "min_iterations_and_duration")
    out = summarise(m, 50)
    assert out["throughput_ci_low_sps"] <= out["throughput_sps"] <= out["throughput_ci_high_sps"]
    assert out["throughput_ci_low_sps"] == pytest.approx(4e3 / lat.median_3sigma_ci_high_ms)
    assert out["throughput_ci_high_sps"] == pytest.approx(4e3 / lat.median_3sigma_ci_low_ms)


def test_records_without_the_3sigma_ci_still_read() -> None:
    ns = np.arange(1, 101, dtype=np.int64) * 1_000_000
    out = summarise(Measurement("latency", ns, int(ns.sum()), 100, 1, 1, 1, "min_iterations_and_duration"), 50)
    out.pop("latencies_ns")
    spec = TrialSpec(Artifact("m", "/m.onnx", ModelFormat.ONNX, "0" * 64), "onnxruntime", "cpu", (), 1, "latency")
    record = TrialResult(spec, "ok", **out).to_json()
    del record["latency"]["median_3sigma_ci_low_ms"], record["latency"]["median_3sigma_ci_high_ms"]
    old = TrialResult.from_json(record)
    assert isinstance(old.latency, LatencyStats)
    assert old.latency.median_3sigma_ci_low_ms is None and old.latency.median_3sigma_ms == pytest.approx(50.5)


def test_the_throughput_ci_is_scipys_percentile_bootstrap_of_the_mean_rate() -> None:
    """The trial computes it in numpy (no scipy.stats import in the trial process); scipy's bootstrap of the
    same block rates, same method, agrees within the resampling noise, and the CI holds the throughput."""
    from scipy import stats as sps

    from inferlab.measure.stats import CI_BLOCKS, throughput_ci

    rng = np.random.default_rng(3)
    window_ns = 2_000_000_000
    completions = np.sort(rng.uniform(0, window_ns, 4000) ** 1.02 / window_ns ** 0.02)  # a drifting rate
    ci = throughput_ci(completions, window_ns, 2)
    assert ci is not None
    counts, _ = np.histogram(completions, bins=np.linspace(0, window_ns, CI_BLOCKS + 1))
    rates = counts * 2 / (window_ns / CI_BLOCKS / 1e9)
    ref = sps.bootstrap((rates,), np.mean, confidence_level=0.95, n_resamples=20_000, method="percentile",
                        random_state=np.random.default_rng(0)).confidence_interval
    width = ref.high - ref.low
    assert abs(ci[0] - ref.low) < 0.1 * width and abs(ci[1] - ref.high) < 0.1 * width
    assert ci[0] < rates.mean() < ci[1]
    assert throughput_ci(completions[:10], window_ns, 2) is None  # too few completions for a CI
