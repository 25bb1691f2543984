"""MLPerf scenarios end to end: real models, real runtimes, real LoadGen, each trial in its own process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import inferlab
from inferlab.measure.mlperf.library import SampleLibrary
from inferlab.measure.mlperf.logs import read_accuracy_log
from inferlab.models.tensors import TensorSpec
from inferlab.store import Store

pytest.importorskip("mlperf_loadgen")
pytestmark = pytest.mark.slow

SHORT = {"warmup_iterations": 2, "min_duration_s": 0.5, "timeout_s": 120}


def _run(tmp_path: Path, models: list[dict[str, Any]], backends: list[dict[str, Any]], scenario: Any,
         loadgen: dict[str, Any] | None = None, **extra: Any) -> inferlab.Run:
    cfg = {"name": "mlperf", "models": models, "backends": backends, "scenario": scenario,
           "loadgen": loadgen or {}, "measure": SHORT, **extra}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return inferlab.run(path, db=str(tmp_path / "r.db"))


def test_every_scenario_valid_onnxruntime(tiny_models: dict[str, str], tmp_path: Path) -> None:
    run = _run(tmp_path, [{"name": "tiny", "path": tiny_models["tiny.onnx"]}], [{"name": "onnxruntime"}],
               ["SingleStream", "MultiStream", "Server", "Offline"], {"samples_per_query": 4})
    assert [r.spec.mode for r in run.results] == ["SingleStream", "MultiStream", "Server", "Offline"]
    for r in run.results:
        lg = r.loadgen
        assert lg is not None
        assert r.status == "ok" and lg.validity == "VALID", (r.spec.mode, r.reason)
        assert all(lg.criteria.values()) and lg.criteria
        assert lg.value is not None and lg.value > 0
        assert r.throughput_sps is not None and r.throughput_sps > 0
        assert r.latency is not None and r.latency.count > 0  # SUT-side per-request latencies
        log_dir = Path(lg.log_dir or "")
        assert (log_dir / "mlperf_log_summary.txt").is_file() and (log_dir / "mlperf_log_detail.txt").is_file()
        assert run.id in str(log_dir)  # kept with the run
    single, multi, server, offline = run.results
    assert single.loadgen and single.loadgen.unit == "ms" and "p90" in single.loadgen.metric
    assert multi.loadgen and multi.loadgen.effective["samples_per_query"] == 4 and "p99" in multi.loadgen.metric
    assert server.loadgen and server.loadgen.calibrated["target_qps"] > 0  # half the measured capacity
    assert offline.loadgen and offline.loadgen.unit == "samples/s"
    # the stored results reload with LoadGen's outcome intact
    stored = Store(str(tmp_path / "r.db")).results(run.id)
    assert [s.loadgen for s in stored] == [r.loadgen for r in run.results]


def test_openvino_batches_in_flight(tiny_models: dict[str, str], tmp_path: Path) -> None:
    """Offline and Server with several requests in flight through OpenVINO's async queue, batch 4."""
    pytest.importorskip("openvino")
    run = _run(tmp_path, [{"name": "tiny", "path": tiny_models["tiny.xml"]}],
               [{"name": "openvino", "params": {"performance_hint": "THROUGHPUT"}}], ["Server", "Offline"],
               {"target_qps": 200, "latency_bound_ms": 50}, batch=4)
    for r in run.results:
        assert r.status == "ok", r.reason
        assert r.in_flight is not None and r.in_flight > 1
        assert r.spec.batch == 4
    assert run.results[0].loadgen and run.results[0].loadgen.effective["target_qps"] == 200


def test_impossible_server_target_is_invalid_with_reason(tiny_models: dict[str, str], tmp_path: Path) -> None:
    run = _run(tmp_path, [{"name": "tiny", "path": tiny_models["tiny.onnx"]}], [{"name": "onnxruntime"}],
               "server", {"target_qps": 200000, "latency_bound_ms": 0.05})
    (r,) = run.results
    assert r.status == "invalid"
    assert r.reason and r.reason.startswith("INVALID: ") and "performance constraints not satisfied" in r.reason
    assert run.ok  # a verdict, not a failure
    stored = Store(str(tmp_path / "r.db")).results(run.id)[0]
    assert stored.status == "invalid" and stored.reason == r.reason
    assert stored.loadgen and stored.loadgen.criteria["performance constraints"] is False


def test_absurd_offline_hint_ends_invalid_at_the_max_duration(tiny_models: dict[str, str], tmp_path: Path) -> None:
    """expected_qps 1e9 sizes an Offline query of 550M samples (hours here): the SUT stops serving at the max
    duration inferlab set, answers the rest without inference so LoadGen can finish, and the run is INVALID."""
    run = _run(tmp_path, [{"name": "tiny", "path": tiny_models["tiny.onnx"]}], [{"name": "onnxruntime"}],
               "Offline", {"expected_qps": 1e9})
    (r,) = run.results
    lg = r.loadgen
    assert lg is not None and r.status == "invalid" and r.reason, r.reason
    assert "inferlab stopped serving at LoadGen's max duration" in r.reason
    assert "expected_qps 1,000,000,000 sizes the Offline query at 550,000,000 samples" in r.reason
    assert "inferlab's bound for a run asked to last 0.5 s" in r.reason
    assert lg.value is None and lg.samples_per_s is None  # LoadGen's rate counts the unserved samples
    limit = lg.calibrated["max_duration_s"]
    assert limit == pytest.approx(3 * 1.1 * 1.5 * 0.5 + 5) and lg.effective["max_duration_ms"] == limit * 1000
    assert r.duration_s is not None and r.duration_s < limit + 20  # LoadGen's whole run, queries and all
    assert Store(str(tmp_path / "r.db")).results(run.id)[0].loadgen == lg


def test_multistream_query_too_large_ends_invalid_at_the_max_duration(tiny_models: dict[str, str],
                                                                      tmp_path: Path) -> None:
    """100,000 samples a query (a typo for 100): LoadGen's 662 queries would take hours; its min query count is
    cut, the SUT stops at the max duration set (2 s), and the run is INVALID."""
    run = _run(tmp_path, [{"name": "tiny", "path": tiny_models["tiny.onnx"]}], [{"name": "onnxruntime"}],
               "MultiStream", {"samples_per_query": 100_000, "max_duration_s": 2})
    (r,) = run.results
    lg = r.loadgen
    assert lg is not None and r.status == "invalid" and r.reason, r.reason
    assert "inferlab stopped serving at LoadGen's max duration (2 s from the first query)" in r.reason
    assert "a MultiStream query has 100,000 samples" in r.reason
    assert "LoadGen's min query count was cut to" in r.reason
    assert "max_duration_s" not in lg.calibrated  # the config's own bound
    assert r.duration_s is not None and r.duration_s < 2 + 20


def test_accuracy_mode_logs_every_sample_once(tiny_models: dict[str, str], tmp_path: Path) -> None:
    run = _run(tmp_path, [{"name": "tiny", "path": tiny_models["tiny.onnx"]}], [{"name": "onnxruntime"}],
               ["Offline", "SingleStream"], {"test_mode": "accuracy", "sample_count": 42}, batch=[1, 4])
    assert {(r.spec.mode, r.spec.batch) for r in run.results} == {("Offline", 1), ("Offline", 4),
                                                                  ("SingleStream", 1)}
    import onnxruntime as ort

    direct = ort.InferenceSession(tiny_models["tiny.onnx"], providers=["CPUExecutionProvider"])
    library = SampleLibrary([TensorSpec("x", (1, 3, 16, 16), "float32")], 42, SHORT.get("seed", 0), None, 1)  # type: ignore[arg-type]
    for r in run.results:
        lg = r.loadgen
        assert r.status == "ok" and lg is not None and lg.test_mode == "AccuracyOnly"
        assert lg.accuracy_layout == [{"name": "y", "dtype": "<f4", "shape": [5]}]
        logged = read_accuracy_log(Path(lg.log_dir or "") / "mlperf_log_accuracy.json", lg.accuracy_layout)
        assert sorted(logged) == list(range(42))  # every sample ...
        assert all(len(v) == 1 for v in logged.values())  # ... exactly once
        for index in (0, 17, 41):  # and each is the model's answer for that very sample
            expected = direct.run(None, library.sample(index))[0][0]
            np.testing.assert_allclose(logged[index][0]["y"], expected, rtol=1e-4, atol=1e-5)


def test_inferlab_peak_search_brackets_the_bound(tiny_models: dict[str, str], tmp_path: Path) -> None:
    run = _run(tmp_path, [{"name": "tiny", "path": tiny_models["tiny.onnx"]}], [{"name": "onnxruntime"}],
               "Server", {"find_peak_qps": True, "latency_bound_ms": 20, "peak_max_runs": 4})
    (r,) = run.results
    lg = r.loadgen
    assert lg is not None and 1 <= len(lg.search) <= 4
    valid = [h for h in lg.search if h["validity"] == "VALID"]
    if valid:  # the headline is the best VALID probe, and its logs are the ones kept
        best = max(valid, key=lambda h: h["target_qps"])
        assert r.status == "ok" and lg.effective["target_qps"] == pytest.approx(best["target_qps"], rel=1e-5)
        assert lg.log_dir == best["log_dir"]
        assert all(h["target_qps"] <= best["target_qps"] or h["validity"] == "INVALID" for h in lg.search)
    else:
        assert r.status == "invalid" and r.reason and "no Server QPS" in r.reason


@pytest.mark.gpu
def test_cuda_scenarios_valid(tiny_models: dict[str, str], tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here; this runs on the GPU machine (benchmarks/device_mlperf.sh)")
    run = _run(tmp_path, [{"name": "tiny", "path": tiny_models["tiny.pt2"]}],
               [{"name": "torch", "params": {"cuda_graphs": True}}], ["SingleStream", "Server", "Offline"],
               {"latency_bound_ms": 20}, devices=["cuda:0"])
    for r in run.results:
        assert r.status == "ok", (r.spec.mode, r.reason)
        assert r.loadgen is not None and r.loadgen.valid
        assert r.peak_gpu_mem_mb is not None  # NVML watched the trial process
