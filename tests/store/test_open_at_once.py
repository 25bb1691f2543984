"""Several processes opening one new database at the same moment (`inferlab results --db new.db` started four
times at once): they take turns creating it, every one of them succeeds, and the schema ends at head."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from inferlab.errors import StoreError
from inferlab.store import Store
from inferlab.store.repository import MIGRATIONS

# Each process imports everything once; then, for each database in turn, it says it is ready and waits for
# that database's go file, so the opens collide. It prints one line per database: "ok" or the error.
_OPEN = """
import os, sys, time
from inferlab.store import Store
folder, urls = sys.argv[1], sys.argv[2:]
for i, url in enumerate(urls):
    open(os.path.join(folder, f"ready-{i}-{os.getpid()}"), "w").close()
    while not os.path.exists(os.path.join(folder, f"go-{i}")):
        time.sleep(0.001)
    try:
        Store(url).close()
        print("ok", flush=True)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", flush=True)
"""


def _head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def open_at_once(folder: Path, urls: list[str], processes: int = 4) -> list[list[str]]:
    """Start `processes` real interpreters; all open each of `urls` as a Store at the same moment, one url
    after the other. Returns, per url, each process's outcome ("ok" or the error)."""
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN, str(folder), *urls], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    try:
        for i in range(len(urls)):
            deadline = time.monotonic() + 120
            while len(list(folder.glob(f"ready-{i}-*"))) < processes:
                assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
                assert time.monotonic() < deadline, "the processes did not get ready"
                time.sleep(0.01)
            (folder / f"go-{i}").touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    lines = [out.splitlines() for out, _ in outs]
    return [[proc_lines[i] for proc_lines in lines] for i in range(len(urls))]


def test_four_processes_create_one_new_sqlite_file_at_once(tmp_path: Path) -> None:
    dbs = [tmp_path / f"new-{attempt}.db" for attempt in range(5)]  # a collision is likely, not certain
    outcomes = open_at_once(tmp_path, [str(db) for db in dbs])
    for db, outcome in zip(dbs, outcomes, strict=True):
        assert outcome == ["ok"] * 4, f"{db.name}: {outcome}"
        con = sqlite3.connect(db)
        try:
            assert con.execute("select version_num from alembic_version").fetchall() == [(_head(),)]
            tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
            assert {"runs", "trials", "results", "environments", "metrics", "artifacts", "studies"} <= tables
        finally:
            con.close()
        assert db.with_name(db.name + ".lock").exists()  # the lock file lives beside the database


def test_a_missing_folder_is_still_named_by_the_open(tmp_path: Path) -> None:
    """No lock file can be made in a folder that does not exist: the open names the fault, as before."""
    with pytest.raises(StoreError, match="cannot open"):
        Store(str(tmp_path / "missing" / "a.db"))
    assert not (tmp_path / "missing").exists()
