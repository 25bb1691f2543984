"""Every error the server answers is an RFC 9457 problem (application/problem+json) whose `detail` is one
line for a person; nothing of a traceback ever leaves the server (it goes to the server's log)."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from inferlab.errors import InferlabError, NotFound, StoreError, first_line

log = logging.getLogger(__name__)

TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
          500: "Internal server error", 503: "Service unavailable"}


class Problem(Exception):
    """An error the server answers with `status` and a one-line `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                         "detail": detail}, status_code=status, media_type="application/problem+json",
                        headers=headers)


def _status(exc: InferlabError) -> int:
    """404 for a run, trial or model that is not there; 503 when the database fails; 422 for what the request
    asked that cannot be done (a config, a model, a value)."""
    if isinstance(exc, NotFound):
        return 404
    return 503 if isinstance(exc, StoreError) else 422


def _in_workbench_words(text: str, request: Request) -> str:
    """A message as the workbench's user knows things: files of the data folder by the names its pages show,
    a config sent from the web as 'the experiment', and no other folder of the server."""
    root = str(request.app.state.settings.data_dir)
    text = re.sub(re.escape(root) + r"/experiment-[0-9a-f]{16}\.yaml", "the experiment", text)
    return text.replace(root + "/", "").replace(root, "the data folder")


def _where(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path"))


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem(exc.status, exc.detail)

    @app.exception_handler(InferlabError)
    async def _inferlab(request: Request, exc: InferlabError) -> JSONResponse:
        return problem(_status(exc), _in_workbench_words(first_line(exc, 500), request))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = _where(tuple(first.get("loc", ())))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return problem(422, f"{where + ': ' if where else ''}{first.get('msg', 'invalid')}{more}")

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "error")
        return problem(exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem(500, "the server failed on this request; its log has the details")
