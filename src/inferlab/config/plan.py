"""The resolve step: an Experiment becomes frozen TrialSpecs (cartesian product, include/exclude rules),
with models found and hashed, knobs checked against each backend, and input overrides checked."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from inferlab import backends
from inferlab.accuracy.datasets import open_dataset
from inferlab.accuracy.spec import METRIC_TASK, AccuracySpec, ResolvedDataset
from inferlab.backends.base import Backend, Scalar
from inferlab.config.schema import Experiment, InputOverride, LoadGenConfig, ModelEntry, Rule
from inferlab.errors import BackendError, ConfigError, InputSpecError, ModelError
from inferlab.measure.mlperf.settings import LoadGenSettings
from inferlab.measure.trial import MeasureSettings, Mode, TrialSpec, is_scenario
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


def model_artifacts(entry: ModelEntry, index: int, exp: Experiment) -> list[Artifact]:
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


def choose(artifacts: list[Artifact], backend: Backend) -> Artifact | None:
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


def check_inputs(artifact: Artifact, batches: list[int], where: str, checked: set[str]) -> None:
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


def resolve_dataset(exp: Experiment) -> ResolvedDataset | None:
    """Open and hash the dataset once; say what is wrong with the accuracy settings, naming the field."""
    wants = "accuracy" in exp.modes() or exp.accuracy.with_speed
    if exp.dataset is None:
        if wants:
            raise ConfigError(f"{_src(exp)}dataset: mode 'accuracy' (or accuracy.with_speed) needs a dataset; add a "
                              "'dataset:' block, e.g. {format: digits, split: test}")
        return None
    if not wants:
        raise ConfigError(f"{_src(exp)}dataset: no trial uses it; add 'accuracy' to mode, or set "
                          "accuracy.with_speed: true")
    for m in exp.accuracy.metrics or []:
        if METRIC_TASK[m] != exp.dataset.task:
            raise ConfigError(f"{_src(exp)}accuracy.metrics: '{m}' is a {METRIC_TASK[m]} metric, but a "
                              f"'{exp.dataset.format}' dataset is for {exp.dataset.task}")
    return open_dataset(exp.dataset, exp.base_dir()).resolved()


def accuracy_spec(exp: Experiment, entry: ModelEntry, data: ResolvedDataset | None, mode: Mode) -> AccuracySpec | None:
    if data is None or is_scenario(mode) or (mode != "accuracy" and not exp.accuracy.with_speed):
        return None
    return AccuracySpec(dataset=data, preprocess=entry.preprocess, postprocess=entry.postprocess,
                        metrics=tuple(exp.accuracy.metrics or ()), keep_outputs=exp.accuracy.keep_outputs)


def _loadgen_variants(exp: Experiment) -> list[LoadGenSettings]:
    """The LoadGen settings to sweep (test modes × target QPS), with files resolved and checked."""
    cfg: LoadGenConfig = exp.loadgen
    where = f"{exp.source or exp.name}: loadgen"
    from inferlab.measure.mlperf.driver import import_loadgen

    lg = import_loadgen()
    data = cfg.model_dump(exclude={"test_mode", "target_qps"})
    if cfg.user_conf:
        path = (exp.base_dir() / cfg.user_conf).resolve()
        if not path.is_file():
            raise ConfigError(f"{where}.user_conf: {path} does not exist; give the path of a LoadGen user.conf")
        rc = lg.TestSettings().FromConfig(str(path), cfg.conf_model or "*", "Offline", 1)
        if rc != 0:
            raise ConfigError(f"{where}.user_conf: LoadGen cannot parse {path} (code {rc}); its lines read "
                              "'model.Scenario.key = value'")
        data["user_conf"] = str(path)
    if data["min_duration_s"] is None and not cfg.official:
        data["min_duration_s"] = exp.measure.min_duration_s
    return [LoadGenSettings(test_mode=mode, target_qps=qps, **data)
            for mode, qps in itertools.product(_as_list(cfg.test_mode), _as_list(cfg.target_qps))]


def _loadgen_timeout(settings: MeasureSettings, lg: LoadGenSettings) -> MeasureSettings:
    """A LoadGen run lasts at least its min duration (600 s when official), once per search step."""
    runs = lg.peak_max_runs if lg.find_peak_qps or lg.test_mode == "FindPeakPerformance" else 1
    duration = lg.min_duration_s if lg.min_duration_s is not None else 600.0
    need = 300.0 + 2.5 * duration * runs
    return settings if settings.timeout_s >= need else replace(settings, timeout_s=need)


def _runs(exp: Experiment, settings: MeasureSettings,
          skipped: list[str]) -> list[tuple[Mode, LoadGenSettings | None, MeasureSettings]]:
    """Each mode with its measure settings, and each scenario with each LoadGen variant that applies to it."""
    modes = exp.modes()
    out: list[tuple[Mode, LoadGenSettings | None, MeasureSettings]] = [
        (m, None, settings) for m in modes if not is_scenario(m)]
    scenarios = [m for m in modes if is_scenario(m)]
    for lg, mode in itertools.product(_loadgen_variants(exp) if scenarios else [], scenarios):
        if lg.test_mode == "FindPeakPerformance" and mode != "Server":
            note = f"FindPeakPerformance is LoadGen's Server search; skipped for {mode}"
            if note not in skipped:
                skipped.append(note)
            continue
        if mode != "Server":  # Server-only settings would make duplicate trials
            lg = replace(lg, target_qps=None, latency_bound_ms=None, find_peak_qps=False)
        out.append((mode, lg, _loadgen_timeout(settings, lg)))
    return out


def plan(exp: Experiment) -> Plan:
    """Expand and resolve the experiment. Raises an InferlabError naming the field for anything wrong."""
    if not exp.backends:
        raise ConfigError(f"{_src(exp)}backends: list at least one backend ({', '.join(backends.names())})")
    settings = MeasureSettings(**exp.measure.model_dump())
    batches = _as_list(exp.batch)
    skipped: list[str] = []
    runs = _runs(exp, settings, skipped)
    data = resolve_dataset(exp)
    resolved = [model_artifacts(m, i, exp) for i, m in enumerate(exp.models)]
    specs: list[TrialSpec] = []
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
                artifact = choose(artifacts, backend)
                if artifact is None:
                    skipped.append(f"{backend.name} cannot load model '{artifacts[0].name}' "
                                   f"({', '.join(a.format.value for a in artifacts)}); add an alternate format")
                    continue
                check_inputs(artifact, batches, f"{_src(exp)}models[{mi}]", checked)
                for params, batch, (mode, lg, measure), rep in itertools.product(grids, batches, runs,
                                                                                 range(exp.repeats)):
                    if mode == "SingleStream" and batch != 1:
                        note = f"SingleStream sends one sample per query, so batch {batch} is skipped for it"
                        if note not in skipped:
                            skipped.append(note)
                        continue
                    specs.append(TrialSpec(artifact, backend.name, device, frozen_params(params), batch, mode,
                                           measure, rep, lg, accuracy_spec(exp, exp.models[mi], data, mode)))
    if exp.include:
        specs = [s for s in specs if any(_matches(r, s) for r in exp.include)]
    specs = [s for s in specs if not any(_matches(r, s) for r in exp.exclude)]
    unique = list({s.key(): s for s in specs}.values())
    if not unique:
        raise ConfigError(f"{_src(exp)}no trials left to run"
                          + (f" ({'; '.join(skipped)})" if skipped else "; check include/exclude rules"))
    return Plan(unique, skipped)


def frozen_params(params: dict[str, Scalar]) -> tuple[tuple[str, Scalar], ...]:
    return tuple(sorted(params.items()))


__all__ = ["Plan", "accuracy_spec", "check_inputs", "choose", "frozen_params", "model_artifacts", "plan",
           "resolve_dataset"]
