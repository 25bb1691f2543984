"""Two results side by side: accuracy and its drop, output agreement, latency and throughput with the
speed-up and whether it is significant (Mann–Whitney U on the raw latencies), and model size."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.table import Table

from inferlab.accuracy.metrics import agreement, format_drop
from inferlab.models.artifact import model_size
from inferlab.records.accuracy import INFO, format_metric
from inferlab.records.trial import TrialResult
from inferlab.report import numbers
from inferlab.report.rows import precision

SIGNIFICANCE = 0.01      # p-value below which a latency difference is called significant
NEGLIGIBLE = 0.02        # and a speed-up closer to 1 than this is called no change anyway


@dataclass(frozen=True)
class Row:
    what: str
    a: str
    b: str
    change: str = ""


def _mb(n: int | None) -> str:
    return "—" if n is None else f"{n / 1e6:.3f} MB"


def speed_verdict(a_ns: np.ndarray | None, b_ns: np.ndarray | None, ratio: float) -> str:
    """'faster'/'slower' only when the difference is significant and not negligible."""
    if a_ns is None or b_ns is None or len(a_ns) < 5 or len(b_ns) < 5:
        return "significance unknown (no raw latencies)"
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(a_ns, b_ns, alternative="two-sided").pvalue)
    if p >= SIGNIFICANCE or abs(ratio - 1) < NEGLIGIBLE:
        return f"no significant change (p={p:.2g})"
    return f"{'faster' if ratio > 1 else 'slower'} (p={p:.2g})"


def compare(a: TrialResult, b: TrialResult) -> tuple[list[Row], list[str]]:
    """Rows of B against A, and notes on what makes them not comparable."""
    notes = []
    sa, sb = a.spec, b.spec
    if sa.batch != sb.batch:
        notes.append(f"batch differs ({sa.batch} vs {sb.batch}): speed is not comparable per request")
    if a.status not in ("ok", "invalid") or b.status not in ("ok", "invalid"):
        notes.append(f"not comparable: A {a.status}, B {b.status}")
    rows = [Row("model", f"{sa.model.name} ({sa.model.hash[:8]})", f"{sb.model.name} ({sb.model.hash[:8]})"),
            Row("runtime", f"{sa.backend}/{sa.device} {precision(a)} b{sa.batch} {sa.mode}",
                f"{sb.backend}/{sb.device} {precision(b)} b{sb.batch} {sb.mode}")]
    rows += _accuracy_rows(a, b, notes)
    rows += _speed_rows(a, b)
    size_a, size_b = model_size(sa.model.ref), model_size(sb.model.ref)
    rows.append(Row("model size", _mb(size_a), _mb(size_b),
                    f"{size_b / size_a:.2f}×" if size_a and size_b else ""))
    return rows, notes


def _accuracy_rows(a: TrialResult, b: TrialResult, notes: list[str]) -> list[Row]:
    rows: list[Row] = []
    acc_a, acc_b = a.accuracy, b.accuracy
    if acc_a is None or acc_b is None:
        return rows
    if acc_a.dataset_hash != acc_b.dataset_hash:
        notes.append("accuracy was measured on different data: the metrics are not comparable")
        return rows
    rows.append(Row("dataset", f"{acc_a.dataset} ({acc_a.samples})", f"{acc_b.dataset} ({acc_b.samples})"))
    for name in dict.fromkeys([*acc_a.metrics, *acc_b.metrics]):
        va, vb = acc_a.metrics.get(name, math.nan), acc_b.metrics.get(name, math.nan)
        label = INFO[name].label if name in INFO else name
        change = "" if math.isnan(va) or math.isnan(vb) else f"drop {format_drop(name, va - vb)}"
        rows.append(Row(label, format_metric(name, va), format_metric(name, vb), change))
    out_a, out_b = acc_a.load_outputs(), acc_b.load_outputs()
    if out_a is not None and out_b is not None and out_a.shape == out_b.shape:
        for name, value in agreement(out_b, out_a).items():
            rows.append(Row(f"B vs A: {INFO[name].label}", "", format_metric(name, value)))
    return rows


def _speed_rows(a: TrialResult, b: TrialResult) -> list[Row]:
    rows: list[Row] = []
    la, lb = a.latency, b.latency
    if la is not None and lb is not None:
        ratio = la.median_3sigma_ms / lb.median_3sigma_ms if lb.median_3sigma_ms else math.nan
        rows.append(Row("median latency (3σ)", f"{numbers.ms(la.median_3sigma_ms)} ms",
                        f"{numbers.ms(lb.median_3sigma_ms)} ms",
                        f"{ratio:.2f}× speed-up, {speed_verdict(a.latencies_ns, b.latencies_ns, ratio)}"))
        rows.append(Row("p99 latency", f"{numbers.ms(la.p99_ms)} ms", f"{numbers.ms(lb.p99_ms)} ms",
                        f"{la.p99_ms / lb.p99_ms:.2f}×" if lb.p99_ms else ""))
    if a.throughput_sps and b.throughput_sps:
        rows.append(Row("throughput", f"{numbers.fps(a.throughput_sps)} /s", f"{numbers.fps(b.throughput_sps)} /s",
                        f"{b.throughput_sps / a.throughput_sps:.2f}×"))
    return rows + _member_rows(a, b)


def _member_rows(a: TrialResult, b: TrialResult) -> list[Row]:
    """A multi-device trial's members, each with its share and throughput, side by side with the other trial's
    member of the same place in the device list (or its whole figure when it has no members)."""
    def cell(r: TrialResult, i: int) -> str:
        if not r.members:
            return f"{r.spec.device}: {numbers.fps(r.throughput_sps)} /s" if i == 0 else ""
        if i >= len(r.members):
            return ""
        m = r.members[i]
        if m.model is not None:  # an ensemble's member: its figures in the ensemble, and alone
            return (f"{m.model}: {numbers.fps(m.throughput_sps)} /s, p50 {numbers.ms(m.latency_median_ms)} ms "
                    f"(alone {numbers.ms(m.alone_latency_median_ms)} ms)")
        return (f"{m.device}: {m.share:.0%}, {numbers.fps(m.throughput_sps)} /s, "
                f"p50 {numbers.ms(m.latency_median_ms)} ms")

    count = max(len(a.members), len(b.members))
    return [Row(f"member {i}", cell(a, i), cell(b, i)) for i in range(count)] if count else []


def comparison_table(rows: list[Row], title: str, a_name: str = "A", b_name: str = "B") -> Table:
    t = Table(title=title, header_style="bold")
    for col, justify in (("", "left"), (a_name, "right"), (b_name, "right"), ("B vs A", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(r.what, r.a, r.b, r.change)
    return t
