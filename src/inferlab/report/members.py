"""The members of multi-device trials: each member's part of the requests and its own figures, beside the
trial's total, for the terminal, the Markdown and the HTML report."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from inferlab.records.trial import TrialResult
from inferlab.report import numbers
from inferlab.report.rows import row_name

MEMBER_COLUMNS = ("trial", "member", "requests", "share", "FPS", "median ms", "p99 ms")
MEMBER_NUMERIC = ("requests", "share", "FPS", "median ms", "p99 ms")


def member_rows(results: Sequence[TrialResult]) -> list[list[str]]:
    """A row per member of every trial that has members (after a row with the trial's total), as cells of
    MEMBER_COLUMNS."""
    rows = []
    for r in results:
        if not r.members:
            continue
        rows.append([row_name(r), "all", str(r.requests), "100%", numbers.fps(r.throughput_sps),
                     numbers.ms(r.latency.p50_ms if r.latency else None),
                     numbers.ms(r.latency.p99_ms if r.latency else None)])
        rows += [["", f"{m.device} #{m.member}", str(m.requests), f"{m.share:.1%}", numbers.fps(m.throughput_sps),
                  numbers.ms(m.latency_median_ms), numbers.ms(m.latency_p99_ms)] for m in r.members]
    return rows


def members_table(results: Sequence[TrialResult]) -> Table | None:
    """The members table for the terminal; None when no trial has members."""
    rows = member_rows(results)
    if not rows:
        return None
    t = Table(*MEMBER_COLUMNS, title="multi-device members: each device's part of the measured window",
              header_style="bold")
    for c in t.columns:
        if str(c.header) in MEMBER_NUMERIC:
            c.justify = "right"
    for row in rows:
        t.add_row(*row)
    return t
