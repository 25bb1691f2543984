"""One trial, inside its own fresh process: resolve inputs, load (timed), measure, report over the pipe.

Run as `python -m inferlab.execute.runner --fd N` with the TrialSpec JSON on stdin."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback

from inferlab import backends
from inferlab.errors import InferlabError
from inferlab.execute.protocol import Channel, encode_result
from inferlab.measure.budget import Events
from inferlab.measure.latency import measure_latency
from inferlab.measure.summary import summarise
from inferlab.measure.throughput import measure_throughput
from inferlab.measure.trial import TrialResult, TrialSpec, utc_now
from inferlab.models.inputs import make_pool, merge
from inferlab.models.introspect import declared_inputs


def run(spec: TrialSpec, events: Events) -> TrialResult:
    """Measure one trial in this process. User errors propagate as InferlabError."""
    started = utc_now()
    backend = backends.get(spec.backend)
    params = spec.param_dict
    declared = declared_inputs(spec.model)
    assert declared is not None
    inputs = merge(declared, spec.model.inputs, spec.batch, spec.model.name)
    events.phase("load")
    t0 = time.perf_counter_ns()
    session = backend.load(spec.model, spec.device, params, inputs)
    load_s = (time.perf_counter_ns() - t0) / 1e9
    try:
        pool = make_pool(inputs, spec.measure.input_pool, spec.measure.seed)
        prepared = [session.prepare(feeds) for feeds in pool]
        driver = measure_latency if spec.mode == "latency" else measure_throughput
        measurement = driver(session, prepared, spec.measure, spec.batch, events)
    finally:
        session.close()
    fields = summarise(measurement, spec.measure.min_iterations)
    return TrialResult(spec=spec, status="ok", load_s=load_s, effective=dict(session.info.effective),
                       runtime=dict(session.info.runtime), started_at=started, finished_at=utc_now(), **fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inferlab-runner")
    parser.add_argument("--fd", type=int, required=True, help="file descriptor of the message pipe")
    args = parser.parse_args(argv)
    channel = Channel(args.fd)
    spec = TrialSpec.from_json(json.loads(sys.stdin.read()))
    try:
        result = run(spec, channel)
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


if __name__ == "__main__":
    sys.exit(main())
