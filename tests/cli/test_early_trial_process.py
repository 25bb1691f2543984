"""A command that runs trials starts its first trial's process early; when the command ends without giving it a
trial (a user error before any trial), that process and its scratch folder are gone with it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psutil

RUNNER = "inferlab.execute.runner"


def _runners(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if RUNNER in " ".join(p.info["cmdline"] or ()) and p.environ().get("INFERLAB_TEST_MARK") == marker \
                    and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_a_command_that_fails_before_its_trial_leaves_no_trial_process(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-m", "inferlab.cli.main", "bench", str(tmp_path / "missing.onnx"),
                             "--backend", "null", "--db", str(tmp_path / "r.db")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "INFERLAB_TEST_MARK": marker})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "missing.onnx" in err, err
    assert _runners(marker) == []
    assert not [d for d in os.listdir(tempfile.gettempdir()) if d.startswith(f"inferlab-trial-{proc.pid}-")]
