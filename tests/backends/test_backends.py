"""Each backend on a tiny real model: outputs agree across runtimes; knobs reach the runtime; throughput modes
split the cores between requests in flight."""

from __future__ import annotations

import numpy as np
import pytest

from inferlab import backends
from inferlab.backends.base import Backend, Knob, int_knob, split_cores, usable_cores
from inferlab.errors import BackendError
from inferlab.models import resolve
from inferlab.models.artifact import Artifact
from inferlab.models.inputs import make_pool, merge
from inferlab.models.introspect import declared_inputs
from inferlab.models.tensors import TensorSpec
from inferlab.records.trial import Scalar
from tests.fixtures.devices import needs_cuda


def _load(backend: str, art: Artifact, batch: int = 2, device: str = "cpu", mode: str = "latency",  # type: ignore[no-untyped-def]
          **params: object):
    b = backends.get(backend)
    inputs = merge(declared_inputs(art) or (), art.inputs, batch, art.name)
    return b.load(art, device, b.check_params(device, params, "params", mode=mode), inputs, mode=mode), inputs


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_factory_model_on_torch(tiny_models: dict[str, str]) -> None:
    art = resolve("tiny", "tests.fixtures.faulty_models:fine", inputs=(TensorSpec("x", (-1, 3, 16, 16)),))
    session, inputs = _load("torch", art, batch=2, threads=1)
    feeds = make_pool(inputs, 1, seed=1)[0]
    np.testing.assert_allclose(session.infer(feeds)["output"], _reference(feeds["x"]), rtol=1e-5, atol=1e-6)
    assert session.info.effective["threads"] == 1


@pytest.mark.slow
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


@pytest.mark.slow
def test_onnxruntime_knobs_reach_session(tiny_models: dict[str, str]) -> None:
    session, _ = _load("onnxruntime", resolve("tiny", tiny_models["tiny.onnx"]), intra_op_threads=1,
                       execution_mode="parallel", graph_optimization_level="basic")
    assert session.info.effective["intra_op_threads"] == 1
    assert session.info.effective["graph_optimization_level"] == "basic"
    assert session.info.effective["execution_mode"] == "parallel"


@pytest.mark.slow
def test_torch_bfloat16_runs_close_to_float32(tiny_models: dict[str, str]) -> None:
    session, inputs = _load("torch", resolve("tiny", tiny_models["tiny.pt2"]), dtype="bfloat16")
    feeds = make_pool(inputs, 1, seed=3)[0]
    np.testing.assert_allclose(session.infer(feeds)["output"], _reference(feeds["x"]), rtol=0.05, atol=0.05)


@pytest.mark.slow
def test_torch_cuda_graphs_refused_on_cpu(tiny_models: dict[str, str]) -> None:
    with pytest.raises(BackendError, match="cuda_graphs: CUDA graphs need a cuda device"):
        _load("torch", resolve("tiny", tiny_models["tiny.pt2"]), cuda_graphs=True)


@pytest.mark.slow
def test_null_backend_returns_at_once(tiny_models: dict[str, str]) -> None:
    session, inputs = _load("null", resolve("tiny", tiny_models["tiny.onnx"]))
    assert session.run(session.prepare(make_pool(inputs, 1, 0)[0])) is None


@pytest.mark.slow
def test_backends_list_their_knobs() -> None:
    for name in ("onnxruntime", "openvino", "torch"):
        b = backends.get(name)
        assert b.available()
        assert "cpu" in b.devices()
        for knob in b.knobs("cpu").values():
            assert knob.doc and knob.domain()
            assert knob.validate(knob.default, "x") == knob.default



@pytest.mark.slow
@pytest.mark.gpu
@needs_cuda
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


class _Knobbed(Backend):
    """A backend of two knobs with a throughput-mode default; it loads nothing: check_params's own logic."""

    name = "knobbed"

    def knobs(self, device: str) -> dict[str, Knob]:
        return {"hint": Knob("hint", "goal", "LATENCY", choices=("LATENCY", "THROUGHPUT")),
                "requests": int_knob("requests", "in flight", 0)}

    def mode_defaults(self, device: str, mode: str) -> dict[str, Scalar]:
        return {"hint": "THROUGHPUT", "requests": 4} if mode == "throughput" else {}


def test_check_params_applies_mode_defaults_only_to_keys_left_out() -> None:
    b = _Knobbed()
    assert b.check_params("cpu", {}, "p") == {"hint": "LATENCY", "requests": 0}
    assert b.check_params("cpu", {}, "p", mode="latency") == {"hint": "LATENCY", "requests": 0}
    assert b.check_params("cpu", {}, "p", mode="throughput") == {"hint": "THROUGHPUT", "requests": 4}
    # what the user gave wins, even where it equals the knob's declared default
    assert b.check_params("cpu", {"hint": "latency"}, "p", mode="throughput") == {"hint": "LATENCY", "requests": 4}
    assert b.check_params("cpu", {"requests": 0}, "p", mode="throughput") == {"hint": "THROUGHPUT", "requests": 0}
    with pytest.raises(BackendError, match=r"p\.hint: 'fast' is not one of"):
        b.check_params("cpu", {"hint": "fast"}, "p", mode="throughput")


@pytest.mark.parametrize(("mode", "hint"), [("latency", "LATENCY"), ("accuracy", "LATENCY"),
                                            ("SingleStream", "LATENCY"), ("MultiStream", "LATENCY"),
                                            ("throughput", "THROUGHPUT"), ("Server", "THROUGHPUT"),
                                            ("Offline", "THROUGHPUT")])
def test_openvino_throughput_hint_is_the_default_of_async_modes(mode: str, hint: str) -> None:
    b = backends.get("openvino")
    assert b.check_params("cpu", {}, "p", mode=mode)["performance_hint"] == hint
    assert b.check_params("cpu", {"performance_hint": "LATENCY"}, "p", mode=mode)["performance_hint"] == "LATENCY"
    assert b.check_params("cpu", {}, "p", mode=mode)["num_requests"] == 0  # the compiled model's optimum


def test_cpu_runtimes_resolve_their_split_at_load() -> None:
    # ORT and torch leave 0 (auto) in the parameters: the split depends on the trial process's CPUs
    for name, key in (("onnxruntime", "intra_op_threads"), ("torch", "threads")):
        params = backends.get(name).check_params("cpu", {}, "p", mode="throughput")
        assert params["in_flight"] == 0 and params[key] == 0


@pytest.mark.parametrize(("cores", "in_flight", "threads", "cap", "split"), [
    (2, 0, 0, None, (2, 1)), (16, 0, 0, None, (16, 1)), (1, 0, 0, None, (1, 1)),
    (16, 0, 0, 4, (4, 4)), (2, 0, 0, 4, (2, 1)), (6, 0, 0, 4, (4, 1)),
    (8, 0, 2, None, (4, 2)), (8, 4, 0, None, (4, 2)), (2, 3, 0, None, (3, 1)), (2, 0, 4, None, (1, 4)),
    (8, 3, 5, None, (3, 5)), (16, 0, 1, 4, (16, 1)),
])
def test_split_cores(cores: int, in_flight: int, threads: int, cap: int | None, split: tuple[int, int]) -> None:
    assert split_cores(cores, in_flight, threads, cap) == split


@pytest.mark.slow
@pytest.mark.skipif(usable_cores() < 2, reason="splitting the cores between requests needs at least 2 CPUs")
@pytest.mark.parametrize(("backend", "file", "threads"), [("onnxruntime", "tiny.onnx", "intra_op_threads"),
                                                          ("torch", "tiny.pt2", "threads")])
def test_throughput_mode_splits_the_cores_between_requests(backend: str, file: str, threads: str,
                                                           tiny_models: dict[str, str]) -> None:
    cores = usable_cores()
    art = resolve("tiny", tiny_models[file])
    session, _ = _load(backend, art, mode="throughput")
    eff = session.info.effective
    assert isinstance(eff["in_flight"], int) and isinstance(eff[threads], int)
    assert eff["in_flight"] > 1
    assert eff["in_flight"] * eff[threads] <= cores
    assert session.recommended_in_flight() == eff["in_flight"]
    session.close()
    latency, _ = _load(backend, art, mode="latency")  # as before: one request, the runtime's own threads
    assert latency.info.effective["in_flight"] == latency.recommended_in_flight() == 1
    if backend == "onnxruntime":
        assert latency.info.effective[threads] == cores
        assert session.info.notes == []  # one-thread requests on their own calling threads: truly parallel
    else:
        assert any("GIL" in n for n in session.info.notes)  # torch says its requests overlap only partly
    latency.close()


@pytest.mark.slow
def test_user_given_split_is_kept_and_oversubscription_is_said(tiny_models: dict[str, str]) -> None:
    cores = usable_cores()
    session, _ = _load("onnxruntime", resolve("tiny", tiny_models["tiny.onnx"]), mode="throughput",
                       in_flight=cores + 1, intra_op_threads=2)
    assert session.info.effective["in_flight"] == cores + 1
    assert session.info.effective["intra_op_threads"] == 2
    assert any("oversubscribed" in n for n in session.info.notes)
    assert any("share the session's one pool" in n for n in session.info.notes)
    session.close()


@pytest.mark.slow
def test_openvino_throughput_mode_takes_its_own_recommendation(tiny_models: dict[str, str]) -> None:
    _need("openvino", "tiny.xml", tiny_models)
    art = resolve("tiny", tiny_models["tiny.xml"])
    session, _ = _load("openvino", art, mode="throughput")
    eff = session.info.effective
    assert eff["performance_hint"] == "THROUGHPUT"
    assert eff["in_flight"] == eff["optimal_number_of_infer_requests"] == session.recommended_in_flight()
    assert isinstance(eff["num_streams"], int) and isinstance(eff["inference_num_threads"], int)
    assert eff["inference_num_threads"] <= usable_cores()  # streams x threads per stream fit the CPUs
    if usable_cores() >= 2:
        assert eff["num_streams"] > 1 and eff["in_flight"] > 1
    assert session.info.notes == []
    session.close()
    # asked for LATENCY, its one stream serves requests one after another: the result says so
    one, _ = _load("openvino", art, mode="throughput", performance_hint="LATENCY", num_requests=2)
    assert one.info.effective["num_streams"] == 1 and one.recommended_in_flight() == 2
    assert any("1 execution stream" in n for n in one.info.notes)
    one.close()


@pytest.mark.slow
@pytest.mark.gpu
@needs_cuda
def test_torch_cuda_throughput_mode_keeps_one_request_and_says_so(tiny_models: dict[str, str]) -> None:
    session, _ = _load("torch", resolve("tiny", tiny_models["tiny.pt2"]), device="cuda:0", mode="throughput")
    assert session.info.effective["in_flight"] == session.recommended_in_flight() == 1
    assert any("1 request in flight" in n for n in session.info.notes)
    session.close()
