"""A trial process started early (while the command imports and plans) serves one trial, fresh, only when its
environment is the trial's; one never given a trial is gone when its parent exits."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from inferlab.config import load_text, plan
from inferlab.execute import child
from inferlab.execute.trial_process import TrialProcess
from inferlab.records.trial import TrialSpec
from tests.conftest import FAST_MEASURE


def _specs(model: str, backend: str = "'null'", params: str = "{}", batches: str = "[1, 2]") -> list[TrialSpec]:
    text = (f"models: [{{path: '{model}'}}]\nbackends: [{{name: {backend}, params: {params}}}]\n"
            f"batch: {batches}\nmeasure: {FAST_MEASURE}\n")
    return plan(load_text(text)).specs


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[child.Child]]:
    """Every trial process started, in order; no early one left behind by the test, nor one an earlier test of
    this pytest process left waiting (a command run in-process starts one)."""
    child._drop_early()
    seen: list[child.Child] = []
    start = child.Child.start.__func__  # type: ignore[attr-defined]

    def recording(cls: type[child.Child], env: dict[str, str]) -> child.Child:
        c = start(cls, env)
        seen.append(c)
        return c

    monkeypatch.setattr(child.Child, "start", classmethod(recording))
    yield seen
    child._drop_early()


def test_the_early_process_serves_the_first_trial_only(tiny_models: dict[str, str], tmp_path: Path,
                                                       started: list[child.Child],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLAB_HOST_LOCK", str(tmp_path / "host.lock"))
    specs = _specs(tiny_models["tiny.onnx"])
    child.start_early()
    assert len(started) == 1
    process = TrialProcess()
    first = process.run(specs[0])
    assert len(started) == 1  # the first trial ran in the process started early ...
    assert started[0].proc.returncode is not None  # ... which has ended with it
    second = process.run(specs[1])
    assert len(started) == 2 and started[1].proc.pid != started[0].proc.pid  # the next: a fresh process
    assert first.status == second.status == "ok"
    assert child._early is None


def test_a_trial_with_its_own_thread_variables_gets_a_process_of_its_own(
        tiny_models: dict[str, str], tmp_path: Path, started: list[child.Child],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLAB_HOST_LOCK", str(tmp_path / "host.lock"))
    (spec,) = _specs(tiny_models["tiny.onnx"], "onnxruntime", "{intra_op_threads: 1}", "[1]")
    child.start_early()
    early = child._early
    result = TrialProcess().run(spec)
    assert result.status == "ok"
    assert len(started) == 2 and started[1].env["OMP_NUM_THREADS"] == "1"  # started with the trial's variables
    assert "OMP_NUM_THREADS" not in started[0].env and child._early is early  # the early one still waits


EXIT_EARLY = ("import inferlab; from inferlab.execute import child; inferlab.start_trial_process(); "
              "print(child._early.proc.pid, child._early.scratch.name, flush=True)")


def test_an_early_process_given_no_trial_is_gone_with_its_parent() -> None:
    out = subprocess.run([sys.executable, "-c", EXIT_EARLY], capture_output=True, text=True, check=True, timeout=120)
    pid, scratch = out.stdout.split()
    assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    assert not Path(scratch).exists()
