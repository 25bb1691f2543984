"""First contact with models shaped like real ones, from the command line alone: shapes, constants, ranges and
data given with flags; bad input refused in one line naming the flag, with nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.store import Store
from tests.cli.test_cli import _one_line_error, cli
from tests.fixtures.input_models import detector, text_encoder, vad

QUICK = ("--time", "0.3")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("input-models")
    return {"det": detector(d / "det.onnx"), "vad": vad(d / "vad.onnx"), "text": text_encoder(d / "text.onnx")}


def _runs(db: Path) -> int:
    if not db.exists():
        return 0
    store = Store(str(db))
    try:
        return len(store.runs())
    finally:
        store.close()


@pytest.mark.slow
def test_stateful_model_with_a_scalar_and_a_non_batch_first_state(models: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    out = cli("bench", models["vad"], "--backend", "onnxruntime,openvino", "--mode", "latency,throughput",
              "--batch", "2", "--shape", "input=?x512", "--input", "sr=16000", *QUICK, "--db", str(db))
    assert out.returncode == 0, out.stdout + out.stderr
    store = Store(str(db))
    results = store.results(store.run_info("latest").id)
    store.close()
    assert len(results) == 4 and all(r.status == "ok" for r in results)
    for r in results:
        assert r.samples == 2 * r.requests
        assert any("state" in w and "initial value" in w for w in r.warnings)


@pytest.mark.slow
def test_random_values_for_an_int64_scalar_fail_with_the_flag_to_give(models: dict[str, str], tmp_path: Path) -> None:
    out = cli("bench", models["vad"], "--shape", "input=1x64", *QUICK, "--db", str(tmp_path / "r.db"))
    assert out.returncode == 1
    text = " ".join(out.stdout.split())
    assert "sr (int64 scalar" in text and "--input sr=VALUE" in text, out.stdout


@pytest.mark.slow
def test_shape_forms_and_the_batch_they_give(models: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    # benchmark_app's NAME[dims] form; the batch comes from the shape when --batch is not given
    out = cli("bench", models["det"], "--shape", "images[4,3,32,48]", *QUICK, "--db", str(db))
    assert out.returncode == 0, out.stdout + out.stderr
    store = Store(str(db))
    (r,) = store.results(store.run_info("latest").id)
    store.close()
    assert r.spec.batch == 4 and r.samples == 4 * r.requests


@pytest.mark.slow
def test_text_encoder_ids_in_range_through_loadgen_offline(models: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    out = cli("bench", models["text"], "--shape", "input_ids=?x16", "--shape", "attention_mask=?x16",
              "--shape", "token_type_ids=?x16", "--input", "input_ids=0..1000", "--input", "attention_mask=1",
              "--input", "token_type_ids=0", "--batch", "2", "--scenario", "offline", "--time", "1", "--db", str(db))
    assert out.returncode == 0, out.stdout + out.stderr
    store = Store(str(db))
    (r,) = store.results(store.run_info("latest").id)
    store.close()
    assert r.status == "ok" and r.loadgen is not None and r.loadgen.validity == "VALID"


@pytest.mark.parametrize(("args", "needles"), [
    (("--shape", "images=1x3x64"), ("--shape images=1x3x64: rank 3", "[batch, 3, height, width] (rank 4)")),
    (("--shape", "imgs=1x3x64x64"), ("'imgs' is not an input of model 'det'", "did you mean 'images'")),
    (("--shape", "images=1x3x64x64", "--input", "images=missing.npy"), ("--input images:", "does not exist")),
    ((), ("input 'images' has dynamic dimensions [batch, 3, height, width]", "--shape images=1x3x<height>x<width>")),
    (("--shape", "1x3xAx4"), ("--shape '1x3xAx4': 'A' is not a dimension",)),
    (("--shape", "images=1x3x8x8", "--backend", "torch"),
     ("torch skips model 'det': 'det.onnx' is an .onnx file, and torch loads a torch.export .pt2",)),
    (("--shape", "images=1x3x8x8", "--mode", "fast"), ("--mode: 'fast' is not a mode",)),
    (("--shape", "images=1x3x8x8", "-p", "intra_op_thread=2"), ("--param intra_op_thread:", "intra_op_threads")),
])
def test_bad_input_is_one_line_naming_the_flag_and_nothing_is_stored(models: dict[str, str], tmp_path: Path,
                                                                      args: tuple[str, ...],
                                                                      needles: tuple[str, ...]) -> None:
    db = tmp_path / "r.db"
    _one_line_error(cli("bench", models["det"], *args, *QUICK, "--db", str(db), cwd=tmp_path), *needles)
    assert _runs(db) == 0


def test_a_value_outside_the_declared_range_and_the_dtype(models: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    shapes = [a for n in ("input_ids", "attention_mask", "token_type_ids") for a in ("--shape", f"{n}=1x8")]
    _one_line_error(cli("bench", models["vad"], "--shape", "input=1x8", "--input", "sr=1e30", "--db", str(db)),
                    "--input sr=1e+30: 1e+30 is not an int64 value")
    _one_line_error(cli("bench", models["text"], *shapes, "--input", "input_ids=10..2", "--db", str(db)),
                    "--input input_ids=10..2: the low end must be below the high end")
    assert _runs(db) == 0


def test_a_device_that_is_not_here_is_refused_before_anything_runs(models: dict[str, str], tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: cuda:0 is present")
    db = tmp_path / "r.db"
    _one_line_error(cli("bench", models["det"], "--shape", "1x3x8x8", "--device", "cuda", "--db", str(db)),
                    "--device: 'cuda': onnxruntime finds no such device here (it has cpu)")
    assert _runs(db) == 0


@pytest.mark.parametrize(("body", "needle"), [
    ("mode: []\n", "mode: an empty list runs nothing"),
    ("mode: fast\n", "mode: 'fast' is not a mode; choose latency, throughput or accuracy"),
    ("devices: []\n", "devices: an empty list; give at least one value"),
])
def test_config_sweeps_that_run_nothing_are_refused(models: dict[str, str], tmp_path: Path, body: str,
                                                     needle: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"models: [{{path: {models['det']}}}]\nbackends: [{{name: onnxruntime}}]\n{body}")
    _one_line_error(cli("run", str(config), "--db", str(tmp_path / "r.db")), needle)


def test_empty_models_and_knob_sweeps(models: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("models: []\nbackends: [{name: onnxruntime}]\n")
    _one_line_error(cli("run", str(config), "--db", str(tmp_path / "r.db")), "models: an empty list")
    config.write_text(f"models: [{{path: {models['det']}}}]\n"
                      "backends: [{name: onnxruntime, params: {intra_op_threads: []}}]\n")
    _one_line_error(cli("run", str(config), "--db", str(tmp_path / "r.db")),
                    "backends[0].params.intra_op_threads: an empty list sweeps nothing")


@pytest.mark.slow
def test_a_backend_that_cannot_load_the_format_is_skipped_with_a_line(models: dict[str, str], tmp_path: Path) -> None:
    out = cli("bench", models["det"], "--shape", "images=1x3x16x16", "--backend", "onnxruntime,torch", *QUICK,
              "--db", str(tmp_path / "r.db"))
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "skipped: torch skips model 'det': 'det.onnx' is an .onnx file" in text
