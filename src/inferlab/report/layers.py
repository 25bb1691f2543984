"""Per-layer profiles read side by side: two trials' layers matched by name (else by type and order among that
type), their differences largest first, the sums against each trial's latency and the layers whose precision
changed; and one trial's hot layers, as the report shows them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.markup import escape
from rich.table import Table

from inferlab.errors import ConfigError
from inferlab.records.analysis import LayerProfile, LayerRecord
from inferlab.records.trial import TrialResult
from inferlab.report import numbers
from inferlab.report.compare import Row

HOT = 10   # the report's hot layers per trial

Match = Literal["name", "type", "none"]

# The same operation under each runtime's name (ONNX Runtime's Conv and FusedConv, OpenVINO's Convolution and
# GroupConvolution, PyTorch's aten::conv2d), so that a layer another runtime renamed still finds its partner by
# type. OpenVINO keeps depthwise convolutions apart as GroupConvolution where ONNX Runtime has one Conv; folding
# them keeps the two runtimes' counts of convolutions, and so their order among them, aligned.
_TYPE_ALIASES = {
    "convolution": "conv", "groupconvolution": "conv", "conv1d": "conv", "conv2d": "conv", "conv3d": "conv",
    "convolutionbackpropdata": "convtranspose", "convtranspose2d": "convtranspose",
    "fullyconnected": "matmul", "gemm": "matmul", "linear": "matmul", "addmm": "matmul", "mm": "matmul",
    "bmm": "matmul", "innerproduct": "matmul",
    "maxpool2d": "maxpool", "avgpool2d": "averagepool", "adaptiveavgpool2d": "globalaveragepool",
    "batchnormalization": "batchnorm", "batchnorm2d": "batchnorm", "batchnorminference": "batchnorm",
}

# Precisions as the runtimes write them (OpenVINO: FP32, U8; PyTorch: float32), in one spelling.
_PRECISION_ALIASES = {"F32": "FP32", "FLOAT32": "FP32", "FLOAT": "FP32", "F16": "FP16", "FLOAT16": "FP16",
                      "HALF": "FP16", "BFLOAT16": "BF16", "F64": "FP64", "FLOAT64": "FP64", "DOUBLE": "FP64",
                      "INT8": "I8", "UINT8": "U8", "INT4": "I4", "UINT4": "U4", "INT16": "I16", "INT32": "I32",
                      "INT64": "I64", "QINT8": "I8", "QUINT8": "U8"}
_FULL_FLOAT = {"FP32", "FP64"}
_HALF_FLOAT = {"FP16", "BF16", "FP8"}


def canonical_type(op_type: str) -> str:
    """An operation type with the runtime's namespace, a fusion prefix, case and punctuation taken off."""
    word = re.sub(r"[^a-z0-9]", "", op_type.rsplit("::", 1)[-1].lower())
    if word.startswith("fused") and len(word) > 5:  # ONNX Runtime's FusedConv is a Conv with its activation
        word = word[5:]
    return _TYPE_ALIASES.get(word, word)


def canonical_precision(precision: str | None) -> str | None:
    if not precision:
        return None
    word = precision.strip().upper()
    return _PRECISION_ALIASES.get(word, word)


def _kind(precision: str) -> str:
    if precision in _FULL_FLOAT:
        return "full"
    if precision in _HALF_FLOAT:
        return "half"
    if re.fullmatch(r"[IU]\d+", precision):
        return "integer"
    return "other"


@dataclass(frozen=True)
class LayerRow:
    """A layer of A beside its partner in B; `a` or `b` is None for a layer the other runtime has no partner
    for (fused into a neighbour, or never run)."""

    a: LayerRecord | None
    b: LayerRecord | None
    matched_by: Match

    @property
    def either(self) -> LayerRecord:
        layer = self.a or self.b
        assert layer is not None, "a row has a layer on one side at least"
        return layer

    @property
    def name(self) -> str:
        if self.a is not None and self.b is not None and self.a.name != self.b.name:
            return f"{self.a.name} ↔ {self.b.name}"
        return self.either.name

    @property
    def type(self) -> str:
        if self.a is not None and self.b is not None and self.a.type != self.b.type:
            return f"{self.a.type} ↔ {self.b.type}"
        return self.either.type

    @property
    def diff_ms(self) -> float:
        """B's time less A's: positive when B spends longer in this layer."""
        return (self.b.time_ms if self.b else 0.0) - (self.a.time_ms if self.a else 0.0)

    @property
    def ratio(self) -> float | None:
        """B's time over A's, where both have the layer and A's time is not zero."""
        if self.a is None or self.b is None or self.a.time_ms <= 0:
            return None
        return self.b.time_ms / self.a.time_ms


@dataclass(frozen=True)
class PrecisionChange:
    """Matched layers that ran in one precision in A and another in B."""

    before: str
    after: str
    layers: tuple[str, ...]

    @property
    def meaning(self) -> str:
        was, now = _kind(self.before), _kind(self.after)
        if now == "integer" and was != "integer":
            return "became integer kernels"
        if was == "integer" and now in ("full", "half"):
            return "became floating-point kernels"
        if was == "full" and now == "half":
            return "became half-precision kernels"
        if was == "half" and now == "full":
            return "became full-precision kernels"
        return "changed precision"

    def text(self, names: int = 5) -> str:
        shown = ", ".join(self.layers[:names]) + (f" and {len(self.layers) - names} more"
                                                  if len(self.layers) > names else "")
        count = f"{len(self.layers)} layer{'s' if len(self.layers) != 1 else ''}"
        return f"{count} {self.before} → {self.after} ({self.meaning}): {shown}"


@dataclass(frozen=True)
class LayerComparison:
    """Two trials' layer profiles compared: rows largest difference first, and each trial's figures."""

    rows: tuple[LayerRow, ...]
    a: LayerProfile
    b: LayerProfile
    a_latency_ms: float | None     # each trial's measured median latency (DLI's 3σ median)
    b_latency_ms: float | None
    precision_changes: tuple[PrecisionChange, ...]

    def precision_line(self) -> str:
        """One line on the layers whose precision changed from A to B."""
        if not self.precision_changes:
            return "no matched layer changed precision"
        return "precision changed: " + "; ".join(c.text() for c in self.precision_changes)

    def totals(self) -> list[Row]:
        """The sum of each side's layers against its profiled inference and its measured latency: how much of
        the time the layers account for, and how far a profiled run strays from the measured one."""
        def covered(layers_ms: float, whole: float | None) -> str:
            return f"{numbers.ms(layers_ms)} ms = {layers_ms / whole:.0%}" if whole else numbers.MISSING

        a, b = self.a, self.b
        rows = [
            Row("sum of layers", f"{numbers.ms(a.total_ms)} ms", f"{numbers.ms(b.total_ms)} ms",
                _change(a.total_ms, b.total_ms)),
            Row("profiled inference (median wall)", f"{numbers.ms(a.wall_ms)} ms", f"{numbers.ms(b.wall_ms)} ms",
                _change(a.wall_ms, b.wall_ms)),
            Row("measured median latency (3σ)", _ms(self.a_latency_ms), _ms(self.b_latency_ms),
                _change(self.a_latency_ms, self.b_latency_ms)),
            Row("layers / profiled inference", covered(a.total_ms, a.wall_ms), covered(b.total_ms, b.wall_ms)),
            Row("layers / measured latency", covered(a.total_ms, self.a_latency_ms),
                covered(b.total_ms, self.b_latency_ms)),
            Row("layers (matched / unmatched)", _count(self.rows, "a"), _count(self.rows, "b")),
        ]
        return rows


def _ms(v: float | None) -> str:
    return numbers.MISSING if v is None else f"{numbers.ms(v)} ms"


def _change(a: float | None, b: float | None) -> str:
    return f"{b / a:.2f}× the time" if a and b is not None else ""


def _count(rows: Sequence[LayerRow], side: Literal["a", "b"]) -> str:
    mine = [r for r in rows if getattr(r, side) is not None]
    matched = sum(r.matched_by != "none" for r in mine)
    return f"{len(mine)} ({matched} / {len(mine) - matched})"


def match_layers(a: LayerProfile, b: LayerProfile) -> list[LayerRow]:
    """Pair A's layers with B's: by name first; the rest by canonical type and rank among the layers of that
    type in execution order (the k-th convolution of A with the k-th of B), which pairs the nodes of one model
    that two runtimes name differently; what is left has no partner. Largest absolute difference first."""
    rows: list[LayerRow] = []
    by_name: dict[str, list[LayerRecord]] = {}
    for layer in b.layers:
        by_name.setdefault(layer.name, []).append(layer)
    left_a: list[LayerRecord] = []
    taken: set[int] = set()     # ids of B's layers already paired
    for layer in a.layers:
        partners = by_name.get(layer.name)
        if partners:
            partner = partners.pop(0)  # a name repeated (rare) pairs in execution order
            taken.add(id(partner))
            rows.append(LayerRow(layer, partner, "name"))
        else:
            left_a.append(layer)
    ranks_b = {rank: layer for rank, layer in _ranked(b.layers)}
    rank_of_a = {id(layer): rank for rank, layer in _ranked(a.layers)}
    for layer in left_a:
        by_type = ranks_b.get(rank_of_a[id(layer)])
        if by_type is not None and id(by_type) not in taken:
            taken.add(id(by_type))
            rows.append(LayerRow(layer, by_type, "type"))
        else:
            rows.append(LayerRow(layer, None, "none"))
    rows += [LayerRow(None, layer, "none") for layer in b.layers if id(layer) not in taken]
    # ties (equal differences) keep A's execution order, then B's
    return sorted(rows, key=lambda r: (-abs(r.diff_ms), r.a.order if r.a else 1 << 30, r.b.order if r.b else 0))


def _ranked(layers: Sequence[LayerRecord]) -> list[tuple[tuple[str, int], LayerRecord]]:
    """Each layer with (its canonical type, its rank among the layers of that type in execution order)."""
    seen: dict[str, int] = {}
    out = []
    for layer in sorted(layers, key=lambda x: x.order):
        kind = canonical_type(layer.type)
        out.append(((kind, seen.get(kind, 0)), layer))
        seen[kind] = seen.get(kind, 0) + 1
    return out


def precision_changes(rows: Sequence[LayerRow]) -> list[PrecisionChange]:
    """Matched layers whose precision differs, grouped by the change (most layers first)."""
    groups: dict[tuple[str, str], list[LayerRecord]] = {}
    for r in rows:
        if r.a is None or r.b is None:
            continue
        pa, pb = canonical_precision(r.a.precision), canonical_precision(r.b.precision)
        if pa and pb and pa != pb:
            groups.setdefault((pa, pb), []).append(r.a)
    return sorted((PrecisionChange(pa, pb, tuple(x.name for x in sorted(ls, key=lambda x: x.order)))
                   for (pa, pb), ls in groups.items()), key=lambda c: (-len(c.layers), c.before, c.after))


def require_profiles(a: TrialResult, b: TrialResult, a_name: str = "A", b_name: str = "B") -> None:
    """Raise the one-line error that names the trials without a layer profile and how to get one."""
    missing = [name for name, r in ((a_name, a), (b_name, b)) if r.layers is None or not r.layers.layers]
    if not missing:
        return
    profiled = [name for name, r in ((a_name, a), (b_name, b)) if name in missing and "layers" in r.spec.profile]
    why = (f"; {' and '.join(profiled)} asked for one but its runtime returned none (see the trial's warnings)"
           if profiled else "")
    raise ConfigError(f"--layers: {' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} no layer "
                      f"profile; measure with `--profile layers` on `inferlab bench` or `inferlab run` (or "
                      f"`profile: [layers]` in the config){why}")


def compare_layers(a: TrialResult, b: TrialResult) -> LayerComparison:
    """A's and B's layer profiles compared (both must have one: `require_profiles` says so otherwise)."""
    require_profiles(a, b)
    assert a.layers is not None and b.layers is not None
    rows = match_layers(a.layers, b.layers)
    return LayerComparison(tuple(rows), a.layers, b.layers,
                           a.latency.median_3sigma_ms if a.latency else None,
                           b.latency.median_3sigma_ms if b.latency else None, tuple(precision_changes(rows)))


def _signed(v: float) -> str:
    return ("+" if v >= 0 else "−") + numbers.ms(abs(v))


def layers_table(cmp: LayerComparison, title: str, top: int | None = None, a_name: str = "A",
                 b_name: str = "B") -> Table:
    """The matched layers, largest difference first (the first `top` of them; a last line sums the rest)."""
    t = Table(title=title, header_style="bold", caption_justify="left")
    columns = [("layer", "left"), ("type", "left"), (f"{a_name} kernel", "left"), (f"{a_name} prec", "left"),
               (f"{a_name} ms", "right"), (f"{b_name} kernel", "left"), (f"{b_name} prec", "left"),
               (f"{b_name} ms", "right"), ("Δ ms", "right"), (f"{b_name}/{a_name}", "right")]
    for col, justify in columns:
        t.add_column(col, justify=justify, no_wrap=col.endswith("ms"))  # type: ignore[arg-type]
    shown = cmp.rows if top is None else cmp.rows[:top]
    for r in shown:
        ratio = r.ratio
        if r.a is None:
            note = f"only in {b_name}"
        elif r.b is None:
            note = f"only in {a_name}"
        else:
            note = f"{ratio:.2f}×" if ratio is not None else numbers.MISSING
        if r.matched_by == "type":
            note += " [dim](by type)[/]"
        t.add_row(escape(r.name), escape(r.type), *_side(r.a), *_side(r.b), _signed(r.diff_ms), note)
    rest = cmp.rows[len(shown):]
    if rest:
        t.add_row(f"[dim]… {len(rest)} more layers[/]", "", "", "", "", "", "", "",
                  _signed(sum(r.diff_ms for r in rest)), "")
    t.caption = f"Δ: {b_name}'s time per inference less {a_name}'s"
    if any(r.matched_by == "type" for r in shown):
        t.caption += "; ↔ (by type): layers named differently, paired by type and rank among the layers of that type"
    return t


def _side(layer: LayerRecord | None) -> list[str]:
    if layer is None:
        return [numbers.MISSING, numbers.MISSING, numbers.MISSING]
    return [escape(kernel_text(layer.kernel)), escape(layer.precision or numbers.MISSING), numbers.ms(layer.time_ms)]


KERNEL_CHARS = 60


def kernel_text(kernel: str | None) -> str:
    """A kernel's name as a table shows it: a CUDA kernel's C++ signature cut to its function's name
    (`void at::native::(anonymous namespace)::max_pool_forward_nchw<c10::Half, int>(int, ...)` →
    `max_pool_forward_nchw`), anything still long shortened; the store keeps the full name."""
    if not kernel:
        return numbers.MISSING
    text = kernel.replace("(anonymous namespace)::", "").removeprefix("void ")
    text = re.split(r"[<(]", text, maxsplit=1)[0].rsplit("::", 1)[-1] or text
    return text if len(text) <= KERNEL_CHARS else text[:KERNEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class HotLayers:
    """One trial's slowest layers and how their sum compares with the trial's figures, for the report."""

    trial: str
    runtime: str
    rows: list[list[str]]       # HOT_COLUMNS
    coverage: str               # the sum of the layers against the profiled inference and the measured latency
    notes: tuple[str, ...]
    graph_file: str | None      # the runtime's optimised graph, as the result stored it


HOT_COLUMNS = ("layer", "type", "kernel", "precision", "ms", "share")


def hot_layers(profile: LayerProfile, n: int = HOT) -> list[LayerRecord]:
    """The `n` layers that take the longest, longest first (execution order among equals)."""
    return sorted(profile.layers, key=lambda x: (-x.time_ms, x.order))[:n]


def coverage(profile: LayerProfile, latency_ms: float | None) -> str:
    """The sum of the layers set against the profiled inference and the trial's measured median latency: a sum
    far below either means time spent outside the layers (framework, copies), far above, a profiler's cost."""
    parts = [f"sum of {len(profile.layers)} layers {numbers.ms(profile.total_ms)} ms"]
    if profile.wall_ms:
        parts.append(f"{profile.total_ms / profile.wall_ms:.0%} of the profiled inference "
                     f"({numbers.ms(profile.wall_ms)} ms, median of {profile.iterations})")
    if latency_ms:
        parts.append(f"{profile.total_ms / latency_ms:.0%} of the measured median latency "
                     f"({numbers.ms(latency_ms)} ms, 3σ)")
    return "; ".join(parts)


def hot_summary(result: TrialResult, label: str, n: int = HOT) -> HotLayers | None:
    """A trial's hot layers and coverage line; None when it has no layer profile."""
    profile = result.layers
    if profile is None:
        return None
    rows = [[x.name, x.type, kernel_text(x.kernel), x.precision or numbers.MISSING, numbers.ms(x.time_ms),
             f"{x.share:.1%}"] for x in hot_layers(profile, n)]
    latency = result.latency.median_3sigma_ms if result.latency else None
    return HotLayers(label, profile.runtime, rows, coverage(profile, latency), profile.notes, result.graph_file)
