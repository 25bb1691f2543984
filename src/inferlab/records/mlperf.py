"""MLPerf records: what a LoadGen trial asks of LoadGen (LoadGenSettings) and what LoadGen said of it
(ScenarioResult). Plain data; building LoadGen's TestSettings and reading its logs live in measure/mlperf/."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Scenario = Literal["SingleStream", "MultiStream", "Server", "Offline"]
TestMode = Literal["PerformanceOnly", "AccuracyOnly", "FindPeakPerformance"]
SCENARIOS: tuple[Scenario, ...] = ("SingleStream", "MultiStream", "Server", "Offline")
TEST_MODES: tuple[TestMode, ...] = ("PerformanceOnly", "AccuracyOnly", "FindPeakPerformance")
FAR_ABOVE = 2.0  # a Server target this many times the rate the system served is named first in the reason


@dataclass(frozen=True)
class LoadGenSettings:
    """A LoadGen trial's settings. None means "not set here": LoadGen, user.conf or calibration decides."""

    test_mode: TestMode = "PerformanceOnly"
    target_qps: float | None = None            # Server: Poisson arrival rate
    latency_bound_ms: float | None = None      # Server: the latency the percentile below must stay under
    latency_percentile: float | None = None    # Server/SingleStream/MultiStream target percentile (0..1)
    expected_latency_ms: float | None = None   # SingleStream/MultiStream hint
    expected_qps: float | None = None          # Offline hint
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    min_query_count: int | None = None
    max_query_count: int | None = None
    samples_per_query: int | None = None       # MultiStream (LoadGen's default: 8)
    sample_count: int = 256                    # samples in the QSL (LoadGen's total sample count)
    performance_sample_count: int | None = None  # samples held in memory in a performance run
    qsl_rng_seed: int | None = None
    sample_index_rng_seed: int | None = None
    schedule_rng_seed: int | None = None
    user_conf: str | None = None               # absolute path of a user.conf
    conf_model: str | None = None              # the model name in mlperf.conf/user.conf lines
    official: bool = False
    find_peak_qps: bool = False                # inferlab's own search for the highest valid Server QPS
    peak_tolerance: float = 0.05               # ... stops when the bracket is this narrow (relative)
    peak_max_runs: int = 8
    batch_timeout_ms: float = 0.0              # Server/Offline: wait this long for a batch to fill

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> LoadGenSettings:
        return LoadGenSettings(**d)

    def describe(self) -> str:
        bits: list[str] = [] if self.test_mode == "PerformanceOnly" else [self.test_mode]
        if self.target_qps is not None:
            bits.append(f"qps={self.target_qps:g}")
        if self.latency_bound_ms is not None:
            bits.append(f"bound={self.latency_bound_ms:g}ms")
        if self.find_peak_qps:
            bits.append("find-peak")
        if self.official:
            bits.append("official")
        return ",".join(bits)



@dataclass(frozen=True)
class ScenarioResult:
    """LoadGen's outcome of one scenario run, as its logs state it. Latencies in ms, rates per second."""

    scenario: str
    test_mode: str
    validity: str | None                  # "VALID" / "INVALID"; None in AccuracyOnly
    metric: str                           # the headline's name
    value: float | None
    unit: str                             # "ms", "queries/s", "samples/s"
    higher_is_better: bool
    criteria: dict[str, bool] = field(default_factory=dict)
    invalid_reason: str | None = None
    early_stopping: str | None = None
    percentiles_ms: dict[str, float] = field(default_factory=dict)
    mean_latency_ms: float | None = None
    qps_with_loadgen_overhead: float | None = None
    qps_without_loadgen_overhead: float | None = None
    samples_per_s: float | None = None
    scheduled_qps: float | None = None
    query_count: int | None = None
    overlatency_query_count: int | None = None
    effective: dict[str, Any] = field(default_factory=dict)
    calibrated: dict[str, Any] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    log_dir: str | None = None
    accuracy_layout: list[dict[str, Any]] = field(default_factory=list)
    bounded: str | None = None            # how inferlab's bounds ended or shaped the run (then INVALID)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> ScenarioResult:
        return ScenarioResult(**d)

    @property
    def valid(self) -> bool:
        return self.validity == "VALID"

    def headline(self) -> str:
        if self.value is None:
            return "—"
        text = f"{self.value:.3f} {self.unit}" if self.unit == "ms" else f"{self.value:,.1f} {self.unit}"
        return f"{self.metric} {text}"

    def short(self) -> str:
        """The headline in a table cell: "0.574 ms p90", "951.3 q/s", "2,041.5 S/s"."""
        if self.value is None:
            return "—"
        if self.unit == "ms":
            pct = self.metric.split()[0]
            return f"{self.value:.3f} ms {pct}" + ("*" if "early stopping" in self.metric else "")
        return f"{self.value:,.1f} {'q/s' if self.unit == 'queries/s' else 'S/s'}"

    def unmet(self) -> list[str]:
        return [name for name, met in self.criteria.items() if not met]

    def ended_early(self) -> str | None:
        """LoadGen's own words where it stopped issuing before its natural end (a bound was reached)."""
        for error in self.errors:
            _, found, rest = error.partition("Ending early: ")
            if found:
                return "LoadGen ended early: " + rest.strip()
        return None

    def verdict_reason(self) -> str:
        """Why the run is INVALID: a Server target far above what was served, how inferlab's bounds ended or
        shaped the run, then LoadGen's own words where it gave them."""
        parts = []
        target, served = self.effective.get("target_qps"), self.samples_per_s
        if self.scenario == "Server" and target and served and float(target) > FAR_ABOVE * served:
            parts.append(f"target {float(target):,.0f} QPS is far above what the system served (~{served:,.1f} QPS)")
        if self.bounded:
            parts.append(self.bounded)
        parts += [f"{c} not satisfied" for c in self.unmet()]
        if self.invalid_reason:
            parts.append(self.invalid_reason.strip())
        early = self.ended_early()
        if early or self.errors:
            parts.append(early or self.errors[0])
        return "INVALID: " + ("; ".join(parts) if parts else "see LoadGen's summary log")

    def bounded_by(self, why: str, figures_hold: bool = True) -> ScenarioResult:
        """This run, INVALID because of how inferlab's bounds ended or shaped it (`why`). Where samples were
        answered without inference, LoadGen's rates and latencies count those answers: `figures_hold` False
        drops them."""
        if figures_hold:
            return replace(self, validity="INVALID", bounded=why)
        return replace(self, validity="INVALID", bounded=why, value=None, samples_per_s=None,
                       qps_with_loadgen_overhead=None, qps_without_loadgen_overhead=None, percentiles_ms={},
                       mean_latency_ms=None)


