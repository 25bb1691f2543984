"""Batch left out: the batch ladder finds the domain (doubling while the objective gains, stopping at the first
failure or bound), the leader is climbed past it, search trials measure over a short window and the leaders over
the full one, and the winner's speed-up is over the runtime's defaults. On a deterministic landscape (it stands
in for measurements only here; tests/tune/test_tune_cli.py runs real trials)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from inferlab.records.trial import TrialResult, TrialSpec
from inferlab.tune import ladder
from inferlab.tune.record import TrialRecord
from inferlab.tune.search import Tuner
from inferlab.tune.space import Point
from tests.tune.test_search import ARTIFACT, _exp, _lat, _space


class Saturating:
    """Throughput saturates with batch (1000·b/(b+16) per thread), p99 latency grows with it; a batch at or above
    `oom` fails to load. Records every spec and whether it was measured over the full window."""

    def __init__(self, oom: int | None = None, knee: int = 16) -> None:
        self.calls: list[tuple[TrialSpec, bool]] = []
        self.oom, self.knee = oom, knee

    def spec(self, point: Point, repeat: int, full: bool = True) -> TrialSpec:
        spec = TrialSpec(ARTIFACT, point.backend, point.device, point.params, point.batch, "throughput",
                         repeat=repeat)
        self._full = getattr(self, "_full", {})
        self._full[spec.key()] = full
        return spec

    def measure(self, specs: Sequence[TrialSpec]) -> Iterator[TrialResult]:
        for spec in specs:
            self.calls.append((spec, self._full[spec.key()]))
            if self.oom is not None and spec.batch >= self.oom:
                yield TrialResult(spec, "failed", reason="CUDA out of memory at load")
                continue
            threads = int(spec.param_dict["intra_op_threads"] or 1)
            fps = 1000.0 * threads * spec.batch / (spec.batch + self.knee)
            yield TrialResult(spec, "ok", throughput_sps=fps, throughput_ci_low_sps=fps * 0.995,
                              throughput_ci_high_sps=fps * 1.005, latency=_lat(spec.batch / fps * 1000),
                              peak_rss_mb=100.0)


def _run(tune: dict[str, Any], land: Saturating, history: list[TrialRecord] | None = None,
         threads: list[int] | None = None) -> Any:
    params = {"intra_op_threads": threads or [1, 2], "inter_op_threads": 0, "execution_mode": "sequential",
              "graph_optimization_level": "all", "spinning": True, "in_flight": 0, "cpus": 0}
    exp = _exp(tune, None, backends=[{"name": "onnxruntime", "params": params}])
    tuner = Tuner(exp.tune, _space(exp), land.spec, land.measure, lambda r: None, None, history,
                  windows=(0.5, 3.0))
    return tuner, tuner.run()


def _batches(records: list[TrialRecord], role: str) -> list[int]:
    return [r.point.batch for r in records if r.role == role and r.point is not None]


def test_the_ladder_doubles_from_one_until_the_gain_is_too_small() -> None:
    land = Saturating()
    tuner, out = _run({"sampler": "grid", "max_trials": 40, "confirm": 0, "patience": None}, land)
    rungs = [r for r in out.records if r.role == "ladder"]
    # 1000·b/(b+16): +3.0% from 512 to 1024 (not more than 3%: the ladder stops there, recorded as such)
    assert _batches(out.records, "ladder") == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert all(dict(r.point.params)["intra_op_threads"] == 0 for r in rungs)  # the runtime's defaults
    assert "batch 1024 gains +1.5% over batch 512 (less than 3.0%)" in ladder.stop_reason(rungs, "throughput")
    # the search tries the rungs within 15% of the best, 128 (889) .. 1024 (985), and two doublings past the
    # ladder, which stopped only because the defaults stopped gaining
    assert tuner.space.batch.values == (128, 256, 512, 1024, 2048, 4096)
    assert {r.point.batch for r in out.records if r.role == "search"} <= {128, 256, 512, 1024, 2048, 4096, 8192}
    assert any(line.startswith("batch ladder on onnxruntime/cpu (its defaults): b1 58.82, b2 111.1")
               for line in out.summary)


def test_the_ladder_stops_at_the_first_batch_that_fails_to_load_and_says_why() -> None:
    land = Saturating(oom=64)
    tuner, out = _run({"sampler": "grid", "max_trials": 40, "confirm": 0, "patience": None}, land)
    assert _batches(out.records, "ladder") == [1, 2, 4, 8, 16, 32, 64]
    assert tuner.space.batch.values == (32,)  # the best measured; 16 is 25% slower
    assert any("stopped: batch 64 failed: CUDA out of memory at load" in line for line in out.summary)


def test_a_latency_objective_keeps_batch_one() -> None:
    land = Saturating()
    tuner, out = _run({"sampler": "grid", "objectives": ["latency_p99"], "max_trials": 20, "confirm": 0,
                       "patience": None}, land)
    assert _batches(out.records, "ladder") == [1, 2]  # batch 2 only adds latency
    assert tuner.space.batch.values == (1,)
    assert not [r for r in out.records if r.note and "batch climb" in r.note]


def test_the_leader_is_climbed_past_the_ladder_while_it_gains() -> None:
    land = Saturating(knee=2000)  # far from saturating: the ladder would go on, but the trial budget ends it
    _, out = _run({"sampler": "grid", "max_trials": 10, "confirm": 0, "patience": None}, land, threads=[2])
    climbs = [r for r in out.records if r.note and "batch climb" in r.note]
    ladder_top = max(_batches(out.records, "ladder"))
    assert climbs and climbs[0].point.batch == 2 * ladder_top and climbs[0].role == "search"
    assert out.winner is not None and out.winner.point.batch >= 2 * ladder_top
    assert dict(out.winner.point.params)["intra_op_threads"] == 2


def test_search_trials_are_short_and_the_leaders_full_and_the_baseline_is_the_defaults() -> None:
    land = Saturating()
    _, out = _run({"sampler": "grid", "max_trials": 30, "confirm": 2, "patience": None, "baseline": True}, land)
    full = {spec.key(): f for spec, f in land.calls}
    for r in out.records:
        if r.spec_key is not None:
            assert full[r.spec_key] == (r.role in ("confirm", "baseline"))
    assert out.winner is not None and dict(out.winner.point.params)["intra_op_threads"] == 2
    assert out.winner.point.batch == 8192  # searched up to 4096, then climbed
    base = out.baseline
    assert base is not None and base.role == "baseline" and base.point.batch == 8192
    assert dict(base.point.params)["intra_op_threads"] == 0  # the defaults on the winner's device and batch
    assert out.winner_values[0] / base.values[0] > 1.9


def test_a_ladder_rung_at_the_winners_batch_is_the_baseline() -> None:
    land = Saturating(oom=2048)  # 2048 and 4096 fail to load: the winner stays at the ladder's 1024
    _, out = _run({"sampler": "grid", "max_trials": 30, "confirm": 1, "patience": None, "baseline": True}, land)
    assert out.winner is not None and out.winner.point.batch == 1024
    assert out.baseline is not None and out.baseline.role == "ladder" and out.baseline.point.batch == 1024
    assert not [r for r in out.records if r.role == "baseline"]


def test_a_resumed_ladder_keeps_its_rungs_and_goes_on_from_the_last() -> None:
    first = Saturating()
    _, cut = _run({"sampler": "grid", "max_trials": 10, "confirm": 0, "patience": None}, first)
    assert _batches(cut.records, "ladder") == [1, 2, 4, 8, 16]
    again = Saturating()
    _, out = _run({"sampler": "grid", "max_trials": 40, "confirm": 0, "patience": None}, again,
                  history=list(cut.records))
    assert [s.batch for s, _ in again.calls][:6] == [32, 64, 128, 256, 512, 1024]
    assert _batches(out.records, "ladder") == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def test_a_latency_objective_keeps_batch_one_when_noise_makes_batch_two_look_faster() -> None:
    class Noisy(Saturating):
        def measure(self, specs: Sequence[TrialSpec]) -> Iterator[TrialResult]:
            for r in super().measure(specs):
                if r.spec.batch == 2 and r.latency is not None:  # an eager batch 1 whose host drifted: 7% slower
                    r = TrialResult(r.spec, "ok", throughput_sps=r.throughput_sps, latency=_lat(17.0 / 1.07))
                yield r

    tuner, _out = _run({"sampler": "grid", "objectives": ["latency_p99"], "max_trials": 20, "confirm": 0,
                       "patience": None}, Noisy())
    assert tuner.space.batch.values == (1,)


def test_the_time_budget_keeps_room_for_the_leaders_and_the_baseline(monkeypatch: Any) -> None:
    """Trials take 10 s (search) and 12 s (full window); the study ends within one trial of its budget."""
    clock = [0.0]
    monkeypatch.setattr("inferlab.tune.search.time.monotonic", lambda: clock[0])

    class Slow(Saturating):
        def measure(self, specs: Sequence[TrialSpec]) -> Iterator[TrialResult]:
            for r in super().measure(specs):
                clock[0] += 12.0 if self._full[r.spec.key()] else 10.0
                yield r

    _tuner, out = _run({"sampler": "tpe", "max_trials": 60, "confirm": 2, "patience": None, "baseline": True,
                       "time_budget_s": 200}, Slow())
    assert out.winner is not None and out.baseline is not None
    assert "time budget of 200 s reached" in out.stop_reason
    assert [r.role for r in out.records][-2:] in (["confirm", "baseline"], ["confirm", "confirm"])
    assert 200 - 12 < clock[0] <= 200 + 12  # within one trial of the budget, re-measurements included
