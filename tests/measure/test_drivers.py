"""The latency and throughput drivers on real sessions, in-process (the executor adds the isolation)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferlab import backends
from inferlab.backends.base import Session
from inferlab.measure.budget import QuietEvents, StopRule
from inferlab.measure.latency import measure_latency
from inferlab.measure.throughput import measure_throughput
from inferlab.models import resolve
from inferlab.models.inputs import make_pool, merge
from inferlab.models.introspect import declared_inputs
from inferlab.records.trial import MeasureSettings


class SleepSession(Session):
    """A session whose run takes a known time (a real sleep): checks the timing arithmetic."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.inputs, self.outputs = [], []
        self.calls = 0

    def run(self, prepared: Any) -> Any:
        self.calls += 1
        time.sleep(self.seconds)

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return {}


class Phases(QuietEvents):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def phase(self, name: str) -> None:
        self.seen.append(name)


def test_latency_respects_min_iterations_and_min_duration() -> None:
    s = SleepSession(0.002)
    settings = MeasureSettings(warmup_iterations=3, min_iterations=40, min_duration_s=0.05, max_duration_s=5)
    events = Phases()
    m = measure_latency(s, [{}], settings, 1, events)
    assert m.requests >= 40  # the iteration floor dominates here (40 x 2 ms > 50 ms)
    assert m.window_ns >= 0.05e9
    assert s.calls == m.requests + 1 + 3  # first inference and warm-up are not in the statistics
    assert np.median(m.latencies_ns) >= 2e6
    assert events.seen == ["warmup", "measure", "measured"]


def test_latency_respects_min_duration_when_it_dominates() -> None:
    s = SleepSession(0.001)
    settings = MeasureSettings(warmup_iterations=0, min_iterations=5, min_duration_s=0.3, max_duration_s=5)
    m = measure_latency(s, [{}], settings, 1, QuietEvents())
    assert m.window_ns >= 0.3e9
    assert m.requests > 5
    assert m.stop_reason == "min_iterations_and_duration"


def test_max_duration_stops_before_min_iterations() -> None:
    s = SleepSession(0.01)
    settings = MeasureSettings(warmup_iterations=0, min_iterations=10_000, min_duration_s=0, max_duration_s=0.3)
    m = measure_latency(s, [{}], settings, 1, QuietEvents())
    assert m.stop_reason == "max_duration"
    assert m.requests < 10_000


def test_ci_target_stops_early() -> None:
    rule = StopRule(MeasureSettings(min_iterations=10, min_duration_s=0, target_ci_rel_width=0.05), 0)
    tight = [1_000_000] * 100
    assert rule.check(100, 1, tight) == "ci_target"
    rng = np.random.default_rng(0)
    wide = list((rng.uniform(0.1, 10, 20) * 1e6).astype(int))
    assert rule.check(20, 1, wide) is None


def test_throughput_keeps_requests_in_flight() -> None:
    # 4 requests of 20 ms in flight on worker threads: about 4 / 0.02 = 200 requests/s.
    s = SleepSession(0.02)
    settings = MeasureSettings(warmup_iterations=4, min_iterations=20, min_duration_s=0.5, max_duration_s=5,
                               in_flight=4)
    m = measure_throughput(s, [{}], settings, 2, QuietEvents())
    rate = m.requests / (m.window_ns / 1e9)
    assert m.in_flight == 4
    assert 120 < rate < 210
    assert m.completions_ns is not None and m.completions_ns.size == m.requests


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_throughput_through_runtime_async(backend: str, tiny_models: dict[str, str]) -> None:
    art = resolve("tiny", tiny_models["tiny.onnx"])
    b = backends.get(backend)
    inputs = merge(declared_inputs(art) or (), (), 4, "tiny")
    session = b.load(art, "cpu", b.check_params("cpu", {}, "params"), inputs)
    prepared = [session.prepare(f) for f in make_pool(inputs, 4, 0)]
    settings = MeasureSettings(warmup_iterations=2, min_iterations=50, min_duration_s=0.3, in_flight=2)
    m = measure_throughput(session, prepared, settings, 4, QuietEvents())
    session.close()
    assert m.requests >= 50
    assert m.in_flight == 2
    assert np.all(m.latencies_ns > 0)


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small CNN (four 3x3 convolutions on 3x128x128, about 1-3 ms at batch 1 on one core): big enough that
    requests in flight can pay off, small enough for a test."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                          nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.Conv2d(128, 128, 3, 1, 1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)).eval()
    path = Path(tmp_path_factory.mktemp("cnn")) / "small_cnn.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, 128, 128),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=17, dynamo=False)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_default_throughput_mode_keeps_several_requests_in_flight(backend: str, small_cnn: str) -> None:
    # Each mode at its defaults, as a trial gets them (check_params and load with the mode). Whether throughput
    # mode is faster is a speed claim, measured in benchmarks/ (RESULTS.md, 2026-12-02); here: that its
    # requests really overlap (their latencies add up to more than the window), and latency mode's do not.
    art = resolve("cnn", small_cnn)
    b = backends.get(backend)
    inputs = merge(declared_inputs(art) or (), (), 1, "cnn")
    pool = make_pool(inputs, 8, 0)
    sessions = {mode: b.load(art, "cpu", b.check_params("cpu", {}, "params", mode=mode), inputs, mode=mode)
                for mode in ("latency", "throughput")}
    depth = sessions["throughput"].recommended_in_flight()
    assert depth > 1
    settings = MeasureSettings(warmup_iterations=5, min_iterations=20, min_duration_s=0.6, max_duration_s=10)
    overlap = {}
    for mode, session in sessions.items():
        driver = measure_latency if mode == "latency" else measure_throughput
        m = driver(session, [session.prepare(f) for f in pool], settings, 1, QuietEvents())
        overlap[mode] = float(m.latencies_ns.sum()) / m.window_ns
        session.close()
    assert overlap["latency"] <= 1.01
    assert overlap["throughput"] > 1.3, f"{depth} requests in flight overlapped only {overlap['throughput']:.2f}x"
