"""GPU harness overhead (issue 13): inferlab's latency and throughput drivers against bare loops, on cuda:0.

One process, ResNet-50 (`torchvision.models.resnet50(weights=None)`), loaded once per case through inferlab's
torch backend; the bare loops run the very module (or captured CUDA graph) of that session on the same
prepared inputs (16 distinct tensors, rotated). Cases: eager and CUDA graph, batch 1 and 256, fp16. Methods,
alternated within each round (forward order, then reversed), medians over rounds:

  bare sync     per request `m(x); torch.cuda.synchronize()` timed with perf_counter_ns: the fair reference,
                since inferlab's latency is that of a synchronous request (it returns when outputs are complete);
                for a graph a request is `static.copy_(x); g.replay(); synchronize()`
  bare events   back-to-back `m(x)` (graph: copy + replay) with no synchronisation, CUDA events around the
                whole window: the pipelined lower bound (the next request's launches overlap the GPU work
                of the one before), reported for reference
  inferlab lat  measure_latency on the session: DLI's figure (median after dropping samples beyond 3 sigma)
  inferlab thr  measure_throughput on the session with in_flight 1: samples / wall time of the window

Eager batch 1 is launch-bound (the host CPU issues ~160 kernels per request) and its speed drifts by 10-20% over
seconds on the device machine, bare loops included; so rounds are short and many, and each ratio is taken
within a round (inferlab against the bare sync loop of the same round), then the median over rounds:
latency ratio = inferlab lat / bare sync median; throughput ratio = inferlab thr FPS / bare sync FPS (batch /
wall time per request of the bare loop). An interleaved check alternates request by request between the bare
step and `Session.run` (what latency mode times), which cancels any drift, and records what the drift follows:
the host CPU's launch time versus the wait for the GPU, the CPU the request ran on, the GPU's SM clock.
--null prints only inferlab's own cost per request (the null session, which returns at once) through the
latency loop and the throughput loop at one request in flight: no GPU needed.
--diagnose adds, for eager batch 1, a thread blocked on a pipe during inferlab's latency loop (as the trial
process's parent-watch thread is on stdin) and `bare sync` under no_grad instead of inference_mode.

    python benchmarks/gpu_overhead.py [--time 0.25] [--rounds 12] [--diagnose] [--json out.json]
    python benchmarks/gpu_overhead.py --null
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from inferlab import backends
from inferlab.measure.budget import QuietEvents
from inferlab.measure.latency import measure_latency
from inferlab.measure.stats import median_3sigma
from inferlab.measure.throughput import measure_throughput
from inferlab.models import resolve
from inferlab.models.inputs import make_pool, merge
from inferlab.models.introspect import declared_inputs
from inferlab.models.tensors import InputHint
from inferlab.records.trial import MeasureSettings

MODEL = "torchvision.models:resnet50"
Result = dict[str, float]


def load(device: str, batch: int, graphs: bool, dtype: str, model: str, size: int) -> tuple[Any, list[Any]]:
    art = resolve("resnet50", model, inputs=(InputHint("x", shape=(-1, 3, size, size)),))
    backend = backends.get("torch")
    params = backend.check_params(device, {"dtype": dtype, "cuda_graphs": graphs}, "params", mode="latency")
    inputs = merge(declared_inputs(art) or (), (), batch, "resnet50")
    session = backend.load(art, device, params, inputs, mode="latency")
    prepared = [session.prepare(f) for f in make_pool(inputs, 16, 0)]
    for x in prepared[:3]:
        session.run(x)  # a graph is captured on the first run; cuDNN picks its algorithms
    return session, prepared


def bare_step(session: Any) -> Callable[[Any], Any]:
    """One request's device work, as a user of the raw module (or of the captured graph) would write it."""
    if session._use_graphs:
        graph, static = session._graph, session._static_in

        def replay(x: Any) -> Any:
            for dst, src in zip(static, x, strict=True):
                dst.copy_(src, non_blocking=True)
            graph.replay()
        return replay
    module = session._module
    return lambda x: module(*x)


def bare_sync(torch: Any, step: Callable[[Any], Any], prepared: list[Any], seconds: float, batch: int,
              grad: Any = None) -> Result:
    grad = grad or torch.inference_mode
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    clock = time.perf_counter_ns
    n = len(prepared)
    samples = []
    with grad():
        start = clock()
        end = start + int(seconds * 1e9)
        i, t1 = 0, start
        while t1 < end:
            x = prepared[i % n]
            t0 = clock()
            step(x)
            sync()
            t1 = clock()
            samples.append(t1 - t0)
            i += 1
    wall = (t1 - start) / i
    return {"median_ms": float(np.median(samples)) / 1e6, "mean_ms": float(np.mean(samples)) / 1e6,
            "wall_ms": wall / 1e6, "fps": batch * 1e9 / wall, "n": i}


def bare_events(torch: Any, step: Callable[[Any], Any], prepared: list[Any], seconds: float, batch: int,
                per_request_ms: float) -> Result:
    n = len(prepared)
    count = max(10, int(seconds * 1e3 / max(per_request_ms, 1e-3)))
    with torch.inference_mode():
        if not torch.cuda.is_available():
            t0 = time.perf_counter_ns()
            for i in range(count):
                step(prepared[i % n])
            ms = (time.perf_counter_ns() - t0) / 1e6 / count
        else:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            a.record()
            for i in range(count):
                step(prepared[i % n])
            b.record()
            b.synchronize()
            ms = a.elapsed_time(b) / count
    return {"median_ms": ms, "mean_ms": ms, "wall_ms": ms, "fps": batch * 1e3 / ms, "n": count}


def settings(seconds: float, in_flight: int | None = None) -> MeasureSettings:
    return MeasureSettings(warmup_iterations=10, min_iterations=1, min_duration_s=seconds,
                           max_duration_s=seconds * 3, in_flight=in_flight)


def il_latency(session: Any, prepared: list[Any], seconds: float, batch: int) -> Result:
    m = measure_latency(session, prepared, settings(seconds), batch, QuietEvents())
    lat = m.latencies_ns.astype(np.float64)
    dli = median_3sigma(lat)[0]
    wall = m.window_ns / m.requests
    return {"median_ms": dli / 1e6, "mean_ms": float(lat.mean()) / 1e6, "wall_ms": wall / 1e6,
            "fps": batch * 1e9 / dli, "n": m.requests}


def il_throughput(session: Any, prepared: list[Any], seconds: float, batch: int) -> Result:
    m = measure_throughput(session, prepared, settings(seconds, in_flight=1), batch, QuietEvents())
    lat = m.latencies_ns.astype(np.float64)
    wall = m.window_ns / m.requests
    return {"median_ms": float(np.median(lat)) / 1e6, "mean_ms": float(lat.mean()) / 1e6,
            "wall_ms": wall / 1e6, "fps": m.requests * batch * 1e9 / m.window_ns, "n": m.requests}


class PipeWatcher:
    """A daemon thread blocked reading a pipe nobody writes to, as runner.py's parent-watch thread is on stdin."""

    def __enter__(self) -> PipeWatcher:
        self.r, self.w = os.pipe()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        with os.fdopen(self.r, "rb") as f:
            while f.read(1 << 12):
                pass

    def __exit__(self, *exc: object) -> None:
        os.close(self.w)
        self.thread.join()


def interleaved(torch: Any, session: Any, step: Callable[[Any], Any], prepared: list[Any], seconds: float,
                nvml: Any) -> dict[str, Any]:
    """Alternate request by request between the bare step (+ synchronize) and `Session.run`; for the bare
    requests also record the host's launch time (until `step` returns), the CPU it ran on and the SM clock."""
    import ctypes

    libc = ctypes.CDLL(None)
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    clock = time.perf_counter_ns
    run = session.run
    n = len(prepared)
    bare, ours, launch, cpus, clocks = [], [], [], [], []
    sm = 0
    end = clock() + int(seconds * 1e9)
    i = 0
    with torch.inference_mode():
        while clock() < end:
            x = prepared[i % n]
            if i % 2 == 0:
                cpu = libc.sched_getcpu()
                t0 = clock()
                step(x)
                t1 = clock()
                sync()
                t2 = clock()
                bare.append(t2 - t0)
                launch.append(t1 - t0)
                cpus.append(cpu)
                if nvml is not None and i % 20 == 0:
                    sm = nvml.nvmlDeviceGetClockInfo(nvml.handle, nvml.NVML_CLOCK_SM)
                clocks.append(sm)
            else:
                t0 = clock()
                run(x)
                ours.append(clock() - t0)
            i += 1
    b, o, la = np.asarray(bare) / 1e6, np.asarray(ours) / 1e6, np.asarray(launch) / 1e6
    by_cpu = {int(c): round(float(np.median(b[np.asarray(cpus) == c])), 3) for c in sorted(set(cpus))}
    by_clock = {int(c): round(float(np.median(b[np.asarray(clocks) == c])), 3) for c in sorted(set(clocks))}
    return {"bare_median_ms": float(np.median(b)), "run_median_ms": float(np.median(o)),
            "run_minus_bare_us": (float(np.median(o)) - float(np.median(b))) * 1e3,
            "ratio": float(np.median(o) / np.median(b)), "n": i,
            "bare_p10_p90_ms": [float(np.percentile(b, 10)), float(np.percentile(b, 90))],
            "launch_p10_p50_p90_ms": [float(np.percentile(la, q)) for q in (10, 50, 90)],
            "sync_wait_p10_p50_p90_ms": [float(np.percentile(b - la, q)) for q in (10, 50, 90)],
            "bare_median_ms_by_cpu": by_cpu, "bare_median_ms_by_sm_clock_mhz": by_clock}


def open_nvml() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return pynvml
    except Exception:  # no NVML here: no clock readings
        return None


def study(torch: Any, device: str, batch: int, graphs: bool, args: argparse.Namespace,
          diagnose: bool, nvml: Any) -> dict[str, Any]:
    session, prepared = load(device, batch, graphs, args.dtype, args.model, args.size)
    step = bare_step(session)
    secs = args.time
    warm = bare_sync(torch, step, prepared, 0.3, batch)
    methods: dict[str, Callable[[], Result]] = {
        "bare sync": lambda: bare_sync(torch, step, prepared, secs, batch),
        "bare events": lambda: bare_events(torch, step, prepared, secs, batch, warm["wall_ms"]),
        "inferlab lat": lambda: il_latency(session, prepared, secs, batch),
        "inferlab thr": lambda: il_throughput(session, prepared, secs, batch),
    }
    if diagnose:
        def watched() -> Result:
            with PipeWatcher():
                return il_latency(session, prepared, secs, batch)

        methods["bare sync no_grad"] = lambda: bare_sync(torch, step, prepared, secs, batch, grad=torch.no_grad)
        methods["inferlab lat + pipe thread"] = watched
    rounds: dict[str, list[Result]] = {k: [] for k in methods}
    names = list(methods)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            rounds[name].append(methods[name]())
    mixed = interleaved(torch, session, step, prepared, args.interleave, nvml) if args.interleave > 0 else None
    session.close()
    return {"rounds": rounds, "interleaved": mixed}


def null_cost(rounds: int = 7, seconds: float = 0.3) -> tuple[float, float]:
    """µs per request of the latency loop and of the throughput loop (1 in flight) around a session that
    returns at once: wall time of the window / requests, median over rounds."""
    from inferlab.backends.null import NullSession

    session = NullSession([])
    prepared: list[Any] = [{}] * 16
    lat, thr = [], []
    for _ in range(rounds):
        m = measure_latency(session, prepared, settings(seconds), 1, QuietEvents())
        lat.append(m.window_ns / m.requests / 1e3)
        m = measure_throughput(session, prepared, settings(seconds, in_flight=1), 1, QuietEvents())
        thr.append(m.window_ns / m.requests / 1e3)
    return statistics.median(lat), statistics.median(thr)


def med(rows: list[Result], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def paired(num: list[Result], den: list[Result], key: str) -> tuple[float, float, float]:
    """Median and quartiles over rounds of num[key] / den[key] within each round."""
    ratios = [a[key] / b[key] for a, b in zip(num, den, strict=True)]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return statistics.median(ratios), q[0], q[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=float, default=0.25, help="seconds per method per round")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--interleave", type=float, default=2.0, help="seconds of the interleaved check (0: none)")
    parser.add_argument("--batches", default="1,256")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--model", default=MODEL, help="a torch factory module:function (default: ResNet-50)")
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--diagnose", action="store_true", help="eager batch 1: variants that isolate a gap")
    parser.add_argument("--json", help="write every round's figures here")
    parser.add_argument("--null", action="store_true", help="only inferlab's own cost per request (no GPU)")
    args = parser.parse_args()
    lat_us, thr_us = null_cost()
    print(f"null session: {lat_us:.2f} µs per request through the latency loop, {thr_us:.2f} µs through the "
          "throughput loop at 1 in flight (wall time / requests)")
    if args.null:
        return 0
    try:
        import torch
        if args.model == MODEL:
            import torchvision  # noqa: F401
    except ImportError as exc:
        print(f"skipped: {exc.name} is not installed here (this study needs torch and torchvision)")
        return 0
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print(f"skipped: this torch build sees no CUDA device ({args.device} asked for)")
        return 0
    print(f"torch {torch.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          + (f"{torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()}" if cuda else "cpu"))
    nvml = open_nvml() if cuda else None
    batches = [int(b) for b in args.batches.split(",")]
    cases = [(g, b) for g in ((False, True) if cuda else (False,)) for b in batches]
    results: dict[str, dict[str, Any]] = {}
    for graphs, batch in cases:
        label = f"{'CUDA graph' if graphs else 'eager'} b{batch}"
        t0 = time.perf_counter()
        results[label] = study(torch, args.device, batch, graphs, args,
                               args.diagnose and not graphs and batch == 1, nvml)
        print(f"  {label}: {time.perf_counter() - t0:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"\n{args.model} {args.dtype} on {args.device}; {args.rounds} rounds x {args.time:g} s per method, "
          "order reversed every other round; figures: medians over rounds; ratios: median over rounds of the "
          "within-round ratio [quartiles]")
    print("| case | bare events b2b ms | bare sync median ms | inferlab latency ms (DLI) | latency ratio "
          "| bare sync FPS | inferlab throughput FPS (1 in flight) | throughput ratio | thr / lat-mode FPS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, res in results.items():
        r = res["rounds"]
        bs, il, it = r["bare sync"], r["inferlab lat"], r["inferlab thr"]
        lat, lq1, lq3 = paired(il, bs, "median_ms")
        thr, tq1, tq3 = paired(it, bs, "fps")
        tl = paired(it, il, "fps")[0]
        print(f"| {label} | {med(r['bare events'], 'wall_ms'):.3f} | {med(bs, 'median_ms'):.3f} | "
              f"{med(il, 'median_ms'):.3f} | {lat:.3f} [{lq1:.3f}..{lq3:.3f}] | {med(bs, 'fps'):.1f} | "
              f"{med(it, 'fps'):.1f} | {thr:.3f} [{tq1:.3f}..{tq3:.3f}] | {tl:.3f} |")
    print("\ninterleaved, request by request: bare step + synchronize vs Session.run (what latency mode times)")
    print("| case | bare median ms | Session.run median ms | Δ µs | ratio | bare launch p50 ms | sync wait p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, res in results.items():
        m = res["interleaved"]
        if m:
            print(f"| {label} | {m['bare_median_ms']:.3f} | {m['run_median_ms']:.3f} | {m['run_minus_bare_us']:+.1f} | "
                  f"{m['ratio']:.3f} | {m['launch_p10_p50_p90_ms'][1]:.3f} | {m['sync_wait_p10_p50_p90_ms'][1]:.3f} |")
    for label, res in results.items():
        m = res["interleaved"]
        if m:
            print(f"  {label}: bare p10/p90 {m['bare_p10_p90_ms']}, launch p10/50/90 {m['launch_p10_p50_p90_ms']}, "
                  f"sync wait p10/50/90 {m['sync_wait_p10_p50_p90_ms']}\n    by CPU {m['bare_median_ms_by_cpu']}\n"
                  f"    by SM clock MHz {m['bare_median_ms_by_sm_clock_mhz']}")
    print("\nevery method: median over rounds of (per-request median ms / mean ms / wall ms per request), "
          "and the spread of per-round medians")
    for label, res in results.items():
        for name, rows in res["rounds"].items():
            ms = [x["median_ms"] for x in rows]
            print(f"  {label:15s} {name:28s} median {med(rows, 'median_ms'):8.3f}  mean {med(rows, 'mean_ms'):8.3f}"
                  f"  wall {med(rows, 'wall_ms'):8.3f}  rounds {min(ms):.3f}..{max(ms):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
