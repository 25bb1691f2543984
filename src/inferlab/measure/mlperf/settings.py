"""What a LoadGen trial asks of LoadGen (LoadGenSettings), and how it becomes LoadGen's TestSettings.

Settings are applied in this order, each step overriding the one before:
  1. LoadGen's own defaults; with `official`, MLPerf's mlperf.conf as embedded in LoadGen (600 s runs,
     the official query counts and seeds); otherwise quick settings (the trial's min duration and the
     smallest query counts LoadGen's early stopping accepts);
  2. a user.conf file (`user_conf`), read by LoadGen's own `FromConfig`;
  3. the fields given in inferlab's config;
  4. for hints still unset (expected latency/QPS, Server's target QPS), values calibrated on the loaded
     model just before the test, so a quick run is neither INVALID for want of queries nor needlessly long;
  5. for LoadGen's bounds still unset (0, LoadGen's "infinite": max_duration, Server's max_async_queries),
     bounds from the same calibration, so a target or hint far beyond the system ends INVALID in about the
     run's own length instead of running for hours (`apply_bounds`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inferlab.errors import ConfigError
from inferlab.records.mlperf import SCENARIOS, TEST_MODES, LoadGenSettings, Scenario, TestMode

_MODE_ALIASES = {"performance": "PerformanceOnly", "accuracy": "AccuracyOnly", "findpeak": "FindPeakPerformance",
                 "findpeakperformance": "FindPeakPerformance", "performanceonly": "PerformanceOnly",
                 "accuracyonly": "AccuracyOnly"}

# The fewest queries with which LoadGen's early stopping can pass (checked against LoadGen 6.0: Server's
# p99 needs 459 queries with none over the bound; MultiStream's p99 needs 662).
QUICK_MIN_QUERIES: dict[str, int] = {"SingleStream": 100, "MultiStream": 662, "Server": 600, "Offline": 1}
# Calibrated hints are set with a margin: more queries generated than needed (SingleStream, MultiStream),
# an Offline query somewhat longer than the minimum duration.
LATENCY_HINT_FACTOR = 0.5
OFFLINE_QPS_FACTOR = 1.5
AUTO_SERVER_LOAD = 0.5  # Server's target QPS when none is given: this fraction of the measured capacity
OFFLINE_QUERY_SLACK = 1.1  # LoadGen sizes the Offline query at this times min duration times expected QPS
# Step 5: max_duration is this times the run's natural length (as calibrated) plus the slack, but not more than
# the cap (the larger of the floor and the factor times the min duration: a run that LoadGen's min query count
# would stretch far beyond the duration asked ends INVALID there); Server's outstanding queries are bounded at
# this margin times the most a run that can still be VALID ever has.
MAX_DURATION_FACTOR = 3.0
MAX_DURATION_SLACK_S = 5.0
MAX_DURATION_CAP_FACTOR = 10.0
MAX_DURATION_CAP_FLOOR_S = 30.0
ASYNC_MARGIN = 2.0
MIN_ASYNC_QUERIES = 64


def canonical_scenario(text: str) -> Scenario | None:
    key = text.replace("_", "").replace("-", "").lower()
    return next((s for s in SCENARIOS if s.lower() == key), None)


def canonical_test_mode(text: str) -> TestMode | None:
    key = text.replace("_", "").replace("-", "").lower()
    value = _MODE_ALIASES.get(key)
    return next((m for m in TEST_MODES if m == value), None)


@dataclass(frozen=True)
class Hints:
    """Values a run needs but the settings left open, measured on the loaded model (Calibration)."""

    request_latency_ms: float   # one request of the trial's batch, through the scenario's path
    capacity_sps: float         # samples/s with the trial's requests in flight


_HINT_ATTRS = {"expected_latency": ("single_stream_expected_latency_ns", "multi_stream_expected_latency_ns"),
               "expected_qps": ("offline_expected_qps",), "target_qps": ("server_target_qps",)}


def _hints_for(scenario: Scenario, s: LoadGenSettings) -> set[str]:
    """The hints this scenario needs that the config itself leaves open."""
    if s.test_mode == "AccuracyOnly":
        return set()
    if scenario in ("SingleStream", "MultiStream"):
        return {"expected_latency"} if s.expected_latency_ms is None else set()
    if scenario == "Offline":
        return {"expected_qps"} if s.expected_qps is None else set()
    return {"target_qps"} if s.target_qps is None and not s.official else set()


def build_test_settings(lg: Any, scenario: Scenario, s: LoadGenSettings, model_name: str,
                        default_min_duration_s: float) -> tuple[Any, set[str]]:
    """Steps 1-3 of the module docstring: LoadGen's TestSettings before calibration, and the hints left
    open for it (those neither the config nor the user.conf set)."""
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, scenario)
    ts.mode = getattr(lg.TestMode, s.test_mode)
    conf_model = s.conf_model or model_name
    if s.official:
        rc = ts.FromConfig("", conf_model, scenario, 0)
        if rc != 0:
            raise ConfigError(f"LoadGen could not apply its mlperf.conf for {conf_model}/{scenario} (code {rc})")
    else:
        ts.min_duration_ms = int(default_min_duration_s * 1000)
        ts.min_query_count = QUICK_MIN_QUERIES[scenario]
    open_ = _hints_for(scenario, s)
    if s.user_conf:
        before = {h: [getattr(ts, a) for a in _HINT_ATTRS[h]] for h in open_}
        rc = ts.FromConfig(s.user_conf, conf_model, scenario, 1)
        if rc != 0:
            raise ConfigError(f"loadgen.user_conf: LoadGen could not read {s.user_conf} (code {rc}); "
                              "check the file's lines (model.scenario.key = value)")
        open_ = {h for h in open_ if [getattr(ts, a) for a in _HINT_ATTRS[h]] == before[h]}
    ms_to_ns = 1_000_000
    if s.min_duration_s is not None:
        ts.min_duration_ms = int(s.min_duration_s * 1000)
    if s.max_duration_s is not None:
        ts.max_duration_ms = int(s.max_duration_s * 1000)
    if s.min_query_count is not None:
        ts.min_query_count = s.min_query_count
    if s.max_query_count is not None:
        ts.max_query_count = s.max_query_count
    if s.samples_per_query is not None:
        ts.multi_stream_samples_per_query = s.samples_per_query
    if s.target_qps is not None:
        ts.server_target_qps = s.target_qps
    if s.latency_bound_ms is not None:
        ts.server_target_latency_ns = int(s.latency_bound_ms * ms_to_ns)
    if s.latency_percentile is not None:
        if scenario == "Server":
            ts.server_target_latency_percentile = s.latency_percentile
        elif scenario == "SingleStream":
            ts.single_stream_target_latency_percentile = s.latency_percentile
        elif scenario == "MultiStream":
            ts.multi_stream_target_latency_percentile = s.latency_percentile
    if s.expected_latency_ms is not None:
        ts.single_stream_expected_latency_ns = int(s.expected_latency_ms * ms_to_ns)
        ts.multi_stream_expected_latency_ns = int(s.expected_latency_ms * ms_to_ns)
    if s.expected_qps is not None:
        ts.offline_expected_qps = s.expected_qps
    if s.performance_sample_count is not None:
        ts.performance_sample_count_override = s.performance_sample_count
    for seed in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
        value = getattr(s, seed)
        if value is not None:
            setattr(ts, seed, value)
    return ts, open_


def requests_per_query(scenario: Scenario, samples_per_query: int, batch: int) -> int:
    """How many requests of the trial's batch one query of this scenario makes."""
    return -(-samples_per_query // batch) if scenario == "MultiStream" else 1


def apply_hints(ts: Any, scenario: Scenario, open_: set[str], hints: Hints, samples_per_query: int,
                batch: int) -> dict[str, Any]:
    """Step 4: set the open hints from the calibration; returns what was set, for the record."""
    applied: dict[str, Any] = {}
    if "expected_latency" in open_:
        requests = requests_per_query(scenario, samples_per_query, batch)
        ns = int(max(1e3, LATENCY_HINT_FACTOR * requests * hints.request_latency_ms * 1e6))
        if scenario == "SingleStream":
            ts.single_stream_expected_latency_ns = ns
        else:
            ts.multi_stream_expected_latency_ns = ns
        applied["expected_latency_ms"] = ns / 1e6
    if "expected_qps" in open_:
        ts.offline_expected_qps = max(1.0, OFFLINE_QPS_FACTOR * hints.capacity_sps)
        applied["expected_qps"] = ts.offline_expected_qps
    if "target_qps" in open_:
        ts.server_target_qps = max(1.0, round(AUTO_SERVER_LOAD * hints.capacity_sps, 1))
        applied["target_qps"] = ts.server_target_qps
    return applied


def natural_duration_s(ts: Any, scenario: Scenario, hints: Hints, batch: int) -> float:
    """How long a run of these settings lasts when its hints fit the system: the min duration, or, where
    LoadGen's min query count takes longer (SingleStream, MultiStream), that many queries at the calibrated
    latency; Offline's query as sized from the calibrated hint."""
    min_s = ts.min_duration_ms / 1e3
    if scenario in ("SingleStream", "MultiStream"):
        requests = requests_per_query(scenario, int(ts.multi_stream_samples_per_query), batch)
        return max(min_s, ts.min_query_count * requests * hints.request_latency_ms / 1e3)
    if scenario == "Offline":
        return OFFLINE_QUERY_SLACK * OFFLINE_QPS_FACTOR * min_s
    return min_s


def apply_bounds(ts: Any, scenario: Scenario, s: LoadGenSettings, hints: Hints, batch: int,
                 in_flight: int) -> dict[str, Any]:
    """Step 5: LoadGen's own bounds, where nothing set them; returns what was set, for the record.

    - max_duration: LoadGen stops issuing past it (SingleStream, MultiStream, a Server whose issuing falls
      behind); the SUT also stops serving there (one Offline or MultiStream query can be far longer). A run
      that only LoadGen's min query count makes long (a slow model, many samples per query) is held to the cap.
    - Server's max_async_queries: once more than mu*(L + (1-p)*T) queries are outstanding (mu the calibrated
      capacity, L the latency bound, p its percentile, T the min duration), those at the back of the queue
      cannot finish within L, and they are more than the (1-p) share of a run at that capacity that may miss
      it: the run cannot end VALID. LoadGen stops issuing there and reports INVALID; ASYNC_MARGIN covers the
      calibration's error."""
    if s.test_mode == "AccuracyOnly":
        return {}  # every sample must be answered; LoadGen applies neither bound in accuracy mode
    applied: dict[str, Any] = {}
    if ts.max_duration_ms == 0:
        natural = natural_duration_s(ts, scenario, hints, batch)
        cap = max(MAX_DURATION_CAP_FLOOR_S, MAX_DURATION_CAP_FACTOR * ts.min_duration_ms / 1e3)
        ts.max_duration_ms = int(1000 * min(MAX_DURATION_FACTOR * natural + MAX_DURATION_SLACK_S, cap))
        applied["max_duration_s"] = ts.max_duration_ms / 1e3
    if scenario == "Server" and ts.server_max_async_queries == 0:
        bound_s = ts.server_target_latency_ns / 1e9
        spare = (1.0 - ts.server_target_latency_percentile) * ts.min_duration_ms / 1e3
        most = ASYNC_MARGIN * hints.capacity_sps * (bound_s + spare)
        ts.server_max_async_queries = max(MIN_ASYNC_QUERIES, 2 * in_flight * batch, math.ceil(round(most, 6)))
        applied["max_async_queries"] = ts.server_max_async_queries
    return applied
