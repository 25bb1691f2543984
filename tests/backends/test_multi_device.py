"""inferlab's multi-device (`multi:A,B`): device lists, the dispatcher that sends each request to the first member
with a free slot, and a real trial on ONNX Runtime with two sessions sharing the CPU."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferlab import backends
from inferlab.backends.base import Session, SessionInfo
from inferlab.backends.multi import MultiSession, accepts, knob_device, members_of
from inferlab.cli.main import main
from inferlab.store import Store


def test_device_lists() -> None:
    assert members_of("multi:cuda:0,cpu") == ["cuda:0", "cpu"]
    assert members_of("MULTI:cpu, cpu") == ["cpu", "cpu"]
    assert members_of("cpu") is None and members_of("hetero:gpu,cpu") is None
    assert knob_device("multi:cuda:0,cpu") == "cuda:0" and knob_device("cpu") == "cpu"
    ort = backends.get("onnxruntime")
    assert accepts(ort, "multi:cpu,cpu") and accepts(ort, "multi:cuda:0,cpu")
    assert not accepts(ort, "multi:cpu") and not accepts(ort, "multi:cpu,npu")
    assert not accepts(ort, "multi:cpu,multi:cpu,cpu")


class _Timed(Session):
    """A session that takes a fixed time per request, releasing the GIL as runtimes do: it tests the
    dispatcher's scheduling, not a runtime."""

    def __init__(self, seconds: float) -> None:
        self.inputs, self.outputs, self.info = [], [], SessionInfo()
        self.seconds = seconds
        self.ran = 0
        self._count = threading.Lock()

    def run(self, prepared: Any) -> Any:
        time.sleep(self.seconds)
        with self._count:
            self.ran += 1
        return prepared

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return {"y": np.asarray(raw)}


def test_requests_go_to_whichever_member_is_free_so_the_faster_takes_more() -> None:
    fast, slow = _Timed(0.002), _Timed(0.008)
    multi = MultiSession([("a", fast), ("b", slow)])
    prepared = multi.prepare({"x": np.zeros(1)})
    multi.start_async(2)
    done = threading.Semaphore(0)
    for _ in range(200):
        multi.wait_slot()
        multi.submit(prepared, lambda exc: done.release())
    multi.wait_all()
    multi.stop_async()
    for _ in range(200):
        assert done.acquire(timeout=10)
    assert fast.ran + slow.ran == 200
    assert fast.ran > 2.5 * slow.ran  # 4× faster: about 160 against 40
    figures = multi.member_figures(200, 1.0, 1)
    assert [f.requests for f in figures] == [fast.ran, slow.ran]
    assert abs(sum(f.share for f in figures) - 1) < 1e-9
    fast_ms, slow_ms = figures[0].latency_median_ms, figures[1].latency_median_ms
    assert fast_ms is not None and slow_ms is not None and fast_ms < slow_ms


def test_synchronous_runs_take_turns_and_outputs_come_from_the_member_that_ran() -> None:
    a, b = _Timed(0), _Timed(0)
    multi = MultiSession([("a", a), ("b", b)])
    outs = [multi.outputs_of(multi.run(multi.prepare({"x": np.zeros(1)}))) for _ in range(6)]
    assert (a.ran, b.ran) == (3, 3) and all("y" in o for o in outs)


@pytest.mark.slow
def test_two_sessions_sharing_the_cpu_report_their_parts(tiny_models: dict[str, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "m.db"
    assert main(["bench", tiny_models["tiny.onnx"], "--backend", "onnxruntime", "--device", "multi:cpu,cpu",
                 "--mode", "throughput", "--time", "0.5", "--db", str(db)]) == 0
    (r,) = Store(str(db)).results()
    assert r.status == "ok" and r.spec.device == "multi:cpu,cpu"
    assert [m.device for m in r.members] == ["cpu", "cpu"] and [m.member for m in r.members] == [0, 1]
    assert sum(m.requests for m in r.members) == r.requests and all(m.requests > 0 for m in r.members)
    assert sum(m.throughput_sps or 0 for m in r.members) == pytest.approx(r.throughput_sps, rel=0.02)
    # each session has half the cores' threads
    assert r.effective["cpu#0.intra_op_threads"] == r.effective["cpu#1.intra_op_threads"] >= 1
    assert any("2 CPU session(s) beside 0 accelerator(s)" in w for w in r.warnings)
    out = capsys.readouterr().out
    assert "multi-device members" in out and "cpu #1" in out
    for name in ("r.md", "r.html"):
        assert main(["report", "--db", str(db), "-o", str(tmp_path / name)]) == 0
    md, html = (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()
    assert "## Multi-device members" in md and f"| {r.members[1].requests} |" in md
    assert 'id="members-table"' in html and "cpu #0" in html
    # compare puts each member beside the other trial's
    from inferlab.records.trial import TrialResult
    from inferlab.report.compare import compare

    single = TrialResult(spec=r.spec, status="ok", throughput_sps=100.0)
    rows, _ = compare(single, r)
    members = [row for row in rows if row.what.startswith("member")]
    assert [row.what for row in members] == ["member 0", "member 1"]
    assert members[0].a == "multi:cpu,cpu: 100.0 /s" and members[1].b.startswith(f"cpu: {r.members[1].share:.0%}")
