"""Flat rows and the terminal table: precision from what the runtime used, missing values shown as such (and
why, for a CI), enough digits for fast models, and each trial's measurement warnings under the table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from rich.console import Console

from inferlab.measure.stats import latency_stats
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.trial import MeasureSettings, TrialResult, TrialSpec
from inferlab.report.export import to_csv
from inferlab.report.rows import ci_missing_reason, flatten, precision
from inferlab.report.table import results_table


def _result(backend: str, params: dict[str, object], effective: dict[str, object], **kw: object) -> TrialResult:
    art = Artifact("m", "/m.onnx", ModelFormat.ONNX, "0" * 64)
    spec = TrialSpec(art, backend, "cpu", tuple(sorted(params.items())), 1, "latency", MeasureSettings())  # type: ignore[arg-type]
    return TrialResult(spec=spec, effective=effective, **kw)  # type: ignore[arg-type]


def test_precision_names_are_normalised() -> None:
    assert precision(_result("openvino", {}, {"inference_precision_hint": "float32"}, status="ok")) == "f32"
    assert precision(_result("torch", {"dtype": "bfloat16"}, {"dtype": "bfloat16"}, status="ok")) == "bf16"
    assert precision(_result("onnxruntime", {}, {}, status="ok")) == "f32"


def test_table_shows_failures_and_not_measured_energy() -> None:
    ns = np.full(50, 2_000_000, dtype=np.int64)
    ok = _result("onnxruntime", {"intra_op_threads": 2}, {}, status="ok", latency=latency_stats(ns),
                 throughput_sps=500.0)
    bad = _result("onnxruntime", {}, {}, status="failed", reason="crashed: killed by SIGSEGV in phase 'load'")
    console = Console(width=250, record=True)
    console.print(results_table([ok, bad]))
    text = console.export_text()
    assert "not measured" in text  # energy was not readable: never shown as 0
    assert "killed by SIGSEGV" in text
    assert "intra_op_threads=2" in text  # a knob away from its default is shown


def test_csv_has_a_column_per_param_and_effective_setting() -> None:
    r = _result("openvino", {"num_streams": 2}, {"in_flight": 4}, status="ok")
    row = flatten(r)
    assert row["param.num_streams"] == 2 and row["effective.in_flight"] == 4
    assert row["energy_j_per_sample"] is None
    header = to_csv([r]).splitlines()[0].split(",")
    assert "param.num_streams" in header and "latency_p99_ms" in header


def _text(results: list[TrialResult]) -> str:
    console = Console(width=250, record=True)
    console.print(results_table(results))
    return console.export_text()


def _row(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def test_table_tells_14_from_15_microseconds() -> None:
    fast = _result("onnxruntime", {}, {}, status="ok", latency=latency_stats(np.full(50, 14_200, dtype=np.int64)),
                   throughput_sps=70_422.5, throughput_ci_low_sps=70_390.2, throughput_ci_high_sps=70_460.9)
    slow = _result("openvino", {}, {}, status="ok", latency=latency_stats(np.full(50, 15_100, dtype=np.int64)),
                   throughput_sps=66_225.2, throughput_ci_low_sps=66_200.0, throughput_ci_high_sps=66_250.0)
    text = _text([fast, slow])
    assert "│ 70,422 │ 70,390–70,461 │    0.0142 │ 0.0142 │" in _row(text, "onnxruntime")
    assert "│ 66,225 │ 66,200–66,250 │    0.0151 │ 0.0151 │" in _row(text, "openvino")


def test_table_lists_each_trials_warnings_under_it_naming_the_row() -> None:
    ns = np.full(20, 2_000_000, dtype=np.int64)
    noisy = _result("onnxruntime", {"intra_op_threads": 2}, {}, status="ok", latency=latency_stats(ns),
                    throughput_sps=500.0, throughput_ci_low_sps=490.0, throughput_ci_high_sps=510.0,
                    warnings=("only 20 timed requests: percentiles are rough; measure longer",
                              "high spread: the interquartile range is 31% of the median"))
    clean = _result("openvino", {}, {}, status="ok", latency=latency_stats(ns), throughput_sps=400.0,
                    throughput_ci_low_sps=390.0, throughput_ci_high_sps=410.0)
    text = _text([clean, noisy])
    assert "ok ⚠1" in _row(text, "intra_op_threads=2 ")
    assert "⚠" not in _row(text, "│ openvino")
    under = " ".join(text.split("measurement warnings:")[1].split())  # the caption wraps at the table's width
    assert under == ("⚠1 m onnxruntime/cpu f32 b1 latency [intra_op_threads=2]: only 20 timed requests: percentiles "
                     "are rough; measure longer; high spread: the interquartile range is 31% of the median")
    assert text.count("⚠") == 2  # one mark in the row, one line under the table


def test_a_missing_ci_says_why() -> None:
    few = _result("onnxruntime", {}, {}, status="ok", throughput_sps=800.0, requests=12,
                  latency=latency_stats(np.full(12, 5_000_000, dtype=np.int64)))
    few = few.with_(spec=replace(few.spec, mode="throughput"))
    server = _result("openvino", {}, {}, status="ok", throughput_sps=900.0,
                     latency=latency_stats(np.full(50, 1_000_000, dtype=np.int64)))
    server = server.with_(spec=replace(server.spec, mode="Server"))
    failed = _result("onnxruntime", {}, {}, status="failed", reason="crashed")
    assert ci_missing_reason(failed) == "no CI: the trial failed"
    text = _text([few, server, failed])
    assert "—¹" in _row(text, "throughput") and "—²" in _row(text, "Server")
    assert "¹ no CI: too few completions (fewer than 40); measure longer" in text
    assert "² no CI: an MLPerf scenario, judged by LoadGen's own figures" in text
    assert ci_missing_reason(few.with_(throughput_ci_low_sps=790.0, throughput_ci_high_sps=810.0)) is None


def test_a_derived_models_drop_is_measured_from_the_model_it_came_from() -> None:
    from inferlab.records.accuracy import AccuracyResult
    from inferlab.report.html import accuracy_rows

    def scored(name: str, digest: str, top1: float, stored: str | None) -> TrialResult:
        art = Artifact(name, f"/{name}.onnx", ModelFormat.ONNX, digest * 64)
        spec = TrialSpec(art, "onnxruntime", "cpu", (), 1, "latency", MeasureSettings())
        return TrialResult(spec=spec, status="ok", runtime={"model_precision": stored} if stored else {},
                           accuracy=AccuracyResult("digits", "d" * 64, 540, {"top1": top1}))

    original = scored("digits_cnn", "a", 0.9926, None)
    derived = scored("digits_cnn.int8-aa", "b", 0.9907, "int8")
    again = scored("digits_cnn.int8-aa.fp16", "c", 0.9889, "f16")  # derived from the derived one
    stranger = scored("other.int8", "e", 0.5, "int8")
    _, rows = accuracy_rows([original, derived, again, stranger], {"b" * 64: "a" * 64, "c" * 64: "b" * 64})
    drops = {r["model"]: r["drop"] for r in rows}
    assert drops["digits_cnn"].startswith("+0.00")
    assert drops["digits_cnn.int8-aa"].startswith("+0.19") and drops["digits_cnn.int8-aa.fp16"].startswith("+0.37")
    assert drops["other.int8"] == "—"  # no lineage, no FP32 run of its own: no drop to show
    _, plain = accuracy_rows([original, derived])  # without lineage, only a model's own FP32 run counts
    assert [r["drop"] for r in plain][1] == "—"
