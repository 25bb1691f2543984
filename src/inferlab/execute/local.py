"""The local executor: each trial in a fresh child process, one at a time per host, monitored by PID.

A crash, a hang past the trial's time-out or an out-of-memory kill becomes a result row with its reason; a
trial-files folder that cannot be written is the environment's fault, not the trial's: it raises ArtifactsError."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inferlab import backends
from inferlab.errors import ArtifactsError
from inferlab.execute.protocol import decode_result
from inferlab.measure.monitors import Nvml, Rapl, TrialMonitor
from inferlab.records.trial import Status, TrialResult, TrialSpec, is_scenario, utc_now

log = logging.getLogger(__name__)
SAMPLE_S = 0.1  # monitor sampling period while waiting for the child
HOST_LOCK = Path(tempfile.gettempdir()) / "inferlab-host.lock"


class Reporter(Protocol):
    """Where the executor reports progress (the CLI renders it with rich)."""

    def trial_started(self, index: int, total: int, spec: TrialSpec) -> None: ...
    def trial_phase(self, name: str) -> None: ...
    def trial_progress(self, elapsed_s: float, planned_s: float, requests: int) -> None: ...
    def trial_finished(self, result: TrialResult) -> None: ...


class QuietReporter:
    def trial_started(self, index: int, total: int, spec: TrialSpec) -> None:
        return None

    def trial_phase(self, name: str) -> None:
        return None

    def trial_progress(self, elapsed_s: float, planned_s: float, requests: int) -> None:
        return None

    def trial_finished(self, result: TrialResult) -> None:
        return None


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    """One trial at a time per host, across every inferlab process on it."""
    with HOST_LOCK.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


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


class LocalExecutor:
    def __init__(self, reporter: Reporter | None = None, environment_id: str | None = None,
                 artifacts: Path | None = None) -> None:
        """`artifacts`: where trials keep their files (LoadGen's logs), one folder per trial key."""
        self.reporter = reporter or QuietReporter()
        self.environment_id = environment_id
        self.artifacts = artifacts
        self.rapl = Rapl()
        self.nvml = Nvml()

    def run(self, specs: Iterable[TrialSpec]) -> Iterator[TrialResult]:
        todo = list(specs)
        for i, spec in enumerate(todo):
            self.reporter.trial_started(i, len(todo), spec)
            result = self.run_one(spec)
            self.reporter.trial_finished(result)
            yield result

    def run_one(self, spec: TrialSpec) -> TrialResult:
        """Run one trial. Raises ArtifactsError, storing nothing of the trial, when its files cannot be written
        (checked before it starts, and again when it fails: the folder may have failed under it)."""
        folder = self.artifacts / spec.key() if self.artifacts is not None and keeps_files(spec) else None
        if folder is not None:
            check_writable(folder)
        with host_lock():
            result = self._spawn(spec)
        if folder is not None and result.status == "failed":
            check_writable(folder)
        return result

    def _spawn(self, spec: TrialSpec) -> TrialResult:
        env = dict(os.environ)
        env.update(backends.get(spec.backend).thread_environment(spec.param_dict))
        env["PYTHONUNBUFFERED"] = "1"
        read_fd, write_fd = os.pipe()
        started = utc_now()
        with tempfile.TemporaryDirectory(prefix="inferlab-trial-") as tmp:
            log_path = Path(tmp) / "child.log"
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "inferlab.execute.runner", "--fd", str(write_fd)],
                    stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                    pass_fds=(write_fd,), start_new_session=True)
            os.close(write_fd)
            assert proc.stdin is not None
            try:
                log_dir = str(self.artifacts / spec.key()) if self.artifacts is not None else None
                proc.stdin.write(json.dumps({"spec": spec.to_json(), "log_dir": log_dir}).encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                outcome = self._wait(proc, read_fd, spec)
            except BaseException:  # Ctrl-C or any failure here: never leave the trial running behind us
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            finally:
                os.close(read_fd)
            return self._result(spec, proc, outcome, log_path, started)

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
