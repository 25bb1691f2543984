"""The public Python API: what a notebook imports.

    import inferlab
    r = inferlab.benchmark("model.onnx", backend="openvino", batch=8, mode="throughput")
    run = inferlab.run("experiment.yaml"); run.to_dataframe()
"""

from inferlab.api.derivation import QuantizeOutcome, calibration_set, derive_model, exact_params, quantize
from inferlab.api.reports import report, report_runs
from inferlab.api.runs import DataOptions, Run, bench_experiment, benchmark, execute, lineage, run, trial
from inferlab.api.tuning import TuneRun, tune

__all__ = ["DataOptions", "QuantizeOutcome", "Run", "TuneRun", "bench_experiment", "benchmark", "calibration_set",
           "derive_model", "exact_params", "execute", "lineage", "quantize", "report", "report_runs", "run", "trial",
           "tune"]
