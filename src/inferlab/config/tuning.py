"""The `tune:` block of an experiment: objectives, constraints, the sampler and when to stop. Validation only;
what a tuning does with it lives in inferlab.tune."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Each objective reads one field of a TrialResult; its direction is fixed by what it measures (tune.spec).
ObjectiveName = Literal["throughput", "latency_median", "latency_p50", "latency_p90", "latency_p95", "latency_p99",
                        "energy", "memory"]
Percentile = Literal["median", "p50", "p90", "p95", "p99"]
SamplerName = Literal["auto", "grid", "tpe", "nsga2", "random"]
Precision = Literal["fp32", "fp16", "int8"]


class TuneConfig(BaseModel):
    """The `tune:` block of an experiment. Left open (not given), a backend knob or `devices` is searched over
    the domain its backend declares for the device, and `batch` over the batches a ladder of doublings from 1
    finds; a list is searched; a single value is fixed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    objectives: list[ObjectiveName] = Field(["throughput"], min_length=1, max_length=3,
                                            description="throughput (max), latency_p99 ... (min), energy "
                                            "(J/sample, min), memory (peak RSS, min); two or more give a Pareto "
                                            "front")
    max_latency_ms: float | None = Field(None, gt=0, description="constraint: the latency percentile stays "
                                         "within this; also the threshold of the report's sweet spot")
    latency_percentile: Percentile = Field("p99", description="which latency max_latency_ms bounds")
    max_accuracy_drop: float | None = Field(None, ge=0, lt=1, description="constraint: the headline metric "
                                            "(a fraction: 0.01 = 1 point) drops at most this from the FP32 "
                                            "model's; needs a dataset")
    max_memory_mb: float | None = Field(None, gt=0, description="constraint: peak RSS of the trial process")
    precision: list[Precision] | None = Field(None, description="model precisions to search (default: fp32; "
                                              "fp16 and int8 are derived, int8 calibrated on the dataset)")
    sampler: SamplerName = Field("auto", description="auto: grid when the space fits the trial budget, TPE for "
                                 "one objective, NSGA-II for several")
    max_trials: int = Field(20, ge=1, le=10_000, description="measured trials, re-measurements included")
    time_budget_s: float | None = Field(None, gt=0, description="stop proposing trials after this long")
    patience: int | None = Field(8, ge=1, description="stop when the best has not improved by more than its "
                                 "own confidence interval for this many trials (one objective)")
    confirm: int = Field(2, ge=0, le=10, description="re-measure this many leading candidates before naming "
                         "the winner")
    search_window_s: float | None = Field(None, gt=0, description="seconds each search trial measures for "
                                          "(default: the measure window, at most 1 s); the leaders are "
                                          "re-measured over the full measure window")
    baseline: bool = Field(True, description="measure the runtime's defaults at the winner's batch (once, counted "
                           "in max_trials) so the report gives the winner's speed-up over them")
    startup_trials: int | None = Field(None, ge=1, description="TPE: random trials before it models the space "
                                       "(default: a quarter of max_trials, 3 to 10)")
    seed: int = Field(0, ge=0)

    @field_validator("objectives")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("objectives are listed once each")
        return v

    def constraint_text(self) -> str:
        parts = []
        if self.max_latency_ms is not None:
            parts.append(f"latency {self.latency_percentile} ≤ {self.max_latency_ms:g} ms")
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop ≤ {self.max_accuracy_drop * 100:g} points")
        if self.max_memory_mb is not None:
            parts.append(f"memory ≤ {self.max_memory_mb:g} MB")
        return ", ".join(parts)
