"""The workbench under test: the real application (FastAPI) over a real SQLite file, called in-process through
Starlette's test client with the loopback as its address, or served by `inferlab serve` for the browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the workbench needs inferlab[web]")

from fastapi.testclient import TestClient

from inferlab.web.app import create_app
from inferlab.web.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHANGE = {"X-Inferlab": "1"}  # what the workbench's pages send with every request that changes something


def make_client(tmp: Path, host: str = "127.0.0.1", token: str | None = None, **limits: float) -> TestClient:
    settings = Settings.make(str(tmp / "r.db"), tmp / "data", host, 8765, token, **limits)
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8765", raise_server_exceptions=False)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield c


def upload(client: TestClient, path: Path, weights: Path | None = None, name: str | None = None) -> dict:
    files = {"file": (name or path.name, path.read_bytes())}
    if weights is not None:
        files["weights"] = (weights.name, weights.read_bytes())
    r = client.post("/api/models", files=files, headers=CHANGE)
    assert r.status_code == 201, r.text
    return r.json()
