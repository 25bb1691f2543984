"""Flat rows and the terminal table: precision from what the runtime used, missing values shown as such."""

from __future__ import annotations

import numpy as np
from rich.console import Console

from inferlab.measure.stats import latency_stats
from inferlab.measure.trial import MeasureSettings, TrialResult, TrialSpec
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.report.export import to_csv
from inferlab.report.rows import flatten, precision
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
