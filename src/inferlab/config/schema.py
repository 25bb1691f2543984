"""The experiment schema. Validation only: no I/O, no probing. A value given as a list is swept."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from inferlab.config.tuning import TuneConfig
from inferlab.measure.mlperf.settings import (
    SCENARIOS,
    TEST_MODES,
    Scenario,
    TestMode,
    canonical_scenario,
    canonical_test_mode,
)
from inferlab.records.accuracy import DatasetConfig, MetricName, Postprocess, Preprocess
from inferlab.records.analysis import PROFILES, Profile
from inferlab.records.trial import Mode, Scalar

MAX_NAME = 200  # characters of a name: what a table column shows and the database indexes


def _as_list(v: Any) -> list[Any]:
    return [] if v is None else v if isinstance(v, list) else [v]


DriverMode = Literal["latency", "throughput", "accuracy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class InputOverride(_Strict):
    """What to feed one model input; the model's own declaration fills what is left out."""

    shape: list[int] | None = Field(None, description="full shape; -1 for the batch (it takes the trial's batch) "
                                    "and for dimensions the model fixes")
    dtype: str | None = Field(None, description="float32, float16, int64, int32, int8, uint8, bool ...")
    range: tuple[float, float] | None = Field(None, description="[low, high) of synthetic values")
    value: float | None = Field(None, description="a constant: every element of the input is this value "
                                "(e.g. a sample rate, 16000)")
    data: str | None = Field(None, description="real data: a .npy file (one sample, or samples on a new first "
                             "axis) or a folder of .npy arrays and images, relative to the config")
    batch_axis: int | Literal["none"] | None = Field(None, description="the axis that carries the batch, or none "
                                                     "(a state or scalar input, fed as given at every batch); "
                                                     "default: inferred from the model")

    @field_validator("shape")
    @classmethod
    def _dims(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(d < -1 or d == 0 for d in v):
            raise ValueError("dimensions are positive, or -1 for the batch")
        return v

    @field_validator("batch_axis", mode="before")
    @classmethod
    def _axis(cls, v: Any) -> Any:
        if isinstance(v, str) and v.lower() in ("none", "null", "no"):
            return "none"
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            raise ValueError("an axis is 0 or more, or none")
        return v

    @field_validator("value", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        return float(v) if isinstance(v, bool) else v


class ModelEntry(_Strict):
    path: str = Field(description="an .onnx file, an OpenVINO .xml, a .pt2 file, a Keras .keras file, a .tflite "
                      "file, a TensorFlow SavedModel folder, or 'package.module:factory'")
    name: str | None = Field(None, max_length=MAX_NAME, description="display name (default: the file's stem)")
    alternates: list[str] = Field(default_factory=list,
                                  description="the same model in other formats, for backends that need them")
    inputs: dict[str, InputOverride] = Field(default_factory=dict)
    preprocess: Preprocess = Field(Preprocess(), description="dataset sample → input tensor (accuracy checks)")
    postprocess: Postprocess = Field(Postprocess(), description="how to read the outputs (accuracy checks)")
    framework: str | None = Field(None, description="the backend of the framework the model comes from (tensorflow, "
                                  "torch): the report gives every other runtime's speed-up over it, with its "
                                  "significance; it must be one of the experiment's backends")

    def display_name(self) -> str:
        if self.name:
            return self.name
        return Path(self.path).stem if ":" not in self.path else self.path.rsplit(":", 1)[1]


class EnsembleEntry(_Strict):
    """Models co-located on one device: every sample goes to every member (each its own session, at the same
    time), and their outputs are combined. Each member is also measured alone and the members one after another,
    in the same trial. Models named here run only inside their ensemble."""

    members: list[str] = Field(min_length=2, description="models[] entries by name (the display name, or the "
                               "file's stem)")
    name: str | None = Field(None, max_length=MAX_NAME, description="default: the members' names joined by +")
    combine: Literal["mean", "vote"] = Field("mean", description="mean: average the members' class probabilities; "
                                             "vote: each member's top class is a vote")

    def display_name(self) -> str:
        return self.name or "+".join(self.members)


class BackendEntry(_Strict):
    name: str = Field(description="a backend's name, as `inferlab backends` lists it")
    devices: list[str] | None = Field(None, min_length=1,
                                      description="devices for this backend (default: the top-level list)")
    params: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict,
                                                     description="knobs; a list is swept")
    affinity: dict[str, str] = Field(default_factory=dict, description="hetero:A,B devices: layer -> device rules, "
                                     "first match wins: a layer name glob (stages.3*), a layer type (Conv2d) or an "
                                     "op (conv2d); the rest runs on the list's first device")

    @field_validator("params")
    @classmethod
    def _sweeps(cls, v: dict[str, Any]) -> dict[str, Any]:
        empty = [k for k, values in v.items() if isinstance(values, list) and not values]
        if empty:
            raise ValueError(f"{empty[0]}: an empty list sweeps nothing; give at least one value, or remove the "
                             "key for the knob's default")
        return v


class MeasureConfig(_Strict):
    warmup_iterations: int = Field(10, ge=0)
    min_iterations: int = Field(50, ge=1)
    min_duration_s: float = Field(3.0, ge=0)
    max_duration_s: float = Field(60.0, gt=0)
    target_ci_rel_width: float | None = Field(None, gt=0, lt=1)
    in_flight: int | None = Field(None, ge=1)
    input_pool: int = Field(16, ge=1, le=4096)
    seed: int = Field(0, ge=0)
    timeout_s: float = Field(600.0, gt=0)
    memory_limit_mb: float | None = Field(None, gt=0, description="stop a trial whose RSS passes this")


def _canonical(value: Any, canon: Any, names: tuple[str, ...]) -> Any:
    """Accept MLPerf's names in any case, with or without underscores (server, single_stream, Offline)."""
    if isinstance(value, list):
        return [_canonical(v, canon, names) for v in value]
    if isinstance(value, str):
        found = canon(value)
        if found is None and value not in ("latency", "throughput", "accuracy"):
            raise ValueError(f"'{value}' is not one of {', '.join(names)}")
        return found or value
    return value


class LoadGenConfig(_Strict):
    """MLPerf LoadGen settings for the trials of `scenario`. Left out, a value comes from LoadGen (or its
    mlperf.conf with `official`), a user.conf, or a calibration on the loaded model."""

    test_mode: TestMode | list[TestMode] = Field("PerformanceOnly", description="PerformanceOnly, AccuracyOnly or "
                                                 "FindPeakPerformance (Server; LoadGen's own search); a list is swept")
    target_qps: float | list[float] | None = Field(None, description="Server: arrival rate (default: half the "
                                                   "measured capacity); a list is swept")
    latency_bound_ms: float | None = Field(None, gt=0, description="Server: latency bound for the percentile")
    latency_percentile: float | None = Field(None, gt=0, lt=1, description="target latency percentile, e.g. 0.99")
    expected_latency_ms: float | None = Field(None, gt=0, description="SingleStream/MultiStream hint")
    expected_qps: float | None = Field(None, gt=0, description="Offline hint (samples/s)")
    min_duration_s: float | None = Field(None, ge=0, description="default: measure.min_duration_s (600 with official)")
    max_duration_s: float | None = Field(None, gt=0)
    min_query_count: int | None = Field(None, ge=1)
    max_query_count: int | None = Field(None, ge=1)
    samples_per_query: int | None = Field(None, ge=1, description="MultiStream samples per query (default 8)")
    sample_count: int = Field(256, ge=1, le=1_000_000, description="samples in the query sample library")
    performance_sample_count: int | None = Field(None, ge=1, description="samples held in memory for performance")
    qsl_rng_seed: int | None = Field(None, ge=0)
    sample_index_rng_seed: int | None = Field(None, ge=0)
    schedule_rng_seed: int | None = Field(None, ge=0)
    user_conf: str | None = Field(None, description="a LoadGen user.conf (model.scenario.key = value lines)")
    conf_model: str | None = Field(None, description="model name in mlperf.conf/user.conf (default: the model's)")
    official: bool = Field(False, description="MLPerf's mlperf.conf: 600 s runs, official counts and seeds")
    find_peak_qps: bool = Field(False, description="Server: search the highest QPS LoadGen calls VALID")
    peak_tolerance: float = Field(0.05, gt=0, lt=1, description="the search stops when its bracket is this narrow")
    peak_max_runs: int = Field(8, ge=2, le=50)
    batch_timeout_ms: float = Field(0.0, ge=0, description="Server/Offline: wait this long for a batch to fill")

    @field_validator("test_mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        if v == []:
            raise ValueError(f"an empty list sweeps nothing; give one or more of {', '.join(TEST_MODES)}, or "
                             "remove the key (PerformanceOnly)")
        return _canonical(v, canonical_test_mode, TEST_MODES)

    @field_validator("target_qps")
    @classmethod
    def _qps(cls, v: float | list[float] | None) -> float | list[float] | None:
        if v == []:
            raise ValueError("an empty list sweeps nothing; give at least one rate, or remove the key (half the "
                             "measured capacity)")
        values = v if isinstance(v, list) else [] if v is None else [v]
        if any(q <= 0 for q in values):
            raise ValueError("target QPS must be positive")
        return v


class AccuracyConfig(_Strict):
    """What the accuracy check measures, on the experiment's `dataset`."""

    metrics: list[MetricName] | None = Field(None, description="default: top1, top5 (classification); coco_map, "
                                             "coco_ap50, voc_map (detection)")
    with_speed: bool = Field(False, description="latency/throughput trials also check accuracy on the same "
                                                "session, after measuring (their inputs come from the dataset)")
    keep_outputs: bool = Field(True, description="store each trial's outputs, for agreement checks (compare)")


class Rule(_Strict):
    """Matches trials: every key given must match (a list matches any of its values)."""

    model: str | list[str] | None = None
    backend: str | list[str] | None = None
    device: str | list[str] | None = None
    batch: int | list[int] | None = None
    mode: Mode | list[Mode] | None = None
    params: dict[str, Scalar | list[Scalar]] | None = None

    @field_validator("model", "backend", "device", "batch", "mode", mode="before")
    @classmethod
    def _some(cls, v: Any) -> Any:
        if v == []:
            raise ValueError("an empty list matches nothing; give at least one value, or remove the key")
        return v

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        return _canonical(v, canonical_scenario, ("latency", "throughput", "accuracy", *SCENARIOS))

    @field_validator("params")
    @classmethod
    def _some_params(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        empty = [k for k, values in (v or {}).items() if values == []]
        if empty:
            raise ValueError(f"{empty[0]}: an empty list matches nothing; give at least one value, or remove the key")
        return v


class Experiment(_Strict):
    name: str = Field("experiment", max_length=MAX_NAME, description="the run's name, as tables list it")
    models: list[ModelEntry] = Field(min_length=1)
    backends: list[BackendEntry] = Field(default_factory=list, description="required, except when tuning: "
                                         "left out there, every available backend is searched")
    devices: list[str] = Field(default_factory=lambda: ["cpu"], min_length=1)
    batch: int | list[int] = 1
    mode: DriverMode | list[DriverMode] | None = Field(
        None, description="latency, throughput (inferlab's drivers) or accuracy (the dataset check alone); "
        "default: latency, unless scenarios are given")
    scenario: Scenario | list[Scenario] | None = Field(
        None, description="MLPerf scenarios, run through LoadGen: SingleStream, MultiStream, Server, Offline")
    profile: Profile | list[Profile] = Field(
        default_factory=list, description="analyses run after each speed trial's measured window: layers (the "
        "runtime's per-layer profile and its optimised graph), roofline (the device's peaks and where the trial "
        "sits between them)")
    loadgen: LoadGenConfig = LoadGenConfig()
    ensemble: EnsembleEntry | list[EnsembleEntry] | None = Field(
        None, description="models co-located on one device, fed the same samples, outputs combined")
    dataset: DatasetConfig | None = Field(None, description="the data for accuracy checks (and real inputs)")
    accuracy: AccuracyConfig = AccuracyConfig()
    measure: MeasureConfig = MeasureConfig()
    repeats: int = Field(1, ge=1, le=1000)
    tune: TuneConfig | None = Field(None, description="`inferlab tune`: search this space for the best "
                                    "configuration under constraints")
    include: list[Rule] = Field(default_factory=list, description="keep only trials matching one of these")
    exclude: list[Rule] = Field(default_factory=list, description="drop trials matching any of these")
    nodes: dict[str, str] = Field(default_factory=dict, description="on a cluster (--cluster): run trials only "
                                  "on nodes with these Ray labels, e.g. {gpu: h200}")

    _source: Path | None = PrivateAttr(default=None)
    _command: str | None = PrivateAttr(default=None)   # the command line, when built from `bench` flags

    @field_validator("batch")
    @classmethod
    def _batch(cls, v: int | list[int]) -> int | list[int]:
        values = v if isinstance(v, list) else [v]
        if not values or any(b < 1 for b in values):
            raise ValueError("batch sizes are positive integers")
        return v

    @field_validator("scenario", mode="before")
    @classmethod
    def _scenario(cls, v: Any) -> Any:
        if v == []:
            raise ValueError(f"an empty list runs nothing; give one or more of {', '.join(SCENARIOS)}, or leave it out")
        return _canonical(v, canonical_scenario, SCENARIOS)

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        if v == []:
            raise ValueError("an empty list runs nothing; give one or more of latency, throughput, accuracy, or "
                             "leave it out (latency)")
        for m in _as_list(v):
            if m not in ("latency", "throughput", "accuracy"):
                hint = " (MLPerf scenarios go in `scenario`)" if canonical_scenario(str(m)) else ""
                raise ValueError(f"'{m}' is not a mode; choose latency, throughput or accuracy{hint}")
        return v

    @field_validator("profile", mode="before")
    @classmethod
    def _profile(cls, v: Any) -> Any:
        for p in _as_list(v):
            if p not in PROFILES:
                raise ValueError(f"'{p}' is not an analysis; choose {' or '.join(PROFILES)}")
        return v

    def profiles(self) -> tuple[str, ...]:
        """The analyses asked for, each once, in a fixed order (part of a trial's key)."""
        asked = set(_as_list(self.profile))
        return tuple(p for p in PROFILES if p in asked)

    def ensembles(self) -> list[tuple[str, EnsembleEntry]]:
        """Each ensemble with the field path that names it (ensemble, or ensemble[i] in a list)."""
        if self.ensemble is None:
            return []
        if isinstance(self.ensemble, EnsembleEntry):
            return [("ensemble", self.ensemble)]
        return [(f"ensemble[{i}]", e) for i, e in enumerate(self.ensemble)]

    def modes(self) -> list[Mode]:
        """Every mode and scenario to run, in order."""
        modes = _as_list(self.mode) + _as_list(self.scenario)
        return modes or ["latency"]

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def command(self) -> str | None:
        return self._command

    def base_dir(self) -> Path:
        return self._source.parent if self._source is not None else Path.cwd()
