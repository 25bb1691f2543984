"""The evaluator: runs a dataset through a loaded session in batches and scores it; keeps the outputs so
another trial (an optimised model) can be checked against them without labels."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inferlab.accuracy.datasets import Dataset
from inferlab.accuracy.metrics import Detections, GroundTruth, coco_metrics, topk, voc_map
from inferlab.accuracy.postprocess import class_scores, detections
from inferlab.accuracy.preprocess import Geometry, preprocess
from inferlab.backends.base import Session
from inferlab.errors import DatasetError
from inferlab.models.inputs import make_pool
from inferlab.records.accuracy import AccuracyResult, AccuracySpec

OUTPUTS_FILE = "outputs.npz"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Feeding:
    """Which input the dataset feeds (and along which axis samples are stacked), and the fixed feeds of the
    model's other inputs (their constants or data, as in a speed measurement)."""

    name: str
    dtype: str
    axis: int = 0
    others: dict[str, np.ndarray] = field(default_factory=dict)


def input_of(session: Session, model: str) -> Feeding:
    """Which input a dataset feeds in `session`, and the fixed feeds of the others."""
    if len(session.inputs) == 1:
        s = session.inputs[0]
        return Feeding(s.name, s.dtype, s.batch_axis or 0)
    open_ = [s for s in session.inputs if s.value is None and s.data is None and s.batch_axis is not None]
    if len(open_) != 1:
        raise DatasetError(f"{model}: a dataset feeds one input, but the model has {len(session.inputs)} "
                           f"({', '.join(s.name for s in session.inputs)}); give every other input a value or data "
                           "(bench: --input NAME=VALUE; config: models[].inputs.NAME.value) so that one is left")
    fed = open_[0]
    rest = [s for s in session.inputs if s.name != fed.name]
    return Feeding(fed.name, fed.dtype, fed.batch_axis or 0, make_pool(rest, 1, 0)[0])


def batches(ds: Dataset, spec: AccuracySpec, name: str, dtype: str, batch: int, limit: int | None = None,
            axis: int = 0, others: dict[str, np.ndarray] | None = None
            ) -> Iterator[tuple[dict[str, np.ndarray], list[int], list[Geometry]]]:
    """Preprocessed feeds of `batch` samples, one batch at a time (the last one padded by repeating its final
    sample), with the indices of the real samples in each and each sample's geometry. Samples are stacked on
    `axis`; `others` are the fixed feeds of the model's other inputs."""
    n = len(ds) if limit is None else min(limit, len(ds))
    for start in range(0, n, batch):
        idx = list(range(start, min(start + batch, n)))
        pairs = [preprocess(ds.sample(i), spec.preprocess, dtype, ds.items[i].key) for i in idx]
        arrays = [a for a, _ in pairs] + [pairs[-1][0]] * (batch - len(idx))
        yield {**(others or {}), name: np.ascontiguousarray(np.stack(arrays, axis=axis))}, idx, [g for _, g in pairs]


def dataset_feeds(session: Session, ds: Dataset, spec: AccuracySpec, batch: int, count: int,
                  model: str) -> list[dict[str, np.ndarray]]:
    """Real inputs for a speed measurement: the dataset's first `count` batches."""
    f = input_of(session, model)
    return [feeds for feeds, _, _ in batches(ds, spec, f.name, f.dtype, batch, count * batch, f.axis, f.others)]


def _first_output(outs: dict[str, np.ndarray], batch: int, real: int) -> np.ndarray | None:
    first = next(iter(outs.values()))
    return first[:real] if first.ndim and first.shape[0] == batch else None


class Scorer:
    """Collects outputs batch by batch (any order, any subset of samples) and computes the metrics."""

    def __init__(self, ds: Dataset, spec: AccuracySpec, model: str, keep_outputs: bool = False) -> None:
        self.ds, self.spec, self.model = ds, spec, model
        self.indices: list[int] = []
        self.scores: list[np.ndarray] = []
        self.dets: list[Detections] = []
        self.kept: list[np.ndarray] | None = [] if keep_outputs else None

    def add(self, outs: dict[str, np.ndarray], indices: list[int], geometry: list[Geometry], batch: int) -> None:
        """The outputs of one batch whose first len(indices) rows are those samples (the rest padding)."""
        real = len(indices)
        if self.ds.task == "classification":
            s = class_scores(outs, self.spec.postprocess, self.model)[:real]
            if not self.scores and self.ds.has_labels():
                self.ds.check_classes(s.shape[1], self.model)
            self.scores.append(s)
        else:
            self.dets += [detections(outs, self.spec.postprocess, i, geometry[i], self.model) for i in range(real)]
        if self.kept is not None:
            first = _first_output(outs, batch, real)
            if first is None:  # not per sample: nothing to compare later
                self.kept = None
            else:
                self.kept.append(first)
        self.indices += indices

    def metrics(self) -> dict[str, float]:
        wanted = self.spec.metric_names()
        out: dict[str, float] = {}
        if not self.ds.has_labels() or not self.indices:
            return out
        items = [self.ds.items[i] for i in self.indices]
        if self.ds.task == "classification":
            labels = np.array([it.label if it.label is not None else -1 for it in items], np.int64)
            scores = np.concatenate(self.scores)
            for k, metric in ((1, "top1"), (5, "top5")):
                if metric in wanted:
                    out[metric] = topk(scores, labels, k)
            return out
        truths = [it.truth or GroundTruth(np.zeros((0, 4)), np.zeros(0, np.int64), 0, 0) for it in items]
        if {"coco_map", "coco_ap50"} & set(wanted):
            coco = coco_metrics(self.dets, truths, self.ds.category_ids)
            out.update({k: v for k, v in coco.items() if k in wanted})
        if "voc_map" in wanted:
            out["voc_map"] = voc_map(self.dets, truths, len(self.ds.classes))
        return out

    def outputs(self) -> np.ndarray | None:
        return np.concatenate(self.kept) if self.kept else None


def evaluate(session: Session, ds: Dataset, spec: AccuracySpec, batch: int, model: str,
             out_dir: Path | None = None, progress: Progress | None = None) -> AccuracyResult:
    """Score `session` on `ds` (the spec's dataset, opened by `reopen`). Raises DatasetError naming the file
    for bad samples or labels."""
    t0 = time.perf_counter()
    f = input_of(session, model)
    scorer = Scorer(ds, spec, model, keep_outputs=spec.keep_outputs and out_dir is not None)
    for feeds, indices, geometry in batches(ds, spec, f.name, f.dtype, batch, None, f.axis, f.others):
        scorer.add(session.infer(feeds), indices, geometry, batch)
        if progress is not None:
            progress(indices[-1] + 1, len(ds))
    outputs_path = None
    kept = scorer.outputs()
    if kept is not None and out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        outputs_path = str(out_dir / OUTPUTS_FILE)
        np.savez_compressed(outputs_path, output=kept)
    return AccuracyResult(ds.name, spec.dataset.hash, len(ds), scorer.metrics(), time.perf_counter() - t0,
                          outputs_path)
