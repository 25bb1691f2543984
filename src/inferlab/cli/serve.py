"""`inferlab serve`: the workbench, a web application over the store and the run lifecycle, until Ctrl-C."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from inferlab.api.queries import check_database, workbench_dir
from inferlab.cli.app import console
from inferlab.errors import ConfigError


def serve(
    db: Annotated[str | None, typer.Option(help="result database: a file path or a URL (default: the default "
                                                 "database, see `inferlab results --help`)")] = None,
    host: Annotated[str, typer.Option(help="address to listen on; anything but the loopback requires a token "
                                           "on every request")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free port)")] = 8765,
    token: Annotated[str | None, typer.Option(help="the token requests must carry (default: generated and "
                                                   "printed when --host is not the loopback)")] = None,
    data: Annotated[Path | None, typer.Option(help="folder for imported models, datasets and configs (default: "
                                                   "beside the database)")] = None,
    max_upload_mb: Annotated[float, typer.Option(min=1, help="largest file an upload may be, in MB")] = 512,
) -> None:
    """Serve the workbench: runs, compare, models and new experiments in a browser (Ctrl-C stops)."""
    import socket

    import uvicorn

    from inferlab.web.app import create_app
    from inferlab.web.settings import Settings

    if token is not None and len(token) < 16:
        raise ConfigError(f"--token: {len(token)} characters; give at least 16 (or leave it out and one is made)")
    settings = Settings.make(db, data or workbench_dir(db), host, port, token, max_upload_mb=max_upload_mb)
    folder = settings.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--data {folder}: cannot create it ({exc.strerror}); give a folder you can write "
                          "to") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--data {folder}: not writable; give a folder you can write to")
    check_database(db)  # a database that cannot be opened is said now, not on every page
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); choose another "
                          "--port (0 picks a free one)") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/" + (f"?token={settings.token}" if settings.token else "")
    console.print("inferlab workbench at", highlight=False)
    console.print(escape(url), highlight=False, soft_wrap=True)
    if settings.token:
        console.print("[dim]every request needs the token (the address above sets it in the browser)[/]")
    console.print(f"[dim]data folder {escape(str(settings.data_dir))}; Ctrl-C stops[/]")
    app = create_app(dataclasses.replace(settings, port=bound))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop serving: exit 0
        server.run(sockets=[sock])
