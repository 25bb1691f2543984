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
