"""The search space of a tuning: which backend/device (an "arm"), its knobs, batch and model precision.

A value the user fixed stays fixed, a list is searched, and what is left open is searched over the knob's
declared domain. Spaces are conditional (each arm has its own knobs), which optuna's define-by-run API and
its brute-force (grid) sampler both handle."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Protocol

from inferlab import backends
from inferlab.backends.base import Constraint, word
from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError
from inferlab.records.trial import Scalar
from inferlab.tune.spec import DIRECTION

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

    def compute_precision(self) -> str:
        """The precision the point computes in: the runtime's precision knob where it has one (torch's dtype),
        else the model file's."""
        if self.precision != "fp32":
            return self.precision
        return backends.get(self.backend).precision_of(dict(self.params)) or self.precision

    def describe(self, knobs: bool = True) -> str:
        head = f"{self.backend}/{self.device} {self.compute_precision()} b{self.batch}"
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
    """A backend on a device, with its fixed and searched knobs and the constraints between them. Its dims are
    ordered so that a constraint's `when` knob is chosen before its `then` knob."""

    backend: str
    device: str
    fixed: tuple[tuple[str, Scalar], ...]
    dims: tuple[Dim, ...]
    precisions: Dim
    constraints: tuple[Constraint, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.device}"

    def allowed(self, dim: Dim, chosen: dict[str, Scalar]) -> tuple[Scalar, ...]:
        """The values of `dim` that break no constraint together with the knobs chosen so far."""
        knob = dim.name.split(".", 1)[1]
        if not any(knob in (c.when, c.then) for c in self.constraints):
            return dim.values
        return tuple(v for v in dim.values if not any(c.broken({**chosen, knob: v}) for c in self.constraints))

    def choose(self, trial: Suggests) -> tuple[dict[str, Scalar], int]:
        """Suggest every dim in order, each from the values the earlier choices allow: the proposal breaks no
        constraint. A dim narrowed by a constraint is suggested under a name of its own (its domain differs),
        or not at all when one value is left. Returns the knobs and how many dims a constraint narrowed."""
        params: dict[str, Scalar] = dict(self.fixed)
        narrowed = 0
        for d in self.dims:
            values = self.allowed(d, params)
            if values == d.values:
                value = d.suggest(trial)
            else:
                narrowed += 1
                value = values[0] if len(values) == 1 else \
                    Dim(f"{d.name}[{'|'.join(map(str, values))}]", values).suggest(trial)
            params[d.name.split(".", 1)[1]] = value
        return params, narrowed

    def size(self) -> int:
        """How many distinct configurations the arm has, counting only those that break no constraint."""
        knobs = {k for c in self.constraints for k in (c.when, c.then)}
        tied = [d for d in self.dims if d.name.split(".", 1)[1] in knobs]
        free = math.prod(len(d.values) for d in self.dims if d not in tied)
        combos = [dict(self.fixed)]
        for d in tied:
            combos = [{**c, d.name.split(".", 1)[1]: v} for c in combos for v in self.allowed(d, c)]
        return free * len(combos) * len(self.precisions.values)


@dataclass(frozen=True)
class Space:
    arms: tuple[Arm, ...]
    batch: Dim
    open_batch: bool = False   # batch left out: the tuner finds its domain first (a ladder of doublings)

    def size(self) -> int:
        """How many distinct configurations there are."""
        return sum(a.size() for a in self.arms) * len(self.batch.values)

    def with_batches(self, values: tuple[int, ...]) -> Space:
        """The same space over another batch domain (the one a batch ladder found)."""
        return replace(self, batch=Dim("batch", tuple(sorted(set(values)))))

    def suggest(self, trial: Suggests) -> Point:
        return self.propose(trial)[0]

    def propose(self, trial: Suggests) -> tuple[Point, int]:
        """A point, and how many of its dims a constraint narrowed (proposals that were kept possible)."""
        labels = Dim("target", tuple(a.label for a in self.arms))
        arm = self.arms[labels.values.index(labels.suggest(trial))]
        params, narrowed = arm.choose(trial)
        backend = backends.get(arm.backend)
        full = backend.check_params(arm.device, params, f"backends.{arm.backend}.params")
        batch = self.batch.suggest(trial)
        assert isinstance(batch, int)
        point = Point(arm.backend, arm.device, str(arm.precisions.suggest(trial)), batch, tuple(sorted(full.items())))
        return point, narrowed

    def seeds(self, objective: str) -> list[dict[str, Any]]:
        """The proposals a search starts with: each arm's seeds (its backend's known-fast configurations, as
        optuna parameters over the knobs left open), at the batch that suits the objective (the largest for
        throughput, the smallest otherwise). Seeds that break a constraint or a fixed knob are left out."""
        out = []
        for arm in self.arms:
            backend = backends.get(arm.backend)
            dims = {d.name.split(".", 1)[1]: d for d in arm.dims}
            for seed in backend.seeds(arm.device):
                if any(k not in dims or v not in dims[k].values for k, v in seed.items()) or \
                        backend.broken(arm.device, {**dict(arm.fixed), **seed}) is not None:
                    continue
                params: dict[str, Any] = {}
                if len(self.arms) > 1:
                    params["target"] = arm.label
                for k, v in seed.items():
                    d = dims[k]
                    params[d.name] = d.values.index(v) if d.ordinal else v
                if len(self.batch.values) > 1:
                    params["batch"] = len(self.batch.values) - 1 if DIRECTION[objective] == "maximize" else 0
                out.append(params)
        return out

    def defaults(self, arm: Arm, batch: int) -> Point:
        """The runtime's defaults on the arm's device (the knobs the user fixed kept), fp32 or the arm's first
        precision: what a batch ladder measures and what the winner's speed-up is measured against."""
        backend = backends.get(arm.backend)
        full = backend.check_params(arm.device, dict(arm.fixed), f"backends.{arm.backend}.params")
        precision = "fp32" if "fp32" in arm.precisions.values else str(arm.precisions.values[0])
        return Point(arm.backend, arm.device, precision, batch, tuple(sorted(full.items())))

    def to_json(self) -> dict[str, Any]:
        return {"batch": "open" if self.open_batch else self.batch.to_json(), "arms": [
            {"label": a.label, "fixed": dict(a.fixed), "dims": [d.to_json() for d in a.dims],
             "precisions": list(a.precisions.values), "constraints": [c.text() for c in a.constraints]}
            for a in self.arms]}

    def describe(self) -> str:
        parts = []
        for a in self.arms:
            dims = " × ".join(f"{d.name.split('.', 1)[1]}[{len(d.values)}]" for d in a.dims if len(d.values) > 1)
            prec = f" × precision[{len(a.precisions.values)}]" if len(a.precisions.values) > 1 else ""
            parts.append(f"{a.label}: {dims or 'no open knobs'}{prec}")
        batch = "batch found by doubling from 1" if self.open_batch else f"batch {list(self.batch.values)}"
        return f"{self.size()} configurations — " + "; ".join(parts) + f"; {batch}"


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
            constraints = backend.constraints(device)
            for c in constraints:
                if c.broken(fixed):
                    raise ConfigError(f"{prefix}.{c.then}: {c.then} {word(fixed[c.then])} cannot go with {c.when} "
                                      f"{word(fixed[c.when])} on {device} ({c.why}); change one of them")
            arm = Arm(name, device, tuple(sorted(fixed.items())), _ordered(dims, constraints),
                      Dim(f"{name}/{device}.precision", precisions[name]), constraints)
            if arm.size() == 0:
                raise ConfigError(f"{prefix}: no combination of the listed values is possible on {device}: "
                                  + "; ".join(c.text() for c in constraints))
            arms.append(arm)
    if not arms:
        raise ConfigError(f"{where}: backends: no backend here can run the model; list one of "
                          f"{', '.join(n for n in backends.names() if n != 'null')}")
    if "batch" in exp.model_fields_set:
        return Space(tuple(arms), Dim("batch", tuple(sorted(set(_as_list(exp.batch))))))
    return Space(tuple(arms), Dim("batch", (1,)), open_batch=True)


def _ordered(dims: list[Dim], constraints: tuple[Constraint, ...]) -> tuple[Dim, ...]:
    """Dims in declaration order, except that a dim comes after every dim that constrains it (`when` before
    `then`), so that a constraint narrows the later choice rather than leaving none."""
    out: list[Dim] = []
    rest = list(dims)
    while rest:
        placed = {d.name.split(".", 1)[1] for d in out}
        waiting = {d.name.split(".", 1)[1] for d in rest}
        for d in rest:
            knob = d.name.split(".", 1)[1]
            if all(c.when in placed or c.when not in waiting or c.when == knob
                   for c in constraints if c.then == knob):
                out.append(d)
                rest.remove(d)
                break
        else:  # a cycle of constraints: keep the declared order for the rest
            out.extend(rest)
            break
    return tuple(out)
