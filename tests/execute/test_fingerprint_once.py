"""The environment is collected once per run, in the background while the run is planned, and its id still
lands on the run and on every stored result."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab import api
from inferlab.config import load_text
from inferlab.execute import environment
from inferlab.store import Store
from tests.conftest import FAST_MEASURE


def test_one_collection_and_its_id_on_every_result(tiny_models: dict[str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLAB_HOST_LOCK", str(tmp_path / "host.lock"))
    environment._collect.cache_clear()
    calls = []
    git_sha = environment._git_sha

    def counted() -> str | None:
        calls.append(1)
        return git_sha()

    monkeypatch.setattr(environment, "_git_sha", counted)
    text = (f"models: [{{path: '{tiny_models['tiny.onnx']}'}}]\nbackends: [{{name: 'null'}}]\nbatch: [1, 2, 4]\n"
            f"measure: {FAST_MEASURE}\n")
    run = api.execute(load_text(text), db=str(tmp_path / "r.db"))
    expected = environment.fingerprint(environment.collect())
    assert len(calls) == 1
    store = Store(str(tmp_path / "r.db"))
    try:
        assert store.run_info(run.id).environment_id == expected
        results = store.results(run.id)
    finally:
        store.close()
    assert len(results) == 3 and {r.environment_id for r in results} == {expected}
    environment._collect.cache_clear()


def test_collect_waits_for_a_collection_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    environment._collect.cache_clear()
    calls = []
    versions = environment._versions

    def counted() -> dict[str, str]:
        calls.append(1)
        return versions()

    monkeypatch.setattr(environment, "_versions", counted)
    environment.collect_soon()
    first = environment.collect()
    assert environment.collect() is first and len(calls) == 1
    environment._collect.cache_clear()
