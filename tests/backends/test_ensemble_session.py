"""The co-located ensemble behind the Session interface (`EnsembleSession`), on fake sessions that sleep as a
runtime computes (releasing the GIL): the schedules, the members left out, each member's figures; and how the
members' class scores are combined (`execute.ensemble.combine`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from inferlab.backends.base import Session, SessionInfo
from inferlab.backends.ensemble import EnsembleSession
from inferlab.execute.ensemble import combine, speed
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.tensors import TensorSpec
from inferlab.records.accuracy import Postprocess
from inferlab.records.ensemble import EnsembleFigures, EnsembleSpec
from inferlab.records.trial import MeasureSettings, TrialSpec


class _Busy:
    """How many fake runs are inside `run` at once, now and at most (across every session sharing it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


class _Timed(Session):
    """A session that takes a fixed time per request, releasing the GIL as runtimes do."""

    def __init__(self, name: str, seconds: float, busy: _Busy | None = None) -> None:
        self.inputs, self.outputs = [], []
        self.info = SessionInfo(effective={"threads": 1}, runtime={"runtime": "fake"}, notes=[f"{name} note"])
        self.name, self.seconds = name, seconds
        self.busy, self.own = busy or _Busy(), _Busy()
        self.ran = 0
        self.closed = False
        self._count = threading.Lock()

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        return (self.name, dict(feeds))

    def run(self, prepared: Any) -> Any:
        assert prepared[0] == self.name, "a member was given another member's inputs"
        self.busy.enter()
        self.own.enter()
        try:
            time.sleep(self.seconds)
        finally:
            self.own.leave()
            self.busy.leave()
        with self._count:
            self.ran += 1
        return (self.name, prepared[1]["x"])

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return {"y": np.asarray(raw[1]) + (1 if raw[0] == "b" else 0)}

    def close(self) -> None:
        self.closed = True
        super().close()


def _pair(a_s: float, b_s: float, busy: _Busy | None = None) -> tuple[EnsembleSession, _Timed, _Timed]:
    a, b = _Timed("a", a_s, busy), _Timed("b", b_s, busy)
    return EnsembleSession([("a", a), ("b", b)], "cpu"), a, b


def _prepared(ens: EnsembleSession) -> tuple[Any, ...]:
    return ens.prepare_members([{"x": np.zeros(2, np.float32)}, {"x": np.ones(2, np.float32)}])


def _timed_runs(ens: EnsembleSession, prepared: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        ens.run(prepared)
    return time.perf_counter() - t0


def test_members_at_the_same_time_take_the_slowest_and_one_after_another_the_sum() -> None:
    ens, a, b = _pair(0.03, 0.04)
    prepared = _prepared(ens)
    n = 5
    try:
        ens.use([0, 1], "concurrent")
        together = _timed_runs(ens, prepared, n)
        ens.use([0, 1], "sequential")
        apart = _timed_runs(ens, prepared, n)
    finally:
        ens.close()
    assert a.ran == b.ran == 2 * n
    assert together >= n * 0.04 and apart >= n * 0.07  # sleeps take at least their time
    # at the same time: about the slower member (0.04 s), well under the sum (0.07 s) that one after another takes
    assert together < 0.8 * apart
    assert together < n * 0.065


def test_run_returns_each_members_outputs_and_none_for_members_left_out() -> None:
    ens, a, b = _pair(0, 0)
    prepared = _prepared(ens)
    try:
        both = ens.run(prepared)
        assert isinstance(both, tuple) and len(both) == 2 and all(r is not None for r in both)
        outs = ens.member_outputs(both)
        assert outs[0] is not None and outs[1] is not None
        assert outs[0]["y"].tolist() == [0, 0] and outs[1]["y"].tolist() == [2, 2]  # each its own feeds
        for schedule in ("concurrent", "sequential"):
            ens.use([1], schedule)
            raw = ens.run(prepared)
            assert isinstance(raw, tuple) and len(raw) == 2 and raw[0] is None and raw[1] is not None
            only = ens.member_outputs(raw)
            assert only[0] is None and only[1] is not None
            assert ens.outputs_of(raw)["y"].tolist() == [2, 2]  # the first member that ran
        assert (a.ran, b.ran) == (1, 3)
    finally:
        ens.close()
    assert a.closed and b.closed


def test_inputs_and_info_come_from_the_members() -> None:
    ens, _, _ = _pair(0, 0)
    try:
        with pytest.raises(TypeError, match="prepare_members"):
            ens.prepare({"x": np.zeros(1)})
        prepared = _prepared(ens)
        assert [p[0] for p in prepared] == ["a", "b"]
        with pytest.raises(ValueError):  # one feed per member
            ens.prepare_members([{"x": np.zeros(1)}])
        assert ens.info.effective == {"a.threads": 1, "b.threads": 1}
        assert ens.info.runtime["members"] == "a,b"
        assert ens.info.notes == ["a: a note", "b: b note"]
        assert ens.recommended_in_flight() == 2
        ens.use([0], "concurrent")
        assert ens.recommended_in_flight() == 1
        ens.use([0, 1], "sequential")
        assert ens.recommended_in_flight() == 1
    finally:
        ens.close()


def test_member_figures_are_each_active_members_own_and_use_clears_them() -> None:
    ens, _, _ = _pair(0.002, 0.012)
    prepared = _prepared(ens)
    try:
        ens.use([0, 1], "concurrent")
        n = 10
        window = _timed_runs(ens, prepared, n)
        figures = ens.member_figures(n, window, 4)
        assert [f.model for f in figures] == ["a", "b"] and [f.member for f in figures] == [0, 1]
        assert all(f.device == "cpu" and f.requests == n and f.share == 1.0 for f in figures)
        assert all(f.throughput_sps == pytest.approx(n * 4 / window) for f in figures)
        fast, slow = figures[0].latency_median_ms, figures[1].latency_median_ms
        assert fast is not None and slow is not None and 2 <= fast < slow and slow >= 12
        assert figures[1].latency_p99_ms is not None and figures[1].latency_p99_ms >= slow
        # the last `requests` only: the window's
        assert [f.requests for f in ens.member_figures(3, window, 4)] == [3, 3]

        ens.use([1], "concurrent")  # a new window: the logs start empty, and only member 1 is reported
        (empty,) = ens.member_figures(n, window, 4)
        assert (empty.model, empty.member, empty.requests, empty.throughput_sps) == ("b", 1, 0, None)
        _timed_runs(ens, prepared, 2)
        (only,) = ens.member_figures(n, 1.0, 4)
        assert (only.model, only.member, only.requests, only.throughput_sps) == ("b", 1, 2, 8.0)
        ens.use([0, 1], "concurrent")  # member 0 ran nothing since its log was cleared
        assert [f.requests for f in ens.member_figures(n, 1.0, 4)] == [0, 0]
    finally:
        ens.close()


def _submit_all(ens: EnsembleSession, prepared: Any, n: int, depth: int) -> None:
    errors: list[BaseException] = []
    done = threading.Semaphore(0)

    def on_done(exc: BaseException | None) -> None:
        if exc is not None:
            errors.append(exc)
        done.release()

    ens.start_async(depth)
    for _ in range(n):
        ens.wait_slot()
        ens.submit(prepared, on_done)
    ens.wait_all()
    ens.stop_async()
    for _ in range(n):
        assert done.acquire(timeout=10)
    assert not errors


def test_one_after_another_keeps_one_request_at_a_time_whatever_the_depth() -> None:
    busy = _Busy()
    ens, a, b = _pair(0.003, 0.003, busy)
    prepared = _prepared(ens)
    try:
        ens.use([0, 1], "sequential")
        _submit_all(ens, prepared, 12, 4)
        assert a.ran == b.ran == 12
        assert busy.most == 1  # never two members (or two requests) at once

        # the counter sees overlap where there is some: at the same time, both members run at once, each
        # member still one request at a time (its own worker)
        ens.use([0, 1], "concurrent")
        _submit_all(ens, prepared, 12, 4)
        assert a.ran == b.ran == 24
        assert busy.most == 2 and a.own.most == 1 and b.own.most == 1
    finally:
        ens.close()


# the trial's three schedules (execute.ensemble.speed) --------------------------------------------------------

class _Phases:
    """The driver's events: each phase, with how many requests each member had run when it began."""

    def __init__(self, *members: _Timed) -> None:
        self.members = members
        self.seen: list[tuple[str, tuple[int, ...]]] = []

    def phase(self, name: str) -> None:
        self.seen.append((name, tuple(m.ran for m in self.members)))

    def progress(self, elapsed_s: float, planned_s: float, requests: int) -> None:
        return None


def _trial(mode: str = "latency") -> tuple[TrialSpec, list[list[TensorSpec]]]:
    """An ensemble trial of two members (their files are never opened: the sessions are fakes)."""
    members = tuple(Artifact(n, f"/nowhere/{n}.onnx", ModelFormat.ONNX, n * 64) for n in ("a", "b"))
    ens = EnsembleSpec("a+b", members)
    measure = MeasureSettings(warmup_iterations=2, min_iterations=20, min_duration_s=0.1, max_duration_s=5)
    spec = TrialSpec(ens.model(), "onnxruntime", "cpu", (), 1, mode, measure, ensemble=ens)  # type: ignore[arg-type]
    return spec, [[TensorSpec("x", (1, 2))], [TensorSpec("x", (1, 2))]]


@pytest.mark.parametrize("mode", ["latency", "throughput"])
def test_speed_measures_each_member_alone_then_one_after_another_then_at_the_same_time(mode: str) -> None:
    spec, inputs = _trial(mode)
    ens, a, b = _pair(0.002, 0.004)
    events = _Phases(a, b)
    try:
        fields = speed(spec, ens, inputs, None, events)
    finally:
        ens.close()
    assert fields["status"] == "ok"
    # the windows in order (between the drivers' own phases), each member alone in its own (the other runs
    # nothing there)
    windows = ["alone a", "alone b", "one after another", "at the same time"]
    assert [name for name, _ in events.seen if name in windows] == windows
    counts = [ran for name, ran in events.seen if name in windows] + [(a.ran, b.ran)]
    assert counts[1][1] == counts[0][1] == 0 and counts[1][0] > 0  # alone a: b ran nothing
    assert counts[2][0] == counts[1][0] and counts[2][1] > 0        # alone b: a ran nothing
    assert all(counts[k + 1][i] > counts[k][i] for k in (2, 3) for i in (0, 1))  # both, in both schedules

    # the trial's own figures are the members at the same time: about the slower member per request
    lat = fields["latency"]
    assert [m.model for m in fields["members"]] == ["a", "b"]
    fast, slow = fields["members"]
    assert fast.requests == slow.requests == fields["requests"] and fast.share == slow.share == 1.0
    assert fast.alone_latency_median_ms is not None and fast.alone_latency_median_ms >= 2
    assert slow.alone_latency_median_ms is not None and slow.alone_latency_median_ms >= 4
    assert fast.alone_throughput_sps is not None and slow.alone_throughput_sps is not None
    assert fast.alone_throughput_sps > slow.alone_throughput_sps
    assert fast.latency_median_ms is not None and slow.latency_median_ms is not None
    assert fast.interference == pytest.approx(fast.latency_median_ms / fast.alone_latency_median_ms)
    assert slow.interference == pytest.approx(slow.latency_median_ms / slow.alone_latency_median_ms)
    e = fields["ensemble"]
    assert isinstance(e, EnsembleFigures) and e.combine == "mean"
    assert e.sequential_latency_median_ms is not None and e.sequential_latency_median_ms >= 6  # the sum
    assert e.sequential_throughput_sps is not None and e.gain is not None
    assert e.gain == pytest.approx(fields["throughput_sps"] / e.sequential_throughput_sps)
    # members that do not compete (they sleep) gain from running at the same time: 6 ms against 4 ms
    assert e.gain > 1.2
    if mode == "latency":
        assert 4 <= lat.p50_ms < 0.9 * e.sequential_latency_median_ms


def test_members_that_do_not_compete_show_no_interference() -> None:
    spec, inputs = _trial("latency")
    ens, _, _ = _pair(0.0003, 0.0003)
    try:
        fields = speed(spec, ens, inputs, None, _Phases())
    finally:
        ens.close()
    # two sleeping members at the same time take as long each as alone: the ratio is about 1
    assert [0.9 < (m.interference or 0) < 1.2 for m in fields["members"]] == [True, True], fields["members"]


# combine ---------------------------------------------------------------------------------------------------

LOGITS = Postprocess()
PROBS = Postprocess(scores="probabilities")


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_mean_averages_the_members_probabilities() -> None:
    a = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]], np.float32)
    b = np.array([[0.0, 4.0, 0.0], [1.0, 1.0, 1.0]], np.float32)
    got = combine([a, b], [LOGITS, LOGITS], "mean")
    # by hand: softmax([2, 1, 0]) = e^[2,1,0] / (e^2 + e + 1), ...
    pa0 = np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum()
    pb0 = np.exp([0.0, 4.0, 0.0]) / np.exp([0.0, 4.0, 0.0]).sum()
    pa1 = np.exp([0.0, 0.0, 3.0]) / np.exp([0.0, 0.0, 3.0]).sum()
    pb1 = np.full(3, 1 / 3)
    expect = np.array([(pa0 + pb0) / 2, (pa1 + pb1) / 2])
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=1e-6)
    # logits shifted by a constant are the same probabilities
    np.testing.assert_allclose(combine([a + 100, b - 7], [LOGITS, LOGITS], "mean"), expect, rtol=1e-5)


def test_mean_leaves_probabilities_as_they_are() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    logits = np.array([[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]], np.float32)
    got = combine([probs, logits], [PROBS, LOGITS], "mean")
    np.testing.assert_allclose(got, (probs + _softmax(logits)) / 2, rtol=1e-6)
    # row 0 by hand: softmax([0, 2, 0]) = [1, e², 1] / (2 + e²)
    e2 = np.exp(2.0)
    np.testing.assert_allclose(got[0], (np.array([0.7, 0.2, 0.1]) + np.array([1, e2, 1]) / (2 + e2)) / 2,
                               rtol=1e-6)
    # two members of probabilities: their plain average (a softmax of probabilities would flatten them)
    np.testing.assert_allclose(combine([probs, probs[::-1]], [PROBS, PROBS], "mean"), (probs + probs[::-1]) / 2,
                               rtol=1e-6)


def test_vote_counts_top_classes_and_breaks_ties_by_mean_probability() -> None:
    # three members, four samples, three classes (probabilities, so the mean is plain to see)
    m1 = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.4, 0.35, 0.25]], np.float32)
    m2 = np.array([[0.2, 0.7, 0.1], [0.1, 0.5, 0.4], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1]], np.float32)
    m3 = np.array([[0.3, 0.6, 0.1], [0.1, 0.2, 0.7], [0.7, 0.2, 0.1], [0.1, 0.2, 0.7]], np.float32)
    got = combine([m1, m2, m3], [PROBS] * 3, "vote")
    # votes: row 0: class 1 twice, class 0 once (m1's 0.6); row 1: one each, the highest
    # mean probability wins: (0.5+0.1+0.1)/3 = .233, (0.4+0.5+0.2)/3 = .367, (0.1+0.4+0.7)/3 = .4 -> class 2;
    # row 2: one each, means .3, .367, .333 -> class 1; row 3: one each, means .267, .383, .35 -> class 1
    assert got.argmax(axis=1).tolist() == [1, 2, 1, 1]
    votes = np.array([[1, 2, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1]], np.float64)
    mean = (m1 + m2 + m3) / 3
    np.testing.assert_allclose(got, votes + mean / 4, rtol=1e-6)
    # a vote outweighs any mean probability: two meek members outvote a confident one, where the mean does not
    confident = np.array([[0.98, 0.01, 0.01]], np.float32)
    meek = np.array([[0.4, 0.45, 0.15]], np.float32)
    assert combine([confident, meek, meek], [PROBS] * 3, "mean").argmax(axis=1).tolist() == [0]
    assert combine([confident, meek, meek], [PROBS] * 3, "vote").argmax(axis=1).tolist() == [1]


def test_vote_reads_logits_through_a_softmax_for_its_tie_break() -> None:
    # two members that disagree (one vote each): the tie goes to the higher mean probability, which for logits
    # is the softmax's: a = [3, 2.9, 2] -> p = [.440, .398, .162], votes 0; b = [0, -10, 0.9] ->
    # p = [.289, .000, .711], votes 2; mean p0 = .365 < mean p2 = .436 -> class 2 (the logits' mean would pick 0)
    a = np.array([[3.0, 2.9, 2.0]], np.float32)
    b = np.array([[0.0, -10.0, 0.9]], np.float32)
    got = combine([a, b], [LOGITS, LOGITS], "vote")
    mean = np.array([[0.44000202 + 0.28904670, 0.39813029 + 0.00001312, 0.16186770 + 0.71094017]]) / 2
    np.testing.assert_allclose(got, np.array([[1.0, 0.0, 1.0]]) + mean / 3, rtol=1e-5)
    assert got.argmax(axis=1).tolist() == [2]
    assert ((a + b) / 2).argmax(axis=1).tolist() == [0]
