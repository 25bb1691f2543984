"""The graph view: the runtimes' graphs written and loadable (OpenVINO's executed graph with its fused layers,
ONNX Runtime's optimised model under the session's own options), the server that shows only the model on
127.0.0.1, and `inferlab graph`'s one-line errors (exit 2)."""

from __future__ import annotations

import http.client
import shutil
import socket
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inferlab import api
from inferlab.analyze.netron import HOST
from inferlab.cli.main import main
from inferlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
RESNET = MODELS / "resnet_s.onnx"


def _onnx_ops(path: Path) -> Counter[str]:
    import onnx

    return Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)


@pytest.mark.slow
def test_openvino_writes_the_executed_graph_with_fused_layers(tmp_path: Path) -> None:
    path = api.graph(RESNET, "openvino", folder=tmp_path)
    assert path == tmp_path / "resnet_s.runtime.xml"
    assert path.with_suffix(".bin").is_file()  # Netron asks for it beside the .xml (empty: no weights are shown)
    layers = list(ET.parse(path).getroot().iter("layer"))
    # What the CPU plugin executes: every layer says which kernel ran it, in which precision, and in what order.
    for layer in layers:
        data = layer.find("data")
        assert data is not None and {"primitiveType", "runtimePrecision", "execOrder", "originalLayersNames"} <= set(
            data.attrib), layer.get("name")
    kinds = Counter(layer.get("type") for layer in layers)
    original = _onnx_ops(RESNET)
    assert kinds["Convolution"] == original["Conv"] == 12
    computing = [layer for layer in layers if layer.get("type") not in ("Const", "Input", "Output")]
    assert len(computing) < sum(original.values())  # 20 executed layers for 37 ONNX nodes
    assert "Relu" not in kinds and "Add" not in kinds  # fused into the convolutions ...
    fused = [layer.find("data").get("originalLayersNames", "") for layer in layers  # type: ignore[union-attr]
             if layer.get("type") == "Convolution"]
    assert sum("Relu" in names for names in fused) == original["Relu"]  # ... which name the layers they absorbed
    assert any("Add" in names for names in fused)
    assert {layer.find("data").get("runtimePrecision") for layer in computing} <= {"f32", "i32"}  # type: ignore[union-attr]


@pytest.mark.slow
def test_the_executed_graph_follows_the_knobs(tmp_path: Path) -> None:
    """The graph is the one a trial with these params runs: a batch of 4 shows in every shape of the executed
    graph (the model's batch is dynamic; a trial fixes it)."""
    path = api.graph(RESNET, "openvino", folder=tmp_path, batch=4, params={"performance_hint": "THROUGHPUT"})
    image = next(layer for layer in ET.parse(path).getroot().iter("layer") if layer.get("type") == "Input")
    assert [d.text for d in image.iter("dim")] == ["4", "3", "224", "224"]


@pytest.mark.slow
def test_onnxruntime_writes_its_optimised_model_under_the_sessions_own_options(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    path = api.graph(RESNET, "onnxruntime", folder=tmp_path / "all")
    assert path == tmp_path / "all" / "resnet_s.optimized.onnx"
    onnx.checker.check_model(str(path))
    ops = _onnx_ops(path)
    assert sum(ops.values()) < sum(_onnx_ops(RESNET).values())
    assert "Relu" not in ops and "Identity" not in ops  # fused into the convolutions, folded away
    # The optimised model is what the session runs: it computes the same outputs.
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    want = ort.InferenceSession(str(RESNET), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # The session's graph_optimization_level holds for the written model: with rewrites off, nothing changes.
    untouched = api.graph(RESNET, "onnxruntime", folder=tmp_path / "off",
                          params={"graph_optimization_level": "disable"})
    assert _onnx_ops(untouched) == _onnx_ops(RESNET)


def test_without_a_runtime_the_graph_is_the_model_itself() -> None:
    assert api.graph(RESNET) == RESNET
    assert api.graph(MODELS / "resnet_s.xml") == MODELS / "resnet_s.xml"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """An IR model in a folder that also holds a file the view must never hand out."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("resnet_s.xml", "resnet_s.bin"):
        shutil.copy(MODELS / name, folder / name)
    (folder / "secret.txt").write_text("not for the browser")
    return folder


def _get(port: int, path: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host or f"{HOST}:{port}"})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture
def served(model_dir: Path) -> Iterator[api.GraphServer]:
    with api.serve_graph(model_dir / "resnet_s.xml", port=0, browse=False) as server:
        yield server


def test_the_server_shows_the_model_and_its_weights_only(served: api.GraphServer, model_dir: Path) -> None:
    port = served.port
    assert served.url == f"http://127.0.0.1:{port}/"
    status, _, body = _get(port, "/")
    page = body.decode()
    assert status == 200 and '<meta name="file" content="/data/resnet_s.xml">' in page
    assert _get(port, "/data/resnet_s.xml")[2] == (model_dir / "resnet_s.xml").read_bytes()
    assert _get(port, "/data/resnet_s.bin")[2] == (model_dir / "resnet_s.bin").read_bytes()
    for other in ("/data/secret.txt", "/data/../models/secret.txt", "/../../models/secret.txt", "/server.py"):
        assert _get(port, other)[0] == 404, other
    assert _get(port, "/browser.js")[0] == 200  # Netron's own web app, from the installed package
    # A page from elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) gets nothing.
    assert _get(port, "/data/resnet_s.xml", host=f"evil.example:{port}")[0] == 403


def test_the_page_works_offline(served: api.GraphServer) -> None:
    """No usage reports (an unpackaged version), no update nag after 180 days (no build date), no cookie notice
    that asks ipinfo.io first (consent given), and the browser may fetch from this server only."""
    _, headers, body = _get(served.port, "/")
    page = body.decode()
    assert '<meta name="version" content="0.0.0">' in page and 'name="date"' not in page
    assert headers["Set-Cookie"].startswith("consent=")
    assert headers["Content-Security-Policy"].startswith("connect-src 'self'")


def test_stop_frees_the_port(model_dir: Path) -> None:
    server = api.serve_graph(model_dir / "resnet_s.xml", port=0, browse=False)
    assert server.alive()
    server.stop()
    assert not server.alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, server.port), timeout=5).close()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_port_in_use_is_refused(model_dir: Path, busy_port: int) -> None:
    with pytest.raises(ConfigError, match=f"port {busy_port} on 127.0.0.1 is in use"):
        api.serve_graph(model_dir / "resnet_s.xml", port=busy_port, browse=False)


@pytest.mark.parametrize(("args", "needle"), [
    (["missing.onnx"], "missing.onnx: model file not found"),
    ([str(RESNET), "--runtime", "openvno"], "runtime 'openvno' is not a backend; did you mean 'openvino'?"),
    ([str(RESNET), "--runtime", "torch"], "runtime 'torch' cannot load resnet_s.onnx"),
    ([str(RESNET), "--runtime", "null"], "runtime 'null' has no graph of its own to show"),
    ([str(RESNET), "--save-only", "out"], "--save-only out: it writes a runtime's graph; add --runtime"),
    ([str(RESNET), "--runtime", "openvino", "--device", "cuda:0"], "device 'cuda:0' is not a device of runtime"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["graph", *args, "--no-browser"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert not (tmp_path / "out").exists()


def test_a_busy_port_on_the_command_line_is_one_line_and_exit_2(busy_port: int,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(RESNET), "--no-browser", "--port", str(busy_port)]) == 2
    assert f"error: port {busy_port} on 127.0.0.1 is in use; choose another port" in capsys.readouterr().err


@pytest.mark.slow
def test_save_only_writes_the_runtime_graph_and_serves_nothing(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(RESNET), "--runtime", "onnxruntime", "--save-only", str(tmp_path)]) == 0
    assert (tmp_path / "resnet_s.optimized.onnx").is_file()
    assert f"wrote {tmp_path / 'resnet_s.optimized.onnx'}" in capsys.readouterr().out.replace("\n", "")
