"""The report's charts and pages from synthetic results: a chart per model (no model's points behind another's
front), a colour per runtime and a line style per mode the same in every chart, and the measurement warnings and
the reasons for absent CIs written out in the HTML and the Markdown."""

from __future__ import annotations

import json
import re
from typing import Any

import plotly.graph_objects as go

from inferlab.models.artifact import Artifact, ModelFormat
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
