"""The roofline: the verdict that places a trial under its roofs, the micro-benchmark models, and a real trial
with `--profile layers,roofline` end to end (trial process, runtime profiler, store, report)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from inferlab.analyze.roofline import FAR_BELOW, micros, place
from inferlab.cli.main import main
from inferlab.models.artifact import ModelFormat
from inferlab.records.analysis import Peaks
from inferlab.report.layers import kernel_text
from inferlab.store import Store

PEAKS = Peaks("onnxruntime", "cpu", "fp32", 100e9, 10e9, "GEMM", "stream")  # ridge at 10 FLOP/byte


def test_above_the_ridge_and_near_the_roof_is_compute_bound() -> None:
    r = place(1e9, 1e7, "x", 60.0, PEAKS)  # intensity 100; 60 GFLOP/s of 100
    assert r.verdict == "compute-bound" and r.intensity == 100
    assert r.attainable_flops_per_s == 100e9 and "60% of the compute roof" in r.why


def test_below_the_ridge_the_memory_roof_is_the_limit() -> None:
    r = place(1e8, 1e8, "x", 50.0, PEAKS)  # intensity 1: the memory roof allows 10 GFLOP/s; 5 achieved
    assert r.verdict == "memory-bound" and r.attainable_flops_per_s == 10e9
    assert r.achieved_bytes_per_s == 5e9 and "50% of the memory roof" in r.why


def test_above_the_memory_roof_the_data_stay_in_caches_and_compute_binds() -> None:
    r = place(1e8, 1e8, "x", 300.0, PEAKS)  # intensity 1: streaming allows 10 GFLOP/s; 30 achieved
    assert r.verdict == "compute-bound" and "stay in the caches" in r.why and "30% of the compute roof" in r.why
    slow = place(1e8, 1e8, "x", 150.0, PEAKS)  # 15 GFLOP/s: above the memory roof, far below the compute roof
    assert slow.verdict == "overhead-bound"


def test_far_below_both_roofs_is_overhead_bound() -> None:
    r = place(1e9, 1e7, "x", 100 * FAR_BELOW * 0.9, PEAKS)  # just under the threshold of the compute roof
    assert r.verdict == "overhead-bound" and "far below both roofs" in r.why
    tiny = place(1e9, 1e7, "x", 0.3, PEAKS)
    assert "0.3% of the compute roof" in tiny.why  # a small share keeps a digit rather than reading 0%


def test_micro_models_do_the_work_they_are_credited_with(tmp_path: Path) -> None:
    gemm, stream = micros((ModelFormat.ONNX,), "cpu", "fp32", tmp_path)
    g = onnx.load(gemm.artifact.ref).graph
    n = g.input[0].type.tensor_type.shape.dim[0].dim_value
    assert [x.op_type for x in g.node] == ["MatMul"] and gemm.flops == 2 * n**3
    s = onnx.load(stream.artifact.ref).graph
    elems = s.input[0].type.tensor_type.shape.dim[0].dim_value
    assert stream.bytes == 2 * 4 * elems and elems * 4 >= 64 << 20  # read and write, past the caches
    int8, int8_stream = micros((ModelFormat.ONNX,), "cpu", "int8", tmp_path)
    ops = [x.op_type for x in onnx.load(int8.artifact.ref).graph.node]
    assert ops.count("DequantizeLinear") == 2 and "QuantizeLinear" in ops and int8.flops == gemm.flops
    assert int8_stream.bytes == stream.bytes  # the stream reads and writes float32 whatever the model computes in
    torch_gemm, _ = micros((ModelFormat.TORCH_EXPORT, ModelFormat.TORCH_FACTORY), "cuda:0", "fp16", tmp_path)
    assert torch_gemm.artifact.ref == "inferlab.analyze.kernels:Gemm" and "fp16" in torch_gemm.text


def test_cuda_kernel_names_are_cut_to_their_function() -> None:
    assert kernel_text("void at::native::(anonymous namespace)::max_pool_forward_nchw<c10::Half, int>(int, long)") \
        == "max_pool_forward_nchw"
    assert kernel_text("brgconv_avx512_I8") == "brgconv_avx512_I8"
    assert len(kernel_text("sm90_" + "x" * 200)) == 60


@pytest.mark.slow
def test_bench_with_layers_and_roofline_end_to_end(tiny_models: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    code = main(["bench", tiny_models["tiny.onnx"], "--backend", "openvino,onnxruntime", "-p",
                 "inference_precision=f32", "--time", "0.3", "--profile", "layers,roofline", "--db", str(db)])
    assert code == 0
    store = Store(str(db))
    results = store.results()
    assert {r.spec.backend for r in results} == {"openvino", "onnxruntime"}
    for r in results:
        assert r.status == "ok" and r.spec.profile == ("layers", "roofline"), r.warnings
        assert r.layers is not None and r.layers.layers and r.layers.iterations >= 20
        assert abs(sum(x.share for x in r.layers.layers) - 1) < 1e-6
        assert r.graph_file is not None and Path(r.graph_file).is_file()
        roof = r.roofline
        assert roof is not None and roof.peaks.flops_per_s > 1e9 and roof.peaks.bytes_per_s > 1e8
        assert roof.flops_per_sample > 0 and roof.verdict in ("compute-bound", "memory-bound", "overhead-bound")
        assert roof.achieved_flops_per_s == pytest.approx(roof.flops_per_sample * r.throughput_sps)
    assert {p.backend for p in store.peaks(results[0].environment_id)} == {"openvino", "onnxruntime"}
    out = tmp_path / "r.md"
    assert main(["report", "--db", str(db), "-o", str(out)]) == 0
    text = out.read_text()
    assert "## Roofline" in text and "verdict" in text
    exported = tmp_path / "r.json"
    assert main(["export", "latest", "--db", str(db), "-f", "json", "-o", str(exported)]) == 0
    (first, _) = json.loads(exported.read_text())["results"]
    assert first["layers"]["layers"] and first["roofline"]["verdict"]  # the export carries both
    # the roofs are measured once on a host for a runtime and its knobs: a later trial reads them back
    assert main(["bench", tiny_models["tiny.onnx"], "--backend", "onnxruntime", "--batch", "2", "--time", "0.3",
                 "--profile", "roofline", "--db", str(db)]) == 0
    again = store.results()[0]
    before = next(r for r in results if r.spec.backend == "onnxruntime")
    assert again.spec.batch == 2 and again.roofline is not None and before.roofline is not None
    assert again.roofline.peaks == before.roofline.peaks  # measured_at included
