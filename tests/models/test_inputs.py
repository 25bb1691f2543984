"""Input specs: which axis carries the batch, the user's hints merged with the model's declaration, and the
feeds (random, constant, real data) in each input's own layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferlab.errors import InputSpecError, ModelError
from inferlab.models.artifact import resolve
from inferlab.models.inputs import Wording, infer_batch_axes, load_samples, make_pool, merge
from inferlab.models.introspect import onnx_inputs
from inferlab.models.tensors import InputHint, TensorSpec
from tests.fixtures.input_models import detector, text_encoder, vad

CLI = Wording(None)


def test_batch_axis_from_names_scalars_and_states(tmp_path: Path) -> None:
    specs = {s.name: s for s in onnx_inputs(Path(vad(tmp_path / "vad.onnx")))}
    assert specs["input"].batch_axis == 0
    assert specs["state"].batch_axis == 1          # named "batch" at axis 1
    assert specs["sr"].batch_axis is None          # rank 0
    assert specs["state"].dims_text() == "[2, batch, 128]"


def test_unnamed_state_beside_a_dynamic_batch_carries_it_in_its_dynamic_axis() -> None:
    specs = infer_batch_axes([TensorSpec("input", (-1, -1)), TensorSpec("state", (2, -1, 128)),
                              TensorSpec("sr", (), "int64")])
    assert [s.batch_axis for s in specs] == [0, 1, None]
    # a model whose inputs are all fixed keeps axis 0 as its (fixed) batch
    fixed = infer_batch_axes([TensorSpec("x", (1, 3, 8, 8))])
    assert fixed[0].batch_axis == 0


def test_merge_puts_the_batch_in_each_inputs_own_axis(tmp_path: Path) -> None:
    declared = onnx_inputs(Path(vad(tmp_path / "vad.onnx")))
    got = merge(declared, [InputHint("input", shape=(-1, 512)), InputHint("sr", value=16000)], 4, "vad", CLI)
    by = {s.name: s for s in got}
    assert by["input"].shape == (4, 512)
    assert by["state"].shape == (2, 4, 128)
    assert by["sr"].shape == () and by["sr"].value == 16000
    pool = make_pool(got, 3, seed=0)
    assert pool[0]["state"].shape == (2, 4, 128) and pool[0]["sr"].dtype == np.int64
    assert all(int(p["sr"]) == 16000 for p in pool)
    assert not np.array_equal(pool[0]["input"], pool[1]["input"])  # distinct feeds, rotated by the drivers


def test_declared_batch_axis_and_none(tmp_path: Path) -> None:
    declared = onnx_inputs(Path(vad(tmp_path / "vad.onnx", named=False)))
    got = merge(declared, [InputHint("input", shape=(-1, 64)), InputHint("state", batch_axis="none",
                                                                         shape=(2, 1, 128))], 8, "vad")
    by = {s.name: s for s in got}
    assert by["state"].batch_axis is None and by["state"].shape == (2, 1, 128)
    assert by["input"].shape == (8, 64)


def test_dynamic_dims_without_a_shape_name_the_input_its_dims_and_the_flag(tmp_path: Path) -> None:
    declared = onnx_inputs(Path(detector(tmp_path / "det.onnx")))
    with pytest.raises(InputSpecError, match=r"input 'images' has dynamic dimensions \[batch, 3, height, width\]; "
                                             r"give its shape: --shape images=1x3x<height>x<width>"):
        merge(declared, [], 1, "det", CLI)
    with pytest.raises(InputSpecError, match=r"x.yaml: models\[0\].inputs.images.shape: \[2, 3, <height>, <width>\]"):
        merge(declared, [], 2, "det", Wording("x.yaml: models[0]"))


@pytest.mark.parametrize(("hint", "message"), [
    (InputHint("images", shape=(1, 3, 64)), r"--shape images=1x3x64: rank 3, but input 'images' is "
                                            r"\[batch, 3, height, width\] \(rank 4\)"),
    (InputHint("images", shape=(1, 4, 64, 64)), r"dimension 1 is 4, but the model fixes it at 3"),
    (InputHint("imgs", shape=(1, 3, 64, 64)), r"--shape/--input imgs: 'imgs' is not an input of model 'det'; "
                                              r"did you mean 'images'\?"),
    (InputHint("images", shape=(1, 3, 8, 8), batch_axis=7), r"--batch-axis images=7: input 'images' .* has no axis 7"),
])
def test_hints_that_do_not_fit(tmp_path: Path, hint: InputHint, message: str) -> None:
    declared = onnx_inputs(Path(detector(tmp_path / "det.onnx")))
    with pytest.raises(InputSpecError, match=message):
        merge(declared, [hint], 1, "det", CLI)


@pytest.mark.parametrize(("hint", "message"), [
    (InputHint("input_ids", value=-3.0), r"--input input_ids=-3 .*is outside|not an int64"),
    (InputHint("attention_mask", low=5, high=2), r"the low end must be below the high end"),
    (InputHint("input_ids", value=2.5), r"2.5 is not an int64 value"),
    (InputHint("input_ids", low=0, high=999, value=5000), r"5000 is outside the declared range 0..999"),
])
def test_values_outside_what_the_input_takes(tmp_path: Path, hint: InputHint, message: str) -> None:
    declared = onnx_inputs(Path(text_encoder(tmp_path / "te.onnx")))
    shaped = [InputHint(n, shape=(-1, 16)) for n in ("attention_mask", "token_type_ids")]
    hints = [*shaped, InputHint(hint.name, shape=(-1, 16), dtype=hint.dtype, low=hint.low, high=hint.high,
                                value=hint.value)] if hint.name != "attention_mask" else [
        InputHint("input_ids", shape=(-1, 16)), InputHint("token_type_ids", shape=(-1, 16)),
        InputHint("attention_mask", shape=(-1, 16), low=hint.low, high=hint.high)]
    if hint.value == -3.0:  # int64 holds -3: only a declared range refuses it
        hints[-1] = InputHint("input_ids", shape=(-1, 16), low=0, high=999, value=-3)
        message = r"-3 is outside the declared range 0..999"
    with pytest.raises(InputSpecError, match=message):
        merge(declared, hints, 1, "te", CLI)


def test_uint8_and_bool_limits() -> None:
    with pytest.raises(InputSpecError, match=r"300 is not a uint8 value \(it holds 0..255\)"):
        merge([TensorSpec("m", (-1, 4), "uint8")], [InputHint("m", value=300)], 1, "m", CLI)
    with pytest.raises(InputSpecError, match=r"2 is not a bool value"):
        merge([TensorSpec("m", (-1, 4), "bool")], [InputHint("m", value=2)], 1, "m", CLI)


def test_real_data_from_npy_and_images_in_the_inputs_layout(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    declared = onnx_inputs(Path(detector(tmp_path / "det.onnx")))
    # the image size fills the dynamic height and width; samples are stacked in NCHW
    (spec,) = merge(declared, [InputHint("images", data=str(folder))], 2, "det", CLI)
    assert spec.shape == (2, 3, 20, 30)
    pool = make_pool([spec], 3, seed=0)
    assert pool[0]["images"].shape == (2, 3, 20, 30)
    assert pool[0]["images"][1, 0, 0, 0] == 40.0 and pool[1]["images"][0, 0, 0, 0] == 80.0  # walks the samples
    # a given shape resizes the images
    (spec,) = merge(declared, [InputHint("images", shape=(-1, 3, 8, 8), data=str(folder))], 1, "det", CLI)
    assert load_samples(spec).shape == (3, 3, 8, 8)
    arrays = tmp_path / "x.npy"
    np.save(arrays, np.arange(5 * 3 * 4 * 4, dtype=np.float32).reshape(5, 3, 4, 4))
    (spec,) = merge(declared, [InputHint("images", data=str(arrays))], 4, "det", CLI)
    assert spec.shape == (4, 3, 4, 4) and load_samples(spec).shape == (5, 3, 4, 4)


def test_npy_samples_for_a_state_input_go_along_its_batch_axis(tmp_path: Path) -> None:
    declared = onnx_inputs(Path(vad(tmp_path / "vad.onnx")))
    states = tmp_path / "state.npy"
    np.save(states, np.stack([np.full((2, 128), k, dtype=np.float32) for k in range(3)]))
    got = merge(declared, [InputHint("input", shape=(-1, 8)), InputHint("state", data=str(states)),
                           InputHint("sr", value=8000)], 2, "vad", CLI)
    feeds = make_pool(got, 2, seed=0)
    assert feeds[0]["state"].shape == (2, 2, 128)
    assert feeds[0]["state"][0, 1, 0] == 1.0 and feeds[1]["state"][0, 0, 0] == 2.0


@pytest.mark.parametrize(("make", "kind"), [
    ("pickle", "a pickled module or state_dict"), ("script", "a TorchScript module"), ("text", "not even a zip"),
])
def test_pt_files_that_are_not_torch_export_archives_are_named_at_plan_time(tmp_path: Path, make: str,
                                                                              kind: str) -> None:
    path = tmp_path / "model.pt"
    if make == "text":
        path.write_text("not a model")
    else:
        import torch

        m = torch.nn.Linear(4, 2)
        if make == "pickle":
            torch.save(m.state_dict(), path)
        else:
            torch.jit.save(torch.jit.script(m), str(path))
    with pytest.raises(ModelError, match=f"{kind}.*torch.export.save"):
        resolve("model", str(path))


def test_a_named_dimension_given_once_sizes_every_input_that_shares_it(tmp_path: Path) -> None:
    declared = onnx_inputs(Path(text_encoder(tmp_path / "te.onnx")))
    got = merge(declared, [InputHint("input_ids", shape=(1, 64), low=0, high=1000)], 2, "te", CLI)
    # the trial's batch (2) wins over the size the shape gave the dynamic batch axis
    assert [s.shape for s in got] == [(2, 64), (2, 64), (2, 64)]
