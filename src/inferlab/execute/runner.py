"""One trial, inside its own fresh process: resolve inputs, load (timed), measure, report over the pipe.

Run as `python -m inferlab.execute.runner --fd N [--scratch DIR]` with one line {"spec": TrialSpec JSON,
"log_dir": ...} on stdin; `log_dir` is where the trial keeps files (LoadGen's logs). The parent keeps stdin open
while it waits: end-of-file there means the parent is gone, and the trial removes DIR and kills itself."""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inferlab import backends
from inferlab.accuracy.datasets import Dataset, reopen
from inferlab.accuracy.evaluator import dataset_feeds, evaluate
from inferlab.backends.base import Session
from inferlab.backends.ensemble import EnsembleSession
from inferlab.backends.multi import open_session
from inferlab.errors import BackendError, InferlabError, InputSpecError
from inferlab.execute import ensemble
from inferlab.execute.protocol import Channel, encode_result
from inferlab.measure.budget import Events
from inferlab.measure.latency import measure_latency
from inferlab.measure.summary import summarise
from inferlab.measure.throughput import measure_throughput
from inferlab.models.inputs import feeding_notes, make_pool, merge
from inferlab.models.introspect import declared_inputs, stored_precision
from inferlab.models.tensors import TensorSpec
from inferlab.records.accuracy import AccuracyResult
from inferlab.records.trial import TrialResult, TrialSpec, is_scenario, utc_now


def _scenario(spec: TrialSpec, session: Session, declared: Sequence[TensorSpec], events: Events,
              log_dir: Path) -> dict[str, Any]:
    from inferlab.measure.mlperf.driver import ScenarioRun, status_of

    assert spec.loadgen is not None
    m = spec.measure
    run = ScenarioRun(session, spec.mode, spec.loadgen, merge(declared, spec.model.inputs, 1, spec.model.name),  # type: ignore[arg-type]
                      spec.batch, m.in_flight, m.warmup_iterations, m.seed, spec.model.name, m.min_duration_s,
                      log_dir, events)
    fields, outcome = run.run()
    status, reason = status_of(outcome)
    return {**fields, "status": status, "reason": reason, "loadgen": outcome}


def _accuracy(spec: TrialSpec, session: Session, ds: Dataset, events: Events,
              log_dir: Path | None) -> AccuracyResult:
    assert spec.accuracy is not None
    events.phase("accuracy")
    return evaluate(session, ds, spec.accuracy, spec.batch, spec.model.name, log_dir,
                    progress=lambda done, total: events.progress(done, total, done))


def _speed(spec: TrialSpec, session: Session, inputs: list[TensorSpec], ds: Dataset | None,
           events: Events) -> dict[str, Any]:
    if ds is not None and spec.accuracy is not None:  # real data: the dataset's first samples, batched
        pool = dataset_feeds(session, ds, spec.accuracy, spec.batch, spec.measure.input_pool, spec.model.name)
    else:
        pool = make_pool(inputs, spec.measure.input_pool, spec.measure.seed)
    prepared = [session.prepare(feeds) for feeds in pool]
    driver = measure_latency if spec.mode == "latency" else measure_throughput
    measurement = driver(session, prepared, spec.measure, spec.batch, events)
    return {"status": "ok", **summarise(measurement, spec.measure.min_iterations)}


def random_inputs_note(inputs: Sequence[TensorSpec], error: str = "") -> str | None:
    """When a run fails, the integer inputs that got random values may be why (a sample rate, a token id past
    the vocabulary): name them, those the runtime's error mentions first, and how to give real values."""
    random_ints = [s for s in inputs if s.value is None and s.data is None
                   and (s.dtype == "bool" or np.issubdtype(np.dtype(s.dtype), np.integer))]
    random_ints.sort(key=lambda s: s.name not in error and s.name.rsplit("_", 1)[0] not in error)
    if not random_ints:
        return None
    named = ", ".join(f"{s.name} ({s.dtype}{' scalar' if not s.shape else ''}, "
                      f"{s.value_range()[0]:g}..{s.value_range()[1]:g})" for s in random_ints)
    first = random_ints[0].name
    return (f"these inputs were filled with random values: {named}; if the model needs particular values, give "
            f"them (bench: --input {first}=VALUE or {first}=LOW..HIGH; config: models[].inputs.{first}.value or "
            ".range)")


def pin(count: int) -> str:
    """Pin this process to the first `count` CPUs it may use, before the runtime starts its threads (they
    inherit the mask). Returns the CPU list, as the effective setting to record."""
    allowed = sorted(os.sched_getaffinity(0))
    if count > len(allowed):
        raise BackendError(f"params.cpus: {count} CPUs asked for, but this process may use {len(allowed)} "
                           f"({_cpu_list(allowed)}); use at most {len(allowed)}")
    chosen = allowed[:count]
    os.sched_setaffinity(0, chosen)
    return _cpu_list(chosen)


def _cpu_list(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def run(spec: TrialSpec, events: Events, log_dir: Path | None = None) -> TrialResult:
    """Measure one trial in this process. User errors propagate as InferlabError."""
    started = utc_now()
    backend = backends.get(spec.backend)
    params = spec.param_dict
    pinned = pin(int(params.get("cpus") or 0)) if params.get("cpus") else None
    declared = declared_inputs(spec.model)  # an ensemble's model is its first member's file
    assert declared is not None
    each: list[list[TensorSpec]] = []  # an ensemble's members' inputs
    if spec.ensemble is not None:
        each = ensemble.member_inputs(spec)
        inputs = [s for specs in each for s in specs]
    else:
        inputs = merge(declared, spec.model.inputs, spec.batch, spec.model.name)
    events.phase("load")
    if spec.ensemble is None:  # a conversion the runtime needs is made (or found) first: load time is loading
        backend.convert(spec.model, inputs)
    t0 = time.perf_counter_ns()
    session = (ensemble.open_ensemble(backend, spec, params, each) if spec.ensemble is not None
               else open_session(backend, spec.model, spec.device, params, inputs, spec.mode, spec.affinity))
    load_s = (time.perf_counter_ns() - t0) / 1e9
    try:
        ds = reopen(spec.accuracy.dataset) if spec.accuracy is not None else None  # read and checked once
        if is_scenario(spec.mode):
            fields = _scenario(spec, session, declared, events,
                               log_dir or Path(tempfile.mkdtemp(prefix="inferlab-mlperf-")))
        elif spec.mode == "accuracy":
            fields = {"status": "ok"}
        elif isinstance(session, EnsembleSession):
            fields = ensemble.speed(spec, session, each, ds, events)
        else:
            fields = _speed(spec, session, inputs, ds, events)
            if fields.get("duration_s"):
                fields["members"] = session.member_figures(int(fields["requests"]), float(fields["duration_s"]),
                                                           spec.batch)
        if ds is not None and isinstance(session, EnsembleSession):
            fields["accuracy"], fields["members"] = ensemble.accuracy(spec, session, ds, events,
                                                                      fields.get("members", ()))
        elif ds is not None:  # on the same session, after any speed measurement
            fields["accuracy"] = _accuracy(spec, session, ds, events, log_dir)
    except Exception as exc:
        note = random_inputs_note(inputs, str(exc))
        if note is None or isinstance(exc, InferlabError):
            raise
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise InputSpecError(f"{spec.backend} failed to run the model ({first}); {note}") from exc
    finally:
        session.close()
    if spec.profile and fields.get("status") == "ok":  # after the measured session is gone
        from inferlab.execute.analysis import analyses

        extra = analyses(spec, backend, params, inputs, fields, log_dir, events)
        fields["warnings"] = (*fields.get("warnings", ()), *extra.pop("warnings", ()))
        fields.update(extra)
    stored = stored_precision(spec.model)
    runtime = {**session.info.runtime, **({"model_precision": stored} if stored else {})}
    effective = {**session.info.effective, **({"cpus": pinned} if pinned else {})}
    notes = [*session.info.notes, *feeding_notes(inputs, [o.name for o in session.outputs])]
    fields["warnings"] = (*fields.get("warnings", ()), *notes)
    return TrialResult(spec=spec, load_s=load_s, effective=effective, runtime=runtime,
                       started_at=started, finished_at=utc_now(), **fields)


def _die_with_parent(scratch: str | None) -> None:
    """Block on stdin until the parent closes it or dies, then remove the scratch folder and kill this trial's
    process group (this process and anything a runtime started), so no trial outlives its orchestrator.

    Reads the file descriptor, not sys.stdin's buffer: a daemon thread blocked inside the buffer holds its
    lock, and the interpreter's exit then waits a second for it and aborts (SIGABRT, a core dump) after
    every trial."""
    try:
        while os.read(sys.stdin.fileno(), 1 << 12):
            pass
    except (OSError, ValueError):
        pass
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inferlab-runner")
    parser.add_argument("--fd", type=int, required=True, help="file descriptor of the message pipe")
    parser.add_argument("--scratch", help="the parent's scratch folder for this trial, removed if the parent dies")
    args = parser.parse_args(argv)
    channel = Channel(args.fd)
    line = sys.stdin.buffer.readline()  # a process started early waits here, its imports done
    if not line:  # the parent closed stdin before giving a trial: nothing to do
        if args.scratch:
            shutil.rmtree(args.scratch, ignore_errors=True)
        return 0
    job = json.loads(line)
    threading.Thread(target=_die_with_parent, args=(args.scratch,), daemon=True, name="parent-watch").start()
    spec = TrialSpec.from_json(job["spec"])
    log_dir = Path(job["log_dir"]) if job.get("log_dir") else None
    try:
        result = run(spec, channel, log_dir)
    except InferlabError as exc:
        channel.send("error", reason=str(exc), origin="user")
        return 3
    except Exception as exc:
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        channel.send("error", reason=f"{type(exc).__name__}: {first}"[:500], origin="internal")
        return 4
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    channel.send("result", result=encode_result(result), child_peak_rss_mb=peak_kb / 1024)
    return 0


def _exit(code: int) -> None:
    """End the trial process: everything it owes the parent is sent. The objects of a runtime and of SciPy
    are left to the kernel instead of the cyclic collector, which would walk them for a good part of a second
    at exit; exit handlers still run."""
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
