"""The workbench's application: the guard in front, the JSON API under /api (with its OpenAPI schema), the
pages, and the scripts and styles (plotly.js included) served from the package, never from a CDN."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from inferlab.web import api_routes, pages, problems
from inferlab.web.jobs import Jobs
from inferlab.web.library import Datasets, Library
from inferlab.web.security import Guard
from inferlab.web.settings import Settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}


@cache
def _plotly() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


def _static(name: str) -> tuple[bytes, str] | None:
    if name == "plotly.min.js":
        return _plotly(), TYPES[".js"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file() or path.suffix not in TYPES:
        return None
    return path.read_bytes(), TYPES[path.suffix]


def create_app(settings: Settings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    jobs = Jobs(settings.db)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()  # runs still going are cancelled, their trials stopped

    app = FastAPI(title="inferlab workbench", version="1", lifespan=lifespan, docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json")
    app.state.settings = settings
    app.state.jobs = jobs
    app.state.library = Library(settings.data_dir, settings.max_upload_bytes, settings.db)
    app.state.datasets = Datasets(settings.data_dir, settings.max_upload_bytes, int(settings.max_archive_mb * 2**20))
    problems.install(app)
    app.include_router(api_routes.router)
    app.include_router(pages.router)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str, request: Request) -> Response:
        found = _static(name)
        if found is None:
            raise problems.Problem(404, f"/static/{name[:80]}: no such file")
        body, kind = found
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        return Response(body, media_type=kind, headers={"etag": etag, "cache-control": "public, max-age=3600"})

    app.add_middleware(Guard, settings=settings)
    return app
