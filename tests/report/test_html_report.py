"""The HTML report of real runs, opened in a real browser (Playwright driving Debian's chromium): it loads
offline, every chart renders, nothing logs an error, and the published table marks missing cells."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from inferlab.store import Store
from tests.browser import NEEDS_CHROMIUM, launch
from tests.cli.test_cli import cli
from tests.conftest import FAST_MEASURE

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              NEEDS_CHROMIUM]


@pytest.fixture(scope="module")
def report(tiny_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("openvino")
    tmp = tmp_path_factory.mktemp("report")
    db = str(tmp / "r.db")
    sweep = {"name": "sweep", "models": [{"path": tiny_models["tiny.onnx"]}], "batch": [1, 2, 4],
             "backends": [{"name": "onnxruntime"}, {"name": "openvino", "params": {"inference_precision": "f32"}}],
             "exclude": [{"backend": "openvino", "batch": 4}],  # a cell left unmeasured on purpose
             "measure": FAST_MEASURE}
    (tmp / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    assert cli("run", str(tmp / "sweep.yaml"), "--db", db).returncode == 0
    tune = {**sweep, "name": "tuning", "mode": "throughput", "batch": [1, 2],
            "backends": [{"name": "onnxruntime", "params": {"intra_op_threads": [1, 2], "in_flight": [1, 2],
                                                             "inter_op_threads": 0, "execution_mode": "sequential",
                                                             "graph_optimization_level": "all", "spinning": True,
                                                             "cpus": 0}}],
             "tune": {"max_trials": 4, "confirm": 1, "max_latency_ms": 50, "objectives": ["throughput", "memory"]}}
    del tune["exclude"]
    (tmp / "tune.yaml").write_text(yaml.safe_dump(tune))
    out = cli("tune", str(tmp / "tune.yaml"), "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    store = Store(db)  # the two run ids, in the order `inferlab results --runs` lists them
    try:
        ids = [info.id for info in store.runs()]
    finally:
        store.close()
    assert len(ids) == 2, ids
    html = tmp / "report.html"
    out = cli("report", *ids, "-o", str(html), "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    md = tmp / "report.md"
    assert cli("report", *ids, "-o", str(md), "--db", db).returncode == 0
    return html, md


def test_report_renders_in_chromium_without_errors(report: tuple[Path, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    html, _ = report
    text = html.read_text()
    assert "<script src=" not in text and "<link " not in text  # offline: plotly.js is embedded, nothing linked
    assert text.count("Plotly.newPlot") == 1
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.goto(html.as_uri())
            page.wait_for_selector("div.chart .main-svg", timeout=20_000)
            charts = page.locator("div.chart")
            ids = [charts.nth(i).get_attribute("id") for i in range(charts.count())]
            # a chart per model (one model here) in each section, and the tuning's own front and history
            assert {"chart-scatter-tiny", "chart-batch-tiny", "chart-front-tiny"} <= set(ids)
            assert any(i and i.startswith("chart-history-") for i in ids)
            assert any(i and i.startswith("chart-front-study-") for i in ids)
            for i in range(charts.count()):  # each chart drew its points
                assert charts.nth(i).locator(".main-svg .scatterlayer .trace").count() >= 1, ids[i]
            assert page.locator("[data-role=sweet-spot]").inner_text().startswith("Sweet spot — tiny")
            missing = page.locator("#published-table td.missing")
            assert missing.count() >= 1 and missing.first.inner_text() == "—"
            assert missing.first.get_attribute("title") == "not measured"
            assert page.locator("#tuning-table tbody tr").count() == 1
            # per device: the best and the speed-up over the runtime's defaults, then what the search did
            leaders = page.locator("table.tuning-leaders tbody tr")
            assert leaders.count() >= 1 and re.search(r"\d\.\d\d×", leaders.first.inner_text())
            assert page.locator("ul.tuning-summary li").last.inner_text().startswith("stopped: ")
            # every trial is listed, and each one whose notes carry warnings is in the warnings list too
            stored = sum(int(n) for n in re.findall(r"\((?:sweep|tuning), (\d+) results\)", page.inner_text("p.meta")))
            notes = page.locator("#trials-table tbody tr td:last-child").all_text_contents()
            assert len(notes) == stored
            warned = [n.strip() for n in notes if n.strip().startswith("⚠")]
            items = page.locator("#warnings-list li").all_text_contents()
            assert len(items) == len(warned)
            for note, item in zip(warned, items, strict=True):
                assert note.split("; ⚠ ")[0].removeprefix("⚠ ") in item
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == []  # nothing fetched from the network
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_markdown_export_has_the_same_tables(report: tuple[Path, Path]) -> None:
    _, md = report
    text = md.read_text()
    assert "## Published table" in text and "## Tuning" in text
    per_device = text.split(": per device", 1)[1]
    assert re.search(r"\| cpu \| fp32 \(best\) \| onnxruntime/cpu fp32 b\d .*\| \d+\.\d\d× \|", per_device)
    assert "- stopped: " in per_device
    row = next(line for line in text.splitlines() if line.startswith("| — | tiny | 4 |"))
    assert "| — |" in row.split("| 4 |", 1)[1]  # openvino at batch 4 was not measured
