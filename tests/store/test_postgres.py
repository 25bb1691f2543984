"""The store on a real PostgreSQL server (started privately by the test, on a Unix socket)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferlab import api
from inferlab.config import load_text
from inferlab.store import Store
from tests.conftest import FAST_MEASURE


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _as_server_user(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root: run the server as the 'postgres' account the package created.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries here (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'inferlab[postgresql]')")
    root = Path(tempfile.mkdtemp(prefix="inferlab-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    opts = f"-k {sock} -c listen_addresses='' -p 5499"
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l",
                                    str(root / "log"), "start"]), check=True, capture_output=True)
    try:
        subprocess.run(_as_server_user([str(bin_dir / "createdb"), "-h", str(sock), "-p", "5499", "-U", "postgres",
                                        "inferlab"]), check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@/inferlab?host={sock}&port=5499"
    finally:
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_run_stored_in_postgresql(pg_url: str, tiny_models: dict[str, str]) -> None:
    text = (f"name: pg\nmodels: [{{path: {tiny_models['tiny.onnx']}}}]\nbackends: [{{name: onnxruntime}}]\n"
            f"batch: [1, 2]\nmeasure: {FAST_MEASURE}\n")
    run = api.execute(load_text(text), db=pg_url)
    assert run.ok and len(run.results) == 2
    store = Store(pg_url)
    back = store.results(run.id, with_samples=True)
    assert [r.spec.batch for r in back] == [1, 2]
    assert all(r.latencies_ns is not None and r.latencies_ns.size == r.requests for r in back)
    assert store.run_info(run.id).status == "finished"
    env = store.environment(back[0].environment_id or "")
    assert env is not None and env["cpu_threads"] >= 1


def test_four_processes_create_one_new_postgresql_database_at_once(pg_url: str, tmp_path: Path) -> None:
    """The migration takes a transaction-scoped advisory lock: concurrent first opens take turns."""
    from sqlalchemy import create_engine, text

    from tests.store.test_open_at_once import _head, open_at_once

    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    names = [f"fresh{i}" for i in range(3)]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    urls = [pg_url.replace("/inferlab?", f"/{name}?") for name in names]
    for url, outcome in zip(urls, open_at_once(tmp_path, urls), strict=True):
        assert outcome == ["ok"] * 4, f"{url}: {outcome}"
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("select version_num from alembic_version")).all() == [(_head(),)]
        engine.dispose()


def test_a_url_with_percent_escapes_opens(pg_url: str) -> None:
    """A password or socket path percent-escaped in the URL (%2F) is not read as ConfigParser interpolation."""
    from sqlalchemy import make_url

    escaped = make_url(pg_url).render_as_string(hide_password=False)
    assert "%2F" in escaped
    store = Store(escaped)
    run_id = store.create_run("percent", {}, [])
    assert store.run_info(run_id).name == "percent"
    store.close()
