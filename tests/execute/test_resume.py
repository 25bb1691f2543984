"""Resume after the orchestrator is killed with SIGKILL mid-run: finished trials stay, the rest run."""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from inferlab import api
from inferlab.config import load, load_text
from inferlab.errors import Interrupted
from inferlab.execute.base import QuietReporter
from inferlab.records.trial import TrialSpec
from inferlab.store import Store

pytestmark = pytest.mark.slow

CONFIG = """
name: resume
models:
  - {name: slow, path: 'tests.fixtures.faulty_models:slow_forward', inputs: {x: {shape: [-1, 3, 16, 16]}}}
backends: [{name: torch, params: {threads: 1}}]
batch: [1, 2, 3, 4]
measure: {warmup_iterations: 1, min_iterations: 5, min_duration_s: 1.0, max_duration_s: 5, timeout_s: 60}
"""


def _count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return int(con.execute(f"select count(*) from {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_resume_after_sigkill(tmp_path: Path) -> None:
    cfg = tmp_path / "resume.yaml"
    cfg.write_text(CONFIG)
    db = tmp_path / "r.db"
    cmd = [sys.executable, "-m", "inferlab.cli.main", "run", str(cfg), "--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while _count(db, "results") < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _count(db, "results")
    assert 0 < done_before < 4, "the kill should land mid-run"

    store = Store(str(db))
    (info,) = store.runs()
    assert info.status == "running" and info.trials == 4
    first = {r.spec.key(): r.finished_at for r in store.results(info.id)}
    assert all(r.status == "ok" for r in store.results(info.id))  # every stored row is whole

    out = subprocess.run([*cmd, "--resume", info.id], capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr
    results = store.results(info.id)
    assert len(results) == 4 and all(r.status == "ok" for r in results)
    assert sorted(r.spec.batch for r in results) == [1, 2, 3, 4]
    for r in results:  # finished trials were skipped, not re-measured
        if r.spec.key() in first:
            assert r.finished_at == first[r.spec.key()]
    assert store.run_info(info.id).status == "finished"
    assert _count(db, "results") == 4


def test_resume_with_a_different_config_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text(CONFIG.replace("batch: [1, 2, 3, 4]", "batch: [1]"))
    db = tmp_path / "r.db"
    base = [sys.executable, "-m", "inferlab.cli.main", "run", str(cfg), "--db", str(db)]
    assert subprocess.run(base, capture_output=True, timeout=120, check=False).returncode == 0
    run_id = Store(str(db)).runs()[0].id
    cfg.write_text(CONFIG)
    out = subprocess.run([*base, "--resume", run_id], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert "planned from a different config" in out.stderr


def test_ctrl_c_stops_the_trial_and_says_how_to_resume(tmp_path: Path) -> None:
    import psutil

    cfg = tmp_path / "resume.yaml"
    cfg.write_text(CONFIG)
    db = tmp_path / "r.db"
    proc = subprocess.Popen([sys.executable, "-m", "inferlab.cli.main", "run", str(cfg), "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while _count(db, "results") < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    trials = []
    while not trials and time.monotonic() < deadline:  # wait for the next trial's process
        trials = psutil.Process(proc.pid).children(recursive=True)
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; finished trials are stored" in stderr and "--resume" in stderr
    assert trials and not any(t.is_running() and t.status() != psutil.STATUS_ZOMBIE for t in trials)
    (info,) = Store(str(db)).runs()
    assert info.status == "interrupted" and 1 <= info.done < 4


class _CtrlC(QuietReporter):
    """A reporter whose user presses Ctrl-C as trial number `at` (from 0) starts."""

    def __init__(self, at: int) -> None:
        self.at = at

    def trial_started(self, index: int, total: int, spec: TrialSpec) -> None:
        if index == self.at:
            raise KeyboardInterrupt


QUICK = {"warmup_iterations": 1, "min_iterations": 5, "min_duration_s": 0.05, "max_duration_s": 1, "timeout_s": 60}


def _null_config(tmp_path: Path, model: str, **extra: object) -> Path:
    cfg = tmp_path / "my config.yaml"  # a space: the hint must still paste
    cfg.write_text(yaml.safe_dump({"name": "hint", "models": [{"path": model}], "backends": [{"name": "null"}],
                                   "batch": [1, 2], "measure": QUICK, **extra}))
    return cfg


def test_interrupted_run_names_a_command_to_paste_and_resume_counts_what_it_skips(
        tiny_models: dict[str, str], tmp_path: Path) -> None:
    cfg = _null_config(tmp_path, tiny_models["tiny.onnx"])
    db = tmp_path / "r.db"
    with pytest.raises(Interrupted) as exc:
        api.run(cfg, db=str(db), reporter=_CtrlC(at=1))
    (info,) = Store(str(db)).runs()
    assert (info.status, info.done) == ("interrupted", 1)
    command = f"inferlab run {shlex.quote(str(cfg))} --db {db} --resume {info.id}"
    assert str(exc.value).endswith(f"continue it with `{command}`"), str(exc.value)
    assert shlex.split(command)[2] == str(cfg)

    run = api.run(cfg, db=str(db), resume=info.id)
    assert run.resumed_skipped == 1 and len(run.results) == 2
    again = api.run(cfg, db=str(db), resume=info.id)  # nothing left: every trial is skipped
    assert again.resumed_skipped == 2
    assert [r.finished_at for r in again.results] == [r.finished_at for r in run.results]


def test_the_caller_names_the_resume_command(tiny_models: dict[str, str], tmp_path: Path) -> None:
    exp = load_text(_null_config(tmp_path, tiny_models["tiny.onnx"]).read_text())  # not from a file
    with pytest.raises(Interrupted, match=r"continue it by running the same experiment again with resume='"):
        api.execute(exp, db=str(tmp_path / "a.db"), reporter=_CtrlC(at=0))
    with pytest.raises(Interrupted, match=r"continue it with `inferlab bench m.onnx --backend null --resume \d{8}-"):
        api.execute(exp, db=str(tmp_path / "b.db"), reporter=_CtrlC(at=0),
                    resume_command="inferlab bench m.onnx --backend null")


def test_a_resumed_tuning_counts_what_it_kept(tiny_models: dict[str, str], tmp_path: Path) -> None:
    cfg = _null_config(tmp_path, tiny_models["tiny.onnx"], mode="latency",
                       tune={"max_trials": 1, "confirm": 0, "sampler": "grid", "baseline": False})
    db = tmp_path / "t.db"
    with pytest.raises(Interrupted) as exc:
        api.tune(load(cfg), db=str(db), reporter=_CtrlC(at=0))
    (info,) = Store(str(db)).runs()
    assert info.status == "interrupted"
    assert str(exc.value).endswith(f"`inferlab tune {shlex.quote(str(cfg))} --db {db} --resume {info.id}`")

    first = api.tune(load(cfg), db=str(db), resume=info.id)
    assert first.resumed_skipped == 0 and first.outcome.measured == 1
    cfg.write_text(cfg.read_text().replace("max_trials: 1", "max_trials: 2"))
    second = api.tune(load(cfg), db=str(db), resume=info.id)
    assert second.resumed_skipped == 1 and second.outcome.measured == 2
