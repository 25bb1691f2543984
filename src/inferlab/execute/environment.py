"""The environment fingerprint: hardware, OS, Python, runtime versions, inferlab version and git SHA."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import threading
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

from inferlab import backends

PACKAGES = ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino", "torch", "onnxscript")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[dict[str, Any]]:
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h).total
            out.append({"index": i, "name": name if isinstance(name, str) else name.decode(),
                        "memory_mb": int(mem / 2**20),
                        "driver": driver if isinstance(driver, str) else driver.decode()})
        return out
    except Exception:  # no NVIDIA driver here
        return []


def _git_sha() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


_collecting = threading.Lock()


def collect() -> dict[str, Any]:
    """What this machine and software stack are; the same dict for the same environment. Collected once per
    process (a run's results all carry its id); a call while `collect_soon` is at work waits for it."""
    with _collecting:
        return _collect()


def collect_soon() -> None:
    """Start collecting in the background (git and the package metadata take a tenth of a second), so that
    it overlaps what the caller does before it needs the fingerprint."""
    threading.Thread(target=collect, name="inferlab-environment", daemon=True).start()


@cache
def _collect() -> dict[str, Any]:
    from inferlab import __version__

    mem = psutil.virtual_memory().total
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cpu_cores": psutil.cpu_count(logical=False),
        "cpu_threads": psutil.cpu_count(logical=True),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem / 2**30, 1),
        "gpus": _gpus(),
        "os": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": _versions(),
        "backends": {n: backends.get(n).version() for n in backends.names()},
        "inferlab": __version__,
        "git_sha": _git_sha(),
    }


def fingerprint(env: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]
