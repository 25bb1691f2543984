"""The accuracy table: every metric of every trial, each formatted as people read it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from inferlab.records.accuracy import INFO, format_metric
from inferlab.records.trial import TrialResult
from inferlab.report.rows import precision


def accuracy_table(results: Sequence[TrialResult], title: str | None = None) -> Table:
    names = list(dict.fromkeys(n for r in results if r.accuracy for n in r.accuracy.metrics))
    t = Table(title=title, header_style="bold")
    for col in ("model", "backend", "device", "prec", "batch", "dataset", "samples"):
        t.add_column(col, justify="right" if col in ("batch", "samples") else "left")
    for n in names:
        t.add_column(INFO[n].label if n in INFO else n, justify="right")
    t.add_column("status")
    for r in results:
        s = r.spec
        acc = r.accuracy
        head = [s.model.name, s.backend, s.device, precision(r), str(s.batch)]
        if acc is None:
            t.add_row(*head, "", "", *[""] * len(names), f"{r.status}: {(r.reason or '')[:80]}")
            continue
        t.add_row(*head, f"{acc.dataset} ({acc.dataset_hash[:8]})", str(acc.samples),
                  *[format_metric(n, acc.metrics.get(n)) for n in names], r.status)
    return t
