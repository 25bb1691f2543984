"""The node-local part of every executor: one trial in a fresh child process, alone on its host (the host
lock), monitored by PID, with time-out and memory limit enforced and its result assembled.

A crash, a hang past the trial's time-out or an out-of-memory kill becomes a result row with its reason; a
trial-files folder that cannot be written is the environment's fault, not the trial's: it raises ArtifactsError.
The child dies with its parent: it watches its stdin, which the parent holds open, and on end-of-file (the
parent exited, even by SIGKILL) removes its scratch folder and kills its process group."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferlab import backends
from inferlab.errors import ArtifactsError, Cancelled
from inferlab.execute.base import QuietReporter, Reporter
from inferlab.execute.child import SCRATCH_PREFIX, Child, trial_environment
from inferlab.execute.child import take as early_child
from inferlab.execute.protocol import decode_result
from inferlab.measure.monitors import Nvml, Rapl, TrialMonitor
from inferlab.records.trial import Status, TrialResult, TrialSpec, is_scenario, utc_now

log = logging.getLogger(__name__)
SAMPLE_S = 0.1  # monitor sampling period while waiting for the child


def host_lock_path() -> Path:
    """Where the host's lock lives: one fixed path every user's runs see (not under $TMPDIR, which differs
    between users and shells); INFERLAB_HOST_LOCK moves it (a test's simulated host, a read-only /tmp)."""
    return Path(os.environ.get("INFERLAB_HOST_LOCK") or "/tmp/inferlab-host.lock")


def _holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return "another inferlab process"
    alive = data.get("pid") and _alive(int(data["pid"]))
    return (f"{data.get('owner') or 'another inferlab process'} (pid {data.get('pid', '?')}, since "
            f"{data.get('since', '?')}{'' if alive else ', exiting'})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def host_lock(owner: str, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """One trial at a time per host, across every inferlab process of every user on it. When another holds
    the lock, `waiting` is told who (owner, pid, since when) before this blocks; the holder's details are
    written into the lock file for the next waiter."""
    path = host_lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):  # another user's file: leave its mode alone
        os.fchmod(fd, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = f"waiting for this host's lock ({path}), held by {_holder(fd)}"
            log.info(message)
            if waiting is not None:
                waiting(message)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"owner": owner, "pid": os.getpid(), "since": utc_now()}).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def keeps_files(spec: TrialSpec) -> bool:
    """Whether a trial writes into its artifacts folder: LoadGen's logs, or accuracy outputs kept for comparison."""
    return is_scenario(spec.mode) or (spec.accuracy is not None and spec.accuracy.keep_outputs)


def check_writable(folder: Path) -> None:
    """Create `folder` and write a byte in it, or raise ArtifactsError naming the folder and the fix."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".inferlab-probe-") as probe:
            probe.write(b"\0")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        fix = ("free space there, or set INFERLAB_ARTIFACTS to a folder with room" if full else
               "make it writable, or set INFERLAB_ARTIFACTS to a writable folder")
        raise ArtifactsError(f"{folder}: trial files (LoadGen logs, accuracy outputs) cannot be written there "
                             f"({exc.strerror or exc}); {fix}") from None


def check_artifacts(root: Path, specs: Iterable[TrialSpec]) -> None:
    """Before a run: the artifacts folder must be writable when any of its trials keeps files."""
    if any(keeps_files(s) for s in specs):
        check_writable(root)


def sweep_scratch() -> int:
    """Remove scratch folders of trial processes whose parent is gone (left by a parent killed before its
    child could clean up). Returns how many were removed."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        pid = folder.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(t.strip() for t in text[-lines:] if t.strip())[:400]


@dataclass
class _Outcome:
    """What the parent saw of one trial process."""

    monitor: TrialMonitor
    phase: str = "start"
    result: dict[str, Any] | None = None   # the child's "result" message
    error: dict[str, Any] | None = None    # the child's "error" message
    timed_out: bool = False
    out_of_memory: bool = False


class TrialProcess:
    """Runs trials on this host, one at a time, each in a fresh `python -m inferlab.execute.runner` process.

    `owner`: who holds the host lock while a trial runs (e.g. "run 3f2a…"), shown to anyone waiting for it.
    `artifacts`: where trials keep their files (LoadGen's logs), one folder per trial key."""

    def __init__(self, reporter: Reporter | None = None, environment_id: str | None = None,
                 artifacts: Path | None = None, owner: str = "an inferlab run") -> None:
        self.reporter = reporter or QuietReporter()
        self.environment_id = environment_id
        self.artifacts = artifacts
        self.compiled: Path | None = None  # where runtimes keep what they compile for later trials (a tuning)
        self.owner = owner
        self.stop: threading.Event | None = None  # set from another thread: the trial running is stopped
        self.rapl = Rapl()
        self.nvml = Nvml()
        sweep_scratch()

    def run(self, spec: TrialSpec) -> TrialResult:
        """Run one trial. Raises ArtifactsError, storing nothing of the trial, when its files cannot be written
        (checked before it starts, and again when it fails: the folder may have failed under it)."""
        folder = self.artifacts / spec.key() if self.artifacts is not None and keeps_files(spec) else None
        if folder is not None:
            check_writable(folder)
        with host_lock(f"{self.owner}, trial {spec.label()}", self.reporter.trial_phase):
            result = self._spawn(spec)
        if folder is not None and result.status == "failed":
            check_writable(folder)
        return result

    def _spawn(self, spec: TrialSpec) -> TrialResult:
        backend = backends.get(spec.backend)
        extra = backend.thread_environment(spec.param_dict)
        if self.compiled is not None:
            extra.update(backend.cache_environment(str(self.compiled)))
        env = trial_environment(extra)
        started = utc_now()
        child = early_child(env) or Child.start(env)  # a fresh process either way: one trial each
        proc = child.proc
        assert proc.stdin is not None
        try:
            try:
                try:  # one line, and stdin stays open: the child exits when it reads end-of-file
                    log_dir = str(self.artifacts / spec.key()) if self.artifacts is not None else None
                    proc.stdin.write(json.dumps({"spec": spec.to_json(), "log_dir": log_dir}).encode() + b"\n")
                    proc.stdin.flush()
                except BrokenPipeError:
                    pass
                outcome = self._wait(proc, child.read_fd, spec)
            except BaseException:  # Ctrl-C, SIGTERM or any failure here: never leave the trial running
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            finally:
                child.close()
            return self._result(spec, proc, outcome, child.log_path, started)
        finally:
            child.cleanup()

    def _wait(self, proc: subprocess.Popen[bytes], read_fd: int, spec: TrialSpec) -> _Outcome:
        monitor = TrialMonitor(proc.pid, self.rapl, self.nvml)
        sel = selectors.DefaultSelector()
        sel.register(read_fd, selectors.EVENT_READ)
        deadline = time.monotonic() + spec.measure.timeout_s
        limit = spec.measure.memory_limit_mb
        buffer = b""
        outcome = _Outcome(monitor)
        eof = False
        while not eof:
            if self.stop is not None and self.stop.is_set():
                raise Cancelled(f"trial {spec.label()} cancelled")  # the caller kills the trial's process
            over = limit is not None and monitor.rss / 2**20 > limit
            if over or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                outcome.out_of_memory, outcome.timed_out = over, not over
                break
            for _key, _ in sel.select(timeout=SAMPLE_S):
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    eof = True
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._handle(json.loads(line), outcome)
            monitor.sample()
        sel.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return outcome

    def _handle(self, msg: dict[str, Any], outcome: _Outcome) -> None:
        kind = msg.get("t")
        if kind == "phase":
            outcome.phase = msg["name"]
            if msg["name"] == "measure":
                outcome.monitor.window_start()
            elif msg["name"] == "measured":
                outcome.monitor.window_end()
            self.reporter.trial_phase(msg["name"])
        elif kind == "progress":
            self.reporter.trial_progress(msg["elapsed_s"], msg["planned_s"], msg["requests"])
        elif kind == "result":
            outcome.result = msg
        elif kind == "error":
            outcome.error = msg

    def _result(self, spec: TrialSpec, proc: subprocess.Popen[bytes], outcome: _Outcome,
                log_path: Path, started: str) -> TrialResult:
        monitor = outcome.monitor
        finished = utc_now()
        status: Status
        if outcome.result is not None:
            msg = outcome.result
            result = decode_result(msg["result"])
            r = monitor.readings(msg.get("child_peak_rss_mb"))
            per_sample = r.energy_j / result.samples if r.energy_j is not None and result.samples else None
            return result.with_(peak_rss_mb=r.peak_rss_mb, cpu_util_pct=r.cpu_util_pct,
                                peak_gpu_mem_mb=r.peak_gpu_mem_mb, gpu_util_pct=r.gpu_util_pct,
                                energy_j=r.energy_j, energy_j_per_sample=per_sample,
                                energy_source=r.energy_source, environment_id=self.environment_id,
                                started_at=started, finished_at=finished)
        peak = monitor.readings(None).peak_rss_mb
        if outcome.timed_out:
            status = "timeout"
            reason = f"timed out after {spec.measure.timeout_s:g} s in phase '{outcome.phase}'"
        elif outcome.out_of_memory:
            status = "failed"
            reason = (f"out of memory: RSS passed measure.memory_limit_mb {spec.measure.memory_limit_mb:g} "
                      f"(peak seen {peak or 0:.0f} MB) in phase '{outcome.phase}'")
        elif outcome.error is not None:
            status = "failed"
            reason = str(outcome.error["reason"])
        elif proc.returncode is not None and proc.returncode < 0:
            status = "failed"
            sig = _signal_name(proc.returncode)
            hint = " (out of memory?)" if sig == "SIGKILL" else ""
            reason = f"crashed: killed by {sig}{hint} in phase '{outcome.phase}'"
        else:
            status = "failed"
            tail = _tail(log_path)
            reason = f"exited with code {proc.returncode} without a result" + (f": {tail}" if tail else "")
        return TrialResult(spec=spec, status=status, reason=reason, peak_rss_mb=peak, started_at=started,
                           finished_at=finished, environment_id=self.environment_id)
