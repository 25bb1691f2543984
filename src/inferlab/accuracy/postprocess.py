"""Post-processing: the model's raw outputs become class scores or detections in the dataset's terms."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from inferlab.accuracy.metrics import Detections, iou
from inferlab.accuracy.preprocess import Geometry
from inferlab.errors import DatasetError
from inferlab.records.accuracy import Postprocess


def _pick(outputs: Mapping[str, np.ndarray], name: str | None, what: str, model: str) -> np.ndarray:
    if name is None:
        return next(iter(outputs.values()))
    if name not in outputs:
        raise DatasetError(f"{model}: postprocess.{what} '{name}' is not an output of the model; its outputs are "
                           f"{sorted(outputs)}")
    return outputs[name]


def class_scores(outputs: Mapping[str, np.ndarray], p: Postprocess, model: str) -> np.ndarray:
    """[N, C] scores in the dataset's class order (the background column dropped)."""
    scores = _pick(outputs, p.output, "output", model)
    scores = scores.reshape(len(scores), -1).astype(np.float32)
    return scores[:, 1:] if p.background_class else scores


def to_xyxy(boxes: np.ndarray, fmt: str) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if fmt == "yxyx":
        return b[:, [1, 0, 3, 2]]
    if fmt == "xywh":
        return np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]])
    if fmt == "cxcywh":
        return np.column_stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                                b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2])
    return b


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        if len(order) == 1:
            break
        rest = order[1:]
        order = rest[iou(boxes[i], boxes[rest]) <= threshold]
    return np.array(keep, np.int64)


def _raw_detections(outputs: Mapping[str, np.ndarray], p: Postprocess, index: int,
                    model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sample's boxes (in p.box_format), scores and model class ids, before any filtering."""
    if p.layout == "detections":
        out = (_pick(outputs, p.output, "output", model) if p.output else
               next((v for v in outputs.values() if v.shape and v.shape[-1] in (6, 7)), None))
        if out is None or out.shape[-1] not in (6, 7):
            raise DatasetError(f"{model}: no [N, 6] or [N, 7] detections output (outputs: "
                               f"{ {k: list(v.shape) for k, v in outputs.items()} }); set postprocess.layout: ssd "
                               "or postprocess.output")
        if out.shape[-1] == 6:  # [B, N, 6]: box, score, class
            rows = out.reshape(out.shape[0], -1, 6)[index] if out.ndim >= 3 else out.reshape(-1, 6)
            return rows[:, :4], rows[:, 4], rows[:, 5]
        rows = out.reshape(-1, 7)  # [.., N, 7]: image id, class, score, box; an image id of -1 ends the list
        end = np.where(rows[:, 0] < 0)[0]
        rows = rows[: end[0]] if len(end) else rows
        rows = rows[rows[:, 0].astype(np.int64) == index]
        return rows[:, 3:7], rows[:, 2], rows[:, 1]
    boxes = _pick(outputs, p.boxes, "boxes", model) if p.boxes else next(
        (v for v in outputs.values() if v.ndim == 3 and v.shape[-1] == 4), None)
    if boxes is None:
        raise DatasetError(f"{model}: no [B, N, 4] boxes output; set postprocess.boxes")
    scores = _pick(outputs, p.detection_scores, "detection_scores", model) if p.detection_scores else next(
        (v for v in outputs.values() if v is not boxes and v.ndim in (2, 3) and v.shape[1] == boxes.shape[1]
         and (v.ndim == 3 or np.issubdtype(v.dtype, np.floating))), None)
    if scores is None:
        raise DatasetError(f"{model}: no scores output beside the boxes; set postprocess.detection_scores")
    b, s = boxes[index], scores[index]
    if s.ndim == 2:  # [N, C]: one candidate per box and class
        n, c = s.shape
        return np.repeat(b, c, axis=0), s.reshape(-1), np.tile(np.arange(c), n)
    classes = _pick(outputs, p.classes, "classes", model) if p.classes else next(
        (v for v in outputs.values() if v is not boxes and v is not scores and v.ndim == 2
         and v.shape[1] == boxes.shape[1]), None)
    if classes is None:
        raise DatasetError(f"{model}: [B, N] scores need a classes output; set postprocess.classes")
    return b, s, classes[index]


def detections(outputs: Mapping[str, np.ndarray], p: Postprocess, index: int, geometry: Geometry,
               model: str) -> Detections:
    """Sample `index`'s detections in original-image pixels and dataset class indices."""
    boxes, scores, classes = _raw_detections(outputs, p, index, model)
    scores = np.asarray(scores, np.float64)
    labels = np.rint(np.asarray(classes, np.float64)).astype(np.int64) - (1 if p.background_class else 0)
    keep = (scores >= p.score_threshold) & (labels >= 0)
    xyxy = to_xyxy(boxes, p.box_format)[keep]
    scores, labels = scores[keep], labels[keep]
    if p.normalized:
        xyxy = xyxy * np.array([geometry.in_w, geometry.in_h, geometry.in_w, geometry.in_h], np.float64)
    xyxy = geometry.to_original(xyxy)
    if p.nms_iou is not None and len(scores):
        kept = [idx[nms(xyxy[idx], scores[idx], p.nms_iou)] for c in np.unique(labels)
                for idx in [np.where(labels == c)[0]]]
        sel = np.concatenate(kept)
        xyxy, scores, labels = xyxy[sel], scores[sel], labels[sel]
    order = np.argsort(-scores, kind="stable")[: p.max_detections]
    return Detections(xyxy[order], scores[order], labels[order])
