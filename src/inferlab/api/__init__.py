"""The public Python API: what a notebook imports.

    import inferlab
    r = inferlab.benchmark("model.onnx", backend="openvino", batch=8, mode="throughput")
    run = inferlab.run("experiment.yaml"); run.to_dataframe()

Each name is imported from its module on first use, so that a command pays only for what it calls (`bench`
never imports the report's templates and charts, or the tuner's optuna)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inferlab.api.analysis import Complexity, analyze
    from inferlab.api.derivation import QuantizeOutcome, calibration_set, derive_model, exact_params, quantize
    from inferlab.api.graph import GraphServer, NetronPage, graph, netron_asset, netron_page, serve_graph
    from inferlab.api.reports import report, report_runs
    from inferlab.api.runs import DataOptions, Run, bench_experiment, benchmark, execute, lineage, run, trial
    from inferlab.api.tuning import TuneRun, tune, winner_config

_WHERE = {
    "inferlab.api.analysis": ("Complexity", "analyze"),
    "inferlab.api.derivation": ("QuantizeOutcome", "calibration_set", "derive_model", "exact_params", "quantize"),
    "inferlab.api.graph": ("GraphServer", "NetronPage", "graph", "netron_asset", "netron_page", "serve_graph"),
    "inferlab.api.reports": ("report", "report_runs"),
    "inferlab.api.runs": ("DataOptions", "Run", "bench_experiment", "benchmark", "execute", "lineage", "run",
                          "trial"),
    "inferlab.api.tuning": ("TuneRun", "tune", "winner_config"),
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}

__all__ = ["Complexity", "DataOptions", "GraphServer", "NetronPage", "QuantizeOutcome", "Run", "TuneRun", "analyze",
           "bench_experiment", "benchmark", "calibration_set", "derive_model", "exact_params", "execute", "graph",
           "lineage", "netron_asset", "netron_page", "quantize", "report", "report_runs", "run", "serve_graph",
           "trial", "tune", "winner_config"]


def __getattr__(name: str) -> Any:
    if name in _MODULE:
        value = getattr(import_module(_MODULE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'inferlab.api' has no attribute {name!r}")
