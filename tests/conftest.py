"""Shared fixtures: tiny real models exported once per session, an isolated cache and database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from tests.fixtures.tiny_models import export_all

    return export_all(str(tmp_path_factory.mktemp("models")))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Trial processes must import tests.fixtures.* (factory models) and use a private cache.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("INFERLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("INFERLAB_DB", raising=False)
    monkeypatch.delenv("INFERLAB_ARTIFACTS", raising=False)
    # The default database lives in the per-user data folder, and runtimes write under $HOME (OpenVINO's
    # ~/intel): both point into the test's own folder, never the real home.
    (tmp_path / "home").mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


FAST_MEASURE = {"warmup_iterations": 2, "min_iterations": 10, "min_duration_s": 0.2, "max_duration_s": 5,
                "timeout_s": 60}
