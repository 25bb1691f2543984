"""Each backend on a tiny real model: outputs agree across runtimes; knobs reach the runtime."""

from __future__ import annotations

import numpy as np
import pytest

from inferlab import backends
from inferlab.errors import BackendError
from inferlab.models import resolve
from inferlab.models.artifact import Artifact
from inferlab.models.inputs import make_pool, merge
from inferlab.models.introspect import declared_inputs
from inferlab.models.tensors import TensorSpec

pytestmark = pytest.mark.slow


def _load(backend: str, art: Artifact, batch: int = 2, device: str = "cpu", **params: object):  # type: ignore[no-untyped-def]
    b = backends.get(backend)
    inputs = merge(declared_inputs(art) or (), art.inputs, batch, art.name)
    return b.load(art, device, b.check_params(device, params, "params"), inputs), inputs


def _need(backend: str, file: str, tiny_models: dict[str, str]) -> None:
    if not backends.get(backend).available():
        pytest.skip(f"{backend} is not installed here (the GPU machine has no OpenVINO)")
    if file not in tiny_models:
        pytest.skip(f"{file} needs OpenVINO to build, which is not installed here")


def _reference(x: np.ndarray) -> np.ndarray:
    import torch

    from tests.fixtures.tiny_models import tiny_convnet

    with torch.no_grad():
        return tiny_convnet()(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize(("backend", "file"), [("onnxruntime", "tiny.onnx"), ("openvino", "tiny.xml"),
                                               ("openvino", "tiny.onnx"), ("torch", "tiny.pt2"),
                                               ("onnxruntime", "tiny.pt2")])
def test_outputs_match_pytorch_reference(backend: str, file: str, tiny_models: dict[str, str]) -> None:
    _need(backend, file, tiny_models)
    session, inputs = _load(backend, resolve("tiny", tiny_models[file]), batch=3)
    feeds = make_pool(inputs, 1, seed=7)[0]
    out = session.infer(feeds)
    session.close()
    (y,) = out.values()
    assert y.shape == (3, 5)
    np.testing.assert_allclose(y, _reference(feeds["x"]), rtol=1e-4, atol=1e-5)


def test_factory_model_on_torch(tiny_models: dict[str, str]) -> None:
    art = resolve("tiny", "tests.fixtures.faulty_models:fine", inputs=(TensorSpec("x", (-1, 3, 16, 16)),))
    session, inputs = _load("torch", art, batch=2, threads=1)
    feeds = make_pool(inputs, 1, seed=1)[0]
    np.testing.assert_allclose(session.infer(feeds)["output"], _reference(feeds["x"]), rtol=1e-5, atol=1e-6)
    assert session.info.effective["threads"] == 1


def test_openvino_records_effective_precision_and_hint(tiny_models: dict[str, str]) -> None:
    _need("openvino", "tiny.xml", tiny_models)
    session, _ = _load("openvino", resolve("tiny", tiny_models["tiny.xml"]), performance_hint="THROUGHPUT",
                       num_requests=3)
    eff = session.info.effective
    assert eff["inference_precision_hint"] == "f32"
    assert eff["performance_hint"] == "THROUGHPUT"
    assert eff["enable_cpu_pinning"] is True
    assert isinstance(eff["num_streams"], int) and eff["num_streams"] >= 1
    assert session.recommended_in_flight() == 3
    session.close()


def test_onnxruntime_knobs_reach_session(tiny_models: dict[str, str]) -> None:
    session, _ = _load("onnxruntime", resolve("tiny", tiny_models["tiny.onnx"]), intra_op_threads=1,
                       execution_mode="parallel", graph_optimization_level="basic")
    assert session.info.effective["intra_op_threads"] == 1
    assert session.info.effective["graph_optimization_level"] == "basic"
    assert session.info.effective["execution_mode"] == "parallel"


def test_torch_bfloat16_runs_close_to_float32(tiny_models: dict[str, str]) -> None:
    session, inputs = _load("torch", resolve("tiny", tiny_models["tiny.pt2"]), dtype="bfloat16")
    feeds = make_pool(inputs, 1, seed=3)[0]
    np.testing.assert_allclose(session.infer(feeds)["output"], _reference(feeds["x"]), rtol=0.05, atol=0.05)


def test_torch_cuda_graphs_refused_on_cpu(tiny_models: dict[str, str]) -> None:
    with pytest.raises(BackendError, match="cuda_graphs: CUDA graphs need a cuda device"):
        _load("torch", resolve("tiny", tiny_models["tiny.pt2"]), cuda_graphs=True)


def test_null_backend_returns_at_once(tiny_models: dict[str, str]) -> None:
    session, inputs = _load("null", resolve("tiny", tiny_models["tiny.onnx"]))
    assert session.run(session.prepare(make_pool(inputs, 1, 0)[0])) is None


def test_backends_list_their_knobs() -> None:
    for name in ("onnxruntime", "openvino", "torch"):
        b = backends.get(name)
        assert b.available()
        assert "cpu" in b.devices()
        for knob in b.knobs("cpu").values():
            assert knob.doc and knob.domain()
            assert knob.validate(knob.default, "x") == knob.default


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="no CUDA device on this machine (GPU tests run on the device machine)")
@pytest.mark.parametrize("params", [{}, {"cuda_graphs": True}, {"dtype": "float16"}])
def test_torch_cuda_matches_cpu(params: dict[str, object], tiny_models: dict[str, str]) -> None:
    art = resolve("tiny", tiny_models["tiny.pt2"])
    session, inputs = _load("torch", art, batch=4, device="cuda:0", **params)
    pool = make_pool(inputs, 3, seed=5)
    for feeds in pool:  # replays of the CUDA graph must follow new inputs
        tol = 2e-2 if params.get("dtype") == "float16" else 1e-4
        np.testing.assert_allclose(session.infer(feeds)["output"], _reference(feeds["x"]), rtol=tol, atol=tol)
    assert str(session.info.runtime["device"]) == "cuda:0"
    session.close()
