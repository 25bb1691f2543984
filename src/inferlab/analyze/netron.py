"""Netron on 127.0.0.1: its bundled web app served with one model file (and the files beside it that the model
names), offline (no telemetry, consent or update prompts), to this machine only."""

from __future__ import annotations

import errno
import html
import http.server
import importlib.util
import logging
import os
import re
import shutil
import sys
import threading
import time
import urllib.parse
import webbrowser
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from inferlab.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # never another interface: the server hands the model to whoever asks
DEFAULT_PORT = 8080  # Netron's own first choice
STOP_WAIT_S = 5.0


def _onnx_data_files(path: Path) -> list[str]:
    """The external data files an ONNX model names, relative to its folder (Netron fetches them beside it)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    def tensors(graph: Any) -> Iterator[Any]:
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    yield from tensors(sub)

    model = onnx.load_model(str(path), load_external_data=False)
    return sorted({ExternalDataInfo(t).location for t in tensors(model.graph) if uses_external_data(t)})


def companions(path: Path) -> list[str]:
    """The files Netron asks for beside `path` to show it, relative to its folder: an IR's weights, an ONNX
    model's external data."""
    if path.suffix.lower() == ".xml":
        return [path.with_suffix(".bin").name] if path.with_suffix(".bin").is_file() else []
    if path.suffix.lower() == ".onnx":
        return _onnx_data_files(path)
    return []


# ---- serving it in Netron -------------------------------------------------------------------------------------

# What netron's own server sends for its web app's files; anything else is not served.
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".png": "image/png",
          ".gif": "image/gif", ".jpg": "image/jpeg", ".ico": "image/x-icon", ".json": "application/json",
          ".pb": "application/octet-stream", ".ttf": "font/truetype", ".otf": "font/opentype",
          ".eot": "application/vnd.ms-fontobject", ".woff": "font/woff", ".woff2": "font/woff2",
          ".svg": "image/svg+xml"}
# Belt and braces for a local viewer: the page may fetch from this server only.
CSP = "connect-src 'self' data: blob:"
CONSENT_MAX_AGE_S = 30 * 24 * 3600  # what Netron gives its own consent cookie


def netron_app() -> Path:
    """The folder of Netron's bundled web app (the `netron` package of the `analysis` extra)."""
    spec = importlib.util.find_spec("netron")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the graph view needs netron, which is not installed; pip install 'inferlab[analysis]'")
    app = Path(next(iter(spec.submodule_search_locations)))
    if not (app / "index.html").is_file():
        raise ConfigError(f"{app}: netron's web app (index.html) is missing; reinstall netron "
                          "(pip install --force-reinstall netron)")
    return app


def index_page(app: Path, shown: str, data: str = "/data/") -> bytes:
    """Netron's index.html set up as its Python server does (the model to open) with three changes, so that the
    view works offline and keeps working: version 0.0.0 marks an unpackaged build, whose page reports no usage
    to Google Analytics; the build date goes, so that the page never stops with "Please update to the newest
    version" 180 days after the release; and (in the response) the consent cookie is set, so that it neither
    asks ipinfo.io for the country nor holds the model behind a cookie notice. `data`: the address the model
    is served under (the workbench serves one per model)."""
    text = (app / "index.html").read_text("utf-8")
    quoted, shown_attr = urllib.parse.quote(shown), html.escape(shown, quote=True)
    meta = "\n".join(['<meta name="type" content="Python">', '<meta name="version" content="0.0.0">',
                      f'<meta name="file" content="{data}{quoted}">', f'<meta name="name" content="{shown_attr}">',
                      f'<meta name="identifier" content="{shown_attr}">'])
    text, found = re.subn(r'<meta name="version" content="[^"]*">', lambda _: meta, text)
    if found != 1:
        raise ConfigError(f"{app / 'index.html'}: this netron's page has no version tag to set; install the netron "
                          "version of constraints.txt")
    text = re.sub(r'<meta name="date" content="[^"]*">\n?', "", text)
    return text.encode("utf-8")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a browser's open connection never holds up the end of the command
    app: Path
    index: bytes
    files: dict[str, Path]  # what /data/ serves: the model and its companions, by name relative to its folder

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A closed tab or a reload mid-transfer resets the connection: not worth a traceback on the terminal.
        log.debug("graph view: request from %s failed", client_address, exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        port = self.server.server_address[1]
        # DNS rebinding: a web page whose name resolves to 127.0.0.1 could read the model; only our own names pass.
        if self.headers.get("Host") not in (f"{HOST}:{port}", f"localhost:{port}"):
            self._send(403, "text/plain", b"forbidden", body)
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            cookie = f"consent={int(time.time() * 1000)}; Path=/; Max-Age={CONSENT_MAX_AGE_S}; SameSite=Strict"
            self._send(200, TYPES[".html"], self.server.index, body, {"Set-Cookie": cookie,
                                                                      "Cache-Control": "no-store"})
        elif path.startswith("/data/"):
            model_file = self.server.files.get(path[len("/data/"):])
            if model_file is None:
                self._send(404, "text/plain", b"not found", body)
                return
            self._send_file(model_file, "application/octet-stream", body, {"Cache-Control": "no-store"})
        else:
            app = self.server.app
            asset = (app / path.lstrip("/")).resolve()
            if asset.parent != app.resolve() or asset.suffix not in TYPES or not asset.is_file():
                self._send(404, "text/plain", b"not found", body)
                return
            self._send_file(asset, TYPES[asset.suffix], body)

    def _headers(self, status: int, kind: str, length: int, extra: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", CSP)
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()

    def _send(self, status: int, kind: str, content: bytes, body: bool, extra: Mapping[str, str] = {}) -> None:
        self._headers(status, kind, len(content), extra)
        if body:
            self.wfile.write(content)

    def _send_file(self, path: Path, kind: str, body: bool, extra: Mapping[str, str] = {}) -> None:
        with path.open("rb") as f:
            self._headers(200, kind, os.fstat(f.fileno()).st_size, extra)
            if body:
                shutil.copyfileobj(f, self.wfile, 1 << 20)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


@dataclass
class GraphServer:
    """Netron showing one model file at `url` (threads of this process, bound to 127.0.0.1) until `stop`."""

    path: Path                 # the file shown
    port: int
    browsed: bool              # whether a browser was opened on it
    _server: _Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = STOP_WAIT_S) -> None:
        """Stop serving: the serving loop ends (within its poll interval), the socket closes, the thread is joined
        (at most `timeout_s`)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout_s)

    def __enter__(self) -> GraphServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _bind(port: int | None) -> _Server:
    """A server on 127.0.0.1:`port` (None: 8080 when free, else any free port; 0: any free port)."""
    try:
        return _Server((HOST, DEFAULT_PORT if port is None else port), _Handler)
    except OSError as exc:
        if port is None and exc.errno == errno.EADDRINUSE:
            return _Server((HOST, 0), _Handler)
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            why = "is in use" if exc.errno == errno.EADDRINUSE else "needs privileges"
            raise ConfigError(f"port {port} on {HOST} {why}; choose another port or leave it out") from exc
        raise


def _can_browse() -> bool:
    """Whether a graphical browser can open: on Linux without a display, `webbrowser` would start a text
    browser (lynx, w3m) in the terminal instead, and Netron needs a real one."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(path: Path, port: int | None = None, browse: bool = False) -> GraphServer:
    """Serve `path` in Netron's web app at http://127.0.0.1:PORT/ (`port` None: 8080 when free, else any free
    one; 0: any free one) and, with `browse`, open it in the default browser where there is a display. Only the
    model's own files are served (an IR's .bin, an ONNX model's external data), never the rest of its folder."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; check the path")
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"port {port}: give a port between 1 and 65535 (0 or none: a free one)")
    files = {path.name: path}
    for name in companions(path):
        f = (path.parent / name).resolve()
        if not f.is_file():
            raise ModelError(f"{path}: the model needs {name} beside it; put it back or re-export the model")
        files[name] = f
    app = netron_app()
    server = _bind(port)
    server.app, server.index, server.files = app.resolve(), index_page(app, path.name), files
    # A short poll interval: `stop` returns within it.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="inferlab-netron",
                              daemon=True)
    thread.start()
    bound = int(server.server_address[1])
    browsed = bool(browse and _can_browse() and webbrowser.open(f"http://{HOST}:{bound}/"))
    return GraphServer(path, bound, browsed, server, thread)
