"""Metrics against hand-computed values: top-k, VOC mAP, COCO mAP (perfect, empty and partial), agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inferlab.accuracy.metrics import (
    Detections,
    GroundTruth,
    agreement,
    coco_metrics,
    format_drop,
    topk,
    voc_map,
)
from inferlab.records.accuracy import format_metric

SCORES = np.array([[0.1, 0.7, 0.2],   # label 1: top-1 hit
                   [0.5, 0.3, 0.2],   # label 2: only in top-3
                   [0.2, 0.3, 0.5],   # label 1: top-2 hit
                   [0.6, 0.1, 0.3]])  # label 0: top-1 hit
LABELS = np.array([1, 2, 1, 0])


def test_topk_hand_values() -> None:
    assert topk(SCORES, LABELS, 1) == 0.5
    assert topk(SCORES, LABELS, 2) == 0.75
    assert topk(SCORES, LABELS, 5) == 1.0  # k beyond the classes counts every class


def _gt(boxes: list[list[float]], labels: list[int], difficult: list[bool] | None = None) -> GroundTruth:
    return GroundTruth(np.array(boxes, float).reshape(-1, 4), np.array(labels), 100, 100,
                       np.array(difficult or [False] * len(labels)))


def _det(boxes: list[list[float]], scores: list[float], labels: list[int]) -> Detections:
    return Detections(np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(labels))


GTS = [_gt([[10, 10, 50, 50], [60, 60, 90, 90]], [0, 1]), _gt([[20, 20, 40, 40]], [0])]


def test_perfect_detections_score_one() -> None:
    dets = [_det(g.boxes.tolist(), [0.9] * len(g.labels), g.labels.tolist()) for g in GTS]
    assert voc_map(dets, GTS, 2) == pytest.approx(1.0)
    coco = coco_metrics(dets, GTS, [1, 2])
    assert coco["coco_map"] == pytest.approx(1.0)
    assert coco["coco_ap50"] == pytest.approx(1.0)


def test_empty_detections_score_zero() -> None:
    dets = [Detections.empty(), Detections.empty()]
    assert voc_map(dets, GTS, 2) == 0.0
    assert coco_metrics(dets, GTS, [1, 2]) == {"coco_map": 0.0, "coco_ap50": 0.0}


def test_voc_map_hand_computed() -> None:
    # class 0: two objects; detections by score: hit (img0), false positive (img1, IoU < .5), hit (img1)
    # precision/recall points: (1, .5), (.5, .5), (2/3, 1) → envelope: 1 on [0, .5], 2/3 on (.5, 1] → AP = 5/6
    # class 1: its one object found first → AP 1.  mAP = (5/6 + 1) / 2
    dets = [_det([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, 0.8], [0, 1]),
            _det([[0, 0, 15, 15], [20, 20, 40, 40]], [0.7, 0.6], [0, 0])]
    assert voc_map(dets, GTS, 2) == pytest.approx((5 / 6 + 1) / 2)


def test_voc_difficult_objects_count_neither_way() -> None:
    gts = [_gt([[10, 10, 50, 50], [60, 60, 90, 90]], [0, 0], [False, True])]
    dets = [_det([[60, 60, 90, 90], [10, 10, 50, 50]], [0.9, 0.8], [0, 0])]
    assert voc_map(dets, gts, 1) == pytest.approx(1.0)


def test_coco_localisation_quality_matters() -> None:
    # a box with IoU 0.58 with its object: a hit at thresholds .50 and .55 only → AP50 = 1, mAP = 2/10
    gts = [_gt([[0, 0, 100, 50]], [0])]
    dets = [_det([[0, 0, 58, 50]], [0.9], [0])]
    coco = coco_metrics(dets, gts, [1])
    assert coco["coco_ap50"] == pytest.approx(1.0)
    assert coco["coco_map"] == pytest.approx(0.2)


def test_agreement() -> None:
    ref = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 0.0]])
    same = agreement(ref.copy(), ref)
    assert same["max_abs_error"] == 0 and same["cosine"] == pytest.approx(1.0) and same["top1_agreement"] == 1.0
    off = ref.copy()
    off[1] = [0.0, 1.0, 3.0]  # second sample's arg-max moves from 0 to 2
    a = agreement(off, ref)
    assert a["max_abs_error"] == 3.0
    assert a["max_rel_error"] == pytest.approx(1.0)
    assert a["top1_agreement"] == 0.5
    assert a["cosine"] == pytest.approx((1 + 1 / 10) / 2)


def test_formats_per_metric() -> None:
    assert format_metric("top1", 0.98765) == "98.77%"
    assert format_metric("coco_map", 0.41234) == "0.4123"
    assert format_metric("max_abs_error", 0.00123) == "1.23e-03"
    assert format_metric("top1", math.nan) == "—"
    assert format_drop("top1", 0.0123) == "+1.23 pp"
    assert format_drop("voc_map", -0.01) == "-0.0100"
