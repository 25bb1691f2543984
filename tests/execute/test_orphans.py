"""A trial process dies with its orchestrator: SIGKILL (no handler runs) or SIGTERM (handled as Ctrl-C) of
`inferlab run` during a latency trial and during a LoadGen trial leaves no trial process alive 1 s later, and
its scratch folder is gone."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

SLOW = "{name: slow, path: 'tests.fixtures.faulty_models:slow_forward', inputs: {x: {shape: [-1, 3, 16, 16]}}}"
CONFIGS = {
    "latency": f"""
name: orphan-latency
models: [{SLOW}]
backends: [{{name: torch, params: {{threads: 1}}}}]
mode: latency
measure: {{warmup_iterations: 1, min_iterations: 5, min_duration_s: 30, max_duration_s: 40, timeout_s: 60}}
""",
    "loadgen": f"""
name: orphan-loadgen
models: [{SLOW}]
backends: [{{name: torch, params: {{threads: 1}}}}]
scenario: SingleStream
loadgen: {{min_duration_s: 30, min_query_count: 100}}
measure: {{warmup_iterations: 1, timeout_s: 90}}
""",
}


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _trials(marker: str) -> list[psutil.Process]:
    """Trial processes started by the orchestrator that carries `marker` in its environment."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "inferlab.execute.runner" in " ".join(p.info["cmdline"] or ()) and \
                    p.environ().get("INFERLAB_TEST_MARK") == marker:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _run_stored(db: Path) -> bool:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute("select count(*) from runs").fetchone()[0] > 0
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or its tables not yet
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("kind", ["latency", "loadgen"])
def test_no_trial_outlives_its_orchestrator(tmp_path: Path, kind: str, sig: signal.Signals) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIGS[kind])
    marker = f"{os.getpid()}-{kind}-{sig.name}"
    env = {**os.environ, "INFERLAB_TEST_MARK": marker}
    proc = subprocess.Popen([sys.executable, "-m", "inferlab.cli.main", "run", str(cfg), "--db",
                             str(tmp_path / "r.db")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    trials: list[psutil.Process] = []
    while not trials and time.monotonic() < deadline and proc.poll() is None:
        trials = _trials(marker)
        time.sleep(0.1)
    assert trials, "the trial process never started"
    # The trial's process may have been started early, while the command still imports and plans: the trial
    # begins once the run is stored.
    while not _run_stored(tmp_path / "r.db") and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(3)  # into the trial: loaded and measuring
    scratch = [Path(tempfile.gettempdir(), d) for d in os.listdir(tempfile.gettempdir())
               if d.startswith(f"inferlab-trial-{proc.pid}-")]
    assert scratch, "the trial's scratch folder is named after its orchestrator"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    # A trial process started early for the next trial may still be importing on a busy machine: it exits
    # when it reads that its parent is gone, so wait for that (bounded), then nothing marked may remain.
    deadline = time.monotonic() + 30
    while (_trials(marker) or any(_alive(t) for t in trials)) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [t for t in trials if _alive(t)]
    assert not alive, f"{len(alive)} trial process(es) outlived the orchestrator ({sig.name})"
    assert not _trials(marker)
    assert not any(d.exists() for d in scratch), "the trial's scratch folder was left behind"
    if sig == signal.SIGTERM:  # handled as Ctrl-C: the run is marked and the user told how to go on
        assert proc.returncode == 130
        assert b"--resume" in (proc.stderr.read() if proc.stderr else b"")
