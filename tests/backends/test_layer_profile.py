"""Per-layer profiles of the runtime backends on a small real model (examples/models/resnet_s: 12 convolutions),
taken in the runner's sequence: load with profile=True, warm up, a call to reset, N timed inferences, a call to
read. ONNX Runtime's window bookkeeping is also checked on a synthetic trace."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from inferlab import backends
from inferlab.backends.base import LayerTiming, Session
from inferlab.errors import BackendError
from inferlab.models import resolve
from inferlab.models.artifact import Artifact
from inferlab.models.inputs import make_pool, merge
from inferlab.models.introspect import declared_inputs
from inferlab.models.tensors import InputHint
from tests.fixtures.devices import needs_cuda

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
CONVS = 12  # convolutions in resnet_s (stem, 2 per stage, 3 skip projections)
# A few of them by name, as each runtime names them: OpenVINO keeps the ONNX node names (its convolution
# without the bias it split off), torch the module paths; ONNX Runtime renames the nodes it rewrites.
NAMED = {
    "openvino": ["/stem/stem.0/stem.0.0/Conv/WithoutBiases", "/stages/stages.1/skip/skip.0/Conv/WithoutBiases",
                 "/stages/stages.3/body/body.1/body.1.0/Conv/WithoutBiases"],
    "torch": ["stem.0.0", "stages.1.skip.0", "stages.3.body.1.0"],
}
CONV_TYPES = {"openvino": "Convolution", "onnxruntime": "Conv", "torch": "Conv2d"}
WARMUPS = 20  # as many as the profiled runs: a reset that kept them would double the sum, past the bound
RUNS = 20
# Sum of the layers' times against the wall time of the same runs. Below 1: the time between layers (the
# runtime's dispatch; Python between modules for torch) is no layer's; seen here 0.88-1.03 for each runtime
# (OpenVINO's per-node timers can overlap a little). Under 0.5 layers or half the runs went missing;
# over 1.5 runs were counted twice (the warm-ups kept by a reset, or a layer and its operators both).
RATIO = (0.5, 1.5)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/models, or the example models built afresh where a clone has not built them yet."""
    if all((MODELS / f).is_file() for f in ("resnet_s.onnx", "resnet_s.pt2")):
        return MODELS
    import importlib
    import sys

    sys.path.insert(0, str(MODELS.parent))
    out = tmp_path_factory.mktemp("examples")
    importlib.import_module("build_models").build(out)  # examples/build_models.py
    return out


def _artifact(backend: str, models: Path) -> Artifact:
    file = {"openvino": "resnet_s.xml", "onnxruntime": "resnet_s.onnx", "torch": "resnet_s.pt2"}[backend]
    return resolve("resnet_s", str(models / file))


def _profiled(backend: str, art: Artifact, device: str = "cpu", **params: object) -> tuple[Session, list[object]]:
    b = backends.get(backend)
    if not b.available():
        pytest.skip(f"{backend} is not installed here (the GPU machine has no OpenVINO)")
    inputs = merge(declared_inputs(art) or (), art.inputs, 1, art.name)
    session = b.load(art, device, b.check_params(device, params, "params"), inputs, profile=True)
    return session, [session.prepare(f) for f in make_pool(inputs, 4, seed=3)]


def _runner_sequence(session: Session, prepared: list[object]) -> tuple[list[LayerTiming], float]:
    """What the trial runner does: warm-ups, reset, N timed synchronous runs, read. Returns the layers and
    the wall time of the N runs in ms."""
    for i in range(WARMUPS):
        session.run(prepared[i % len(prepared)])
    session.layer_profile()
    wall_ns = 0
    for i in range(RUNS):
        t0 = time.perf_counter_ns()
        session.run(prepared[i % len(prepared)])
        wall_ns += time.perf_counter_ns() - t0
    return session.layer_profile(), wall_ns / 1e6


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openvino", "onnxruntime", "torch"])
def test_profile_has_the_conv_layers_and_sums_to_the_wall_time(backend: str, models: Path) -> None:
    session, prepared = _profiled(backend, _artifact(backend, models))
    try:
        layers, wall_ms = _runner_sequence(session, prepared)
    finally:
        session.close()
    convs = [t for t in layers if t.op_type == CONV_TYPES[backend]]
    assert len(convs) == CONVS, [t.name for t in layers]
    assert all(t.time_ms > 0 and t.kernel and t.device == "cpu" for t in convs)
    assert all(t.precision == "FP32" for t in convs)
    names = [t.name for t in layers]
    assert len(set(names)) == len(names)
    assert set(NAMED.get(backend, [])) <= set(names)
    assert [t.order for t in layers] == list(range(len(layers)))  # execution order: the stem comes first
    assert "stem" in layers[0].name or "stem" in layers[1].name
    ratio = sum(t.time_ms for t in layers) / wall_ms
    assert RATIO[0] <= ratio <= RATIO[1], f"{backend}: layers sum to {ratio:.2f}× the wall time of the same runs"


@pytest.mark.slow
def test_onnxruntime_names_the_graph_nodes_and_hands_its_trace_over_once(models: Path) -> None:
    # Without ORT's layout rewrites (level basic) the nodes keep the model's own names.
    session, prepared = _profiled("onnxruntime", _artifact("onnxruntime", models),
                                  graph_optimization_level="basic")
    try:
        assert session.layer_profile() == []  # the first call only marks where the window starts
        for p in prepared:
            session.run(p)
        layers = session.layer_profile()
        assert session.layer_profile() == []  # ORT records nothing after end_profiling
    finally:
        session.close()
    convs = [t.name for t in layers if t.op_type == "Conv"]
    assert convs[0] == "/stem/stem.0/stem.0.0/Conv" and "/stages/stages.1/skip/skip.0/Conv" in convs
    assert len(convs) == CONVS


@pytest.fixture(scope="module")
def qdq_resnet(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Artifact:
    """resnet_s quantized by ONNX Runtime (QDQ: u8 activations, s8 weights), calibrated on random images."""
    pytest.importorskip("onnxruntime")
    from inferlab.optimize.int8 import ort_int8

    dst = tmp_path_factory.mktemp("int8") / "resnet_s.int8.onnx"
    rng = np.random.default_rng(0)
    ort_int8(models / "resnet_s.onnx", dst,
             [{"image": rng.random((1, 3, 224, 224), dtype=np.float32)} for _ in range(4)])
    return resolve("resnet_s_int8", str(dst))


@pytest.mark.slow
def test_openvino_runs_an_int8_model_on_integer_kernels(qdq_resnet: Artifact) -> None:
    session, prepared = _profiled("openvino", qdq_resnet)
    try:
        layers, _ = _runner_sequence(session, prepared)
    finally:
        session.close()
    convs = [t for t in layers if t.op_type == "Convolution"]
    assert len(convs) == CONVS
    for t in convs:  # the exec type names the integer kernel (brgconv_avx512_I8), the precision its inputs
        assert t.kernel is not None and ("I8" in t.kernel.upper() or "U8" in t.kernel.upper()), t
        assert t.precision in ("I8", "U8"), t


@pytest.mark.slow
def test_onnxruntime_reports_the_integer_inputs_of_quantized_convolutions(qdq_resnet: Artifact) -> None:
    session, prepared = _profiled("onnxruntime", qdq_resnet)
    try:
        layers, _ = _runner_sequence(session, prepared)
    finally:
        session.close()
    quantized = [t for t in layers if t.op_type == "QLinearConv"]
    assert quantized and all(t.precision == "U8" for t in quantized)


@pytest.mark.slow
def test_openvino_adds_up_the_requests_in_flight(models: Path) -> None:
    session, prepared = _profiled("openvino", _artifact("openvino", models))
    done: list[BaseException | None] = []
    try:
        session.layer_profile()
        session.start_async(2)
        for i in range(8):
            session.wait_slot()
            session.submit(prepared[i % len(prepared)], done.append)
        session.wait_all()
        layers = session.layer_profile()
    finally:
        session.close()
    assert done == [None] * 8
    convs = [t for t in layers if t.op_type == "Convolution"]
    assert len(convs) == CONVS and all(t.time_ms > 0 for t in convs)


@pytest.mark.slow
def test_torch_profiles_a_plain_module_by_its_leaf_modules_and_loose_operators() -> None:
    # A factory module keeps its forward: hooks name the leaf modules; torch.relu and mean in the
    # forward are operators outside any layer, named by operator.
    art = resolve("tiny", "tests.fixtures.faulty_models:fine", inputs=(InputHint("x", (-1, 3, 16, 16)),))
    session, prepared = _profiled("torch", art)
    try:
        layers, _ = _runner_sequence(session, prepared)
    finally:
        session.close()
    assert [(t.name, t.op_type) for t in layers] == [("conv", "Conv2d"), ("aten::relu", "aten::relu"),
                                                    ("aten::mean", "aten::mean"), ("fc", "Linear")]
    assert "conv" in (layers[0].kernel or "")  # the heaviest operator under it: aten::mkldnn_convolution here
    assert all(t.time_ms > 0 for t in layers)


@pytest.mark.slow
@pytest.mark.parametrize("params", [{"compile": "default"}, {"cuda_graphs": True}])
def test_torch_refuses_to_profile_a_compiled_or_captured_forward(params: dict[str, object], models: Path) -> None:
    b = backends.get("torch")
    art = _artifact("torch", models)
    inputs = merge(declared_inputs(art) or (), art.inputs, 1, art.name)
    with pytest.raises(BackendError, match="per-layer profile needs compile off"):
        b.load(art, "cpu", b.check_params("cpu", params, "params", constraints=False), inputs, profile=True)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openvino", "onnxruntime", "torch"])
def test_a_session_loaded_without_profile_has_no_profile(backend: str, models: Path) -> None:
    b = backends.get(backend)
    if not b.available():
        pytest.skip(f"{backend} is not installed here (the GPU machine has no OpenVINO)")
    art = _artifact(backend, models)
    inputs = merge(declared_inputs(art) or (), art.inputs, 1, art.name)
    session = b.load(art, "cpu", b.check_params("cpu", {}, "params"), inputs)
    try:
        session.infer(make_pool(inputs, 1, seed=1)[0])
        assert session.layer_profile() == []
        assert not type(session).__name__.startswith("Profiled")  # the measured path has no profiling cost
    finally:
        session.close()


def test_which_backends_can_profile(tiny_models: dict[str, str]) -> None:
    assert backends.get("null").can_profile is False
    assert backends.get("null").load(resolve("tiny", tiny_models["tiny.onnx"]), "cpu", {}, []).layer_profile() == []
    assert all(backends.get(b).can_profile for b in ("openvino", "onnxruntime", "torch"))



@pytest.mark.slow
@pytest.mark.gpu
@needs_cuda
def test_torch_cuda_profile_times_each_layers_gpu_kernels(models: Path) -> None:
    session, prepared = _profiled("torch", _artifact("torch", models), device="cuda:0")
    try:
        layers, wall_ms = _runner_sequence(session, prepared)
    finally:
        session.close()
    convs = [t for t in layers if t.op_type == "Conv2d"]
    assert len(convs) == CONVS and set(NAMED["torch"]) <= {t.name for t in convs}
    for t in convs:  # the kernel is a GPU kernel's name, not an aten operator; the host's time is apart
        assert t.time_ms > 0 and t.cpu_ms is not None and t.cpu_ms > 0 and t.device == "cuda:0", t
        assert t.kernel is not None and not t.kernel.startswith("aten::"), t
    # The GPU's kernels of runs that synchronise cannot outlast them. No lower bound: an eager batch-1 run
    # is bound by the host's launches, the GPU idle most of the time.
    assert 0 < sum(t.time_ms for t in layers) <= 1.2 * wall_ms
    assert sum(t.cpu_ms or 0.0 for t in layers) <= RATIO[1] * wall_ms


def _node(name: str, ts: int, dur: int, op: str = "Conv", first: str = "float") -> dict[str, object]:
    return {"cat": "Node", "name": name, "ts": ts, "dur": dur, "op": op, "provider": "CPUExecutionProvider",
            "input": first}


def _run(ts: int, dur: int) -> dict[str, object]:
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}


def test_onnxruntime_window_drops_the_runs_before_the_mark_and_scales_a_truncated_trace() -> None:
    from inferlab.backends.ort import _ort_layers

    events = [_run(0, 10), _node("a", 1, 5), _node("b", 6, 3, "Relu"),          # a warm-up
              _run(20, 10), _node("a", 21, 4), _node("b", 26, 2, "Relu"),       # the window's runs
              _run(40, 10), _node("a", 41, 6, first="uint8"), _node("b", 47, 2, "Relu")]
    layers = _ort_layers(events, skip=1, runs=2, device="cpu")
    assert [(t.name, t.op_type, t.time_ms, t.order) for t in layers] == [("a", "Conv", 0.010, 0),
                                                                         ("b", "Relu", 0.004, 1)]
    assert layers[0].precision == "FP32" and layers[0].kernel == "CPUExecutionProvider"
    # ORT stopped recording after its cap: 2 runs in the trace of the 4 made after the mark.
    scaled = _ort_layers(events, skip=1, runs=4, device="cpu")
    assert [t.time_ms for t in scaled] == [0.020, 0.008]
    assert _ort_layers(events, skip=3, runs=1, device="cpu") == []
