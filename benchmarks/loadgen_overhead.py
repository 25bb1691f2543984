"""What inferlab's LoadGen SUT costs, and whether Offline through LoadGen agrees with throughput mode.

Part A, SUT overhead: LoadGen's Offline scenario against a no-op session (the null backend), through
inferlab's SystemUnderTest, and through a minimal hand-written SUT that completes each request's samples
at once; same LoadGen settings, alternating rounds, in this process. Target: inferlab keeps >= 50% of the
bare SUT's samples/s.

Part B, agreement: the same model and settings measured by inferlab's throughput mode and by LoadGen's
Offline scenario, each trial in its own process through the normal executor, alternating rounds.
Target: Offline samples/s within 5% of throughput mode's FPS (median ratio).

    python benchmarks/loadgen_overhead.py [--rounds 5] [--skip-agreement]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg

from inferlab import api
from inferlab.backends.null import NullSession
from inferlab.measure.mlperf.library import SampleLibrary
from inferlab.measure.mlperf.logs import parse, read_detail
from inferlab.measure.mlperf.sut import SystemUnderTest
from inferlab.models.tensors import TensorSpec

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 1024
SPEC = [TensorSpec("x", (1, 16), "float32")]


def _settings(expected_qps: float, duration_s: float) -> Any:
    ts = lg.TestSettings()
    ts.scenario = lg.TestScenario.Offline
    ts.mode = lg.TestMode.PerformanceOnly
    ts.offline_expected_qps = expected_qps
    ts.min_duration_ms = int(duration_s * 1000)
    ts.min_query_count = 1
    return ts


def _run(issue: Any, load: Any, unload: Any, ts: Any, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(SAMPLES, SAMPLES, load, unload)
    output = lg.LogOutputSettings()
    output.outdir = str(out)
    output.copy_summary_to_stdout = False
    log = lg.LogSettings()
    log.log_output = output
    try:
        lg.StartTestWithLogSettings(sut, qsl, ts, log)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    sps = parse(read_detail(out / "mlperf_log_detail.txt")).samples_per_s
    assert sps is not None
    return sps


def bare_issue(batch: int) -> Any:
    """A minimal hand-written SUT: 'run' each batch (nothing to run) and complete its samples."""
    def issue(query_samples: Any) -> None:
        for start in range(0, len(query_samples), batch):
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0)
                                     for q in query_samples[start:start + batch]])
    return issue


def inferlab_run(batch: int, ts: Any, out: Path) -> float:
    session = NullSession(SPEC)
    library = SampleLibrary(SPEC, SAMPLES, 0, session, batch)
    sut = SystemUnderTest(lg, session, library, batch, depth=1, dispatched=False, accuracy=False)
    sut.start()
    try:
        return _run(sut.issue, library.load, library.unload, ts, out)
    finally:
        sut.stop()


def part_a(rounds: int, tmp: Path) -> None:
    print("Part A: Offline, no-op session, samples/s (LoadGen's figure)")
    print("| batch | bare SUT (median) | inferlab SUT (median) | ratio (median of rounds) |")
    print("|---|---|---|---|")
    for batch in (1, 8):
        bare, ours, ratios = [], [], []
        for r in range(rounds):
            ts = _settings(expected_qps=400_000 if batch == 1 else 1_500_000, duration_s=1.0)
            pair = {}
            for name in (("bare", "inferlab") if r % 2 == 0 else ("inferlab", "bare")):
                out = tmp / f"a-{batch}-{r}-{name}"
                pair[name] = (_run(bare_issue(batch), lambda _i: None, lambda _i: None, ts, out)
                              if name == "bare" else inferlab_run(batch, ts, out))
            bare.append(pair["bare"])
            ours.append(pair["inferlab"])
            ratios.append(pair["inferlab"] / pair["bare"])
        print(f"| {batch} | {statistics.median(bare):,.0f} | {statistics.median(ours):,.0f} | "
              f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}) |")


def part_b(rounds: int, tmp: Path) -> None:
    print("\nPart B: resnet_s, Offline through LoadGen vs throughput mode, samples/s")
    print("| backend | batch | throughput mode (median) | Offline (median) | ratio (median of rounds) |")
    print("|---|---|---|---|---|")
    model = ROOT / "examples" / "models" / "resnet_s.onnx"
    for backend, batch in (("onnxruntime", 8), ("openvino", 8)):
        tput, offline, ratios = [], [], []
        for r in range(rounds):
            order = ("throughput", "Offline") if r % 2 == 0 else ("Offline", "throughput")
            got = {}
            for mode in order:
                scen = [mode] if mode == "Offline" else None
                exp = api.bench_experiment(str(model), [backend], ["cpu"], [batch], [] if scen else [mode],
                                           {}, {"min_duration_s": 4.0, "max_duration_s": 60.0},
                                           scenarios=scen, loadgen={} if scen else None)
                res = api.execute(exp, db=str(tmp / "b.db")).results[0]
                assert res.status == "ok", res.reason
                assert res.throughput_sps is not None
                got[mode] = res.throughput_sps
            tput.append(got["throughput"])
            offline.append(got["Offline"])
            ratios.append(got["Offline"] / got["throughput"])
        print(f"| {backend} | {batch} | {statistics.median(tput):,.1f} | {statistics.median(offline):,.1f} | "
              f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}) |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-agreement", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="inferlab-lg-overhead-") as tmp:
        part_a(args.rounds, Path(tmp))
        if not args.skip_agreement:
            part_b(args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
