"""The analyses a trial runs after its measured window (`profile:`), in the trial's own process: the per-layer
profile on a second session loaded with the runtime's profiler on, the runtime's optimised graph, and the
roofline (the device's roofs measured through the same runtime and configuration, and the model's work)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from inferlab.analyze.graph import write_runtime_graph
from inferlab.analyze.roofline import Micro, micros, peaks_from, place
from inferlab.backends.base import Backend, LayerTiming, Session
from inferlab.errors import first_line
from inferlab.measure.budget import Events
from inferlab.measure.latency import measure_latency
from inferlab.measure.summary import summarise
from inferlab.measure.throughput import measure_throughput
from inferlab.models.convert import cache_dir
from inferlab.models.inputs import make_pool
from inferlab.models.introspect import concrete_inputs, stored_precision
from inferlab.models.tensors import TensorSpec
from inferlab.records.analysis import LayerProfile, LayerRecord, Peaks, Roofline
from inferlab.records.trial import MeasureSettings, Scalar, TrialSpec, utc_now

log = logging.getLogger(__name__)

# A profiled run: a few warm-ups, then at least this many inferences and this long, at most the caps (a
# runtime's trace grows with every inference: ONNX Runtime writes a hundred MB a second on a tiny model).
PROFILE_WARMUP = 3
PROFILE_MIN_ITERATIONS = 20
PROFILE_MIN_S = 0.5
PROFILE_MAX_ITERATIONS = 200
PROFILE_MAX_S = 10.0

# The micro-benchmarks' windows: long enough for a stable rate, short beside a trial; the best of a few
# windows is the roof (a peak is what the device can do: a window that other load slowed says less about it).
MICRO = MeasureSettings(warmup_iterations=3, min_iterations=5, min_duration_s=0.5, max_duration_s=3.0,
                        input_pool=2)
MICRO_WINDOWS = 3


def analyses(spec: TrialSpec, backend: Backend, params: Mapping[str, Scalar], inputs: list[TensorSpec],
             measured: Mapping[str, Any], log_dir: Path | None, events: Events) -> dict[str, Any]:
    """The result fields the trial's `profile` asks for. An analysis that fails becomes a warning: the
    measurement it follows stands."""
    out: dict[str, Any] = {}
    warnings: list[str] = []
    if "layers" in spec.profile:
        try:
            out["layers"], graph = layers(spec, backend, params, inputs, log_dir, events)
            if graph is not None:
                out["graph_file"] = str(graph)
        except Exception as exc:  # a profiler's failure must not cost the measured figures
            log.debug("layer profile failed", exc_info=True)
            warnings.append(f"profile layers: {backend.name} could not profile this model ({first_line(exc, 300)})")
    if "roofline" in spec.profile:
        sps = measured.get("throughput_sps")
        if not sps:
            warnings.append("profile roofline: the trial has no throughput to place under the roofs")
        else:
            try:
                out["roofline"] = roofline(spec, backend, params, inputs, float(sps), events)
            except Exception as exc:
                log.debug("roofline failed", exc_info=True)
                warnings.append(f"profile roofline: could not measure it ({first_line(exc, 300)})")
    if warnings:
        out["warnings"] = tuple(warnings)
    return out


def layers(spec: TrialSpec, backend: Backend, params: Mapping[str, Scalar], inputs: list[TensorSpec],
           log_dir: Path | None, events: Events) -> tuple[LayerProfile, Path | None]:
    """Per-layer times per inference, from a profiled session run synchronously (the measured session is
    closed by then); the runtime's optimised graph is written beside the trial's other files."""
    events.phase("profile")
    session = backend.load(spec.model, spec.device, params, inputs, mode=spec.mode, profile=True)
    try:
        prepared = [session.prepare(f) for f in make_pool(inputs, 4, spec.measure.seed)]
        for i in range(PROFILE_WARMUP):
            session.run(prepared[i % len(prepared)])
        session.layer_profile()  # drop the warm-ups
        walls = _profiled_runs(session, prepared)
        timings = session.layer_profile()
        graph = write_runtime_graph(session, log_dir / "graph", spec.model.name) if log_dir is not None else None
    finally:
        session.close()
    return normalise(backend.name, timings, len(walls), statistics.median(walls)), graph


def _profiled_runs(session: Session, prepared: Sequence[Any]) -> list[float]:
    walls: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter_ns()
        session.run(prepared[len(walls) % len(prepared)])
        walls.append((time.perf_counter_ns() - t0) / 1e6)
        elapsed = time.perf_counter() - start
        if (elapsed >= PROFILE_MAX_S or len(walls) >= PROFILE_MAX_ITERATIONS
                or (len(walls) >= PROFILE_MIN_ITERATIONS and elapsed >= PROFILE_MIN_S)):
            return walls


def normalise(runtime: str, timings: Sequence[LayerTiming], iterations: int, wall_ms: float) -> LayerProfile:
    """The runtime's per-layer totals as the common record: per inference, with each layer's share."""
    ordered = sorted(timings, key=lambda t: t.order)
    total = sum(t.time_ms for t in ordered) / iterations
    layers = tuple(LayerRecord(t.name, t.op_type, t.kernel, t.precision, t.time_ms / iterations,
                               (t.time_ms / iterations) / total if total else 0.0, i,
                               t.cpu_ms / iterations if t.cpu_ms is not None else None, t.device)
                   for i, t in enumerate(ordered))
    notes = () if layers else (f"{runtime} reported no layers",)
    return LayerProfile(runtime, iterations, total, wall_ms, layers, notes)


def roofline(spec: TrialSpec, backend: Backend, params: Mapping[str, Scalar], inputs: list[TensorSpec],
             throughput_sps: float, events: Events) -> Roofline:
    """The device's roofs through this runtime and configuration, and where the trial sits under them."""
    from inferlab.analyze.complexity import count

    events.phase("roofline")
    work = count(spec.model, inputs)
    stored = _stored(spec)
    # a quantized model computes its heavy layers in int8 whatever the runtime's float precision knob says
    precision = "int8" if stored == "int8" else backend.precision_of(params) or stored or "fp32"
    peaks = measure_peaks(spec, backend, params, precision, events)
    # Traffic of one batch: the weights once (its samples share them), every activation written and read once.
    per_batch_bytes = work.weight_bytes + 2 * work.activation_bytes
    return place(work.flops / spec.batch, per_batch_bytes / spec.batch, work.counted_by, throughput_sps, peaks)


def _stored(spec: TrialSpec) -> str | None:
    p = stored_precision(spec.model)
    return {"f32": "fp32", "f16": "fp16"}.get(p or "", p)


def measure_peaks(spec: TrialSpec, backend: Backend, params: Mapping[str, Scalar], precision: str,
                  events: Events) -> Peaks:
    """The roofs for the trial's runtime, device, knobs, driver and precision: measured once on this host and
    runtime version (the GEMM and the stream run through them), then read back by every later trial."""
    kept = _peaks_file(spec, backend, params, precision)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return Peaks.from_json(json.loads(kept.read_text()))
    with tempfile.TemporaryDirectory(prefix="inferlab-roofline-") as tmp:
        gemm, stream = micros(backend.formats, spec.device, precision, Path(tmp))
        rates = [_runs_per_s(spec, backend, params, m, events) for m in (gemm, stream)]
    peaks = peaks_from(backend.name, spec.device, precision, gemm, rates[0], stream, rates[1], utc_now())
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next trial a measurement
        kept.parent.mkdir(parents=True, exist_ok=True)
        tmp_file = kept.with_suffix(f".{os.getpid()}.tmp")
        tmp_file.write_text(json.dumps(peaks.to_json()))
        tmp_file.replace(kept)
    return peaks


def _peaks_file(spec: TrialSpec, backend: Backend, params: Mapping[str, Scalar], precision: str) -> Path:
    what = [socket.gethostname(), backend.name, backend.version(), spec.device, spec.mode, precision,
            sorted((k, str(v)) for k, v in params.items()), spec.measure.in_flight]
    key = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:20]
    return cache_dir() / "peaks" / f"{backend.name}-{key}.json"


def _runs_per_s(spec: TrialSpec, backend: Backend, params: Mapping[str, Scalar], micro: Micro,
                events: Events) -> float:
    specs = concrete_inputs(micro.artifact, 1)
    session = backend.load(micro.artifact, spec.device, params, specs, mode=spec.mode)
    try:
        prepared = [session.prepare(f) for f in make_pool(specs, MICRO.input_pool, spec.measure.seed)]
        driver = measure_throughput if spec.mode == "throughput" else measure_latency
        settings = replace(MICRO, in_flight=spec.measure.in_flight)
        rates = [float(summarise(driver(session, prepared, settings, 1, events), settings.min_iterations)
                       ["throughput_sps"]) for _ in range(MICRO_WINDOWS)]
    finally:
        session.close()
    return max(rates)
