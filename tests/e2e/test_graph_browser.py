"""`inferlab graph` as a user runs it: the command serves Netron on 127.0.0.1, a real browser (Playwright driving
Debian's chromium) renders ResNet-S and OpenVINO's executed graph of it with every other host blocked, and
Ctrl-C ends the command. Screenshots go to the test's folder, and to $INFERLAB_SCREENSHOTS when set."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import NEEDS_CHROMIUM, launch

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              NEEDS_CHROMIUM]

ROOT = Path(__file__).resolve().parents[2]
RESNET = "examples/models/resnet_s.onnx"
START_S = 120      # the command is up (imports; with --runtime, OpenVINO compiles the model)
RENDER_MS = 60_000  # Netron has laid the graph out
STOP_S = 15        # Ctrl-C to exit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(*args: str) -> Iterator[str]:
    """`inferlab graph ARGS --no-browser --port P` in its own process until the block ends; yields the URL it
    printed. Ctrl-C (SIGINT) must end it with status 0."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "inferlab.cli.main", "graph", *args, "--no-browser", "--port",
                             str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, COLUMNS="200"))
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:  # a reader thread, so that waiting for the URL has a deadline
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + START_S
        url = None
        while url is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no URL within {START_S} s: {''.join(seen)}")
            if line is None:
                pytest.fail(f"inferlab graph exited with {proc.wait()}: {''.join(seen)}")
            seen.append(line)
            if line.startswith("http://"):
                url = line.strip()
        assert url == f"http://127.0.0.1:{port}/"
        yield url
        proc.send_signal(signal.SIGINT)
        assert proc.wait(STOP_S) == 0, "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_S)


@dataclass
class Rendered:
    nodes: int        # rendered node elements in the graph's SVG
    of_type: int      # of them, the nodes of the operation type asked for
    seconds: float    # from opening the page to the graph drawn
    blocked: list[str]
    failed: list[str]
    errors: list[str]


def _open(url: str, min_nodes: int, shot: Path, op_type: str, click: bool = False) -> tuple[Rendered, str]:
    """Open `url` in chromium with every host but 127.0.0.1 blocked, wait until Netron has drawn at least
    `min_nodes` nodes, count those of `op_type`, with `click` open the first one's properties in the sidebar, and
    screenshot. Returns what happened and the sidebar's text."""
    from playwright.sync_api import Route, sync_playwright

    here = urllib.parse.urlsplit(url).netloc
    blocked: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def only_here(route: Route) -> None:
        if urllib.parse.urlsplit(route.request.url).netloc == here:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", only_here)
            page = context.new_page()
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(url)
            nodes = page.locator("#canvas g.node")
            try:
                nodes.nth(min_nodes - 1).wait_for(state="attached", timeout=RENDER_MS)
            except Exception:
                page.screenshot(path=str(shot))
                message = page.locator("#message-text").inner_text() if page.locator("#message-text").count() else ""
                pytest.fail(f"Netron drew {nodes.count()} nodes in {RENDER_MS / 1000:.0f} s, not {min_nodes} "
                            f"(message: {message!r}; screenshot {shot})")
            seconds = time.perf_counter() - t0
            labels = page.locator("#canvas g.node .node-item-type text", has_text=re.compile(f"^{op_type}$"))
            sidebar = ""
            if click:
                labels.first.click()
                page.locator("#sidebar").wait_for(state="visible", timeout=10_000)
                sidebar = page.locator("#sidebar").inner_text()
            page.screenshot(path=str(shot))
            rendered = Rendered(nodes.count(), labels.count(), seconds, blocked, failed, errors)
            context.unroute_all(behavior="ignoreErrors")
        finally:
            browser.close()
    return rendered, sidebar


def _keep(shot: Path) -> None:
    """Copy a screenshot to $INFERLAB_SCREENSHOTS (the feature's documentation, examples/graph/)."""
    folder = os.environ.get("INFERLAB_SCREENSHOTS")
    if folder:
        target = Path(folder) if Path(folder).is_absolute() else ROOT / folder
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)


def _offline(r: Rendered) -> None:
    assert r.blocked == []  # the page asked no other host for anything (usage reports, ipinfo.io, updates)
    assert r.failed == []
    assert r.errors == []


def test_netron_renders_resnet_s_offline(tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    shot = tmp_path / "resnet_s.onnx.png"
    with _serving(RESNET) as url:
        r, _ = _open(url, 30, shot, "Conv")
    record_property("render_s", round(r.seconds, 2))
    print(f"resnet_s.onnx: {r.nodes} nodes drawn in {r.seconds:.2f} s")
    assert r.nodes == 37 + 2  # the ONNX graph's 37 nodes, its input and its output
    assert r.of_type == 12
    _offline(r)
    assert shot.stat().st_size > 10_000  # a drawn graph; a blank page of this size is a few KB
    _keep(shot)


def test_netron_renders_the_openvino_executed_graph(tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    shot = tmp_path / "resnet_s.openvino-runtime.png"
    with _serving(RESNET, "--runtime", "openvino") as url:
        r, sidebar = _open(url, 20, shot, "Convolution", click=True)
    record_property("render_s", round(r.seconds, 2))
    print(f"resnet_s OpenVINO runtime graph: {r.nodes} nodes drawn in {r.seconds:.2f} s")
    # The 12 convolutions, pooling, reduce, reorders, reshape, fully connected, their constants, input and output
    # (36 on an AVX-512 CPU): fewer than the ONNX graph's 39, the activations and additions fused away.
    assert r.of_type == 12
    assert r.nodes < 37 + 2
    _offline(r)
    # The first convolution's properties: the original layers it absorbed, and the precision it ran in.
    assert "Relu" in sidebar and "f32" in sidebar, sidebar
    assert shot.stat().st_size > 10_000  # a drawn graph; a blank page of this size is a few KB
    _keep(shot)
