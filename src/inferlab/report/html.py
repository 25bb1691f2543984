"""The HTML report: one self-contained offline file (plotly.js embedded once, no CDN) with the published
table, the charts, per-layer profiles, rooflines, tuning summaries and the accuracy table, read from stored runs."""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import plotly.io as pio
from plotly.offline import get_plotlyjs

from inferlab.accuracy.metrics import format_drop
from inferlab.records.accuracy import INFO, format_metric
from inferlab.records.trial import TrialResult
from inferlab.report import charts, numbers
from inferlab.report.layers import HOT, HOT_COLUMNS, HotLayers, hot_summary
from inferlab.report.members import (
    ENSEMBLE_COLUMNS,
    ENSEMBLE_NUMERIC,
    MEMBER_COLUMNS,
    MEMBER_NUMERIC,
    ensemble_rows,
    member_rows,
)
from inferlab.report.published import LEVELS, MISSING, WARNED, Published, published, to_csv, to_markdown
from inferlab.report.rows import Footnotes, ci_text, knobs, precision, row_name
from inferlab.report.speedup import COLUMNS as SPEEDUP_COLUMNS
from inferlab.report.speedup import NOTE as SPEEDUP_NOTE
from inferlab.report.speedup import NUMERIC as SPEEDUP_NUMERIC
from inferlab.report.speedup import charts_by_model as speedup_charts
from inferlab.report.speedup import speedups
from inferlab.tune.leaders import leaders
from inferlab.tune.objectives import latency_ms
from inferlab.tune.record import TrialRecord, measured_count
from inferlab.tune.space import Point
from inferlab.tune.spec import UNIT

TEMPLATES = Path(__file__).parent / "templates"
ENSEMBLE_NOTE = ("Co-located ensembles, measured in one trial on the same loaded sessions: every member alone, the "
                 "members one after another, then at the same time (the trial's own figures). Interference is a "
                 "member's median latency in the ensemble over its median alone; the gain is the throughput at the "
                 "same time over one after another.")


@dataclass
class RunData:
    """One stored run as the report reads it."""

    id: str
    name: str
    results: list[TrialResult]
    study: charts.Study | None = None
    parents: dict[str, str] = field(default_factory=dict)  # a derived model's hash -> the hash it came from


def _parents(runs: Sequence[RunData]) -> dict[str, str]:
    return {k: v for run in runs for k, v in run.parents.items()}


def environment_label(env: dict[str, Any] | None, env_id: str | None) -> str:
    """A readable name for an environment: its CPU (and GPUs) and how many CPUs trials could use."""
    if env is None:
        return f"env {env_id[:6]}" if env_id else MISSING
    cpu = str(env.get("cpu_model") or "cpu").replace("(R)", "").replace("(TM)", "").replace(" CPU", "")
    gpus = env.get("gpus") or []
    gpu = f" + {len(gpus)}× {gpus[0].get('name', 'GPU')}" if gpus and isinstance(gpus[0], dict) else ""
    return f"{' '.join(cpu.split())} ×{env.get('cpu_affinity', '?')}{gpu} ({(env_id or '')[:6]})"


def accuracy_rows(results: Sequence[TrialResult],
                  parents: Mapping[str, str] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Every result with accuracy; the drop of the first metric is measured from the FP32 median of the same
    model on the same dataset, or, for a model derived from another (`parents`: hash -> its parent's hash),
    of the model it was derived from, when that model is among the results."""
    scored = [(r, r.accuracy) for r in results if r.accuracy is not None and r.accuracy.metrics]
    names = list(dict.fromkeys(n for _, acc in scored for n in acc.metrics))
    fp32: dict[tuple[str, str], list[float]] = {}
    for r, acc in scored:
        if precision(r) == "f32":
            fp32.setdefault((r.spec.model.name, acc.dataset_hash), []).append(next(iter(acc.metrics.values())))
    named = {r.spec.model.hash: r.spec.model.name for r, _ in scored}

    def reference(r: TrialResult, dataset_hash: str) -> list[float] | None:
        ref, model, seen = fp32.get((r.spec.model.name, dataset_hash)), r.spec.model.hash, set()
        while ref is None and parents and model in parents and model not in seen:
            seen.add(model)
            model = parents[model]
            ref = fp32.get((named[model], dataset_hash)) if model in named else None
        return ref

    rows = []
    for r, acc in scored:
        first, value = next(iter(acc.metrics.items()))
        ref = reference(r, acc.dataset_hash)
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


@dataclass(frozen=True)
class TrialLayers:
    """A trial's hot layers, and the link to its runtime's optimised graph (None without one)."""

    hot: HotLayers
    graph_href: str | None

    @property
    def graph_name(self) -> str:
        return Path(self.hot.graph_file or "").name


@dataclass(frozen=True)
class RunLayers:
    """The profiled trials of one run."""

    id: str
    name: str
    trials: list[TrialLayers]


def graph_href(graph_file: str, output: Path | None) -> str:
    """A link to a trial's graph file: relative to the report's folder when the report's path is known (report and
    trial files then move together), the file's own URI otherwise."""
    path = Path(graph_file).resolve()
    if output is not None:
        try:
            return quote(Path(os.path.relpath(path, output.resolve().parent)).as_posix())
        except ValueError:  # on another drive (Windows) no relative path exists
            pass
    return path.as_uri()


def layer_sections(runs: Sequence[RunData], output: Path | None = None) -> list[RunLayers]:
    """Per run, each trial with a layer profile: its hot layers, the sum of its layers against its latency, and
    the link to its optimised graph."""
    out = []
    for run in runs:
        trials = [TrialLayers(hot, graph_href(hot.graph_file, output) if hot.graph_file else None)
                  for r in run.results if (hot := hot_summary(r, row_name(r))) is not None]
        if trials:
            out.append(RunLayers(run.id, run.name, trials))
    return out


ROOFLINE_COLUMNS = ("trial", "roofs", "FLOP/sample", "bytes/sample", "intensity", "achieved", "attainable",
                    "of attainable", "verdict", "why")
ROOFLINE_NUMERIC = ("FLOP/sample", "bytes/sample", "intensity", "achieved", "attainable", "of attainable")


def roofline_rows(results: Sequence[TrialResult]) -> list[list[str]]:
    """Every trial with a roofline as cells of ROOFLINE_COLUMNS: its work, where it sits, the verdict and why."""
    rows = []
    for r in results:
        roof = r.roofline
        if roof is None:
            continue
        p = roof.peaks
        attainable = roof.attainable_flops_per_s
        rows.append([row_name(r), f"{p.backend}/{p.device} {p.precision}: {numbers.si(p.flops_per_s, 'FLOP/s')}, "
                     f"{numbers.si(p.bytes_per_s, 'B/s')}", numbers.si(roof.flops_per_sample, "FLOP"),
                     numbers.si(roof.bytes_per_sample, "B"), numbers.si(roof.intensity, "FLOP/B"),
                     numbers.si(roof.achieved_flops_per_s, "FLOP/s"), numbers.si(attainable, "FLOP/s"),
                     f"{roof.achieved_flops_per_s / attainable:.0%}" if attainable else MISSING, roof.verdict,
                     roof.why])
    return rows


def _roofline_charts(results: Sequence[TrialResult], styles: charts.Styles) -> list[Chart]:
    return _charts("roofline", {" ".join(key): (charts.roofline(key, rs, styles), None)
                                for key, rs in charts.by_roofs(results).items()})


def _table(results: Sequence[TrialResult], environments: dict[str, dict[str, Any] | None],
           parents: dict[str, str]) -> Published:
    return published(results, lambda env_id: environment_label(environments.get(env_id or ""), env_id), parents)


def _markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[str] = ()) -> list[str]:
    def cell(v: str) -> str:
        return " ".join(v.split()).replace("|", "\\|")  # one line, pipes escaped

    return ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if h in numeric else "---" for h in head) + "|",
            *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]]


def _markdown_layers(runs: Sequence[RunData], output: Path | None) -> list[str]:
    sections = layer_sections(runs, output)
    if not sections:
        return []
    out = ["## Per-layer profiles", "", f"Each profiled trial's {HOT} slowest layers per inference, and the sum of "
           "all its layers against the profiled inference and the measured median latency.", ""]
    for run in sections:
        out += [f"### Run {run.id} ({run.name})", ""]
        for t in run.trials:
            out += [f"#### {t.hot.trial}", "", t.hot.coverage + "  "]
            if t.graph_href:
                out.append(f"optimised graph ({t.hot.runtime}): [{t.graph_name}]({t.graph_href})"
                           + "  ")
            out += [*(f"{note}  " for note in t.hot.notes), "",
                    *_markdown_table(HOT_COLUMNS, t.hot.rows, ("ms", "share")), ""]
    return out


def render_tables(runs: Sequence[RunData], environments: dict[str, dict[str, Any] | None], fmt: str,
                  output: Path | None = None) -> str:
    """The report's tables as Markdown (published, warnings, every trial, tuning, per-layer profiles, rooflines,
    accuracy) or CSV (the published table). `output`: where the report goes, so links to trial files are
    relative to it."""
    results = [r for run in runs for r in run.results]
    table = _table(results, environments, _parents(runs))
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
    out += _markdown_layers(runs, output)
    members = member_rows(results)
    if members:
        out += ["## Multi-device members", "", "Each member device's part of the measured window, under the trial's "
                "total.", "", *_markdown_table(MEMBER_COLUMNS, members, MEMBER_NUMERIC), ""]
    ensembles = ensemble_rows(results)
    if ensembles:
        out += ["## Ensembles", "", ENSEMBLE_NOTE, "", *_markdown_table(ENSEMBLE_COLUMNS, ensembles, ENSEMBLE_NUMERIC),
                ""]
    roofs = roofline_rows(results)
    if roofs:
        out += ["## Roofline", "", "Each trial's work per sample, where it sits under its device's roofs (measured "
                "through the same runtime and precision), and why.", "",
                *_markdown_table(ROOFLINE_COLUMNS, roofs, ROOFLINE_NUMERIC), ""]
    ups = speedups(results, _parents(runs))
    if ups:
        out += ["## Speed-up over the source framework", "", SPEEDUP_NOTE, "",
                *_markdown_table(SPEEDUP_COLUMNS, [u.row() for u in ups], SPEEDUP_NUMERIC), ""]
    names, acc = accuracy_rows(results, _parents(runs))
    if acc:
        out += ["## Accuracy", "", "| model | backend | device | precision | batch | mode | dataset | "
                + " | ".join(names) + " | drop |", "|" + "---|" * (8 + len(names))]
        out += ["| " + " | ".join([r["model"], r["backend"], r["device"], r["precision"], str(r["batch"]), r["mode"],
                                   r["dataset"], *r["metrics"], r["drop"]]) + " |" for r in acc]
        out.append("")
    return "\n".join(out)


def render(runs: Sequence[RunData], environments: dict[str, dict[str, Any] | None],
           threshold_ms: float | None = None, percentile: str | None = None, output: Path | None = None) -> str:
    """The HTML report. `output`: where it goes, so links to trial files (optimised graphs) are relative to it."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2").render(report_context(runs, environments, threshold_ms, percentile,
                                                                    output), plotly_js=get_plotlyjs())


def report_context(runs: Sequence[RunData], environments: dict[str, dict[str, Any] | None],
                   threshold_ms: float | None = None, percentile: str | None = None,
                   output: Path | None = None) -> dict[str, Any]:
    """What the report's template shows (the workbench renders the same with its own page around it), without
    plotly.js itself."""
    results = [r for run in runs for r in run.results]
    studies = [run.study for run in runs if run.study is not None]
    threshold = threshold_ms if threshold_ms is not None else next(
        (s.threshold_ms for s in studies if s.threshold_ms is not None), None)
    pct = percentile or next((s.percentile for s in studies), "p99")
    table = _table(results, environments, _parents(runs))
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
    metric_names, acc_rows = accuracy_rows(results, _parents(runs))
    rows, footnotes = trial_rows(results)
    ups = speedups(results, _parents(runs))
    failed = [(row_name(r), r.status, r.reason or "") for r in results if r.status in ("failed", "timeout")]
    return dict(
        title="inferlab report: " + ", ".join(run.name for run in runs), runs=runs,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), table=table, levels=LEVELS,
        groups=table.header_groups(), sections=sections, metric_names=metric_names, acc_rows=acc_rows,
        studies=[study_summary(s) for s in studies], failed=failed, warned=warned(results), warn_mark=WARNED,
        trial_columns=TRIAL_COLUMNS, trial_rows=rows, footnotes=footnotes, missing=MISSING,
        layer_runs=layer_sections(runs, output), hot=HOT, hot_columns=HOT_COLUMNS,
        roofline_charts=_roofline_charts(results, styles), roofline_columns=ROOFLINE_COLUMNS,
        roofline_numeric=ROOFLINE_NUMERIC, roofline_rows=roofline_rows(results), member_columns=MEMBER_COLUMNS,
        member_numeric=MEMBER_NUMERIC, member_rows=member_rows(results), ensemble_charts=_charts("ensemble", {
            row_name(r): (charts.ensemble(r), None) for r in results if r.spec.ensemble is not None}),
        ensemble_columns=ENSEMBLE_COLUMNS,
        ensemble_numeric=ENSEMBLE_NUMERIC, ensemble_rows=ensemble_rows(results), ensemble_note=ENSEMBLE_NOTE,
        speedup_charts=_charts("speedup", {m: (fig, None) for m, fig in speedup_charts(ups).items()}),
        speedup_columns=SPEEDUP_COLUMNS, speedup_numeric=SPEEDUP_NUMERIC, speedup_rows=[u.row() for u in ups],
        speedup_note=SPEEDUP_NOTE)
