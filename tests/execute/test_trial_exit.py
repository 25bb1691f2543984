"""A trial process ends cleanly once its result is sent, while its parent still holds its stdin open (as the
executor does): exit code 0, not an abort at interpreter shutdown."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from pathlib import Path

from inferlab.config import load_text, plan
from tests.conftest import FAST_MEASURE


def _spec_json(model: str) -> dict[str, object]:
    exp = load_text(f"models: [{{path: '{model}'}}]\nbackends: [{{name: 'null'}}]\nmeasure: {FAST_MEASURE}\n")
    (spec,) = plan(exp).specs
    return spec.to_json()


def test_the_trial_process_exits_with_0_after_its_result(tiny_models: dict[str, str], tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "inferlab.execute.runner", "--fd", str(write_fd)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            pass_fds=(write_fd,), start_new_session=True)
    os.close(write_fd)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"spec": _spec_json(tiny_models["tiny.onnx"]), "log_dir": None}).encode() + b"\n")
    proc.stdin.flush()  # and stdin stays open, as the executor keeps it until the trial has ended
    messages, buffer = [], b""
    with selectors.DefaultSelector() as sel:
        sel.register(read_fd, selectors.EVENT_READ)
        while sel.select(timeout=120):
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            buffer += chunk
    os.close(read_fd)
    messages = [json.loads(line)["t"] for line in buffer.splitlines()]
    try:
        code = proc.wait(timeout=60)
    finally:
        proc.stdin.close()
    assert messages[-1] == "result"
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, stderr
    assert "Fatal Python error" not in stderr


def test_a_trial_process_given_no_trial_exits_quietly() -> None:
    read_fd, write_fd = os.pipe()
    proc = subprocess.run([sys.executable, "-m", "inferlab.execute.runner", "--fd", str(write_fd)],
                          stdin=subprocess.DEVNULL, capture_output=True, pass_fds=(write_fd,), timeout=120)
    os.close(write_fd)
    assert os.read(read_fd, 1 << 16) == b""  # no message
    os.close(read_fd)
    assert proc.returncode == 0 and proc.stderr == b""
