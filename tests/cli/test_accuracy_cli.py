"""`inferlab accuracy` and `inferlab compare` end to end on a real classifier; accuracy inside `run`; bad
datasets are one-line errors with nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inferlab.store import Store
from tests.cli.test_cli import _one_line_error, cli
from tests.conftest import FAST_MEASURE
from tests.fixtures.datasets import centroid_classifier, image_list, voc_tree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return centroid_classifier(tmp_path_factory.mktemp("m") / "centroids.onnx")


def test_accuracy_across_backends_and_batches(model: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    db = str(tmp_path / "a.db")
    out = cli("accuracy", str(model), "--dataset", "digits", "--split", "test", "--backend", "onnxruntime,openvino",
              "--batch", "1,7", "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "top-1" in out.stdout and "digits-test" in out.stdout
    store = Store(db)
    try:
        results = store.results()
        assert [r.status for r in results] == ["ok"] * 4
        top1 = [r.accuracy.metrics["top1"] for r in results if r.accuracy]
        assert top1[0] == top1[1] > 0.85  # batch 7 pads the last batch (540 = 77·7 + 1) and drops the padding
        assert abs(top1[2] - top1[0]) < 0.01 and top1[2] == top1[3]  # OpenVINO (its default precision)
        acc = results[0].accuracy
        assert acc is not None
        rows = store.metrics(acc.dataset_hash)
        assert len(rows) == 8 and {name for _, _, name, _ in rows} == {"top1", "top5"}
        assert sorted(v for _, label, name, v in rows if name == "top1") == sorted(top1)
    finally:
        store.close()
    cmp = cli("compare", "latest:1", "latest:2", "--db", db)
    assert cmp.returncode == 0, cmp.stderr
    assert "top-1 agreement" in cmp.stdout and "100.00%" in cmp.stdout and "drop +0.00 pp" in cmp.stdout
    bad = cli("compare", "latest:1", "latest:9", "--db", db)
    _one_line_error(bad, "latest:9", "has 4 results")


def test_accuracy_with_speed_in_a_config(model: Path, tmp_path: Path) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({
        "name": "acc", "models": [{"path": str(model)}], "backends": [{"name": "onnxruntime"}],
        "mode": "latency", "dataset": {"format": "digits", "split": "test", "subset": 100},
        "accuracy": {"with_speed": True, "metrics": ["top1"]}, "measure": FAST_MEASURE}))
    db = str(tmp_path / "r.db")
    out = cli("run", str(config), "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    [r] = Store(db).results()
    assert r.latency is not None and r.accuracy is not None and r.accuracy.samples == 100
    assert list(r.accuracy.metrics) == ["top1"] and r.accuracy.outputs_path
    assert Path(r.accuracy.outputs_path).is_file()


def test_missing_annotation_is_a_one_line_error(model: Path, tmp_path: Path) -> None:
    root = voc_tree(tmp_path / "voc", {"a": [], "b": []})
    (root / "Annotations" / "a.xml").unlink()
    db = tmp_path / "x.db"
    _one_line_error(cli("accuracy", str(model), "--dataset", str(root), "--db", str(db)), "a.jpg", "a.xml")
    assert not db.exists()


def test_label_outside_the_models_classes_fails_the_trial_naming_the_file(model: Path, tmp_path: Path) -> None:
    root, labels = image_list(tmp_path / "imgs", [1, 12])
    db = str(tmp_path / "x.db")
    out = cli("accuracy", str(model), "--dataset", str(root), "--labels", str(labels), "--preprocess", "color=gray",
              "--preprocess", "resize=[8,8]", "--db", db)
    assert out.returncode == 1
    [r] = Store(db).results()
    assert r.status == "failed" and r.reason is not None
    assert "labels.txt:2" in r.reason and "label 12" in r.reason and "\n" not in r.reason


@pytest.mark.parametrize(("data", "needles"), [
    ({"mode": "latency", "dataset": {"format": "digits"}}, ["dataset: no trial uses it"]),
    ({"mode": "accuracy"}, ["needs a dataset"]),
    ({"mode": "accuracy", "dataset": {"format": "digits"}, "accuracy": {"metrics": ["coco_map"]}},
     ["accuracy.metrics", "'coco_map' is a detection metric"]),
    ({"mode": "accuracy", "dataset": {"format": "npz"}}, ["dataset", "needs a path"]),
])
def test_accuracy_config_errors(model: Path, tmp_path: Path, data: dict, needles: list[str]) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({"models": [{"path": str(model)}], "backends": [{"name": "onnxruntime"}],
                                      **data}))
    _one_line_error(cli("run", str(config), "--db", str(tmp_path / "x.db")), *needles)
    assert not (tmp_path / "x.db").exists()
