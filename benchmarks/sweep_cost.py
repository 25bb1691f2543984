"""What a trial costs beyond its measured window, over a sweep: `inferlab bench` of several trials (every trial
after the first starts a fresh process, which fixed_cost.py's single trial hides behind the process started
early), with each checkout given by --src alternating in every round (as fixed_cost.py does).

Prints, per checkout, the median whole-process wall time, and the cost per trial beyond its window
((wall - trials x window) / trials), besides a fresh interpreter's `import inferlab.execute.runner` (what every
trial process imports before it can start) and `import onnx` (what the parent imports to read an .onnx).

    .venv/bin/python benchmarks/sweep_cost.py [--rounds 3] [--time 0.3] --src before=DIR --src after=src
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixed_cost import BIN, ROOT, _codes, _env, _timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="examples/models/resnet_s.onnx")
    ap.add_argument("--time", type=float, default=0.3, help="each trial's measured seconds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--src", action="append", metavar="NAME=DIR",
                    help="measure the code in DIR (a checkout's src/, through PYTHONPATH), as NAME; repeatable")
    a = ap.parse_args()
    grid = ["--backend", "onnxruntime,openvino", "--batch", "1,2", "--mode", "latency,throughput",
            "-p", "inference_precision=f32"]
    trials = 8
    codes = _codes(a.src)
    walls: dict[str, list[float]] = {n: [] for n in codes}
    imports: dict[str, dict[str, list[float]]] = {n: {"runner": [], "onnx": []} for n in codes}
    with tempfile.TemporaryDirectory(prefix="inferlab-sweep-cost-") as tmp_:
        tmp = Path(tmp_)
        for r in range(a.rounds):
            for name, src in (list(codes.items()) if r % 2 == 0 else list(codes.items())[::-1]):
                (tmp / name).mkdir(exist_ok=True)
                env = _env(src, tmp / name)
                cmd = [str(BIN / "inferlab"), "bench", str(ROOT / a.model), *grid, "--time", str(a.time)]
                wall = _timed(cmd, env)[2]
                walls[name].append(wall)
                for what, code in (("runner", "import inferlab.execute.runner"), ("onnx", "import onnx")):
                    imports[name][what].append(_timed([sys.executable, "-c", code], env)[2])
                print(f"round {r + 1}/{a.rounds}: {name:<12} {wall:6.2f} s", flush=True)
    print(f"\n`inferlab bench {a.model} {' '.join(grid)} --time {a.time:g}` ({trials} trials), {a.rounds} rounds, "
          "alternating\n")
    print("| checkout | median wall s | per trial beyond its window s | rounds (s) | import runner s | import onnx s |")
    print("|---|---:|---:|---|---:|---:|")
    for name in codes:
        wall = statistics.median(walls[name])
        print(f"| {name} | {wall:.2f} | {(wall - trials * a.time) / trials:.2f} | "
              f"{', '.join(f'{w:.2f}' for w in walls[name])} | {statistics.median(imports[name]['runner']):.2f} | "
              f"{statistics.median(imports[name]['onnx']):.2f} |")


if __name__ == "__main__":
    main()
