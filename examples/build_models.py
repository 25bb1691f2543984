"""Build the example models: export each architecture to ONNX (dynamic batch) and to a torch.export
.pt2 archive, and convert ResNet-S to OpenVINO IR. Writes into examples/models/; skips what exists."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from architectures import MODELS  # noqa: E402


def build(out: Path, force: bool = False) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (factory, input_name, shape, dtype) in MODELS.items():
        onnx_path, pt2_path = out / f"{name}.onnx", out / f"{name}.pt2"
        if force or not (onnx_path.is_file() and pt2_path.is_file()):
            model = factory()
            # batch 2 in the example: torch.export specialises a dimension traced at size 1
            shape2 = (2, *shape[1:])
            example = (torch.randint(0, 1000, shape2) if dtype == torch.int64 else torch.rand(shape2),)
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
            torch.export.save(program, str(pt2_path))
            torch.onnx.export(model, example, str(onnx_path), input_names=[input_name], output_names=["logits"],
                              dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}},
                              opset_version=17, dynamo=False)
            written += [onnx_path, pt2_path]
    ir = out / "resnet_s.xml"
    if importlib.util.find_spec("openvino") is None:
        print("openvino is not installed: skipping the OpenVINO IR")
    elif force or not ir.is_file():
        import openvino as ov

        ov.save_model(ov.convert_model(str(out / "resnet_s.onnx")), str(ir), compress_to_fp16=False)
        written.append(ir)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "models")
    parser.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = parser.parse_args()
    for p in build(args.out, args.force):
        print(f"wrote {p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p}")


if __name__ == "__main__":
    main()
