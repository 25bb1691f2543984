"""The workbench's pages in a real browser (Playwright driving Debian's chromium) against `inferlab serve`
in its own process: import the digits CNN on the Models page, run a sweep from the New-experiment page and
watch its live progress, read the run's report, compare two of its trials. Screenshots of each page go to
examples/workbench/ when INFERLAB_SCREENSHOTS is set (how the committed ones were taken)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import NEEDS_CHROMIUM, launch
from tests.web.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              NEEDS_CHROMIUM]
SHOTS = ROOT / "examples" / "workbench"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("serve")
    log = tmp / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "inferlab.cli.main", "serve", "--db", str(tmp / "r.db"),
                                 "--data", str(tmp / "data"), "--port", "0"], stdout=out, stderr=subprocess.STDOUT)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            assert proc.poll() is None, f"inferlab serve exited: {log.read_text()[-2000:]}"
            m = re.search(r"(http://127\.0\.0\.1:\d+/)", log.read_text())
            url = m.group(1) if m else None
            time.sleep(0.1)
        assert url is not None, "inferlab serve printed no address"
        yield url.rstrip("/")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        print(f"inferlab serve's output:\n{log.read_text()[-4000:]}")  # shown when a test failed


def _shot(page: object, name: str) -> None:
    if os.environ.get("INFERLAB_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_a_session_import_run_follow_report_compare(server: str, tmp_path: Path,
                                                    tiny_models: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    # the digits CNN where it was trained (examples/train_digits.py, as the screenshots show), else the tiny model
    digits = ROOT / "examples" / "models" / "digits_cnn.onnx"
    model = digits if digits.is_file() else Path(tiny_models["tiny.onnx"])
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server) else None)

            page.goto(f"{server}/models")
            page.set_input_files("#model-upload input[name=file]", str(model))
            page.click("#model-upload button[type=submit]")
            page.wait_for_url(re.compile(r".*/models/[0-9a-f]{16}$"), timeout=30_000)
            assert model.stem in page.inner_text("h1")
            assert page.locator("#complexity").inner_text().count("parameters") == 1
            _shot(page, "models")
            model_page = page.url
            page.click("#graph-link")  # Netron, served by the workbench itself
            page.locator("#canvas g.node").nth(2).wait_for(state="attached", timeout=60_000)
            _shot(page, "graph")
            page.goto(model_page)

            # the digits test split as an archive in ImageNet class folders (examples/make_digits_archive.py)
            sys.path.insert(0, str(ROOT / "examples"))
            from make_digits_archive import write

            archive = write(tmp_path / "digits-test.zip")
            page.goto(f"{server}/datasets")
            page.set_input_files("#dataset-upload input[name=file]", str(archive))
            page.click("#dataset-upload button[type=submit]")
            page.wait_for_url(re.compile(r".*/datasets/[0-9a-f]{16}$"), timeout=60_000)
            info = page.inner_text("#dataset-info")
            assert "imagenet" in info and "540" in info
            page.wait_for_function("Array.from(document.querySelectorAll('.wb-previews img'))"
                                   ".every(i => i.complete && i.naturalWidth === 8)", timeout=20_000)
            _shot(page, "dataset")

            page.goto(f"{server}/models")
            page.click("text=benchmark it")
            page.wait_for_selector("#schema-form[data-ready=true]", timeout=30_000)
            # the form follows the schema: a field for each of the config's top-level properties
            schema = page.evaluate("fetch('/api/schema/experiment').then(r => r.json())")
            for name in schema["properties"]:
                assert page.locator(f"#schema-form [data-field={name}]").count() >= 1, name
            page.fill("#schema-form [data-field=name] input", "web-sweep")
            page.fill("#schema-form [data-field=batch] input", "1, 4, 16")
            page.check("#schema-form [data-field=mode] input[value=latency]")
            for knob, value in (("min_duration_s", "0.3"), ("max_duration_s", "2"), ("min_iterations", "5")):
                page.fill(f"#schema-form [data-field=measure] [data-field={knob}] input", value)
            config = page.input_value("#config")
            assert "models/" in config and model.stem in config, config
            assert "batch: [1, 4, 16]" in config and "mode: latency" in config and "name: onnxruntime" in config
            assert "measure: {min_iterations: 5, min_duration_s: 0.3, max_duration_s: 2}" in config, config
            _shot(page, "new-experiment")
            page.click("#new-experiment button[type=submit]")
            page.wait_for_url(re.compile(r".*/runs/[A-Za-z0-9_-]+$"), timeout=60_000)
            run_id = page.url.rsplit("/", 1)[1]
            if page.locator("#progress").count():  # still running: the live view fills in, then the page reloads
                page.wait_for_selector("#progress-log li.trial-done", timeout=120_000)
                _shot(page, "run-live")
                page.wait_for_selector("#run-status:text('finished')", timeout=180_000)
            page.wait_for_load_state("load")
            page.wait_for_selector("#published-table", timeout=30_000)
            page.wait_for_function("document.querySelector('#run-status').textContent.trim() === 'finished'",
                                   timeout=60_000)
            page.reload()
            page.wait_for_selector("div.chart .main-svg", timeout=30_000)
            assert page.locator("#run-trials tbody tr").count() == 3
            _shot(page, "run")

            page.goto(f"{server}/runs")
            assert page.locator(f"#runs-table tr[data-run='{run_id}']").count() == 1
            page.select_option("select[data-filter=backend]", "onnxruntime")
            page.click("#filters button[type=submit]")
            assert page.locator("#runs-table tbody tr").count() == 1
            _shot(page, "runs")

            page.goto(f"{server}/compare?run={run_id}&trial={run_id}:1&trial={run_id}:3")
            page.wait_for_selector("table.comparison")
            verdict = page.locator("table.comparison tr:has-text('median latency') td.verdict").first.inner_text()
            assert "speed-up" in verdict
            assert page.locator("[data-role=sweet-spot]").count() == 1
            page.wait_for_selector("div.chart .main-svg", timeout=30_000)
            _shot(page, "compare")
        finally:
            browser.close()
    assert errors == [], errors
    assert outside == [], outside  # everything from the server itself: no CDN


def _digits_model(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """The digits CNN where it was trained (examples/train_digits.py, as the screenshots show), else a
    data-fitted centroid classifier of 8x8 digits; with how each reads the archive's PNGs (0..240)."""
    from tests.fixtures.datasets import centroid_classifier

    cnn = ROOT / "examples" / "models" / "digits_cnn.onnx"
    if cnn.is_file():
        return cnn, {"color": "gray", "resize": [32, 32], "scale": 1 / 240}
    return centroid_classifier(tmp_path / "centroids.onnx"), {"color": "gray", "scale": 1 / 15}


def test_tune_and_quantize_within_an_accuracy_budget(server: str, tmp_path: Path) -> None:
    """On the imported digits archive: a tuning over fp32 and INT8 within a 5-point accuracy drop, written as
    YAML on the new-experiment page, whose page shows the history, the Pareto front and the winner, whose
    config downloads and runs here as it is; then an INT8 quantization within a 1-point drop from the model's
    page, measured beside the original, the derived model listed with its lineage."""
    import httpx
    import yaml
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "examples"))
    from make_digits_archive import write

    model, pre = _digits_model(tmp_path)
    headers = {"X-Inferlab": "1"}
    m = httpx.post(f"{server}/api/models", files={"file": (model.name, model.read_bytes())},
                   headers=headers, timeout=60).json()
    archive = write(tmp_path / "digits-test.zip")
    ds = httpx.post(f"{server}/api/datasets", files={"file": (archive.name, archive.read_bytes())},
                    headers=headers, timeout=120).json()
    config = yaml.safe_dump({
        "name": "web-tune",
        "models": [{"name": m["name"], "path": m["path"], "preprocess": pre}],
        "backends": [{"name": "onnxruntime", "params": {
            "intra_op_threads": 1, "inter_op_threads": 0, "execution_mode": "sequential",
            "graph_optimization_level": "all", "spinning": True, "in_flight": 0, "cpus": 0}}],
        "mode": "latency", "batch": 1,
        "dataset": {"format": "imagenet", "path": ds["path"], "labels": ds["labels"], "subset": 200},
        "measure": {"warmup_iterations": 1, "min_iterations": 5, "min_duration_s": 0.2, "max_duration_s": 2,
                    "timeout_s": 60},
        "tune": {"max_trials": 3, "confirm": 1, "precision": ["fp32", "int8"], "max_accuracy_drop": 0.05,
                 "sampler": "grid", "baseline": False}}, sort_keys=False)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server}/experiments/new")
            page.wait_for_selector("#schema-form[data-ready=true]", timeout=30_000)
            page.fill("#config", config)
            page.click("#new-experiment button[type=submit]")
            page.wait_for_url(re.compile(r".*/runs/[A-Za-z0-9_-]+$"), timeout=60_000)
            page.wait_for_function("document.querySelector('#run-status').textContent.trim() === 'finished'",
                                   timeout=240_000)
            page.reload()
            page.wait_for_selector("#winner", timeout=30_000)
            page.wait_for_selector("div.chart .main-svg", timeout=30_000)
            assert page.locator("h2", has_text="Tuning history").count() == 1
            assert page.locator("h2", has_text="Pareto front").count() == 1
            _shot(page, "tune")
            with page.expect_download() as download:
                page.click("#winner")
            winner = Path(download.value.path()).read_text()
            assert winner.startswith("# the best configuration inferlab tune found") and "onnxruntime" in winner
            assert "path: /" not in winner  # files by the names a workbench config uses, not server paths
            # the winner runs here as it is (its model, an INT8 one derived into the data folder or the original)
            rerun = httpx.post(f"{server}/api/runs", json={"config": winner}, headers=headers, timeout=120)
            assert rerun.status_code == 201, rerun.text

            # INT8 within a 1-point drop, from the model's page, measured beside the original
            page.goto(f"{server}/models/{m['hash']}")
            form = "#quantize"
            page.select_option(f"{form} select[name=dataset]", ds["hash"])
            page.fill(f"{form} input[name=max_drop]", "0.01")
            page.fill(f"{form} input[name=calibration]", "100")
            page.fill(f"{form} input[name=time_s]", "0.5")
            page.select_option(f"{form} select[name=color]", "gray")
            if "resize" in pre:
                page.fill(f"{form} input[name=resize]", "32, 32")
            page.fill(f"{form} input[name=scale]", str(pre["scale"]))
            page.click(f"{form} button[type=submit]")
            page.wait_for_url(re.compile(r".*/runs/[A-Za-z0-9_-]+$"), timeout=300_000)
            page.wait_for_function("document.querySelector('#run-status').textContent.trim() === 'finished'",
                                   timeout=240_000)
            page.reload()
            page.wait_for_selector("#published-table", timeout=30_000)
            assert page.locator("#run-trials tbody tr").count() == 2
            assert page.locator("#run-trials tbody tr", has_text="int8").count() == 1
            _shot(page, "quantize")
            # the INT8 models the tuning and the quantization derived are listed on their parent's page, with
            # their lineage, each a model of the workbench that a new experiment can name
            page.goto(f"{server}/models/{m['hash']}")
            assert page.locator("#derived tbody tr", has_text="int8").count() >= 2
            _shot(page, "lineage")
            names = [page.locator("#derived tbody tr").nth(i).locator("a").first.inner_text()
                     for i in range(page.locator("#derived tbody tr").count())]
            assert len(set(names)) == len(names), names  # two INT8 models of one parent: told apart by name
            page.locator("#derived tbody tr", has_text="int8").last.locator("a").first.click()
            page.wait_for_url(re.compile(r".*/models/[0-9a-f]{16}$"))
            assert ".int8" in page.inner_text("h1")
            assert errors == [], errors
        finally:
            browser.close()
