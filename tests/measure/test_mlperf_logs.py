"""LoadGen's settings and logs, against LoadGen itself: a no-op SUT in this process produces real logs, and
what inferlab parses from the detail log must equal what LoadGen's summary states."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferlab.measure.mlperf.logs import LogError, parse, read_accuracy_log, read_detail
from inferlab.measure.mlperf.settings import (
    Hints,
    LoadGenSettings,
    apply_hints,
    build_test_settings,
    canonical_scenario,
    canonical_test_mode,
)
from inferlab.models.tensors import TensorSpec

lg = pytest.importorskip("mlperf_loadgen")


def _run(scenario: str, out: Path, mode: str = "PerformanceOnly", **settings: Any) -> None:
    out.mkdir(parents=True)
    payload = np.arange(3, dtype=np.float32)

    def issue(samples: Any) -> None:
        if mode == "AccuracyOnly":
            data = [np.full(3, s.index, dtype=np.float32) for s in samples]
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, d.ctypes.data, d.nbytes)
                                     for s, d in zip(samples, data, strict=True)])
        else:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, payload.ctypes.data, 0) for s in samples])

    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, scenario)
    ts.mode = getattr(lg.TestMode, mode)
    for k, v in settings.items():
        setattr(ts, k, v)
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(32, 32, lambda _: None, lambda _: None)
    output = lg.LogOutputSettings()
    output.outdir = str(out)
    log = lg.LogSettings()
    log.log_output = output
    lg.StartTestWithLogSettings(sut, qsl, ts, log)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)


def _summary(out: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in (out / "mlperf_log_summary.txt").read_text().splitlines():
        m = re.match(r"^\s*([^:*]+?)\s*:\s*(.+)$", line)
        if m:
            fields.setdefault(m.group(1), m.group(2).strip())
    return fields


QUICK = {"min_duration_ms": 200, "min_query_count": 700}


@pytest.mark.parametrize(("scenario", "settings"), [
    ("SingleStream", {"single_stream_expected_latency_ns": 20_000}),
    ("MultiStream", {"multi_stream_expected_latency_ns": 20_000}),
    ("Server", {"server_target_qps": 5000, "server_target_latency_ns": 10_000_000}),
    ("Offline", {"offline_expected_qps": 100_000, "min_query_count": 1}),
])
def test_parse_agrees_with_loadgen_summary(tmp_path: Path, scenario: str, settings: dict[str, Any]) -> None:
    out = tmp_path / scenario
    _run(scenario, out, **{**QUICK, **settings})
    res = parse(read_detail(out / "mlperf_log_detail.txt"), out)
    summary = _summary(out)
    assert res.scenario == summary["Scenario"] == scenario
    assert res.validity == summary["Result is"]
    assert res.criteria["min duration"] == (summary["Min duration satisfied"] == "Yes")
    assert res.criteria["early stopping"] == (summary["Early stopping satisfied"] == "Yes")
    assert res.log_dir == str(out)
    assert res.value is not None and res.value > 0
    if scenario == "SingleStream":
        assert res.unit == "ms" and not res.higher_is_better
        estimate = re.search(r"Early stopping 90.0th percentile estimate: (\d+)",
                             (out / "mlperf_log_summary.txt").read_text())
        assert estimate is not None and res.value == pytest.approx(int(estimate.group(1)) / 1e6)
        assert res.percentiles_ms["90"] == pytest.approx(int(summary["90.0th percentile latency (ns)"]) / 1e6)
        assert res.qps_with_loadgen_overhead == pytest.approx(float(summary["QPS w/ loadgen overhead"]), rel=1e-4)
    elif scenario == "MultiStream":
        assert res.percentiles_ms["99"] == pytest.approx(int(summary["99.0th percentile latency (ns)"]) / 1e6)
        assert res.effective["samples_per_query"] == 8
        assert res.samples_per_s is not None and res.samples_per_s > 0
    elif scenario == "Server":
        assert res.unit == "queries/s" and res.higher_is_better
        assert res.value == pytest.approx(float(summary["Scheduled samples per second"]), rel=1e-4)
        assert res.criteria["performance constraints"] == (summary["Performance constraints satisfied"] == "Yes")
    else:
        assert res.value == pytest.approx(float(summary["Samples per second"]), rel=1e-4)
    if res.validity == "INVALID":
        assert res.verdict_reason().startswith("INVALID: ")


def test_invalid_run_keeps_loadgen_reason(tmp_path: Path) -> None:
    # an expected latency far too pessimistic: LoadGen runs out of queries before the min duration
    out = tmp_path / "ss"
    _run("SingleStream", out, min_duration_ms=2000, min_query_count=10, single_stream_expected_latency_ns=10**9)
    res = parse(read_detail(out / "mlperf_log_detail.txt"), out)
    assert res.validity == "INVALID"
    assert res.criteria["min duration"] is False
    assert "min duration not satisfied" in res.verdict_reason()
    assert res.invalid_reason and "expected latency" in res.invalid_reason


def test_accuracy_log_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "acc"
    _run("Offline", out, mode="AccuracyOnly")
    res = parse(read_detail(out / "mlperf_log_detail.txt"), out)
    assert res.test_mode == "AccuracyOnly" and res.validity is None and res.value is None
    logged = read_accuracy_log(out / "mlperf_log_accuracy.json", [{"name": "y", "dtype": "<f4", "shape": [3]}])
    assert sorted(logged) == list(range(32))
    for index, entries in logged.items():
        assert len(entries) == 1
        np.testing.assert_array_equal(entries[0]["y"], np.full(3, index, dtype=np.float32))
    with pytest.raises(LogError, match="layout"):
        read_accuracy_log(out / "mlperf_log_accuracy.json", [{"name": "y", "dtype": "<f4", "shape": [4]}])


def test_detail_log_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="cannot read"):
        read_detail(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("not a log\n")
    with pytest.raises(LogError, match="no LoadGen results"):
        read_detail(empty)


def test_settings_layers(tmp_path: Path) -> None:
    quick, _ = build_test_settings(lg, "Server", LoadGenSettings(), "m", 3.0)
    assert quick.min_duration_ms == 3000 and quick.min_query_count == 600
    official, _ = build_test_settings(lg, "Server", LoadGenSettings(official=True), "m", 3.0)
    assert official.min_duration_ms == 600_000
    conf = tmp_path / "user.conf"
    conf.write_text("m.Server.target_qps = 123\n*.Server.min_duration = 4500\n")
    layered, _ = build_test_settings(lg, "Server", LoadGenSettings(user_conf=str(conf), latency_bound_ms=7.5),
                                  "m", 3.0)
    assert layered.server_target_qps == 123 and layered.min_duration_ms == 4500
    assert layered.server_target_latency_ns == 7_500_000
    explicit, _ = build_test_settings(lg, "Server", LoadGenSettings(user_conf=str(conf), min_duration_s=1.0), "m",
                                      3.0)
    assert explicit.min_duration_ms == 1000  # the config's own field wins over user.conf
    # hints: a user.conf that sets the target QPS leaves nothing to calibrate; otherwise it is filled in
    def open_hints(scenario: Any, s: LoadGenSettings) -> set[str]:
        return build_test_settings(lg, scenario, s, "m", 3.0)[1]

    assert open_hints("Server", LoadGenSettings(user_conf=str(conf))) == set()
    assert open_hints("Server", LoadGenSettings()) == {"target_qps"}
    assert open_hints("Offline", LoadGenSettings(expected_qps=10.0)) == set()
    ts, _ = build_test_settings(lg, "Offline", LoadGenSettings(), "m", 3.0)
    applied = apply_hints(ts, "Offline", {"expected_qps"}, Hints(2.0, 1000.0), 8, 1)
    assert applied["expected_qps"] == pytest.approx(1500.0) and ts.offline_expected_qps == pytest.approx(1500.0)
    ts, _ = build_test_settings(lg, "MultiStream", LoadGenSettings(), "m", 3.0)
    applied = apply_hints(ts, "MultiStream", {"expected_latency"}, Hints(2.0, 1000.0), 8, 4)
    assert applied["expected_latency_ms"] == pytest.approx(0.5 * 2 * 2.0)  # two requests of 4 per query


def test_names_are_canonical() -> None:
    assert canonical_scenario("single_stream") == "SingleStream"
    assert canonical_scenario("OFFLINE") == "Offline"
    assert canonical_scenario("batch") is None
    assert canonical_test_mode("accuracy") == "AccuracyOnly"
    assert canonical_test_mode("find-peak") == "FindPeakPerformance"
    assert canonical_test_mode("fast") is None


def test_a_calibrated_hint_too_far_off_is_retried_once(tmp_path: Path) -> None:
    from inferlab.backends.null import NullSession
    from inferlab.measure.budget import QuietEvents
    from inferlab.measure.mlperf.driver import ScenarioRun
    from inferlab.records.mlperf import ScenarioResult

    spec = [TensorSpec("x", (1, 4), "float32")]
    run = ScenarioRun(NullSession(spec), "Offline", LoadGenSettings(), spec, 1, None, 2, 0, "m", 1.0, tmp_path,
                      QuietEvents())
    ts, _ = build_test_settings(lg, "Offline", LoadGenSettings(), "m", 1.0)
    short = ScenarioResult("Offline", "PerformanceOnly", "INVALID", "throughput", 1000.0, "samples/s", True,
                           criteria={"min duration": False}, samples_per_s=1000.0)
    assert run._retry_hint(ts, short, {"expected_qps"})
    assert ts.offline_expected_qps == pytest.approx(1500.0)
    assert not run._retry_hint(ts, short, set())  # the user set the hint: LoadGen's verdict stands
    valid = ScenarioResult("Offline", "PerformanceOnly", "VALID", "throughput", 1000.0, "samples/s", True,
                           criteria={"min duration": True})
    assert not run._retry_hint(ts, valid, {"expected_qps"})


def test_a_server_target_inferlab_chose_that_broke_the_bound_is_halved_once(tmp_path: Path) -> None:
    from inferlab.backends.null import NullSession
    from inferlab.measure.budget import QuietEvents
    from inferlab.measure.mlperf.driver import ScenarioRun
    from inferlab.records.mlperf import ScenarioResult

    spec = [TensorSpec("x", (1, 4), "float32")]
    run = ScenarioRun(NullSession(spec), "Server", LoadGenSettings(), spec, 1, None, 2, 0, "m", 1.0, tmp_path,
                      QuietEvents())
    ts, open_ = build_test_settings(lg, "Server", LoadGenSettings(), "m", 1.0)
    assert open_ == {"target_qps"}
    ts.server_target_qps = 800.0
    late = ScenarioResult("Server", "PerformanceOnly", "INVALID", "completed_samples_per_sec", 790.0, "samples/s",
                          False, criteria={"performance constraints": False, "min duration": True})
    assert run._retry_hint(ts, late, open_)
    assert ts.server_target_qps == pytest.approx(400.0)
    assert not run._retry_hint(ts, late, set())  # the user's target: LoadGen's verdict stands


def test_bounds_where_nothing_set_them(tmp_path: Path) -> None:
    """LoadGen's max_duration and Server's max_async_queries are 0 (infinite) unless set: inferlab bounds them
    from the calibration, and leaves alone what a config or user.conf set, and accuracy runs."""
    from inferlab.measure.mlperf.settings import apply_bounds

    s = LoadGenSettings(latency_bound_ms=10)
    ts, _ = build_test_settings(lg, "Server", s, "m", 2.0)
    applied = apply_bounds(ts, "Server", s, Hints(1.0, 10_000.0), 1, 2)
    # 2 x 10k/s x (10 ms + 1% of 2 s): more outstanding and the run cannot end VALID
    assert applied == {"max_duration_s": 11.0, "max_async_queries": 600}
    assert ts.max_duration_ms == 11_000 and ts.server_max_async_queries == 600
    slow, _ = build_test_settings(lg, "Server", s, "m", 2.0)
    assert apply_bounds(slow, "Server", s, Hints(100.0, 10.0), 1, 2)["max_async_queries"] == 64  # the floor
    # MultiStream's 662 queries of 8 samples at 100 ms a sample would take 530 s: held to the cap
    ts, _ = build_test_settings(lg, "MultiStream", LoadGenSettings(), "m", 2.0)
    assert apply_bounds(ts, "MultiStream", LoadGenSettings(), Hints(100.0, 10.0), 1, 1) == {"max_duration_s": 30.0}
    ts, _ = build_test_settings(lg, "Offline", LoadGenSettings(), "m", 2.0)
    assert apply_bounds(ts, "Offline", LoadGenSettings(), Hints(1.0, 1000.0), 1, 2) == {
        "max_duration_s": pytest.approx(3 * 1.1 * 1.5 * 2 + 5)}
    conf = tmp_path / "user.conf"
    conf.write_text("m.Server.max_duration = 5000\nm.Server.max_async_queries = 7\n")
    ts, _ = build_test_settings(lg, "Server", LoadGenSettings(user_conf=str(conf)), "m", 2.0)
    assert apply_bounds(ts, "Server", s, Hints(1.0, 10_000.0), 1, 2) == {}
    assert ts.max_duration_ms == 5000 and ts.server_max_async_queries == 7
    ts, _ = build_test_settings(lg, "Offline", LoadGenSettings(max_duration_s=4.0), "m", 2.0)
    assert apply_bounds(ts, "Offline", LoadGenSettings(max_duration_s=4.0), Hints(1.0, 1.0), 1, 1) == {}
    accuracy = LoadGenSettings(test_mode="AccuracyOnly")
    ts, _ = build_test_settings(lg, "Server", accuracy, "m", 2.0)
    assert apply_bounds(ts, "Server", accuracy, Hints(1.0, 1.0), 1, 1) == {}
    assert ts.max_duration_ms == 0 and ts.server_max_async_queries == 0


def test_invalid_reason_names_the_target_and_the_bounds() -> None:
    from inferlab.records.mlperf import ScenarioResult

    res = ScenarioResult("Server", "PerformanceOnly", "INVALID", "scheduled", 968_000.0, "queries/s", True,
                         criteria={"performance constraints": False}, samples_per_s=132.3,
                         percentiles_ms={"99": 480.0}, effective={"target_qps": 1e6},
                         errors=["error_runtime: IssueQueryThread 0 Ending early: Too many outstanding queries. "
                                 "issued 65 outstanding 65"])
    assert res.ended_early() == "LoadGen ended early: Too many outstanding queries. issued 65 outstanding 65"
    assert res.verdict_reason() == (
        "INVALID: target 1,000,000 QPS is far above what the system served (~132.3 QPS); performance constraints "
        "not satisfied; LoadGen ended early: Too many outstanding queries. issued 65 outstanding 65")
    near = ScenarioResult("Server", "PerformanceOnly", "INVALID", "scheduled", 150.0, "queries/s", True,
                          samples_per_s=132.3, effective={"target_qps": 150.0})
    assert "far above" not in near.verdict_reason()
    # samples answered without inference: INVALID whatever LoadGen said, and its figures dropped
    valid = ScenarioResult("Offline", "PerformanceOnly", "VALID", "throughput", 9e5, "samples/s", True,
                           samples_per_s=9e5, percentiles_ms={"50": 1.0})
    cut = valid.bounded_by("inferlab stopped serving", figures_hold=False)
    assert cut.validity == "INVALID" and cut.value is None and cut.samples_per_s is None and not cut.percentiles_ms
    assert cut.verdict_reason() == "INVALID: inferlab stopped serving"
    assert ScenarioResult.from_json(cut.to_json()) == cut
    kept = valid.bounded_by("schedule cut")
    assert kept.validity == "INVALID" and kept.value == 9e5


def test_calibration_of_a_slow_model_is_bounded(tmp_path: Path) -> None:
    """Calibration rounds double until one lasts CALIBRATION_S with CALIBRATION_REQUESTS; a slow model stops at
    CALIBRATION_MAX_S with fewer (before: 4+8+16+32 requests, 6 s at 100 ms each)."""
    import time

    from inferlab.backends.null import NullSession
    from inferlab.measure.budget import QuietEvents
    from inferlab.measure.mlperf.driver import CALIBRATION_MAX_S, ScenarioRun

    class Slow(NullSession):
        runs = 0

        def run(self, prepared: Any) -> Any:
            Slow.runs += 1
            time.sleep(0.1)

    spec = [TensorSpec("x", (1, 4), "float32")]
    run = ScenarioRun(Slow(spec), "SingleStream", LoadGenSettings(), spec, 1, None, 2, 0, "m", 1.0, tmp_path,
                      QuietEvents())
    run.sut.start()
    try:
        t0 = time.perf_counter()
        _, hints = run.warm_up()
        spent = time.perf_counter() - t0
    finally:
        run.sut.stop()
    assert hints is not None and hints.request_latency_ms == pytest.approx(100, rel=0.5)
    calibration = Slow.runs - 1 - 2  # less the first inference and the warm-up
    assert 4 <= calibration <= 12
    assert spent < 0.3 + CALIBRATION_MAX_S + 0.5
