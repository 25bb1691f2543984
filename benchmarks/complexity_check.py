"""inferlab's complexity count against independent ones (issue 14): parameters against the sum of the ONNX
initialisers' elements (must be equal), convolution/matmul FLOPs against torch's FlopCounterMode run directly on
the same PyTorch architecture at the same input shape (must be within 2%); beside them, the ratio onnx-tool's own
total (2 × graph.macs: bias adds and weighted elementwise ops included) would give. Prints a Markdown table;
--formats adds one of the same models counted from their .pt2 (FlopCounterMode) and OpenVINO IR (inferlab's op
counter) twins.

    .venv/bin/python benchmarks/complexity_check.py [--batch 1] [--formats]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

from architectures import MODELS  # noqa: E402
from panel_architectures import PANEL  # noqa: E402

from inferlab.api.analysis import analyze  # noqa: E402

TOLERANCE = 0.02
PANEL_PICKS = ("detector", "text_encoder")   # a YOLO-style CNN and a BERT-style encoder


@dataclass(frozen=True)
class Case:
    name: str
    onnx: Path
    shapes: dict[str, list[int]]
    module: Callable[[], torch.nn.Module]
    feeds: Callable[[int], dict[str, torch.Tensor]]


def cases(batch: int, scratch: Path, formats: bool = False) -> list[Case]:
    out = []
    models = EXAMPLES / "models"
    if not all((models / f"{n}.onnx").is_file() for n in MODELS):
        import build_models

        build_models.build(models)
    for name, (factory, input_name, shape, dtype) in MODELS.items():
        full = (batch, *shape[1:])

        def feeds(b: int, full: tuple[int, ...] = full, dtype: torch.dtype = dtype,
                  input_name: str = input_name) -> dict[str, torch.Tensor]:
            return {input_name: torch.zeros(full, dtype=dtype) if dtype == torch.int64 else torch.rand(full)}

        out.append(Case(name, models / f"{name}.onnx", {input_name: list(full)}, factory, feeds))
    panel = models / "panel"
    wanted = (".onnx", ".pt2", ".xml") if formats else (".onnx",)
    if not all((panel / f"{n}{x}").is_file() for n in PANEL_PICKS for x in wanted):
        import build_panel

        panel = scratch / "panel"
        build_panel.build(panel, list(PANEL_PICKS), formats=tuple(x[1:] for x in wanted))
    for name in PANEL_PICKS:
        spec = PANEL[name]
        example = spec.feeds(batch, 0)
        out.append(Case(name, panel / f"{name}.onnx", {k: list(v.shape) for k, v in example.items()},
                        spec.factory, lambda b, spec=spec: spec.feeds(b, 0)))
    return out


def initialiser_elements(path: Path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)   # np.prod(()) == 1: a scalar is one


def torch_flops(case: Case, batch: int) -> tuple[int, int]:
    """(FLOPs, parameters) of the PyTorch architecture itself, counted by FlopCounterMode, not through inferlab."""
    module = case.module().eval()
    feeds = case.feeds(batch)
    spec_inputs = PANEL[case.name].inputs if case.name in PANEL else tuple(feeds)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*(feeds[k] for k in spec_inputs))
    return counter.get_total_flops(), sum(p.numel() for p in module.parameters())


def twins(case: Case, scratch: Path) -> list[Path]:
    """The model's .pt2 and OpenVINO IR files (an IR converted from the ONNX file where none is on disk)."""
    import openvino as ov

    pt2, xml = case.onnx.with_suffix(".pt2"), case.onnx.with_suffix(".xml")
    if not xml.is_file():
        xml = scratch / f"{case.name}.xml"
        ov.save_model(ov.convert_model(str(case.onnx)), str(xml), compress_to_fp16=False)
    return [p for p in (pt2, xml) if p.is_file()]


def formats_table(all_cases: list[Case], batch: int, scratch: Path) -> list[str]:
    rows = ["| model | file | counted by | FLOPs (conv/matmul) | vs the ONNX count | params | min memory | "
            "max memory |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for case in all_cases:
        base = analyze(case.onnx, shape=case.shapes, batch=batch)
        # a one-input model's .pt2 names its input after forward()'s argument: give the bare shape
        shapes = next(iter(case.shapes.values())) if len(case.shapes) == 1 else case.shapes
        for path in [case.onnx, *twins(case, scratch)]:
            c = base if path == case.onnx else analyze(path, shape=shapes, batch=batch)
            rows.append(f"| {case.name} | {path.suffix} | {c.counted_by} | {c.flops:,} | {c.flops / base.flops:.4f} | "
                        f"{c.params:,} | {c.min_memory_bytes / 2**20:.2f} MiB | {c.max_memory_bytes / 2**20:.2f} MiB |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--formats", action="store_true", help="also count the .pt2 and OpenVINO IR twins")
    args = parser.parse_args()
    rows = []
    failed = []
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="complexity-check-") as tmp:
        all_cases = cases(args.batch, Path(tmp), args.formats)
        if args.formats:
            extra = formats_table(all_cases, args.batch, Path(tmp))
        for case in all_cases:
            t0 = time.perf_counter()
            c = analyze(case.onnx, shape=case.shapes, batch=args.batch)
            seconds = time.perf_counter() - t0
            inits = initialiser_elements(case.onnx)
            flops, torch_params = torch_flops(case, args.batch)
            ratio = c.flops / flops
            ok_params, ok_flops = c.params == inits, abs(ratio - 1) <= TOLERANCE
            if not (ok_params and ok_flops):
                failed.append(case.name)
            shape = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in case.shapes.items())
            rows.append(f"| {case.name} | {shape} | {c.params:,} | {inits:,} | {'=' if ok_params else '≠'} | "
                        f"{torch_params:,} | {c.flops:,} | {flops:,} | {ratio:.6f} | "
                        f"{2 * (c.macs + c.other_ops) / flops:.4f} | {seconds:.2f} s |")
    print(f"counted by: {c.counted_by}; FlopCounterMode from torch {torch.__version__}; batch {args.batch}\n")
    print("| model | input | params (inferlab) | Σ ONNX initialisers | | torch parameters | FLOPs inferlab "
          "(conv/matmul) | FLOPs FlopCounterMode | ratio | onnx-tool's own total ×2, ratio | analyze time |")
    print("|---|---|---:|---:|:-:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    if extra:
        print("\nThe same models from their other formats:\n")
        print("\n".join(extra))
    if failed:
        print(f"\nNOT within the bounds: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
