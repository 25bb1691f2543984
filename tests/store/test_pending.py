"""A result the database refuses (a full disk, a size limit) is kept as a file beside the database, written
atomically, and `import_pending` stores it once the database takes writes again, exactly once.

Full disks are real: a database whose file may not grow (PRAGMA max_page_count, SQLite's own SQLITE_FULL), and,
as root, small tmpfs mounts filled to the last byte (skipped elsewhere, saying why)."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from inferlab.errors import StoreFull
from inferlab.measure.stats import latency_stats
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.trial import MeasureSettings, TrialResult, TrialSpec
from inferlab.store import Store


def _spec(batch: int) -> TrialSpec:
    art = Artifact("m", "/x/m.onnx", ModelFormat.ONNX, "ab" * 32)
    return TrialSpec(art, "onnxruntime", "cpu", (("intra_op_threads", 1),), batch, "latency", MeasureSettings())


def _result(spec: TrialSpec, seed: int, n: int = 3000) -> TrialResult:
    """A finished result whose raw latencies do not compress: each one takes pages."""
    ns = np.random.default_rng(seed).integers(1_000_000, 10**9, n)
    return TrialResult(spec=spec, status="ok", load_s=0.1, latency=latency_stats(ns), throughput_sps=400.0 + seed,
                       latencies_ns=ns, effective={"intra_op_threads": 1}, finished_at="2026-12-01T00:00:00")


def _limited(path: Path, pages: int) -> Store:
    """A store whose database file may not grow past `pages` pages."""
    store = Store(str(path))
    store.engine.dispose()
    event.listen(store.engine, "connect", lambda con, _rec: con.execute(f"PRAGMA max_page_count={pages}"))
    return store


def _fill_until_refused(store: Store, run_id: str, specs: list[TrialSpec]) -> tuple[TrialResult, StoreFull]:
    """Save results until the database refuses one; that result and the error."""
    for i, spec in enumerate(specs):
        result = _result(spec, i)
        try:
            store.save_result(run_id, result)
        except StoreFull as exc:
            return result, exc
    raise AssertionError("the database never filled up")


def _same(back: TrialResult, want: TrialResult) -> None:
    assert back == want  # every field but the raw samples (compare=False) ...
    assert back.latencies_ns is not None and want.latencies_ns is not None
    np.testing.assert_array_equal(back.latencies_ns, want.latencies_ns)  # ... and the raw samples too


def test_a_refused_result_is_kept_as_a_file_and_imported_once(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    store = _limited(db, 60)
    specs = [_spec(b) for b in range(1, 40)]
    run_id = store.create_run("t", {}, specs)
    lost, exc = _fill_until_refused(store, run_id, specs)
    kept = tmp_path / "full.db.pending" / run_id / f"{lost.spec.key()}.json"
    message = str(exc)
    assert message.startswith(f"{db}: the database's disk is full (database or disk is full); free space there")
    assert f"the result of {lost.spec.label()} is kept in {kept} until the run is resumed" in message
    assert "\n" not in message
    assert kept.is_file() and store.pending(run_id) == [kept]
    assert [p.name for p in kept.parent.iterdir()] == [kept.name]  # no temporary file left behind
    assert json.loads(kept.read_text())["spec_key"] == lost.spec.key()
    saved = store.run_info(run_id).done
    assert lost.spec.key() not in store.finished_keys(run_id)  # resume sees only what the database holds
    assert len(store.finished_keys(run_id)) == saved
    with pytest.raises(StoreFull):  # still full: the file stays for the next try
        store.import_pending(run_id)
    assert kept.is_file()
    store.close()

    store = Store(str(db))  # space again: no page limit on this connection
    assert store.import_pending(run_id) == 1
    assert not kept.exists() and not (tmp_path / "full.db.pending").exists()
    assert lost.spec.key() in store.finished_keys(run_id) and store.run_info(run_id).done == saved + 1
    (back,) = [r for r in store.results(run_id, with_samples=True) if r.spec == lost.spec]
    _same(back, lost)
    assert store.import_pending(run_id) == 0  # idempotent
    assert len(store.results(run_id)) == saved + 1
    store.close()


def test_a_trial_stored_since_is_not_stored_twice(tmp_path: Path) -> None:
    """The run was resumed without importing, and the trial ran again: the newer stored result stays."""
    db = tmp_path / "full.db"
    store = _limited(db, 60)
    specs = [_spec(b) for b in range(1, 40)]
    run_id = store.create_run("t", {}, specs)
    lost, _ = _fill_until_refused(store, run_id, specs)
    store.close()
    store = Store(str(db))
    rerun = _result(lost.spec, 999)
    store.save_result(run_id, rerun)
    assert store.import_pending(run_id) == 0
    assert store.pending(run_id) == []
    (back,) = [r for r in store.results(run_id, with_samples=True) if r.spec == lost.spec]
    _same(back, rerun)
    store.close()


def test_a_file_that_is_not_a_kept_result_stays(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(str(tmp_path / "a.db"))
    spec = _spec(1)
    run_id = store.create_run("t", {}, [spec])
    folder = store.pending_dir(run_id)
    folder.mkdir(parents=True)
    junk = folder / f"{spec.key()}.json"
    junk.write_text('{"format": "inferlab-pending-result", "trunc')
    other = store.pending_dir("20260101-000000-ffff") / f"{spec.key()}.json"  # another run's: not this one's
    other.parent.mkdir(parents=True)
    shutil.copy(junk, other)
    with caplog.at_level(logging.WARNING, logger="inferlab.store.repository"):
        assert store.import_pending(run_id) == 0
    assert junk.exists() and other.exists()
    assert f"{junk}: not a readable kept result" in caplog.text
    assert store.finished_keys(run_id) == set()
    store.close()


def test_a_result_for_a_trial_the_run_does_not_have_is_not_kept(tmp_path: Path) -> None:
    """Not a refusal of the database: nothing to keep, the error is as before."""
    store = Store(str(tmp_path / "a.db"))
    run_id = store.create_run("t", {}, [_spec(1)])
    with pytest.raises(Exception, match=f"run {run_id} has no trial"):
        store.save_result(run_id, _result(_spec(2), 0))
    assert store.pending(run_id) == [] and not (tmp_path / "a.db.pending").exists()
    store.close()


def test_a_server_database_keeps_its_pending_results_under_the_artifacts_root(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from inferlab.store.repository import pending_root

    monkeypatch.setenv("INFERLAB_ARTIFACTS", str(tmp_path / "art"))
    assert pending_root("postgresql://u@h/db") == tmp_path / "art" / "pending"
    assert pending_root(f"sqlite:///{tmp_path}/r.db") == tmp_path / "r.db.pending"  # beside the file, always


# a real full disk (root: tmpfs mounts) ----------------------------------------------------------------------


@pytest.fixture
def mount() -> Iterator[Callable[[Path, str], Path]]:
    """Mount small tmpfs file systems; unmounted afterwards."""
    mounted: list[Path] = []

    def make(path: Path, size: str) -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a real full disk needs root to mount a tmpfs")
        path.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "inferlab-test", str(path)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {out.stderr.strip()}")
        mounted.append(path)
        return path

    yield make
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _fill(disk: Path) -> Path:
    """Write until the disk has not one byte left."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_keeps_the_result_and_resume_stores_it(tmp_path: Path, mount: Callable[[Path, str], Path]) -> None:
    """The database's disk is full to the last byte; its pending folder is a disk of its own with room."""
    disk = mount(tmp_path / "disk", "4m")
    db = disk / "r.db"
    mount(disk / "r.db.pending", "4m")
    store = Store(str(db))
    specs = [_spec(1), _spec(2)]
    run_id = store.create_run("t", {}, specs)
    store.save_result(run_id, _result(specs[0], 0))
    filler = _fill(disk)
    lost = _result(specs[1], 1, n=20000)
    with pytest.raises(StoreFull) as exc:
        store.save_result(run_id, lost)
    kept = disk / "r.db.pending" / run_id / f"{specs[1].key()}.json"
    assert str(exc.value).startswith(f"{db}: the database's disk is full (database or disk is full)")
    assert f"is kept in {kept} until the run is resumed" in str(exc.value)
    assert kept.is_file() and store.finished_keys(run_id) == {specs[0].key()}
    with pytest.raises(StoreFull):
        store.import_pending(run_id)  # still full
    assert kept.is_file()

    filler.unlink()  # free space
    assert store.import_pending(run_id) == 1
    assert not kept.exists()
    assert store.finished_keys(run_id) == {specs[0].key(), specs[1].key()}
    _same(store.results(run_id, with_samples=True)[1], lost)
    assert store.import_pending(run_id) == 0
    store.close()


def test_a_disk_too_full_for_the_file_too_says_so(tmp_path: Path, mount: Callable[[Path, str], Path]) -> None:
    disk = mount(tmp_path / "disk", "4m")
    db = disk / "r.db"
    store = Store(str(db))
    specs = [_spec(1), _spec(2)]
    run_id = store.create_run("t", {}, specs)
    store.save_result(run_id, _result(specs[0], 0))
    _fill(disk)
    with pytest.raises(StoreFull) as exc:
        store.save_result(run_id, _result(specs[1], 1, n=20000))
    message = str(exc.value)
    assert message.startswith(f"{db}: the database's disk is full (database or disk is full)")
    assert (f"the result of {specs[1].label()} could not be kept as a file either ({disk}/r.db.pending/{run_id}: "
            "No space left on device), so that trial runs again on resume") in message
    assert "\n" not in message
    assert not (disk / "r.db.pending").exists()  # no empty folder or half-written file left behind
    store.close()
