"""How the reports write figures: enough significant digits that neighbouring results stay apart (a 14 µs and a
15 µs latency, a 69,650 and a 69,700 FPS), and one mark for a value that is absent."""

from __future__ import annotations

import math

MISSING = "—"


def _decimals(v: float, significant: int) -> int:
    """Decimals that show `significant` digits of v."""
    if v == 0 or not math.isfinite(v):
        return 0
    return max(0, significant - 1 - math.floor(math.log10(abs(v))))


def ms(v: float | None) -> str:
    """A latency in ms: two decimals from 1 ms up, three significant digits below (0.0142, 0.142)."""
    if v is None or not math.isfinite(v):
        return MISSING
    return f"{v:.{max(2, _decimals(v, 3))}f}"


def fps_decimals(v: float) -> int:
    """Decimals of a throughput: four significant digits, none past the units from 1,000 up."""
    return _decimals(v, 4)


def fps(v: float | None, decimals: int | None = None) -> str:
    """A throughput (samples/s) with thousands separators: 69,701 · 120.4 · 9.135."""
    if v is None or not math.isfinite(v):
        return MISSING
    return f"{v:,.{fps_decimals(v) if decimals is None else decimals}f}"


def fps_ci(value: float | None, low: float | None, high: float | None) -> str | None:
    """A throughput CI at the headline's own precision, so the two read side by side; None when absent."""
    if low is None or high is None:
        return None
    d = fps_decimals(value if value else high)
    return f"{fps(low, d)}–{fps(high, d)}"


_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(v: float | None, unit: str) -> str:
    """An amount or rate with an SI prefix at three significant digits: 1.23 GFLOP/s, 45.6 MB/s, 812 FLOP."""
    if v is None or not math.isfinite(v):
        return MISSING
    shown = float(f"{v:.3g}")  # the prefix of the rounded value: 999.7 G is 1 T, not "1e+03 G"
    factor, prefix = next(((f, p) for f, p in _SI if abs(shown) >= f), (1.0, ""))
    return f"{shown / factor:.3g} {prefix}{unit}"
