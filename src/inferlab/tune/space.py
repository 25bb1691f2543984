"""The search space of a tuning: which backend/device (an "arm"), its knobs, batch and model precision.

A value the user fixed stays fixed, a list is searched, and what is left open is searched over the knob's
declared domain. Spaces are conditional (each arm has its own knobs), which optuna's define-by-run API and
its brute-force (grid) sampler both handle."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Protocol

from inferlab import backends
from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError
from inferlab.records.trial import Scalar
from inferlab.tune.spec import OPEN_BATCHES

ASYNC_MODES = ("throughput",)


class Suggests(Protocol):
    """The part of optuna's Trial a space uses."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Dim:
    """One searched dimension. Ordered integers are suggested by index, so samplers see their order."""

    name: str
    values: tuple[Scalar, ...]

    @property
    def ordinal(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in self.values)

    def suggest(self, trial: Suggests) -> Scalar:
        if len(self.values) == 1:
            return self.values[0]
        if self.ordinal:
            return self.values[trial.suggest_int(self.name, 0, len(self.values) - 1)]
        return trial.suggest_categorical(self.name, list(self.values))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}


@dataclass(frozen=True)
class Point:
    """One configuration: what a trial of the tuning measures."""

    backend: str
    device: str
    precision: str
    batch: int
    params: tuple[tuple[str, Scalar], ...]   # every knob, defaults filled in

    def key(self) -> str:
        return f"{self.backend}/{self.device}/{self.precision}/b{self.batch}/" + ",".join(
            f"{k}={v}" for k, v in self.params)

    def knobs(self) -> dict[str, Scalar]:
        """The knobs set away from the backend's defaults."""
        return backends.non_default(self.backend, self.device, self.params)

    def describe(self, knobs: bool = True) -> str:
        head = f"{self.backend}/{self.device} {self.precision} b{self.batch}"
        changed = " ".join(f"{k}={v}" for k, v in self.knobs().items()) if knobs else ""
        return f"{head} {changed}" if changed else head

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "precision": self.precision, "batch": self.batch,
                "params": dict(self.params)}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Point:
        return Point(d["backend"], d["device"], d["precision"], int(d["batch"]), tuple(sorted(d["params"].items())))


@dataclass(frozen=True)
class Arm:
    """A backend on a device, with its fixed and searched knobs."""

    backend: str
    device: str
    fixed: tuple[tuple[str, Scalar], ...]
    dims: tuple[Dim, ...]
    precisions: Dim

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.device}"

    def size(self) -> int:
        return math.prod(len(d.values) for d in self.dims) * len(self.precisions.values)


@dataclass(frozen=True)
class Space:
    arms: tuple[Arm, ...]
    batch: Dim

    def size(self) -> int:
        """How many distinct configurations there are."""
        return sum(a.size() for a in self.arms) * len(self.batch.values)

    def suggest(self, trial: Suggests) -> Point:
        labels = Dim("target", tuple(a.label for a in self.arms))
        arm = self.arms[labels.values.index(labels.suggest(trial))]
        params: dict[str, Scalar] = dict(arm.fixed)
        for d in arm.dims:
            params[d.name.split(".", 1)[1]] = d.suggest(trial)
        backend = backends.get(arm.backend)
        full = backend.check_params(arm.device, params, f"backends.{arm.backend}.params")
        batch = self.batch.suggest(trial)
        assert isinstance(batch, int)
        return Point(arm.backend, arm.device, str(arm.precisions.suggest(trial)), batch, tuple(sorted(full.items())))

    def to_json(self) -> dict[str, Any]:
        return {"batch": self.batch.to_json(), "arms": [
            {"label": a.label, "fixed": dict(a.fixed), "dims": [d.to_json() for d in a.dims],
             "precisions": list(a.precisions.values)} for a in self.arms]}

    def describe(self) -> str:
        parts = []
        for a in self.arms:
            dims = " × ".join(f"{d.name.split('.', 1)[1]}[{len(d.values)}]" for d in a.dims if len(d.values) > 1)
            prec = f" × precision[{len(a.precisions.values)}]" if len(a.precisions.values) > 1 else ""
            parts.append(f"{a.label}: {dims or 'no open knobs'}{prec}")
        return f"{self.size()} configurations — " + "; ".join(parts) + f"; batch {list(self.batch.values)}"


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def tunable_backends(exp: Experiment) -> list[str]:
    """The backends a tuning searches: those listed, or every installed runtime when none is."""
    listed = [e.name for e in exp.backends]
    return list(dict.fromkeys(listed)) if listed else [
        n for n in backends.names() if n != "null" and backends.get(n).available()]


def build(exp: Experiment, precisions: dict[str, tuple[str, ...]], mode: str) -> Space:
    """The space of `exp` (its `tune` block set). `precisions`: per backend, the model precisions it can run
    (a backend missing from it cannot run the model and gets no arm)."""
    where = f"{exp.source or exp.name}"
    cores = len(os.sched_getaffinity(0))
    entries = [(e.name, e.devices, e.params) for e in exp.backends] or [(n, None, {}) for n in precisions]
    arms = []
    for bi, (name, own_devices, given) in enumerate(entries):
        backend = backends.get(name)
        devices = own_devices or (exp.devices if "devices" in exp.model_fields_set else backend.devices())
        for device in devices:
            knobs = backend.knobs(device)
            prefix = f"{where}: backends[{bi}].params"
            fixed: dict[str, Scalar] = {}
            dims = []
            for kname, knob in knobs.items():
                label = f"{name}/{device}.{kname}"
                if kname in given:
                    values = [knob.validate(v, f"{prefix}.{kname}") for v in _as_list(given[kname])]
                    if len(values) == 1:
                        fixed[kname] = values[0]
                    else:
                        dims.append(Dim(label, tuple(dict.fromkeys(values))))
                elif knob.searched and not (knob.async_only and mode not in ASYNC_MODES):
                    dims.append(Dim(label, knob.candidates(cores)))
            if name not in precisions:
                continue
            arms.append(Arm(name, device, tuple(sorted(fixed.items())), tuple(dims),
                            Dim(f"{name}/{device}.precision", precisions[name])))
    if not arms:
        raise ConfigError(f"{where}: backends: no backend here can run the model; list one of "
                          f"{', '.join(n for n in backends.names() if n != 'null')}")
    batches = tuple(_as_list(exp.batch)) if "batch" in exp.model_fields_set else OPEN_BATCHES
    return Space(tuple(arms), Dim("batch", tuple(sorted(set(batches)))))
