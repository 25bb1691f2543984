"""The store keeps a result's per-layer profile in its own table and the device's roofs per environment."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.analysis import LayerProfile, LayerRecord, Peaks, Roofline
from inferlab.records.trial import MeasureSettings, TrialResult, TrialSpec
from inferlab.store import Store


def _spec(profile: tuple[str, ...] = ("layers", "roofline")) -> TrialSpec:
    art = Artifact("m", "/x/m.onnx", ModelFormat.ONNX, "cd" * 32)
    return TrialSpec(art, "openvino", "cpu", (), 1, "latency", MeasureSettings(), profile=profile)


def _profile() -> LayerProfile:
    layers = (LayerRecord("conv1", "Convolution", "brgconv_avx512_FP32", "FP32", 0.6, 0.6, 0, 0.55, "cpu"),
              LayerRecord("relu1", "Relu", "jit_avx512_FP32", "FP32", 0.3, 0.3, 1),
              LayerRecord("fc", "MatMul", None, None, 0.1, 0.1, 2))
    return LayerProfile("openvino", 40, 1.0, 1.1, layers, ("a note",))


def _peaks(flops: float, bw: float, gemm: str = "GEMM a") -> Peaks:
    return Peaks("openvino", "cpu", "fp32", flops, bw, gemm, "stream a")


def _result(spec: TrialSpec, env: str, peaks: Peaks) -> TrialResult:
    roof = Roofline(1e9, 1e7, "onnx-tool", peaks, 2e11, 2e9, "compute-bound", "why")
    return TrialResult(spec=spec, status="ok", throughput_sps=200.0, environment_id=env, layers=_profile(),
                       roofline=roof, graph_file="/tmp/g.xml")


def test_layers_live_in_their_own_table_and_come_back_whole(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "a.db"))
    env = store.ensure_environment("e1", {"cpu": "x"})
    spec = _spec()
    run = store.create_run("t", {}, [spec], None, env)
    r = _result(spec, env, _peaks(1e11, 1e10))
    store.save_result(run, r)
    (back,) = store.results(run)
    assert back.layers == r.layers and back.roofline == r.roofline and back.graph_file == "/tmp/g.xml"
    con = sqlite3.connect(tmp_path / "a.db")
    assert con.execute("select count(*) from layers").fetchone() == (3,)
    (record,) = con.execute("select record from results").fetchone()
    assert '"conv1"' not in record  # the layers are not kept twice
    store.save_result(run, r.with_(layers=replace(r.layers, layers=r.layers.layers[:1])))  # type: ignore[union-attr]
    assert con.execute("select count(*) from layers").fetchone() == (1,)  # replaced, not added
    con.close()


def test_a_trial_without_profile_keeps_its_key() -> None:
    plain = _spec(())
    assert "profile" not in plain.to_json()
    assert plain.key() != _spec(("layers",)).key()
    assert TrialSpec.from_json(_spec().to_json()) == _spec()


def test_peaks_keep_the_best_roofs_per_environment(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "a.db"))
    env = store.ensure_environment("e1", {"cpu": "x"})
    specs = [_spec(), replace(_spec(), repeat=1)]
    run = store.create_run("t", {}, specs, None, env)
    store.save_result(run, _result(specs[0], env, _peaks(1e11, 2e10, "GEMM first")))
    store.save_result(run, _result(specs[1], env, _peaks(1.5e11, 1e10, "GEMM second")))
    (kept,) = store.peaks(env)
    assert (kept.flops_per_s, kept.bytes_per_s) == (1.5e11, 2e10)
    assert kept.gemm == "GEMM second" and kept.stream == "stream a" and kept.environment_id == env
    assert store.peaks("other") == []


def test_a_multi_device_results_members_have_their_own_rows(tmp_path: Path) -> None:
    from inferlab.records.trial import MemberResult

    store = Store(str(tmp_path / "a.db"))
    spec = replace(_spec(()), device="multi:cpu,cpu")
    run = store.create_run("t", {}, [spec])
    members = (MemberResult("cpu", 0, 60, 0.6, 120.0, 5.0, 9.0), MemberResult("cpu", 1, 40, 0.4, 80.0, 7.0, 12.0))
    store.save_result(run, TrialResult(spec=spec, status="ok", requests=100, throughput_sps=200.0, members=members))
    (back,) = store.results(run)
    assert back.members == members
    con = sqlite3.connect(tmp_path / "a.db")
    assert con.execute("select position, device, requests, share from members order by position").fetchall() == [
        (0, "cpu", 60, 0.6), (1, "cpu", 40, 0.4)]
    store.save_result(run, TrialResult(spec=spec, status="failed", reason="x"))
    assert con.execute("select count(*) from members").fetchone() == (0,)  # replaced with the result
    con.close()
