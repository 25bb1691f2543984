"""`inferlab analyze`: a model's complexity (FLOPs, integer ops, parameters, weights by precision, activation
memory, INT8 share) per layer and in total, as a table or JSON."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from inferlab.cli.app import console
from inferlab.errors import ConfigError
from inferlab.report.numbers import si

if TYPE_CHECKING:
    from inferlab.api.analysis import Complexity, LayerCost

ORDERS = ("size", "graph")


def _num(n: float) -> str:
    """A count with an SI prefix: 1.23 G, 45.6 M, 789."""
    return si(n, "").rstrip()


def _bytes(n: float) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{int(n)} B"


def layers_table(c: Complexity, order: str, top: int) -> Table:
    rows: list[LayerCost] = list(c.layers)
    if order == "size":
        rows.sort(key=lambda x: (x.ops, x.other_ops, x.activation_bytes), reverse=True)
    shown = rows[:top] if top > 0 else rows
    total_ops = c.flops or 1
    what = "largest first" if order == "size" else "in graph order"
    title = f"{c.model}: {len(shown)} of {len(rows)} layers, {what} (batch {c.batch})"
    t = Table(title=title, header_style="bold")
    for col in ("layer", "type", "precision", "MACs", "FLOPs", "int ops", "share", "other ops", "params",
                "weights", "activations"):
        t.add_column(col, justify="left" if col in ("layer", "type", "precision") else "right",
                     overflow="fold" if col == "layer" else "ellipsis")
    for x in shown:
        t.add_row(escape(x.name), x.type, x.precision, _num(x.macs) if x.macs else "", _num(x.flops) if x.flops else "",
                  _num(x.int_ops) if x.int_ops else "", f"{x.ops / total_ops:.1%}" if x.ops else "",
                  _num(x.other_ops) if x.other_ops else "", _num(x.params) if x.params else "",
                  _bytes(x.weight_bytes) if x.weight_bytes else "", _bytes(x.activation_bytes))
    if len(shown) < len(rows):
        t.caption = f"--top {len(rows)} (or 0) shows every layer; --format json gives them all"
    return t


def totals_table(c: Complexity) -> Table:
    t = Table(title=f"{c.model}: totals (batch {c.batch})", show_header=False, header_style="bold")
    t.add_column("what", style="bold")
    t.add_column("value")
    inputs = ", ".join(f"{i.name} {'x'.join(map(str, i.shape)) or 'scalar'} {i.dtype}" for i in c.inputs)
    t.add_row("inputs", escape(inputs))
    t.add_row("GFLOP (float, conv/matmul)", f"{c.float_flops / 1e9:.4f}  ({c.macs - c.int8_macs:,} MACs)")
    t.add_row("GIOP (INT8, conv/matmul)", f"{c.int_ops / 1e9:.4f}  ({c.int8_macs:,} MACs)")
    t.add_row("INT8 share", f"{c.int8_share:.1%} of the conv/matmul MACs")
    t.add_row("other ops (elementwise ...)", f"{c.other_ops / 1e9:.4f} G")
    t.add_row("parameters", f"{c.params:,}")
    t.add_row("weights", f"{_bytes(c.weight_bytes)}: " + ", ".join(
        f"{w.precision} {_bytes(w.bytes)} ({w.params:,})" for w in c.weights))
    t.add_row("activations", f"{_bytes(c.activation_bytes)} (every activation once, the inputs' "
                             f"{_bytes(c.input_bytes)} included)")
    t.add_row("min memory", f"{_bytes(c.min_memory_bytes)} (weights + the largest set of activations alive at once, "
                            f"{_bytes(c.peak_activation_bytes)})")
    t.add_row("max memory", f"{_bytes(c.max_memory_bytes)} (weights + every activation kept)")
    t.add_row("counted by", c.counted_by)
    for note in c.notes:
        t.add_row("note", escape(note))
    return t


def analyze(
    model: Annotated[str, typer.Argument(help="model file (.onnx, .xml, .pt2) or package.module:factory")],
    shape: Annotated[list[str] | None, typer.Option(
        "--shape", help="an input's shape: NAME=1x3x640x640 (? for the batch), NAME[1,3,640,640], or a bare "
        "1x3x224x224 for a one-input model (repeatable)")] = None,
    input: Annotated[list[str] | None, typer.Option(
        "--input", "-i", help="a value for an input the model runs only on: NAME=16000 (a constant), NAME=0..999 (a "
        "range); integer inputs get zeros, float ones 0..1 otherwise (repeatable)")] = None,
    batch: Annotated[int | None, typer.Option(help="batch size (default: the batch --shape gives, else 1)")] = None,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    order: Annotated[str, typer.Option(help="layers: size (largest first) or graph (the model's order)")] = "size",
    top: Annotated[int, typer.Option(help="layers shown in the table (0: all)")] = 20,
) -> None:
    """Count a model's complexity: FLOPs (float) and integer ops, parameters and weight bytes by precision,
    activation memory, minimum and maximum memory, INT8 share; per layer and in total, saying which counter
    counted."""
    from inferlab import api
    from inferlab.cli.inputs import parse_inputs, parse_shapes

    if format not in ("table", "json"):
        raise ConfigError(f"--format '{format}': choose table or json")
    if order not in ORDERS:
        raise ConfigError(f"--order '{order}': choose size or graph")
    if top < 0:
        raise ConfigError(f"--top {top}: give a number of layers, or 0 for all")
    shapes = parse_shapes(shape or [])
    values: dict[str, float | tuple[float, float]] = {}
    for name, given in parse_inputs(input or []).items():
        if "data" in given:
            raise ConfigError(f"--input {name}={given['data']}: analyze takes a constant or a range LOW..HIGH, "
                              "not data")
        values[name] = given["value"] if "value" in given else tuple(given["range"])
    result = api.analyze(model, shape=shapes or None, batch=batch, values=values or None)
    if format == "json":
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    console.print(layers_table(result, order, top))
    console.print(totals_table(result))
