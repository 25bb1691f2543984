"""Security as a tested property: the loopback by default and answering only to its names, a token on every
request elsewhere, no cross-site changes, uploads kept by content hash and never where a name points, no
traceback in any answer, and headers that keep pages from being framed or sniffed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inferlab.web.settings import Settings
from tests.web.conftest import CHANGE, make_client


def test_loopback_by_default_and_no_token_needed_there(tmp_path: Path) -> None:
    s = Settings.make(None, tmp_path)
    assert s.host == "127.0.0.1" and s.token is None and s.local
    off = Settings.make(None, tmp_path, host="0.0.0.0")
    assert off.token is not None and len(off.token) >= 24  # generated when not given


def test_a_foreign_host_header_is_refused_on_the_loopback(client: TestClient) -> None:
    r = client.get("/api/runs", headers={"host": "evil.example:8765"})  # DNS rebinding
    assert r.status_code == 400 and "not this server" in r.json()["detail"]
    assert client.get("/api/runs", headers={"host": "localhost:8765"}).status_code == 200


def test_another_host_needs_the_token_on_every_request(tmp_path: Path) -> None:
    token = "s3cret-token-of-the-test-000"
    with make_client(tmp_path, host="0.0.0.0", token=token) as c:
        for path in ("/api/runs", "/runs", "/static/workbench.js", "/api/openapi.json", "/nothing"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert r.json()["detail"].startswith("this server needs its token")
            assert r.headers["www-authenticate"] == "Bearer"
        assert c.get("/api/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/runs", headers={"authorization": f"Bearer {token}"}).status_code == 200
        # the address printed at start sets the token in a cookie and takes it out of the address bar
        r = c.get(f"/runs?token={token}&status=finished", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/runs?status=finished"
        cookie = r.headers["set-cookie"]
        assert "inferlab_token=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        c.cookies.set("inferlab_token", token)
        assert c.get("/runs").status_code == 200
        c.cookies.clear()
        assert c.post("/api/runs", json={"config": "x"}, headers={"authorization": f"Bearer {token}"}
                      ).status_code == 422  # past the guard: a bearer token is no cross-site risk


@pytest.mark.parametrize("headers", [
    {},                                                        # a plain cross-site form post sends no custom header
    {"X-Inferlab": "1", "Origin": "http://evil.example"},      # a page elsewhere
    {"X-Inferlab": "1", "Sec-Fetch-Site": "cross-site"},
    {"X-Inferlab": "1", "Sec-Fetch-Site": "same-site"},
    {"X-Inferlab": "1", "Origin": "null"},                     # a sandboxed frame or a file
])
def test_cross_site_changes_are_refused(client: TestClient, headers: dict[str, str], tmp_path: Path) -> None:
    data = Path(client.app.state.settings.data_dir)  # type: ignore[attr-defined]
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    for path, kw in (("/api/runs", {"json": {"config": "name: x"}}),
                     ("/api/models", {"files": {"file": ("m.onnx", b"x")}}),
                     ("/api/runs/abc/cancel", {})):
        r = client.post(path, headers=headers, **kw)
        assert r.status_code == 403, (path, headers, r.text)
        assert "refused" in r.json()["detail"] or "needs the header" in r.json()["detail"]
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # nothing written


def test_same_origin_changes_pass_the_guard(client: TestClient) -> None:
    r = client.post("/api/runs", json={"config": "name: [bad"},
                    headers={**CHANGE, "Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 422  # refused by the config check, not by the guard


def test_responses_carry_protective_headers(client: TestClient) -> None:
    for path in ("/runs", "/api/runs", "/api/nothing"):
        h = client.get(path).headers
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in h["content-security-policy"]
        assert "default-src 'self'" in h["content-security-policy"]


@pytest.mark.parametrize("path", ["/static/../settings.py", "/static/..%2F..%2Fsettings.py", "/static/.hidden",
                                  "/static/app.py", "/models/..%2F..%2Fetc", "/api/models/..%2Fx",
                                  "/runs/..%2F..%2Fetc%2Fpasswd"])
def test_paths_in_parameters_reach_no_file(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (404, 422), (path, r.status_code)
    assert "import " not in r.text and "root:" not in r.text


def test_a_server_error_says_one_line_and_no_traceback(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from inferlab.api import queries

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals /home/user/.ssh")

    monkeypatch.setattr(queries, "run_summaries", broken)
    r = client.get("/api/runs")
    assert r.status_code == 500
    assert r.json()["detail"] == "the server failed on this request; its log has the details"
    assert "secret" not in r.text and "Traceback" not in r.text
