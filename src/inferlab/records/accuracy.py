"""What an accuracy check is: the dataset, the pre- and post-processing, the metrics, and what it yields.
Validation only, as the rest of the config: files are opened by `datasets.open_dataset`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DatasetFormat = Literal["digits", "npz", "imagenet", "image-list", "voc", "coco"]
Task = Literal["classification", "detection"]
DETECTION_FORMATS = ("voc", "coco")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class DatasetConfig(_Frozen):
    """A dataset on disk (or scikit-learn's digits, which needs none)."""

    format: DatasetFormat = Field(description="digits, npz, imagenet (class subfolders), image-list (images + "
                                              "labels file), voc (JPEGImages + Annotations), coco (images + JSON)")
    path: str | None = Field(None, description="folder or file (npz); not used for digits")
    labels: str | None = Field(None, description="image-list: lines 'FILE LABEL'; imagenet/voc: class names, one "
                                                 "per line, in the model's order")
    annotations: str | None = Field(None, description="coco: instances JSON (default PATH/annotations.json)")
    split: Literal["all", "train", "test"] = Field("all", description="digits: a seeded stratified 70/30 split")
    subset: int | None = Field(None, ge=1, description="use N samples: the first N, or a seeded random N")
    subset_mode: Literal["first", "random"] = "first"
    seed: int = Field(0, ge=0, description="seed of the random subset (and of the digits split)")
    name: str | None = Field(None, description="display name (default: the format, or the folder's name)")

    @model_validator(mode="after")
    def _needs_path(self) -> DatasetConfig:
        if self.format != "digits" and not self.path:
            raise ValueError(f"dataset format '{self.format}' needs a path")
        return self

    @property
    def task(self) -> Task:
        return "detection" if self.format in DETECTION_FORMATS else "classification"


class Preprocess(_Frozen):
    """From a decoded sample (an HWC image or an array) to the model's input tensor, in this order:
    colour, resize, centre crop, scale, mean/std, layout, dtype."""

    color: Literal["rgb", "bgr", "gray"] | None = Field(None, description="channel order (images decode as RGB)")
    resize: tuple[int, int] | None = Field(None, description="[height, width], exact")
    resize_shorter: int | None = Field(None, ge=1, description="resize the shorter side to this, keeping aspect")
    crop: tuple[int, int] | None = Field(None, description="centre crop [height, width] after resizing")
    scale: float = Field(1.0, description="multiply values by this first (e.g. 0.00392156 for 1/255)")
    mean: tuple[float, ...] | None = Field(None, description="per channel, subtracted after scaling")
    std: tuple[float, ...] | None = Field(None, description="per channel, divides after the mean")
    layout: Literal["NCHW", "NHWC", "none"] = Field("NCHW", description="'none': arrays go in as they are")
    dtype: str | None = Field(None, description="input dtype (default: the model's)")

    @field_validator("std")
    @classmethod
    def _std(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and any(s == 0 for s in v):
            raise ValueError("std values must be non-zero")
        return v


class Postprocess(_Frozen):
    """How to read the model's outputs."""

    output: str | None = Field(None, description="classification: the output to read (default: the first)")
    scores: Literal["logits", "probabilities"] = "logits"
    background_class: bool = Field(False, description="class 0 is background: model class i is dataset class i-1")
    layout: Literal["ssd", "detections"] = Field("detections", description="detection: 'ssd' = boxes + scores "
                                                 "(+ classes) outputs; 'detections' = one [N,6] or [N,7] tensor")
    boxes: str | None = Field(None, description="ssd: boxes output [B,N,4] (default: the first 3-D output ending "
                                                "in 4)")
    detection_scores: str | None = Field(None, description="ssd: scores output [B,N] or [B,N,C]")
    classes: str | None = Field(None, description="ssd: classes output [B,N] (with [B,N] scores)")
    box_format: Literal["xyxy", "yxyx", "xywh", "cxcywh"] = "xyxy"
    normalized: bool = Field(True, description="boxes are fractions of the input size (else input pixels)")
    score_threshold: float = Field(0.05, ge=0, le=1)
    nms_iou: float | None = Field(None, gt=0, le=1, description="per-class NMS at this IoU (None: none)")
    max_detections: int = Field(100, ge=1)


MetricName = Literal["top1", "top5", "coco_map", "coco_ap50", "voc_map"]
METRIC_TASK: dict[MetricName, Task] = {"top1": "classification", "top5": "classification",
                                       "coco_map": "detection", "coco_ap50": "detection", "voc_map": "detection"}
DEFAULT_METRICS: dict[Task, tuple[MetricName, ...]] = {
    task: tuple(m for m, t in METRIC_TASK.items() if t == task) for task in ("classification", "detection")}


class ResolvedDataset(_Frozen):
    """A dataset as a trial sees it: the config plus what opening it found."""

    config: DatasetConfig       # with absolute paths
    name: str
    hash: str                   # sha256 of the selected samples and their annotations
    size: int                   # samples after the subset
    classes: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.name} ({self.size} samples, {self.hash[:8]})"


class AccuracySpec(_Frozen):
    """The accuracy part of a trial."""

    dataset: ResolvedDataset
    preprocess: Preprocess = Preprocess()
    postprocess: Postprocess = Postprocess()
    metrics: tuple[MetricName, ...] = ()
    keep_outputs: bool = Field(True, description="store the outputs, for agreement checks against other trials")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @staticmethod
    def from_json(d: dict[str, Any]) -> AccuracySpec:
        return AccuracySpec.model_validate(d)

    def metric_names(self) -> tuple[MetricName, ...]:
        return self.metrics or DEFAULT_METRICS[self.dataset.config.task]


@dataclass(frozen=True)
class MetricInfo:
    label: str
    kind: str               # fraction (shown as %), score (0.xxx), error (scientific), similarity (0.xxxxxx)
    higher_is_better: bool


INFO: dict[str, MetricInfo] = {
    "top1": MetricInfo("top-1", "fraction", True),
    "top5": MetricInfo("top-5", "fraction", True),
    "coco_map": MetricInfo("mAP@[.5:.95]", "score", True),
    "coco_ap50": MetricInfo("AP50", "score", True),
    "voc_map": MetricInfo("VOC mAP@.5", "score", True),
    "top1_agreement": MetricInfo("top-1 agreement", "fraction", True),
    "cosine": MetricInfo("cosine", "similarity", True),
    "max_abs_error": MetricInfo("max abs err", "error", False),
    "max_rel_error": MetricInfo("max rel err", "error", False),
}


def format_metric(name: str, value: float | None) -> str:
    """A metric as people read it: accuracies in %, mAP as 0.xxx, errors in scientific notation."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    kind = INFO[name].kind if name in INFO else "score"
    if kind == "fraction":
        return f"{100 * value:.2f}%"
    if kind == "error":
        return f"{value:.2e}"
    if kind == "similarity":
        return f"{value:.6f}"
    return f"{value:.4f}"


@dataclass(frozen=True)
class AccuracyResult:
    """Metric values (fractions for accuracies, not ×100) on a named, hashed dataset."""

    dataset: str
    dataset_hash: str
    samples: int
    metrics: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    outputs_path: str | None = None   # the first output per sample, for agreement checks

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "metrics": {k: (None if math.isnan(v) else v) for k, v in self.metrics.items()}}

    @staticmethod
    def from_json(d: dict[str, Any]) -> AccuracyResult:
        d = dict(d)
        d["metrics"] = {k: (math.nan if v is None else float(v)) for k, v in d.get("metrics", {}).items()}
        return AccuracyResult(**d)

    def headline(self) -> str:
        """The first metric as people read it, e.g. 'top-1 97.41%'."""
        if not self.metrics:
            return "outputs kept" if self.outputs_path else ""
        name, value = next(iter(self.metrics.items()))
        return f"{INFO[name].label if name in INFO else name} {format_metric(name, value)}"

    def load_outputs(self) -> np.ndarray | None:
        if not self.outputs_path or not Path(self.outputs_path).is_file():
            return None
        with np.load(self.outputs_path) as z:
            return z["output"]
