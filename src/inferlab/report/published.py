"""DLI's published table: a row per (task, model, batch), columns grouped environment → backend → device →
precision → mode, each cell the FPS with its latency. A cell no trial measured is shown as missing, never 0."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich.table import Table

from inferlab.records.trial import TrialResult
from inferlab.report import numbers
from inferlab.report.rows import ci_missing_reason, precision
from inferlab.report.speedup import baselines, speedups

MISSING = numbers.MISSING
WARNED = "⚠"  # marks a cell whose trial has measurement warnings
LEVELS = ("environment", "backend", "device", "precision", "mode")


@dataclass(frozen=True, order=True)
class RowKey:
    task: str
    model: str
    batch: int


@dataclass(frozen=True, order=True)
class ColumnKey:
    environment: str
    backend: str
    device: str
    precision: str
    mode: str

    def parts(self) -> tuple[str, ...]:
        return (self.environment, self.backend, self.device, self.precision, self.mode)


@dataclass(frozen=True)
class Cell:
    fps: float | None          # the best FPS measured for this cell (None: every trial failed)
    latency_ms: float | None   # that trial's median latency (DLI's 3-sigma median)
    trials: int                # trials behind the cell (a sweep of knobs gives several)
    failed: int
    ci: tuple[float, float] | None = None   # that trial's 95% CI of the FPS
    ci_missing: str | None = None           # or why it has none
    warnings: tuple[str, ...] = ()          # that trial's measurement warnings
    speedup: float | None = None            # that trial's throughput over the model's source framework's
    framework: str | None = None            # that framework (with speedup None: this cell is the framework's)

    def text(self, mark: bool = False) -> str:
        """FPS · latency (· best of n) (· speed-up over the framework); with `mark`, a trailing ⚠ when the trial
        shown has warnings."""
        if self.fps is None:
            return f"failed ({self.failed})"
        best = f" · best of {self.trials}" if self.trials > 1 else ""
        lat = f" · {numbers.ms(self.latency_ms)} ms" if self.latency_ms is not None else ""
        against = ("" if self.framework is None else " · the framework" if self.speedup is None
                   else f" · {self.speedup:.2f}× {self.framework}")
        return f"{numbers.fps(self.fps)} FPS{lat}{best}{against}" + (f" {WARNED}" if mark and self.warnings else "")

    def details(self) -> str:
        """What the cell leaves out: the FPS's CI (or why there is none) and the trial's warnings."""
        if self.fps is None:
            return f"every trial failed ({self.failed})"
        ci = numbers.fps_ci(self.fps, *self.ci) if self.ci else None
        lines = [f"95% CI {ci} FPS" if ci else (self.ci_missing or "no CI")]
        return "\n".join(lines + [f"{WARNED} {w}" for w in self.warnings])


@dataclass
class Published:
    rows: list[RowKey]
    columns: list[ColumnKey]
    cells: dict[tuple[RowKey, ColumnKey], Cell]

    def cell(self, row: RowKey, col: ColumnKey) -> Cell | None:
        return self.cells.get((row, col))

    def text(self, row: RowKey, col: ColumnKey, mark: bool = False) -> str:
        c = self.cell(row, col)
        return MISSING if c is None else c.text(mark)

    def header_groups(self) -> list[list[tuple[str, int]]]:
        """For each level, the (label, span) runs of adjacent columns that share it and every level above."""
        out = []
        for level in range(len(LEVELS)):
            runs: list[tuple[str, int]] = []
            prev: tuple[str, ...] | None = None
            for col in self.columns:
                key = col.parts()[:level + 1]
                if key == prev:
                    runs[-1] = (runs[-1][0], runs[-1][1] + 1)
                else:
                    runs.append((key[-1], 1))
                prev = key
            out.append(runs)
        return out


def task_of(r: TrialResult) -> str:
    acc = r.spec.accuracy
    return acc.dataset.config.task if acc is not None else MISSING


def published(results: Sequence[TrialResult], environment: Callable[[str | None], str],
              parents: Mapping[str, str] | None = None) -> Published:
    """Build the table from speed results (accuracy-only trials have no FPS and are left to the accuracy table).
    `parents`: derived models' lineage (hash -> parent hash), for their speed-up over the framework."""
    groups: dict[tuple[RowKey, ColumnKey], list[TrialResult]] = {}
    labels: dict[str | None, str] = {}  # `environment` may read the store: once per environment, not per result
    for r in results:
        if r.spec.mode == "accuracy":
            continue
        s = r.spec
        if r.environment_id not in labels:
            labels[r.environment_id] = environment(r.environment_id)
        row = RowKey(task_of(r), s.model.name, s.batch)
        col = ColumnKey(labels[r.environment_id], s.backend, s.device, precision(r), s.mode)
        groups.setdefault((row, col), []).append(r)
    ups = {u.result.spec.key(): u.ratio for u in speedups(results, parents)}
    framework_of = {b.spec.key(): str(b.spec.backend) for b in baselines(results, parents).values()}
    framework_of.update({u.result.spec.key(): u.baseline.spec.backend for u in speedups(results, parents)})
    cells = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r.status == "ok" and r.throughput_sps is not None]
        best = max(ok, key=lambda r: r.throughput_sps or 0.0) if ok else None
        if best is None:
            cells[key] = Cell(None, None, len(rs), len(rs))
            continue
        lo, hi = best.throughput_ci_low_sps, best.throughput_ci_high_sps
        cells[key] = Cell(best.throughput_sps, best.latency.median_3sigma_ms if best.latency else None,
                          len(rs), len(rs) - len(ok), (lo, hi) if lo is not None and hi is not None else None,
                          ci_missing_reason(best), best.warnings, ups.get(best.spec.key()),
                          framework_of.get(best.spec.key()))
    rows = sorted({k[0] for k in cells})
    columns = sorted({k[1] for k in cells})
    return Published(rows, columns, cells)


def _flat_header(col: ColumnKey) -> str:
    return " / ".join(col.parts())


def to_rich(p: Published, title: str | None = None) -> Table:
    t = Table(title=title, header_style="bold", show_lines=False)
    for name in ("task", "model", "batch"):
        t.add_column(name, justify="right" if name == "batch" else "left")
    for col in p.columns:
        t.add_column("\n".join(col.parts()), justify="right")
    for row in p.rows:
        t.add_row(row.task, row.model, str(row.batch),
                  *[p.text(row, c, mark=True) if p.cell(row, c) else f"[dim]{MISSING}[/]" for c in p.columns])
    t.caption = (f"cells: FPS · median latency (DLI's 3σ median) · N× FRAMEWORK: speed-up over the model's source "
                 f"framework; {MISSING}: not measured; "
                 f"{WARNED}: the trial shown has measurement warnings (listed under every trial)")
    return t


def to_markdown(p: Published) -> str:
    head = ["task", "model", "batch", *[_flat_header(c) for c in p.columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for row in p.rows:
        lines.append("| " + " | ".join([row.task, row.model, str(row.batch),
                                        *[p.text(row, c, mark=True) for c in p.columns]]) + " |")
    return "\n".join(lines) + "\n"


def to_csv(p: Published) -> str:
    """Machine-readable: an FPS and a latency column per column group; a missing cell is empty."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "model", "batch", *[f"{_flat_header(c)} {what}" for c in p.columns
                                            for what in ("fps", "latency_ms")]])
    for row in p.rows:
        values: list[object] = [row.task, row.model, row.batch]
        for c in p.columns:
            cell = p.cell(row, c)
            values += ["" if cell is None or cell.fps is None else f"{cell.fps:.3f}",
                       "" if cell is None or cell.latency_ms is None else f"{cell.latency_ms:.6g}"]
        w.writerow(values)
    return buf.getvalue()
