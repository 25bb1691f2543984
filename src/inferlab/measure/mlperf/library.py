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

    def unload(self, indices: Sequence[int]) -> None:
        for i in indices:
            self.loaded.pop(i, None)
            self.prepared.pop(i, None)

    def batch_of(self, indices: Sequence[int]) -> Any:
        """The prepared input of one request holding these samples, padded to the batch with the last one."""
        if self.batch == 1:
            return self.prepared[indices[0]]
        idx = list(indices) + [indices[-1]] * (self.batch - len(indices))
        feeds = {}
        for spec in self.specs:
            parts = [self.loaded[i][spec.name] for i in idx]
            feeds[spec.name] = np.concatenate(parts, axis=0) if parts[0].ndim else parts[0]
        return self.session.prepare(feeds)
