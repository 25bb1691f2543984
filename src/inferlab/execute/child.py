"""Starting a trial process, and one started early: a fresh `python -m inferlab.execute.runner` that imports
its modules while the command is still importing and planning, then waits for its one trial on stdin.

Stdlib only: the command-line entry point imports this before anything else, so that the process starts at
once. A process started early serves one trial, never more (each trial still gets a fresh process), and only
a trial whose environment is the one it was started with (a backend's thread variables are read when the
runtime loads); it is dropped when its parent exits."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SCRATCH_PREFIX = "inferlab-trial-"


def trial_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a trial process: this one's, the trial's own variables, unbuffered output."""
    env = dict(os.environ)
    env.update(extra or {})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Child:
    """A started trial process: its stdin (the job goes in, then it stays open: end-of-file tells the child
    its parent is gone), the read end of its message pipe, and its scratch folder with its output log."""

    proc: subprocess.Popen[bytes]
    read_fd: int
    env: dict[str, str]
    scratch: tempfile.TemporaryDirectory[str] = field(repr=False)

    @property
    def log_path(self) -> Path:
        return Path(self.scratch.name) / "child.log"

    @classmethod
    def start(cls, env: dict[str, str]) -> Child:
        # Named by this process's pid, so that a sweep can tell an orphan's folder (execute/trial_process.py).
        scratch = tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
        read_fd, write_fd = os.pipe()
        try:
            with (Path(scratch.name) / "child.log").open("wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "inferlab.execute.runner", "--fd", str(write_fd), "--scratch",
                     scratch.name],
                    stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                    pass_fds=(write_fd,), start_new_session=True)
        except BaseException:
            os.close(read_fd)
            scratch.cleanup()
            raise
        finally:
            os.close(write_fd)
        return cls(proc, read_fd, env, scratch)

    def close(self) -> None:
        """Close our ends of its pipes (a child still waiting for its trial then exits)."""
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()

    def cleanup(self) -> None:
        self.scratch.cleanup()


_early: Child | None = None


def start_early() -> None:
    """Start the next trial's process now, with this process's environment, so that its imports overlap the
    caller's. Does nothing when one is already waiting."""
    global _early
    if _early is None:
        _early = Child.start(trial_environment())
        atexit.register(_drop_early)


def take(env: dict[str, str]) -> Child | None:
    """The process started early, if it is alive and was started with exactly `env`; it is then no longer
    waiting (it serves this one trial)."""
    global _early
    child = _early
    if child is None or child.env != env or child.proc.poll() is not None:
        return None
    _early = None
    return child


def _drop_early() -> None:
    """At exit, a process started early and never given a trial is killed: it has only imported modules (it
    would go by itself at end-of-file on its stdin, but perhaps only once its imports are done)."""
    global _early
    child, _early = _early, None
    if child is not None:
        child.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=5)
        child.cleanup()
