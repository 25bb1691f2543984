"""An experiment over all three runtimes through the public API, as a notebook would use it."""

from __future__ import annotations

from pathlib import Path

import pytest

import inferlab

pytestmark = pytest.mark.slow


def test_run_config_on_every_runtime_and_dataframe(tiny_models: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "e.yaml"
    cfg.write_text(f"""
name: e2e
models:
  - {{name: tiny, path: {tiny_models['tiny.onnx']}, alternates: [{tiny_models['tiny.xml']}, {tiny_models['tiny.pt2']}]}}
backends:
  - {{name: onnxruntime}}
  - {{name: openvino, params: {{performance_hint: [LATENCY, THROUGHPUT]}}}}
  - {{name: torch}}
batch: [1]
mode: [latency, throughput]
exclude: [{{backend: openvino, mode: latency, params: {{performance_hint: THROUGHPUT}}}}]
measure: {{warmup_iterations: 2, min_iterations: 10, min_duration_s: 0.2, max_duration_s: 5, timeout_s: 90}}
""")
    run = inferlab.run(cfg, db=str(tmp_path / "r.db"))
    assert len(run.results) == 2 + 3 + 2
    assert run.ok, [r.reason for r in run.results if r.status != "ok"]
    formats = {r.spec.backend: r.spec.model.format.value for r in run.results}
    assert formats == {"onnxruntime": "onnx", "openvino": "openvino", "torch": "torch-export"}
    for r in run.results:
        assert r.load_s is not None and r.load_s > 0
        assert r.first_inference_ms is not None
        assert r.latency is not None and r.latency.count >= 10
        assert r.throughput_ci_low_sps is None or r.throughput_ci_low_sps <= r.throughput_sps  # type: ignore[operator]
        assert r.environment_id is not None
        assert r.effective  # the resolved configuration is recorded
    df = run.to_dataframe()
    assert len(df) == 7
    assert {"backend", "throughput_sps", "latency_p99_ms", "effective.in_flight"} <= set(df.columns)


def test_benchmark_one_call(tiny_models: dict[str, str], tmp_path: Path) -> None:
    r = inferlab.benchmark(tiny_models["tiny.onnx"], backend="openvino", batch=2, mode="throughput",
                           db=str(tmp_path / "r.db"), measure={"min_duration_s": 0.2, "min_iterations": 10},
                           performance_hint="THROUGHPUT")
    assert r.status == "ok"
    assert r.in_flight is not None and r.in_flight >= 1
    assert r.samples == 2 * r.requests
