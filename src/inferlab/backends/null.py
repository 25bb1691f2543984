"""The null backend: a session that returns at once, to measure inferlab's own overhead (as LoadGen's null SUT).

It is never a stand-in for a real runtime in an integration test."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import numpy as np

from inferlab.backends.base import Backend, Session, SessionInfo
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.tensors import TensorSpec
from inferlab.records.trial import Scalar


class NullSession(Session):
    def __init__(self, inputs: list[TensorSpec]) -> None:
        self.inputs = inputs
        self.outputs = []
        self.info = SessionInfo(runtime={"null": "returns at once"})

    def run(self, prepared: Any) -> Any:
        return None

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return {}


class NullBackend(Backend):
    name = "null"
    formats = tuple(ModelFormat)
    distribution = "inferlab"

    def available(self) -> bool:
        return importlib.util.find_spec("numpy") is not None

    def load(self, model: Artifact, device: str, params: Mapping[str, Scalar],
             inputs: list[TensorSpec] | None = None, mode: str = "latency", profile: bool = False) -> Session:
        return NullSession(list(inputs or []))
