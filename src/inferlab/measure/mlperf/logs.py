"""Reading LoadGen's own output: the detail log's `:::MLLOG` records (the machine-readable form of the
summary), and the accuracy log. LoadGen's verdict and figures are taken from here, never recomputed; inferlab
only adds INVALID where its own bounds ended or shaped a run (`ScenarioResult.bounded_by`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from inferlab.errors import InferlabError
from inferlab.records.mlperf import ScenarioResult

PREFIX = ":::MLLOG "
PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
CRITERIA = {"result_min_duration_met": "min duration", "result_min_queries_met": "min queries",
            "result_perf_constraints_met": "performance constraints", "early_stopping_met": "early stopping"}


class LogError(InferlabError):
    pass


def read_detail(path: Path) -> dict[str, Any]:
    """Every key of a detail log with its last value (FindPeakPerformance logs several runs; the last wins),
    plus every error and warning message under 'errors' and 'warnings'."""
    out: dict[str, Any] = {"errors": [], "warnings": []}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise LogError(f"{path}: cannot read LoadGen's detail log ({exc.strerror})") from None
    for line in lines:
        if not line.startswith(PREFIX):
            continue
        try:
            rec = json.loads(line[len(PREFIX):])
        except json.JSONDecodeError:
            continue
        key, value = rec.get("key"), rec.get("value")
        meta = rec.get("metadata") or {}
        if meta.get("is_error"):
            out["errors"].append(f"{key}: {value}")
        elif meta.get("is_warning"):
            out["warnings"].append(f"{key}: {value}")
        out[key] = value
    if "result_validity" not in out and "effective_test_mode" not in out:
        raise LogError(f"{path}: no LoadGen results in this file; was the test interrupted?")
    return out


def _ms(ns: Any) -> float | None:
    return None if ns is None else float(ns) / 1e6


def parse(detail: dict[str, Any], log_dir: Path | None = None) -> ScenarioResult:
    """The ScenarioResult of one detail log (as `read_detail` returns it)."""
    scenario = str(detail.get("effective_scenario") or detail.get("requested_scenario"))
    mode = str(detail.get("effective_test_mode") or detail.get("requested_test_mode"))
    per_query = scenario == "MultiStream"
    percentiles: dict[str, float] = {}
    for p in PERCENTILES:
        key = f"result_{p}_percentile_per_query_latency_ns" if per_query else f"result_{p}_percentile_latency_ns"
        ns = detail.get(key, detail.get(f"result_{p}_percentile_latency_ns"))
        if ns is not None:
            percentiles[p.rstrip("0").rstrip(".")] = float(ns) / 1e6
    target_pct = detail.get("effective_target_latency_percentile")
    pct_name = f"p{float(target_pct) * 100:g}" if target_pct is not None else "p90"
    value: float | None
    if scenario == "SingleStream":
        es = detail.get("early_stopping_latency_ss")
        metric, value, unit, higher = f"{pct_name} latency" + (" (early stopping)" if es else ""), _ms(
            es if es is not None else detail.get("result_90.00_percentile_latency_ns")), "ms", False
    elif scenario == "MultiStream":
        es = detail.get("early_stopping_latency_ms")
        metric, value, unit, higher = f"{pct_name} query latency" + (" (early stopping)" if es else ""), _ms(
            es if es is not None else detail.get("result_99.00_percentile_per_query_latency_ns")), "ms", False
    elif scenario == "Server":
        sched = detail.get("result_scheduled_samples_per_sec")
        metric, value, unit, higher = "scheduled", None if sched is None else float(sched), "queries/s", True
    else:
        sps = detail.get("result_samples_per_second")
        metric, value, unit, higher = "throughput", None if sps is None else float(sps), "samples/s", True
    accuracy = mode == "AccuracyOnly"
    criteria = {name: bool(detail[key]) for key, name in CRITERIA.items() if key in detail and not accuracy}
    effective = {k[len("effective_"):]: v for k, v in detail.items() if k.startswith("effective_")}
    qps_with = detail.get("result_qps_with_loadgen_overhead")
    qps_without = detail.get("result_qps_without_loadgen_overhead")
    samples_ps = detail.get("result_samples_per_second", detail.get("result_completed_samples_per_sec"))
    spq = int(effective.get("samples_per_query") or 1)
    mean_ns = detail.get("result_mean_query_latency_ns" if per_query else "result_mean_latency_ns")
    if samples_ps is None and qps_with is not None:
        samples_ps = float(qps_with) * spq
    if samples_ps is None and per_query and mean_ns:  # queries run one after another
        samples_ps = spq * 1e9 / float(mean_ns)
    early = detail.get("early_stopping_result")
    return ScenarioResult(
        scenario=scenario, test_mode=mode, validity=None if accuracy else detail.get("result_validity"),
        metric=metric, value=None if accuracy else value, unit=unit, higher_is_better=higher,
        criteria=criteria, invalid_reason=(detail.get("result_invalid_reason") or "").strip() or None,
        early_stopping=(" ".join(str(early).split()) or None) if early else None,
        percentiles_ms=percentiles, mean_latency_ms=_ms(mean_ns),
        qps_with_loadgen_overhead=None if qps_with is None else float(qps_with),
        qps_without_loadgen_overhead=None if qps_without is None else float(qps_without),
        samples_per_s=None if samples_ps is None else float(samples_ps),
        scheduled_qps=None if detail.get("result_scheduled_samples_per_sec") is None
        else float(detail["result_scheduled_samples_per_sec"]),
        query_count=detail.get("result_query_count"),
        overlatency_query_count=detail.get("result_overlatency_query_count"),
        effective=effective, errors=list(detail.get("errors") or []),
        log_dir=str(log_dir) if log_dir is not None else None)


def read_accuracy_log(path: Path, layout: list[dict[str, Any]]) -> dict[int, list[dict[str, np.ndarray]]]:
    """LoadGen's accuracy log as {qsl index: [outputs of each time the sample was logged]}; `layout` is the
    trial's `accuracy_layout` ([{name, dtype, shape}] of one sample's outputs, in order)."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LogError(f"{path}: not a readable LoadGen accuracy log ({exc})") from None
    sizes = [int(np.prod(o["shape"], dtype=np.int64)) * np.dtype(o["dtype"]).itemsize for o in layout]
    out: dict[int, list[dict[str, np.ndarray]]] = {}
    for entry in entries:
        blob = bytes.fromhex(entry["data"])
        if len(blob) != sum(sizes):
            raise LogError(f"{path}: sample {entry['qsl_idx']} has {len(blob)} bytes, the layout {sum(sizes)}")
        outputs, offset = {}, 0
        for spec, size in zip(layout, sizes, strict=True):
            outputs[spec["name"]] = np.frombuffer(blob[offset:offset + size], dtype=spec["dtype"]).reshape(
                spec["shape"])
            offset += size
        out.setdefault(int(entry["qsl_idx"]), []).append(outputs)
    return out
