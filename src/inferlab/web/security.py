"""The server's guard, in front of every route: the Host header must name this server when it listens on
the loopback (no DNS rebinding), a token is required on every request when it listens elsewhere, and a
request that changes state must come from the workbench's own pages or an API client, never from another
site (a custom header no cross-site form or fetch can send without a CORS preflight, which is never granted,
and a matching Origin when the browser sends one). Responses carry headers that keep pages from being framed
by other sites or sniffed into another type."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from inferlab.web.settings import Settings, is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-inferlab"          # any value; the workbench's pages send it with every change
TOKEN_COOKIE = "inferlab_token"
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
     b"script-src 'self' 'unsafe-inline' 'unsafe-eval'; object-src 'none'; base-uri 'none'; "
     b"frame-ancestors 'self'; form-action 'self'"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _host_name(host: str) -> str:
    """The name part of a Host header or an origin's netloc ('[::1]:8765' -> '::1')."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refuse(scope, headers)
        if refusal is not None:
            status, detail, extra = refusal
            await _problem(send, status, detail, extra)
            return
        token = self.settings.token
        if token is not None and scope["method"] == "GET":
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if secrets.compare_digest(query.get("token", ""), token):
                # a page opened with ?token=...: keep the token in a cookie, and take it out of the address bar
                rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
                cookie = SimpleCookie()
                cookie[TOKEN_COOKIE] = token
                morsel = cookie[TOKEN_COOKIE]
                morsel["httponly"], morsel["samesite"], morsel["path"] = True, "Strict", "/"
                await send({"type": "http.response.start", "status": 303, "headers": [
                    (b"location", (scope["path"] + (f"?{rest}" if rest else "")).encode("latin-1")),
                    (b"set-cookie", morsel.OutputString().encode("latin-1")), *HEADERS]})
                await send({"type": "http.response.body", "body": b""})
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _refuse(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, dict[str, str]] | None:
        s = self.settings
        host = headers.get("host", "")
        if s.local and not is_loopback(_host_name(host)):
            return 400, (f"Host '{host}' is not this server; open it as http://127.0.0.1:{s.port}/ "
                         "(a server on the loopback answers only to the loopback's names)"), {}
        bearer = headers.get("authorization", "")
        has_bearer = s.token is not None and bearer.lower().startswith("bearer ") and \
            secrets.compare_digest(bearer[7:].strip(), s.token)
        if s.token is not None and not has_bearer:
            cookie = SimpleCookie()
            try:
                cookie.load(headers.get("cookie", ""))
            except Exception:  # a malformed cookie header is no token
                cookie = SimpleCookie()
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else query.get("token", "")
            if not secrets.compare_digest(given, s.token):
                return 401, ("this server needs its token: open the address it printed at start (…/?token=…), "
                             "or send 'Authorization: Bearer TOKEN'"), {"www-authenticate": "Bearer"}
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin != "null" and urlsplit(origin).netloc != host:
                return 403, f"cross-site request refused: Origin '{origin}' is not this server", {}
            if origin == "null" or headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return 403, "cross-site request refused: it came from another site", {}
            if CSRF_HEADER not in headers and not has_bearer:
                return 403, (f"a request that changes something needs the header '{CSRF_HEADER.title()}: 1' "
                             "(the workbench's pages send it; so must API clients), or a bearer token"), {}
        return None


async def _problem(send: Send, status: int, detail: str, extra: dict[str, str]) -> None:
    from inferlab.web.problems import TITLES

    body = json.dumps({"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                       "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
        *[(k.encode(), v.encode()) for k, v in extra.items()], *HEADERS]})
    await send({"type": "http.response.body", "body": body})
