"""The resolve step: an Experiment becomes frozen TrialSpecs (cartesian product, include/exclude rules),
with models found and hashed, knobs checked against each backend, and input overrides checked."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

from inferlab import backends
from inferlab.backends.base import Backend, Scalar
from inferlab.config.schema import Experiment, InputOverride, ModelEntry, Rule
from inferlab.errors import BackendError, ConfigError, InputSpecError, ModelError
from inferlab.measure.trial import MeasureSettings, TrialSpec
from inferlab.models.artifact import Artifact, resolve
from inferlab.models.inputs import merge
from inferlab.models.introspect import declared_inputs
from inferlab.models.tensors import TensorSpec, canonical_dtype

log = logging.getLogger(__name__)


@dataclass
class Plan:
    specs: list[TrialSpec]
    skipped: list[str] = field(default_factory=list)  # combinations that cannot run, and why


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _overrides(entry: ModelEntry, where: str) -> tuple[TensorSpec, ...]:
    out = []
    for name, o in entry.inputs.items():
        assert isinstance(o, InputOverride)
        try:
            dtype = canonical_dtype(o.dtype) if o.dtype else ""
        except InputSpecError as exc:
            raise ConfigError(f"{where}.inputs.{name}.dtype: {exc}") from None
        low, high = o.range if o.range else (None, None)
        out.append(TensorSpec(name, tuple(o.shape or ()), dtype, low, high))
    return tuple(out)


def _artifacts(entry: ModelEntry, index: int, exp: Experiment) -> list[Artifact]:
    where = f"models[{index}]"
    overrides = _overrides(entry, where)
    out = []
    for j, ref in enumerate([entry.path, *entry.alternates]):
        field_name = "path" if j == 0 else f"alternates[{j - 1}]"
        try:
            out.append(resolve(entry.display_name(), ref, exp.base_dir(), overrides))
        except ModelError as exc:
            raise ModelError(f"{_src(exp)}{where}.{field_name}: {exc}") from None
    return out


def _src(exp: Experiment) -> str:
    return f"{exp.source}: " if exp.source else ""


def _choose(artifacts: list[Artifact], backend: Backend) -> Artifact | None:
    for fmt in backend.formats:
        for a in artifacts:
            if a.format is fmt:
                return a
    return None


def _param_grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(params)
    values = [_as_list(params[k]) for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def _matches(rule: Rule, spec: TrialSpec) -> bool:
    checks: list[tuple[Any, Any]] = [(rule.model, spec.model.name), (rule.backend, spec.backend),
                                     (rule.device, spec.device), (rule.batch, spec.batch), (rule.mode, spec.mode)]
    for want, have in checks:
        if want is not None and have not in _as_list(want):
            return False
    if rule.params:
        params = spec.param_dict
        for k, want in rule.params.items():
            if params.get(k) not in _as_list(want):
                return False
    return True


def _check_inputs(artifact: Artifact, batches: list[int], where: str, checked: set[str]) -> None:
    if artifact.hash in checked:
        return  # the same file, already checked for another backend
    checked.add(artifact.hash)
    declared = declared_inputs(artifact, cheap_only=True)
    if declared is None:
        return  # PyTorch models are checked in the trial process, where torch is loaded anyway
    for b in batches:
        try:
            merge(declared, artifact.inputs, b, artifact.name)
        except InputSpecError as exc:
            raise InputSpecError(f"{where}: {exc}") from None


def plan(exp: Experiment) -> Plan:
    """Expand and resolve the experiment. Raises an InferlabError naming the field for anything wrong."""
    settings = MeasureSettings(**exp.measure.model_dump())
    batches = _as_list(exp.batch)
    modes = _as_list(exp.mode)
    resolved = [_artifacts(m, i, exp) for i, m in enumerate(exp.models)]
    specs: list[TrialSpec] = []
    skipped: list[str] = []
    checked: set[str] = set()
    for bi, entry in enumerate(exp.backends):
        where = f"{_src(exp)}backends[{bi}]"
        try:
            backend = backends.get(entry.name)
        except BackendError as exc:
            raise BackendError(f"{where}.name: {exc}") from None
        own_devices = entry.devices is not None
        for device in entry.devices or exp.devices:
            if not backend.accepts_device(device):
                if own_devices:
                    raise BackendError(f"{where}.devices: '{device}' is not a device backend '{backend.name}' "
                                       "can use; see `inferlab backends`")
                skipped.append(f"{backend.name} cannot use device '{device}'")
                continue
            grids = [backend.check_params(device, combo, f"{where}.params") for combo in _param_grid(entry.params)]
            for mi, artifacts in enumerate(resolved):
                artifact = _choose(artifacts, backend)
                if artifact is None:
                    skipped.append(f"{backend.name} cannot load model '{artifacts[0].name}' "
                                   f"({', '.join(a.format.value for a in artifacts)}); add an alternate format")
                    continue
                _check_inputs(artifact, batches, f"{_src(exp)}models[{mi}]", checked)
                for params, batch, mode, rep in itertools.product(grids, batches, modes, range(exp.repeats)):
                    specs.append(TrialSpec(artifact, backend.name, device, _frozen(params), batch, mode,
                                           settings, None, rep))
    if exp.include:
        specs = [s for s in specs if any(_matches(r, s) for r in exp.include)]
    specs = [s for s in specs if not any(_matches(r, s) for r in exp.exclude)]
    unique = list({s.key(): s for s in specs}.values())
    if not unique:
        raise ConfigError(f"{_src(exp)}no trials left to run"
                          + (f" ({'; '.join(skipped)})" if skipped else "; check include/exclude rules"))
    return Plan(unique, skipped)


def _frozen(params: dict[str, Scalar]) -> tuple[tuple[str, Scalar], ...]:
    return tuple(sorted(params.items()))


__all__ = ["Plan", "plan"]
