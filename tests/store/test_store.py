"""The store: migrations, one transaction per result, compressed raw latencies, environments, lookups."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from inferlab.errors import StoreError, StoreFull
from inferlab.measure.stats import latency_stats
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.trial import MeasureSettings, TrialResult, TrialSpec
from inferlab.store import Store, data_dir, default_location, resolve_url
from inferlab.store.repository import artifacts_root, pack_latencies, unpack_latencies


def _spec(batch: int) -> TrialSpec:
    art = Artifact("m", "/x/m.onnx", ModelFormat.ONNX, "ab" * 32)
    return TrialSpec(art, "onnxruntime", "cpu", (("intra_op_threads", 1),), batch, "latency", MeasureSettings())


def _result(spec: TrialSpec, env: str) -> TrialResult:
    ns = np.arange(1, 1001, dtype=np.int64) * 1000 + 2_000_000
    return TrialResult(spec=spec, status="ok", load_s=0.1, latency=latency_stats(ns), throughput_sps=400.0,
                       latencies_ns=ns, environment_id=env, effective={"intra_op_threads": 1},
                       finished_at="2026-11-23T00:00:00")


def test_roundtrip_with_raw_latencies(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "a.db"))
    env = store.ensure_environment("e1", {"cpu": "x"})
    specs = [_spec(1), _spec(8)]
    run_id = store.create_run("t", {"name": "t"}, specs, "/c.yaml", env)
    r = _result(specs[0], env)
    store.save_result(run_id, r)
    (back,) = store.results(run_id, with_samples=True)
    assert back.spec == specs[0]
    assert back.latency == r.latency
    assert back.latencies_ns is not None
    np.testing.assert_array_equal(back.latencies_ns, r.latencies_ns)
    # statistics recomputed from the stored raw samples equal the stored ones
    assert latency_stats(back.latencies_ns) == r.latency
    assert store.finished_keys(run_id) == {specs[0].key()}
    info = store.run_info(run_id)
    assert (info.trials, info.done, info.status) == (2, 1, "running")
    assert store.environment(env) == {"cpu": "x"}


def test_saving_again_replaces_the_result(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "a.db"))
    spec = _spec(1)
    run_id = store.create_run("t", {}, [spec])
    store.save_result(run_id, _result(spec, None))  # type: ignore[arg-type]
    store.save_result(run_id, _result(spec, None).with_(throughput_sps=500.0))  # type: ignore[arg-type]
    (r,) = store.results(run_id)
    assert r.throughput_sps == 500.0


def test_latencies_are_compressed() -> None:
    ns = (np.random.default_rng(0).normal(2e6, 1e4, 20000)).astype(np.int64)
    blob = pack_latencies(ns)
    assert len(blob) < ns.nbytes * 0.6
    np.testing.assert_array_equal(unpack_latencies(blob), ns)


def test_schema_is_versioned_by_alembic(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    Store(str(path))
    con = sqlite3.connect(path)
    assert con.execute("select version_num from alembic_version").fetchone() == ("0006",)
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert {"runs", "trials", "results", "environments", "metrics", "artifacts", "studies", "study_trials", "layers",
            "peaks", "members"} <= tables
    columns = {r[1] for r in con.execute("pragma table_info(members)")}
    assert {"device", "share", "model", "alone_throughput_sps", "alone_latency_median_ms", "interference",
            "accuracy"} <= columns
    con.close()
    Store(str(path))  # opening again is a no-op migration


def test_a_version_1_database_is_migrated_keeping_its_runs(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from inferlab.store.repository import MIGRATIONS

    path = tmp_path / "old.db"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    command.upgrade(cfg, "0001")
    con = sqlite3.connect(path)
    con.execute("insert into runs (id, name, config, status, created_at) values ('r1', 'old', '{}', 'finished', 't')")
    con.commit()
    con.close()
    store = Store(str(path))
    assert [r.id for r in store.runs()] == ["r1"] and store.artifacts() == []
    with pytest.raises(StoreError, match="run 'r1' is not a tuning run"):
        store.study("r1")
    store.close()


def test_latest_and_partial_run_ids(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "a.db"))
    with pytest.raises(StoreError, match="no runs stored yet"):
        store.run_info()
    a = store.create_run("a", {}, [_spec(1)])
    assert store.run_info("latest").id == a
    assert store.run_info(a[-4:]).id == a
    with pytest.raises(StoreError, match="run 'nope' is not in"):
        store.run_info("nope")


def test_url_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve_url() == f"sqlite:///{tmp_path}/data/inferlab/inferlab.db"
    assert resolve_url("x.db") == f"sqlite:///{tmp_path}/x.db"
    monkeypatch.setenv("INFERLAB_DB", "postgresql://u@h/db")
    assert resolve_url() == "postgresql://u@h/db" == default_location()
    assert resolve_url("x.db") == f"sqlite:///{tmp_path}/x.db"  # --db wins


def test_default_location_is_per_user_not_per_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """XDG_DATA_HOME when set (and absolute, as the XDG spec asks), else ~/.local/share; never the cwd."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_location() == f"{tmp_path}/home/.local/share/inferlab/inferlab.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert default_location() == f"{tmp_path}/home/.local/share/inferlab/inferlab.db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_location() == f"{tmp_path}/xdg/inferlab/inferlab.db"
    for cwd in (tmp_path, tmp_path / "home"):  # the same database from every folder, its folder created
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        store = Store()
        assert store.url == f"sqlite:///{tmp_path}/xdg/inferlab/inferlab.db"
        assert store.artifacts_dir("r1") == tmp_path / "xdg/inferlab/inferlab-artifacts/r1"
        store.close()
    assert not (tmp_path / "inferlab.db").exists() and not (tmp_path / "home" / "inferlab.db").exists()


def test_artifacts_follow_the_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifacts_root(f"sqlite:///{tmp_path}/db/r.db") == tmp_path / "db" / "inferlab-artifacts"
    # a server database has no folder: its files go to the per-user data folder, not the working directory
    assert artifacts_root("postgresql://u@h/db") == data_dir() / "inferlab-artifacts"
    monkeypatch.setenv("INFERLAB_ARTIFACTS", str(tmp_path / "elsewhere"))
    assert artifacts_root(f"sqlite:///{tmp_path}/db/r.db") == tmp_path / "elsewhere"


def test_unusable_url_is_a_one_line_error() -> None:
    with pytest.raises(StoreError, match="not a usable database URL"):
        Store("nosuchdialect://x/y")


def test_unwritable_path_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        Store(str(tmp_path / "missing-dir" / "a.db"))


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(StoreError, match=f"^{bad}: not an SQLite database \\(file is not a database\\); ") as exc:
        Store(str(bad))
    assert "\n" not in str(exc.value) and "move the file away" in str(exc.value)
    assert bad.read_text().startswith("these are my notes")  # left as it was


def test_a_database_from_a_newer_inferlab_is_named(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(str(path)).close()
    con = sqlite3.connect(path)
    con.execute("update alembic_version set version_num = '0099'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"its schema is not one this inferlab knows.*upgrade inferlab"):
        Store(str(path))


def test_a_full_database_keeps_what_was_committed(tmp_path: Path) -> None:
    """A real SQLITE_FULL: the file may not grow past PRAGMA max_page_count pages."""
    store = Store(str(tmp_path / "full.db"))
    store.engine.dispose()
    event.listen(store.engine, "connect", lambda con, _rec: con.execute("PRAGMA max_page_count=60"))
    specs = [_spec(b) for b in range(1, 40)]
    run_id = store.create_run("t", {}, specs)
    rng = np.random.default_rng(0)
    saved = 0
    with pytest.raises(StoreFull, match=f"^{tmp_path}/full.db: the database's disk is full \\(database or disk is "
                                        "full\\); free space there"):
        for spec in specs:  # incompressible latencies: each result takes pages
            store.save_result(run_id, _result(spec, None).with_(latencies_ns=rng.integers(0, 10**9, 3000)))  # type: ignore[arg-type]
            saved += 1
    assert 0 < saved < len(specs)
    assert len(store.results(run_id)) == saved and store.run_info(run_id).done == saved  # no half-written row
    store.finish_run(run_id, "stopped")  # a small update still fits
    assert store.run_info(run_id).status == "stopped"
