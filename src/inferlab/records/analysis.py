"""What a trial's analysis yields: a per-layer profile in a common shape across runtimes, the device's peaks
measured by micro-benchmarks, and the roofline that places the trial between them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Profile = Literal["layers", "roofline"]
PROFILES: tuple[str, ...] = ("layers", "roofline")


@dataclass(frozen=True)
class LayerRecord:
    """One layer of a profiled run, per inference (the mean over the profiled inferences)."""

    name: str                     # the runtime's node name (matched across trials)
    type: str                     # operation type: Convolution, Conv, aten::conv2d ...
    kernel: str | None            # the implementation that ran: OpenVINO's exec type, ORT's provider, a kernel
    precision: str | None         # the precision it ran in (FP32, I8 ...), where the runtime says
    time_ms: float                # wall (real) time per inference
    share: float                  # of the profile's total, 0..1
    order: int                    # execution order
    cpu_ms: float | None = None   # CPU time per inference, where the runtime reports it apart
    device: str | None = None     # where it ran (an execution provider, cpu, cuda:0)


@dataclass(frozen=True)
class LayerProfile:
    """A trial's per-layer profile, collected on a second session loaded with profiling on, after the measured
    window (a profiled run perturbs timing). `wall_ms` is the median wall time of one profiled inference, so
    the sum of the layers (`total_ms`) can be set against it and against the trial's own latency."""

    runtime: str
    iterations: int
    total_ms: float
    wall_ms: float
    layers: tuple[LayerRecord, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "layers": [asdict(x) for x in self.layers], "notes": list(self.notes)}

    @staticmethod
    def from_json(d: dict[str, Any]) -> LayerProfile:
        return LayerProfile(d["runtime"], int(d["iterations"]), float(d["total_ms"]), float(d["wall_ms"]),
                            tuple(LayerRecord(**x) for x in d["layers"]), tuple(d.get("notes") or ()))


@dataclass(frozen=True)
class Peaks:
    """A device's roofs as one runtime reaches them in one configuration: a GEMM's FLOP/s and a streaming
    kernel's bytes/s, each measured through the runtime by inferlab's own drivers."""

    backend: str
    device: str
    precision: str
    flops_per_s: float
    bytes_per_s: float
    gemm: str                     # what was run: "GEMM 2048×2048×2048 fp32 ..."
    stream: str
    environment_id: str | None = None
    measured_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> Peaks:
        return Peaks(**d)

    @property
    def ridge(self) -> float:
        """The arithmetic intensity (FLOP/byte) where the two roofs meet."""
        return self.flops_per_s / self.bytes_per_s


Verdict = Literal["compute-bound", "memory-bound", "overhead-bound"]


@dataclass(frozen=True)
class Roofline:
    """Where a measured trial sits: the model's work per sample (counted), the throughput achieved, the roofs."""

    flops_per_sample: float
    bytes_per_sample: float       # weights once per batch (shared by its samples) plus activations read/written
    counted_by: str
    peaks: Peaks
    achieved_flops_per_s: float
    achieved_bytes_per_s: float
    verdict: str
    why: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def intensity(self) -> float:
        return self.flops_per_sample / self.bytes_per_sample if self.bytes_per_sample else float("inf")

    @property
    def attainable_flops_per_s(self) -> float:
        return min(self.peaks.flops_per_s, self.intensity * self.peaks.bytes_per_s)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "peaks": self.peaks.to_json()}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Roofline:
        return Roofline(**{**d, "peaks": Peaks.from_json(d["peaks"])})
