"""What a tuning's objectives mean: the direction each is optimised in and its unit. The `tune:` block itself
(TuneConfig) is part of the experiment config (config/tuning.py)."""

from __future__ import annotations

from typing import Literal

from inferlab.config.tuning import ObjectiveName, Percentile, Precision, SamplerName, TuneConfig

DIRECTION: dict[str, Literal["maximize", "minimize"]] = {
    "throughput": "maximize", "latency_median": "minimize", "latency_p50": "minimize", "latency_p90": "minimize",
    "latency_p95": "minimize", "latency_p99": "minimize", "energy": "minimize", "memory": "minimize"}
UNIT = {"throughput": "samples/s", "energy": "J/sample", "memory": "MB"}

# TuneConfig and its value types moved to config/tuning.py (the config must not import tune); named here too so
# that code written against inferlab.tune.spec keeps working.
__all__ = ["DIRECTION", "UNIT", "ObjectiveName", "Percentile", "Precision", "SamplerName",
           "TuneConfig"]
