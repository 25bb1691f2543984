"""TensorFlow (graph and XLA) and LiteRT (float, INT8) beside ONNX Runtime and OpenVINO on models converted from
one Keras model: equal outputs, the framework's speed-up in the report, INT8 LiteRT with lineage, and bad input
refused in one line. TensorFlow runs only in child processes (the trials', and the scripts below), never in the
test process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytest.importorskip("ai_edge_litert", reason="LiteRT is not installed (pip install 'inferlab[litert]')")
if __import__("importlib.util").util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed (pip install 'inferlab[tensorflow]')", allow_module_level=True)

DIGITS_PREPROCESS = ["--preprocess", "resize=[32,32]", "--preprocess", "scale=0.0625", "--preprocess", "layout=NHWC"]


@pytest.fixture(scope="module")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tf")
    subprocess.run([sys.executable, "-m", "tests.fixtures.tf_models", str(folder)], check=True, cwd=ROOT,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return folder


@pytest.fixture
def cache(tf_models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One conversion cache for the module's tests (converting through tf2onnx takes seconds)."""
    folder = tf_models / "cache"
    monkeypatch.setenv("INFERLAB_CACHE", str(folder))
    return folder


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferlab.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env={**os.environ, "COLUMNS": "400"})


COMPARE = r"""
import json, sys
import numpy as np
from inferlab import backends
from inferlab.models.artifact import resolve
from inferlab.models.introspect import concrete_inputs

folder = sys.argv[1]
x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
runs = [("tensorflow", "tiny.keras", {}), ("tensorflow", "tiny.keras", {"jit_compile": True}),
        ("tensorflow", "tiny_savedmodel", {}), ("litert", "tiny.keras", {"xnnpack": True}),
        ("litert", "tiny.keras", {"xnnpack": False}), ("onnxruntime", "tiny.keras", {}),
        ("openvino", "tiny.keras", {"inference_precision": "f32"})]
out = {}
for name, file, params in runs:
    b = backends.get(name)
    a = resolve("tiny", f"{folder}/{file}")
    s = b.load(a, "cpu", b.check_params("cpu", params, "params"), concrete_inputs(a, 4))
    y = next(iter(s.infer({"image": x}).values()))
    out[f"{name} {file} {params}"] = {"y": y.tolist(), "effective": {k: str(v) for k, v in s.info.effective.items()}}
    s.close()
two = resolve("two", f"{folder}/two.keras")
feeds = {s.name: np.random.default_rng(1).random(s.shape, dtype=np.float32) for s in concrete_inputs(two, 3)}
for name, params in [("tensorflow", {}), ("openvino", {"inference_precision": "f32"})]:
    b = backends.get(name)
    s = b.load(two, "cpu", b.check_params("cpu", params, "params"), concrete_inputs(two, 3))
    out[f"two {name}"] = next(iter(s.infer(feeds).values())).tolist()
print(json.dumps(out))
"""


def test_outputs_equal_across_the_five_runtimes(tf_models: Path, cache: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", COMPARE, str(tf_models)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    import numpy as np

    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # two inputs: each runtime feeds them by name, whatever order the converted model has
    np.testing.assert_allclose(np.array(got.pop("two openvino")), np.array(got.pop("two tensorflow")), rtol=1e-4,
                               atol=1e-5)
    reference = np.array(got.pop("tensorflow tiny.keras {}")["y"])
    assert reference.shape == (4, 10)
    for what, rec in got.items():
        np.testing.assert_allclose(np.array(rec["y"]), reference, rtol=1e-4, atol=1e-4, err_msg=what)
    assert got["tensorflow tiny.keras {'jit_compile': True}"]["effective"]["jit_compile"] == "True"
    assert got["litert tiny.keras {'xnnpack': False}"]["effective"]["xnnpack"] == "False"
    # each conversion was made once and kept by the source's content hash
    assert len(list(cache.glob("tiny-*.onnx"))) == 1 and len(list(cache.glob("tiny-*.tflite"))) == 1


def test_framework_speedup_in_the_published_table_and_report(tf_models: Path, cache: Path) -> None:
    db = tf_models / "speedup.db"
    proc = _cli("bench", "tiny.keras", "--backend", "tensorflow,litert,onnxruntime", "--framework", "tensorflow",
                "--time", "0.5", "--db", str(db), cwd=tf_models)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    published = _cli("results", "latest", "--db", str(db), cwd=tf_models).stdout
    assert "× tensorflow" in published and "the framework" in published  # the published table's cells
    report = tf_models / "speedup.md"
    assert _cli("report", "latest", "--db", str(db), "-o", str(report), cwd=tf_models).returncode == 0
    text = report.read_text()
    section = text.split("## Speed-up over the source framework", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| tiny")]
    assert {r.split(" | ")[4] for r in rows} == {"litert", "onnxruntime"}
    for r in rows:
        cells = r.strip("| ").split(" | ")
        fps, base, ratio = (float(cells[i].replace(",", "").rstrip("×")) for i in (7, 9, 10))
        assert ratio == pytest.approx(fps / base, rel=0.01)
        assert any(w in cells[11] for w in ("faster", "slower", "no significant change"))
    html = tf_models / "speedup.html"
    assert _cli("report", "latest", "--db", str(db), "-o", str(html), cwd=tf_models).returncode == 0
    assert 'id="speedup-table"' in html.read_text() and "chart-speedup-tiny" in html.read_text()


def test_litert_int8_is_derived_within_the_drop_with_lineage(tf_models: Path, cache: Path) -> None:
    db = tf_models / "quantize.db"
    proc = _cli("quantize", "tiny.keras", "--backend", "litert", "--dataset", "digits", "--split", "test",
                "--subset", "120", "--calibration", "60", "--max-drop", "0.05", *DIGITS_PREPROCESS, "--time", "0.3",
                "--output", str(tf_models / "derived"), "--db", str(db), cwd=tf_models)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    derived = tf_models / "derived" / "tiny.int8-aa.tflite"
    assert derived.is_file()
    assert "within the budget" in proc.stdout
    assert "I0000" not in proc.stdout + proc.stderr  # TensorFlow's native notices kept off the terminal
    lineage = _cli("lineage", str(derived), "--db", str(db), cwd=tf_models)
    assert "int8-aa" in lineage.stdout and "tiny.keras" in lineage.stdout
    shown = _cli("results", "latest", "--db", str(db), cwd=tf_models).stdout
    assert "int8" in shown  # the derived file's own precision, read from its tensors


@pytest.mark.parametrize(("model", "args", "says"), [
    ("nosig_savedmodel", ["--backend", "tensorflow"], "no 'serving_default' serving signature (signatures: predict)"),
    ("custom_op.tflite", ["--backend", "litert"], "unresolved custom op: Erfinv"),
    ("histogram_savedmodel", ["--backend", "tensorflow", "-p", "jit_compile=true"],
     "--param jit_compile: XLA cannot compile"),
    ("tiny.keras", ["--backend", "tensorflow", "-p", "jit_compile=true", "-p", "precision=bf16"],
     "--param precision: precision bf16 cannot go with jit_compile true"),
    ("tiny.keras", ["--backend", "tensorflow", "--framework", "tensorfow"], "did you mean 'tensorflow'"),
    ("tiny.keras", ["--backend", "tensorflow", "--device", "cuda:0"], "cuda:0"),
])
def test_bad_input_is_one_line_exit_2(tf_models: Path, cache: Path, model: str, args: list[str], says: str) -> None:
    db = tf_models / f"bad-{model}.db"
    proc = _cli("bench", model, *args, "--time", "0.2", "--db", str(db), cwd=tf_models)
    assert proc.returncode == 2, proc.stdout[-1500:] + proc.stderr[-1500:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert not db.exists() or "planned" not in proc.stdout


def test_savedmodel_and_keras_inputs_are_read_without_tensorflow(tf_models: Path) -> None:
    code = ("import sys; from inferlab.models.artifact import resolve; from inferlab.models.introspect import "
            "declared_inputs; print([(s.name, s.shape, s.dtype) for f in sys.argv[1:] for s in "
            "declared_inputs(resolve('m', f))]); assert 'tensorflow' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code, str(tf_models / "tiny_savedmodel"),
                           str(tf_models / "tiny.keras")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str([("image", (-1, 32, 32, 1), "float32")] * 2)


def test_a_keras_model_is_counted_on_its_onnx_conversion(tf_models: Path, cache: Path) -> None:
    import inferlab

    c = inferlab.analyze(tf_models / "tiny.keras", batch=2)
    # conv 3x3 1->8 at 32x32, conv 3x3 8->16 stride 2 (16x16 out), dense 16->10; per sample, times the batch
    assert c.macs == 2 * (32 * 32 * 8 * 9 + 16 * 16 * 16 * 72 + 16 * 10)
    assert c.format == "keras" and any("tf2onnx" in n for n in c.notes)
    from inferlab.errors import ModelError

    with pytest.raises(ModelError, match="counts a LiteRT model on the TensorFlow model"):
        inferlab.analyze(tf_models / "tiny.tflite")
