"""The search loop: optuna proposes as many points as the executor has free slots (ask), the executor measures
them (isolated and stored), the study learns from each result as it arrives (tell). Stops on a trial budget, a
time budget, or when the best stops improving by more than its own confidence interval; leading candidates are
re-measured before a winner is named."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from inferlab.records.trial import TrialResult, TrialSpec
from inferlab.tune import objectives as obj
from inferlab.tune.record import TrialRecord, measured_count
from inferlab.tune.space import Point, Space
from inferlab.tune.spec import DIRECTION, TuneConfig

CONSTRAINT_KEY = "constraints:"  # optuna's prefix for constraint values (≤ 0: met) in a trial's system attrs
MISSING = 1e300                   # a constraint that could not be measured counts as violated

T = TypeVar("T")
# Measures the specs (several at once where the executor can) and yields each one's result once, as it
# finishes, in any order: results are matched to specs by `result.spec.key()`.
Measure = Callable[[Sequence[TrialSpec]], Iterator[TrialResult]]
MakeSpec = Callable[[Point, int], TrialSpec]
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
                 events: Events | None = None, slots: int = 1) -> None:
        """`slots`: how many trials the executor runs at once; the tuner asks for up to that many proposals
        before it measures them in one call of `measure`."""
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
                                              if r.role == "search" and r.state != "pruned" and r.point}
        self._stale = 0
        self._best: TrialRecord | None = None
        for r in self.records:
            self._track(r)

    # bookkeeping --------------------------------------------------------------------------------------

    @property
    def measured(self) -> int:
        return measured_count(self.records)

    @property
    def search_budget(self) -> int:
        return max(1, self.cfg.max_trials - self.cfg.confirm)

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
        budget = self.search_budget
        replayed = [r for r in self.records if r.role == "search" and r.params]
        name, sampler = choose_sampler(self.cfg, self.space.size(), budget, self.cfg.seed + len(replayed),
                                       self.slots)
        storage = optuna.storages.InMemoryStorage()
        created = optuna.create_study(storage=storage, directions=self.directions, sampler=sampler)
        study = self.study = _Study(study_name=created.study_name, storage=storage, sampler=sampler)
        for r in replayed:
            study.add_trial(self._frozen(r))
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
                self._track(record)
                for trial in pending.trials:
                    _answer(study, trial, record)
            stop = self._stop_reason()
        return self._finish(name, stop or "every configuration of the space was tried")

    def _ask(self, study: _Study, asks: int) -> tuple[list[_Pending], int]:
        """Ask for proposals until `slots` distinct new points are due to be measured (fewer where the trial
        budget has less room, or a stop reason appears). A point measured before is answered from its
        measurement and a pruned one is recorded, both at once and without taking a slot; a point proposed twice
        in the batch is measured once for both. Returns the batch and the proposals left."""
        room = min(self.slots, self.search_budget - self.measured)
        batch: dict[str, _Pending] = {}
        while len(batch) < room and asks > 0 and not study.exhausted and self._stop_reason() is None \
                and len(self._seen) + len(batch) < self.space.size():
            trial = study.ask()
            asks -= 1
            point = self.space.suggest(trial)
            seen = self._seen.get(point.key())
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
            batch[point.key()] = _Pending(self.make_spec(point, 0), base, trials=[trial])
        return list(batch.values()), asks

    def _frozen(self, r: TrialRecord) -> FrozenTrial:
        state = {"complete": TrialState.COMPLETE, "failed": TrialState.FAIL, "pruned": TrialState.PRUNED}[r.state]
        attrs = {CONSTRAINT_KEY + k: v for k, v in _violations(r).items()}
        return create_trial(params=r.params, distributions={k: json_to_distribution(v)
                                                            for k, v in r.distributions.items()},
                            values=list(r.values) if r.state == "complete" else None, state=state,
                            system_attrs=attrs)

    def _stop_reason(self) -> str | None:
        if self.measured >= self.search_budget:
            return (f"trial budget reached (max_trials {self.cfg.max_trials}, {self.cfg.confirm} of them kept to "
                    "re-measure the leaders)")
        if self.cfg.time_budget_s is not None and self._elapsed() >= self.cfg.time_budget_s:
            return f"time budget of {self.cfg.time_budget_s:g} s reached"
        distinct = len(self._seen)
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
        for result in self.measure([p.spec for p in batch]):
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
        return [r for r in self.records if r.role == "search" and r.state == "complete"]

    def _finish(self, sampler: str, stop: str) -> Outcome:
        out = Outcome(self.records, sampler, stop)
        done = self._searched()
        feasible = [r for r in done if r.feasible]
        if not feasible:
            out.message = self._no_winner(done)
            return out
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
                pending = _Pending(self.make_spec(lead.point, len(runs[lead.position])),
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
            return out
        _, out.winner, out.winner_values = max(scored, key=lambda t: t[0])
        return out

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
