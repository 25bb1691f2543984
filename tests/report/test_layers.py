"""Two trials' layer profiles compared: layers paired by name, else by type and rank among that type, the unmatched
kept with their time, rows largest difference first, precision changes named; and `inferlab compare --layers` on
stored runs, including the one-line error when a trial has no layer profile."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from inferlab.errors import ConfigError
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.analysis import LayerProfile, LayerRecord
from inferlab.records.trial import LatencyStats, MeasureSettings, TrialResult, TrialSpec
from inferlab.report.layers import (
    LayerRow,
    canonical_type,
    compare_layers,
    hot_layers,
    hot_summary,
    match_layers,
    precision_changes,
    require_profiles,
)
from inferlab.store import Store
from tests.cli.test_cli import _one_line_error, cli

Layer = tuple[str, str, float, str | None]  # name, type, ms, precision


def _profile(layers: list[Layer], runtime: str = "openvino", wall_ms: float | None = None,
             kernel: str = "jit_avx512") -> LayerProfile:
    total = sum(ms for _, _, ms, _ in layers)
    records = tuple(LayerRecord(name, kind, f"{kernel}_{prec or 'x'}", prec, ms, ms / total, i)
                    for i, (name, kind, ms, prec) in enumerate(layers))
    return LayerProfile(runtime, 50, total, wall_ms if wall_ms is not None else total * 1.1, records)


def _result(profile: LayerProfile | None, median_ms: float, backend: str = "openvino",
            profiled: bool = True) -> TrialResult:
    spec = TrialSpec(Artifact("net", "/m/net.onnx", ModelFormat.ONNX, "ab" * 32), backend, "cpu", (), 1,
                     "latency", MeasureSettings(), profile=("layers",) if profiled else ())
    ms = median_ms
    lat = LatencyStats(200, ms, 0.0, ms, ms, ms, ms, ms, ms * 1.5, ms, 0, ms, ms, ms, ms)
    return TrialResult(spec, "ok", throughput_sps=1e3 / ms, latency=lat, requests=200, layers=profile,
                       environment_id="e1", graph_file="/tmp/trial/graph/runtime.xml" if profile else None)


def _by_name(rows: list[LayerRow]) -> dict[str, tuple[float | None, float | None, str]]:
    return {r.name: (r.a.time_ms if r.a else None, r.b.time_ms if r.b else None, r.matched_by) for r in rows}


def test_layers_with_the_same_name_pair_up() -> None:
    a = _profile([("conv1", "Convolution", 1.0, "FP32"), ("relu1", "Relu", 0.2, "FP32"), ("fc", "MatMul", 0.5, "FP32")])
    b = _profile([("fc", "MatMul", 0.4, "FP32"), ("conv1", "Convolution", 0.5, "FP32"), ("relu1", "Relu", 0.2, "FP32")])
    rows = match_layers(a, b)
    assert _by_name(rows) == {"conv1": (1.0, 0.5, "name"), "relu1": (0.2, 0.2, "name"), "fc": (0.5, 0.4, "name")}
    conv = next(r for r in rows if r.name == "conv1")
    assert conv.diff_ms == pytest.approx(-0.5) and conv.ratio == pytest.approx(0.5)


def test_renamed_layers_pair_by_type_and_rank_among_that_type() -> None:
    # ONNX Runtime's node names and types against OpenVINO's for the same three convolutions and a pool: the
    # k-th convolution pairs with the k-th, whatever either runtime calls the operation
    ort = _profile([("Conv_0", "FusedConv", 1.0, None), ("Conv_1", "Conv", 0.8, None), ("Pool_0", "MaxPool", 0.1, None),
                    ("Conv_2", "Conv", 0.6, None)], "onnxruntime")
    ov = _profile([("stem/conv", "Convolution", 0.9, "FP32"), ("dw/conv", "GroupConvolution", 0.3, "FP32"),
                   ("pool", "MaxPool", 0.05, "FP32"), ("head/conv", "Convolution", 0.7, "FP32")])
    pairs = {(r.a.name if r.a else None, r.b.name if r.b else None): r.matched_by for r in match_layers(ort, ov)}
    assert pairs == {("Conv_0", "stem/conv"): "type", ("Conv_1", "dw/conv"): "type", ("Pool_0", "pool"): "type",
                     ("Conv_2", "head/conv"): "type"}
    assert canonical_type("aten::conv2d") == canonical_type("Convolution") == canonical_type("FusedConv") == "conv"
    assert canonical_type("FullyConnected") == canonical_type("Gemm") == "matmul"


def test_a_name_match_is_never_taken_again_by_type() -> None:
    a = _profile([("c1", "Conv", 1.0, None), ("c2", "Conv", 1.0, None)])
    b = _profile([("x", "Conv", 1.5, None), ("c1", "Conv", 0.9, None)])
    # c2 is A's second convolution and x is B's first: by rank they are no pair, so both stay unmatched
    assert _by_name(match_layers(a, b)) == {"c1": (1.0, 0.9, "name"), "c2": (1.0, None, "none"),
                                            "x": (None, 1.5, "none")}


def test_layers_without_a_partner_keep_their_time() -> None:
    # OpenVINO fuses the ReLU into the convolution and adds a Reorder of its own
    a = _profile([("conv1", "Conv", 1.0, None), ("relu1", "Relu", 0.3, None)], "onnxruntime")
    b = _profile([("conv1", "Convolution", 0.9, "FP32"), ("reorder", "Reorder", 0.05, "FP32")])
    rows = {r.name: r for r in match_layers(a, b)}
    assert rows["relu1"].b is None and rows["relu1"].diff_ms == pytest.approx(-0.3) and rows["relu1"].ratio is None
    assert rows["reorder"].a is None and rows["reorder"].diff_ms == pytest.approx(0.05)
    assert rows["conv1"].matched_by == "name" and rows["conv1"].type == "Conv ↔ Convolution"


def test_rows_come_largest_absolute_difference_first() -> None:
    a = _profile([("l0", "Conv", 1.0, None), ("l1", "Conv", 2.0, None), ("l2", "Relu", 0.1, None),
                  ("gone", "Relu", 0.5, None)])
    b = _profile([("l0", "Conv", 1.1, None), ("l1", "Conv", 0.5, None), ("l2", "Relu", 0.9, None),
                  ("new", "Add", 0.7, None)])
    assert [r.name for r in match_layers(a, b)] == ["l1", "l2", "new", "gone", "l0"]  # -1.5, +0.8, +0.7, -0.5, +0.1


def test_precision_changes_are_named() -> None:
    a = _profile([("c1", "Convolution", 1.0, "FP32"), ("c2", "Convolution", 1.0, "FP32"),
                  ("fc", "FullyConnected", 0.2, "FP32"), ("softmax", "Softmax", 0.1, "FP32")])
    b = _profile([("c1", "Convolution", 0.3, "U8"), ("c2", "Convolution", 0.3, "I8"),
                  ("fc", "FullyConnected", 0.1, "BF16"), ("softmax", "Softmax", 0.1, "f32")])
    changes = precision_changes(match_layers(a, b))
    assert [(c.before, c.after, c.layers, c.meaning) for c in changes] == [
        ("FP32", "BF16", ("fc",), "became half-precision kernels"),
        ("FP32", "I8", ("c2",), "became integer kernels"),
        ("FP32", "U8", ("c1",), "became integer kernels")]  # f32 and FP32 are one precision: no change
    cmp = compare_layers(_result(a, 2.5), _result(b, 0.9))
    assert cmp.precision_line().startswith("precision changed: 1 layer FP32 → BF16 (became half-precision kernels)")
    back = compare_layers(_result(b, 0.9), _result(a, 2.5))
    assert "U8 → FP32 (became floating-point kernels): c1" in back.precision_line()
    same = compare_layers(_result(a, 2.5), _result(a, 2.5))
    assert same.precision_line() == "no matched layer changed precision"


def test_totals_set_the_layers_against_each_trials_latency() -> None:
    a = _profile([("c", "Conv", 1.5, None), ("r", "Relu", 0.5, None)], wall_ms=2.5)
    b = _profile([("c", "Conv", 0.6, None)], wall_ms=0.8)
    totals = {row.what: row for row in compare_layers(_result(a, 4.0), _result(b, 1.0)).totals()}
    assert (totals["sum of layers"].a, totals["sum of layers"].b) == ("2.00 ms", "0.600 ms")
    assert totals["sum of layers"].change == "0.30× the time"
    assert (totals["layers / profiled inference"].a, totals["layers / profiled inference"].b) == (
        "2.00 ms = 80%", "0.600 ms = 75%")
    assert (totals["layers / measured latency"].a, totals["layers / measured latency"].b) == (
        "2.00 ms = 50%", "0.600 ms = 60%")
    assert (totals["layers (matched / unmatched)"].a, totals["layers (matched / unmatched)"].b) == (
        "2 (1 / 1)", "1 (1 / 0)")


def test_missing_profiles_are_named_with_the_fix() -> None:
    with_layers = _result(_profile([("c", "Conv", 1.0, None)]), 1.0)
    with pytest.raises(ConfigError, match=r"^--layers: B \(r:2\) has no layer profile; measure with `--profile "
                                          r"layers` on `inferlab bench`") as err:
        require_profiles(with_layers, _result(None, 1.0, profiled=False), "A (r:1)", "B (r:2)")
    assert "asked for one" not in str(err.value)
    with pytest.raises(ConfigError, match=r"A and B have no layer profile.*; A asked for one but its runtime"):
        require_profiles(_result(None, 1.0), _result(None, 1.0, profiled=False))
    require_profiles(with_layers, with_layers)  # both profiled: nothing to say


def test_hot_layers_are_the_slowest_ten_with_the_coverage() -> None:
    profile = _profile([(f"l{i}", "Conv", 0.1 * (i % 7) + 0.01, "FP32") for i in range(14)], wall_ms=6.2)
    hot = hot_layers(profile)
    assert len(hot) == 10 and [x.time_ms for x in hot] == sorted((x.time_ms for x in profile.layers),
                                                                 reverse=True)[:10]
    summary = hot_summary(_result(profile, 3.1), "net openvino/cpu")
    assert summary is not None and [row[0] for row in summary.rows[:3]] == ["l6", "l13", "l5"]  # ties: run order
    assert summary.rows[0][2:] == ["jit_avx512_FP32", "FP32", "0.610", "14.1%"]
    assert re.fullmatch(r"sum of 14 layers 4\.34 ms; 70% of the profiled inference \(6\.20 ms, median of 50\); "
                        r"140% of the measured median latency \(3\.10 ms, 3σ\)", summary.coverage), summary.coverage
    assert hot_summary(_result(None, 1.0), "x") is None


def _stored_run(tmp_path: Path, results: list[TrialResult]) -> tuple[str, str]:
    db = str(tmp_path / "r.db")
    store = Store(db)
    try:
        env = store.ensure_environment("e1", {"cpu_model": "test"})
        specs = [r.spec for r in results]
        run = store.create_run("profiled", {}, specs, None, env)
        for r in results:
            store.save_result(run, r)
        assert [r.layers is not None for r in store.results(run)] == [r.layers is not None for r in results]
    finally:
        store.close()
    return db, run


def _two_runtimes() -> tuple[TrialResult, TrialResult]:
    fp32 = _profile([("conv1", "Convolution", 1.2, "FP32"), ("conv2", "Convolution", 0.9, "FP32"),
                     ("relu", "Relu", 0.2, "FP32"), ("fc", "FullyConnected", 0.3, "FP32")])
    int8 = _profile([("conv1", "Convolution", 0.4, "U8"), ("conv2", "Convolution", 0.35, "U8"),
                     ("fc", "FullyConnected", 0.25, "FP32"), ("reorder", "Reorder", 0.02, "FP32")])
    a = _result(fp32, 2.8)
    b = _result(int8, 1.1)
    return a, replace(b, spec=replace(b.spec, repeat=1))  # two trials of one run need two keys


def test_cli_compare_layers_on_a_stored_run(tmp_path: Path) -> None:
    db, run = _stored_run(tmp_path, list(_two_runtimes()))
    out = cli("compare", f"{run}:1", f"{run}:2", "--layers", "--top", "3", "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "median latency (3σ)" in text  # the usual comparison comes first
    table = text.split("per layer:", 1)[1]
    lines = [ln for ln in table.splitlines() if re.match(r"^[│|] (conv|relu|fc|reorder|…)", ln)]
    assert [ln.split()[1] for ln in lines] == ["conv1", "conv2", "relu", "…"]  # -0.8, -0.55, -0.2 ms, the rest
    assert "−0.800" in lines[0] and "0.33×" in lines[0]
    assert "only in A" in lines[2]
    assert "2 more layers" in lines[3] and "−0.0300" in lines[3]  # fc -0.05 and reorder +0.02
    assert re.search(r"sum of layers\s+│\s+2\.60 ms\s+│\s+1\.02 ms", text)
    assert re.search(r"layers / measured latency\s+│\s+2\.60 ms = 93%\s+│\s+1\.02 ms = 93%", text)
    assert "precision changed: 2 layers FP32 → U8 (became integer kernels): conv1, conv2" in " ".join(text.split())


def test_cli_compare_layers_without_a_profile_is_one_line(tmp_path: Path) -> None:
    a, b = _two_runtimes()
    db, run = _stored_run(tmp_path, [a, replace(b, layers=None, graph_file=None, spec=replace(b.spec, profile=()))])
    out = cli("compare", f"{run}:1", f"{run}:2", "--layers", "--db", db)
    _one_line_error(out, f"B ({run}:2) has no layer profile", "--profile layers")
    assert "median latency (3σ)" in out.stdout  # the comparison itself still printed
    _one_line_error(cli("compare", f"{run}:1", f"{run}:1", "--layers", "--top", "0", "--db", db),
                    "--top 0: give a positive number")
