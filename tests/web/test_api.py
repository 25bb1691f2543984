"""The workbench's JSON API on real models and real runs: import by upload (kept by content hash), a run
started from the web goes through the executor (each trial in its own process) with its progress as
server-sent events, cancel stops the trial running, filters, the comparison verdict, and every error a
one-line problem document."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import CHANGE, upload

pytestmark = pytest.mark.slow

FAST = "measure: {warmup_iterations: 1, min_iterations: 5, min_duration_s: 0.2, max_duration_s: 2, timeout_s: 60}"


def _events(client: TestClient, run_id: str, limit_s: float = 180) -> list[tuple[str, dict, float]]:
    """The run's server-sent events until it ends, each with the time it arrived here."""
    out: list[tuple[str, dict, float]] = []
    kind = None
    deadline = time.monotonic() + limit_s
    with client.stream("GET", f"/api/runs/{run_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            assert time.monotonic() < deadline, "the run did not end in time"
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind is not None:
                out.append((kind, json.loads(line.split(":", 1)[1]), time.time()))
                if kind == "run-ended":
                    return out
    return out


def test_import_run_and_follow_a_sweep(client: TestClient, tiny_models: dict[str, str], tmp_path: Path) -> None:
    m = upload(client, Path(tiny_models["tiny.onnx"]))
    assert m["path"] == f"models/{m['hash']}/model.onnx" and m["format"] == "onnx" and m["name"] == "tiny"
    assert upload(client, Path(tiny_models["tiny.onnx"]), name="again.onnx")["hash"] == m["hash"]  # same content
    ir = upload(client, Path(tiny_models["tiny.xml"]), Path(tiny_models["tiny.xml"]).with_suffix(".bin"))
    assert ir["format"] == "openvino"
    assert {x["hash"] for x in client.get("/api/models").json()} == {m["hash"], ir["hash"]}

    config = f"""name: web-sweep
models: [{{name: tiny, path: {m['path']}}}]
backends: [{{name: onnxruntime}}]
batch: [1, 2, 4]
{FAST}
"""
    r = client.post("/api/runs", json={"config": config}, headers=CHANGE)
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    events = _events(client, run_id)
    kinds = [k for k, _, _ in events]
    assert kinds[0] == "run-started" and kinds[-1] == "run-ended"
    assert kinds.count("trial-started") == kinds.count("trial-finished") == 3
    assert {"load", "measure"} <= {d["name"] for k, d, _ in events if k == "phase"}
    assert events[-1][1]["outcome"] == "finished"
    for k, d, arrived in events:
        if k == "trial-finished":
            assert d["status"] == "ok" and d["throughput_sps"] > 0
            assert arrived - d["t"] < 1.0  # each trial's end reached the page within a second

    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "finished" and run["done"] == 3
    assert [row["batch"] for row in run["rows"]] == [1, 2, 4]
    listed = client.get("/api/runs", params={"backend": "onnxruntime", "status": "finished"}).json()
    assert [x["id"] for x in listed] == [run_id]
    assert client.get("/api/runs", params={"backend": "openvino"}).json() == []
    assert client.get("/api/runs", params={"model": "tiny", "device": "cpu"}).json()[0]["models"] == ["tiny"]

    cmp = client.get("/api/compare", params=[("trial", f"{run_id}:1"), ("trial", f"{run_id}:3")]).json()
    rows = {row["what"]: row for row in cmp[0]["rows"]}
    assert "speed-up" in rows["median latency (3σ)"]["change"]
    assert any(w in rows["median latency (3σ)"]["change"] for w in ("faster", "slower", "no significant"))

    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "published-table" in page.text and "/static/plotly.min.js" in page.text


def test_cancel_stops_the_trial_running(client: TestClient, tiny_models: dict[str, str]) -> None:
    m = upload(client, Path(tiny_models["tiny.onnx"]))
    config = f"""name: long
models: [{{name: tiny, path: {m['path']}}}]
backends: [{{name: onnxruntime}}]
batch: [1, 2]
measure: {{warmup_iterations: 1, min_iterations: 5, min_duration_s: 60, max_duration_s: 90, timeout_s: 120}}
"""
    run_id = client.post("/api/runs", json={"config": config}, headers=CHANGE).json()["id"]
    deadline = time.monotonic() + 120
    job = client.app.state.jobs.get(run_id)  # type: ignore[attr-defined]
    while not any(e["type"] == "phase" and e["name"] == "measure" for e in job.since(0)):
        assert time.monotonic() < deadline, "the trial never started measuring"
        time.sleep(0.2)
    started = time.monotonic()
    r = client.post(f"/api/runs/{run_id}/cancel", headers=CHANGE)
    assert r.status_code == 202, r.text
    events = _events(client, run_id, 60)
    assert events[-1][1]["outcome"] == "cancelled"
    assert time.monotonic() - started < 15  # not the 60 s the trial would have measured
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "cancelled" and run["done"] == 0
    again = client.post(f"/api/runs/{run_id}/cancel", headers=CHANGE)
    assert again.status_code == 409 and "not running here" in again.json()["detail"]


@pytest.mark.parametrize(("config", "words"), [
    ("name: x\nmodels: [{path: /etc/hosts.onnx}]\nbackends: [{name: onnxruntime}]", "is a path on the server"),
    ("name: x\nmodels: [{path: ../../r.db.onnx}]\nbackends: [{name: onnxruntime}]", "is a path on the server"),
    ("name: x\nmodels: [{path: 'os.path:join'}]\nbackends: [{name: onnxruntime}]", "names Python code"),
    ("name: x\nmodels: [{path: MODEL}]\nbackends: [{name: onnxruntim}]", "did you mean 'onnxruntime'"),
    ("name: x\nmodels: [{path: models/x/model.onnx}]\nbackends: [{name: onnxruntime}]", "model file not found"),
    ("name: [unclosed", "not valid YAML"),
])
def test_a_config_the_workbench_refuses_is_one_line_and_stores_nothing(client: TestClient, config: str,
                                                                       words: str, tiny_models: dict[str, str],
                                                                       tmp_path: Path) -> None:
    if "MODEL" in config:
        config = config.replace("MODEL", upload(client, Path(tiny_models["tiny.onnx"]))["path"])
    r = client.post("/api/runs", json={"config": config}, headers=CHANGE)
    assert r.status_code == 422, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert words in body["detail"] and "\n" not in body["detail"] and "Traceback" not in body["detail"]
    assert str(tmp_path) not in body["detail"]  # the server's folders are not shown; names are the workbench's
    assert client.get("/api/runs").json() == []


def test_uploads_that_are_not_models_are_refused(client: TestClient, tmp_path: Path) -> None:
    script = tmp_path / "evil.py"
    script.write_text("import os; os.system('touch /tmp/pwned')")
    r = client.post("/api/models", files={"file": ("evil.py", script.read_bytes())}, headers=CHANGE)
    assert r.status_code == 415 and "Python modules" in r.json()["detail"]
    r = client.post("/api/models", files={"file": ("fake.onnx", b"not a protobuf at all")}, headers=CHANGE)
    assert r.status_code == 422 and "not a valid ONNX file" in r.json()["detail"]
    r = client.post("/api/models", files={"file": ("m.xml", b"<net/>")}, headers=CHANGE)
    assert r.status_code == 422 and ".bin" in r.json()["detail"]
    r = client.post("/api/models", files={"file": ("../../../etc/x.onnx", b"")}, headers=CHANGE)
    assert r.status_code == 422
    data = Path(client.app.state.settings.data_dir)  # type: ignore[attr-defined]
    assert not (data / "models").exists() or list((data / "models").iterdir()) == []
    assert list((data / "incoming").iterdir()) == []  # scratch removed


def test_an_upload_over_the_limit_is_refused(tmp_path: Path, tiny_models: dict[str, str]) -> None:
    from tests.web.conftest import make_client

    with make_client(tmp_path, max_upload_mb=0.001) as c:
        r = c.post("/api/models", files={"file": ("big.onnx", b"x" * 4096)}, headers=CHANGE)
        assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_problems_are_json_with_one_line(client: TestClient) -> None:
    for path, status in (("/api/runs/nope", 404), ("/api/models/0123456789abcdef", 404), ("/api/nothing", 404),
                         ("/api/compare?trial=a:1", 422), ("/api/runs/../../etc", 404)):
        r = client.get(path)
        assert r.status_code == status, (path, r.text)
        body = r.json()
        assert body["status"] == status and body["detail"] and "\n" not in body["detail"]



def test_a_quantization_the_workbench_cannot_do_is_one_line_and_stores_nothing(
        client: TestClient, tiny_models: dict[str, str]) -> None:
    pt2 = upload(client, Path(tiny_models["tiny.pt2"]))
    onnx = upload(client, Path(tiny_models["tiny.onnx"]))
    before = client.get("/api/runs").json()
    cases = [(pt2["hash"], {}, 422, "onnx"),                                           # a .pt2: nothing to quantize
             (onnx["hash"], {"dataset": "0123456789abcdef"}, 404, "no such dataset"),  # not imported
             (onnx["hash"], {"preprocess": {"color": "purple"}}, 422, "preprocess.color"),
             (onnx["hash"], {"max_drop": 3}, 422, "max_drop"),
             ("0123456789abcdef", {}, 404, "no such model")]
    for key, body, status, words in cases:
        r = client.post(f"/api/models/{key}/quantize", json=body, headers=CHANGE)
        assert r.status_code == status, (body, r.text)
        detail = r.json()["detail"]
        assert words in detail and "\n" not in detail, detail
    assert client.get("/api/runs").json() == before
