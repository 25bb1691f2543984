"""`inferlab graph`: a model, or the graph a runtime executes after its own optimisations, in Netron (its bundled
web app, served on 127.0.0.1 until Ctrl-C; nothing is fetched from the internet)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from inferlab import api
from inferlab.cli.app import console
from inferlab.errors import ConfigError

POLL_S = 0.2  # how often the serving loop looks whether the server still runs (Ctrl-C interrupts the sleep)


def graph(
    model: Annotated[str, typer.Argument(help="model file (.onnx, .xml, .pt2) or package.module:factory")],
    runtime: Annotated[str | None, typer.Option(
        help="show the graph this runtime executes, after its own optimisations (openvino: the executed graph with "
             "fused layers, exec types and precisions; onnxruntime: its optimised model)")] = None,
    device: Annotated[str, typer.Option(help="with --runtime: the device it compiles for")] = "cpu",
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="port on 127.0.0.1 (default: 8080 when free, "
                                                                     "else another; 0: any free port)")] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="print the URL only; open no browser")] = False,
    save_only: Annotated[Path | None, typer.Option("--save-only", metavar="DIR", help="with --runtime: write the "
                                                   "runtime's graph into DIR and exit, serving nothing")] = None,
) -> None:
    """Show a model's graph in Netron, or with --runtime the graph the runtime executes after its optimisations."""
    if save_only is not None:
        if runtime is None:
            raise ConfigError(f"--save-only {save_only}: it writes a runtime's graph; add --runtime openvino or "
                              f"--runtime onnxruntime (without --runtime the graph is {model} itself)")
        path = api.graph(model, runtime, device, folder=save_only)
        console.print(f"wrote [bold]{escape(str(path))}[/]")
        return
    with tempfile.TemporaryDirectory(prefix="inferlab-graph-") as scratch:
        path = api.graph(model, runtime, device, folder=Path(scratch))
        server = api.serve_graph(path, port, browse=not no_browser)
        try:
            what = f"{runtime}'s graph of {Path(model).name}" if runtime else path.name
            console.print(f"Netron shows {escape(what)} at", highlight=False)
            console.print(server.url, highlight=False, soft_wrap=True)
            if not no_browser and not server.browsed:
                console.print("[dim]no browser could be opened here: open the URL in one[/]")
            console.print("[dim]Ctrl-C stops[/]")
            while server.alive():
                time.sleep(POLL_S)
        except KeyboardInterrupt:  # the way to stop serving: no error, exit 0
            pass
        finally:
            server.stop()
