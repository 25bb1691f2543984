"""Co-located ensembles: several models on one device, fed the same samples, their outputs combined. What an
ensemble trial is (EnsembleSpec) and the figures that only an ensemble has (EnsembleFigures); each member's
own figures are MemberResults (records.trial)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from inferlab.models.artifact import Artifact
from inferlab.records.accuracy import AccuracySpec, Postprocess, Preprocess

Combine = Literal["mean", "vote"]
COMBINES: tuple[str, ...] = ("mean", "vote")


@dataclass(frozen=True)
class EnsembleSpec:
    """The members of an ensemble trial, in order, with how their outputs are combined and how each reads the
    dataset (its preprocess and postprocess, from its models[] entry)."""

    name: str
    members: tuple[Artifact, ...]
    combine: Combine = "mean"
    readings: tuple[tuple[Preprocess, Postprocess], ...] = ()

    def model(self) -> Artifact:
        """The trial's model: named after the ensemble, its hash the members' hashes in order (so the store,
        tables and keys tell ensembles apart). Its file is the first member's; nothing loads it as the
        ensemble: the runner loads every member."""
        first = self.members[0]
        digest = hashlib.sha256("+".join(m.hash for m in self.members).encode()).hexdigest()
        return Artifact(self.name, first.ref, first.format, digest, first.inputs, first.rel)

    def member_accuracy(self, trial: AccuracySpec, i: int) -> AccuracySpec:
        """Member `i`'s accuracy spec: the trial's dataset and metrics, read the member's way."""
        pre, post = self.readings[i] if i < len(self.readings) else (Preprocess(), Postprocess())
        return trial.model_copy(update={"preprocess": pre, "postprocess": post})

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "members": [m.to_json() for m in self.members], "combine": self.combine,
                "readings": [[pre.model_dump(mode="json"), post.model_dump(mode="json")]
                             for pre, post in self.readings]}

    def identity(self) -> dict[str, Any]:
        out = self.to_json()
        out["members"] = [m.identity() for m in self.members]
        return out

    @staticmethod
    def from_json(d: dict[str, Any]) -> EnsembleSpec:
        return EnsembleSpec(str(d["name"]), tuple(Artifact.from_json(m) for m in d["members"]), d["combine"],
                            tuple((Preprocess.model_validate(pre), Postprocess.model_validate(post))
                                  for pre, post in d.get("readings") or ()))


@dataclass(frozen=True)
class EnsembleFigures:
    """The ensemble's other schedule, measured in the same trial: the members run one after another on one
    stream (the trial's own figures are the members at the same time), and what co-location gains."""

    sequential_throughput_sps: float | None
    sequential_latency_median_ms: float | None
    gain: float | None                 # throughput at the same time / one after another (>1: co-location gains)
    combine: str = "mean"

    def to_json(self) -> dict[str, Any]:
        return {"sequential_throughput_sps": self.sequential_throughput_sps,
                "sequential_latency_median_ms": self.sequential_latency_median_ms, "gain": self.gain,
                "combine": self.combine}

    @staticmethod
    def from_json(d: dict[str, Any]) -> EnsembleFigures:
        return EnsembleFigures(d.get("sequential_throughput_sps"), d.get("sequential_latency_median_ms"),
                               d.get("gain"), d.get("combine", "mean"))
