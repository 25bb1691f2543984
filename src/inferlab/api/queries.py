"""Read-only questions the commands ask: the stored runs and their results (with their environments and the
MLPerf view), this host's environment fingerprint and its backends. The CLI renders the answers; it never
opens the store or the executor itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferlab import backends as registry
from inferlab.backends.base import Constraint, Knob, word
from inferlab.errors import ConfigError
from inferlab.execute import environment as host
from inferlab.optimize.lineage import Lineage as Lineage  # re-exported: the workbench lists lineages
from inferlab.records.trial import Scalar, TrialResult
from inferlab.report.mlperf import mlperf_rows as mlperf_table_rows
from inferlab.store import RunInfo, Store
from inferlab.store.repository import data_dir, resolve_url, sqlite_path

__all__ = [
    "BackendInfo",
    "RunInfo",
    "RunSummary",
    "StoredRun",
    "backend_catalogue",
    "derived_from",
    "host_environment",
    "mlperf_rows",
    "run_info",
    "run_summaries",
    "runs",
    "stored_run",
    "workbench_dir",
]


@dataclass(frozen=True)
class StoredRun:
    """A stored run, its results in trial order, and the environments they were measured in (by id)."""

    info: RunInfo
    results: list[TrialResult]
    environments: dict[str, dict[str, Any] | None]

    def environment(self, env_id: str | None) -> dict[str, Any] | None:
        return self.environments.get(env_id) if env_id else None


@dataclass(frozen=True)
class BackendInfo:
    """A registered backend as `inferlab backends` lists it; `devices` is empty where it is not usable."""

    name: str
    version: str | None
    usable: bool
    devices: list[str]
    knobs: list[Knob]
    # per kind of device (cpu, cuda:0 ...): its knobs as a tuning sees them there, and their constraints
    spaces: dict[str, tuple[dict[str, Knob], tuple[Constraint, ...]]] = field(default_factory=dict)
    seeds: dict[str, tuple[dict[str, Scalar], ...]] = field(default_factory=dict)  # measured first, per device
    can_profile: bool = False  # `--profile layers`: the runtime's per-layer profiler
    install: str = ""          # what installs it, where it is not usable

    def seed_texts(self, device: str) -> list[str]:
        """The configurations a tuning on `device` measures first, as `knob=value` lines."""
        return [" ".join(f"{k}={word(v)}" for k, v in seed.items()) for seed in self.seeds.get(device, ())]

    def searched(self, knob: str, device: str, cores: int) -> str:
        """What a tuning on `device` tries for `knob` when it is left open: its values, or why none."""
        k = self.spaces[device][0].get(knob)
        if k is None:
            return "—"
        if not k.searched:
            return "fixed (name it to search it)"
        values = k.candidates(cores)
        shown = f"{values[0]}..{values[-1]}" if k.kind == "int" and not k.search and len(values) > 4 else \
            "|".join(word(v) for v in values)
        return shown + (" (throughput modes)" if k.async_only else "")


def runs(db: str | None = None) -> list[RunInfo]:
    """Every stored run, oldest first."""
    store = Store(db)
    try:
        return store.runs()
    finally:
        store.close()


@dataclass(frozen=True)
class RunSummary:
    """A stored run with what its trials cover (for lists that filter runs by model, backend or device)."""

    info: RunInfo
    models: list[str]
    backends: list[str]
    devices: list[str]

    def matches(self, model: str | None = None, backend: str | None = None, device: str | None = None,
                status: str | None = None) -> bool:
        """Whether the run has a trial of each given model, backend and device, and the given status."""
        return (not model or model in self.models) and (not backend or backend in self.backends) and \
            (not device or device in self.devices) and (not status or status == self.info.status)


def run_summaries(db: str | None = None) -> list[RunSummary]:
    """Every stored run, newest first, with the models, backends and devices of its trials."""
    store = Store(db)
    try:
        out = []
        for info in reversed(store.runs()):
            specs = store.specs(info.id)
            out.append(RunSummary(info, sorted({s.model.name for s in specs}), sorted({s.backend for s in specs}),
                                  sorted({s.device for s in specs})))
        return out
    finally:
        store.close()


def lineages(db: str | None = None) -> list[Lineage]:
    """Every derived model's lineage, oldest first."""
    store = Store(db)
    try:
        return store.artifacts()
    finally:
        store.close()


def derived_from(content_hash: str, db: str | None = None, every: list[Lineage] | None = None) -> list[Lineage]:
    """Every model inferlab derived from the model with this content hash, and from those in turn, oldest first
    (from `every` lineage when given, else from the store's)."""
    every = lineages(db) if every is None else every
    found: list[Lineage] = []
    parents = {content_hash}
    for a in every:  # oldest first: a parent is recorded before what was derived from it
        if a.parent_hash in parents:
            found.append(a)
            parents.add(a.hash)
    return found


def check_database(db: str | None = None) -> str:
    """Open the database (creating and migrating it as every command does) and return its URL; a database that
    cannot be opened raises StoreError naming it."""
    store = Store(db)  # opening it checks (and migrates) its schema
    try:
        return store.url
    finally:
        store.close()


def workbench_dir(db: str | None = None) -> Path:
    """Where the workbench keeps what it imports (models, datasets, configs): beside an SQLite database, else
    in the per-user data folder, as runs keep their files."""
    path = sqlite_path(resolve_url(db))
    return (path.parent if path is not None else data_dir()) / "inferlab-workbench"


def run_info(ref: str | None = None, db: str | None = None) -> RunInfo:
    """A stored run's status and counts (trials planned, results stored), by id or 'latest'."""
    store = Store(db)
    try:
        return store.run_info(ref)
    finally:
        store.close()


def stored_run(ref: str | None = None, db: str | None = None, with_samples: bool = False) -> StoredRun:
    """A stored run by id or 'latest' (None: the latest), with its results; `with_samples`: the raw latencies too."""
    store = Store(db)
    try:
        info = store.run_info(ref)
        results = store.results(info.id, with_samples=with_samples)
        envs = {e: store.environment(e) for e in dict.fromkeys(r.environment_id for r in results) if e}
        return StoredRun(info, results, envs)
    finally:
        store.close()


def mlperf_rows(ref: str | None, db: str | None = None, reference: str | None = None,
                reference_backend: str | None = None) -> tuple[RunInfo, list[dict[str, Any]]]:
    """A run's MLPerf scenario results as rows of the MLPerf-style table; with `reference`, the results of that
    run (only `reference_backend`'s, when given) are the reference system of the speed-up column."""
    store = Store(db)
    try:
        info = store.run_info(ref)
        ref_results: list[TrialResult] = []
        ref_name = None
        if reference is not None:
            ref_info = store.run_info(reference)
            ref_results = [r for r in store.results(ref_info.id)
                           if reference_backend is None or r.spec.backend == reference_backend]
            if not any(r.loadgen is not None for r in ref_results):
                raise ConfigError(f"--reference {reference}: run {ref_info.id} has no MLPerf scenario results"
                                  + (f" for backend '{reference_backend}'" if reference_backend else ""))
            ref_name = f"run {ref_info.id}"
        results = store.results(info.id)
        if not any(r.loadgen is not None for r in results):
            raise ConfigError(f"run {info.id} has no MLPerf scenario results; run a config with `scenario:` "
                              "or `inferlab bench MODEL --scenario offline`")
        return info, mlperf_table_rows(results, store.environment, ref_results, ref_name)
    finally:
        store.close()


def host_environment() -> dict[str, Any]:
    """This host's environment as results record it: its fingerprint ("id") first, then what it is made of."""
    data = host.collect()
    return {"id": host.fingerprint(data), **data}


def backend_catalogue() -> list[BackendInfo]:
    """Every registered backend: version, whether it is usable here, its devices, its knobs (for the CPU) and the
    search space it declares for each kind of device."""
    out = []
    for name in registry.names():
        b = registry.get(name)
        usable = b.available()
        spaces = {d: (b.knobs(d), b.constraints(d)) for d in b.device_kinds()}
        out.append(BackendInfo(name, b.version(), usable, b.devices() if usable else [], list(b.knobs("cpu").values()),
                               spaces, {d: b.seeds(d) for d in b.device_kinds()}, b.can_profile, b.install))
    return out
