"""Monitors run in the parent and sample the trial process by PID, never inside the measured process:
peak RSS and CPU utilisation (psutil), GPU memory, utilisation and energy (NVML), CPU package energy (RAPL).
Energy is taken over the measured window only, which the child announces."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)
RAPL_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class MonitorReadings:
    peak_rss_mb: float | None
    cpu_util_pct: float | None
    peak_gpu_mem_mb: float | None
    gpu_util_pct: float | None
    energy_j: float | None
    energy_source: str | None


class Rapl:
    """CPU package energy counters (intel-rapl:N), read when the kernel lets this user read them."""

    def __init__(self) -> None:
        self.zones: list[tuple[Path, int]] = []
        for zone in sorted(RAPL_ROOT.glob("intel-rapl:*")):
            if zone.name.count(":") != 1:
                continue  # sub-domains (core, uncore, dram) are inside the package figure
            counter = zone / "energy_uj"
            try:
                int(counter.read_text())
                wrap = int((zone / "max_energy_range_uj").read_text())
            except (OSError, ValueError):
                continue
            self.zones.append((counter, wrap))

    def read(self) -> list[int] | None:
        if not self.zones:
            return None
        try:
            return [int(c.read_text()) for c, _ in self.zones]
        except OSError:
            return None

    def joules(self, a: list[int], b: list[int]) -> float:
        total = 0
        for (_, wrap), x, y in zip(self.zones, a, b, strict=True):
            total += y - x if y >= x else y + wrap - x
        return total / 1e6


class Nvml:
    """GPU readings through NVML, when a driver is present."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nv = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # no driver, no library: no GPU readings
            self.handles = []

    def energy_mj(self) -> list[int] | None:
        if not self.handles:
            return None
        try:
            return [int(self.nv.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self.handles]
        except Exception:
            return None

    def process_memory_mb(self, pids: set[int]) -> float | None:
        if not self.handles:
            return None
        used = 0
        for h in self.handles:
            try:
                procs = self.nv.nvmlDeviceGetComputeRunningProcesses(h)
            except Exception:
                return None
            used += sum(p.usedGpuMemory or 0 for p in procs if p.pid in pids)
        return used / 2**20

    def utilisation(self) -> float | None:
        if not self.handles:
            return None
        try:
            return max(float(self.nv.nvmlDeviceGetUtilizationRates(h).gpu) for h in self.handles)
        except Exception:
            return None


class TrialMonitor:
    """Sampled by the executor while it waits for the trial process; windowed by the child's phases."""

    def __init__(self, pid: int, rapl: Rapl, nvml: Nvml) -> None:
        self.proc = psutil.Process(pid)
        self.rapl = rapl
        self.nvml = nvml
        self.peak_rss = 0
        self.rss = 0
        self.peak_gpu: float | None = None
        self.in_window = False
        self.cpu_samples: list[float] = []
        self.gpu_util: list[float] = []
        self.window: dict[str, Any] = {}
        self.proc.cpu_percent(None)

    def sample(self) -> None:
        try:
            with self.proc.oneshot():
                self.rss = self.proc.memory_info().rss
                self.peak_rss = max(self.peak_rss, self.rss)
                cpu = self.proc.cpu_percent(None)
        except psutil.Error:
            return
        if self.in_window:
            self.cpu_samples.append(cpu)
            util = self.nvml.utilisation()
            if util is not None:
                self.gpu_util.append(util)
        gpu = self.nvml.process_memory_mb({self.proc.pid})
        if gpu is not None:
            self.peak_gpu = max(self.peak_gpu or 0.0, gpu)

    def window_start(self) -> None:
        self.in_window = True
        self.proc.cpu_percent(None)
        self.window = {"t0": time.perf_counter(), "rapl0": self.rapl.read(), "nv0": self.nvml.energy_mj()}

    def window_end(self) -> None:
        if not self.in_window:
            return
        self.sample()
        self.in_window = False
        self.window.update(t1=time.perf_counter(), rapl1=self.rapl.read(), nv1=self.nvml.energy_mj())

    def readings(self, child_peak_rss_mb: float | None) -> MonitorReadings:
        energy = None
        sources = []
        w = self.window
        if w.get("rapl0") is not None and w.get("rapl1") is not None:
            energy = self.rapl.joules(w["rapl0"], w["rapl1"])
            sources.append("rapl")
        if w.get("nv0") is not None and w.get("nv1") is not None:
            energy = (energy or 0.0) + sum(b - a for a, b in zip(w["nv0"], w["nv1"], strict=True)) / 1e3
            sources.append("nvml")
        sampled = self.peak_rss / 2**20 if self.peak_rss else None
        peaks = [v for v in (sampled, child_peak_rss_mb) if v is not None]
        return MonitorReadings(
            peak_rss_mb=max(peaks) if peaks else None,
            cpu_util_pct=sum(self.cpu_samples) / len(self.cpu_samples) if self.cpu_samples else None,
            peak_gpu_mem_mb=self.peak_gpu,
            gpu_util_pct=sum(self.gpu_util) / len(self.gpu_util) if self.gpu_util else None,
            energy_j=energy,
            energy_source="+".join(sources) or None,
        )
