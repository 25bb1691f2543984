"""Opening a database already at this inferlab's schema revision skips Alembic; any other is still migrated."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from inferlab.store.repository import MIGRATIONS, head_revision

OPEN = "import sys; from inferlab.store import Store; Store(sys.argv[1]).close(); print('alembic' in sys.modules)"


def _alembic_imported_on_open(path: Path) -> bool:
    """Open the database in a fresh interpreter; whether Alembic was imported to do it."""
    out = subprocess.run([sys.executable, "-c", OPEN, str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def _version(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("select version_num from alembic_version").fetchone()[0]
    finally:
        con.close()


def test_the_head_read_from_the_files_is_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def test_a_current_database_opens_without_alembic(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    assert _alembic_imported_on_open(path)  # a new file: created by the migrations
    assert _version(path) == head_revision()
    assert not _alembic_imported_on_open(path)  # at head: one read, no migration


def test_an_old_database_is_still_migrated(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    path = tmp_path / "old.db"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    command.upgrade(cfg, "0002")
    assert _alembic_imported_on_open(path)
    assert _version(path) == head_revision()
    con = sqlite3.connect(path)
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    con.close()
    assert {"studies", "study_trials"} <= tables  # revision 0003's tables
