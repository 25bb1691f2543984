"""The report's charts as plotly figures: throughput against latency, batch scans and Pareto fronts per model (models
are not traded against each other), a tuning's history, a roofline per runtime/device/precision. A runtime keeps one
colour and a mode one line style (and marker) in every chart. Each returns None when its data is absent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from inferlab.records.trial import TrialResult
from inferlab.report import numbers
from inferlab.report.rows import precision, row_name
from inferlab.tune.objectives import latency_ms
from inferlab.tune.record import TrialRecord
from inferlab.tune.search import pareto
from inferlab.tune.spec import DIRECTION, UNIT

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f", "#393b79", "#ad494a")
# the runtimes' own colours, the same in every report; others take the palette's unclaimed colours in name order
RUNTIME_COLOURS = {"onnxruntime": "#1f77b4", "openvino": "#9467bd", "torch": "#ff7f0e", "null": "#7f7f7f"}
THRESHOLD_COLOUR = "#d62728"
MODE_DASH = {"latency": "solid", "throughput": "dash", "SingleStream": "dot", "MultiStream": "dashdot",
             "Server": "longdash", "Offline": "longdashdot"}
MODE_SYMBOL = {"latency": "circle", "throughput": "diamond", "SingleStream": "square", "MultiStream": "triangle-up",
               "Server": "cross", "Offline": "x"}
VARIANT_FILL = ("", "-open", "-dot", "-open-dot")  # a runtime's devices/precisions: filled, open, dotted ...


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


SeriesKey = tuple[str, str, str, str]  # backend, device, precision, mode


def series_key(r: TrialResult) -> SeriesKey:
    return r.spec.backend, r.spec.device, precision(r), r.spec.mode


class Styles:
    """Colour per runtime, dash and marker per mode, marker fill per device/precision of a runtime: decided once
    from every result of the report, so a series looks the same in every chart."""

    def __init__(self, results: Sequence[TrialResult]) -> None:
        keys = sorted({series_key(r) for r in results})
        backends = sorted({k[0] for k in keys})
        spare = [c for c in PALETTE if c not in RUNTIME_COLOURS.values() and c != THRESHOLD_COLOUR]
        others = [b for b in backends if b not in RUNTIME_COLOURS]
        self.colour = {**RUNTIME_COLOURS, **{b: spare[i % len(spare)] for i, b in enumerate(others)}}
        self.variant: dict[tuple[str, str, str], int] = {}
        for b in backends:
            for i, v in enumerate(sorted({(k[1], k[2]) for k in keys if k[0] == b})):
                self.variant[(b, *v)] = i

    @staticmethod
    def name(key: SeriesKey) -> str:
        backend, device, prec, mode = key
        return f"{backend}/{device} {prec} · {mode}"

    def line(self, key: SeriesKey) -> dict[str, Any]:
        return {"color": self.colour[key[0]], "dash": MODE_DASH.get(key[3], "solid"), "width": 2}

    def marker(self, key: SeriesKey, **extra: Any) -> dict[str, Any]:
        backend, device, prec, mode = key
        fill = VARIANT_FILL[self.variant.get((backend, device, prec), 0) % len(VARIANT_FILL)]
        return {"color": self.colour[backend], "symbol": MODE_SYMBOL.get(mode, "circle") + fill,
                "line": {"color": self.colour[backend], "width": 1.5}, **extra}


def _measured(results: Sequence[TrialResult]) -> list[TrialResult]:
    return [r for r in results if r.status == "ok" and r.throughput_sps is not None and r.latency is not None]


def _label(r: TrialResult) -> str:
    return row_name(r).replace(" [", "<br>[")


def _hover(r: TrialResult, percentile: str = "median") -> str:
    lat = latency_ms(r.latency, percentile)
    what = "median (3σ)" if percentile == "median" else percentile
    return f"{_label(r)}<br>{numbers.fps(r.throughput_sps)} FPS, {what} {numbers.ms(lat)} ms"


def _layout(title: str, x: str, y: str, **extra: object) -> go.Layout:
    return go.Layout(title={"text": title}, xaxis={"title": {"text": x}}, yaxis={"title": {"text": y}},
                     template="plotly_white", height=460, margin={"l": 70, "r": 30, "t": 60, "b": 60},
                     legend={"orientation": "h", "y": -0.2}, **extra)


def _log_if_wide(fig: go.Figure, values: Sequence[float]) -> None:
    """A log latency axis when the latencies span more than a decade (batch 1 next to batch 64)."""
    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > 10:
        fig.update_xaxes(type="log")


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


def _series(results: Sequence[TrialResult]) -> dict[SeriesKey, list[TrialResult]]:
    out: dict[SeriesKey, list[TrialResult]] = {}
    for r in results:
        out.setdefault(series_key(r), []).append(r)
    return dict(sorted(out.items()))


def throughput_latency(model: str, results: Sequence[TrialResult], styles: Styles, threshold_ms: float | None,
                       percentile: str) -> go.Figure | None:
    """One model's trials, throughput against a latency percentile; marker size grows with the batch."""
    ok = _measured(results)
    if not ok:
        return None
    fig = go.Figure(layout=_layout(f"{model}: throughput against latency", f"latency {percentile} (ms)",
                                   "throughput (samples/s)"))
    for key, rs in _series(ok).items():
        fig.add_trace(go.Scatter(
            x=[latency_ms(r.latency, percentile) for r in rs], y=[r.throughput_sps for r in rs], mode="markers",
            name=styles.name(key), text=[_hover(r, percentile) for r in rs], hovertemplate="%{text}<extra></extra>",
            marker=styles.marker(key, size=[7 + 2 * min(r.spec.batch, 32) ** 0.5 for r in rs], opacity=0.85)))
    _log_if_wide(fig, [latency_ms(r.latency, percentile) or 0.0 for r in ok])
    if threshold_ms is not None:
        fig.add_vline(x=threshold_ms, line={"dash": "dash", "color": THRESHOLD_COLOUR},
                      annotation_text=f"threshold {threshold_ms:g} ms", annotation_position="top right")
    best = sweet_spot(ok, threshold_ms, percentile)
    if best is not None:
        fig.add_trace(go.Scatter(
            x=[latency_ms(best.latency, percentile)], y=[best.throughput_sps], mode="markers+text",
            name="sweet spot", text=["sweet spot"], textposition="top center", hovertext=[_hover(best, percentile)],
            hovertemplate="%{hovertext}<extra>sweet spot</extra>",
            marker={"symbol": "star", "size": 18, "color": "gold", "line": {"color": "black", "width": 1}}))
    return fig


def batch_scan(model: str, results: Sequence[TrialResult], styles: Styles) -> go.Figure | None:
    """One model's FPS by batch size: a line per runtime/device/precision/mode (the best knobs at each batch)."""
    curves: dict[SeriesKey, dict[int, TrialResult]] = {}
    for r in _measured(results):
        have = curves.setdefault(series_key(r), {}).get(r.spec.batch)
        if have is None or (r.throughput_sps or 0) > (have.throughput_sps or 0):
            curves[series_key(r)][r.spec.batch] = r
    curves = {k: v for k, v in sorted(curves.items()) if len(v) > 1}
    if not curves:
        return None
    fig = go.Figure(layout=_layout(f"{model}: batch-size scan", "batch size", "throughput (samples/s)"))
    fig.update_xaxes(type="log", dtick=math.log10(2))  # log2 ticks
    for key, by_batch in curves.items():
        batches = sorted(by_batch)
        fig.add_trace(go.Scatter(
            x=batches, y=[by_batch[b].throughput_sps for b in batches], mode="lines+markers", name=styles.name(key),
            text=[_hover(by_batch[b]) for b in batches], hovertemplate="%{text}<extra></extra>",
            line=styles.line(key), marker=styles.marker(key, size=8)))
    return fig


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


def front(model: str, results: Sequence[TrialResult], styles: Styles) -> go.Figure | None:
    """One model's Pareto front of throughput against p99 latency: every trial in its series' style, the front
    as a line through the trials no other beats on both."""
    ok = _measured(results)
    if len(ok) < 2:
        return None
    p99 = {id(r): latency_ms(r.latency, "p99") or 0.0 for r in ok}
    fig = go.Figure(layout=_layout(f"{model}: Pareto front", "latency p99 (ms)", "throughput (samples/s)"))
    for key, rs in _series(ok).items():
        fig.add_trace(go.Scatter(x=[p99[id(r)] for r in rs], y=[r.throughput_sps for r in rs], mode="markers",
                                 name=styles.name(key), text=[_hover(r, "p99") for r in rs],
                                 hovertemplate="%{text}<extra></extra>", marker=styles.marker(key, size=9)))
    top = sorted(pareto(ok, ["minimize", "maximize"], key=lambda r: (p99[id(r)], r.throughput_sps or 0.0)),
                 key=lambda r: p99[id(r)])
    fig.add_trace(go.Scatter(x=[p99[id(r)] for r in top], y=[r.throughput_sps for r in top], mode="lines",
                             name="Pareto front", line={"color": "black", "width": 1.5, "shape": "hv"},
                             hoverinfo="skip"))
    _log_if_wide(fig, list(p99.values()))
    return fig


def study_front(study: Study) -> go.Figure | None:
    """A tuning study's Pareto front over its first two objectives."""
    if len(study.objectives) < 2:
        return None
    a, b = study.objectives[:2]
    feasible = [r for r in study.records if r.role == "search" and r.state == "complete" and r.feasible]
    if len(feasible) < 2:
        return None
    top = sorted(pareto(feasible, [DIRECTION[o] for o in study.objectives], key=lambda r: r.values),
                 key=lambda r: r.values[0])
    fig = go.Figure(layout=_layout(f"Pareto front of run {study.run_id}", f"{a} ({UNIT.get(a, 'ms')})",
                                   f"{b} ({UNIT.get(b, 'ms')})"))
    fig.add_trace(go.Scatter(x=[r.values[0] for r in feasible], y=[r.values[1] for r in feasible], mode="markers",
                             name="measured", text=[_describe(r) for r in feasible],
                             hovertemplate="%{text}<extra></extra>", marker={"color": "#9aa5b1", "size": 8}))
    fig.add_trace(go.Scatter(x=[r.values[0] for r in top], y=[r.values[1] for r in top], mode="markers",
                             name="Pareto front", text=[_describe(r) for r in top],
                             hovertemplate="%{text}<extra>front</extra>", marker={"color": "#d62728", "size": 11}))
    return fig


RoofKey = tuple[str, str, str]  # the roofs' backend, device, precision


def roof_key(r: TrialResult) -> RoofKey | None:
    """The roofs a trial is placed under (as its peaks were measured), or None without a roofline."""
    if r.roofline is None:
        return None
    p = r.roofline.peaks
    return p.backend, p.device, p.precision


def by_roofs(results: Sequence[TrialResult]) -> dict[RoofKey, list[TrialResult]]:
    """Trials with a roofline, grouped by the roofs they sit under: a chart each."""
    out: dict[RoofKey, list[TrialResult]] = {}
    for r in results:
        key = roof_key(r)
        if key is not None:
            out.setdefault(key, []).append(r)
    return dict(sorted(out.items()))


def _roof_hover(r: TrialResult) -> str:
    roof = r.roofline
    assert roof is not None
    fraction = roof.achieved_flops_per_s / roof.attainable_flops_per_s if roof.attainable_flops_per_s else 0.0
    return (f"{_label(r)}<br>intensity {numbers.si(roof.intensity, 'FLOP/B')}, "
            f"{numbers.si(roof.achieved_flops_per_s, 'FLOP/s')} ({fraction:.0%} of the "
            f"{numbers.si(roof.attainable_flops_per_s, 'FLOP/s')} attainable)<br>{roof.verdict}")


def roofline(key: RoofKey, results: Sequence[TrialResult], styles: Styles) -> go.Figure | None:
    """One runtime/device/precision's roofs on log-log axes (the memory roof rising to the ridge, the compute
    roof flat after it) and each trial at its arithmetic intensity and achieved FLOP/s. Roofs measured apart
    (another environment, another day) are each drawn, so a trial can be read against its own."""
    placed = [r for r in results if r.roofline is not None and math.isfinite(r.roofline.intensity)
              and r.roofline.intensity > 0 and r.roofline.achieved_flops_per_s > 0]
    if not placed:
        return None
    roofs = {(p.flops_per_s, p.bytes_per_s): p for p in (r.roofline.peaks for r in placed if r.roofline)}
    xs = [r.roofline.intensity for r in placed if r.roofline] + [p.ridge for p in roofs.values()]
    lo, hi = min(xs) / 4, max(xs) * 4  # room either side of the lowest and highest intensity or ridge
    backend, device, prec = key
    fig = go.Figure(layout=_layout(f"Roofline: {backend}/{device} {prec}", "arithmetic intensity (FLOP/byte)",
                                   "achieved (FLOP/s)"))
    fig.update_xaxes(type="log", exponentformat="SI")
    fig.update_yaxes(type="log", exponentformat="SI")
    for i, p in enumerate(roofs.values()):
        where = f" ({p.environment_id[:6]})" if len(roofs) > 1 and p.environment_id else ""
        fig.add_trace(go.Scatter(
            x=[lo, p.ridge, hi], y=[lo * p.bytes_per_s, p.flops_per_s, p.flops_per_s], mode="lines",
            name=f"roofs{where}", line={"color": "black" if i == 0 else "#7f7f7f", "width": 2},
            text=[f"memory roof {numbers.si(p.bytes_per_s, 'B/s')} ({p.stream})",
                  f"ridge {numbers.si(p.ridge, 'FLOP/B')}",
                  f"compute roof {numbers.si(p.flops_per_s, 'FLOP/s')} ({p.gemm})"],
            hovertemplate="%{text}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=[p.ridge], y=[p.flops_per_s], mode="markers", name=f"ridge{where}", showlegend=False,
            marker={"symbol": "diamond-open", "size": 10, "color": "black"},
            text=[f"ridge point: {numbers.si(p.ridge, 'FLOP/B')}, {numbers.si(p.flops_per_s, 'FLOP/s')}"],
            hovertemplate="%{text}<extra></extra>"))
    for series, rs in _series(placed).items():
        fig.add_trace(go.Scatter(
            x=[r.roofline.intensity for r in rs if r.roofline],
            y=[r.roofline.achieved_flops_per_s for r in rs if r.roofline], mode="markers",
            name=styles.name(series), text=[_roof_hover(r) for r in rs], hovertemplate="%{text}<extra></extra>",
            marker=styles.marker(series, size=11)))
    return fig


def ensemble(r: TrialResult) -> go.Figure | None:
    """One ensemble trial: each member's median latency alone and in the ensemble (its interference), beside
    the whole ensemble's latency one after another and at the same time (co-location's gain)."""
    if r.spec.ensemble is None or not r.members or r.latency is None:
        return None
    names = [m.model or f"#{m.member}" for m in r.members]
    alone = [m.alone_latency_median_ms for m in r.members]
    together = [m.latency_median_ms for m in r.members]
    if r.ensemble is not None:
        names.append("whole ensemble")
        alone.append(r.ensemble.sequential_latency_median_ms)
        together.append(r.latency.p50_ms)
    fig = go.Figure(layout=_layout(f"Ensemble {row_name(r)}", "", "median latency (ms)", barmode="group"))
    fig.add_trace(go.Bar(x=names, y=alone, name="alone (whole ensemble: one after another)",
                         hovertemplate="%{x}: %{y:.3g} ms<extra>alone / one after another</extra>"))
    fig.add_trace(go.Bar(x=names, y=together, name="at the same time",
                         text=[f"{m.interference:.2f}×" if m.interference else "" for m in r.members]
                         + ([f"gain {r.ensemble.gain:.2f}×" if r.ensemble.gain else ""] if r.ensemble else []),
                         textposition="outside", hovertemplate="%{x}: %{y:.3g} ms<extra>at the same time</extra>"))
    return fig
