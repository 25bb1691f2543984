"""The graph view: which file shows a model (the model itself, or a runtime's graph after its optimisations), and
Netron serving it on 127.0.0.1."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inferlab.analyze import graph as view
from inferlab.analyze.netron import (
    CONSENT_MAX_AGE_S,
    CSP,
    TYPES,
    GraphServer,
    companions,
    index_page,
    netron_app,
    serve,
)
from inferlab.models import resolve
from inferlab.models.artifact import ModelFormat, detect_format
from inferlab.records.trial import Scalar

__all__ = ["GraphServer", "NetronPage", "graph", "netron_asset", "netron_page", "serve_graph"]


def graph(model: str | Path, runtime: str | None = None, device: str = "cpu",
          params: Mapping[str, Scalar] | None = None, batch: int = 1, folder: Path | None = None) -> Path:
    """The file that shows `model` (a path, or package.module:factory): the model itself with `runtime` None
    (a factory: its ONNX export), else the graph `runtime` executes on `device` after its own rewrites
    (`params`: its knobs, e.g. inference_precision), written into `folder` (None: a new temporary folder,
    the caller's to remove)."""
    ref = str(model)
    name = ref.rpartition(":")[2] if detect_format(ref) is ModelFormat.TORCH_FACTORY else Path(ref).stem
    artifact = resolve(name, ref)
    if runtime is None:
        return view.model_file(artifact, batch)
    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="inferlab-graph-"))
    return view.runtime_graph(artifact, runtime, device, params, folder=target, batch=batch)


def serve_graph(path: str | Path, port: int | None = None, browse: bool = True) -> GraphServer:
    """Serve `path` in Netron at `GraphServer.url` (http://127.0.0.1:PORT/; `port` None: 8080 when free) until
    `stop()` (or the end of a `with` block); `browse` opens it in the default browser."""
    return serve(Path(path), port, browse)


@dataclass(frozen=True)
class NetronPage:
    """Netron's page for one model, served by another server (the workbench) under `data`: the page, the files
    it fetches there by name (the model and what it names beside it), and the headers the page needs."""

    html: bytes
    files: dict[str, Path]
    csp: str = CSP
    consent_max_age_s: int = CONSENT_MAX_AGE_S


def netron_page(path: Path, data: str) -> NetronPage:
    """Netron set up to open `path`, fetched from `data` + its name (offline: no telemetry, no update prompt)."""
    files = {path.name: path, **{name: path.parent / name for name in companions(path)}}
    return NetronPage(index_page(netron_app(), path.name, data), files)


def netron_asset(name: str) -> tuple[Path, str] | None:
    """One file of Netron's web app (its scripts, styles, icons) and its content type; None for anything else."""
    app = netron_app().resolve()
    asset = (app / name).resolve()
    if "/" in name or asset.parent != app or asset.suffix not in TYPES or not asset.is_file():
        return None
    return asset, TYPES[asset.suffix]
