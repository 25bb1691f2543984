"""Metrics: top-k, VOC mAP, COCO mAP (pycocotools) and output agreement, each with how it is shown.
Detections and ground truth are per image, boxes as [x1, y1, x2, y2] in pixels of the original image."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inferlab.records.accuracy import INFO


def format_drop(name: str, drop: float) -> str:
    """A drop in the metric's unit: percentage points for fractions."""
    kind = INFO[name].kind if name in INFO else "score"
    return f"{100 * drop:+.2f} pp" if kind == "fraction" else f"{drop:+.4f}"


# classification ------------------------------------------------------------------------------------------

def topk(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the k highest scores (ties broken by class index)."""
    if len(labels) == 0:
        return math.nan
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


# detection -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Detections:
    """One image's boxes [K, 4] (x1, y1, x2, y2), scores [K] and class indices [K]."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class GroundTruth:
    """One image's objects: boxes [M, 4] (x1, y1, x2, y2), class indices [M], VOC's difficult flags [M]."""

    boxes: np.ndarray
    labels: np.ndarray
    width: int
    height: int
    difficult: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def is_difficult(self) -> np.ndarray:
        return self.difficult if len(self.difficult) == len(self.labels) else np.zeros(len(self.labels), bool)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box with each of `boxes` (continuous coordinates, no +1 pixel)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC 2010 onwards: every recall point)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def voc_map(dets: Sequence[Detections], gts: Sequence[GroundTruth], num_classes: int,
            iou_threshold: float = 0.5) -> float:
    """Pascal VOC mAP at IoU 0.5: mean AP over classes that have non-difficult objects; a detection matched
    to a difficult object counts neither way."""
    aps = []
    for c in range(num_classes):
        npos = sum(int(np.sum((g.labels == c) & ~g.is_difficult())) for g in gts)
        if npos == 0:
            continue
        entries = [(float(s), i, d.boxes[j]) for i, d in enumerate(dets)
                   for j, s in enumerate(d.scores) if d.labels[j] == c]
        entries.sort(key=lambda e: -e[0])
        used = [np.zeros(len(g.labels), bool) for g in gts]
        tp = np.zeros(len(entries))
        fp = np.zeros(len(entries))
        for n, (_, img, box) in enumerate(entries):
            g = gts[img]
            mask = g.labels == c
            if not mask.any():
                fp[n] = 1
                continue
            idx = np.where(mask)[0]
            overlaps = iou(box, g.boxes[idx])
            best = int(np.argmax(overlaps))
            if overlaps[best] >= iou_threshold:
                j = idx[best]
                if g.is_difficult()[j]:
                    continue
                if not used[img][j]:
                    used[img][j] = True
                    tp[n] = 1
                else:
                    fp[n] = 1
            else:
                fp[n] = 1
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        recall = ctp / npos
        precision = ctp / np.maximum(ctp + cfp, np.finfo(float).eps)
        aps.append(_average_precision(recall, precision))
    return float(np.mean(aps)) if aps else math.nan


def coco_metrics(dets: Sequence[Detections], gts: Sequence[GroundTruth],
                 category_ids: Sequence[int]) -> dict[str, float]:
    """COCO mAP@[.5:.95] and AP50 through pycocotools; class index i is category `category_ids[i]`."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for i, g in enumerate(gts):
        images.append({"id": i + 1, "width": g.width, "height": g.height})
        for j, (box, label) in enumerate(zip(g.boxes, g.labels, strict=True)):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": category_ids[label],
                                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h,
                                "iscrowd": int(g.is_difficult()[j])})
    for i, d in enumerate(dets):
        for box, score, label in zip(d.boxes, d.scores, d.labels, strict=True):
            results.append({"image_id": i + 1, "category_id": category_ids[int(label)], "score": float(score),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    if not annotations:
        return {"coco_map": math.nan, "coco_ap50": math.nan}
    if not results:  # pycocotools cannot load an empty result list; nothing detected scores zero
        return {"coco_map": 0.0, "coco_ap50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c} for c in category_ids]}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [math.nan if s < 0 else float(s) for s in ev.stats[:2]]
    return {"coco_map": stats[0], "coco_ap50": stats[1]}


# agreement -----------------------------------------------------------------------------------------------

def agreement(test: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How closely `test` reproduces `reference` (the same samples' outputs, [N, ...]): max abs error; max abs
    error relative to the reference's largest magnitude; mean per-sample cosine; and for [N, C] scores the
    fraction of samples whose arg-max agrees."""
    a = np.asarray(test, np.float64).reshape(len(test), -1)
    b = np.asarray(reference, np.float64).reshape(len(reference), -1)
    diff = np.abs(a - b)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(norms > 0, np.sum(a * b, axis=1) / np.maximum(norms, 1e-300), 1.0)
    out: dict[str, Any] = {
        "max_abs_error": float(diff.max()) if diff.size else 0.0,
        "max_rel_error": float(diff.max() / scale) if diff.size and scale > 0 else 0.0,
        "cosine": float(np.mean(cos)) if len(cos) else math.nan,
    }
    if np.asarray(test).ndim == 2 and np.asarray(test).shape[1] > 1:
        out["top1_agreement"] = float(np.mean(np.argmax(test, axis=1) == np.argmax(reference, axis=1)))
    return out
