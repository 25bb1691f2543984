"""MLPerf from the command line: bad LoadGen settings are one-line errors; the MLPerf table and export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.cli.test_cli import _one_line_error, cli

pytest.importorskip("mlperf_loadgen")


@pytest.mark.parametrize(("args", "needles"), [
    (["--scenario", "foo"], ["scenario", "'foo' is not one of SingleStream"]),
    (["--scenario", "server", "--qps", "-5"], ["loadgen.target_qps", "positive"]),
    (["--scenario", "server", "--latency-ms", "0"], ["loadgen.latency_bound_ms", "greater than 0"]),
    (["--scenario", "server", "--test-mode", "fast"], ["loadgen.test_mode", "'fast'"]),
    (["--scenario", "multistream", "--samples-per-query", "0"], ["loadgen.samples_per_query"]),
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
