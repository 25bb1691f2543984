"""`inferlab tune` end to end on real trials: an infeasible constraint, resuming a stored study, the emitted
config, an accuracy-drop constraint over FP32 and INT8, and bad tuning configs as one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inferlab.config import load, plan
from inferlab.store import Store
from tests.cli.test_cli import _one_line_error, cli
from tests.conftest import FAST_MEASURE
from tests.fixtures.datasets import centroid_classifier

pytestmark = pytest.mark.slow

ORT_FIXED = {"inter_op_threads": 0, "execution_mode": "sequential", "graph_optimization_level": "all",
             "spinning": True, "in_flight": 0, "cpus": 0}


def _config(tmp_path: Path, model: str, tune: dict[str, Any], **extra: Any) -> Path:
    data = {"name": "tune-test", "models": [{"path": model}], "mode": "latency", "batch": [1, 2],
            "backends": [{"name": "onnxruntime", "params": {"intra_op_threads": [1, 2], **ORT_FIXED}}],
            "measure": FAST_MEASURE, "tune": {"baseline": False, **tune}, **extra}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_infeasible_constraint_is_a_verdict_not_a_crash(tiny_models: dict[str, str], tmp_path: Path) -> None:
    cfg = _config(tmp_path, tiny_models["tiny.onnx"], {"max_trials": 2, "confirm": 0, "max_latency_ms": 1e-6})
    db = str(tmp_path / "t.db")
    out = cli("tune", str(cfg), "--db", db)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no configuration meets latency p99 ≤ 1e-06 ms; nearest: onnxruntime/cpu fp32" in out.stdout
    assert "Traceback" not in out.stderr
    store = Store(db)
    try:
        run_id, _, status, best, records = store.study("latest")
        assert status == "finished" and best is not None and best["message"].startswith("no configuration meets")
        assert len(records) == 2 and all(r["feasible"] is False for r in records)
        assert len(store.results(run_id)) == 2  # the trials are stored like any run's
    finally:
        store.close()


def test_resume_continues_the_stored_study(tiny_models: dict[str, str], tmp_path: Path) -> None:
    cfg = _config(tmp_path, tiny_models["tiny.onnx"], {"max_trials": 2, "confirm": 0, "sampler": "tpe",
                                                       "patience": None})
    db = str(tmp_path / "t.db")
    first = cli("tune", str(cfg), "--db", db)
    assert first.returncode == 0, first.stdout + first.stderr
    store = Store(db)
    try:
        run_id, _, _, _, before = store.study("latest")
    finally:
        store.close()
    out = cli("tune", str(cfg), "--db", db, "--resume", run_id, "--max-trials", "4",
              "--emit", str(tmp_path / "best.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    store = Store(db)
    try:
        again, _, _, best, after = store.study("latest")
        assert again == run_id and after[:2] == before
        assert [r["position"] for r in after] == [0, 1, 2, 3]
        points = [yaml.safe_dump(r["point"]) for r in after]
        assert len(set(points)) == 4  # the resumed study knew what was measured: 4 distinct configurations
        assert len(store.results(run_id)) == 4 and best is not None and "record" in best
    finally:
        store.close()
    emitted = load(tmp_path / "best.yaml")  # the emitted snippet is a ready config
    specs = plan(emitted).specs
    assert len(specs) == 1 and specs[0].batch == best["record"]["point"]["batch"]
    assert specs[0].param_dict["intra_op_threads"] == best["record"]["point"]["params"]["intra_op_threads"]
    other = _config(tmp_path, tiny_models["tiny.onnx"], {"max_trials": 2, "objectives": ["latency_p99"]})
    _one_line_error(cli("tune", str(other), "--db", db, "--resume", run_id), "searched another space or goal")


def test_accuracy_drop_constraint_over_fp32_and_int8(tmp_path: Path) -> None:
    model = centroid_classifier(tmp_path / "centroids.onnx")
    cfg = _config(tmp_path, str(model), {"max_trials": 4, "confirm": 1, "precision": ["fp32", "int8"],
                                         "max_accuracy_drop": 0.05, "sampler": "grid"},
                  dataset={"format": "digits", "split": "test", "subset": 200}, batch=1,
                  backends=[{"name": "onnxruntime", "params": {"intra_op_threads": 1, **ORT_FIXED}}])
    db = str(tmp_path / "t.db")
    out = cli("tune", str(cfg), "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    store = Store(db)
    try:
        _, _, _, best, records = store.study("latest")
        ref = records[0]
        assert ref["role"] == "reference" and ref["accuracy"] > 0.8
        searched = [r for r in records if r["role"] == "search"]
        assert {r["point"]["precision"] for r in searched} == {"fp32", "int8"}
        for r in searched:
            (drop,) = [c for c in r["checks"] if c["name"] == "accuracy drop"]
            assert drop["value"] == pytest.approx(ref["accuracy"] - r["accuracy"])
            assert r["feasible"] == (drop["value"] <= 0.05)
        assert store.artifacts() and store.artifacts()[0].method.startswith("int8")  # lineage of the INT8 model
        assert best is not None and "record" in best
    finally:
        store.close()


def test_bad_tuning_configs(tiny_models: dict[str, str], tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    cfg = _config(tmp_path, tiny_models["tiny.onnx"], {"max_accuracy_drop": 0.01})
    _one_line_error(cli("tune", str(cfg), "--db", db), "tune.max_accuracy_drop needs a dataset")
    cfg = _config(tmp_path, tiny_models["tiny.onnx"], {}, mode=["latency", "throughput"])
    _one_line_error(cli("tune", str(cfg), "--db", db), "mode: a tuning measures in one mode")
    cfg = _config(tmp_path, tiny_models["tiny.onnx"], {"sampler": "bayes"})
    _one_line_error(cli("tune", str(cfg), "--db", db), "tune.sampler")
    cfg = _config(tmp_path, tiny_models["tiny.onnx"], {},
                  backends=[{"name": "onnxruntime", "params": {"intra_op_threads": [1, -3]}}])
    _one_line_error(cli("tune", str(cfg), "--db", db), "intra_op_threads: -3 is outside")
    factory = {"path": "tests.fixtures.tiny_models:tiny_convnet", "inputs": {"x": {"shape": [-1, 3, 8, 8]}}}
    cfg = _config(tmp_path, "unused", {}, mode="throughput", models=[factory], devices=["cuda:0"],
                  backends=[{"name": "torch", "params": {"cuda_graphs": True, "in_flight": 4}}])
    _one_line_error(cli("tune", str(cfg), "--db", db), "backends[0].params.in_flight: in_flight 4 cannot go with "
                                                       "cuda_graphs true on cuda:0")
    assert not Path(db).exists() or not Store(db).runs()


def test_batch_left_open_is_found_by_a_ladder_and_the_winner_is_compared_with_the_defaults(
        tiny_models: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    cfg = _config(tmp_path, tiny_models["tiny.onnx"], {"max_trials": 7, "confirm": 1, "baseline": True,
                                                       "sampler": "grid", "patience": None},
                  mode="throughput", backends=[{"name": "openvino", "params": {
                      "inference_threads": [1, 2], "performance_hint": "THROUGHPUT", "num_streams": 0,
                      "num_requests": 0, "pinning": True, "cpus": 0, "inference_precision": "f32"}}])
    data = yaml.safe_load(cfg.read_text())
    del data["batch"]  # left open
    cfg.write_text(yaml.safe_dump(data))
    db = str(tmp_path / "t.db")
    out = cli("tune", str(cfg), "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())
    assert "batch ladder on openvino/cpu (its defaults): b1 " in text
    assert "per device: the best" in text and "× " in text and "stopped: " in text
    store = Store(db)
    try:
        run_id, _, _, best, records = store.study("latest")
        rungs = [r["point"]["batch"] for r in records if r["role"] == "ladder"]
        assert rungs[:3] == [1, 2, 4][:len(rungs)] and len(rungs) >= 1
        assert best is not None and best["summary"] and best["batches"]
        assert set(best["batches"]) <= {r * 2 ** k for r in rungs for k in range(3)}
        assert best["baseline"] is not None and best["baseline"]["point"]["batch"] == best["record"]["point"]["batch"]
        # what OpenVINO compiled is kept under the run's artifacts folder for its later trials
        cache = store.artifacts_dir(run_id) / "compiled" / "openvino"
        assert cache.is_dir() and any(cache.iterdir())
    finally:
        store.close()
