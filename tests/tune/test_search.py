"""The search loop on a deterministic landscape: budgets, grid exhaustion, constraints, pruning, patience,
re-measurement of the leaders, Pareto fronts and resuming from stored records. The landscape stands in for
measurements only here; tests/tune/test_tune_cli.py runs the same loop on real trials."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from inferlab.config import loader
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.trial import LatencyStats, TrialResult, TrialSpec
from inferlab.tune.record import TrialRecord
from inferlab.tune.search import Tuner, pareto
from inferlab.tune.space import Point, Space, build

ARTIFACT = Artifact("m", "/nonexistent/m.onnx", ModelFormat.ONNX, "0" * 64)


def _exp(tune: dict[str, Any], batch: list[int] | None = None, **extra: Any) -> Any:
    """An experiment over the landscape; the defaults are not measured unless `tune` asks (baseline: true)."""
    data: dict[str, Any] = {"models": [{"path": "m.onnx"}], "mode": "throughput", "tune": {"baseline": False, **tune},
                            "backends": [{"name": "onnxruntime", "params": {
                                "intra_op_threads": [1, 2], "inter_op_threads": 0, "execution_mode": "sequential",
                                "graph_optimization_level": "all", "spinning": True, "in_flight": 0, "cpus": 0}}],
                            **extra}
    if batch is not None:
        data["batch"] = batch
    return loader.from_data(data, "t.yaml")


def _space(exp: Any) -> Space:
    return build(exp, {"onnxruntime": ("fp32",)}, "throughput")


def _lat(ms: float) -> LatencyStats:
    return LatencyStats(100, ms, 0.01, ms, ms, ms, ms, ms, ms * 1.2, ms, 0, ms * 0.99, ms * 1.01)


class Landscape:
    """Throughput grows with batch and threads; p99 latency grows with batch. Records every call."""

    def __init__(self, fail_batch: int | None = None) -> None:
        self.calls: list[TrialSpec] = []
        self.fail_batch = fail_batch

    def spec(self, point: Point, repeat: int, full: bool = True) -> TrialSpec:
        return TrialSpec(ARTIFACT, point.backend, point.device, point.params, point.batch, "throughput",
                         repeat=repeat)

    def measure(self, specs: Sequence[TrialSpec]) -> Iterator[TrialResult]:
        """The tuner's `measure`: the specs one after another, each result as it is ready."""
        return (self(s) for s in specs)

    def __call__(self, spec: TrialSpec) -> TrialResult:
        self.calls.append(spec)
        if spec.batch == self.fail_batch:
            return TrialResult(spec, "failed", reason="crashed: killed by SIGKILL")
        threads = int(spec.param_dict["intra_op_threads"] or 1)
        fps = 100.0 * threads * spec.batch ** 0.5 * (1 + 0.001 * spec.repeat)
        return TrialResult(spec, "ok", throughput_sps=fps, throughput_ci_low_sps=fps * 0.99,
                           throughput_ci_high_sps=fps * 1.01, latency=_lat(2.0 * spec.batch / threads),
                           peak_rss_mb=100.0 + spec.batch)


def _run(exp: Any, land: Landscape, history: list[TrialRecord] | None = None,
         saved: list[TrialRecord] | None = None) -> Any:
    tc = exp.tune
    sink = saved if saved is not None else []
    return Tuner(tc, _space(exp), land.spec, land.measure, sink.append, None, history).run()


def test_space_open_fixed_and_listed_knobs() -> None:
    exp = loader.from_data({"models": [{"path": "m.onnx"}], "mode": "latency", "tune": {},
                            "backends": [{"name": "onnxruntime", "params": {"intra_op_threads": [1, 2],
                                                                             "graph_optimization_level": "all"}}]},
                           "t.yaml")
    space = build(exp, {"onnxruntime": ("fp32",)}, "latency")
    arm = space.arms[0]
    names = {d.name.split(".", 1)[1]: d.values for d in arm.dims}
    assert names["intra_op_threads"] == (1, 2)
    assert "graph_optimization_level" not in names and dict(arm.fixed)["graph_optimization_level"] == "all"
    assert names["spinning"] == (False, True) and names["execution_mode"] == ("sequential", "parallel")
    assert "in_flight" not in names  # requests in flight do not matter in latency mode
    assert space.open_batch and space.batch.values == (1,)  # batch left open: a ladder finds its domain
    assert space.size() == 2 * 2 * 2 * len(names["inter_op_threads"]) * len(names["cpus"])
    pinned = _exp({}, batch=[1, 2])
    assert _space(pinned).size() == 4 and _space(pinned).batch.values == (1, 2)


def test_grid_measures_every_configuration_once() -> None:
    land = Landscape()
    out = _run(_exp({"sampler": "grid", "max_trials": 50, "confirm": 0, "patience": None}, [1, 2, 4]), land)
    keys = [(s.batch, s.param_dict["intra_op_threads"]) for s in land.calls]
    assert sorted(keys) == sorted((b, t) for b in (1, 2, 4) for t in (1, 2))  # 6 distinct, none twice
    assert out.stop_reason == "every configuration of the space was tried"
    assert out.winner is not None and out.winner.point.batch == 4 and dict(out.winner.point.params)[
        "intra_op_threads"] == 2


def test_budget_counts_re_measurements_and_the_winner_is_re_measured() -> None:
    land = Landscape()
    out = _run(_exp({"sampler": "tpe", "max_trials": 7, "confirm": 2, "patience": None, "seed": 1},
                    [1, 2, 4, 8, 16, 32]), land)
    assert len(land.calls) == 7 and out.measured == 7
    confirms = [r for r in out.records if r.role == "confirm"]
    assert len(confirms) == 2 and all(c.note.startswith("re-measures trial #") for c in confirms)
    assert {s.repeat for s in land.calls} == {0, 1}
    assert out.winner in [r for r in out.records if r.role == "search"]
    assert any(c.point == out.winner.point for c in confirms)
    assert "trial budget reached" in out.stop_reason


def test_infeasible_constraint_names_it_and_the_nearest() -> None:
    out = _run(_exp({"sampler": "grid", "max_trials": 10, "confirm": 1, "max_latency_ms": 0.5}, [1, 2]),
               Landscape())
    assert out.winner is None
    assert out.message.startswith("no configuration meets latency p99 ≤ 0.5 ms; nearest: onnxruntime/cpu fp32 b1")
    assert all(r.feasible is False for r in out.records if r.state == "complete")


def test_larger_batches_are_pruned_once_one_misses_the_latency_budget() -> None:
    land = Landscape()
    out = _run(_exp({"sampler": "grid", "max_trials": 30, "confirm": 0, "max_latency_ms": 5.0, "patience": None},
                    [1, 2, 4, 8]), land)
    pruned = [r for r in out.records if r.state == "pruned"]
    # threads 1: p99 2.4 ms·batch → b4 misses, so b8 is pruned if proposed after it; every pruned one is larger
    for r in pruned:
        assert "can only take longer" in r.note
        smaller = [m for m in out.records if m.state == "complete" and m.point.params == r.point.params
                   and m.point.batch < r.point.batch and not m.feasible]
        assert smaller
    assert all(s.batch <= 8 for s in land.calls)
    assert out.winner is not None and out.winner.feasible


def test_failed_trials_are_recorded_not_hidden() -> None:
    out = _run(_exp({"sampler": "grid", "max_trials": 10, "confirm": 0}, [1, 2]), Landscape(fail_batch=2))
    failed = [r for r in out.records if r.state == "failed"]
    assert len(failed) == 2 and all("SIGKILL" in r.note for r in failed)
    assert out.winner is not None and out.winner.point.batch == 1


def test_patience_stops_when_the_best_stops_improving_beyond_its_ci() -> None:
    land = Landscape()
    out = _run(_exp({"sampler": "random", "max_trials": 200, "confirm": 0, "patience": 3, "seed": 3},
                    [1, 2, 4, 8, 16, 32, 64, 128]), land)
    assert out.stop_reason.startswith("no improvement beyond the best's own confidence interval in 3 trials")
    assert len(land.calls) < 16


def test_resume_replays_stored_records_and_goes_on() -> None:
    exp = _exp({"sampler": "tpe", "max_trials": 4, "confirm": 0, "patience": None, "seed": 0}, [1, 2, 4, 8])
    first: list[TrialRecord] = []
    land = Landscape()
    _run(exp, land, saved=first)
    assert len(first) == 4
    stored = [TrialRecord.from_json(r.to_json()) for r in first]  # as the store gives them back
    more = exp.model_copy(update={"tune": exp.tune.model_copy(update={"max_trials": 7})})
    second: list[TrialRecord] = []
    land2 = Landscape()
    out = _run(more, land2, history=stored, saved=second)
    assert [r.position for r in second] == [4, 5, 6] and len(land2.calls) == 3
    seen = {r.point.key() for r in stored}
    assert not any(r.point.key() in seen for r in second)  # replayed into optuna: nothing measured twice
    assert out.records[:4] == stored


def test_pareto_front() -> None:
    recs = [TrialRecord(i, "search", "complete", None, values=v, feasible=True)
            for i, v in enumerate([(10.0, 5.0), (8.0, 2.0), (9.0, 6.0), (12.0, 9.0), (8.0, 3.0)])]
    front = pareto(recs, ["maximize", "minimize"], key=lambda r: r.values)
    assert [r.position for r in front] == [0, 1, 3]


def test_tune_config_errors() -> None:
    from inferlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"tune\.objectives\[0\]: .*'speed'"):
        _exp({"objectives": ["speed"]})
    with pytest.raises(ConfigError, match=r"tune\.max_latency_ms: .*greater than 0"):
        _exp({"max_latency_ms": 0})
    with pytest.raises(ConfigError, match=r"tune\.objectives: objectives are listed once each"):
        _exp({"objectives": ["throughput", "throughput"]})
