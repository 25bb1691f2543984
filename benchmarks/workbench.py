"""The workbench's own speed, as a user meets it: `inferlab serve` started cold until its first page answers;
each page's server time (median of 20) and weight (the HTML plus what it loads from the server, plotly.js
counted where a page loads it); and a 20-trial run started from the API, each trial's end measured from the
moment the server saw it to the moment its server-sent event arrived here.

    .venv/bin/python benchmarks/workbench.py [--trials 20]      (prints a Markdown table for RESULTS.md)"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHANGE = {"X-Inferlab": "1"}


def serve(tmp: Path) -> tuple[subprocess.Popen[str], str, float]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "inferlab.cli.main", "serve", "--db", str(tmp / "r.db"),
                             "--data", str(tmp / "data"), "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = None
    while url is None:
        m = re.match(r"(http://127\.0\.0\.1:\d+)/", proc.stdout.readline().strip())
        url = m.group(1) if m else None
    while True:
        try:
            if httpx.get(url + "/runs", timeout=5).status_code == 200:
                return proc, url, time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.02)


def weight(client: httpx.Client, path: str) -> tuple[int, int]:
    """The page's HTML bytes, and with everything it loads from the server (scripts, styles)."""
    html = client.get(path).text
    total = len(html.encode())
    for src in set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html)):
        total += len(client.get(src).content)
    return len(html.encode()), total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="inferlab-wb-bench-"))
    proc, url, first_s = serve(tmp)
    try:
        client = httpx.Client(base_url=url, timeout=600)
        model = ROOT / "examples" / "models" / "digits_cnn.onnx"
        if not model.is_file():
            model = next((ROOT / "examples" / "models").glob("*.onnx"))
        m = client.post("/api/models", files={"file": (model.name, model.read_bytes())}, headers=CHANGE).json()
        batches = ", ".join(str(b) for b in range(1, args.trials + 1))
        config = (f"name: wb-bench\nmodels: [{{name: {m['name']}, path: {m['path']}}}]\n"
                  f"backends: [{{name: onnxruntime}}]\nbatch: [{batches}]\n"
                  "measure: {warmup_iterations: 1, min_iterations: 5, min_duration_s: 0.2, max_duration_s: 1}\n")
        run_id = client.post("/api/runs", json={"config": config}, headers=CHANGE).json()["id"]
        delays = []
        with client.stream("GET", f"/api/runs/{run_id}/events") as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = json.loads(line[5:])
                    if kind == "trial-finished":
                        delays.append(time.time() - data["t"])
                    if kind == "run-ended":
                        break
        pages = {"runs": "/runs", "run (report)": f"/runs/{run_id}", "compare": f"/compare?run={run_id}"
                 f"&trial={run_id}:1&trial={run_id}:2", "models": "/models", "model": f"/models/{m['hash']}",
                 "datasets": "/datasets", "new experiment": "/experiments/new"}
        print(f"time to first page (process start to GET /runs answered): {first_s:.2f} s\n")
        print("| page | server time, median of 20 (ms) | HTML (KB) | with scripts and styles (KB) |")
        print("|---|---:|---:|---:|")
        for name, path in pages.items():
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                assert client.get(path).status_code == 200, path
                times.append((time.perf_counter() - t0) * 1000)
            html, total = weight(client, path)
            print(f"| {name} | {statistics.median(times):.1f} | {html / 1024:.1f} | {total / 1024:.1f} |")
        print(f"\n{len(delays)} trials: trial end to its event here, median {statistics.median(delays) * 1000:.0f} ms, "
              f"max {max(delays) * 1000:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
