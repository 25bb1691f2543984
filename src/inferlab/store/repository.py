"""Reading and writing the store. Each trial's result is committed in its own transaction, so a killed
run keeps every finished trial and never a half-written row. Database faults (a file that is not a database,
a full disk, a read-only file) become one-line StoreErrors naming the file and the fix; a result the database
refuses is first kept as a file (pending) that `import_pending` stores later. Processes that open a database at
once take turns creating and migrating it."""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import json
import logging
import math
import os
import re
import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, create_engine, delete, event, func, make_url, select, text
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from inferlab.errors import NotFound, StoreError, StoreFull
from inferlab.optimize.lineage import Lineage
from inferlab.records.analysis import LayerRecord, Peaks
from inferlab.records.trial import MemberResult, TrialResult, TrialSpec, utc_now
from inferlab.store.schema import (
    ArtifactRow,
    EnvironmentRow,
    LayerRow,
    MemberRow,
    MetricRow,
    PeaksRow,
    ResultRow,
    RunRow,
    StudyRow,
    StudyTrialRow,
    TrialRow,
)

log = logging.getLogger(__name__)

DEFAULT_DB = "inferlab.db"
MIGRATIONS = Path(__file__).parent / "migrations"
PENDING_FORMAT = "inferlab-pending-result"
# pg_advisory_xact_lock key of the migration: any fixed 64-bit number, the same in every inferlab
_PG_MIGRATION_LOCK = 0x696E6665726C6162  # "inferlab"


def data_dir() -> Path:
    """inferlab's per-user data folder: $XDG_DATA_HOME/inferlab, else ~/.local/share/inferlab."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"  # XDG: absolute only
    return base / "inferlab"


def default_location() -> str:
    """The database used when none is named: $INFERLAB_DB, else inferlab.db in the per-user data folder, the
    same from every working directory (a run stored from one folder is found from any other)."""
    return os.environ.get("INFERLAB_DB") or str(data_dir() / DEFAULT_DB)


def resolve_url(url: str | None = None) -> str:
    """--db, else the default location. A bare path means an SQLite file."""
    url = url or default_location()
    return url if "://" in url else f"sqlite:///{Path(url).expanduser().resolve()}"


_REVISION = re.compile(r"""^(down_revision|revision)\s*=\s*(?:["']([^"']+)["']|None)\s*$""", re.MULTILINE)


@cache
def head_revision() -> str | None:
    """The newest schema revision of the migrations shipped with this inferlab, read from their files (as
    Alembic reads them, without importing Alembic). None unless there is exactly one head."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        fields: dict[str, str | None] = {m.group(1): m.group(2) for m in _REVISION.finditer(path.read_text())}
        revision = fields.get("revision")
        if revision:
            revisions[revision] = fields.get("down_revision")
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def pack_latencies(ns: np.ndarray) -> bytes:
    return zlib.compress(np.asarray(ns, dtype="<i8").tobytes(), 6)


def unpack_latencies(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype="<i8").copy()


@dataclass(frozen=True)
class RunInfo:
    id: str
    name: str
    status: str
    created_at: str
    finished_at: str | None
    trials: int
    done: int
    config_path: str | None
    environment_id: str | None


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory SQLite)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):])
    return None


def pending_root(url: str) -> Path:
    """Where results the database refused wait to be stored: beside an SQLite file (`<file>.pending`), else
    under the artifacts root (`pending`), so keeping them never needs the database to take a write."""
    path = sqlite_path(url)
    return path.with_name(path.name + ".pending") if path is not None else artifacts_root(url) / "pending"


def artifacts_root(url: str) -> Path:
    """Where runs keep their files: $INFERLAB_ARTIFACTS, else beside an SQLite database, else in the per-user
    data folder (never the working directory, which changes between commands)."""
    if os.environ.get("INFERLAB_ARTIFACTS"):
        return Path(os.environ["INFERLAB_ARTIFACTS"]).expanduser().resolve()
    path = sqlite_path(url)
    return (path.parent if path is not None else data_dir()) / "inferlab-artifacts"


class Store:
    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        path = sqlite_path(self.url)
        # how messages name the database: its file, or its URL without the password
        self.where = str(path) if path is not None else _safe_url(self.url)
        if url is None and not os.environ.get("INFERLAB_DB") and path is not None:
            try:  # the default folder is ours to create; a folder the user named must exist
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{path.parent}: cannot create the default database folder ({exc.strerror}); "
                                 "set INFERLAB_DB or pass --db to store results elsewhere") from None
        try:
            # SQLite: wait up to 30 s for another process's write (the driver's default is 5 s, too short for a
            # migration on a loaded two-core machine)
            args = {"timeout": 30} if self.url.startswith("sqlite") else {}
            self.engine: Engine = create_engine(self.url, connect_args=args)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"--db '{url}': not a usable database URL ({exc}); "
                             "use a file path or e.g. postgresql://user@host/db") from None
        if self.url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        event.listen(self.engine, "handle_error", self._translate)
        self._migrate()
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _translate(self, ctx: ExceptionContext) -> None:
        """Turn a database fault the user can fix into a one-line StoreError, wherever it happens."""
        error = _fault(self.where, ctx.original_exception)
        if error is not None:
            raise error

    def _migrate(self) -> None:
        """Create the tables or bring them to this inferlab's schema. Processes opening the same database at
        once take turns (two creating one new SQLite file would both create its tables, and one would fail).
        A database already at this inferlab's head revision is left alone without importing Alembic (a
        quarter of a second of every command)."""
        if self._at_head():
            return
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))  # ConfigParser: % interpolates
        try:
            with self._migration_lock():
                if self._at_head():  # another process migrated it while this one waited for the lock
                    return
                with self.engine.begin() as conn:
                    _lock_server_migration(conn)
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
        except DatabaseError as exc:
            raise StoreError(f"database {self.where}: cannot open ({str(exc.orig).strip()}); check the path "
                             "and permissions") from None
        except CommandError as exc:  # a schema revision this inferlab does not know
            raise StoreError(f"database {self.where}: its schema is not one this inferlab knows ({exc}); it was "
                             "probably written by a newer inferlab: upgrade inferlab, or give another --db") from None

    def _at_head(self) -> bool:
        """Whether the database records this inferlab's head revision (one read; False on any doubt, and then
        Alembic decides: a new database, an old one to migrate, one written by a newer inferlab)."""
        head = head_revision()
        if head is None:
            return False
        try:
            with self.engine.connect() as conn:
                versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        except DatabaseError:  # no such table (a new file), or not a database: the migration says which
            return False
        return versions == [head]

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """An SQLite file's migration lock: flock on `<file>.lock` beside it, held until the migration is
        committed. Where that file cannot be made (a missing or read-only folder), go on without it: SQLite
        then says what is wrong with the folder, and nothing there can be created to race over."""
        path = sqlite_path(self.url)
        fd = None
        if path is not None:
            try:
                fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as exc:
                log.debug("no migration lock beside %s (%s)", path, exc)
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                os.close(fd)  # releases the lock

    def close(self) -> None:
        self.engine.dispose()

    def artifacts_root(self) -> Path:
        """The folder under which every run of this database keeps its files."""
        return artifacts_root(self.url)

    def artifacts_dir(self, run_id: str) -> Path:
        """The folder a run's trials keep their files in (created when a trial writes to it)."""
        return artifacts_root(self.url) / run_id

    # writing -----------------------------------------------------------------------------------------

    def ensure_environment(self, env_id: str, data: dict[str, Any]) -> str:
        with self.sessions.begin() as s:
            if s.get(EnvironmentRow, env_id) is None:
                s.add(EnvironmentRow(id=env_id, data=data, created_at=utc_now()))
        return env_id

    def create_run(self, name: str, config: dict[str, Any], specs: list[TrialSpec],
                   config_path: str | None = None, environment_id: str | None = None) -> str:
        """Store the run and its planned trials in one transaction; returns the run id."""
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        with self.sessions.begin() as s:
            s.add(RunRow(id=run_id, name=name, config_path=config_path, config=config, status="running",
                         environment_id=environment_id, created_at=utc_now()))
            s.add_all(_trial_row(run_id, i, spec) for i, spec in enumerate(specs))
        return run_id

    def add_trials(self, run_id: str, specs: list[TrialSpec]) -> None:
        """Append trials to a run (a tuning plans them one at a time); a spec already there is kept."""
        with self.sessions.begin() as s:
            have = set(s.scalars(select(TrialRow.spec_key).where(TrialRow.run_id == run_id)))
            position = s.scalar(select(func.count()).select_from(TrialRow).where(TrialRow.run_id == run_id)) or 0
            for spec in specs:
                if spec.key() in have:
                    continue
                have.add(spec.key())
                s.add(_trial_row(run_id, position, spec))
                position += 1

    def save_result(self, run_id: str, result: TrialResult) -> None:
        """Store a trial's result (replacing an earlier one of the same trial) in its own transaction.

        When the database refuses the write (a full disk, a read-only or failing file, a locked database, a
        server gone), the result is first kept as a file, `pending_dir(run_id)/<spec key>.json`, written
        atomically, and then the StoreError (StoreFull for a full disk) is raised with the database's message
        plus where the result is kept, or that it could not be kept either. `import_pending` stores it later."""
        try:
            outcome = self._write_result(run_id, result, replace=True)
        except StoreError as exc:  # a fault _translate named: full disk, read-only, I/O error ...
            raise self._kept(run_id, result, exc) from None
        except OperationalError as exc:  # one it did not: locked, connection lost ...
            raise self._kept(run_id, result, self._refused(exc)) from None
        if outcome == "missing":
            raise StoreError(f"run {run_id} has no trial {result.spec.label()}")

    def _write_result(self, run_id: str, result: TrialResult,
                      replace: bool) -> Literal["stored", "kept", "missing"]:
        """One transaction: the result row, its raw latencies and metrics. "kept": the trial has a result and
        `replace` is false; "missing": the run has no such trial."""
        key = result.spec.key()
        lat = result.latency
        with self.sessions.begin() as s:
            trial = s.scalar(select(TrialRow).where(TrialRow.run_id == run_id, TrialRow.spec_key == key))
            if trial is None:
                return "missing"
            old = s.scalar(select(ResultRow).where(ResultRow.trial_id == trial.id))
            if old is not None:
                if not replace:
                    return "kept"
                s.execute(delete(MetricRow).where(MetricRow.result_id == old.id))
                s.execute(delete(LayerRow).where(LayerRow.result_id == old.id))
                s.execute(delete(MemberRow).where(MemberRow.result_id == old.id))
                s.delete(old)
                s.flush()
            record = result.to_json(with_samples=False)
            if record.get("layers"):  # the layers go in their own table; the profile's figures stay here
                record["layers"] = {**record["layers"], "layers": []}
            record.pop("members", None)  # in their own table too
            row = ResultRow(
                trial_id=trial.id, environment_id=result.environment_id, status=result.status,
                reason=result.reason, throughput_sps=result.throughput_sps,
                latency_median_ms=lat.median_3sigma_ms if lat else None,
                latency_p99_ms=lat.p99_ms if lat else None, load_s=result.load_s,
                effective=dict(result.effective), record=record,
                latencies=pack_latencies(result.latencies_ns) if result.latencies_ns is not None else None,
                finished_at=result.finished_at)
            s.add(row)
            if result.layers is not None:
                s.flush()
                s.add_all(LayerRow(result_id=row.id, position=i, name=x.name, type=x.type, kernel=x.kernel,
                                   precision=x.precision, time_ms=x.time_ms, share=x.share, cpu_ms=x.cpu_ms,
                                   device=x.device) for i, x in enumerate(result.layers.layers))
            if result.members:
                s.flush()
                s.add_all(MemberRow(result_id=row.id, position=m.member, **{k: v for k, v in asdict(m).items()
                                                                           if k != "member"})
                          for m in result.members)
            if result.roofline is not None and result.environment_id is not None:
                self._keep_peaks(s, result.roofline.peaks, result.environment_id)
            if result.accuracy is not None:
                s.flush()
                acc = result.accuracy
                s.add_all(MetricRow(result_id=row.id, name=name, value=None if math.isnan(value) else value,
                                    dataset_hash=acc.dataset_hash) for name, value in acc.metrics.items())
        return "stored"

    # results the database refused --------------------------------------------------------------------

    def pending_dir(self, run_id: str) -> Path:
        """The folder where a run's results wait when the database refused them: `<db file>.pending/RUN`
        beside an SQLite file, else `<artifacts root>/pending/RUN`. One file per trial, `<spec key>.json`."""
        if not run_id or run_id in (".", "..") or "/" in run_id or os.sep in run_id:
            raise NotFound(f"'{run_id}' is not a run id; `inferlab results --runs` lists the runs")
        return pending_root(self.url) / run_id

    def pending(self, run_id: str) -> list[Path]:
        """The run's results kept as files, waiting for `import_pending`."""
        folder = self.pending_dir(run_id)
        return sorted(folder.glob("*.json")) if folder.is_dir() else []

    def import_pending(self, run_id: str) -> int:
        """Store the results of run `run_id` (its full id) that the database refused earlier and
        `save_result` kept as files; returns how many were stored. The API calls this when a run is resumed
        (`--resume`), before it asks `finished_keys` which trials are left, so a finished result is not
        measured again. Idempotent: a trial that already has a result in the database keeps it (the file is
        dropped), a file is removed only once its result is committed, and a second call finds nothing. A
        file that cannot be read, or whose trial the run does not have, stays, with a warning. Raises a
        StoreError (StoreFull) when the database still refuses the write; the files stay for the next try."""
        stored = 0
        for path in self.pending(run_id):
            result = _read_pending(path, run_id)
            if result is None:
                continue
            try:
                outcome = self._write_result(run_id, result, replace=False)
            except OperationalError as exc:
                raise self._refused(exc) from None
            if outcome == "missing":
                log.warning("%s: run %s has no trial %s; the file is left where it is", path, run_id,
                            result.spec.label())
                continue
            stored += outcome == "stored"
            path.unlink(missing_ok=True)  # another process importing the same run may have removed it
        _remove_empty(self.pending_dir(run_id))
        return stored

    def _kept(self, run_id: str, result: TrialResult, error: StoreError) -> StoreError:
        """Keep a result the database refused as a file; the error, saying where it is kept."""
        try:
            path = self._write_pending(run_id, result)
        except (OSError, TypeError, ValueError) as exc:  # the folder fails; or the record is not JSON
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            note = (f"the result of {result.spec.label()} could not be kept as a file either "
                    f"({self.pending_dir(run_id)}: {why}), so that trial runs again on resume")
        else:
            note = f"the result of {result.spec.label()} is kept in {path} until the run is resumed"
        return type(error)(f"{error}; {note}")

    def _write_pending(self, run_id: str, result: TrialResult) -> Path:
        """Write the result's file atomically (a temporary file, synced, renamed into place)."""
        folder = self.pending_dir(run_id)
        key = result.spec.key()
        samples = result.latencies_ns
        blob = json.dumps({
            "format": PENDING_FORMAT, "version": 1, "run_id": run_id, "spec_key": key, "kept_at": utc_now(),
            "result": result.to_json(with_samples=False),
            # the raw latencies as the database keeps them (zlib-compressed little-endian int64), base64
            "latencies_zlib_b64": base64.b64encode(pack_latencies(samples)).decode() if samples is not None else None,
        }, separators=(",", ":")).encode()
        final = folder / f"{key}.json"
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            _remove_empty(folder)
            raise
        _sync_folder(folder)
        return final

    def _refused(self, exc: OperationalError) -> StoreError:
        """A database refusal that _translate does not name (a locked database, a connection lost)."""
        text = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        return StoreError(f"{self.where}: the database refused the write ({text}); check that it is reachable "
                          "and not locked by another program, then resume the run")

    def finish_run(self, run_id: str, status: str) -> None:
        with self.sessions.begin() as s:
            row = s.get(RunRow, run_id)
            if row is not None:
                row.status = status
                row.finished_at = utc_now()

    # reading -----------------------------------------------------------------------------------------

    def _run(self, s: Session, run_id: str | None) -> RunRow:
        if run_id is None or run_id == "latest":
            row = s.scalar(select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(1))
            if row is None:
                raise NotFound(f"{self.url}: no runs stored yet; run `inferlab run CONFIG` first")
            return row
        row = s.get(RunRow, run_id)
        if row is None:
            matches = s.scalars(select(RunRow).where(RunRow.id.like(f"%{run_id}%"))).all()
            if len(matches) == 1:
                return matches[0]
            raise NotFound(f"run '{run_id}' is not in {self.url}; `inferlab results --runs` lists the runs")
        return row

    def run_info(self, run_id: str | None = None) -> RunInfo:
        with self.sessions() as s:
            row = self._run(s, run_id)
            return self._info(s, row)

    def _info(self, s: Session, row: RunRow) -> RunInfo:
        trials = s.scalar(select(func.count()).select_from(TrialRow).where(TrialRow.run_id == row.id)) or 0
        done = s.scalar(select(func.count()).select_from(ResultRow).join(TrialRow)
                        .where(TrialRow.run_id == row.id)) or 0
        return RunInfo(row.id, row.name, row.status, row.created_at, row.finished_at, trials, done,
                       row.config_path, row.environment_id)

    def runs(self) -> list[RunInfo]:
        with self.sessions() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.created_at, RunRow.id)).all()
            return [self._info(s, r) for r in rows]

    def specs(self, run_id: str) -> list[TrialSpec]:
        with self.sessions() as s:
            rows = s.scalars(select(TrialRow).where(TrialRow.run_id == run_id).order_by(TrialRow.position))
            return [TrialSpec.from_json(r.spec) for r in rows]

    def finished_keys(self, run_id: str) -> set[str]:
        with self.sessions() as s:
            rows = s.scalars(select(TrialRow.spec_key).join(ResultRow).where(TrialRow.run_id == run_id))
            return set(rows)

    def results(self, run_id: str | None = None, with_samples: bool = False) -> list[TrialResult]:
        with self.sessions() as s:
            run = self._run(s, run_id)
            rows = s.execute(select(ResultRow, TrialRow.position).join(TrialRow)
                             .where(TrialRow.run_id == run.id).order_by(TrialRow.position)).all()
            layers = self._layers(s, [row.id for row, _ in rows if (row.record.get("layers") or {})])
            members = self._members(s, [row.id for row, _ in rows])
            out = []
            for row, _ in rows:
                r = TrialResult.from_json({**row.record, "members": members.get(row.id, [])})
                if with_samples and row.latencies is not None:
                    r = r.with_(latencies_ns=unpack_latencies(row.latencies))
                if r.layers is not None:
                    r = r.with_(layers=dataclasses.replace(r.layers, layers=tuple(layers.get(row.id, ()))))
                out.append(r)
            return out

    @staticmethod
    def _layers(s: Session, result_ids: list[int]) -> dict[int, list[LayerRecord]]:
        out: dict[int, list[LayerRecord]] = {}
        if not result_ids:
            return out
        q = select(LayerRow).where(LayerRow.result_id.in_(result_ids)).order_by(LayerRow.result_id,
                                                                                  LayerRow.position)
        for x in s.scalars(q):
            out.setdefault(x.result_id, []).append(LayerRecord(x.name, x.type, x.kernel, x.precision, x.time_ms,
                                                               x.share, x.position, x.cpu_ms, x.device))
        return out

    @staticmethod
    def _members(s: Session, result_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        if not result_ids:
            return out
        q = select(MemberRow).where(MemberRow.result_id.in_(result_ids)).order_by(MemberRow.result_id,
                                                                                    MemberRow.position)
        for m in s.scalars(q):
            out.setdefault(m.result_id, []).append(
                {"member": m.position, **{f.name: getattr(m, f.name) for f in fields(MemberResult)
                                          if f.name != "member"}})
        return out

    # device peaks (the roofline's roofs) ---------------------------------------------------------------

    @staticmethod
    def _keep_peaks(s: Session, peaks: Peaks, environment_id: str) -> None:
        """Keep the best roofs measured on this environment for (backend, device, precision): a peak is the
        most the device was seen to do, so a slower measurement (a busy moment) never lowers it."""
        old = s.scalar(select(PeaksRow).where(PeaksRow.environment_id == environment_id,
                                              PeaksRow.backend == peaks.backend, PeaksRow.device == peaks.device,
                                              PeaksRow.precision == peaks.precision))
        if old is None:
            s.add(PeaksRow(environment_id=environment_id, backend=peaks.backend, device=peaks.device,
                           precision=peaks.precision, flops_per_s=peaks.flops_per_s, bytes_per_s=peaks.bytes_per_s,
                           record=peaks.to_json(), measured_at=peaks.measured_at or utc_now()))
            return
        best = Peaks.from_json(old.record)
        merged = dataclasses.replace(
            best, flops_per_s=max(best.flops_per_s, peaks.flops_per_s), bytes_per_s=max(best.bytes_per_s,
                                                                                        peaks.bytes_per_s),
            gemm=peaks.gemm if peaks.flops_per_s > best.flops_per_s else best.gemm,
            stream=peaks.stream if peaks.bytes_per_s > best.bytes_per_s else best.stream)
        old.flops_per_s, old.bytes_per_s, old.record = merged.flops_per_s, merged.bytes_per_s, merged.to_json()

    def peaks(self, environment_id: str | None = None) -> list[Peaks]:
        """The roofs kept per environment, backend, device and precision (one environment's, or all)."""
        with self.sessions() as s:
            q = select(PeaksRow).order_by(PeaksRow.environment_id, PeaksRow.backend, PeaksRow.device,
                                          PeaksRow.precision)
            if environment_id is not None:
                q = q.where(PeaksRow.environment_id == environment_id)
            return [Peaks.from_json({**r.record, "environment_id": r.environment_id}) for r in s.scalars(q)]

    def metrics(self, dataset_hash: str | None = None) -> list[tuple[str, str, str, float | None]]:
        """(run id, trial label, metric, value) for every stored metric, optionally on one dataset."""
        with self.sessions() as s:
            q = (select(TrialRow.run_id, TrialRow.label, MetricRow.name, MetricRow.value)
                 .join(ResultRow, ResultRow.id == MetricRow.result_id).join(TrialRow, TrialRow.id == ResultRow.trial_id)
                 .order_by(TrialRow.run_id, TrialRow.position, MetricRow.name))
            if dataset_hash is not None:
                q = q.where(MetricRow.dataset_hash == dataset_hash)
            return [tuple(r) for r in s.execute(q).all()]  # type: ignore[misc]

    # lineage ------------------------------------------------------------------------------------------

    def save_artifact(self, lineage: Lineage) -> None:
        """Record a derived artifact (replacing an earlier record of the same content)."""
        data = lineage.to_json()
        with self.sessions.begin() as s:
            old = s.get(ArtifactRow, lineage.hash)
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(ArtifactRow(**data))

    def artifact(self, ref: str) -> Lineage | None:
        """A derived artifact by content hash (or a unique prefix of it), or by its path."""
        with self.sessions() as s:
            row = s.get(ArtifactRow, ref) or s.scalar(select(ArtifactRow).where(ArtifactRow.path == ref))
            if row is None and len(ref) >= 6:
                rows = s.scalars(select(ArtifactRow).where(ArtifactRow.hash.like(f"{ref}%"))).all()
                row = rows[0] if len(rows) == 1 else None
            return _lineage(row) if row is not None else None

    def lineage(self, ref: str) -> list[Lineage]:
        """The artifact and its ancestors that inferlab derived, newest first."""
        chain: list[Lineage] = []
        current = self.artifact(ref)
        while current is not None and all(c.hash != current.hash for c in chain):
            chain.append(current)
            current = self.artifact(current.parent_hash) if current.parent_hash else None
        return chain

    def artifacts(self) -> list[Lineage]:
        with self.sessions() as s:
            return [_lineage(r) for r in s.scalars(select(ArtifactRow).order_by(ArtifactRow.created_at)).all()]

    # tuning studies -----------------------------------------------------------------------------------

    def create_study(self, run_id: str, data: dict[str, Any]) -> None:
        with self.sessions.begin() as s:
            s.add(StudyRow(run_id=run_id, data=data, status="running", created_at=utc_now()))

    def save_study_trial(self, run_id: str, position: int, state: str, spec_key: str | None,
                         record: dict[str, Any]) -> None:
        with self.sessions.begin() as s:
            s.add(StudyTrialRow(run_id=run_id, position=position, state=state, spec_key=spec_key, record=record))

    def finish_study(self, run_id: str, status: str, best: dict[str, Any] | None) -> None:
        with self.sessions.begin() as s:
            row = s.get(StudyRow, run_id)
            if row is not None:
                row.status, row.best, row.finished_at = status, best, utc_now()

    def study(self, run_id: str | None) -> tuple[str, dict[str, Any], str, dict[str, Any] | None,
                                                 list[dict[str, Any]]]:
        """(run id, study data, status, best, trial records in order) of a tuning run ('latest': the newest)."""
        with self.sessions() as s:
            if run_id in (None, "latest"):
                row = s.scalar(select(StudyRow).order_by(StudyRow.created_at.desc()).limit(1))
                if row is None:
                    raise NotFound(f"{self.url}: no tuning studies stored yet; run `inferlab tune CONFIG` first")
            else:
                row = s.get(StudyRow, self._run(s, run_id).id)
                if row is None:
                    raise NotFound(f"run '{run_id}' is not a tuning run; `inferlab results --runs` lists runs")
            trials = s.scalars(select(StudyTrialRow).where(StudyTrialRow.run_id == row.run_id)
                               .order_by(StudyTrialRow.position)).all()
            return row.run_id, dict(row.data), row.status, row.best, [dict(t.record) for t in trials]

    def environment(self, env_id: str) -> dict[str, Any] | None:
        with self.sessions() as s:
            row = s.get(EnvironmentRow, env_id)
            return dict(row.data) if row else None


def _lock_server_migration(conn: Connection) -> None:
    """On PostgreSQL, processes migrating one database at once take turns: an advisory lock held by the
    migration's transaction, released when it commits or rolls back."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def _read_pending(path: Path, run_id: str) -> TrialResult | None:
    """A kept result, or None (with a warning) when the file is not one of this run's."""
    try:
        data = json.loads(path.read_bytes())
        if data.get("format") != PENDING_FORMAT or data.get("run_id") != run_id or data.get("spec_key") != path.stem:
            raise ValueError("not a kept result of this run")
        result = TrialResult.from_json(data["result"])
        if result.spec.key() != path.stem:
            raise ValueError("its trial is not the one its name says")
        if data.get("latencies_zlib_b64") is not None:
            result = result.with_(latencies_ns=unpack_latencies(base64.b64decode(data["latencies_zlib_b64"])))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zlib.error) as exc:
        log.warning("%s: not a readable kept result (%s); the file is left where it is", path, exc)
        return None
    return result


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: some file systems cannot sync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _remove_empty(folder: Path) -> None:
    """Remove a run's pending folder, and the pending root, when nothing is left in them."""
    for f in (folder, folder.parent):
        try:
            f.rmdir()
        except OSError:
            return


def _trial_row(run_id: str, position: int, spec: TrialSpec) -> TrialRow:
    return TrialRow(run_id=run_id, position=position, spec_key=spec.key(), label=spec.label(), model=spec.model.name,
                    model_hash=spec.model.hash, backend=spec.backend, device=spec.device, batch=spec.batch,
                    mode=spec.mode, spec=spec.to_json())


def _lineage(row: ArtifactRow) -> Lineage:
    return Lineage(row.hash, row.name, row.path, row.format, row.parent_hash, row.parent_path, row.method,
                   dict(row.params), row.calibration_hash, dict(row.outcome), row.size_bytes, row.created_at)


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _fault(where: str, exc: BaseException) -> StoreError | None:
    """The one-line error for a database fault the user can fix (None: not one of those)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if "database or disk is full" in low or "no space left on device" in low \
            or getattr(exc, "sqlstate", None) == "53100" or getattr(exc, "pgcode", None) == "53100":
        return StoreFull(f"{where}: the database's disk is full ({text}); free space there, or store results "
                         "elsewhere with --db")
    if "file is not a database" in low:
        return StoreError(f"{where}: not an SQLite database ({text}); it is another kind of file or damaged: "
                          "give another --db path, or move the file away to start a new database there")
    if "malformed" in low:
        return StoreError(f"{where}: the database file is damaged ({text}); restore it from a backup, recover "
                          f"it with `sqlite3 {where} .recover`, or give another --db path")
    if "readonly database" in low:
        return StoreError(f"{where}: the database cannot be written ({text}); make the file and its folder "
                          "writable, or give another --db path")
    if "disk i/o error" in low:
        return StoreError(f"{where}: the disk failed while reading or writing the database ({text}); check the "
                          "disk (and that the file was not removed), then try again")
    return None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()
