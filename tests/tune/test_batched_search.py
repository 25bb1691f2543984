"""The ask/tell loop: several proposals measured in one call when the executor has several slots, results told
as they arrive in any order, re-proposals, duplicates, failures and constraints. The landscape of
test_search.py stands in for measurements (these tests are about the search loop); with one slot the loop
must propose exactly what the serial `study.optimize` loop did (serial_loop_trace.json, recorded from it at
commit c3092a0)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from inferlab.records.trial import TrialResult, TrialSpec
from inferlab.tune import search
from inferlab.tune.record import TrialRecord
from inferlab.tune.search import Outcome, Tuner
from inferlab.tune.space import Point, Space
from tests.tune.test_search import Landscape, _exp, _space

TRACE = Path(__file__).with_name("serial_loop_trace.json")
ORT = {"inter_op_threads": 0, "execution_mode": "sequential", "graph_optimization_level": "all",
       "spinning": True, "in_flight": 0, "cpus": 0}


def _backends(threads: list[int]) -> list[dict[str, Any]]:
    return [{"name": "onnxruntime", "params": {"intra_op_threads": threads, **ORT}}]


def _threads(point: Point) -> int:
    return int(dict(point.params)["intra_op_threads"])


class Cluster(Landscape):
    """The landscape measured in batches: records each call's size and (`reverse`) gives the results back
    reversed, the last submitted first, as a cluster finishing them out of order would."""

    def __init__(self, fail_batch: int | None = None, reverse: bool = True) -> None:
        super().__init__(fail_batch)
        self.batches: list[int] = []
        self.reverse = reverse

    def measure(self, specs: Sequence[TrialSpec]) -> Iterator[TrialResult]:
        self.batches.append(len(specs))
        results = [self(s) for s in specs]
        yield from reversed(results) if self.reverse else results


def _tuner(tune: dict[str, Any], batches: list[int], threads: list[int], land: Landscape, slots: int,
           space: Any = None) -> Tuner:
    exp = _exp(tune, batches, backends=_backends(threads))
    return Tuner(exp.tune, space or _space(exp), land.spec, land.measure, lambda r: None, slots=slots)


def _expected_fps(point: Point, repeat: int = 0) -> float:
    """The landscape's throughput at a point: what the record of that point must hold."""
    return 100.0 * _threads(point) * point.batch ** 0.5 * (1 + 0.001 * repeat)


def _check_told(tuner: Tuner, out: Outcome) -> None:
    """Every asked trial was told (none left running), each with the values and constraints of the record of
    its point: re-proposals and a batch's duplicates get the measurement of their point."""
    assert tuner.study is not None
    by_params = {json.dumps(r.params, sort_keys=True): r for r in out.records
                 if r.role == "search" and r.state != "pruned"}
    for t in tuner.study.trials:
        assert t.state != TrialState.RUNNING, f"trial {t.number} was never told"
        if t.state == TrialState.PRUNED:
            continue
        r = by_params[json.dumps(t.params, sort_keys=True)]
        if r.state == "failed":
            assert t.state == TrialState.FAIL
        else:
            assert t.state == TrialState.COMPLETE and tuple(t.values) == r.values
        assert t.constraints == {c["name"]: c["value"] - c["limit"] for c in r.checks}


CASES: dict[str, dict[str, Any]] = {
    "tpe": {"sampler": "tpe", "seed": 4},
    "random": {"sampler": "random", "seed": 4},
    "nsga2": {"sampler": "nsga2", "objectives": ["throughput", "latency_p99"], "seed": 4},
    "grid": {"sampler": "grid"},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_three_slots_measure_batches_of_three_and_results_out_of_order_reach_their_trials(case: str) -> None:
    land = Cluster()
    tuner = _tuner({**CASES[case], "max_trials": 10, "confirm": 2, "patience": None},
                   [1, 2, 4, 8, 16, 32, 64, 128], [1, 2, 3, 4], land, slots=3)
    out = tuner.run()
    # 8 searched (the budget less the 2 re-measurements kept for the leaders), then both leaders in one call
    assert land.batches == [3, 3, 2, 2]
    assert out.measured == len(land.calls) == 10 and "trial budget reached" in out.stop_reason
    assert [r.position for r in out.records] == list(range(len(out.records)))
    searched = [r for r in out.records if r.role == "search"]
    assert len({r.point.key() for r in searched}) == len(searched) == 8  # no point measured twice
    assert len({s.key() for s in land.calls}) == 10
    calls = {s.key(): s for s in land.calls}
    for r in out.records:
        repeat = 0 if r.role == "search" else 1
        assert r.spec_key == land.spec(r.point, repeat).key()  # the record names the spec of its own point
        spec = calls[r.spec_key]
        assert (spec.batch, spec.param_dict["intra_op_threads"]) == (r.point.batch, _threads(r.point))
        assert r.values[0] == pytest.approx(_expected_fps(r.point, repeat))  # and holds that spec's result
    confirms = [r for r in out.records if r.role == "confirm"]
    assert len(confirms) == 2 and {c.point for c in confirms} <= {r.point for r in searched}
    assert out.winner is not None and out.winner in searched
    _check_told(tuner, out)


class Spy:
    """The space, noting every proposal (optuna's trial number and the point) as the loop suggests it."""

    def __init__(self, space: Space) -> None:
        self.space, self.proposals = space, []  # type: ignore[var-annotated]

    def size(self) -> int:
        return self.space.size()

    open_batch = False
    arms = property(lambda self: self.space.arms)

    def seeds(self, objective: str) -> list[dict[str, Any]]:
        return self.space.seeds(objective)

    def propose(self, trial: optuna.Trial) -> tuple[Point, int]:
        p, narrowed = self.space.propose(trial)
        self.proposals.append(f"{trial.number}:b{p.batch}t{_threads(p)}")
        return p, narrowed


SERIAL: dict[str, tuple[dict[str, Any], list[int], list[int], int | None]] = {  # as the trace was recorded
    "tpe_constrained": ({"sampler": "tpe", "max_trials": 24, "confirm": 2, "patience": None, "seed": 7,
                         "max_latency_ms": 20.0}, [1, 2, 4, 8, 16, 32, 64], [1, 2, 3, 4], None),
    "nsga2_two_objectives": ({"sampler": "nsga2", "objectives": ["throughput", "latency_p99"], "max_trials": 30,
                              "confirm": 2, "patience": None, "seed": 3, "max_latency_ms": 40.0},
                             [1, 2, 4, 8, 16, 32, 64], [1, 2, 3, 4], None),
    "grid_failed_pruned": ({"sampler": "grid", "max_trials": 40, "confirm": 1, "max_latency_ms": 10.0,
                            "patience": None}, [1, 2, 4, 8], [1, 2, 3], 2),
    "random_patience": ({"sampler": "random", "max_trials": 60, "confirm": 2, "patience": 4, "seed": 11},
                        [1, 2, 4, 8, 16, 32, 64, 128], [1, 2, 3, 4], None),
}


@pytest.mark.parametrize("case", sorted(SERIAL))
def test_one_slot_proposes_and_records_exactly_what_the_serial_loop_did(case: str) -> None:
    expected = json.loads(TRACE.read_text())[case]
    tune, batches, threads, fail = SERIAL[case]
    exp = _exp(tune, batches, backends=_backends(threads))
    land = Cluster(fail_batch=fail, reverse=False)  # the serial loop re-measured the leaders in rank order
    spy = Spy(_space(exp))
    tuner = Tuner(exp.tune, spy, land.spec, land.measure, lambda r: None)  # type: ignore[arg-type]
    out = tuner.run()
    records = [f"{r.position}:{r.role}:{r.state}:{r.number}:b{r.point.batch}t{_threads(r.point)}"
               f":{','.join(f'{v:.6g}' for v in r.values)}" for r in out.records]
    assert spy.proposals == expected["proposals"]  # re-proposals and pruned points included
    assert records == expected["records"]
    assert [f"b{s.batch}t{s.param_dict['intra_op_threads']}r{s.repeat}" for s in land.calls] == expected["calls"]
    assert out.stop_reason == expected["stop_reason"]
    assert (out.winner.position if out.winner else None) == expected["winner"]
    assert [r.position for r in out.front] == expected["front"]
    confirms = sum(r.role == "confirm" for r in out.records)
    assert land.batches == [1] * (len(land.calls) - confirms) + [confirms]  # the leaders are re-measured at once
    _check_told(tuner, out)


def test_a_failed_result_in_a_batch_is_told_as_fail_and_the_search_goes_on() -> None:
    land = Cluster(fail_batch=2)
    tuner = _tuner({"sampler": "random", "seed": 2, "max_trials": 12, "confirm": 0, "patience": None},
                   [1, 2, 4, 8, 16], [1, 2, 3, 4], land, slots=3)
    out = tuner.run()
    assert tuner.study is not None
    failed = [r for r in out.records if r.state == "failed"]
    assert failed and all(r.point.batch == 2 and "SIGKILL" in r.note for r in failed)
    assert all(tuner.study.trials[r.number].state == TrialState.FAIL for r in failed)
    assert land.batches == [3, 3, 3, 3] and out.measured == 12  # the search went on to the budget
    assert any(r.position > failed[0].position and r.state == "complete" for r in out.records)
    assert out.winner is not None and out.winner.state == "complete"
    _check_told(tuner, out)


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_constraints_reach_the_sampler_with_ask_and_tell(sampler: str) -> None:
    tune: dict[str, Any] = {"sampler": sampler, "seed": 5, "max_trials": 14, "confirm": 0, "patience": None,
                            "max_latency_ms": 10.0, "max_memory_mb": 130.0}
    if sampler == "nsga2":
        tune["objectives"] = ["throughput", "latency_p99"]
    tuner = _tuner(tune, [1, 2, 4, 8, 16, 32, 64], [1, 2, 3, 4], Cluster(), slots=3)
    out = tuner.run()
    assert tuner.study is not None
    done = [r for r in out.records if r.state == "complete"]
    assert any(r.feasible for r in done) and any(not r.feasible for r in done)
    for r in done:
        t: FrozenTrial = tuner.study.trials[r.number]
        lat, mem = (c["value"] for c in r.checks)
        # the samplers read a trial's constraints from its system attrs, "constraints:<name>" (≤ 0: met)
        assert t.system_attrs["constraints:latency p99 ms"] == pytest.approx(lat - 10.0)
        assert t.system_attrs["constraints:memory MB"] == pytest.approx(mem - 130.0)
        assert all(v <= 0 for v in t.constraints.values()) == r.feasible
    _check_told(tuner, out)


def test_grid_with_slots_ends_when_every_point_is_taken() -> None:
    """The brute-force sampler asks the study to stop once its grid is taken; outside optimize that is a flag,
    not an error, and every point is measured once."""
    land = Cluster()
    tuner = _tuner({"sampler": "grid", "max_trials": 40, "confirm": 0, "patience": None}, [1, 2, 4, 8], [1, 2, 3],
                   land, slots=5)
    out = tuner.run()
    assert sorted((s.batch, s.param_dict["intra_op_threads"]) for s in land.calls) == sorted(
        (b, t) for b in (1, 2, 4, 8) for t in (1, 2, 3))
    assert land.batches == [5, 5, 2]
    assert out.stop_reason == "every configuration of the space was tried"
    _check_told(tuner, out)


def test_a_point_proposed_twice_in_one_batch_is_measured_once_and_both_trials_told() -> None:
    land = Cluster()
    tuner = _tuner({"sampler": "random", "seed": 0, "max_trials": 4, "confirm": 0, "patience": None}, [1, 2],
                   [1, 2], land, slots=4)
    out = tuner.run()
    assert tuner.study is not None
    assert land.batches == [4] and len({s.key() for s in land.calls}) == 4
    assert len(tuner.study.trials) > 4  # the random sampler proposed some of the 4 points more than once
    assert len([r for r in out.records if r.role == "search"]) == 4
    _check_told(tuner, out)


class Stuck(optuna.samplers.RandomSampler):
    """A sampler that proposes the same point for ever."""

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: optuna.distributions.BaseDistribution) -> Any:
        return param_distribution.to_external_repr(0)


@pytest.mark.parametrize("slots", [1, 3])
def test_proposals_are_bounded_when_the_sampler_only_re_proposes(slots: int, monkeypatch: Any) -> None:
    monkeypatch.setattr(search, "choose_sampler", lambda *a: ("stuck", Stuck(seed=0)))
    land = Cluster()
    tuner = _tuner({"max_trials": 5, "confirm": 0, "patience": None}, [1, 2, 4], [1, 2], land, slots=slots)
    out = tuner.run()
    assert tuner.study is not None
    assert len(land.calls) == 1 and out.measured == 1
    assert len(tuner.study.trials) == 20 * 5  # the serial loop's bound: 20 proposals per trial of the budget
    _check_told(tuner, out)


def test_resume_with_slots_measures_nothing_twice() -> None:
    kw = {"sampler": "tpe", "seed": 0, "confirm": 0, "patience": None}
    first = Cluster()
    t1 = _tuner({**kw, "max_trials": 5}, [1, 2, 4, 8, 16], [1, 2, 3, 4], first, slots=3)
    stored = [TrialRecord.from_json(r.to_json()) for r in t1.run().records]
    land = Cluster()
    exp = _exp({**kw, "max_trials": 11}, [1, 2, 4, 8, 16], backends=_backends([1, 2, 3, 4]))
    out = Tuner(exp.tune, _space(exp), land.spec, land.measure, lambda r: None, history=stored, slots=3).run()
    assert first.batches == [3, 2] and land.batches == [3, 3]
    assert [r.position for r in out.records] == list(range(11)) and out.records[:5] == stored
    assert not {s.key() for s in first.calls} & {s.key() for s in land.calls}


def test_slots_must_be_positive() -> None:
    with pytest.raises(ValueError, match="slots must be at least 1"):
        _tuner({}, [1], [1], Cluster(), slots=0)


def test_the_executor_returning_too_few_results_is_an_error() -> None:
    land = Cluster()

    def lossy(specs: Sequence[TrialSpec]) -> Iterator[TrialResult]:
        yield from list(land.measure(specs))[1:]

    exp = _exp({"sampler": "random", "max_trials": 6, "confirm": 0}, [1, 2, 4], backends=_backends([1, 2]))
    with pytest.raises(RuntimeError, match="no result for 1 of 3 trials"):
        Tuner(exp.tune, _space(exp), land.spec, lossy, lambda r: None, slots=3).run()
