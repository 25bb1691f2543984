"""An ensemble trial inside the trial process: its members loaded on one device, measured alone, one after
another and at the same time, each in a window of the trial's own measure settings on the same sessions; with
a dataset, each member's accuracy and the combined outputs' accuracy."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from inferlab.accuracy.datasets import Dataset
from inferlab.accuracy.evaluator import Scorer, batches, dataset_feeds, input_of
from inferlab.accuracy.postprocess import class_scores
from inferlab.backends.base import Backend
from inferlab.backends.ensemble import EnsembleSession, Schedule
from inferlab.measure.budget import Events
from inferlab.measure.latency import measure_latency
from inferlab.measure.summary import summarise
from inferlab.measure.throughput import measure_throughput
from inferlab.models.inputs import make_pool, merge
from inferlab.models.introspect import declared_inputs
from inferlab.models.tensors import TensorSpec
from inferlab.records.accuracy import AccuracyResult, Postprocess
from inferlab.records.ensemble import EnsembleFigures
from inferlab.records.trial import MemberResult, TrialSpec


def member_inputs(spec: TrialSpec) -> list[list[TensorSpec]]:
    """Each member's concrete inputs at the trial's batch."""
    assert spec.ensemble is not None
    out = []
    for m in spec.ensemble.members:
        declared = declared_inputs(m)
        assert declared is not None
        out.append(merge(declared, m.inputs, spec.batch, m.name))
    return out


def open_ensemble(backend: Backend, spec: TrialSpec, params: Mapping[str, Any],
                  inputs: Sequence[list[TensorSpec]]) -> EnsembleSession:
    """Every member loaded on the trial's device with the trial's knobs; all or nothing."""
    assert spec.ensemble is not None
    loaded = []
    try:
        for m, ins in zip(spec.ensemble.members, inputs, strict=True):
            loaded.append((m.name, backend.load(m, spec.device, params, ins, mode=spec.mode)))
    except BaseException:
        for _, s in loaded:
            s.close()
        raise
    session = EnsembleSession(loaded, spec.device)
    if spec.device == "cpu" and len(loaded) > 1:
        session.info.notes.append(f"{len(loaded)} members share the CPU's cores, each with the threads its knobs "
                                  "give it: at the same time they compete for the cores")
    return session


def _pool(spec: TrialSpec, session: EnsembleSession, inputs: Sequence[list[TensorSpec]],
          ds: Dataset | None) -> list[tuple[Any, ...]]:
    """The same samples for every member (the dataset's first ones, each read the member's way), else inputs
    from the same seed."""
    ens, m = spec.ensemble, spec.measure
    assert ens is not None
    if ds is not None and spec.accuracy is not None:
        per = [dataset_feeds(s, ds, ens.member_accuracy(spec.accuracy, i), spec.batch, m.input_pool, name)
               for i, (s, name) in enumerate(zip(session.sessions, session.names, strict=True))]
    else:
        per = [make_pool(ins, m.input_pool, m.seed) for ins in inputs]
    return [session.prepare_members(feeds) for feeds in zip(*per, strict=True)]


def _window(spec: TrialSpec, session: EnsembleSession, prepared: list[Any], events: Events,
            active: Sequence[int], schedule: Schedule) -> dict[str, Any]:
    session.use(active, schedule)
    driver = measure_latency if spec.mode == "latency" else measure_throughput
    return summarise(driver(session, prepared, spec.measure, spec.batch, events), spec.measure.min_iterations)


def speed(spec: TrialSpec, session: EnsembleSession, inputs: Sequence[list[TensorSpec]], ds: Dataset | None,
          events: Events) -> dict[str, Any]:
    """Each member alone, then the members one after another, then at the same time: the last is the trial's
    own window (its figures, its members' figures, the monitors' readings); the others are kept beside it."""
    prepared = _pool(spec, session, inputs, ds)
    k = len(session.sessions)
    alone = []
    for i in range(k):
        events.phase(f"alone {session.names[i]}")
        w = _window(spec, session, prepared, events, [i], "sequential")
        # its latency as the session times it, as in the ensemble below: the member's own run, nothing around it
        (own,) = session.member_figures(int(w["requests"]), float(w["duration_s"]), spec.batch)
        alone.append((w["throughput_sps"], own.latency_median_ms))
    events.phase("one after another")
    seq = _window(spec, session, prepared, events, range(k), "sequential")
    events.phase("at the same time")
    fields = _window(spec, session, prepared, events, range(k), "concurrent")
    members = []
    for m, (fps, lat) in zip(session.member_figures(int(fields["requests"]), float(fields["duration_s"]),
                                                    spec.batch), alone, strict=True):
        members.append(MemberResult(m.device, m.member, m.requests, m.share, m.throughput_sps, m.latency_median_ms,
                                    m.latency_p99_ms, m.model, fps, lat,
                                    m.latency_median_ms / lat if m.latency_median_ms and lat else None))
    together, apart = fields["throughput_sps"], seq["throughput_sps"]
    fields["members"] = tuple(members)
    fields["ensemble"] = EnsembleFigures(apart, seq["latency"].p50_ms, together / apart if apart else None,
                                         spec.ensemble.combine if spec.ensemble else "mean")
    fields["warnings"] = (*fields.get("warnings", ()), *(f"one after another: {w}" for w in seq["warnings"]))
    return {"status": "ok", **fields}


def combine(scores: Sequence[np.ndarray], posts: Sequence[Postprocess], how: str) -> np.ndarray:
    """The ensemble's [N, C] class scores from each member's: `mean` averages the members' probabilities
    (softmax of logits), `vote` counts each member's top class (ties go to the higher mean probability)."""
    probs = []
    for s, p in zip(scores, posts, strict=True):
        if p.scores == "logits":
            e = np.exp(s - s.max(axis=1, keepdims=True))
            s = e / e.sum(axis=1, keepdims=True)
        probs.append(s)
    mean = np.mean(probs, axis=0)
    if how == "mean":
        return mean
    votes = np.zeros_like(mean)
    for prob in probs:
        votes[np.arange(len(prob)), prob.argmax(axis=1)] += 1
    return votes + mean / (len(probs) + 1)  # a mean probability below 1 never outweighs a vote


def accuracy(spec: TrialSpec, session: EnsembleSession, ds: Dataset, events: Events,
             members: Sequence[MemberResult]) -> tuple[AccuracyResult, tuple[MemberResult, ...]]:
    """The combined outputs' metrics (the trial's accuracy) and each member's own, on the members at the same
    time; the members' results come back with their score by the trial's first metric."""
    ens, acc = spec.ensemble, spec.accuracy
    assert ens is not None and acc is not None
    events.phase("accuracy")
    t0 = time.perf_counter()
    session.use(range(len(session.sessions)), "concurrent")
    specs = [ens.member_accuracy(acc, i) for i in range(len(session.sessions))]
    scorers = [Scorer(ds, s, name) for s, name in zip(specs, session.names, strict=True)]
    combined = Scorer(ds, acc.model_copy(update={"postprocess": Postprocess(scores="probabilities")}), spec.model.name)
    feeds = []
    for s, a in zip(session.sessions, specs, strict=True):
        f = input_of(s, spec.model.name)
        feeds.append(batches(ds, a, f.name, f.dtype, spec.batch, None, f.axis, f.others))
    for per in zip(*feeds, strict=True):
        indices, geometry = per[0][1], per[0][2]
        member_outs = session.member_outputs(session.run(session.prepare_members([p[0] for p in per])))
        scores = []
        for scorer, member, a in zip(scorers, member_outs, specs, strict=True):
            assert member is not None
            scorer.add(member, indices, geometry, spec.batch)
            scores.append(class_scores(member, a.postprocess, scorer.model)[:len(indices)])
        combined.add({"scores": combine(scores, [a.postprocess for a in specs], ens.combine)}, indices, geometry,
                     len(indices))
        events.progress(indices[-1] + 1, len(ds), indices[-1] + 1)
    metric = acc.metric_names()[0]
    own = [sc.metrics().get(metric) for sc in scorers]
    out: tuple[MemberResult, ...]
    if members:
        out = tuple(replace(m, accuracy=a) for m, a in zip(members, own, strict=True))
    else:  # an accuracy trial: the members' scores alone
        out = tuple(MemberResult(spec.device, i, len(ds), 1.0, None, None, None, model=name, accuracy=a)
                    for i, (name, a) in enumerate(zip(session.names, own, strict=True)))
    return AccuracyResult(ds.name, acc.dataset.hash, len(ds), combined.metrics(), time.perf_counter() - t0), out
