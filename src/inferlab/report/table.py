"""The terminal results table (rich): FPS with its CI, DLI's 3-sigma median latency, tail latency, costs."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from inferlab.records.trial import TrialResult
from inferlab.report import numbers
from inferlab.report.rows import NOT_MEASURED, Footnotes, ci_text, knobs, precision, row_name

NO_WRAP = {"batch", "95% CI", "median ms", "p99 ms", "load s", "RSS MB"}


def _num(v: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def _status(r: TrialResult) -> str:
    if r.loadgen is not None and r.loadgen.validity is not None and r.status in ("ok", "invalid"):
        return "[green]VALID[/]" if r.status == "ok" else "[yellow]INVALID[/]"
    return {"ok": "[green]ok[/]", "failed": "[red]failed[/]", "timeout": "[yellow]timeout[/]",
            "invalid": "[yellow]invalid[/]"}[r.status]


def _latencies(r: TrialResult) -> tuple[float | None, float | None]:
    """Median and p99: LoadGen's own (per query) for the latency-bound scenarios; per request otherwise
    (an Offline sample's LoadGen latency is its completion time within the one big query)."""
    if r.loadgen is not None and r.loadgen.percentiles_ms and r.spec.mode != "Offline":
        return r.loadgen.percentiles_ms.get("50"), r.loadgen.percentiles_ms.get("99")
    lat = r.latency
    return (lat.median_3sigma_ms, lat.p99_ms) if lat else (None, None)


def results_table(results: Sequence[TrialResult], title: str | None = None) -> Table:
    """Every trial, a row each. Under the table: why a CI is absent (footnotes of its "—") and each trial's
    measurement warnings, a line per trial, marked ⚠n in its status cell."""
    t = Table(title=title, header_style="bold", show_lines=False, caption_justify="left", caption_style="")
    scenarios = any(r.loadgen is not None for r in results)
    accuracy = any(r.accuracy is not None for r in results)
    columns = [("model", "left"), ("backend", "left"), ("device", "left"), ("prec", "left"), ("knobs", "left"),
               ("batch", "right"), ("mode", "left"), ("status", "left"), ("FPS", "right"), ("95% CI", "right"),
               ("median ms", "right"), ("p99 ms", "right"), ("load s", "right"), ("RSS MB", "right"),
               ("J/sample", "right")]
    if accuracy:
        columns.insert(8, ("accuracy", "right"))
    if scenarios:
        columns.insert(8, ("MLPerf result", "right"))
    for col, justify in columns:
        # figures never wrap or truncate; text columns (and FPS, which carries a failure's reason) give way
        t.add_column(col, justify=justify, no_wrap=col in NO_WRAP)  # type: ignore[arg-type]
    reasons = Footnotes()  # why a CI is absent
    warned: list[str] = []
    for r in results:
        s = r.spec
        status = _status(r)
        if r.warnings:
            warned.append(f"[yellow]⚠{len(warned) + 1}[/] {escape(row_name(r))}: {escape('; '.join(r.warnings))}")
            status += f" [yellow]⚠{len(warned)}[/]"
        head = [*(escape(v) for v in (s.model.name, s.backend, s.device, precision(r), knobs(r), str(s.batch),
                                      s.mode)), status]
        scenario = [r.loadgen.short() if r.loadgen is not None else ""] if scenarios else []
        scenario += [r.accuracy.headline() if r.accuracy is not None else ""] if accuracy else []
        if r.status in ("failed", "timeout"):  # no figures (INVALID has LoadGen's)
            t.add_row(*head, *([""] * (scenarios + accuracy)), f"[dim]{escape((r.reason or '')[:70])}[/]", "", "",
                      "", "", _num(r.peak_rss_mb, "{:.0f}"), "")
            continue
        median, p99 = _latencies(r)
        energy = _num(r.energy_j_per_sample, "{:.4f}") if r.energy_j_per_sample is not None else NOT_MEASURED
        t.add_row(*head, *scenario, numbers.fps(r.throughput_sps), ci_text(r, reasons), numbers.ms(median),
                  numbers.ms(p99), _num(r.load_s), _num(r.peak_rss_mb, "{:.0f}"), energy)
    notes = []
    if scenarios:
        notes.append("MLPerf result: LoadGen's headline metric (* its early-stopping estimate); median/p99 per query")
    notes += [escape(line) for line in reasons.lines()]
    if warned:
        notes += ["[yellow]measurement warnings:[/]", *warned]
    if notes:
        t.caption = Text.from_markup("\n".join(notes))
    return t
