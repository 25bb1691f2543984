"""schemathesis against the workbench's OpenAPI schema: requests generated from it (valid and not) to every
operation of the real application, with the header the pages send; none may end in a server error, and
every error is a problem document. The count of requests is recorded in the test's properties."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test dependency (inferlab[dev])")
from hypothesis import HealthCheck, settings  # noqa: E402

from inferlab.web.app import create_app  # noqa: E402
from inferlab.web.settings import Settings  # noqa: E402

_DATA = Path(tempfile.mkdtemp(prefix="inferlab-schemathesis-"))
APP = create_app(Settings.make(str(_DATA / "r.db"), _DATA / "data"))
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP, headers={"host": "127.0.0.1:8765"})
SENT: list[int] = []
HEADERS = {"host": "127.0.0.1:8765", "X-Inferlab": "1"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_ends_in_a_server_error(case: Any, record_property: Any) -> None:
    response = case.call(headers={**(case.headers or {}), **HEADERS})
    SENT.append(response.status_code)
    record_property("requests_so_far", len(SENT))
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert response.headers["content-type"][0].startswith("application/problem+json")
        assert isinstance(body["detail"], str) and "\n" not in body["detail"]
        assert "Traceback" not in response.text


def test_the_generated_requests_were_many(record_property: Any) -> None:
    """Runs after the operations above (file order): schemathesis sent a real number of requests, none failed."""
    record_property("requests", len(SENT))
    print(f"\nschemathesis: {len(SENT)} requests, {sum(s >= 500 for s in SENT)} server errors, "
          f"statuses {sorted(set(SENT))}")
    assert len(SENT) >= 100 and all(s < 500 for s in SENT)
