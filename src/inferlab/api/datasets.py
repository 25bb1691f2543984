"""Datasets for the API (and the workbench): open a dataset folder the way an accuracy check does, and say
what it holds (format, samples, classes, content hash and the files of its first samples)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inferlab.accuracy.datasets import guess_format, open_dataset
from inferlab.records.accuracy import DatasetConfig


@dataclass(frozen=True)
class DatasetInfo:
    format: str
    name: str
    samples: int
    classes: tuple[str, ...]
    hash: str                      # sha256 of the samples and their annotations, as results record it
    sample_files: tuple[str, ...]  # the first samples' image files (for a preview)
    labels: str | None             # the class-names file used, when the folder has one


def describe_dataset(folder: Path, labels: Path | None = None, previews: int = 8) -> DatasetInfo:
    """Open a dataset folder (ImageNet class folders, VOC or COCO; the format told from its layout) and check
    every image and annotation, as an accuracy check would. Raises DatasetError naming what is wrong."""
    fmt = guess_format(str(folder))
    if fmt not in ("imagenet", "voc"):  # a class-names file means something only to these two
        labels = None
    cfg = DatasetConfig(format=fmt, path=str(folder), labels=str(labels) if labels else None)
    ds = open_dataset(cfg)
    files = tuple(it.key for it in ds.items[:previews])
    return DatasetInfo(fmt, ds.name, len(ds), ds.classes, ds.content_hash(), files, str(labels) if labels else None)
