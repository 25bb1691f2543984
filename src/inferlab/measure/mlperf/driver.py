"""The MLPerf driver: warm the SUT up, calibrate the hints left open, run LoadGen, read its verdict.

Runs inside the trial process. Each LoadGen run writes its own `mlperf_log_*` files under the trial's log
directory; they are kept, and their path is part of the result."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inferlab.backends.base import Session
from inferlab.errors import ConfigError
from inferlab.measure.budget import Events, gc_paused
from inferlab.measure.mlperf.library import SampleLibrary
from inferlab.measure.mlperf.logs import parse, read_detail
from inferlab.measure.mlperf.settings import (
    AUTO_SERVER_LOAD,
    OFFLINE_QUERY_SLACK,
    Hints,
    LoadGenSettings,
    Scenario,
    apply_bounds,
    apply_hints,
    build_test_settings,
    natural_duration_s,
    requests_per_query,
)
from inferlab.measure.mlperf.sut import SystemUnderTest, bare_respond
from inferlab.measure.stats import latency_stats
from inferlab.models.tensors import TensorSpec
from inferlab.records.mlperf import ScenarioResult

CALIBRATION_S = 0.25        # a calibration round this long (and this many requests) gives the steady state
CALIBRATION_REQUESTS = 20
CALIBRATION_MAX_S = 2.0     # no round starts that, at the last round's pace, would end the rounds past this
PROGRESS_S = 0.5
# What LoadGen would pre-generate for a run this many times beyond the calibrated capacity is cut to what can
# matter (`_cut_schedule`): a Server target reaches LoadGen's outstanding-query bound within the first few
# queries, so its schedule is cut to SCHEDULE_PER_ASYNC times that bound (not less than the min query count);
# an Offline query, or MultiStream's min query count, to this many times what the SUT can serve before it
# stops at the max duration. In full it is target x min duration queries, 1.1 x min duration x expected QPS
# samples, or min query count x samples per query, about 300 bytes and several microseconds a query (a 60 s
# Server run at 1M QPS: 18 GB and minutes before the first query).
HOPELESS = 10.0
SCHEDULE_PER_ASYNC = 4


def import_loadgen() -> Any:
    try:
        import mlperf_loadgen
    except ImportError:
        raise ConfigError("MLPerf scenarios need LoadGen: pip install 'inferlab[mlperf]' "
                          "(the mlcommons-loadgen package)") from None
    return mlperf_loadgen


def in_flight_for(scenario: str, configured: int | None, session: Session) -> int:
    if scenario == "SingleStream":
        return 1
    if configured is not None:
        return configured
    return session.recommended_in_flight() if scenario in ("Server", "Offline") else 1


@dataclass(frozen=True)
class _Probe:
    """One LoadGen run: its outcome, wall time and the SUT's request latencies during it."""

    result: ScenarioResult
    wall_s: float
    latencies: list[int]


class _Ticker:
    """Progress messages while LoadGen runs (it blocks the calling thread)."""

    def __init__(self, events: Events, sut: SystemUnderTest, planned_s: float) -> None:
        self.events, self.sut, self.planned_s = events, sut, planned_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inferlab-progress", daemon=True)

    def __enter__(self) -> _Ticker:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(PROGRESS_S):
            self.events.progress(time.monotonic() - self._start, self.planned_s, self.sut.requests_done)


class ScenarioRun:
    def __init__(self, session: Session, scenario: Scenario, settings: LoadGenSettings, sample_specs: list[TensorSpec],
                 batch: int, in_flight: int | None, warmup_iterations: int, seed: int, model_name: str,
                 default_min_duration_s: float, log_dir: Path, events: Events) -> None:
        self.lg = import_loadgen()
        self.session, self.scenario, self.settings = session, scenario, settings
        self.batch, self.model_name, self.events = batch, model_name, events
        self.default_min_duration_s = default_min_duration_s
        self.warmup_iterations = warmup_iterations
        self.log_dir = log_dir
        self.accuracy = settings.test_mode == "AccuracyOnly"
        self.depth = in_flight_for(scenario, in_flight, session)
        self.library = SampleLibrary(sample_specs, settings.sample_count, seed, session, batch)
        self.sut = SystemUnderTest(self.lg, session, self.library, batch, self.depth, scenario == "Server",
                                   self.accuracy, settings.batch_timeout_ms / 1e3)
        self.total_requests = 0
        self.total_samples = 0
        self.hints: Hints | None = None
        self.bounds: dict[str, Any] = {}  # the LoadGen bounds inferlab set (apply_bounds)

    # warm-up and calibration -------------------------------------------------------------------------

    def _through_sut(self, requests: int) -> None:
        n = requests * self.batch
        warm = min(self.library.count, 16)
        fakes = [_Fake(0, k % warm) for k in range(n)]
        self.sut.issue(fakes)
        self.sut.drain()

    def warm_up(self) -> tuple[int, Hints | None]:
        """The first inference (timed apart), the warm-up through the scenario's own path, and a short
        calibration window whose figures fill the hints the settings leave open."""
        lib, sut = self.library, self.sut
        warm = list(range(min(lib.count, 16)))
        lib.load(warm)
        t0 = time.perf_counter_ns()
        self.session.run(lib.batch_of([0]))
        first = time.perf_counter_ns() - t0
        sut.respond = bare_respond
        sut.tracking = True
        self._through_sut(max(self.warmup_iterations, 2 * self.depth))
        hints = None
        if not self.accuracy:
            # Rounds of growing size until one lasts CALIBRATION_S: the last one's rate is the steady state's
            # (a round's ramp-up and drain matter less the longer it is). A slow model stops at CALIBRATION_MAX_S
            # with fewer requests: rougher figures, and a run whose hint they set too far off is retried once
            # from LoadGen's own measurement (`_retry_hint`).
            requests = max(2 * self.depth, 4)
            spent = 0
            while True:
                sut.reset_records()
                start = time.perf_counter_ns()
                self._through_sut(requests)
                elapsed = time.perf_counter_ns() - start
                spent += elapsed
                if elapsed >= CALIBRATION_S * 1e9 and sut.requests_done >= CALIBRATION_REQUESTS:
                    break
                if spent + 2 * elapsed > CALIBRATION_MAX_S * 1e9:
                    break
                requests *= 2
            busy = sum(sut.latencies) if self.depth == 1 and not sut.dispatched else elapsed
            hints = Hints(float(np.median(sut.latencies)) / 1e6, sut.samples_done / (busy / 1e9))
        lib.unload(warm)
        sut.reset_records()
        sut.tracking = False
        sut.respond = self.lg.QuerySamplesComplete
        return first, hints

    # LoadGen runs --------------------------------------------------------------------------------------

    def _start_test(self, ts: Any, out_dir: Path) -> _Probe:
        lg = self.lg
        out_dir.mkdir(parents=True, exist_ok=True)
        self.sut.reset_records()
        sut_handle = lg.ConstructSUT(self.sut.issue, self.sut.flush)
        perf_count = self.settings.performance_sample_count or self.library.count
        qsl_handle = lg.ConstructQSL(self.library.count, min(perf_count, self.library.count),
                                     self.library.load, self.library.unload)
        output = lg.LogOutputSettings()
        output.outdir = str(out_dir)
        output.copy_summary_to_stdout = False
        log = lg.LogSettings()
        log.log_output = output
        log.enable_trace = False
        # LoadGen's FindPeakPerformance runs several tests in this one call: the limit is LoadGen's there
        limited = self.settings.test_mode == "PerformanceOnly" and ts.max_duration_ms > 0
        self.sut.time_limit_s = ts.max_duration_ms / 1e3 if limited else None
        asked = ts.min_duration_ms, ts.offline_expected_qps, ts.min_query_count
        cut = self._cut_schedule(ts)
        t0 = time.perf_counter()
        try:
            with _Ticker(self.events, self.sut, ts.min_duration_ms / 1e3):
                lg.StartTestWithLogSettings(sut_handle, qsl_handle, ts, log)
        finally:
            ts.min_duration_ms, ts.offline_expected_qps, ts.min_query_count = asked
            self.sut.time_limit_s = None
            lg.DestroyQSL(qsl_handle)
            lg.DestroySUT(sut_handle)
        wall = time.perf_counter() - t0
        self.total_requests += self.sut.requests_done
        self.total_samples += self.sut.samples_done
        if self.sut.errors:
            raise self.sut.errors[0]
        result = parse(read_detail(out_dir / "mlperf_log_detail.txt"), out_dir)
        skipped = self.sut.skipped
        notes = [self._why_stopped(ts)] if skipped else []
        notes += [cut] if cut else []
        if "max_duration_s" in self.bounds and (skipped or "Max test duration" in (result.ended_early() or "")):
            notes.append(self._why_max_duration(ts))
        if notes:
            result = result.bounded_by("; ".join(notes), figures_hold=not skipped)
        return _Probe(result, wall, self.sut.latencies)

    def _why_max_duration(self, ts: Any) -> str:
        why = (f"the max duration, {ts.max_duration_ms / 1e3:g} s, is inferlab's bound for a run asked to last "
               f"{ts.min_duration_ms / 1e3:g} s (loadgen.max_duration_s sets another)")
        if self.hints is not None and self.scenario in ("SingleStream", "MultiStream"):
            need = natural_duration_s(ts, self.scenario, self.hints, self.batch)
            why += f"; {ts.min_query_count:,} queries, LoadGen's min query count, take ~{need:,.0f} s here"
        return why

    def _cut_schedule(self, ts: Any) -> str | None:
        """Cut what LoadGen would pre-generate for a hopeless target or hint (see HOPELESS); returns why, for
        the verdict, or None. The caller restores the settings."""
        hints = self.hints
        if self.settings.test_mode != "PerformanceOnly" or hints is None:
            return None
        if self.scenario == "Offline" and ts.max_duration_ms > 0:
            most = HOPELESS * hints.capacity_sps * ts.max_duration_ms / 1e3
            min_s = ts.min_duration_ms / 1e3
            if OFFLINE_QUERY_SLACK * min_s * ts.offline_expected_qps <= most:
                return None
            ts.offline_expected_qps = most / (OFFLINE_QUERY_SLACK * min_s)
            return (f"LoadGen was given a query of {most:,.0f} samples, still over {HOPELESS:g}x what the "
                    f"calibrated capacity (~{hints.capacity_sps:,.1f} samples/s) serves in the max duration")
        if self.scenario == "MultiStream" and ts.max_duration_ms > 0 and hints.request_latency_ms > 0:
            spq = int(ts.multi_stream_samples_per_query)
            query_s = requests_per_query("MultiStream", spq, self.batch) * hints.request_latency_ms / 1e3
            most = math.ceil(HOPELESS * ts.max_duration_ms / 1e3 / query_s)
            if ts.min_query_count <= most:
                return None
            asked_count, ts.min_query_count = ts.min_query_count, most
            return (f"LoadGen's min query count was cut to {most:,} from {asked_count:,}: at the calibrated "
                    f"~{query_s:,.1f} s a query, that is over {HOPELESS:g}x what fits in the max duration")
        if (self.scenario != "Server" or ts.server_max_async_queries == 0
                or ts.server_target_qps <= HOPELESS * hints.capacity_sps):
            return None
        queries = max(int(ts.min_query_count), SCHEDULE_PER_ASYNC * int(ts.server_max_async_queries))
        cut_ms = math.ceil(1000 * queries / ts.server_target_qps)
        if cut_ms >= ts.min_duration_ms:
            return None
        asked_s = ts.min_duration_ms / 1e3
        ts.min_duration_ms = cut_ms
        return (f"LoadGen ran the first {cut_ms / 1e3:g} s of its schedule, not the {asked_s:g} s asked: at over "
                f"{HOPELESS:g}x the calibrated capacity (~{hints.capacity_sps:,.1f} samples/s) its outstanding-query "
                f"bound stops it within those, and all {ts.server_target_qps * asked_s:,.0f} queries were not worth "
                "pre-generating")

    def _why_stopped(self, ts: Any) -> str:
        sut = self.sut
        limit = ts.max_duration_ms / 1e3
        rate = sut.samples_done / limit
        why = (f"inferlab stopped serving at LoadGen's max duration ({limit:g} s from the first query): "
               f"{sut.samples_done:,} of the {sut.issued:,} samples issued were served"
               + (f" (~{rate:,.1f} samples/s)" if rate > 0 else "")
               + f", the other {sut.skipped:,} answered without inference so that LoadGen could finish")
        if self.scenario == "Offline":
            size = int(OFFLINE_QUERY_SLACK * ts.min_duration_ms / 1e3 * ts.offline_expected_qps)
            why += f"; expected_qps {ts.offline_expected_qps:,.0f} sizes the Offline query at {size:,} samples"
        elif self.scenario == "MultiStream":
            size = int(ts.multi_stream_samples_per_query)
            why += f"; a MultiStream query has {size:,} samples"
        else:
            return why
        return why + (f", ~{size / rate:,.0f} s at that rate" if rate > 0 else "")

    def _search_peak(self, ts: Any, hints: Hints | None) -> tuple[_Probe, list[dict[str, Any]]]:
        """inferlab's search for the highest Server QPS LoadGen calls VALID: grow or shrink until the
        bound is bracketed, then bisect until the bracket is `peak_tolerance` wide. Returns the best VALID
        probe (else the last one) and the history."""
        s = self.settings
        qps = s.target_qps or (0.8 * hints.capacity_sps if hints else ts.server_target_qps)
        best: _Probe | None = None
        low: float | None = None
        high: float | None = None
        history: list[dict[str, Any]] = []
        for step in range(s.peak_max_runs):
            ts.server_target_qps = qps
            self.events.phase(f"search {step + 1}/{s.peak_max_runs}: {qps:.1f} qps")
            probe = self._start_test(ts, self.log_dir / f"search-{step + 1:02d}")
            res = probe.result
            history.append({"target_qps": qps, "validity": res.validity, "scheduled_qps": res.scheduled_qps,
                            "p99_ms": res.percentiles_ms.get("99"), "unmet": res.unmet(), "log_dir": res.log_dir})
            if res.valid:
                best, low = probe, qps
            else:
                high = qps if high is None else min(high, qps)
            if low is not None and high is not None:
                if (high - low) / low <= s.peak_tolerance:
                    break
                qps = (low + high) / 2
            elif low is not None:
                qps = low * 1.5
            else:  # no VALID probe yet: not above what this one served (a target far too high drops at once)
                qps = min(qps * 0.6, res.samples_per_s or qps)
            if qps < 1:
                break
        return best or probe, history

    def _retry_hint(self, ts: Any, res: ScenarioResult, open_: set[str]) -> bool:
        """When a hint inferlab calibrated was too far off, retry once with what a person would do on reading
        LoadGen's recommendation: for a min duration not filled, the hint set from LoadGen's own measurement;
        for a Server target QPS inferlab chose that broke the latency bound (a busy machine's hiccup at half
        the calibrated capacity), half that target."""
        if ("target_qps" in open_ and self.scenario == "Server" and not res.valid
                and not res.criteria.get("performance constraints", True) and ts.server_target_qps >= 2):
            ts.server_target_qps = round(AUTO_SERVER_LOAD * ts.server_target_qps, 1)
            return True
        retry = open_ & {"expected_qps", "expected_latency"}
        if res.valid or res.criteria.get("min duration", True) or not retry:
            return False
        query_ms = res.percentiles_ms.get("50")
        if ("expected_qps" in retry and not res.samples_per_s) or ("expected_latency" in retry and not query_ms):
            return False
        spq = int(ts.multi_stream_samples_per_query)
        per_request = (query_ms or 0.0) / requests_per_query(self.scenario, spq, self.batch)
        apply_hints(ts, self.scenario, retry, Hints(per_request, res.samples_per_s or 0.0), spq, self.batch)
        return True

    def run(self) -> tuple[dict[str, Any], ScenarioResult]:
        s = self.settings
        lg = self.lg
        self.sut.start()
        try:
            self.events.phase("warmup")
            first, hints = self.warm_up()
            self.hints = hints
            ts, open_ = build_test_settings(lg, self.scenario, s, self.model_name, self.default_min_duration_s)
            calibrated: dict[str, Any] = {}
            if hints is not None:
                spq = int(ts.multi_stream_samples_per_query)
                calibrated = apply_hints(ts, self.scenario, open_, hints, spq, self.batch)
                calibrated.update(request_latency_ms=round(hints.request_latency_ms, 4),
                                  capacity_sps=round(hints.capacity_sps, 1))
                self.bounds = apply_bounds(ts, self.scenario, s, hints, self.batch, self.depth)
                calibrated.update(self.bounds)
            self.events.phase("measure")
            history: list[dict[str, Any]] = []
            with gc_paused():
                if self.scenario == "Server" and s.find_peak_qps and s.test_mode == "PerformanceOnly":
                    probe, history = self._search_peak(ts, hints)
                else:
                    probe = self._start_test(ts, self.log_dir)
                    if self._retry_hint(ts, probe.result, open_):
                        calibrated["retried"] = (f"first run {probe.result.verdict_reason()}; "
                                                 "its logs are in attempt-1/")
                        if "target_qps" in calibrated:
                            calibrated["target_qps"] = ts.server_target_qps
                        attempt = self.log_dir / "attempt-1"
                        attempt.mkdir()
                        for f in self.log_dir.glob("mlperf_log_*"):
                            f.rename(attempt / f.name)
                        probe = self._start_test(ts, self.log_dir)
            self.events.phase("measured")
        finally:
            self.sut.stop()
        result = replace(probe.result, calibrated=calibrated, search=history, accuracy_layout=self.sut.layout)
        return self._fields(result, first, probe), result

    def _fields(self, res: ScenarioResult, first_ns: int, probe: _Probe) -> dict[str, Any]:
        ns = np.asarray(probe.latencies, dtype=np.int64)
        return {
            "first_inference_ms": first_ns / 1e6,
            "latency": latency_stats(ns) if ns.size else None,
            "throughput_sps": res.samples_per_s,
            "requests": self.total_requests,
            "samples": self.total_samples,
            "duration_s": probe.wall_s,
            "in_flight": self.depth,
            "stop_reason": "loadgen",
            "latencies_ns": ns if ns.size else None,
        }


class _Fake:
    """A stand-in for LoadGen's QuerySample during warm-up (LoadGen is not running yet)."""

    __slots__ = ("id", "index")

    def __init__(self, id_: int, index: int) -> None:
        self.id = id_
        self.index = index


def status_of(res: ScenarioResult) -> tuple[str, str | None]:
    """The trial's status and reason from LoadGen's verdict (INVALID is a result, not an error)."""
    if res.test_mode == "AccuracyOnly":
        return ("ok", None) if not res.errors else ("failed", f"LoadGen reported: {res.errors[0]}")
    if res.valid:
        return "ok", None
    reason = res.verdict_reason()
    if res.search:
        tried = [h["target_qps"] for h in res.search]
        reason = (f"no Server QPS tried ({min(tried):.1f}..{max(tried):.1f}) was VALID; last: " + reason)
    return "invalid", reason

