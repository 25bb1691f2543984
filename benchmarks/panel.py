"""The model panel (examples/build_panel.py) benchmarked by `inferlab bench` with command-line flags only, as a
new user would type them: ONNX Runtime and OpenVINO on the ONNX file (PyTorch on the .pt2 twin), latency and
throughput modes and MLPerf's Offline scenario. Prints each model's bench line and a Markdown table.

    .venv/bin/python benchmarks/panel.py [--time 3] [--models vad,detector] [--db /tmp/panel.db]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PANEL_DIR = ROOT / "examples" / "models" / "panel"

# What a user must say about each model's inputs (the rest the model declares). The README shows these too.
FLAGS: dict[str, str] = {
    "detector": "--shape images=1x3x320x320",
    "ocr_rec": "--shape x=1x3x48x320",
    "ocr_det": "--shape x=1x3x320x320",
    "vad": "--shape input=1x512 --input sr=16000",
    "text_encoder": "--shape input_ids=1x64 --input input_ids=0..1000 --input token_type_ids=0..2",
    "masked_pool": "--shape features=1x50x64",
}
NO_PT2 = {"ocr_rec"}  # torch.export unrolls its BiLSTM over a fixed width (build_panel.py says why)


MODES = ("--mode", "latency,throughput", "--scenario", "offline")


def commands(name: str, seconds: float, db: str, modes: tuple[str, ...] = MODES) -> list[list[str]]:
    """The bench lines for one model: ORT and OpenVINO on the ONNX file, torch on the .pt2 twin."""
    exe = str(Path(sys.executable).with_name("inferlab"))
    common = [*shlex.split(FLAGS[name]), *modes, "--time", str(seconds), "--db", db]
    out = [[exe, "bench", str(PANEL_DIR / f"{name}.onnx"), "--backend", "onnxruntime,openvino", *common]]
    if name not in NO_PT2:
        out.append([exe, "bench", str(PANEL_DIR / f"{name}.pt2"), "--backend", "torch", *common])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=float, default=3.0)
    parser.add_argument("--models", default=",".join(FLAGS))
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    if not (PANEL_DIR / "vad.onnx").is_file():
        subprocess.run([sys.executable, str(ROOT / "examples" / "build_panel.py")], check=True)
    db = args.db or str(Path(tempfile.mkdtemp(prefix="inferlab-panel-")) / "panel.db")
    from inferlab.store import Store

    rows = []
    for name in args.models.split(","):
        for cmd in commands(name, args.time, db):
            shown = " ".join(["inferlab", *cmd[1:cmd.index("--time")]])
            print(f"$ {shown}", flush=True)
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode not in (0, 1):
                print(done.stderr.strip())
                rows.append((name, shown, None))
                continue
            store = Store(db)
            try:
                results = store.results(store.run_info("latest").id)
            finally:
                store.close()
            rows.append((name, shown, results))
    print("\n| model | backend | mode | batch | in flight | status | FPS | median ms | p99 ms |")
    print("|---|---|---|---:|---:|---|---:|---:|---:|")
    for name, _, results in rows:
        for r in results or []:
            fps = f"{r.throughput_sps:,.0f}" if r.throughput_sps else "—"
            lat = r.latency
            med = f"{lat.median_3sigma_ms:.3g}" if lat else "—"
            p99 = f"{lat.p99_ms:.3g}" if lat else "—"
            status = (r.loadgen.validity or r.status) if r.loadgen is not None else r.status
            if r.status == "failed":
                status = f"failed: {(r.reason or '')[:60]}"
            print(f"| {name} | {r.spec.backend} | {r.spec.mode} | {r.spec.batch} | {r.in_flight or '—'} | {status} "
                  f"| {fps} | {med} | {p99} |")


if __name__ == "__main__":
    main()
