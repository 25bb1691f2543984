"""The HTML report: one self-contained offline file (plotly.js embedded once, no CDN) with the published
table, the charts, tuning summaries and the accuracy table, read from stored runs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import plotly.io as pio
from plotly.offline import get_plotlyjs

from inferlab.accuracy.metrics import INFO, format_drop, format_metric
from inferlab.measure.trial import TrialResult
from inferlab.report import charts
from inferlab.report.published import LEVELS, MISSING, Published, published, to_csv, to_markdown
from inferlab.report.rows import precision
from inferlab.tune.objectives import latency_ms
from inferlab.tune.record import measured_count
from inferlab.tune.space import Point
from inferlab.tune.spec import UNIT

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class RunData:
    """One stored run as the report reads it."""

    id: str
    name: str
    results: list[TrialResult]
    study: charts.Study | None = None


def environment_label(env: dict[str, Any] | None, env_id: str | None) -> str:
    """A readable name for an environment: its CPU (and GPUs) and how many CPUs trials could use."""
    if env is None:
        return f"env {env_id[:6]}" if env_id else MISSING
    cpu = str(env.get("cpu_model") or "cpu").replace("(R)", "").replace("(TM)", "").replace(" CPU", "")
    gpus = env.get("gpus") or []
    gpu = f" + {len(gpus)}× {gpus[0].get('name', 'GPU')}" if gpus and isinstance(gpus[0], dict) else ""
    return f"{' '.join(cpu.split())} ×{env.get('cpu_affinity', '?')}{gpu} ({(env_id or '')[:6]})"


def accuracy_rows(results: Sequence[TrialResult]) -> tuple[list[str], list[dict[str, Any]]]:
    """Every result with accuracy; the drop of the first metric is measured from the FP32 median of the same
    model on the same dataset."""
    scored = [(r, r.accuracy) for r in results if r.accuracy is not None and r.accuracy.metrics]
    names = list(dict.fromkeys(n for _, acc in scored for n in acc.metrics))
    fp32: dict[tuple[str, str], list[float]] = {}
    for r, acc in scored:
        if precision(r) == "f32":
            fp32.setdefault((r.spec.model.name, acc.dataset_hash), []).append(next(iter(acc.metrics.values())))
    rows = []
    for r, acc in scored:
        first, value = next(iter(acc.metrics.items()))
        ref = fp32.get((r.spec.model.name, acc.dataset_hash))
        rows.append({"model": r.spec.model.name, "backend": r.spec.backend, "device": r.spec.device,
                     "precision": precision(r), "batch": r.spec.batch, "mode": r.spec.mode,
                     "dataset": f"{acc.dataset} ({acc.samples})",
                     "metrics": [format_metric(n, acc.metrics.get(n)) if n in acc.metrics else MISSING
                                 for n in names],
                     "drop": format_drop(first, statistics.median(ref) - value) if ref else MISSING})
    return [INFO[n].label if n in INFO else n for n in names], rows


def _figure(fig: Any) -> str | None:
    return pio.to_json(fig, validate=False) if fig is not None else None


def study_summary(study: charts.Study) -> dict[str, Any]:
    """A tuning study in one table row: goal, counts, why it stopped, and its winner (or why there is none)."""
    best = study.best
    out: dict[str, Any] = {"run": study.run_id, "objectives": ", ".join(study.objectives),
                           "constraints": study.constraints or "none", "measured": measured_count(study.records),
                           "pruned": sum(r.state == "pruned" for r in study.records),
                           "failed": sum(r.state == "failed" for r in study.records), "status": study.status,
                           "stop": best.get("stop_reason", ""), "winner": None, "message": best.get("message")}
    if best.get("record"):
        point = Point.from_json(best["record"]["point"])
        values = ", ".join(f"{o} {v:.5g} {UNIT.get(o, 'ms')}" for o, v in zip(study.objectives, best["values"],
                                                                            strict=False))
        out["winner"] = f"{point.describe()}: {values}"
    return out


def _table(results: Sequence[TrialResult], environments: dict[str, dict[str, Any] | None]) -> Published:
    return published(results, lambda env_id: environment_label(environments.get(env_id or ""), env_id))


def render_tables(runs: Sequence[RunData], environments: dict[str, dict[str, Any] | None], fmt: str) -> str:
    """The report's tables as Markdown (published, tuning, accuracy) or CSV (the published table)."""
    results = [r for run in runs for r in run.results]
    table = _table(results, environments)
    if fmt == "csv":
        return to_csv(table)
    out = [f"# inferlab report: {', '.join(run.name for run in runs)}", "",
           f"Runs: {', '.join(run.id for run in runs)}", "", "## Published table", "",
           f"Cells: FPS · median latency (DLI's 3σ median); {MISSING}: not measured.", "", to_markdown(table)]
    studies = [study_summary(run.study) for run in runs if run.study is not None]
    if studies:
        out += ["## Tuning", "", "| run | objectives | constraints | measured | pruned | failed | stopped because "
                "| winner |", "|---|---|---|---:|---:|---:|---|---|"]
        out += [f"| {s['run']} | {s['objectives']} | {s['constraints']} | {s['measured']} | {s['pruned']} | "
                f"{s['failed']} | {s['stop']} | {s['winner'] or s['message'] or s['status']} |" for s in studies]
        out.append("")
    names, rows = accuracy_rows(results)
    if rows:
        out += ["## Accuracy", "", "| model | backend | device | precision | batch | mode | dataset | "
                + " | ".join(names) + " | drop |", "|" + "---|" * (8 + len(names))]
        out += ["| " + " | ".join([r["model"], r["backend"], r["device"], r["precision"], str(r["batch"]), r["mode"],
                                   r["dataset"], *r["metrics"], r["drop"]]) + " |" for r in rows]
        out.append("")
    return "\n".join(out)


def render(runs: Sequence[RunData], environments: dict[str, dict[str, Any] | None],
           threshold_ms: float | None = None, percentile: str | None = None) -> str:
    results = [r for run in runs for r in run.results]
    studies = [run.study for run in runs if run.study is not None]
    threshold = threshold_ms if threshold_ms is not None else next(
        (s.threshold_ms for s in studies if s.threshold_ms is not None), None)
    pct = percentile or next((s.percentile for s in studies), "p99")
    table = _table(results, environments)
    sections = []
    spots = charts.sweet_spots(results, threshold, pct)
    sweet = "; ".join(f"{b.spec.label()}: {b.throughput_sps:,.1f} FPS at {pct} "
                      f"{latency_ms(b.latency, pct) or 0.0:.3f} ms" for b in spots.values()) or None
    if sweet is not None:
        sweet += f" (threshold {threshold:g} ms)" if threshold is not None else " (no latency threshold given)"
    sections.append(("scatter", "Throughput against latency", _figure(
        charts.throughput_latency(results, threshold, pct)), sweet))
    sections.append(("batch", "Batch-size scan per backend", _figure(charts.batch_scan(results)), None))
    for s in studies:
        sections.append((f"history-{s.run_id}", f"Tuning history ({s.run_id})", _figure(charts.history(s)), None))
    sections.append(("front", "Pareto front", _figure(charts.front(studies[0] if studies else None, results)), None))
    metric_names, acc_rows = accuracy_rows(results)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    failed = [(r.spec.label(), r.status, r.reason or "") for r in results if r.status in ("failed", "timeout")]
    return env.get_template("report.html.j2").render(
        title="inferlab report: " + ", ".join(run.name for run in runs), runs=runs,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), table=table, levels=LEVELS,
        groups=table.header_groups(), sections=sections, metric_names=metric_names, acc_rows=acc_rows,
        studies=[study_summary(s) for s in studies], failed=failed,
        missing=MISSING, plotly_js=get_plotlyjs())
