"""The search loop: optuna proposes as many points as the executor has free slots (ask), the executor measures
them (isolated and stored), the study learns from each result as it arrives (tell). Stops on a trial budget, a
time budget, or when the best stops improving by more than its own confidence interval; leading candidates are
re-measured before a winner is named.

Cheap measurements first: search trials use a short window and the leaders are re-measured over the full one.
With batch left open, a batch ladder (tune/ladder.py) finds the batch domain before the search, and the leader
is climbed to larger batches after it. Proposals never break a backend's constraints (tune/space.py)."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from inferlab.records.trial import TrialResult, TrialSpec
from inferlab.tune import ladder
from inferlab.tune import objectives as obj
from inferlab.tune.record import TrialRecord, measured_count
from inferlab.tune.space import Arm, Point, Space
from inferlab.tune.spec import DIRECTION, TuneConfig

CONSTRAINT_KEY = "constraints:"  # optuna's prefix for constraint values (≤ 0: met) in a trial's system attrs
MISSING = 1e300                   # a constraint that could not be measured counts as violated

T = TypeVar("T")
# Measures the specs (several at once where the executor can) and yields each one's result once, as it
# finishes, in any order: results are matched to specs by `result.spec.key()`.
Measure = Callable[[Sequence[TrialSpec]], Iterator[TrialResult]]
# The spec that measures a point: its repeat number, and whether over the full window (re-measurements, baseline)
# or the search's short one.
MakeSpec = Callable[[Point, int, bool], TrialSpec]
Save = Callable[[TrialRecord], None]


class Events(Protocol):
    def recorded(self, record: TrialRecord, measured: int, budget: int) -> None: ...


class _Quiet:
    def recorded(self, record: TrialRecord, measured: int, budget: int) -> None:
        return None


class _Study(optuna.Study):
    """A study driven by ask/tell. Outside `optimize` there is no loop for `stop()` to end (optuna raises), so
    a sampler's request to stop (the brute-force sampler's, once every point is taken) is remembered instead."""

    exhausted = False

    def stop(self) -> None:
        self.exhausted = True


@dataclass
class _Pending:
    """A spec sent to be measured, and the asked trials waiting for its result (a batch's duplicates share one)."""

    spec: TrialSpec
    base: dict[str, Any]
    why: str | None = None          # leads the record's note (a re-measurement says which trial it repeats)
    trials: list[optuna.Trial] = field(default_factory=list)


@dataclass
class Outcome:
    records: list[TrialRecord]
    sampler: str
    stop_reason: str
    winner: TrialRecord | None = None
    winner_values: tuple[float, ...] = ()           # the median over its measurements
    front: list[TrialRecord] = field(default_factory=list)  # several objectives: the feasible Pareto front
    message: str | None = None                      # why there is no winner
    baseline: TrialRecord | None = None             # the runtime's defaults at the winner's batch, on its device
    summary: list[str] = field(default_factory=list)  # what the search did, pruned and skipped, and why

    @property
    def measured(self) -> int:
        return measured_count(self.records)


def choose_sampler(cfg: TuneConfig, size: int, budget: int, seed: int,
                   slots: int = 1) -> tuple[str, optuna.samplers.BaseSampler]:
    name = cfg.sampler
    if name == "auto":
        name = "grid" if size <= budget else ("tpe" if len(cfg.objectives) == 1 else "nsga2")
    with warnings.catch_warnings():  # the brute-force sampler and TPE's `group` are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "grid":
            return name, optuna.samplers.BruteForceSampler(seed=seed)
        if name == "random":
            return name, optuna.samplers.RandomSampler(seed=seed)
        if name == "nsga2":
            return name, optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, budget // 3)))
        startup = cfg.startup_trials or max(3, min(10, budget // 4))
        # Several trials in flight: the constant liar keeps TPE from proposing the running points again (with one
        # slot nothing is running when it samples, so the setting changes nothing there).
        return name, optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, group=True,
                                                constant_liar=slots > 1)


def _violations(record: TrialRecord) -> dict[str, float]:
    return {c["name"]: c["value"] - c["limit"] if c["value"] is not None else MISSING for c in record.checks}


def _answer(study: optuna.Study, trial: optuna.Trial, record: TrialRecord) -> None:
    """Tell optuna a measured record's constraints and values (or that it failed). The constraints go first:
    samplers read them from the trial's system attrs when the trial finishes (`after_trial`) and after."""
    for k, v in _violations(record).items():
        trial.set_constraint(k, v)
    if record.state != "complete":
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, list(record.values))


class Tuner:
    def __init__(self, cfg: TuneConfig, space: Space, make_spec: MakeSpec, measure: Measure, save: Save,
                 reference: float | None = None, history: list[TrialRecord] | None = None,
                 events: Events | None = None, slots: int = 1, windows: tuple[float, float] = (0.0, 0.0)) -> None:
        """`slots`: how many trials the executor runs at once; the tuner asks for up to that many proposals
        before it measures them in one call of `measure`. `windows`: the seconds a search trial and a full
        re-measurement measure for (what the time budget keeps for the re-measurements)."""
        if slots < 1:
            raise ValueError(f"slots must be at least 1 (got {slots})")
        self.cfg, self.space, self.make_spec, self.measure, self.save = cfg, space, make_spec, measure, save
        self.slots = slots
        self.study: optuna.Study | None = None  # the optuna study of the last run, kept to be inspected
        self.reference = reference
        self.records: list[TrialRecord] = list(history or [])
        self.events: Events = events or _Quiet()
        self.directions = [DIRECTION[o] for o in cfg.objectives]
        self._offset = max((r.elapsed_s for r in self.records), default=0.0)  # time spent in earlier sessions
        self._t0 = time.monotonic()
        self._seen: dict[str, TrialRecord] = {r.point.key(): r for r in self.records
                                              if r.role in ("search", "ladder") and r.state != "pruned" and r.point}
        self._stale = 0
        self._best: TrialRecord | None = None
        self.windows = windows
        self._took: dict[str, float] = {}   # wall seconds each trial took (by spec key), this session
        self._narrowed = 0                  # proposals a constraint kept possible
        # distinct points the sampler proposed (measured, or answered from an earlier measurement)
        self._proposed: set[str] = {r.point.key() for r in self.records if r.role == "search" and r.point}
        for r in self.records:
            self._track(r)

    # bookkeeping --------------------------------------------------------------------------------------

    @property
    def measured(self) -> int:
        return measured_count(self.records)

    @property
    def search_budget(self) -> int:
        return max(1, self.cfg.max_trials - self.cfg.confirm - self.cfg.baseline)

    def _elapsed(self) -> float:
        return self._offset + time.monotonic() - self._t0

    def _add(self, record: TrialRecord) -> TrialRecord:
        self.records.append(record)
        self.save(record)
        self.events.recorded(record, self.measured, self.cfg.max_trials)
        return record

    def _track(self, r: TrialRecord) -> None:
        """Patience: count measured trials since the best last improved by more than its own CI."""
        if r.role != "search" or r.state == "pruned":
            return
        objective = self.cfg.objectives[0]
        if r.feasible and r.values and (self._best is None or obj.better(
                r.values[0], self._best.values[0], objective, self._best.noise)):
            self._best, self._stale = r, 0
        else:
            self._stale += 1

    # the search ---------------------------------------------------------------------------------------

    def run(self) -> Outcome:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self.space.open_batch:
            self.space = self.space.with_batches(self._ladder())
        budget = self.search_budget
        replayed = [r for r in self.records if r.role == "search" and r.params]
        if self.space.open_batch and any(r.distributions.get("batch") != self._batch_json() for r in replayed):
            replayed = []  # the ladder went on and the batch domain grew: the sampler starts afresh (records stay)
        name, sampler = choose_sampler(self.cfg, self.space.size(), budget, self.cfg.seed + len(replayed),
                                       self.slots)
        storage = optuna.storages.InMemoryStorage()
        created = optuna.create_study(storage=storage, directions=self.directions, sampler=sampler)
        study = self.study = _Study(study_name=created.study_name, storage=storage, sampler=sampler)
        for r in replayed:
            study.add_trial(self._frozen(r))
        if not replayed:
            for params in self.space.seeds(self.cfg.objectives[0]):
                study.enqueue_trial(params, skip_if_exists=True)
        # Samplers re-propose measured points in discrete spaces, and those are answered without measuring:
        # bound the proposals (as many as the serial loop's `optimize(n_trials=...)` allowed) so a sampler
        # that only re-proposes cannot loop for ever.
        asks = max(1, 20 * budget)
        stop = self._stop_reason()
        while stop is None and asks > 0 and not study.exhausted:
            batch, asks = self._ask(study, asks)
            for pending, record in self._measure_all(batch):
                assert record.point is not None  # a search record has its point
                self._seen[record.point.key()] = record
                self._proposed.add(record.point.key())
                self._track(record)
                for trial in pending.trials:
                    _answer(study, trial, record)
            stop = self._stop_reason()
        self._climb()
        return self._finish(name, stop or "every configuration of the space was tried")

    # the batch ladder and the climb -----------------------------------------------------------------------

    def _batch_json(self) -> str | None:
        """optuna's distribution of the batch dim as JSON (None: one batch, not suggested)."""
        n = len(self.space.batch.values)
        return distribution_to_json(optuna.distributions.IntDistribution(0, n - 1)) if n > 1 else None

    def _rungs(self, arm: Arm) -> list[TrialRecord]:
        return [r for r in self.records if r.role == "ladder" and r.point is not None
                and (r.point.backend, r.point.device) == (arm.backend, arm.device)]

    def _ladder(self) -> tuple[int, ...]:
        """Measure each arm's defaults at batch 1, 2, 4 ... until its ladder stops (arms side by side where the
        executor has slots); returns the batch domain of the search. Rungs measured in an earlier session are
        kept, and a ladder that was cut short goes on from its last rung. The ladders take at most half the
        search's trial budget."""
        objective = self.cfg.objectives[0]
        while self._budget_reason() is None:
            batch: list[_Pending] = []
            for arm in self.space.arms:
                rungs = self._rungs(arm)
                if ladder.stop_reason(rungs, objective) is None and len(batch) < self.slots:
                    size = ladder.batch_of(rungs[-1]) * 2 if rungs else 1
                    point = self.space.defaults(arm, size)
                    batch.append(_Pending(self.make_spec(point, 0, False), {"role": "ladder", "point": point}))
            if not batch:
                break
            # the ladder takes at most half the search's trials: the rest search the knobs
            room = self.search_budget // 2 - self.measured
            if room <= 0:
                break
            for _, record in self._measure_all(batch[:room]):
                assert record.point is not None
                self._seen[record.point.key()] = record
        found: set[int] = set()
        for arm in self.space.arms:
            found.update(ladder.domain(self._rungs(arm), objective))
        return tuple(sorted(found))

    def _climb(self) -> None:
        """The leader at the largest batch its ladder measured well may gain more at twice that: double it while
        it still gains (throughput objectives; a bigger batch never lowers latency)."""
        objective = self.cfg.objectives[0]
        if not self.space.open_batch or DIRECTION[objective] != "maximize" or len(self.cfg.objectives) > 1:
            return
        lead = max((r for r in self._searched() if r.feasible), key=lambda r: r.values[0], default=None)
        if lead is None or lead.point is None:
            return
        arm = next(a for a in self.space.arms if (a.backend, a.device) == (lead.point.backend, lead.point.device))
        tops = [ladder.batch_of(r) for r in self._rungs(arm) if r.state == "complete" and r.feasible]
        if not tops or lead.point.batch < max(tops):
            return
        while self._budget_reason(reserve=True) is None and self.measured < self.search_budget:
            point = replace(lead.point, batch=lead.point.batch * 2)
            if point.batch > ladder.MAX_BATCH or point.key() in self._seen:
                return
            pending = _Pending(self.make_spec(point, 0, False), {"role": "search", "point": point},
                               f"batch climb: twice the batch of trial #{lead.position}")
            ((_, record),) = list(self._measure_all([pending]))
            self._seen[point.key()] = record
            self._track(record)
            if record.state != "complete" or not record.feasible or not ladder.enough(record, lead, objective):
                return
            lead = record

    def _ask(self, study: _Study, asks: int) -> tuple[list[_Pending], int]:
        """Ask for proposals until `slots` distinct new points are due to be measured (fewer where the trial
        budget has less room, or a stop reason appears). A point measured before is answered from its
        measurement and a pruned one is recorded, both at once and without taking a slot; a point proposed twice
        in the batch is measured once for both. Returns the batch and the proposals left."""
        room = min(self.slots, self.search_budget - self.measured)
        batch: dict[str, _Pending] = {}
        while len(batch) < room and asks > 0 and not study.exhausted and self._stop_reason() is None \
                and len(self._proposed) + len(batch) < self.space.size():
            trial = study.ask()
            asks -= 1
            point, narrowed = self.space.propose(trial)
            self._narrowed += narrowed
            seen = self._seen.get(point.key())
            if seen is not None:
                self._proposed.add(point.key())
            if seen is not None:  # samplers re-propose in discrete spaces: answer from the measurement, unrecorded
                _answer(study, trial, seen)
                continue
            if point.key() in batch:
                batch[point.key()].trials.append(trial)
                continue
            base: dict[str, Any] = {"role": "search", "point": point, "number": trial.number,
                                    "params": dict(trial.params),
                                    "distributions": {k: distribution_to_json(d)
                                                      for k, d in trial.distributions.items()}}
            why = self._prune(point)
            if why is not None:
                self._add(TrialRecord(len(self.records), state="pruned", note=why, elapsed_s=self._elapsed(),
                                      **base))
                study.tell(trial, state=TrialState.PRUNED)
                continue
            batch[point.key()] = _Pending(self.make_spec(point, 0, False), base, trials=[trial])
        return list(batch.values()), asks

    def _frozen(self, r: TrialRecord) -> FrozenTrial:
        state = {"complete": TrialState.COMPLETE, "failed": TrialState.FAIL, "pruned": TrialState.PRUNED}[r.state]
        attrs = {CONSTRAINT_KEY + k: v for k, v in _violations(r).items()}
        return create_trial(params=r.params, distributions={k: json_to_distribution(v)
                                                            for k, v in r.distributions.items()},
                            values=list(r.values) if r.state == "complete" else None, state=state,
                            system_attrs=attrs)

    def _reserve_s(self) -> float:
        """Seconds the time budget keeps for what follows the search: re-measuring the current leaders over the
        full window (each as long as its own search trial took, plus the longer window) and the baseline (as
        long as the runtime's defaults took on the ladder, else the median trial)."""
        if not self._took:
            return 0.0
        short, full = self.windows
        median = statistics.median(self._took.values())
        sign = 1 if DIRECTION[self.cfg.objectives[0]] == "maximize" else -1
        ranked = sorted((r for r in self._searched() if r.feasible), key=lambda r: -sign * r.values[0])
        leaders = [self._took.get(r.spec_key or "", median) for r in ranked[:self.cfg.confirm]]
        leaders += [median] * (self.cfg.confirm - len(leaders))
        rungs = [self._took[r.spec_key] for r in self.records if r.role == "ladder" and r.spec_key in self._took]
        baseline = max(rungs, default=median) + max(0.0, full - short) if self.cfg.baseline else 0.0
        return sum(t + max(0.0, full - short) for t in leaders) + baseline

    def _budget_reason(self, reserve: bool = False) -> str | None:
        if self.measured >= self.search_budget:
            kept = [f"{self.cfg.confirm} of them kept to re-measure the leaders"] if self.cfg.confirm else []
            kept += ["1 kept to measure the defaults"] if self.cfg.baseline else []
            return f"trial budget reached (max_trials {self.cfg.max_trials}" + (
                f", {' and '.join(kept)})" if kept else ")")
        if self.cfg.time_budget_s is not None:
            left = self.cfg.time_budget_s - self._elapsed() - (self._reserve_s() if reserve else 0.0)
            if left <= 0:
                held = f", {self._reserve_s():.0f} s of it kept to re-measure the leaders" if reserve and \
                    self._reserve_s() else ""
                return f"time budget of {self.cfg.time_budget_s:g} s reached{held}"
        return None

    def _stop_reason(self) -> str | None:
        if (why := self._budget_reason(reserve=True)) is not None:
            return why
        distinct = len(self._proposed)
        if distinct >= self.space.size():
            return "every configuration of the space was tried"
        if len(self.cfg.objectives) == 1 and self.cfg.patience is not None and self._best is not None \
                and self._stale >= self.cfg.patience:
            return (f"no improvement beyond the best's own confidence interval in {self._stale} trials "
                    f"(patience {self.cfg.patience})")
        return None

    def _prune(self, point: Point) -> str | None:
        """A larger batch of the same configuration only adds latency per request: once a batch misses the
        latency budget, larger ones are pruned without measuring."""
        if self.cfg.max_latency_ms is None:
            return None
        for r in self.records:
            p = r.point
            if p is None or r.state != "complete" or r.role != "search" or p.batch >= point.batch:
                continue
            if (p.backend, p.device, p.precision, p.params) != (point.backend, point.device, point.precision,
                                                                 point.params):
                continue
            lat = next((c for c in r.checks if c["name"].startswith("latency")), None)
            if lat is not None and lat["value"] is not None and lat["value"] > lat["limit"]:
                return (f"batch {p.batch} already takes {lat['value']:.3g} ms > {lat['limit']:g} ms "
                        f"({self.cfg.latency_percentile}); batch {point.batch} can only take longer")
        return None

    def _measure_all(self, batch: Sequence[_Pending]) -> Iterator[tuple[_Pending, TrialRecord]]:
        """Measure the batch's specs in one call and record each result as it arrives (in any order)."""
        if not batch:
            return
        waiting = {p.spec.key(): p for p in batch}
        if len(waiting) != len(batch):
            raise ValueError("a batch measures each trial once: two of its specs have the same key")
        last = time.monotonic()
        for result in self.measure([p.spec for p in batch]):
            now = time.monotonic()
            self._took[result.spec.key()] = (now - last) * min(self.slots, len(batch))  # roughly, with slots
            last = now
            pending = waiting.pop(result.spec.key(), None)
            if pending is None:
                raise RuntimeError(f"the executor returned a result for a trial it was not given, or twice "
                                   f"({result.spec.key()})")
            yield pending, self._record(pending, result)
        if waiting:
            raise RuntimeError(f"the executor returned no result for {len(waiting)} of {len(batch)} trials "
                               f"({', '.join(sorted(waiting))[:300]})")

    def _record(self, pending: _Pending, result: TrialResult) -> TrialRecord:
        """Record one measured trial: complete (feasible or not) or failed, with its note."""
        common: dict[str, Any] = {"spec_key": pending.spec.key(), "elapsed_s": self._elapsed(), **pending.base}

        def note(text: str | None) -> str | None:
            return "; ".join(t for t in (pending.why, text) if t) or None

        if result.status != "ok":
            return self._add(TrialRecord(len(self.records), state="failed",
                                         note=note(f"{result.status}: {result.reason}"), **common))
        values = [obj.value(result, o) for o in self.cfg.objectives]
        missing = [o for o, v in zip(self.cfg.objectives, values, strict=True) if v is None]
        if missing:
            return self._add(TrialRecord(len(self.records), state="failed", note=note(obj.missing_reason(missing[0])),
                                         **common))
        checks = obj.checks(result, self.cfg, self.reference)
        return self._add(TrialRecord(
            len(self.records), state="complete", values=tuple(float(v) for v in values if v is not None),
            noise=obj.noise(result, self.cfg.objectives[0]), checks=tuple(c.to_json() for c in checks),
            feasible=all(c.met for c in checks), accuracy=obj.headline(result),
            note=note("; ".join(c.text() for c in checks if not c.met)), **common))

    # the winner ---------------------------------------------------------------------------------------

    def _searched(self) -> list[TrialRecord]:
        """Every configuration measured to a result while searching (the batch ladder's defaults included)."""
        return [r for r in self.records if r.role in ("search", "ladder") and r.state == "complete"]

    def _finish(self, sampler: str, stop: str) -> Outcome:
        out = Outcome(self.records, sampler, stop)
        self._name_winner(out)
        if out.winner is not None and out.winner.point is not None and self.cfg.baseline:
            out.baseline = self._baseline(out.winner.point)
        out.summary = self._summary(out)
        return out

    def _baseline(self, winner: Point) -> TrialRecord | None:
        """The runtime's defaults on the winner's device at the winner's batch: what its speed-up is over. A
        ladder rung or search trial that measured exactly that point serves; otherwise it is measured now."""
        arm = next(a for a in self.space.arms if (a.backend, a.device) == (winner.backend, winner.device))
        point = self.space.defaults(arm, winner.batch)
        known = [r for r in self.records if r.point == point and r.state == "complete" and r.role != "confirm"]
        if known:
            return known[0]
        if point == winner or self.measured >= self.cfg.max_trials:  # max_trials bounds the baseline too
            return None
        pending = _Pending(self.make_spec(point, 0, True), {"role": "baseline", "point": point},
                           "the runtime's defaults at the winner's batch")
        ((_, record),) = list(self._measure_all([pending]))
        return record if record.state == "complete" else None

    def _summary(self, out: Outcome) -> list[str]:
        """What the search did and did not do, and why: for the CLI, the stored study and the report."""
        objective = self.cfg.objectives[0]
        lines = []
        for arm in self.space.arms if self.space.open_batch else ():
            rungs = self._rungs(arm)
            if rungs:
                lines.append(ladder.describe(arm.label, rungs, objective))
        if self.space.open_batch:
            lines.append(f"batches searched: {list(self.space.batch.values)} (the ladder's rungs within "
                         f"{ladder.NEAR:.0%} of its best, and up to {ladder.AHEAD} doublings past a ladder that "
                         "stopped gaining; the smallest of them alone for a latency objective)")
        climbs = [r for r in self.records if r.note and "batch climb" in r.note]
        if climbs:
            lines.append("batch climb: " + ", ".join(
                f"b{ladder.batch_of(r)} {r.values[0]:.4g}" if r.state == "complete" and r.values
                else f"b{ladder.batch_of(r)} {r.state}" for r in climbs))
        constraints = sorted({c.text() for a in self.space.arms for c in a.constraints})
        if constraints:
            lines.append(f"constraints kept {self._narrowed} proposal choices possible: " + "; ".join(constraints))
        for state, what in (("pruned", "pruned without measuring"), ("failed", "failed")):
            notes = [r.note or "" for r in self.records if r.state == state]
            if notes:
                reasons = sorted(set(notes), key=notes.count, reverse=True)
                lines.append(f"{len(notes)} {what}: " + "; ".join(
                    f"{n[:160]}{f' (×{notes.count(n)})' if notes.count(n) > 1 else ''}" for n in reasons[:3]))
        short, full = self.windows
        if short and full and short < full:
            lines.append(f"search trials measured for {short:g} s each; the leaders re-measured for {full:g} s")
        lines.append(f"stopped: {out.stop_reason}; {out.measured} trials measured of a space of {self.space.size()} "
                     f"in {self._elapsed():.0f} s")
        return lines

    def _name_winner(self, out: Outcome) -> None:
        done = self._searched()
        feasible = [r for r in done if r.feasible]
        if not feasible:
            out.message = self._no_winner(done)
            return
        objective = self.cfg.objectives[0]
        sign = 1 if DIRECTION[objective] == "maximize" else -1
        if len(self.cfg.objectives) > 1:
            out.front = pareto(feasible, self.directions, key=lambda r: r.values)
            ranked = sorted(out.front, key=lambda r: -sign * r.values[0])
        else:
            ranked = sorted(feasible, key=lambda r: -sign * r.values[0])
        leaders = ranked[:max(1, self.cfg.confirm)]
        runs = {lead.position: [lead] + [r for r in self.records if r.role == "confirm" and r.point == lead.point]
                for lead in leaders}
        remeasure: dict[str, tuple[_Pending, TrialRecord]] = {}
        for lead in leaders:
            if self.cfg.confirm and lead.point is not None:
                pending = _Pending(self.make_spec(lead.point, len(runs[lead.position]), True),
                                   {"role": "confirm", "point": lead.point}, f"re-measures trial #{lead.position}")
                remeasure[pending.spec.key()] = (pending, lead)
        # all leaders in one call: a cluster re-measures them side by side
        for pending, record in self._measure_all([p for p, _ in remeasure.values()]):
            runs[remeasure[pending.spec.key()][1].position].append(record)
        scored = []
        for lead in leaders:
            ok = [r for r in runs[lead.position] if r.state == "complete"]
            if ok and all(r.feasible for r in ok):
                medians = tuple(statistics.median(r.values[i] for r in ok) for i in range(len(lead.values)))
                scored.append((sign * medians[0], lead, medians))
        if not scored:
            out.message = ("no configuration meets " + self.cfg.constraint_text()
                           + " when re-measured (the leading candidates passed once, not again)")
            return
        _, out.winner, out.winner_values = max(scored, key=lambda t: t[0])

    def _no_winner(self, done: list[TrialRecord]) -> str:
        if not done:
            reasons = {r.note for r in self.records if r.state == "failed" and r.note}
            return "no configuration could be measured" + (f" ({'; '.join(sorted(reasons))[:300]})" if reasons
                                                          else "")
        nearest = min(done, key=lambda r: sum(max(0.0, v) / c["limit"] for c, v in
                                              zip(r.checks, _violations(r).values(), strict=True)))
        assert nearest.point is not None
        return (f"no configuration meets {self.cfg.constraint_text()}; nearest: {nearest.point.describe(False)} with "
                f"{nearest.note} ({len(done)} measured)")


def pareto(items: Sequence[T], directions: Sequence[str], key: Callable[[T], Sequence[float]]) -> list[T]:
    """The items no other item beats on every objective (at least as good on all, better on one); `key`
    gives an item's objective values, in the order of `directions`."""
    signs = [1 if d == "maximize" else -1 for d in directions]
    scored = [[s * v for s, v in zip(signs, key(item), strict=True)] for item in items]

    def dominated(i: int) -> bool:
        return any(all(x >= y for x, y in zip(o, scored[i], strict=True)) and o != scored[i] for o in scored)

    return [item for i, item in enumerate(items) if not dominated(i)]
