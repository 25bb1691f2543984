"""The public API of reports: stored runs (with their tuning studies) written as HTML, Markdown or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferlab.errors import ConfigError, StoreError
from inferlab.report.charts import Study
from inferlab.report.html import RunData, render, render_tables
from inferlab.store import Store
from inferlab.tune.record import TrialRecord
from inferlab.tune.spec import TuneConfig


def report_runs(refs: list[str], db: str | None = None) -> tuple[list[RunData], dict[str, dict[str, Any] | None]]:
    """Stored runs (with their tuning studies) and their environments, as the report reads them."""
    store = Store(db)
    try:
        runs = []
        envs: dict[str, dict[str, Any] | None] = {}
        parents = {a.hash: a.parent_hash for a in store.artifacts() if a.parent_hash}  # derived models
        for ref in refs or ["latest"]:
            info = store.run_info(ref)
            results = store.results(info.id)
            if any(r.spec.framework for r in results):  # the speed-up's verdict tests the raw latencies
                results = store.results(info.id, with_samples=True)
            run = RunData(info.id, info.name, results, parents=parents)
            try:
                _, data, status, best, records = store.study(info.id)
            except StoreError:
                pass  # not a tuning run
            else:
                tc = TuneConfig.model_validate(data["config"])
                run.study = Study(info.id, list(data["objectives"]), data["constraints"],
                                  [TrialRecord.from_json(r) for r in records], status, best or {},
                                  tc.max_latency_ms, tc.latency_percentile)
            runs.append(run)
            for r in run.results:
                if r.environment_id and r.environment_id not in envs:
                    envs[r.environment_id] = store.environment(r.environment_id)
        return runs, envs
    finally:
        store.close()


def report(refs: list[str], output: Path, db: str | None = None, threshold_ms: float | None = None,
           percentile: str | None = None) -> Path:
    """Write a report of stored runs: .html (self-contained, charts included), .md or .csv (the tables)."""
    suffix = output.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".csv"):
        raise ConfigError(f"-o {output}: write a report to .html, .md or .csv")
    runs, envs = report_runs(refs, db)
    if suffix in (".html", ".htm"):
        text = render(runs, envs, threshold_ms, percentile, output)
    else:
        text = render_tables(runs, envs, "markdown" if suffix == ".md" else "csv", output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return output
