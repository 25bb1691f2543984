"""What a trial is (TrialSpec), how it is measured (MeasureSettings) and what it yields (TrialResult)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inferlab.models.artifact import Artifact
from inferlab.records.accuracy import AccuracyResult, AccuracySpec
from inferlab.records.analysis import LayerProfile, Roofline
from inferlab.records.ensemble import EnsembleFigures, EnsembleSpec
from inferlab.records.mlperf import SCENARIOS, LoadGenSettings, ScenarioResult
from inferlab.records.versions import RESULT_VERSION, upgrade_result, upgrade_spec

Scalar = str | int | float | bool | None

# inferlab's own drivers, the accuracy check alone, then MLPerf's scenarios (run through LoadGen)
Mode = Literal["latency", "throughput", "accuracy", "SingleStream", "MultiStream", "Server", "Offline"]


def is_scenario(mode: str) -> bool:
    return mode in SCENARIOS


def utc_now() -> str:
    """The timestamp format of every record: UTC, ISO 8601, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")

Status = Literal["ok", "failed", "timeout", "invalid"]


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how hard to measure. A measurement runs at least min_iterations AND min_duration_s."""

    warmup_iterations: int = 10
    min_iterations: int = 50
    min_duration_s: float = 3.0
    max_duration_s: float = 60.0
    target_ci_rel_width: float | None = None  # stop once the median's 95% CI is narrower than this fraction
    in_flight: int | None = None               # throughput mode: requests in flight (None: the runtime's hint)
    input_pool: int = 16                       # distinct input sets, rotated
    seed: int = 0
    timeout_s: float = 600.0                   # the whole trial, load included
    memory_limit_mb: float | None = None       # the trial process is stopped when its RSS passes this


@dataclass(frozen=True)
class TrialSpec:
    """One point of an experiment: frozen, JSON-serialisable, hashable."""

    model: Artifact
    backend: str
    device: str
    params: tuple[tuple[str, Scalar], ...]
    batch: int
    mode: Mode
    measure: MeasureSettings = MeasureSettings()
    repeat: int = 0
    loadgen: LoadGenSettings | None = None  # MLPerf scenarios only
    accuracy: AccuracySpec | None = None    # the accuracy mode, or a speed trial that also checks accuracy
    profile: tuple[str, ...] = ()           # analyses after the measured window: "layers", "roofline"
    ensemble: EnsembleSpec | None = None    # a co-located ensemble: its members (`model` is named after it)
    affinity: tuple[tuple[str, str], ...] = ()  # hetero:A,B: (layer pattern, device) rules, first match wins
    framework: str | None = None            # the backend of the model's source framework, the report's baseline

    @property
    def dataset(self) -> str | None:
        """The dataset's content hash, when the trial reads one."""
        return self.accuracy.dataset.hash if self.accuracy is not None else None

    @property
    def param_dict(self) -> dict[str, Scalar]:
        return dict(self.params)

    def to_json(self) -> dict[str, Any]:
        out = {"model": self.model.to_json(), "backend": self.backend, "device": self.device,
               "params": dict(self.params), "batch": self.batch, "mode": self.mode,
               "measure": asdict(self.measure), "dataset": self.dataset, "repeat": self.repeat}
        if self.loadgen is not None:  # absent otherwise, so the keys of other trials stay as they were
            out["loadgen"] = self.loadgen.to_json()
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy.to_json()
        if self.profile:
            out["profile"] = list(self.profile)
        if self.ensemble is not None:
            out["ensemble"] = self.ensemble.to_json()
        if self.affinity:
            out["affinity"] = [list(rule) for rule in self.affinity]
        if self.framework:
            out["framework"] = self.framework
        return out

    @staticmethod
    def from_json(d: dict[str, Any]) -> TrialSpec:
        d = upgrade_spec(d)
        lg, acc, ens = d.get("loadgen"), d.get("accuracy"), d.get("ensemble")
        return TrialSpec(Artifact.from_json(d["model"]), d["backend"], d["device"],
                         tuple(sorted(d["params"].items())), int(d["batch"]), d["mode"],
                         MeasureSettings(**d["measure"]), int(d.get("repeat", 0)),
                         LoadGenSettings.from_json(lg) if lg else None,
                         AccuracySpec.from_json(acc) if acc else None, tuple(d.get("profile") or ()),
                         EnsembleSpec.from_json(ens) if ens else None,
                         tuple((str(p), str(d)) for p, d in d.get("affinity") or ()), d.get("framework"))

    def identity(self) -> dict[str, Any]:
        """The spec as its key sees it: portable, so the same trial has the same key on every host. Files are
        named by content hash and a relative path, never by a host's absolute path."""
        out = self.to_json()
        out.pop("framework", None)  # how the report compares it, not what is measured
        out["model"] = self.model.identity()
        if self.ensemble is not None:
            out["ensemble"] = self.ensemble.identity()
        if self.loadgen is not None and self.loadgen.user_conf:
            out["loadgen"]["user_conf"] = Path(self.loadgen.user_conf).name
        if self.accuracy is not None:  # the dataset is its content hash (out["dataset"]), not where it lies
            config = out["accuracy"]["dataset"]["config"]
            for name in ("path", "labels", "annotations"):
                if config.get(name):
                    config[name] = Path(config[name]).name
        return out

    def key(self) -> str:
        """Stable identity of the spec (its portable JSON's hash): what resume and every node match on."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def on_host(self, model_ref: str) -> TrialSpec:
        """This trial with its model file where a node keeps it (same key: the key knows no absolute path)."""
        return replace(self, model=replace(self.model, ref=model_ref))

    def label(self) -> str:
        knobs = ",".join(f"{k}={v}" for k, v in self.params if v not in (None, 0, "", False))
        scenario = self.loadgen.describe() if self.loadgen else ""
        data = f" +accuracy on {self.accuracy.dataset.name}" if self.accuracy and self.mode != "accuracy" else (
            f" on {self.accuracy.dataset.name}" if self.accuracy else "")
        joined = "+".join(m.name for m in self.ensemble.members) if self.ensemble else ""
        members = f"({joined})" if self.ensemble and joined != self.model.name else ""
        return (f"{self.model.name}{members} {self.backend}/{self.device} b{self.batch} {self.mode}{data}"
                + (f" ({scenario})" if scenario else "") + (f" [{knobs}]" if knobs else "")
                + (f" +{'+'.join(self.profile)}" if self.profile else "")
                + (f" #{self.repeat}" if self.repeat else ""))


@dataclass(frozen=True)
class LatencyStats:
    """Statistics of per-request latency; DLI's figure is the median after a 3-sigma filter."""

    count: int
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    median_3sigma_ms: float
    outliers_dropped: int
    median_ci_low_ms: float    # 95% CI of the raw median (p50)
    median_ci_high_ms: float
    # 95% CI of DLI's figure itself (median_3sigma_ms); None in records written before it was stored
    median_3sigma_ci_low_ms: float | None = None
    median_3sigma_ci_high_ms: float | None = None


@dataclass(frozen=True)
class MemberResult:
    """One member of a multi-device trial (a device) or of an ensemble (a model): its part of the measured
    window's requests and its own figures. An ensemble's member serves every request (share 1) and also has
    its figures alone, measured in the same trial before the members ran together."""

    device: str
    member: int                   # its place in the device list (the same device may be named twice)
    requests: int
    share: float                  # of the window's requests, 0..1
    throughput_sps: float | None
    latency_median_ms: float | None
    latency_p99_ms: float | None
    model: str | None = None                      # an ensemble's member: its model
    alone_throughput_sps: float | None = None
    alone_latency_median_ms: float | None = None
    interference: float | None = None             # median latency in the ensemble / alone (>1: slowed down)
    accuracy: float | None = None                 # its own score on the dataset, by the trial's first metric


@dataclass(frozen=True)
class TrialResult:
    """The outcome of one trial. Units are in the field names; None means "not measured", never 0."""

    spec: TrialSpec
    status: Status
    reason: str | None = None
    load_s: float | None = None
    first_inference_ms: float | None = None
    latency: LatencyStats | None = None
    throughput_sps: float | None = None
    throughput_ci_low_sps: float | None = None
    throughput_ci_high_sps: float | None = None
    requests: int = 0
    samples: int = 0
    duration_s: float | None = None
    in_flight: int | None = None
    stop_reason: str | None = None
    peak_rss_mb: float | None = None
    cpu_util_pct: float | None = None
    peak_gpu_mem_mb: float | None = None
    gpu_util_pct: float | None = None
    energy_j: float | None = None
    energy_j_per_sample: float | None = None
    energy_source: str | None = None
    effective: dict[str, Scalar] = field(default_factory=dict)
    runtime: dict[str, Scalar] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    started_at: str | None = None
    finished_at: str | None = None
    environment_id: str | None = None
    loadgen: ScenarioResult | None = None  # LoadGen's outcome, for MLPerf scenarios
    accuracy: AccuracyResult | None = None
    layers: LayerProfile | None = None       # `profile: layers`: kept in its own table by the store
    roofline: Roofline | None = None         # `profile: roofline`
    graph_file: str | None = None            # the runtime's optimised graph, written with `profile: layers`
    members: tuple[MemberResult, ...] = ()   # a multi-device trial's devices or an ensemble's models
    ensemble: EnsembleFigures | None = None  # an ensemble's members one after another, and co-location's gain
    latencies_ns: np.ndarray | None = field(default=None, compare=False, repr=False)

    def with_(self, **changes: Any) -> TrialResult:
        return replace(self, **changes)

    def to_json(self, with_samples: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"version": RESULT_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "spec":
                value = self.spec.to_json()
            elif f.name == "latency":
                value = asdict(value) if value is not None else None
            elif f.name == "latencies_ns":
                if not with_samples:
                    continue
                value = value.tolist() if value is not None else None
            elif f.name == "warnings":
                value = list(value)
            elif f.name == "members":
                value = [asdict(m) for m in value]
            elif f.name in ("loadgen", "accuracy", "layers", "roofline", "ensemble"):
                value = value.to_json() if value is not None else None
            out[f.name] = value
        return out

    @staticmethod
    def from_json(d: dict[str, Any]) -> TrialResult:
        d = upgrade_result(d)
        d.pop("version")
        d["spec"] = TrialSpec.from_json(d["spec"])
        d["latency"] = LatencyStats(**d["latency"]) if d.get("latency") else None
        d["warnings"] = tuple(d.get("warnings") or ())
        d["members"] = tuple(MemberResult(**m) for m in d.get("members") or ())
        d["loadgen"] = ScenarioResult.from_json(d["loadgen"]) if d.get("loadgen") else None
        d["accuracy"] = AccuracyResult.from_json(d["accuracy"]) if d.get("accuracy") else None
        d["layers"] = LayerProfile.from_json(d["layers"]) if d.get("layers") else None
        d["roofline"] = Roofline.from_json(d["roofline"]) if d.get("roofline") else None
        d["ensemble"] = EnsembleFigures.from_json(d["ensemble"]) if d.get("ensemble") else None
        samples = d.get("latencies_ns")
        d["latencies_ns"] = np.asarray(samples, dtype=np.int64) if samples is not None else None
        return TrialResult(**d)
