"""The host lock: one trial at a time per host for every user, and a waiter is told who holds it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from inferlab.execute.trial_process import host_lock, host_lock_path


def test_the_lock_does_not_follow_tmpdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("INFERLAB_HOST_LOCK", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert host_lock_path() == Path("/tmp/inferlab-host.lock")  # every user's runs see the same one


def test_a_waiter_is_told_who_holds_the_lock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INFERLAB_HOST_LOCK", str(tmp_path / "host.lock"))
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with host_lock("run 20261202-abc, trial m onnxruntime/cpu b1 latency"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    told: list[str] = []
    got = threading.Event()

    def waiter() -> None:
        with host_lock("run 2", told.append):
            got.set()

    w = threading.Thread(target=waiter)
    w.start()
    deadline = time.monotonic() + 10
    while not told and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not got.is_set(), "the waiter must wait while the lock is held"
    assert len(told) == 1
    assert "run 20261202-abc, trial m onnxruntime/cpu b1 latency" in told[0]
    assert f"pid {os.getpid()}" in told[0] and "since 20" in told[0]
    release.set()
    t.join(10)
    w.join(10)
    assert got.is_set()
    assert (tmp_path / "host.lock").stat().st_mode & 0o777 == 0o666  # other users can take it too
