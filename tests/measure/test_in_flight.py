"""Requests in flight through Session's default async path: one request runs inline on the driver's thread
(the same work as latency mode, nothing around it but the driver's own bookkeeping), several run on worker
threads bounded by the depth. Speed lives in benchmarks/ (gpu_overhead.py, overhead.py), not here."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from inferlab.backends.base import Session
from inferlab.measure.budget import QuietEvents
from inferlab.measure.latency import measure_latency
from inferlab.measure.throughput import measure_throughput
from inferlab.records.trial import MeasureSettings
from tests.fixtures.devices import needs_cuda


class Recording(Session):
    """Records which thread ran each request and how many ran at once; fails on request `fail_at` if set."""

    def __init__(self, seconds: float = 0.0, fail_at: int | None = None) -> None:
        self.inputs, self.outputs = [], []
        self.seconds = seconds
        self.fail_at = fail_at
        self.threads: list[threading.Thread] = []
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def run(self, prepared: Any) -> Any:
        with self.lock:
            self.threads.append(threading.current_thread())
            if self.fail_at is not None and len(self.threads) == self.fail_at:
                raise RuntimeError("request failed")
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return prepared

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return {}


SHORT = MeasureSettings(warmup_iterations=3, min_iterations=30, min_duration_s=0.05, max_duration_s=5)


def test_one_request_in_flight_runs_inline_and_completes_within_submit() -> None:
    s = Recording()
    s.start_async(1)
    done: list[BaseException | None] = []
    for i in range(5):
        s.wait_slot()
        s.submit(i, done.append)
        assert len(done) == i + 1  # complete when submit returns: nothing is left in flight
    s.wait_all()
    s.stop_async()
    assert done == [None] * 5
    assert set(s.threads) == {threading.main_thread()}


def test_one_request_in_flight_reports_a_failure_to_its_callback() -> None:
    s = Recording(fail_at=2)
    s.start_async(1)
    done: list[BaseException | None] = []
    for i in range(3):
        s.wait_slot()
        s.submit(i, done.append)
    s.wait_all()
    assert done[0] is None and isinstance(done[1], RuntimeError) and done[2] is None


def test_several_in_flight_stay_within_the_depth_and_wait_all_waits_for_them() -> None:
    s = Recording(seconds=0.01)
    s.start_async(3)
    done: list[BaseException | None] = []
    for i in range(12):
        s.wait_slot()
        s.submit(i, done.append)
    s.wait_all()
    assert len(done) == 12  # every request completed before wait_all returned
    s.stop_async()
    assert 1 < s.most <= 3
    assert threading.main_thread() not in s.threads


def test_throughput_mode_with_one_in_flight_does_latency_modes_work() -> None:
    # the same requests on the same thread as latency mode; every completion counted and timed
    settings = replace(SHORT, in_flight=1)
    s = Recording(seconds=0.001)
    m = measure_throughput(s, [{}], settings, 2, QuietEvents())
    assert m.in_flight == 1
    assert set(s.threads) == {threading.main_thread()}
    assert m.requests == m.latencies_ns.size == m.completions_ns.size >= 30
    assert np.all(np.diff(m.completions_ns) > 0)  # one after another
    assert np.all(m.latencies_ns >= 1e6)  # each request's latency covers its run
    lat = measure_latency(Recording(seconds=0.001), [{}], SHORT, 2, QuietEvents())
    assert lat.requests >= 30


def test_throughput_mode_with_one_in_flight_raises_a_failed_request() -> None:
    settings = replace(SHORT, in_flight=1)
    with pytest.raises(RuntimeError, match="request failed"):
        measure_throughput(Recording(fail_at=20), [{}], settings, 1, QuietEvents())



@pytest.mark.gpu
@needs_cuda
def test_torch_cuda_one_in_flight_runs_on_the_callers_stream() -> None:
    # throughput mode at one request in flight runs the forward pass where latency mode does: the calling thread
    # and its current stream, synchronised before the request completes (no side stream, no worker thread)
    import torch

    from inferlab.backends.base import SessionInfo
    from inferlab.backends.pt import TorchSession

    module = torch.nn.Linear(64, 64).to("cuda:0").eval()
    s = TorchSession(module, "cuda:0", torch.float32, False, False, True, [], SessionInfo(), 1)
    prepared = [(torch.rand(8, 64, device="cuda:0"),) for _ in range(4)]
    settings = MeasureSettings(warmup_iterations=3, min_iterations=20, min_duration_s=0.05, max_duration_s=5,
                               in_flight=1)
    m = measure_throughput(s, prepared, settings, 8, QuietEvents())
    assert m.requests >= 20 and m.in_flight == 1
    assert getattr(s._local, "stream", None) is None  # no per-thread side stream was made
    out = s.run(prepared[0])
    with torch.no_grad():
        torch.testing.assert_close(out, module(prepared[0][0]))
    s.close()
