"""The CLI as a user runs it: one-line errors with exit 2 (and nothing written), and the happy paths."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from inferlab.store import Store


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferlab.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, check=False, env=_env())


def _env() -> dict[str, str]:
    import os

    return dict(os.environ, COLUMNS="200")


def _one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in out.stderr


def test_missing_config(tmp_path: Path) -> None:
    _one_line_error(cli("run", str(tmp_path / "nope.yaml"), "--db", str(tmp_path / "r.db")),
                    "nope.yaml: config file not found")
    assert not (tmp_path / "r.db").exists()


def test_missing_model(tmp_path: Path) -> None:
    _one_line_error(cli("bench", str(tmp_path / "absent.onnx"), "--db", str(tmp_path / "r.db")),
                    "absent.onnx: model file not found")
    assert not (tmp_path / "r.db").exists()


def test_corrupt_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage" * 10)
    _one_line_error(cli("bench", str(bad), "--db", str(tmp_path / "r.db")), "bad.onnx: not a valid ONNX file")


def test_unknown_backend(tiny_models: dict[str, str], tmp_path: Path) -> None:
    _one_line_error(cli("bench", tiny_models["tiny.onnx"], "--backend", "openvion", "--db", str(tmp_path / "r.db")),
                    "'openvion' is not a backend; did you mean 'openvino'?")


def test_unknown_knob(tiny_models: dict[str, str], tmp_path: Path) -> None:
    _one_line_error(cli("bench", tiny_models["tiny.onnx"], "-p", "threads=2", "--db", str(tmp_path / "r.db")),
                    "'threads' is not a knob of backend 'onnxruntime'")


def test_wrong_input_shape(tiny_models: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"models: [{{path: {tiny_models['tiny.onnx']}, inputs: {{x: {{shape: [-1, 3, 8, 8]}}}}}}]\n"
                   "backends: [{name: onnxruntime}]\n")
    _one_line_error(cli("run", str(cfg), "--db", str(tmp_path / "r.db")),
                    "c.yaml: models[0].inputs.x.shape [-1, 3, 8, 8]: dimension 2 is 8, but the model fixes it at 16 "
                    "([batch, 3, 16, 16])")
    assert not (tmp_path / "r.db").exists()


def test_bad_cli_values(tiny_models: dict[str, str], tmp_path: Path) -> None:
    _one_line_error(cli("bench", tiny_models["tiny.onnx"], "--batch", "one"), "--batch 'one'")
    _one_line_error(cli("bench", tiny_models["tiny.onnx"], "--mode", "fast", "--db", str(tmp_path / "r.db")),
                    "mode")
    _one_line_error(cli("export", "latest", "--format", "xml", "--db", str(tmp_path / "r.db")), "--format 'xml'")
    _one_line_error(cli("results", "--db", str(tmp_path / "empty.db")), "no runs stored yet")


def test_debug_shows_traceback(tmp_path: Path) -> None:
    out = cli("run", str(tmp_path / "nope.yaml"), "--debug")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_schema_and_backends_and_env() -> None:
    schema = json.loads(cli("schema").stdout)
    assert "models" in schema["properties"]
    out = cli("backends").stdout
    for name in ("onnxruntime", "openvino", "torch", "null", "intra_op_threads", "inference_precision"):
        assert name in out
    # the space a tuning searches on each kind of device, and the constraints between knobs, with or without a GPU
    assert "a tuning on cpu tries" in out and "a tuning on cuda:0 tries" in out
    assert "float32|float16|bfloat16" in out and "off|default|reduce-overhead " in out
    assert "on cuda:0: cuda_graphs=true ⇒ in_flight=0|1: one captured graph" in out
    assert "on cuda:0, a tuning first measures: dtype=float16 compile=default channels_last=true" in out
    assert re.search(r"null \S+ +usable +devices: cpu +per-layer profiles: no", out)
    assert re.search(r"openvino \S+ +usable +devices: cpu +per-layer profiles: yes", out)
    env = json.loads(cli("env").stdout)
    assert env["cpu_threads"] >= 1 and "python" in env and len(env["id"]) == 16


@pytest.mark.slow
def test_bench_results_export(tiny_models: dict[str, str], tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    out = cli("bench", tiny_models["tiny.onnx"], "--backend", "onnxruntime,openvino", "--mode",
              "latency,throughput", "--batch", "1,2", "--time", "0.3", "--db", db)
    assert out.returncode == 0, out.stderr
    assert "planned 8 trials" in out.stdout
    assert f"results stored in sqlite:///{db}" in out.stdout
    run_id = Store(db).runs()[0].id
    table = cli("results", run_id, "--db", db).stdout
    # the published table (a row per batch) first, then every trial
    assert "published table" in table and table.count("│ tiny") == 2 + 8
    assert "throughput" in table and "not measured" in table
    rows = list(csv.DictReader(io.StringIO(cli("export", run_id, "--format", "csv", "--db", db).stdout)))
    assert len(rows) == 8
    assert {r["backend"] for r in rows} == {"onnxruntime", "openvino"}
    assert all(float(r["throughput_sps"]) > 0 and r["status"] == "ok" for r in rows)
    payload = json.loads(cli("export", run_id, "-f", "json", "--samples", "--db", db).stdout)
    assert len(payload["results"]) == 8
    assert all(len(r["latencies_ns"]) == r["requests"] for r in payload["results"])
    runs = cli("results", "--runs", "--db", db).stdout
    assert run_id in runs
