"""DLI's published table: rows and grouped columns, the best of several trials per cell, and missing or failed
cells shown as such in every rendering (terminal, Markdown, CSV, HTML)."""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console

from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.trial import LatencyStats, TrialResult, TrialSpec
from inferlab.report.published import MISSING, ColumnKey, RowKey, published, to_csv, to_markdown, to_rich


def _result(model: str, backend: str, batch: int, fps: float | None, env: str = "e1", mode: str = "latency",
            knob: int = 0) -> TrialResult:
    spec = TrialSpec(Artifact(model, f"/m/{model}.onnx", ModelFormat.ONNX, model * 8), backend, "cpu",
                     (("threads", knob),), batch, mode)  # type: ignore[arg-type]
    if fps is None:
        return TrialResult(spec, "failed", reason="crashed", environment_id=env)
    lat = LatencyStats(10, 1, 0, 1, 1, 1000 * batch / fps, 1, 1, 1, 1000 * batch / fps, 0, 1, 1)
    return TrialResult(spec, "ok", throughput_sps=fps, latency=lat, environment_id=env)


RESULTS = [
    _result("resnet", "onnxruntime", 1, 100.0),
    _result("resnet", "onnxruntime", 1, 120.0, knob=2),       # a sweep: the cell shows the best of 2
    _result("resnet", "openvino", 1, 150.0),
    _result("resnet", "onnxruntime", 8, 400.0),                # openvino never ran batch 8: a missing cell
    _result("mobilenet", "openvino", 1, None),                 # every trial of this cell failed
    _result("resnet", "onnxruntime", 1, 90.0, env="e2"),       # another machine: its own column group
]


def test_layout_rows_columns_and_cells() -> None:
    t = published(RESULTS, lambda e: {"e1": "machine A", "e2": "machine B"}.get(e or "", MISSING))
    assert t.rows == [RowKey(MISSING, "mobilenet", 1), RowKey(MISSING, "resnet", 1), RowKey(MISSING, "resnet", 8)]
    assert t.columns == [ColumnKey("machine A", "onnxruntime", "cpu", "f32", "latency"),
                         ColumnKey("machine A", "openvino", "cpu", "f32", "latency"),
                         ColumnKey("machine B", "onnxruntime", "cpu", "f32", "latency")]
    resnet1, resnet8, mobilenet = t.rows[1], t.rows[2], t.rows[0]
    ort_a, ov_a, ort_b = t.columns
    assert t.text(resnet1, ort_a) == "120.0 FPS · 8.33 ms · best of 2"
    assert t.text(resnet1, ort_b) == "90.00 FPS · 11.11 ms"
    assert t.text(resnet8, ov_a) == MISSING and t.cell(resnet8, ov_a) is None
    assert t.text(mobilenet, ov_a) == "failed (1)" and t.text(mobilenet, ort_a) == MISSING
    groups = t.header_groups()
    assert groups[0] == [("machine A", 2), ("machine B", 1)]
    assert groups[1] == [("onnxruntime", 1), ("openvino", 1), ("onnxruntime", 1)]
    assert groups[4] == [("latency", 1)] * 3


def test_renderings_show_missing_cells_as_missing() -> None:
    t = published(RESULTS, lambda e: e or MISSING)
    md = to_markdown(t).splitlines()
    resnet8 = next(line for line in md if "| resnet | 8 |" in line)
    assert resnet8.count(f"| {MISSING} ") >= 2 and "400.0 FPS" in resnet8
    csv_lines = to_csv(t).splitlines()
    assert csv_lines[0].startswith("task,model,batch,") and "e1 / onnxruntime / cpu / f32 / latency fps" in csv_lines[0]
    row8 = next(line for line in csv_lines if ",resnet,8," in line)
    assert ",,"  in row8 and "400.000" in row8  # missing: empty, never 0
    console = Console(width=250, record=True)
    console.print(to_rich(t))
    text = console.export_text()
    assert "failed (1)" in text and "120.0 FPS · 8.33 ms · best of 2" in text and MISSING in text


def test_accuracy_only_trials_stay_out_of_the_speed_table() -> None:
    acc = _result("resnet", "onnxruntime", 1, 100.0, mode="accuracy")
    assert published([acc], lambda e: "A").rows == []


def test_cells_keep_enough_digits_and_say_what_they_leave_out() -> None:
    spec = RESULTS[0].spec
    fast = TrialResult(spec, "ok", throughput_sps=70_422.5, throughput_ci_low_sps=70_390.0,
                       throughput_ci_high_sps=70_460.0, warnings=("only 20 timed requests: percentiles are rough",),
                       latency=LatencyStats(20, 0.0142, 0, 0.014, 0.015, 0.0142, 0.0142, 0.0142, 0.0142, 0.0142, 0,
                                            0.0141, 0.0143), environment_id="e1")
    slower = TrialResult(replace(spec, batch=2), "ok", throughput_sps=66_666.7,
                         latency=LatencyStats(20, 0.015, 0, 0.015, 0.015, 0.015, 0.015, 0.015, 0.015, 0.0151, 0,
                                              0.0151, 0.0151), environment_id="e1")
    t = published([fast, slower], lambda e: "A")
    col = t.columns[0]
    b1, b2 = t.rows
    assert t.text(b1, col) == "70,422 FPS · 0.0142 ms"  # 14 us and 15 us stay apart
    assert t.text(b2, col) == "66,667 FPS · 0.0151 ms"
    assert t.text(b1, col, mark=True).endswith(" ⚠") and not t.text(b2, col, mark=True).endswith("⚠")
    cell = t.cell(b1, col)
    assert cell is not None and "95% CI 70,390–70,460 FPS" in cell.details()
    assert "⚠ only 20 timed requests" in cell.details()
    other = t.cell(b2, col)
    assert other is not None and other.details() == "no CI stored with this result"
    md = to_markdown(t)
    assert "70,422 FPS · 0.0142 ms ⚠" in md
    assert "0.0142" in to_csv(t)
