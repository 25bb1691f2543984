"""LoadGen's query sample library (QSL): the samples LoadGen draws queries from.

Loading and unloading run in LoadGen's untimed phases. A sample is one item (batch 1); the SUT stacks
samples into the trial's batch. Samples are synthetic here: sample i is always the same random tensors
(seeded by i), so an accuracy log can be checked against a direct inference of the same sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inferlab.backends.base import Session
from inferlab.models.inputs import random_feeds
from inferlab.models.tensors import TensorSpec


class SampleLibrary:
    def __init__(self, specs: Sequence[TensorSpec], count: int, seed: int, session: Session, batch: int) -> None:
        """`specs` are the model's inputs at batch 1; `batch` is the SUT's batch (partial batches are padded)."""
        self.specs = list(specs)
        self.count = count
        self.seed = seed
        self.session = session
        self.batch = batch
        self.loaded: dict[int, dict[str, np.ndarray]] = {}
        self.prepared: dict[int, Any] = {}  # batch 1: each sample in the runtime's own form, made at load
        self.slabs: dict[str, np.ndarray] = {}  # batch > 1: the loaded samples stacked, per input
        self.slot: dict[int, int] = {}          # sample index -> row in the slabs

    def sample(self, index: int) -> dict[str, np.ndarray]:
        """Sample `index`'s feeds, the same every time."""
        return random_feeds(self.specs, np.random.default_rng([self.seed, index]))

    def load(self, indices: Sequence[int]) -> None:
        for i in indices:
            if i not in self.loaded:
                feeds = self.sample(i)
                self.loaded[i] = feeds
                if self.batch == 1:
                    self.prepared[i] = self.session.prepare(feeds)
        self._restack()

    def unload(self, indices: Sequence[int]) -> None:
        for i in indices:
            self.loaded.pop(i, None)
            self.prepared.pop(i, None)
        self._restack()

    def _restack(self) -> None:
        """Stack the loaded samples per input (untimed, at load), so forming a batch is one gather."""
        if self.batch == 1:
            return
        order = sorted(self.loaded)
        self.slot = {i: row for row, i in enumerate(order)}
        self.slabs = {s.name: np.concatenate([self.loaded[i][s.name] for i in order], axis=0)
                      for s in self.specs if order and self.loaded[order[0]][s.name].ndim}

    def batch_of(self, indices: Sequence[int]) -> Any:
        """The prepared input of one request holding these samples, padded to the batch with the last one."""
        if self.batch == 1:
            return self.prepared[indices[0]]
        slot = self.slot
        rows = [slot[i] for i in indices]
        rows += [rows[-1]] * (self.batch - len(rows))
        feeds = {name: slab.take(rows, axis=0) for name, slab in self.slabs.items()}
        for spec in self.specs:  # rank-0 inputs are not batched
            if spec.name not in feeds:
                feeds[spec.name] = self.loaded[indices[0]][spec.name]
        return self.session.prepare(feeds)
