"""The model panel, benchmarked as a new user would: `inferlab bench` with command-line flags only (the lines of
benchmarks/panel.py), on ONNX Runtime and OpenVINO (PyTorch for the .pt2 twins). The models whose inputs are
hardest (a state off axis 0 beside an int64 scalar; three int64 inputs sharing a sequence) run in latency and
throughput modes and MLPerf's Offline scenario; the others in throughput mode, to keep the suite short on
two cores (benchmarks/panel.py runs every model in every mode). Every trial must measure; Offline must be
VALID."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inferlab.store import Store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import panel  # noqa: E402  (benchmarks/panel.py: the bench lines)
from build_panel import build  # noqa: E402


@pytest.fixture(scope="module")
def panel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("panel")
    build(out, formats=("onnx", "pt2"))  # what the bench lines name; OpenVINO reads the .onnx (no .xml needed)
    return out


# The same lines at smaller images than the benchmark's, so the suite stays quick on two cores.
SMALL = {"detector": "--shape images=1x3x64x64", "ocr_det": "--shape x=1x3x64x64", "ocr_rec": "--shape x=1x3x48x64"}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(panel.FLAGS))
def test_panel_model_from_flags_alone(panel_dir: Path, tmp_path: Path, name: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(panel, "PANEL_DIR", panel_dir)
    monkeypatch.setitem(panel.FLAGS, name, SMALL.get(name, panel.FLAGS[name]))
    db = str(tmp_path / "r.db")
    modes = ("--mode", "throughput")  # each model once; the modes are covered by tests/e2e/test_experiment.py
    lines = panel.commands(name, 0.3, db, modes)
    assert len(lines) == (1 if name in panel.NO_PT2 else 2)
    for cmd in lines:
        cmd = [sys.executable, "-m", "inferlab.cli.main", *cmd[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    store = Store(db)
    try:
        results = [r for info in store.runs() for r in store.results(info.id)]
    finally:
        store.close()
    backends = {"onnxruntime", "openvino"} | (set() if name in panel.NO_PT2 else {"torch"})
    assert {r.spec.backend for r in results} == backends
    assert len(results) == len(backends)
    for r in results:
        assert r.status == "ok", (r.spec.label(), r.reason)
        assert r.throughput_sps and r.throughput_sps > 0
        if r.spec.mode == "Offline":
            assert r.loadgen is not None and r.loadgen.validity == "VALID"
