"""Each dataset format read from generated fixtures; subsets and hashes; bad files are one-line errors naming
the file; pre- and post-processing on hand-made arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferlab.accuracy.datasets import guess_format, open_dataset
from inferlab.accuracy.postprocess import detections
from inferlab.accuracy.preprocess import Geometry, preprocess
from inferlab.errors import DatasetError
from inferlab.records.accuracy import DatasetConfig, Postprocess, Preprocess
from tests.fixtures.datasets import coco_tree, image_list, imagenet_tree, voc_tree


def _one_line(exc: pytest.ExceptionInfo[DatasetError], *needles: str) -> None:
    text = str(exc.value)
    assert "\n" not in text
    for n in needles:
        assert n in text, text


def test_digits_split_and_subsets() -> None:
    test = open_dataset(DatasetConfig(format="digits", split="test"))
    train = open_dataset(DatasetConfig(format="digits", split="train"))
    assert len(test) == 540 and len(train) == 1257
    assert {it.key for it in test.items}.isdisjoint({it.key for it in train.items})
    assert test.sample(0).shape == (8, 8, 1) and test.classes == tuple("0123456789")
    first = open_dataset(DatasetConfig(format="digits", split="test", subset=50))
    assert [it.key for it in first.items] == [it.key for it in test.items[:50]]
    r1 = open_dataset(DatasetConfig(format="digits", subset=50, subset_mode="random", seed=1))
    r2 = open_dataset(DatasetConfig(format="digits", subset=50, subset_mode="random", seed=1))
    r3 = open_dataset(DatasetConfig(format="digits", subset=50, subset_mode="random", seed=2))
    assert r1.content_hash() == r2.content_hash() != r3.content_hash()
    assert first.resolved().size == 50 and first.content_hash() != test.content_hash()


def test_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.arange(24, dtype=np.float32).reshape(3, 2, 4), y=np.array([2, 0, 1]))
    ds = open_dataset(DatasetConfig(format="npz", path="d.npz"), tmp_path)
    assert len(ds) == 3 and ds.labels().tolist() == [2, 0, 1]
    assert ds.sample(1).tolist() == np.arange(8, 16).reshape(2, 4).tolist()
    np.savez(tmp_path / "bad.npz", features=np.zeros(3))
    with pytest.raises(DatasetError) as exc:
        open_dataset(DatasetConfig(format="npz", path=str(tmp_path / "bad.npz")))
    _one_line(exc, "bad.npz", "no samples array")


def test_imagenet_folders(tmp_path: Path) -> None:
    root = imagenet_tree(tmp_path / "inet")
    ds = open_dataset(DatasetConfig(format="imagenet", path=str(root)))
    assert ds.classes == ("cat", "dog", "fox") and ds.labels().tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.sample(0).shape == (24, 32, 3) and ds.sample(0).dtype == np.uint8
    names = tmp_path / "names.txt"
    names.write_text("fox\ncat\ndog\n")  # the model's own class order
    ds2 = open_dataset(DatasetConfig(format="imagenet", path=str(root), labels=str(names)))
    assert ds2.labels().tolist() == [1, 1, 2, 2, 0, 0]
    assert guess_format(str(root)) == "imagenet"


def test_image_list(tmp_path: Path) -> None:
    root, labels = image_list(tmp_path / "imgs", [3, 1, 4])
    ds = open_dataset(DatasetConfig(format="image-list", path=str(root), labels=str(labels)))
    assert ds.labels().tolist() == [3, 1, 4]
    assert guess_format(str(root), str(labels)) == "image-list"


def test_voc(tmp_path: Path) -> None:
    root = voc_tree(tmp_path / "voc", {"a": [("dog", (1, 2, 30, 40), False), ("cat", (5, 5, 9, 9), True)],
                                       "b": []})
    ds = open_dataset(DatasetConfig(format="voc", path=str(root)))
    assert len(ds) == 2 and guess_format(str(root)) == "voc"
    truth = ds.items[0].truth
    assert truth is not None and truth.labels.tolist() == [11, 7]  # VOC's class order
    assert truth.boxes.tolist()[0] == [1, 2, 30, 40] and truth.difficult.tolist() == [False, True]
    assert ds.items[1].truth is not None and len(ds.items[1].truth.labels) == 0


def test_coco(tmp_path: Path) -> None:
    root = coco_tree(tmp_path / "coco")
    ds = open_dataset(DatasetConfig(format="coco", path=str(root)))
    assert ds.classes == ("car", "truck") and ds.category_ids == (3, 7)
    t0, t1 = ds.items[0].truth, ds.items[1].truth
    assert t0 is not None and t1 is not None
    assert t0.boxes.tolist() == [[5, 5, 15, 25]] and t0.labels.tolist() == [0] and t1.labels.tolist() == [1]


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    root = imagenet_tree(tmp_path / "inet")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(DatasetError) as exc:
        open_dataset(DatasetConfig(format="imagenet", path=str(root)))
    _one_line(exc, "broken.jpg", "not a readable image")


def test_missing_annotation_names_the_file(tmp_path: Path) -> None:
    root = voc_tree(tmp_path / "voc", {"a": [("dog", (1, 2, 30, 40), False)], "b": []})
    (root / "Annotations" / "b.xml").unlink()
    with pytest.raises(DatasetError) as exc:
        open_dataset(DatasetConfig(format="voc", path=str(root)))
    _one_line(exc, "b.jpg", "b.xml is missing")
    root2 = coco_tree(tmp_path / "coco")
    (root2 / "000002.jpg").unlink()
    with pytest.raises(DatasetError) as exc2:
        open_dataset(DatasetConfig(format="coco", path=str(root2)))
    _one_line(exc2, "annotations.json", "000002.jpg", "not found")


def test_label_outside_the_models_classes_names_the_file(tmp_path: Path) -> None:
    root, labels = image_list(tmp_path / "imgs", [0, 1, 7])
    ds = open_dataset(DatasetConfig(format="image-list", path=str(root), labels=str(labels)))
    ds.check_classes(8, "m")  # within
    with pytest.raises(DatasetError) as exc:
        ds.check_classes(5, "m")
    _one_line(exc, "labels.txt:3", "im2.jpg", "label 7", "5 classes")
    root2 = voc_tree(tmp_path / "voc", {"a": [("unicorn", (1, 2, 3, 4), False)]})
    with pytest.raises(DatasetError) as exc2:
        open_dataset(DatasetConfig(format="voc", path=str(root2)))
    _one_line(exc2, "a.xml", "'unicorn'")


def test_preprocess_image() -> None:
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    x, g = preprocess(img, Preprocess(resize_shorter=8, crop=(8, 8), scale=1 / 255, mean=(0.5,), std=(0.25,)),
                      "float32", "img")
    assert x.shape == (3, 8, 8) and x.dtype == np.float32
    assert g == Geometry(8, 8, 2.0, 2.0, 0.0, 2.0)  # 4x6 → 8x12, centre crop 8 wide starts at column 2
    y, _ = preprocess(img, Preprocess(color="bgr", layout="NHWC"), "float32", "img")
    assert y.shape == (4, 6, 3) and y[0, 0].tolist() == [2, 1, 0]


def test_detection_layouts_map_boxes_to_the_original_image() -> None:
    geometry = Geometry(100, 200, 0.5, 0.5)  # the model saw a 200x100 input from a 400x200 image
    post = Postprocess(layout="detections", score_threshold=0.3)
    six = np.array([[[0.1, 0.2, 0.5, 0.6, 0.9, 2], [0, 0, 1, 1, 0.1, 1]]], np.float32)  # [B, N, 6]
    d = detections({"det": six}, post, 0, geometry, "m")
    assert d.labels.tolist() == [2] and d.boxes[0].tolist() == pytest.approx([40, 40, 200, 120])
    seven = np.array([[[[0, 3, 0.8, 0.1, 0.1, 0.2, 0.2], [1, 4, 0.9, 0, 0, 1, 1], [-1, 0, 0, 0, 0, 0, 0]]]])
    d7 = detections({"det": seven}, Postprocess(layout="detections", background_class=True), 0, geometry, "m")
    assert d7.labels.tolist() == [2] and d7.boxes[0].tolist() == pytest.approx([40, 20, 80, 40])
    boxes = np.array([[[10, 10, 50, 50], [12, 12, 50, 50], [60, 60, 90, 90]]], np.float32)
    scores = np.array([[0.9, 0.8, 0.7]], np.float32)
    classes = np.array([[1, 1, 1]], np.int64)
    ssd = Postprocess(layout="ssd", normalized=False, nms_iou=0.5)
    ds = detections({"boxes": boxes, "scores": scores, "classes": classes}, ssd, 0, Geometry(100, 100), "m")
    assert ds.scores.tolist() == pytest.approx([0.9, 0.7])  # the overlapping 0.8 box is suppressed
