"""The example model panel (examples/build_panel.py): the inputs and outputs each ONNX file declares, that ONNX
Runtime runs each at batch 1 and 2 matching eager torch, and the value ranges the models enforce."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

pytestmark = pytest.mark.slow  # exports six models and loads them in ONNX Runtime: tens of seconds

ROOT = Path(__file__).resolve().parents[2]
P2O = "p2o.DynamicDimension."

# The contract the input machinery reads: (name, dtype, dims), a str dim being a named dynamic axis.
DECLARED: dict[str, tuple[list[tuple[str, str, list[int | str]]], list[tuple[str, str, list[int | str]]]]] = {
    "detector": ([("images", "float", ["batch", 3, "height", "width"])],
                 [("boxes", "float", ["batch", "anchors", 4]), ("scores", "float", ["batch", "anchors", 80])]),
    "ocr_rec": ([("x", "float", ["batch", 3, 48, "width"])], [("softmax", "float", ["batch", "steps", 97])]),
    "ocr_det": ([("x", "float", [P2O + "0", 3, P2O + "1", P2O + "2"])],
                [("sigmoid_0.tmp_0", "float", [P2O + "3", 1, P2O + "4", P2O + "5"])]),
    "vad": ([("input", "float", ["batch", "samples"]), ("state", "float", [2, "batch", 128]), ("sr", "int64", [])],
            [("output", "float", ["batch", 1]), ("stateN", "float", [2, "batch", 128])]),
    "text_encoder": ([(n, "int64", ["batch", "sequence"]) for n in ("input_ids", "attention_mask", "token_type_ids")],
                     [("last_hidden_state", "float", ["batch", "sequence", 128]),
                      ("pooler_output", "float", ["batch", 128])]),
    "masked_pool": ([("features", "float", ["batch", "tokens", 64]), ("mask", "bool", ["batch", "tokens"])],
                    [("embedding", "float", ["batch", 32])]),
}


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path]:
    if str(ROOT / "examples") not in sys.path:  # examples/ is scripts, not a package
        sys.path.insert(0, str(ROOT / "examples"))
    module = importlib.import_module("build_panel")
    out = tmp_path_factory.mktemp("panel")
    module.build(out, formats=("onnx",))
    return module, out


def _session(out: Path, name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(out / f"{name}.onnx"), providers=["CPUExecutionProvider"])


def _declared(values: Iterable[onnx.ValueInfoProto]) -> list[tuple[str, str, list[int | str]]]:
    rows = []
    for v in values:
        t = v.type.tensor_type
        dims: list[int | str] = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim]
        rows.append((v.name, onnx.TensorProto.DataType.Name(t.elem_type).lower(), dims))
    return rows


def test_the_panel_is_the_six_models_declared_here(panel: tuple[ModuleType, Path]) -> None:
    module, out = panel
    assert set(module.PANEL) == set(DECLARED)
    assert {p.name for p in out.iterdir()} == {f"{n}.onnx" for n in DECLARED}


@pytest.mark.parametrize("name", list(DECLARED))
def test_onnx_declares_named_dynamic_axes_dtypes_and_ranks(panel: tuple[ModuleType, Path], name: str) -> None:
    graph = onnx.load(str(panel[1] / f"{name}.onnx")).graph
    inputs, outputs = DECLARED[name]
    assert _declared(graph.input) == inputs
    assert _declared(graph.output) == outputs


@pytest.mark.parametrize("name", list(DECLARED))
def test_onnxruntime_runs_batch_1_and_2_as_eager_torch_does(panel: tuple[ModuleType, Path], name: str) -> None:
    module, out = panel
    spec = module.PANEL[name]
    model, sess = spec.factory(), _session(out, name)
    for batch in (1, 2):
        for size in (0, 1):  # two values of every other dynamic dim
            feeds = spec.feeds(batch, size)
            got = sess.run(list(spec.outputs), {k: v.numpy() for k, v in feeds.items()})
            with torch.no_grad():
                expected = model(*(feeds[i] for i in spec.inputs))
            expected = expected if isinstance(expected, tuple) else (expected,)
            for (o, _, dims), g, e in zip(DECLARED[name][1], got, expected, strict=True):
                assert g.shape[dims.index("batch") if "batch" in dims else 0] == batch, o
                np.testing.assert_allclose(g, e.numpy(), rtol=1e-3, atol=1e-4, err_msg=f"{name}.{o}")


def _vad_feeds(sr: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"input": rng.uniform(-1, 1, (2, 512)).astype(np.float32), "state": np.zeros((2, 2, 128), np.float32),
            "sr": np.array(sr, dtype=np.int64)}


def test_vad_rejects_a_sample_rate_other_than_8000_or_16000(panel: tuple[ModuleType, Path]) -> None:
    sess = _session(panel[1], "vad")
    with pytest.raises(InvalidArgument, match="out of data bounds"):
        sess.run(None, _vad_feeds(12345))


def test_vad_takes_a_different_branch_per_sample_rate_and_carries_state(panel: tuple[ModuleType, Path]) -> None:
    sess = _session(panel[1], "vad")
    p8, s8 = sess.run(None, _vad_feeds(8000))
    p16, s16 = sess.run(None, _vad_feeds(16000))
    assert not np.allclose(p8, p16) and not np.allclose(s8, s16)
    assert ((p16 > 0) & (p16 < 1)).all()
    again, _ = sess.run(None, {**_vad_feeds(16000), "state": s16})  # the next chunk sees the carried state
    assert not np.allclose(again, p16)


def test_text_encoder_rejects_ids_outside_its_vocabulary(panel: tuple[ModuleType, Path]) -> None:
    module, out = panel
    vocab = module.PANEL["text_encoder"].factory().VOCAB
    assert vocab == 1000
    sess = _session(out, "text_encoder")
    ones = np.ones((1, 8), np.int64)
    sess.run(None, {"input_ids": ones * (vocab - 1), "attention_mask": ones, "token_type_ids": ones})
    with pytest.raises(InvalidArgument, match="out of data bounds"):
        sess.run(None, {"input_ids": ones * vocab, "attention_mask": ones, "token_type_ids": ones * 0})


def test_masked_pool_ignores_masked_tokens(panel: tuple[ModuleType, Path]) -> None:
    sess = _session(panel[1], "masked_pool")
    rng = np.random.default_rng(1)
    features = rng.standard_normal((1, 6, 64)).astype(np.float32)
    mask = np.array([[True, True, True, False, False, False]])
    noisy = features.copy()
    noisy[:, 3:] = 100.0
    a = sess.run(None, {"features": features, "mask": mask})[0]
    b = sess.run(None, {"features": noisy, "mask": mask})[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, rtol=1e-5)
