"""MLPerf from the command line: bad LoadGen settings are one-line errors; the MLPerf table and export."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import _one_line_error, cli

pytest.importorskip("mlperf_loadgen")


@pytest.mark.parametrize(("args", "needles"), [
    (["--scenario", "foo"], ["scenario", "'foo' is not one of SingleStream"]),
    (["--scenario", "server", "--qps", "-5"], ["--qps", "positive"]),  # bench names its flags, not config fields
    (["--scenario", "server", "--latency-ms", "0"], ["--latency-ms", "greater than 0"]),
    (["--scenario", "server", "--test-mode", "fast"], ["--test-mode", "'fast'"]),
    (["--scenario", "multistream", "--samples-per-query", "0"], ["--samples-per-query", "greater than or equal to 1"]),
    (["--scenario", "server", "--user-conf", "/nonexistent/user.conf"], ["loadgen.user_conf", "does not exist"]),
])
def test_bad_loadgen_settings(tiny_models: dict[str, str], tmp_path: Path, args: list[str],
                              needles: list[str]) -> None:
    out = cli("bench", tiny_models["tiny.onnx"], *args, "--db", str(tmp_path / "x.db"))
    _one_line_error(out, *needles)
    assert not (tmp_path / "x.db").exists()


def test_bad_user_conf_and_typo_in_config(tiny_models: dict[str, str], tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("garbage line here\n")
    cfg = tmp_path / "e.yaml"
    cfg.write_text(f"models: [{{path: {tiny_models['tiny.onnx']}}}]\nbackends: [{{name: onnxruntime}}]\n"
                   f"scenario: offline\nloadgen: {{user_conf: user.conf}}\n")
    _one_line_error(cli("run", str(cfg), "--db", str(tmp_path / "x.db")), "loadgen.user_conf", "cannot parse")
    cfg.write_text(f"models: [{{path: {tiny_models['tiny.onnx']}}}]\nbackends: [{{name: onnxruntime}}]\n"
                   "scenario: offline\nloadgen: {sample_cont: 3}\n")
    _one_line_error(cli("run", str(cfg), "--db", str(tmp_path / "x.db")), "loadgen", "sample_count")
    cfg.write_text(f"models: [{{path: {tiny_models['tiny.onnx']}}}]\nbackends: [{{name: onnxruntime}}]\n"
                   "scenario: [Offline, Batched]\n")
    _one_line_error(cli("run", str(cfg), "--db", str(tmp_path / "x.db")), "scenario", "'Batched'")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.slow
def test_bench_scenarios_mlperf_table_and_export(tiny_models: dict[str, str], tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    out = cli("bench", tiny_models["tiny.onnx"], "--scenario", "singlestream,offline", "--time", "0.3",
              "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SingleStream" in out.stdout and "Offline" in out.stdout and "VALID" in out.stdout
    out = cli("results", "--mlperf", "--reference", "latest", "--db", db)
    assert out.returncode == 0, out.stderr
    assert "MLPerf" in out.stdout and "1.00×" in out.stdout and "speedup over run" in out.stdout
    out = cli("export", "latest", "--mlperf", "--reference", "latest", "-f", "csv", "--db", db)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["scenario"] for r in rows] == ["SingleStream", "Offline"]
    assert all(float(r["speedup"]) == 1.0 and r["verdict"] == "VALID" for r in rows)
    assert rows[0]["unit"] == "ms" and rows[1]["unit"] == "samples/s"
    assert rows[0]["accelerator"] == "none" and "onnxruntime" in rows[0]["software"]
    payload = json.loads(cli("export", "latest", "-f", "json", "--db", db).stdout)
    assert payload["results"][0]["loadgen"]["validity"] == "VALID"
    # a run without scenarios has no MLPerf table: a clear error
    assert cli("bench", tiny_models["tiny.onnx"], "--time", "0.2", "--db", db).returncode == 0
    _one_line_error(cli("results", "--mlperf", "--db", db), "no MLPerf scenario results")


@pytest.mark.slow
def test_impossible_server_target_ends_invalid_in_bounded_time(tiny_models: dict[str, str], tmp_path: Path) -> None:
    """A target a typo away from a real one (1,000,000 QPS, 1 ms) once kept LoadGen issuing for longer than
    10 minutes: LoadGen's outstanding-query bound, set from the calibration, ends it INVALID at once."""
    db = str(tmp_path / "r.db")
    t0 = time.monotonic()
    out = cli("bench", tiny_models["tiny.onnx"], "--scenario", "server", "--qps", "1000000", "--latency-ms", "1",
              "--time", "2", "--db", db, timeout=240)
    wall = time.monotonic() - t0
    assert out.returncode == 0, out.stdout + out.stderr
    assert "INVALID" in out.stdout
    (r,) = json.loads(cli("export", "latest", "-f", "json", "--db", db).stdout)["results"]
    assert r["status"] == "invalid", r["reason"]
    assert r["reason"].startswith("INVALID: target 1,000,000 QPS is far above what the system served (~")
    assert "LoadGen ended early: Too many outstanding queries" in r["reason"]
    lg = r["loadgen"]
    assert lg["effective"]["max_async_queries"] == lg["calibrated"]["max_async_queries"] >= 64
    assert lg["effective"]["max_duration_ms"] == lg["calibrated"]["max_duration_s"] * 1000 == 11_000
    assert r["duration_s"] < 11  # LoadGen's own run, well within its max duration
    assert wall < 240  # the whole command, process start and all, on a loaded machine
