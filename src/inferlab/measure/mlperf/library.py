"""LoadGen's query sample library (QSL): the samples LoadGen draws queries from.

Loading and unloading run in LoadGen's untimed phases. A sample is one item (batch 1); the SUT stacks
samples into the trial's batch along each input's batch axis (an input without one, a state or a scalar, is
fed as sample's own). Sample i is always the same tensors: the i-th of an input's real data, else random
values seeded by i, so an accuracy log can be checked against a direct inference of the same sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inferlab.backends.base import Session
from inferlab.models.inputs import batch_of, load_samples, random_feeds
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
        self._data: dict[str, np.ndarray] = {}  # real data per input, read once

    def sample(self, index: int) -> dict[str, np.ndarray]:
        """Sample `index`'s feeds, the same every time."""
        feeds = random_feeds([s for s in self.specs if s.data is None], np.random.default_rng([self.seed, index]))
        for s in self.specs:
            if s.data is not None:
                if s.name not in self._data:
                    self._data[s.name] = load_samples(s)
                feeds[s.name] = batch_of(s, self._data[s.name], [index])
        return feeds

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
        self.slabs = {s.name: np.concatenate([self.loaded[i][s.name] for i in order], axis=s.batch_axis)
                      for s in self.specs if order and s.batch_axis is not None}

    def batch_of(self, indices: Sequence[int]) -> Any:
        """The prepared input of one request holding these samples, padded to the batch with the last one."""
        if self.batch == 1:
            return self.prepared[indices[0]]
        slot = self.slot
        rows = [slot[i] for i in indices]
        rows += [rows[-1]] * (self.batch - len(rows))
        feeds = {s.name: self.slabs[s.name].take(rows, axis=s.batch_axis) if s.batch_axis is not None
                 else self.loaded[indices[0]][s.name] for s in self.specs}
        return self.session.prepare(feeds)
