"""The report's charts as plotly figures: throughput against latency (sweet spot, threshold), batch scans,
a tuning's history (best so far) and Pareto fronts. Each returns None when its data is absent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from inferlab.measure.trial import TrialResult
from inferlab.report.rows import precision
from inferlab.tune.objectives import latency_ms
from inferlab.tune.record import TrialRecord
from inferlab.tune.search import pareto
from inferlab.tune.spec import DIRECTION, UNIT

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f", "#393b79", "#ad494a")


@dataclass(frozen=True)
class Study:
    """A stored tuning study, as the report reads it."""

    run_id: str
    objectives: list[str]
    constraints: str
    records: list[TrialRecord]
    status: str
    best: dict[str, Any]              # what the study stored of its outcome (winner or message, stop reason)
    threshold_ms: float | None        # its latency budget: the report's threshold
    percentile: str


def _measured(results: Sequence[TrialResult]) -> list[TrialResult]:
    return [r for r in results if r.status == "ok" and r.throughput_sps is not None and r.latency is not None]


def _label(r: TrialResult) -> str:
    return r.spec.label().replace(" [", "<br>[")


def _layout(title: str, x: str, y: str, **extra: object) -> go.Layout:
    return go.Layout(title={"text": title}, xaxis={"title": {"text": x}}, yaxis={"title": {"text": y}},
                     template="plotly_white", height=460, margin={"l": 70, "r": 30, "t": 60, "b": 60},
                     legend={"orientation": "h", "y": -0.2}, **extra)


def sweet_spot(results: Sequence[TrialResult], threshold_ms: float | None, percentile: str) -> TrialResult | None:
    """The highest throughput whose latency percentile stays within the threshold (any latency without one)."""
    ok = [r for r in _measured(results)
          if threshold_ms is None or (latency_ms(r.latency, percentile) or float("inf")) <= threshold_ms]
    return max(ok, key=lambda r: r.throughput_sps or 0.0) if ok else None


def by_model(results: Sequence[TrialResult]) -> dict[str, list[TrialResult]]:
    out: dict[str, list[TrialResult]] = {}
    for r in results:
        out.setdefault(r.spec.model.name, []).append(r)
    return out


def sweet_spots(results: Sequence[TrialResult], threshold_ms: float | None,
                percentile: str) -> dict[str, TrialResult]:
    """Each model's sweet spot: models are not traded against each other."""
    spots = {m: sweet_spot(rs, threshold_ms, percentile) for m, rs in by_model(results).items()}
    return {m: r for m, r in spots.items() if r is not None}


def throughput_latency(results: Sequence[TrialResult], threshold_ms: float | None, percentile: str) -> go.Figure | None:
    ok = _measured(results)
    if not ok:
        return None
    fig = go.Figure(layout=_layout("Throughput against latency", f"latency {percentile} (ms)",
                                   "throughput (samples/s)"))
    several = len(by_model(ok)) > 1
    series: dict[str, list[TrialResult]] = {}
    for r in ok:
        model = f"{r.spec.model.name} · " if several else ""
        series.setdefault(f"{model}{r.spec.backend}/{r.spec.device} {precision(r)}", []).append(r)
    for i, (name, rs) in enumerate(sorted(series.items())):
        fig.add_trace(go.Scatter(
            x=[latency_ms(r.latency, percentile) for r in rs], y=[r.throughput_sps for r in rs], mode="markers",
            name=name, text=[_label(r) for r in rs],
            hovertemplate="%{text}<br>%{y:.1f} FPS, %{x:.3f} ms<extra></extra>",
            marker={"size": [6 + 2 * min(r.spec.batch, 32) ** 0.5 for r in rs], "color": PALETTE[i % len(PALETTE)],
                    "opacity": 0.8}))
    if threshold_ms is not None:
        fig.add_vline(x=threshold_ms, line={"dash": "dash", "color": "#d62728"},
                      annotation_text=f"threshold {threshold_ms:g} ms", annotation_position="top right")
    spots = sweet_spots(ok, threshold_ms, percentile)
    if spots:
        best = list(spots.values())
        fig.add_trace(go.Scatter(
            x=[latency_ms(b.latency, percentile) for b in best], y=[b.throughput_sps for b in best],
            mode="markers+text", name="sweet spot" + (" (per model)" if several else ""),
            text=[f"sweet spot: {m}" if several else "sweet spot" for m in spots], textposition="top center",
            hovertext=[_label(b) for b in best], hovertemplate="%{hovertext}<extra>sweet spot</extra>",
            marker={"symbol": "star", "size": 18, "color": "gold", "line": {"color": "black", "width": 1}}))
    return fig


def batch_scan(results: Sequence[TrialResult]) -> go.Figure | None:
    """FPS by batch size, one curve per model/backend/device/precision/mode (the best knobs at each batch)."""
    curves: dict[str, dict[int, TrialResult]] = {}
    for r in _measured(results):
        key = f"{r.spec.model.name} · {r.spec.backend}/{r.spec.device} {precision(r)} {r.spec.mode}"
        have = curves.setdefault(key, {}).get(r.spec.batch)
        if have is None or (r.throughput_sps or 0) > (have.throughput_sps or 0):
            curves[key][r.spec.batch] = r
    curves = {k: v for k, v in curves.items() if len(v) > 1}
    if not curves:
        return None
    fig = go.Figure(layout=_layout("Batch-size scan", "batch size", "throughput (samples/s)"))
    fig.update_xaxes(type="log", dtick=0.30102999566)  # log2 ticks
    for i, (name, by_batch) in enumerate(sorted(curves.items())):
        batches = sorted(by_batch)
        fig.add_trace(go.Scatter(
            x=batches, y=[by_batch[b].throughput_sps for b in batches], mode="lines+markers", name=name,
            text=[_median(by_batch[b]) for b in batches],
            hovertemplate="batch %{x}: %{y:.1f} FPS, %{text}<extra></extra>",
            line={"color": PALETTE[i % len(PALETTE)]}))
    return fig


def _median(r: TrialResult) -> str:
    return f"median {r.latency.median_3sigma_ms:.2f} ms" if r.latency is not None else ""


def history(study: Study) -> go.Figure | None:
    """Every measured trial's first objective in order, and the best feasible value so far."""
    objective = study.objectives[0]
    done = [r for r in study.records if r.role != "reference" and r.state != "pruned"]
    if not done:
        return None
    unit = UNIT.get(objective, "ms")
    fig = go.Figure(layout=_layout(f"Tuning history of run {study.run_id}", "measured trial",
                                   f"{objective} ({unit})"))
    xs = list(range(1, len(done) + 1))
    kinds = {"feasible": ("#2ca02c", "circle"), "infeasible": ("#ff7f0e", "x"), "re-measured": ("#1f77b4", "diamond")}
    for kind, (color, symbol) in kinds.items():
        pts = [(x, r) for x, r in zip(xs, done, strict=True) if r.state == "complete" and _kind(r) == kind]
        if pts:
            fig.add_trace(go.Scatter(x=[x for x, _ in pts], y=[r.values[0] for _, r in pts], mode="markers",
                                     name=kind, marker={"color": color, "symbol": symbol, "size": 9},
                                     text=[_describe(r) for _, r in pts],
                                     hovertemplate="%{text}<br>%{y:.4g}<extra></extra>"))
    failed = [x for x, r in zip(xs, done, strict=True) if r.state == "failed"]
    if failed:
        fig.add_trace(go.Scatter(x=failed, y=[0.0] * len(failed), mode="markers", name="failed",
                                 marker={"color": "#d62728", "symbol": "triangle-down", "size": 9},
                                 text=[r.note or "" for r in done if r.state == "failed"],
                                 hovertemplate="failed: %{text}<extra></extra>"))
    best: list[float | None] = []
    current: float | None = None
    sign = 1 if DIRECTION[objective] == "maximize" else -1
    for r in done:
        if r.role == "search" and r.state == "complete" and r.feasible and (
                current is None or sign * r.values[0] > sign * current):
            current = r.values[0]
        best.append(current)
    fig.add_trace(go.Scatter(x=xs, y=best, mode="lines", name="best so far", line={"shape": "hv", "color": "black"}))
    return fig


def _kind(r: TrialRecord) -> str:
    if r.role == "confirm":
        return "re-measured"
    return "feasible" if r.feasible else "infeasible"


def _describe(r: TrialRecord) -> str:
    head = f"#{r.position} {r.point.describe()}" if r.point is not None else f"#{r.position}"
    return head + (f"<br>{r.note}" if r.note else "")


def front(study: Study | None, results: Sequence[TrialResult]) -> go.Figure | None:
    """A study's Pareto front over its first two objectives; otherwise throughput against p99 latency."""
    if study is not None and len(study.objectives) >= 2:
        a, b = study.objectives[:2]
        feasible = [r for r in study.records if r.role == "search" and r.state == "complete" and r.feasible]
        pts = [(r.values[0], r.values[1], _describe(r)) for r in feasible]
        top = [(r.values[0], r.values[1], _describe(r))
               for r in pareto(feasible, [DIRECTION[o] for o in study.objectives], key=lambda r: r.values)]
        xa, ya = f"{a} ({UNIT.get(a, 'ms')})", f"{b} ({UNIT.get(b, 'ms')})"
        title = f"Pareto front of run {study.run_id}"
    else:
        pts, top = [], []
        for rs in by_model(_measured(results)).values():  # a front per model: models are not traded
            own = [(latency_ms(r.latency, "p99") or 0.0, r.throughput_sps or 0.0, _label(r)) for r in rs]
            pts += own
            top += pareto(own, ["minimize", "maximize"], key=lambda p: p[:2])
        xa, ya, title = "latency p99 (ms)", "throughput (samples/s)", "Pareto front: throughput against p99 latency"
    if len(pts) < 2:
        return None
    fig = go.Figure(layout=_layout(title, xa, ya))
    fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers", name="measured",
                             text=[p[2] for p in pts], hovertemplate="%{text}<extra></extra>",
                             marker={"color": "#9aa5b1", "size": 8}))
    top = sorted(top)
    fig.add_trace(go.Scatter(x=[p[0] for p in top], y=[p[1] for p in top], mode="markers", name="Pareto front",
                             text=[p[2] for p in top], hovertemplate="%{text}<extra>front</extra>",
                             marker={"color": "#d62728", "size": 11}))
    return fig
