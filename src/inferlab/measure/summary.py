"""A driver's raw record (Measurement) and the statistics derived from it for a TrialResult."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from inferlab.measure.stats import latency_stats, spread_warnings, throughput_ci


@dataclass(frozen=True)
class Measurement:
    """Raw timings of one measured window. Latencies are per request; completions are relative to the
    window's start (throughput mode only)."""

    mode: str
    latencies_ns: np.ndarray
    window_ns: int
    requests: int
    batch: int
    in_flight: int
    first_inference_ns: int
    stop_reason: str
    completions_ns: np.ndarray | None = None


def summarise(m: Measurement, min_iterations: int) -> dict[str, Any]:
    """TrialResult fields for a measurement: latency statistics, FPS (DLI's definition per mode), CIs."""
    lat = latency_stats(m.latencies_ns)
    warnings = spread_warnings(lat, m.latencies_ns)
    if m.stop_reason == "max_duration" and m.requests < min_iterations:
        warnings.append(f"max_duration reached after {m.requests} of {min_iterations} requests")
    if m.mode == "latency":
        # FPS is batch over DLI's figure, so its interval is that figure's own interval, inverted
        fps = m.batch * 1e3 / lat.median_3sigma_ms
        ci: tuple[float, float] | None = None
        if lat.median_3sigma_ci_low_ms and lat.median_3sigma_ci_high_ms:
            ci = (m.batch * 1e3 / lat.median_3sigma_ci_high_ms, m.batch * 1e3 / lat.median_3sigma_ci_low_ms)
    else:
        fps = m.requests * m.batch / (m.window_ns / 1e9)
        ci = throughput_ci(m.completions_ns, m.window_ns, m.batch) if m.completions_ns is not None else None
    return {
        "first_inference_ms": m.first_inference_ns / 1e6,
        "latency": lat,
        "throughput_sps": fps,
        "throughput_ci_low_sps": ci[0] if ci else None,
        "throughput_ci_high_sps": ci[1] if ci else None,
        "requests": m.requests,
        "samples": m.requests * m.batch,
        "duration_s": m.window_ns / 1e9,
        "in_flight": m.in_flight,
        "stop_reason": m.stop_reason,
        "warnings": tuple(warnings),
        "latencies_ns": m.latencies_ns,
    }
