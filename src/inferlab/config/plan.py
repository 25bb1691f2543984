"""The resolve step: an Experiment becomes frozen TrialSpecs (cartesian product, include/exclude rules),
with models found and hashed, knobs checked against each backend, and input overrides checked."""

from __future__ import annotations

import itertools
import logging
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from inferlab import backends
from inferlab.accuracy.datasets import open_dataset
from inferlab.backends.base import Backend, refusal, word
from inferlab.backends.multi import accepts, compound, knob_device, members_of
from inferlab.backends.split import hetero_members
from inferlab.config.ensembles import Ensemble, check_same_inputs, ensemble_spec, ensembles, members_in_ensembles
from inferlab.config.schema import Experiment, InputOverride, LoadGenConfig, ModelEntry, Rule
from inferlab.config.words import Where
from inferlab.errors import BackendError, ConfigError, InputSpecError, ModelError, did_you_mean
from inferlab.models.artifact import Artifact, ModelFormat, resolve
from inferlab.models.inputs import IMAGE_SUFFIXES, Wording, data_digest, data_files, merge
from inferlab.models.introspect import concrete_inputs, declared_inputs
from inferlab.models.tensors import InputHint, canonical_dtype
from inferlab.records.accuracy import METRIC_TASK, AccuracySpec, ResolvedDataset
from inferlab.records.mlperf import LoadGenSettings
from inferlab.records.trial import MeasureSettings, Mode, Scalar, TrialSpec, is_scenario

log = logging.getLogger(__name__)

MAX_TRIALS = 100_000  # trials in one run: a grid past this is a typo or a job for several experiments


@dataclass
class Plan:
    specs: list[TrialSpec]
    skipped: list[str] = field(default_factory=list)  # combinations that cannot run, and why


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _hints(entry: ModelEntry, index: int, exp: Experiment, where: Where) -> tuple[InputHint, ...]:
    out = []
    for name, o in entry.inputs.items():
        assert isinstance(o, InputOverride)
        try:
            dtype = canonical_dtype(o.dtype) if o.dtype else None
        except InputSpecError as exc:
            raise ConfigError(f"{where(f'models[{index}].inputs.{name}.dtype')}: {exc}") from None
        low, high = o.range if o.range else (None, None)
        data = digest = None
        if o.data is not None:
            path = Path(o.data) if Path(o.data).is_absolute() else exp.base_dir() / o.data
            path = path.resolve()
            if not path.exists() or (path.is_dir() and not data_files(path)):
                what = "does not exist" if not path.exists() else "holds no .npy arrays or images"
                raise InputSpecError(f"{where(f'models[{index}].inputs.{name}.data')}: {path} {what}; give a .npy "
                                     "file or a folder of .npy arrays or images")
            if path.is_file() and path.suffix.lower() not in (".npy", *IMAGE_SUFFIXES):
                raise InputSpecError(f"{where(f'models[{index}].inputs.{name}.data')}: {path} is not a .npy "
                                     "array or an image; give a .npy file or a folder")
            data, digest = str(path), data_digest(path)
        out.append(InputHint(name, tuple(o.shape) if o.shape is not None else None, dtype, low, high, o.value,
                             data, digest, o.batch_axis))
    return tuple(out)


def model_artifacts(entry: ModelEntry, index: int, exp: Experiment) -> list[Artifact]:
    where = Where(str(exp.source) if exp.source else None, exp.command is not None)
    hints = _hints(entry, index, exp, where)
    out = []
    for j, ref in enumerate([entry.path, *entry.alternates]):
        field_name = "path" if j == 0 else f"alternates[{j - 1}]"
        try:
            out.append(resolve(entry.display_name(), ref, exp.base_dir(), hints))
        except ModelError as exc:
            raise ModelError(f"{where(f'models[{index}].{field_name}')}: {exc}") from None
    if any(h.name == "" for h in hints):  # a bare --shape/--input: the model's only input
        named = _name_the_input(out[0], hints, where(f"models[{index}].inputs"))
        out = [replace(a, inputs=named) for a in out]
    return out


def _name_the_input(artifact: Artifact, hints: tuple[InputHint, ...], where: str) -> tuple[InputHint, ...]:
    declared = declared_inputs(artifact)
    assert declared is not None
    if len(declared) != 1:
        names = ", ".join(f"{s.name} {s.dims_text()}" for s in declared)
        raise InputSpecError(f"{where}: model '{artifact.name}' has {len(declared)} inputs ({names}); name the one "
                             "you mean, e.g. --shape NAME=1x3x224x224 or --input NAME=VALUE")
    only = declared[0].name
    merged: dict[str, InputHint] = {}
    for h in hints:  # a bare setting and one naming the input are the same input's
        h = replace(h, name=only)
        prev = merged.get(only)
        merged[only] = h if prev is None else InputHint(only, *(
            getattr(h, f) if getattr(h, f) is not None else getattr(prev, f)
            for f in ("shape", "dtype", "low", "high", "value", "data", "data_hash", "batch_axis")))
    return tuple(merged.values())


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


def check_inputs(artifact: Artifact, batches: list[int], words: Wording, checked: set[str]) -> None:
    """Merge the model's inputs with the hints at each batch now, so a shape or value the model cannot take
    is an error before anything runs."""
    if artifact.hash in checked:
        return  # the same file, already checked for another backend
    checked.add(artifact.hash)
    declared = declared_inputs(artifact)
    assert declared is not None
    for b in batches:
        merge(declared, artifact.inputs, b, artifact.name, words)


def batch_from_shapes(artifact: Artifact) -> int | None:
    """The batch a user's shapes give (benchmark_app's -shape [8,3,224,224] runs batch 8), when they agree."""
    declared = declared_inputs(artifact)
    assert declared is not None
    axes = {s.name: s.batch_axis for s in declared}
    found = {h.shape[axis] for h in artifact.inputs
             if h.shape is not None and (axis := _axis(h, axes.get(h.name))) is not None
             and axis < len(h.shape) and h.shape[axis] > 0}
    return found.pop() if len(found) == 1 else None


def _axis(hint: InputHint, inferred: int | None) -> int | None:
    if hint.batch_axis == "none":
        return None
    return hint.batch_axis if isinstance(hint.batch_axis, int) else inferred


def _present(backend: Backend, device: str) -> bool:
    """Whether a device this backend can name is here: a multi-device when each member is (other compound
    devices are the runtime's to check)."""
    members = compound(device)
    if members is not None:
        return all(_present(backend, m) for m in members)
    if device == "cpu" or (":" in device and not device.startswith("cuda")):  # every runtime has a cpu
        return True
    devices = backend.devices()
    same = {device, device.replace("cuda:0", "cuda"), device + ":0", device + ".0"}
    return bool(same & set(devices)) or (device == "gpu" and any(d.startswith("gpu") for d in devices))


_FORMAT_WORDS = {ModelFormat.ONNX: "an .onnx file", ModelFormat.OPENVINO: "an OpenVINO .xml",
                 ModelFormat.TORCH_EXPORT: "a torch.export .pt2", ModelFormat.TORCH_FACTORY: "a module factory",
                 ModelFormat.SAVED_MODEL: "a TensorFlow SavedModel", ModelFormat.KERAS: "a Keras .keras file",
                 ModelFormat.TFLITE: "a LiteRT .tflite file"}


def cannot_load(backend: Backend, artifacts: list[Artifact]) -> str:
    """Why a backend skips a model: what it has and what the backend loads."""
    have = ", ".join(f"'{Path(a.ref).name}' is {_FORMAT_WORDS[a.format]}" for a in artifacts)
    loads = " or ".join(_FORMAT_WORDS[f] for f in backend.formats)
    return f"{backend.name} skips model '{artifacts[0].name}': {have}, and {backend.name} loads {loads}"


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


def plan(exp: Experiment, devices_here: bool = True) -> Plan:
    """Expand and resolve the experiment. Raises an InferlabError naming the field for anything wrong.
    `devices_here` False: the trials run elsewhere (a cluster), whose nodes' devices the executor checks."""
    where = Where(str(exp.source) if exp.source else None, exp.command is not None)
    if not exp.backends:
        raise ConfigError(f"{where('backends')}: list at least one backend ({', '.join(backends.names())})")
    check_grid(exp, where)
    _check_frameworks(exp, where)
    settings = MeasureSettings(**exp.measure.model_dump())
    skipped: list[str] = []
    runs = _runs(exp, settings, skipped)
    data = resolve_dataset(exp)
    resolved = [model_artifacts(m, i, exp) for i, m in enumerate(exp.models)]
    groups = ensembles(exp, where)
    grouped = members_in_ensembles(groups)
    units: list[int | Ensemble] = [*(i for i in range(len(resolved)) if i not in grouped), *groups]
    specs: list[TrialSpec] = []
    checked: set[str] = set()
    for bi, entry in enumerate(exp.backends):
        try:
            backend = backends.get(entry.name)
        except BackendError as exc:
            raise BackendError(f"{where(f'backends[{bi}].name')}: {exc}") from None
        if devices_here and not backend.available():
            raise BackendError(f"{where(f'backends[{bi}].name')}: '{backend.name}' is not installed here; "
                               f"{backend.install}, or leave it out")
        if "layers" in exp.profiles() and not backend.can_profile:
            raise BackendError(f"{where('profile')}: backend '{backend.name}' cannot profile layers; leave layers out "
                               f"for it, or use a backend that can ({', '.join(_profilers())})")
        own_devices = entry.devices is not None
        present: dict[str, bool] = {}
        devices_field = f"backends[{bi}].devices" if own_devices else "devices"
        for device in entry.devices or exp.devices:
            if exp.profiles() and (compound(device) is not None or groups):
                what = (f"a multi-device ({device})" if members_of(device) is not None else
                        f"a split ({device})" if hetero_members(device) is not None else "an ensemble")
                raise BackendError(f"{where('profile')}: {what} has no profile of its own; profile each member on "
                                   "its own trial")
            if not accepts(backend, device):
                if hetero_members(device) is not None and not backend.can_split:
                    splitters = ", ".join(n for n in backends.names() if backends.get(n).can_split)
                    raise BackendError(f"{where(devices_field)}: '{device}': backend '{backend.name}' cannot split "
                                       f"a model across devices; hetero: devices are for {splitters}")
                if own_devices or where.cli:
                    raise BackendError(f"{where(devices_field)}: '{device}' is not a device backend "
                                       f"'{backend.name}' can use; see `inferlab backends`")
                skipped.append(f"{backend.name} cannot use device '{device}'")
                continue
            for unit in units:
                mi = unit.members[0] if isinstance(unit, Ensemble) else unit
                ensemble = None
                if isinstance(unit, Ensemble):
                    chosen = [choose(resolved[i], backend) for i in unit.members]
                    lacking = next((resolved[i] for i, a in zip(unit.members, chosen, strict=True) if a is None), None)
                    if lacking is not None:
                        skipped.append(f"ensemble '{unit.entry.display_name()}': {cannot_load(backend, lacking)}")
                        continue
                    if compound(device) is not None:
                        skipped.append(f"ensemble '{unit.entry.display_name()}' runs on one device, not on {device}")
                        continue
                    members = [a for a in chosen if a is not None]
                    ensemble = ensemble_spec(exp, unit, members)
                    artifact = ensemble.model()
                else:
                    members = [a for a in [choose(resolved[mi], backend)] if a is not None]
                    if not members:
                        skipped.append(cannot_load(backend, resolved[mi]))
                        continue
                    artifact = members[0]
                if devices_here and not present.setdefault(device, _present(backend, device)):
                    raise BackendError(f"{where(devices_field)}: '{device}': {backend.name} finds no such device "
                                       f"here (it has {', '.join(backend.devices())}); use one of those")
                batches = _batches(exp, members[0])
                for i, member in zip(unit.members if isinstance(unit, Ensemble) else [mi], members, strict=True):
                    check_inputs(member, batches, where.inputs(i), checked)
                if isinstance(unit, Ensemble):
                    for b in batches:
                        check_same_inputs(exp, unit, members, b, where)
                affinity = _affinity(backend, entry.affinity, device, members, bi, where)
                for mode, lg, measure in runs:
                    if ensemble is not None and is_scenario(mode):
                        note = f"ensemble '{ensemble.name}' runs with inferlab's drivers; {mode} (LoadGen) is skipped"
                        if note not in skipped:
                            skipped.append(note)
                        continue
                    grids = [p for combo in _param_grid(entry.params)
                             if (p := _params(backend, knob_device(device), combo, mode, where, bi, entry.params,
                                                      skipped))
                             is not None]
                    for params, batch, rep in itertools.product(grids, batches, range(exp.repeats)):
                        if mode == "SingleStream" and batch != 1:
                            note = f"SingleStream sends one sample per query, so batch {batch} is skipped for it"
                            if note not in skipped:
                                skipped.append(note)
                            continue
                        specs.append(TrialSpec(artifact, backend.name, device, frozen_params(params), batch, mode,
                                               measure, rep, lg, accuracy_spec(exp, exp.models[mi], data, mode),
                                               exp.profiles() if mode in ("latency", "throughput") else (),
                                               ensemble, affinity,
                                               None if ensemble is not None else exp.models[mi].framework))
    if exp.include:
        specs = [s for s in specs if any(_matches(r, s) for r in exp.include)]
    before_rules = len(specs)
    specs = [s for s in specs if not any(_matches(r, s) for r in exp.exclude)]
    unique = list({s.key(): s for s in specs}.values())
    if not unique:
        if before_rules or exp.include:
            why = "the include/exclude rules leave none" if exp.include or exp.exclude else "none planned"
        else:
            why = "; ".join(skipped) or "none planned"
        raise ConfigError(f"{where.prefix()}no trials left to run: {why}")
    if devices_here:
        _preflight(exp, unique, where)
    return Plan(unique, skipped)


def _check_frameworks(exp: Experiment, where: Where) -> None:
    """A model's framework must be a backend the experiment measures (its speed is the baseline)."""
    names = [b.name for b in exp.backends]
    for i, m in enumerate(exp.models):
        if m.framework is not None and m.framework not in names:
            hint = did_you_mean(m.framework, names) or f"; the experiment's backends are {', '.join(names)}"
            raise ConfigError(f"{where(f'models[{i}].framework')}: '{m.framework}' is not one of the experiment's "
                              f"backends, so there is nothing to compare with{hint}")


def _preflight(exp: Experiment, specs: list[TrialSpec], where: Where) -> None:
    """Each backend's load-time checks (backend.preflight), once per model and device, before any trial."""
    groups: dict[tuple[str, str, str], list[TrialSpec]] = {}
    for s in specs:
        if s.ensemble is None and compound(s.device) is None:
            groups.setdefault((s.backend, s.model.hash, s.device), []).append(s)
    for (name, _, device), group in groups.items():
        first = group[0]
        try:
            backends.get(name).preflight(first.model, device, [s.param_dict for s in group],
                                         concrete_inputs(first.model, first.batch))
        except BackendError as exc:
            bi = next(i for i, e in enumerate(exp.backends) if e.name == name)
            knob, _, why = str(exc).partition(": ")
            raise BackendError(f"{where(f'backends[{bi}].params.{knob}')}: {why}") from None


def _affinity(backend: Backend, rules: dict[str, str], device: str, members: list[Artifact], index: int,
              where: Where) -> tuple[tuple[str, str], ...]:
    """A split's affinity rules, checked: each names a device of the split and matches a layer of the model."""
    split_over = hetero_members(device)
    if split_over is None:
        return ()
    field = where(f"backends[{index}].affinity")
    for pattern, target in rules.items():
        if target not in split_over:
            raise BackendError(f"{field}.{pattern}: '{target}' is not a device of {device}; send layers to one of "
                               f"{', '.join(split_over)}")
    rules_t = tuple(rules.items())
    for m in members:
        declared = declared_inputs(m)
        assert declared is not None
        try:
            backend.check_split(m, rules_t, merge(declared, m.inputs, 1, m.name))
        except BackendError as exc:
            raise BackendError(f"{field}: {exc}") from None
    return rules_t


def _profilers() -> list[str]:
    """Backends that can profile layers (installed or not: their class says)."""
    return [n for n in backends.names() if backends.get(n).can_profile]


def grid_size(exp: Experiment) -> int:
    """How many trials the experiment's grid holds at most, counted without building it: models × backends'
    devices × knob combinations × batch sizes × modes (scenarios × LoadGen sweeps) × repeats, before skips,
    include/exclude rules and duplicates."""
    modes = exp.modes()
    scenarios = sum(1 for m in modes if is_scenario(m))
    sweeps = len(_as_list(exp.loadgen.test_mode)) * len(_as_list(exp.loadgen.target_qps))
    runs = len(modes) - scenarios + scenarios * sweeps
    per_model = sum(len(entry.devices or exp.devices) * math.prod(len(_as_list(v)) for v in entry.params.values())
                    for entry in exp.backends)
    return len(exp.models) * per_model * len(_as_list(exp.batch)) * runs * exp.repeats


def check_grid(exp: Experiment, where: Where) -> None:
    """Refuse a grid of more than MAX_TRIALS trials before anything is resolved, run or written."""
    n = grid_size(exp)
    if n <= MAX_TRIALS:
        return
    rules = " before include/exclude" if exp.include or exp.exclude else ""
    if where.cli:
        raise ConfigError(f"the flags plan {n:,} trials (--backend × --device × --param values × --batch × --mode/"
                          f"--scenario); at most {MAX_TRIALS:,} run at once: give fewer values")
    raise ConfigError(f"{where.prefix()}the grid plans {n:,} trials{rules} (models × backends × devices × params × "
                      f"batch × mode/scenario × repeats); at most {MAX_TRIALS:,} run in one experiment: sweep fewer "
                      "values, or split it into several experiments")


def _batches(exp: Experiment, artifact: Artifact) -> list[int]:
    """The batch sizes to run: the config's; left out, the one the user's input shapes give, else 1."""
    if "batch" in exp.model_fields_set:
        return _as_list(exp.batch)
    return [batch_from_shapes(artifact) or 1] if artifact.inputs else _as_list(exp.batch)


def _params(backend: Backend, device: str, combo: dict[str, Any], mode: str, where: Where, index: int,
            given: dict[str, Any], skipped: list[str]) -> dict[str, Scalar] | None:
    """Knob values checked, with the backend's defaults for this mode where the user left a knob out. A
    combination of swept values that breaks one of the backend's constraints is skipped (noted in `skipped`);
    values the user fixed that break one are refused."""
    field = f"backends[{index}].params"
    try:
        params = backend.check_params(device, combo, field, mode=mode, constraints=False)
        c = backend.broken(device, params)
        if c is not None:
            if any(isinstance(given.get(k), list) for k in (c.when, c.then)):
                note = (f"{backend.name} on {device}: {c.then} {word(params[c.then])} with {c.when} "
                        f"{word(params[c.when])} skipped ({c.why})")
                if note not in skipped:
                    skipped.append(note)
                return None
            raise BackendError(refusal(c, params, combo, field))
        return params
    except BackendError as exc:
        if not where.cli:
            raise BackendError(f"{where.prefix()}{exc}") from None
        text = str(exc)
        m = re.match(re.escape(field) + r"\.(\w+): ", text)
        raise BackendError(f"--param {m.group(1)}: {text[m.end():]}" if m else text) from None


def frozen_params(params: dict[str, Scalar]) -> tuple[tuple[str, Scalar], ...]:
    return tuple(sorted(params.items()))


__all__ = ["MAX_TRIALS", "Plan", "accuracy_spec", "check_grid", "check_inputs", "choose", "frozen_params",
           "grid_size", "model_artifacts", "plan", "resolve_dataset"]
