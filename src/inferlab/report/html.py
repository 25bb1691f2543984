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

from inferlab.accuracy.metrics import format_drop
from inferlab.records.accuracy import INFO, format_metric
from inferlab.records.trial import TrialResult
from inferlab.report import charts, numbers
from inferlab.report.published import LEVELS, MISSING, WARNED, Published, published, to_csv, to_markdown
from inferlab.report.rows import Footnotes, ci_text, knobs, precision, row_name
from inferlab.tune.leaders import leaders
from inferlab.tune.objectives import latency_ms
from inferlab.tune.record import TrialRecord, measured_count
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


@dataclass(frozen=True)
class Chart:
    id: str
    figure: str             # plotly's JSON
    caption: str | None = None


@dataclass(frozen=True)
class Section:
    id: str
    heading: str
    charts: list[Chart]     # none: the section says its data is absent


TRIAL_COLUMNS = ("model", "backend", "device", "prec", "knobs", "batch", "mode", "status", "FPS", "95% CI",
                 "median ms", "p99 ms", "notes")


def trial_rows(results: Sequence[TrialResult]) -> tuple[list[list[str]], list[str]]:
    """Every trial as cells of TRIAL_COLUMNS (notes: its warnings, or why it failed), and the footnotes that say
    why a CI is absent."""
    notes = Footnotes()
    rows = []
    for r in results:
        s = r.spec
        head = [s.model.name, s.backend, s.device, precision(r), knobs(r), str(s.batch), s.mode, r.status]
        if r.status in ("failed", "timeout"):
            rows.append([*head, MISSING, "", MISSING, MISSING, r.reason or ""])
            continue
        lat = r.latency
        rows.append([*head, numbers.fps(r.throughput_sps), ci_text(r, notes),
                     numbers.ms(lat.median_3sigma_ms if lat else None), numbers.ms(lat.p99_ms if lat else None),
                     "; ".join(f"{WARNED} {w}" for w in r.warnings)])
    return rows, notes.lines()


def warned(results: Sequence[TrialResult]) -> list[tuple[str, list[str]]]:
    """The trials with measurement warnings: their label and the warnings."""
    return [(row_name(r), list(r.warnings)) for r in results if r.warnings]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()


def _charts(kind: str, figures: dict[str, tuple[Any, str | None]]) -> list[Chart]:
    """A chart per model that has one, with its caption."""
    return [Chart(f"{kind}-{_slug(model)}", pio.to_json(fig, validate=False), caption)
            for model, (fig, caption) in figures.items() if fig is not None]


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
    out["summary"] = list(best.get("summary") or [])
    objective = study.objectives[0]
    baseline = TrialRecord.from_json(best["baseline"]) if best.get("baseline") else None
    unit = UNIT.get(objective, "ms")
    out["leaders"] = [{
        "device": row.device, "precision": row.precision, "best": row.best,
        "configuration": row.record.point.describe() if row.record.point else "",
        "value": f"{row.value:.5g} {unit}", "speedup": f"{row.speedup:.2f}×" if row.speedup is not None else "—",
        "defaults": f"{row.defaults.values[0]:.5g} {unit} at batch {row.defaults.point.batch} (trial "
                    f"#{row.defaults.position})" if row.defaults is not None and row.defaults.point else
                    "not measured at this batch"}
        for row in leaders(study.records, objective, baseline)]
    return out


def _table(results: Sequence[TrialResult], environments: dict[str, dict[str, Any] | None]) -> Published:
    return published(results, lambda env_id: environment_label(environments.get(env_id or ""), env_id))


def _markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[str] = ()) -> list[str]:
    def cell(v: str) -> str:
        return " ".join(v.split()).replace("|", "\\|")  # one line, pipes escaped

    return ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if h in numeric else "---" for h in head) + "|",
            *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]]


def render_tables(runs: Sequence[RunData], environments: dict[str, dict[str, Any] | None], fmt: str) -> str:
    """The report's tables as Markdown (published, warnings, every trial, tuning, accuracy) or CSV (the
    published table)."""
    results = [r for run in runs for r in run.results]
    table = _table(results, environments)
    if fmt == "csv":
        return to_csv(table)
    out = [f"# inferlab report: {', '.join(run.name for run in runs)}", "",
           f"Runs: {', '.join(run.id for run in runs)}", "", "## Published table", "",
           f"Cells: FPS · median latency (DLI's 3σ median); {MISSING}: not measured; {WARNED}: the trial shown has "
           "measurement warnings.", "", to_markdown(table)]
    cautions = warned(results)
    if cautions:
        out += ["## Measurement warnings", "", *[f"- **{label}**: {'; '.join(ws)}" for label, ws in cautions], ""]
    rows, footnotes = trial_rows(results)
    if rows:
        out += ["## Every trial", "", *_markdown_table(TRIAL_COLUMNS, rows, ("batch", "FPS", "95% CI", "median ms",
                                                                              "p99 ms")), ""]
        out += [*(f"{line}  " for line in footnotes), ""] if footnotes else []
    studies = [study_summary(run.study) for run in runs if run.study is not None]
    if studies:
        out += ["## Tuning", "", "| run | objectives | constraints | measured | pruned | failed | stopped because "
                "| winner |", "|---|---|---|---:|---:|---:|---|---|"]
        out += [f"| {s['run']} | {s['objectives']} | {s['constraints']} | {s['measured']} | {s['pruned']} | "
                f"{s['failed']} | {s['stop']} | {s['winner'] or s['message'] or s['status']} |" for s in studies]
        out.append("")
        for s in studies:
            if s["leaders"]:
                out += [f"### Tuning {s['run']}: per device", "", *_markdown_table(
                    ["device", "precision", "configuration", "value", "vs defaults", "defaults"],
                    [[r["device"], r["precision"] + (" (best)" if r["best"] else ""), r["configuration"],
                      r["value"], r["speedup"], r["defaults"]] for r in s["leaders"]], ("value", "vs defaults")), ""]
            if s["summary"]:
                out += [*(f"- {line}" for line in s["summary"]), ""]
    names, acc = accuracy_rows(results)
    if acc:
        out += ["## Accuracy", "", "| model | backend | device | precision | batch | mode | dataset | "
                + " | ".join(names) + " | drop |", "|" + "---|" * (8 + len(names))]
        out += ["| " + " | ".join([r["model"], r["backend"], r["device"], r["precision"], str(r["batch"]), r["mode"],
                                   r["dataset"], *r["metrics"], r["drop"]]) + " |" for r in acc]
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
    models = charts.by_model(results)
    styles = charts.Styles(results)
    limit = f" (threshold {threshold:g} ms)" if threshold is not None else " (no latency threshold given)"

    def sweet(rs: Sequence[TrialResult]) -> str | None:
        b = charts.sweet_spot(rs, threshold, pct)
        return None if b is None else (f"{row_name(b)}: {numbers.fps(b.throughput_sps)} FPS at {pct} "
                                       f"{numbers.ms(latency_ms(b.latency, pct))} ms{limit}")

    sections = [
        Section("scatter", "Throughput against latency", _charts("scatter", {
            m: (charts.throughput_latency(m, rs, styles, threshold, pct), sweet(rs)) for m, rs in models.items()})),
        Section("batch", "Batch-size scan per runtime", _charts("batch", {
            m: (charts.batch_scan(m, rs, styles), None) for m, rs in models.items()})),
        *[Section(f"history-{s.run_id}", f"Tuning history ({s.run_id})", _charts("history", {
            s.run_id: (charts.history(s), None)})) for s in studies],
        Section("front", "Pareto front", _charts("front", {
            **{m: (charts.front(m, rs, styles), None) for m, rs in models.items()},
            **{f"study {s.run_id}": (charts.study_front(s), None) for s in studies}})),
    ]
    metric_names, acc_rows = accuracy_rows(results)
    rows, footnotes = trial_rows(results)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    failed = [(row_name(r), r.status, r.reason or "") for r in results if r.status in ("failed", "timeout")]
    return env.get_template("report.html.j2").render(
        title="inferlab report: " + ", ".join(run.name for run in runs), runs=runs,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), table=table, levels=LEVELS,
        groups=table.header_groups(), sections=sections, metric_names=metric_names, acc_rows=acc_rows,
        studies=[study_summary(s) for s in studies], failed=failed, warned=warned(results), warn_mark=WARNED,
        trial_columns=TRIAL_COLUMNS, trial_rows=rows, footnotes=footnotes, missing=MISSING,
        plotly_js=get_plotlyjs())
