"""The report's charts and pages from synthetic results: a chart per model (no model's points behind another's
front), a colour per runtime and a line style per mode the same in every chart, and the measurement warnings and
the reasons for absent CIs written out in the HTML and the Markdown."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest

from inferlab.analyze.roofline import place
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.analysis import LayerProfile, LayerRecord, Peaks
from inferlab.records.trial import LatencyStats, TrialResult, TrialSpec
from inferlab.report import charts
from inferlab.report.html import RunData, render, render_tables

WARNING = "only 20 timed requests: percentiles are rough; measure longer"


def _result(model: str, backend: str, mode: str, batch: int, ms: float, warnings: tuple[str, ...] = (),
            requests: int = 200) -> TrialResult:
    spec = TrialSpec(Artifact(model, f"/m/{model}.onnx", ModelFormat.ONNX, model * 8), backend, "cpu", (), batch,
                     mode)  # type: ignore[arg-type]
    lat = LatencyStats(requests, ms, 0.0, ms, ms, ms, ms, ms, ms * 1.5, ms, 0, ms, ms, ms, ms)
    fps = 1e3 * batch / ms
    ci = (fps * 0.99, fps * 1.01) if mode == "latency" or requests >= 40 else (None, None)
    return TrialResult(spec, "ok", throughput_sps=fps, throughput_ci_low_sps=ci[0], throughput_ci_high_sps=ci[1],
                       latency=lat, requests=requests, warnings=warnings, environment_id="e1")


def _results() -> list[TrialResult]:
    out = []
    # a heavy model (tens of ms) and a light one (tens of us): pooled, the light one's points dominate every
    # heavy one and the heavy model would have no front of its own
    for model, base in (("heavy", 20.0), ("light", 0.02)):
        for backend, speed in (("onnxruntime", 1.0), ("openvino", 0.8)):
            for mode, factor in (("latency", 1.0), ("throughput", 0.7)):
                for batch in (1, 2, 4):
                    out.append(_result(model, backend, mode, batch, base * speed * factor * batch ** 0.6))
    out.append(_result("light", "onnxruntime", "throughput", 8, 0.07, warnings=(WARNING,), requests=20))
    return out


def _traces(fig: go.Figure) -> list[Any]:
    return [t for t in fig.data if t.name not in ("Pareto front", "sweet spot")]


def test_a_chart_per_model_with_a_colour_per_runtime_and_a_dash_per_mode() -> None:
    results = _results()
    styles = charts.Styles(results)
    models = charts.by_model(results)
    scans = {m: charts.batch_scan(m, rs, styles) for m, rs in models.items()}
    seen: dict[str, dict[str, Any]] = {}
    for model, fig in scans.items():
        assert fig is not None
        traces = _traces(fig)
        assert len(traces) == 4  # 2 runtimes x 2 modes, not 8 pooled lines
        assert all(model in text for t in traces for text in t.text)  # only this model's trials
        for t in traces:
            backend, mode = t.name.split("/")[0], t.name.rsplit(" · ", 1)[1]
            assert t.line.dash == {"latency": "solid", "throughput": "dash"}[mode]
            seen.setdefault(backend, {}).setdefault(model, t.line.color)
    assert seen["onnxruntime"]["heavy"] == seen["onnxruntime"]["light"]  # the same colour in every chart
    assert seen["openvino"]["heavy"] == seen["openvino"]["light"]
    assert seen["onnxruntime"]["heavy"] != seen["openvino"]["heavy"]
    scatter = charts.throughput_latency("light", models["light"], styles, None, "p99")
    assert scatter is not None
    marker = {t.name: t.marker for t in _traces(scatter)}
    assert marker["onnxruntime/cpu f32 · latency"].color == seen["onnxruntime"]["light"]
    assert marker["onnxruntime/cpu f32 · latency"].symbol != marker["onnxruntime/cpu f32 · throughput"].symbol


def test_each_model_has_its_own_front() -> None:
    results = _results()
    styles = charts.Styles(results)
    heavy = [r for r in results if r.spec.model.name == "heavy"]
    fig = charts.front("heavy", heavy, styles)
    assert fig is not None
    line = next(t for t in fig.data if t.name == "Pareto front")
    points = {(round(r.latency.p99_ms, 9), round(r.throughput_sps or 0, 6)) for r in heavy if r.latency}
    front = list(zip(line.x, line.y, strict=True))
    assert len(front) >= 2 and all((round(x, 9), round(y, 6)) in points for x, y in front)
    # nothing measured is both faster and of higher throughput than a point of the front
    for x, y in front:
        assert not any(px <= x and py >= y and (px, py) != (round(x, 9), round(y, 6)) for px, py in points)


def test_html_and_markdown_show_warnings_and_why_a_ci_is_absent() -> None:
    results = _results()
    run = RunData("r1", "sweep", results)
    html = render([run], {})
    ids = re.findall(r'<div class="chart" id="chart-([\w-]+)"', html)
    assert {"scatter-heavy", "scatter-light", "batch-heavy", "batch-light", "front-heavy", "front-light"} <= set(ids)
    warnings = html.split('id="warnings-list"', 1)[1].split("</ul>", 1)[0]
    assert "light onnxruntime/cpu f32 b8 throughput" in warnings and WARNING in warnings
    assert warnings.count("<li>") == 1
    trials = html.split('id="trials-table"', 1)[1].split("</details>", 1)[0]
    assert "—¹" in trials and "¹ no CI: too few completions (fewer than 40); measure longer" in trials
    assert "title=\"95% CI " in html  # published cells carry their CI
    figures = [json.loads(m.replace("<\\/", "</")) for m in
               re.findall(r'<script type="application/json" id="fig-[\w-]+">(.*?)</script>', html, re.S)]
    assert len(figures) == len(ids)
    md = render_tables([run], {}, "markdown")
    assert f"- **light onnxruntime/cpu f32 b8 throughput**: {WARNING}" in md
    row = next(line for line in md.splitlines() if line.startswith("| light | onnxruntime | cpu | f32 |  | 8 |"))
    assert "| —¹ |" in row and f"⚠ {WARNING}" in row
    assert "¹ no CI: too few completions" in md


def _profiled(backend: str, ms: float, graph: str | None) -> TrialResult:
    """A trial with a layer profile (conv_{backend} its hottest layer) and a roofline under shared roofs."""
    layers = tuple(LayerRecord(f"{kind}_{backend}_{i}", kind, f"{kind.lower()}_avx512", "FP32", t, t / ms, i)
                   for i, (kind, t) in enumerate([("Relu", 0.1 * ms), ("Convolution", 0.6 * ms),
                                                  ("MatMul", 0.3 * ms)]))
    peaks = Peaks("openvino", "cpu", "fp32", 1e12, 1e11, "GEMM 2048×2048×2048 fp32", "y = x + 1 over 16 Mi fp32")
    fps = 1e3 / ms
    roof = place(1e9, 2.5e7, "onnx-tool", fps, peaks)
    return replace(_result("net", backend, "latency", 1, ms), layers=LayerProfile(backend, 40, ms, ms * 1.2, layers),
                   roofline=roof, graph_file=graph)


def test_roofline_chart_draws_both_roofs_and_places_each_trial() -> None:
    results = [_profiled("openvino", 4.0, None), _profiled("onnxruntime", 8.0, None)]
    (key, group), = charts.by_roofs(results).items()
    assert key == ("openvino", "cpu", "fp32")
    fig = charts.roofline(key, group, charts.Styles(results))
    assert fig is not None and fig.layout.xaxis.type == fig.layout.yaxis.type == "log"
    roofs = next(t for t in fig.data if t.name == "roofs")  # one pair of roofs: the trials share them
    assert sum(t.name == "roofs" for t in fig.data) == 1
    assert roofs.x[1] == 10.0 and list(roofs.y[1:]) == [1e12, 1e12]  # the ridge, then the flat compute roof
    assert roofs.y[0] == pytest.approx(roofs.x[0] * 1e11)  # the memory roof: intensity × bytes/s
    points = {t.name: (t.x[0], t.y[0], t.text[0]) for t in fig.data if t.name.startswith(("openvino", "onnxrun"))}
    x, y, text = points["openvino/cpu f32 · latency"]
    assert (x, y) == (pytest.approx(40.0), pytest.approx(1e9 * 250))
    assert "25% of the 1 TFLOP/s attainable" in text and "compute-bound" in text
    assert charts.roofline(key, [_result("net", "openvino", "latency", 1, 1.0)], charts.Styles(results)) is None


def test_html_and_markdown_show_hot_layers_graph_links_and_rooflines(tmp_path: Path) -> None:
    graph = tmp_path / "trials" / "t1" / "graph" / "runtime.xml"
    results = [_profiled("openvino", 4.0, str(graph)), _profiled("onnxruntime", 8.0, None),
               _result("net", "onnxruntime", "latency", 2, 5.0)]
    run = RunData("r1", "profiled", results)
    html = render([run], {}, output=tmp_path / "reports" / "report.html")
    layers = html.split('<h2 id="layers">', 1)[1].split("<h2 ", 1)[0]
    assert layers.count('<table class="hot-layers">') == 2  # the unprofiled trial has none
    hot = layers.split('<table class="hot-layers">', 1)[1]
    assert re.findall(r"<td>(\w+_openvino_\d)</td>", hot.split("</table>", 1)[0]) == [
        "Convolution_openvino_1", "MatMul_openvino_2", "Relu_openvino_0"]  # slowest first
    assert "sum of 3 layers 4.00 ms; 83% of the profiled inference (4.80 ms, median of 40); 100% of the measured " \
           "median latency (4.00 ms, 3σ)" in layers
    assert 'href="../trials/t1/graph/runtime.xml"' in layers  # relative to the report's folder
    roofline = html.split('<h2 id="roofline">', 1)[1]
    assert 'id="chart-roofline-openvino-cpu-fp32"' in roofline
    table = roofline.split('id="roofline-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 3 and "compute-bound" in table and "intensity 40.0 FLOP/byte" in table
    assert "Per-layer profiles" not in render([RunData("r2", "plain", _results())], {})
    md = render_tables([run], {}, "markdown", output=tmp_path / "reports" / "report.md")
    section = md.split("## Per-layer profiles", 1)[1].split("## Roofline", 1)[0]
    assert "| layer | type | kernel | precision | ms | share |" in section
    assert "| Convolution_openvino_1 | Convolution | convolution_avx512 | FP32 | 2.40 | 60.0% |" in section
    assert "optimised graph (openvino): [runtime.xml](../trials/t1/graph/runtime.xml)" in section
    roofs = md.split("## Roofline", 1)[1]
    row = next(line for line in roofs.splitlines() if line.startswith("| net openvino/cpu"))
    assert "| 1 GFLOP | 25 MB | 40 FLOP/B | 250 GFLOP/s | 1 TFLOP/s | 25% | compute-bound |" in row
