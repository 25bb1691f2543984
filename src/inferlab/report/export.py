"""CSV and JSON exports of a run's results."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from inferlab.records.trial import TrialResult
from inferlab.report.rows import flatten


def to_csv(results: Sequence[TrialResult], run_id: str | None = None) -> str:
    return rows_to_csv([flatten(r, run_id) for r in results])


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV; the columns are every key in first-seen order (a missing cell is empty)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_json(results: Sequence[TrialResult], run_id: str | None = None, with_samples: bool = False) -> str:
    payload = {"run": run_id, "results": [r.to_json(with_samples=with_samples) for r in results]}
    return json.dumps(payload, indent=2, default=str)
