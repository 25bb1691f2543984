"""Datasets: reading each format into samples and annotations, subsets, and the content hash.

A sample is an HWC array: images decode to uint8 RGB; digits and .npz samples stay as stored."""

from __future__ import annotations

import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from inferlab.accuracy.metrics import GroundTruth
from inferlab.errors import DatasetError, first_line
from inferlab.records.accuracy import DatasetConfig, ResolvedDataset, Task

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


@dataclass(frozen=True)
class Item:
    """One sample: where it comes from (for error messages) and its annotation."""

    key: str                              # file path, or "name[index]" for arrays
    source: str                           # the file a label came from ("labels.txt:7", a folder, an XML file)
    label: int | None = None              # classification
    truth: GroundTruth | None = None      # detection
    digest: str = ""                      # sha256 of an image file's bytes (read once, when checked)


class Dataset:
    """Opened dataset: items in a fixed order, and how to load each sample."""

    def __init__(self, config: DatasetConfig, name: str, classes: Sequence[str], items: list[Item],
                 arrays: np.ndarray | None = None, category_ids: Sequence[int] | None = None) -> None:
        self.config = config
        self.name = name
        self.classes = tuple(classes)
        self.items = items
        self._arrays = arrays  # array datasets: the selected samples, in item order
        self.category_ids = tuple(category_ids) if category_ids is not None else tuple(range(1, len(classes) + 1))

    @property
    def task(self) -> Task:
        return self.config.task

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, i: int) -> np.ndarray:
        if self._arrays is not None:
            return self._arrays[i]
        return read_image(Path(self.items[i].key))

    def labels(self) -> np.ndarray:
        return np.array([-1 if it.label is None else it.label for it in self.items], np.int64)

    def has_labels(self) -> bool:
        return any(it.label is not None or it.truth is not None for it in self.items)

    def check_classes(self, num_classes: int, model_name: str) -> None:
        """A label the model cannot predict is an error naming where the label came from."""
        for it in self.items:
            labels = [it.label] if it.label is not None else list(it.truth.labels) if it.truth is not None else []
            for label in labels:
                if not 0 <= int(label) < num_classes:
                    raise DatasetError(f"{it.source}: label {int(label)} of {Path(it.key).name} is outside the "
                                       f"{num_classes} classes of model '{model_name}'; fix the label or the "
                                       "postprocess settings (background_class)")

    def content_hash(self) -> str:
        h = hashlib.sha256(f"{self.config.format}:{len(self.items)}".encode())
        for i, it in enumerate(self.items):
            if self._arrays is not None:
                h.update(np.ascontiguousarray(self._arrays[i]).tobytes())
            else:
                h.update(it.digest.encode())
            h.update(repr(it.label).encode())
            if it.truth is not None:
                h.update(it.truth.boxes.astype(np.float64).tobytes() + it.truth.labels.astype(np.int64).tobytes())
        return h.hexdigest()

    def resolved(self) -> ResolvedDataset:
        return ResolvedDataset(config=self.config, name=self.name, hash=self.content_hash(), size=len(self),
                               classes=self.classes)


def read_image(path: Path) -> np.ndarray:
    """Decode an image to HWC uint8 RGB, or raise naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: image not found; check the dataset path") from None
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable image ({type(exc).__name__}: {first_line(exc)}); "
                           "replace or remove the file") from None


def _checked(item: Item) -> Item:
    """The item with its file's digest, after PIL has checked the file is an image (one read of the file)."""
    from PIL import Image

    path = Path(item.key)
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable image ({type(exc).__name__}: {first_line(exc)}); "
                           "replace or remove the file") from None
    return replace(item, digest=hashlib.sha256(data).hexdigest())


def _abs(base: Path, ref: str | None) -> Path | None:
    if ref is None:
        return None
    p = Path(ref).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _subset(n: int, cfg: DatasetConfig) -> np.ndarray:
    if cfg.subset is None or cfg.subset >= n:
        return np.arange(n)
    if cfg.subset_mode == "first":
        return np.arange(cfg.subset)
    return np.sort(np.random.default_rng(cfg.seed).choice(n, cfg.subset, replace=False))


def _class_names(path: Path | None, default: Sequence[str]) -> list[str]:
    if path is None:
        return list(default)
    if not path.is_file():
        raise DatasetError(f"{path}: class names file not found; give one class name per line")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"{path}: no class names in the file; give one class name per line")
    return names


# arrays -------------------------------------------------------------------------------------------------

def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 8×8 images, values 0..16) as HWC float32, labels, and a seeded stratified
    70/30 train/test assignment (True = test). The example trainer uses the same split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images = d.images.astype(np.float32)[..., None]
    labels = d.target.astype(np.int64)
    _, test_idx = train_test_split(np.arange(len(labels)), test_size=0.3, stratify=labels, random_state=seed)
    is_test = np.zeros(len(labels), bool)
    is_test[test_idx] = True
    return images, labels, is_test


def _digits(cfg: DatasetConfig) -> Dataset:
    images, labels, is_test = digits_split(cfg.seed)
    keep = {"all": np.ones(len(labels), bool), "test": is_test, "train": ~is_test}[cfg.split]
    idx = np.where(keep)[0]
    idx = idx[_subset(len(idx), cfg)]
    items = [Item(f"digits[{i}]", "scikit-learn digits", int(labels[i])) for i in idx]
    return Dataset(cfg, cfg.name or f"digits-{cfg.split}", [str(c) for c in range(10)], items, images[idx])


_NPZ_SAMPLES = ("x", "inputs", "data", "images", "samples")
_NPZ_LABELS = ("y", "labels", "targets", "label")


def _npz(cfg: DatasetConfig, path: Path) -> Dataset:
    if not path.is_file():
        raise DatasetError(f"{path}: .npz file not found; check dataset.path")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable .npz ({first_line(exc)}); save it with numpy.savez") from None
    sample_key = next((k for k in _NPZ_SAMPLES if k in arrays), None)
    if sample_key is None:
        raise DatasetError(f"{path}: no samples array; name it one of {list(_NPZ_SAMPLES)} (it has "
                           f"{sorted(arrays)})")
    x = arrays[sample_key]
    label_key = next((k for k in _NPZ_LABELS if k in arrays), None)
    y = arrays[label_key] if label_key else None
    if y is not None and len(y) != len(x):
        raise DatasetError(f"{path}: '{label_key}' has {len(y)} labels for {len(x)} samples; give one per sample")
    idx = _subset(len(x), cfg)
    items = [Item(f"{path.name}[{i}]", f"{path}:{label_key}[{i}]", int(y[i]) if y is not None else None)
             for i in idx]
    num = int(y.max()) + 1 if y is not None and len(y) else 0
    return Dataset(cfg, cfg.name or path.stem, [str(c) for c in range(num)], items, x[idx])


# classification folders ---------------------------------------------------------------------------------

def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _imagenet(cfg: DatasetConfig, root: Path, labels: Path | None) -> Dataset:
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found; give a folder with one subfolder per class")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise DatasetError(f"{root}: no class subfolders; put each class's images in a subfolder named for it")
    classes = _class_names(labels, [f.name for f in folders])
    index = {name: i for i, name in enumerate(classes)}
    items = []
    for folder in folders:
        if folder.name not in index:
            raise DatasetError(f"{folder}: class '{folder.name}' is not in {labels}; add it or remove the folder")
        items += [Item(str(p), str(folder), index[folder.name]) for p in _images_in(folder)]
    return _image_subset(cfg, root.name, classes, items)


def _image_list(cfg: DatasetConfig, root: Path, labels: Path | None) -> Dataset:
    if not root.is_dir():
        raise DatasetError(f"{root}: image folder not found; check dataset.path")
    if labels is None or not labels.is_file():
        raise DatasetError(f"{labels or root}: labels file not found; give dataset.labels with lines 'FILE LABEL'")
    items = []
    for n, line in enumerate(labels.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DatasetError(f"{labels}:{n}: '{line.strip()}' is not 'FILE LABEL' with an integer label")
        path = root / parts[0]
        if not path.is_file():
            raise DatasetError(f"{labels}:{n}: image {path} not found; fix the line or add the image")
        items.append(Item(str(path), f"{labels}:{n}", int(parts[1])))
    if not items:
        raise DatasetError(f"{labels}: no 'FILE LABEL' lines")
    num = max(it.label or 0 for it in items) + 1
    return _image_subset(cfg, root.name, [str(c) for c in range(num)], items)


def _image_subset(cfg: DatasetConfig, name: str, classes: Sequence[str], items: list[Item],
                  category_ids: Sequence[int] | None = None) -> Dataset:
    if not items:
        raise DatasetError(f"{cfg.path}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    chosen = [_checked(items[i]) for i in _subset(len(items), cfg)]
    return Dataset(cfg, cfg.name or name, classes, chosen, category_ids=category_ids)


# detection -----------------------------------------------------------------------------------------------

def _voc(cfg: DatasetConfig, root: Path, labels: Path | None) -> Dataset:
    images_dir, ann_dir = root / "JPEGImages", root / "Annotations"
    for d in (images_dir, ann_dir):
        if not d.is_dir():
            raise DatasetError(f"{d}: folder not found; a VOC dataset has JPEGImages/ and Annotations/")
    classes = _class_names(labels, VOC_CLASSES)
    index = {c: i for i, c in enumerate(classes)}
    items = []
    for img in _images_in(images_dir):
        xml = ann_dir / f"{img.stem}.xml"
        if not xml.is_file():
            raise DatasetError(f"{img}: annotation {xml} is missing; add it or remove the image")
        items.append(Item(str(img), str(xml), truth=_voc_objects(xml, index)))
    return _image_subset(cfg, root.name, classes, items)


def _voc_objects(xml: Path, index: dict[str, int]) -> GroundTruth:
    try:
        root = ET.parse(xml).getroot()
        size = root.find("size")
        width = int(float(size.findtext("width", "0"))) if size is not None else 0
        height = int(float(size.findtext("height", "0"))) if size is not None else 0
        boxes, labels, difficult = [], [], []
        for obj in root.iter("object"):
            name = (obj.findtext("name") or "").strip()
            if name not in index:
                raise DatasetError(f"{xml}: object class '{name}' is not one of the dataset's classes; "
                                   "give dataset.labels with the class names")
            bb = obj.find("bndbox")
            if bb is None:
                raise DatasetError(f"{xml}: object '{name}' has no <bndbox>")
            boxes.append([float(bb.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax")])
            labels.append(index[name])
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
    except ET.ParseError as exc:
        raise DatasetError(f"{xml}: not valid XML ({exc}); fix the annotation") from None
    except ValueError as exc:
        raise DatasetError(f"{xml}: a size or box value is not a number ({exc})") from None
    arr = np.array(boxes, np.float64).reshape(-1, 4)
    if np.isnan(arr).any():
        raise DatasetError(f"{xml}: a <bndbox> lacks xmin, ymin, xmax or ymax")
    return GroundTruth(arr, np.array(labels, np.int64), width, height, np.array(difficult, bool))


def _coco(cfg: DatasetConfig, root: Path, annotations: Path | None) -> Dataset:
    ann = annotations or root / "annotations.json"
    if not ann.is_file():
        raise DatasetError(f"{ann}: COCO annotations not found; give dataset.annotations (instances JSON)")
    try:
        data = json.loads(ann.read_text())
        cats = sorted(data["categories"], key=lambda c: c["id"])
        images = data["images"]
        anns = data.get("annotations", [])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{ann}: not a COCO instances file ({type(exc).__name__}: {first_line(exc)})") from None
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    per_image: dict[int, list[dict]] = {im["id"]: [] for im in images}
    for a in anns:
        if a.get("image_id") not in per_image:
            raise DatasetError(f"{ann}: annotation {a.get('id')} refers to image {a.get('image_id')}, "
                               "which is not in 'images'")
        if a.get("category_id") not in cat_index:
            raise DatasetError(f"{ann}: annotation {a.get('id')} has category {a.get('category_id')}, "
                               "which is not in 'categories'")
        per_image[a["image_id"]].append(a)
    items = []
    for im in sorted(images, key=lambda im: im["id"]):
        path = root / im["file_name"]
        if not path.is_file():
            raise DatasetError(f"{ann}: image {path} (id {im['id']}) not found; add it or drop it from the JSON")
        objs = per_image[im["id"]]
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in objs], np.float64).reshape(-1, 4)
        truth = GroundTruth(boxes, np.array([cat_index[a["category_id"]] for a in objs], np.int64),
                            int(im.get("width", 0)), int(im.get("height", 0)),
                            np.array([bool(a.get("iscrowd", 0)) for a in objs], bool))
        items.append(Item(str(path), str(ann), truth=truth))
    return _image_subset(cfg, root.name, [str(c.get("name", c["id"])) for c in cats], items,
                         category_ids=[c["id"] for c in cats])


def open_dataset(cfg: DatasetConfig, base_dir: Path | None = None) -> Dataset:
    """Open and check a dataset: every selected image's header and every annotation are read."""
    base = base_dir or Path.cwd()
    root, labels, annotations = _abs(base, cfg.path), _abs(base, cfg.labels), _abs(base, cfg.annotations)
    absolute = cfg.model_copy(update={"path": str(root) if root else None, "labels": str(labels) if labels else None,
                                      "annotations": str(annotations) if annotations else None})
    if cfg.format == "digits":
        return _digits(absolute)
    assert root is not None
    if cfg.format == "npz":
        return _npz(absolute, root)
    if cfg.format == "imagenet":
        return _imagenet(absolute, root, labels)
    if cfg.format == "image-list":
        return _image_list(absolute, root, labels)
    if cfg.format == "voc":
        return _voc(absolute, root, labels)
    return _coco(absolute, root, annotations)


def reopen(resolved: ResolvedDataset) -> Dataset:
    """Open a planned dataset again (in the trial process) and check it has not changed since."""
    ds = open_dataset(resolved.config)
    if ds.content_hash() != resolved.hash:
        raise DatasetError(f"{resolved.config.path or resolved.name}: the dataset changed since the trial was "
                           "planned; plan the run again")
    return ds


def guess_format(path: str, labels: str | None = None) -> str:
    """The dataset format a path most likely is: 'digits', a .npz file, a VOC or COCO tree, an image folder
    with a labels file, or class subfolders."""
    if path == "digits":
        return "digits"
    p = Path(path)
    if p.suffix == ".npz":
        return "npz"
    if (p / "JPEGImages").is_dir():
        return "voc"
    if (p / "annotations.json").is_file():
        return "coco"
    if labels is not None and p.is_dir() and _images_in(p):
        return "image-list"
    if p.is_dir():
        return "imagenet"
    raise DatasetError(f"{path}: cannot tell the dataset format; give --dataset-format "
                       "(digits, npz, imagenet, image-list, voc, coco)")
