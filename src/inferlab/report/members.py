"""The members of multi-device trials (each device's part of the requests and its own figures) and of ensemble
trials (each model in the ensemble beside itself alone, the interference ratio and its own accuracy), under
the trial's total, for the terminal, the Markdown and the HTML report."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from inferlab.records.accuracy import format_metric
from inferlab.records.trial import TrialResult
from inferlab.report import numbers
from inferlab.report.rows import row_name

MEMBER_COLUMNS = ("trial", "member", "requests", "share", "FPS", "median ms", "p99 ms")
MEMBER_NUMERIC = ("requests", "share", "FPS", "median ms", "p99 ms")
ENSEMBLE_COLUMNS = ("trial", "member", "FPS", "median ms", "p99 ms", "alone FPS", "alone median ms", "interference",
                    "accuracy")
ENSEMBLE_NUMERIC = ENSEMBLE_COLUMNS[2:]


def member_rows(results: Sequence[TrialResult]) -> list[list[str]]:
    """A row per member device of every multi-device trial (after a row with the trial's total), as cells of
    MEMBER_COLUMNS."""
    rows = []
    for r in results:
        if not r.members or r.spec.ensemble is not None:
            continue
        rows.append([row_name(r), "all", str(r.requests), "100%", numbers.fps(r.throughput_sps),
                     numbers.ms(r.latency.p50_ms if r.latency else None),
                     numbers.ms(r.latency.p99_ms if r.latency else None)])
        rows += [["", f"{m.device} #{m.member}", str(m.requests), f"{m.share:.1%}", numbers.fps(m.throughput_sps),
                  numbers.ms(m.latency_median_ms), numbers.ms(m.latency_p99_ms)] for m in r.members]
    return rows


def _ratio(v: float | None) -> str:
    return f"{v:.2f}×" if v is not None else "–"


def ensemble_rows(results: Sequence[TrialResult]) -> list[list[str]]:
    """Per ensemble trial, as cells of ENSEMBLE_COLUMNS: the members at the same time (the trial's figures and
    its combined accuracy), one after another (with co-location's gain), then each member in the ensemble
    beside itself alone."""
    rows = []
    for r in results:
        if r.spec.ensemble is None:
            continue
        metric = r.accuracy.metrics if r.accuracy else {}
        first = next(iter(metric), None)
        acc = format_metric(first, metric[first]) if first else "–"
        e = r.ensemble
        rows.append([row_name(r), "all, at the same time", numbers.fps(r.throughput_sps),
                     numbers.ms(r.latency.p50_ms if r.latency else None),
                     numbers.ms(r.latency.p99_ms if r.latency else None), "", "", "",
                     f"{acc} ({r.spec.ensemble.combine})"])
        if e is not None:
            rows.append(["", f"all, one after another (gain {_ratio(e.gain)})",
                         numbers.fps(e.sequential_throughput_sps), numbers.ms(e.sequential_latency_median_ms),
                         "", "", "", "", ""])
        rows += [["", m.model or f"#{m.member}", numbers.fps(m.throughput_sps), numbers.ms(m.latency_median_ms),
                  numbers.ms(m.latency_p99_ms), numbers.fps(m.alone_throughput_sps),
                  numbers.ms(m.alone_latency_median_ms), _ratio(m.interference),
                  format_metric(first, m.accuracy) if first and m.accuracy is not None else "–"] for m in r.members]
    return rows


def _table(columns: Sequence[str], numeric: Sequence[str], rows: list[list[str]], title: str) -> Table:
    t = Table(*columns, title=title, header_style="bold")
    for c in t.columns:
        if str(c.header) in numeric:
            c.justify = "right"
    for row in rows:
        t.add_row(*row)
    return t


def members_tables(results: Sequence[TrialResult]) -> list[Table]:
    """The members tables for the terminal: multi-device members, ensemble members; those that have rows."""
    out = []
    if rows := member_rows(results):
        out.append(_table(MEMBER_COLUMNS, MEMBER_NUMERIC, rows,
                          "multi-device members: each device's part of the measured window"))
    if rows := ensemble_rows(results):
        out.append(_table(ENSEMBLE_COLUMNS, ENSEMBLE_NUMERIC, rows, "ensembles: the members at the same time, one "
                          "after another, and each alone (interference: median latency in the ensemble / alone)"))
    return out
