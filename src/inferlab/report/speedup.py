"""Each runtime against the model's source framework (DLI's "OpenVINO against the framework it was trained in"):
for a model whose experiment names its framework (models[].framework, bench --framework), every other trial's
throughput over the framework's trial of the same model, batch, environment, device and mode, with the
significance of the difference (Mann-Whitney U on the raw latencies, as `inferlab compare` judges it). A model
inferlab derived from it (a LiteRT INT8, an ONNX Runtime QDQ model: the store's lineage) is compared with the
framework's trial of the model it came from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from inferlab import backends
from inferlab.records.trial import TrialResult
from inferlab.report import numbers
from inferlab.report.compare import speed_verdict
from inferlab.report.rows import knobs, precision

COLUMNS = ("model", "batch", "device", "mode", "runtime", "precision", "knobs", "FPS", "framework", "framework FPS",
           "speed-up", "verdict")
NUMERIC = ("batch", "FPS", "framework FPS", "speed-up")
NOTE = ("Speed-up: the trial's throughput over the model's source framework's, on the same model, batch, machine, "
        "device and mode (the framework's trial with its default knobs where there is one). The verdict tests the "
        "raw latencies (Mann-Whitney U, p < 0.01; within 2% is no change).")


@dataclass(frozen=True)
class SpeedUp:
    result: TrialResult
    baseline: TrialResult
    ratio: float
    verdict: str

    def row(self) -> list[str]:
        s, b = self.result.spec, self.baseline.spec
        return [s.model.name if s.model.hash == b.model.hash or s.model.name != b.model.name else
                f"{s.model.name} (derived)", str(s.batch), s.device, s.mode, s.backend, precision(self.result),
                knobs(self.result) or "—", numbers.fps(self.result.throughput_sps),
                b.backend + (f" [{knobs(self.baseline)}]" if knobs(self.baseline) else ""),
                numbers.fps(self.baseline.throughput_sps), f"{self.ratio:.2f}×", self.verdict]


Place = tuple[str, int, str | None, str, str]


def _root(model_hash: str, parents: Mapping[str, str]) -> str:
    seen = {model_hash}
    while (up := parents.get(model_hash)) is not None and up not in seen:
        seen.add(up)
        model_hash = up
    return model_hash


def _place(r: TrialResult, parents: Mapping[str, str]) -> Place:
    s = r.spec
    return _root(s.model.hash, parents), s.batch, r.environment_id, s.device, s.mode


def _measured(r: TrialResult) -> bool:
    return r.status == "ok" and bool(r.throughput_sps) and r.spec.mode != "accuracy"


def baselines(results: Sequence[TrialResult], parents: Mapping[str, str] | None = None) -> dict[Place, TrialResult]:
    """The framework's trial for each place: the one with the fewest knobs away from their defaults (the
    framework as it is run out of the box), the faster of those."""
    out: dict[Place, TrialResult] = {}

    def rank(r: TrialResult) -> tuple[int, float]:
        return (len(backends.non_default(r.spec.backend, r.spec.device, r.spec.params)), -(r.throughput_sps or 0.0))

    for r in results:
        if _measured(r) and r.spec.framework and r.spec.backend == r.spec.framework:
            place = _place(r, parents or {})
            if place not in out or rank(r) < rank(out[place]):
                out[place] = r
    return out


def speedups(results: Sequence[TrialResult], parents: Mapping[str, str] | None = None) -> list[SpeedUp]:
    """Every measured trial of a model with a framework (or derived from one), against that framework's trial at
    its place (the framework's own other trials, e.g. with XLA, included)."""
    base = baselines(results, parents)
    out = []
    for r in results:
        b = base.get(_place(r, parents or {}))
        if b is None or r is b or not _measured(r):
            continue
        assert r.throughput_sps and b.throughput_sps
        ratio = r.throughput_sps / b.throughput_sps
        out.append(SpeedUp(r, b, ratio, speed_verdict(b.latencies_ns, r.latencies_ns, ratio)))
    return sorted(out, key=lambda u: (u.baseline.spec.model.name, u.result.spec.batch, u.result.spec.device,
                                      u.result.spec.mode, -u.ratio))


def chart(model: str, ups: Sequence[SpeedUp]) -> go.Figure:
    """One model's speed-ups as bars (one group per batch, device and mode), the framework at 1×."""
    from inferlab.report.charts import _layout

    fig = go.Figure(layout=_layout(f"{model}: speed-up over {ups[0].baseline.spec.backend}", "",
                                   "speed-up (× the framework's throughput)", barmode="group"))
    def where(u: SpeedUp) -> tuple[int, str, str]:
        return u.result.spec.batch, u.result.spec.device, u.result.spec.mode

    def label(u: SpeedUp) -> str:
        s = u.result.spec
        derived = f"{s.model.name} " if s.model.hash != u.baseline.spec.model.hash else ""
        changed = knobs(u.result)
        return f"{derived}{s.backend} {precision(u.result)}" + (f" [{changed}]" if changed else "")

    for batch, device, mode in sorted({where(u) for u in ups}):
        sel = [u for u in ups if where(u) == (batch, device, mode)]
        names = [label(u) for u in sel]
        fig.add_trace(go.Bar(x=names, y=[u.ratio for u in sel], name=f"b{batch} {device} {mode}",
                             text=[f"{u.ratio:.2f}×" for u in sel], textposition="outside",
                             customdata=[u.verdict for u in sel],
                             hovertemplate="%{x}: %{y:.3g}× (%{customdata})<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dot", annotation_text=ups[0].baseline.spec.backend, annotation_position="top left")
    fig.update_layout(height=520, margin={"l": 70, "r": 30, "t": 60, "b": 150}, legend={"y": -0.45})
    fig.update_xaxes(tickangle=-20)
    return fig


def charts_by_model(ups: Sequence[SpeedUp]) -> dict[str, go.Figure]:
    models: dict[str, list[SpeedUp]] = {}
    for u in ups:  # a derived model's bars stand beside its parent's
        models.setdefault(u.baseline.spec.model.name, []).append(u)
    return {m: chart(m, us) for m, us in models.items()}
