"""Each trial in its own process: a segfault, a hang and an exception become stored rows; the run completes."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab import api
from inferlab.config import load_text
from inferlab.store import Store
from tests.conftest import FAST_MEASURE

pytestmark = pytest.mark.slow

FACTORY_INPUTS = "inputs: {x: {shape: [-1, 3, 16, 16], dtype: float32}}"


def _config(models: list[str], timeout_s: float = 60) -> str:
    entries = "\n".join(f"  - {{name: {m}, path: 'tests.fixtures.faulty_models:{m}', {FACTORY_INPUTS}}}"
                        for m in models)
    measure = dict(FAST_MEASURE, timeout_s=timeout_s)
    backend = "backends: [{name: torch, params: {threads: 1}}]"
    return f"name: isolation\nmodels:\n{entries}\n{backend}\nmeasure: {measure}\n"


def test_crash_hang_and_exception_are_stored_and_the_run_completes(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    run = api.execute(load_text(_config(["segfault", "hang", "raises", "fine"], timeout_s=15)), db=db)
    by_model = {r.spec.model.name: r for r in run.results}
    assert set(by_model) == {"segfault", "hang", "raises", "fine"}

    assert by_model["segfault"].status == "failed"
    assert "killed by SIGSEGV" in (by_model["segfault"].reason or "")
    assert "phase 'load'" in (by_model["segfault"].reason or "")

    assert by_model["hang"].status == "timeout"
    assert by_model["hang"].reason == "timed out after 15 s in phase 'load'"

    assert by_model["raises"].status == "failed"
    assert by_model["raises"].reason == "RuntimeError: this factory always fails"

    fine = by_model["fine"]
    assert fine.status == "ok"
    assert fine.throughput_sps and fine.throughput_sps > 0
    assert fine.latency is not None and fine.latency.count >= FAST_MEASURE["min_iterations"]
    assert fine.peak_rss_mb and fine.peak_rss_mb > 50  # torch is loaded in that process
    assert fine.energy_j_per_sample is None or fine.energy_j_per_sample > 0  # None: "not measured", never 0

    stored = Store(db)
    assert stored.run_info(run.id).status == "finished"
    assert len(stored.results(run.id)) == 4


def test_memory_limit_turns_a_hungry_trial_into_a_row(tmp_path: Path) -> None:
    text = (f"models: [{{name: hungry, path: 'tests.fixtures.faulty_models:hungry', {FACTORY_INPUTS}}}]\n"
            "backends: [{name: torch, params: {threads: 1}}]\n"
            f"measure: {dict(FAST_MEASURE, min_duration_s=3, memory_limit_mb=1200)}\n")
    run = api.execute(load_text(text), db=str(tmp_path / "r.db"))
    (r,) = run.results
    assert r.status == "failed"
    assert (r.reason or "").startswith("out of memory: RSS passed measure.memory_limit_mb 1200")
    assert r.peak_rss_mb is not None and r.peak_rss_mb > 1200


def test_user_error_inside_the_trial_is_a_failed_row(tmp_path: Path) -> None:
    # The factory gives a model whose input is 3x16x16; a 4-channel override fails inside the trial.
    text = ("models: [{name: wrong, path: 'tests.fixtures.faulty_models:fine', "
            "inputs: {x: {shape: [-1, 4, 16, 16], dtype: float32}}}]\n"
            f"backends: [{{name: torch}}]\nmeasure: {FAST_MEASURE}\n")
    run = api.execute(load_text(text), db=str(tmp_path / "r.db"))
    (r,) = run.results
    assert r.status == "failed"
    assert "RuntimeError" in (r.reason or "") or "channels" in (r.reason or "")
