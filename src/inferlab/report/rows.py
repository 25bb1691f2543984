"""One flat row per result: the shape shared by the terminal table, CSV export and DataFrames."""

from __future__ import annotations

from typing import Any

from inferlab import backends
from inferlab.measure.stats import MIN_COMPLETIONS_FOR_CI
from inferlab.records.trial import TrialResult, is_scenario
from inferlab.report import numbers

NOT_MEASURED = "not measured"


def knobs(result: TrialResult) -> str:
    """Knobs set away from their defaults (precision has its own column)."""
    skip = {"inference_precision", "dtype"}
    changed = backends.non_default(result.spec.backend, result.spec.device, result.spec.params)
    return " ".join(f"{k}={v}" for k, v in changed.items() if k not in skip)


def row_name(result: TrialResult) -> str:
    """A trial named by what the results table shows of it: model, runtime, precision, batch, mode and the knobs
    set away from their defaults."""
    s = result.spec
    changed = knobs(result)
    return (f"{s.model.name} {s.backend}/{s.device} {precision(result)} b{s.batch} {s.mode}"
            + (f" [{changed}]" if changed else "") + (f" #{s.repeat}" if s.repeat else ""))


def ci_missing_reason(result: TrialResult) -> str | None:
    """Why a result has no throughput CI (None when it has one): what a bare "—" would leave unsaid."""
    if result.throughput_ci_low_sps is not None and result.throughput_ci_high_sps is not None:
        return None
    if result.status in ("failed", "timeout"):
        return f"no CI: the trial {'failed' if result.status == 'failed' else 'timed out'}"
    if result.loadgen is not None or is_scenario(result.spec.mode):
        return "no CI: an MLPerf scenario, judged by LoadGen's own figures"
    if result.spec.mode == "accuracy" or result.throughput_sps is None:
        return "no CI: no throughput measured"
    if result.spec.mode == "throughput" and result.requests < MIN_COMPLETIONS_FOR_CI:
        return f"no CI: too few completions (fewer than {MIN_COMPLETIONS_FOR_CI}); measure longer"
    return "no CI stored with this result"


class Footnotes:
    """Marks for the reasons behind absent values, numbered in order of first use."""

    MARKS = "¹²³⁴⁵⁶⁷⁸⁹"

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def mark(self, reason: str) -> str:
        return self.reasons.setdefault(reason, self.MARKS[len(self.reasons) % len(self.MARKS)])

    def lines(self) -> list[str]:
        return [f"{mark} {reason}" for reason, mark in self.reasons.items()]


def ci_text(result: TrialResult, notes: Footnotes) -> str:
    """The FPS's 95% CI at the headline's precision, or "—" with the footnote mark of why there is none."""
    ci = numbers.fps_ci(result.throughput_sps, result.throughput_ci_low_sps, result.throughput_ci_high_sps)
    return ci if ci is not None else numbers.MISSING + notes.mark(ci_missing_reason(result) or "")


_SHORT = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64", "fp32": "f32", "fp16": "f16"}


def precision(result: TrialResult) -> str:
    """The precision a trial ran at: an INT8 or FP16 model file says so itself; otherwise the compute
    precision from the effective settings (what the runtime really used)."""
    stored = result.runtime.get("model_precision")
    if stored in ("int8", "f16"):
        return str(stored)
    eff = result.effective
    params = result.spec.param_dict
    value = next((eff[k] for k in ("inference_precision_hint", "dtype", "precision") if eff.get(k)), None)
    text = str(value or params.get("inference_precision") or params.get("dtype") or params.get("precision") or "f32")
    return _SHORT.get(text, text)


def flatten(result: TrialResult, run_id: str | None = None) -> dict[str, Any]:
    s = result.spec
    lat = result.latency
    row: dict[str, Any] = {
        "run": run_id, "model": s.model.name, "model_hash": s.model.hash[:12], "format": s.model.format.value,
        "backend": s.backend, "device": s.device, "precision": precision(result), "batch": s.batch,
        "mode": s.mode, "repeat": s.repeat, "status": result.status, "reason": result.reason,
        "throughput_sps": result.throughput_sps, "throughput_ci_low_sps": result.throughput_ci_low_sps,
        "throughput_ci_high_sps": result.throughput_ci_high_sps,
        "latency_median_3sigma_ms": lat.median_3sigma_ms if lat else None,
        "latency_p50_ms": lat.p50_ms if lat else None, "latency_p90_ms": lat.p90_ms if lat else None,
        "latency_p95_ms": lat.p95_ms if lat else None, "latency_p99_ms": lat.p99_ms if lat else None,
        "latency_mean_ms": lat.mean_ms if lat else None, "latency_std_ms": lat.std_ms if lat else None,
        "latency_min_ms": lat.min_ms if lat else None, "latency_max_ms": lat.max_ms if lat else None,
        "latency_median_ci_low_ms": lat.median_ci_low_ms if lat else None,
        "latency_median_ci_high_ms": lat.median_ci_high_ms if lat else None,
        "latency_median_3sigma_ci_low_ms": lat.median_3sigma_ci_low_ms if lat else None,
        "latency_median_3sigma_ci_high_ms": lat.median_3sigma_ci_high_ms if lat else None,
        "load_s": result.load_s, "first_inference_ms": result.first_inference_ms,
        "requests": result.requests, "samples": result.samples, "duration_s": result.duration_s,
        "in_flight": result.in_flight, "peak_rss_mb": result.peak_rss_mb, "cpu_util_pct": result.cpu_util_pct,
        "peak_gpu_mem_mb": result.peak_gpu_mem_mb, "gpu_util_pct": result.gpu_util_pct,
        "energy_j_per_sample": result.energy_j_per_sample, "energy_source": result.energy_source,
        "environment_id": result.environment_id, "spec_key": s.key(),
    }
    lg = result.loadgen
    if lg is not None:
        row.update({"mlperf_test_mode": lg.test_mode, "mlperf_validity": lg.validity, "mlperf_metric": lg.metric,
                    "mlperf_result": lg.value, "mlperf_unit": lg.unit, "mlperf_log_dir": lg.log_dir})
    acc = result.accuracy
    if acc is not None:
        row.update({"dataset": acc.dataset, "dataset_hash": acc.dataset_hash[:12], "accuracy_samples": acc.samples})
        row.update({f"accuracy.{k}": v for k, v in acc.metrics.items()})
    for k, v in s.params:
        row[f"param.{k}"] = v
    for k, v in result.effective.items():
        row[f"effective.{k}"] = v
    row["warnings"] = "; ".join(result.warnings)
    return row
