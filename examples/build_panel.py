"""Build the model panel (panel_architectures.py) into examples/models/panel/: ONNX with named dynamic axes,
OpenVINO IR converted from the ONNX, and torch.export .pt2 twins; --verify then loads every file directly in
ONNX Runtime, OpenVINO and torch at two batch sizes and two sizes of the other dynamic dims."""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from panel_architectures import PANEL, PanelModel  # noqa: E402

FORMATS = ("onnx", "xml", "pt2")
DEFAULT_BOUNDS = {"batch": (1, 1024)}  # torch.export bounds where a model names none; otherwise (1, 4096)


@dataclass
class Built:
    name: str
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # format -> why it was not written


def _export_onnx(model: torch.nn.Module, spec: PanelModel, args: tuple[torch.Tensor, ...], path: Path) -> None:
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings on shape arithmetic
        torch.onnx.export(model, args, str(path), input_names=list(spec.inputs), output_names=list(spec.outputs),
                          dynamic_axes=spec.axes, opset_version=17, dynamo=False)
    # The exporter names some static output dims it could not infer (boxes [batch, anchors, 'Concat..._dim_2']);
    # declare them as the numbers they are, so only the axes the panel names are dynamic.
    with torch.no_grad():
        shapes = [tuple(t.shape) for t in _as_tuple(model(*args))]
    proto = onnx.load(str(path))
    for value, shape in zip(proto.graph.output, shapes, strict=True):
        dynamic = spec.axes.get(value.name, {})
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis not in dynamic:
                dim.dim_value = shape[axis]  # clears dim_param: the two share a oneof
    onnx.save(proto, str(path))


def _dims(spec: PanelModel) -> tuple[dict[int, object] | None, ...]:
    """torch.export dynamic shapes, one Dim per ONNX axis name (shared where the name repeats)."""
    made: dict[str, object] = {}
    shapes: list[dict[int, object] | None] = []
    for name in spec.inputs:
        axes = spec.axes.get(name)
        if not axes:
            shapes.append(None)
            continue
        entry: dict[int, object] = {}
        for axis, label in axes.items():
            if label not in made:
                ident = re.sub(r"\W", "_", label)
                step = spec.multiple_of.get(label, 1)
                low, high = spec.bounds.get(label) or DEFAULT_BOUNDS.get(label, (1, 4096))
                made[label] = (torch.export.Dim(ident, min=low, max=high) if step == 1
                               else step * torch.export.Dim(f"{ident}_div{step}", min=max(1, low // step),
                                                            max=high // step))
            entry[axis] = made[label]
        shapes.append(entry)
    return tuple(shapes)


def build(out: Path, names: list[str] | None = None, formats: tuple[str, ...] = FORMATS) -> list[Built]:
    """Export the panel (or ``names`` of it) in ``formats`` into ``out``; a .pt2 that torch.export cannot
    produce is reported in ``Built.skipped`` rather than raised."""
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for name in names or list(PANEL):
        spec, result = PANEL[name], Built(name)
        model = spec.factory()
        # batch 2: torch.export specialises a dimension traced at size 1
        args = tuple(spec.feeds(2, 0)[i] for i in spec.inputs)
        onnx_path = out / f"{name}.onnx"
        if "onnx" in formats or "xml" in formats:
            _export_onnx(model, spec, args, onnx_path)
            if "onnx" in formats:
                result.files.append(onnx_path)
        if "xml" in formats:
            import openvino as ov

            xml = out / f"{name}.xml"
            ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
            result.files += [xml, xml.with_suffix(".bin")]
            if "onnx" not in formats:
                onnx_path.unlink()
        if "pt2" in formats and spec.no_pt2:
            result.skipped["pt2"] = spec.no_pt2
        elif "pt2" in formats:
            pt2 = out / f"{name}.pt2"
            try:
                program = torch.export.export(model, args, dynamic_shapes=_dims(spec))
                torch.export.save(program, str(pt2))
                result.files.append(pt2)
            except Exception as exc:  # torch.export's failures have many types; the report says which
                result.skipped["pt2"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        built.append(result)
    return built


# ------------------------------------------------------------------------------------------------ verify


def onnx_listing(path: Path) -> list[str]:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    lines = []
    for kind, values in (("in ", m.graph.input), ("out", m.graph.output)):
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else "?")
                    for d in t.shape.dim]
            lines.append(f"{kind} {v.name}: {onnx.TensorProto.DataType.Name(t.elem_type).lower()} {dims}")
    return lines


def ov_listing(model: object) -> list[str]:
    lines = []
    for kind, ports in (("in ", model.inputs), ("out", model.outputs)):  # type: ignore[attr-defined]
        for p in ports:
            lines.append(f"{kind} {p.get_any_name()}: {p.get_element_type().get_type_name()} {p.get_partial_shape()}")
    return lines


def _np(feeds: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in feeds.items()}


def _close(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape or not np.allclose(a, b, rtol=1e-3, atol=1e-4):
        err = np.abs(a.astype(np.float64) - b).max() if a.shape == b.shape else f"{a.shape} vs {b.shape}"
        raise AssertionError(f"{what}: outputs differ ({err})")


def verify(out: Path, names: list[str] | None = None, repeats: int = 50) -> dict[str, float]:
    """Load and run every file of the panel in its runtime at batch 1 and 2, sizes 0 and 1, checking each
    against eager torch; print the inputs as ONNX and OpenVINO declare them. Returns ORT batch-1 ms."""
    import onnxruntime as ort
    import openvino as ov

    core = ov.Core()
    timings = {}
    for name in names or list(PANEL):
        spec = PANEL[name]
        model = spec.factory()
        onnx_path, xml, pt2 = (out / f"{name}{s}" for s in (".onnx", ".xml", ".pt2"))
        print(f"== {name}\n   onnx:")
        for line in onnx_listing(onnx_path):
            print("     ", line)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        ov_model = core.read_model(str(xml))
        print("   openvino:")
        for line in ov_listing(ov_model):
            print("     ", line)
        compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                       "INFERENCE_NUM_THREADS": 1})
        program = torch.export.load(str(pt2)).module() if pt2.is_file() else None
        cases = []
        for batch in (1, 2):
            for size in (0, 1):
                feeds = spec.feeds(batch, size)
                with torch.no_grad():
                    expected = [t.numpy() for t in _as_tuple(model(*(feeds[i] for i in spec.inputs)))]
                got = sess.run(list(spec.outputs), _np(feeds))
                res = compiled(_np(feeds))
                got_ov = [res[compiled.output(o)] for o in spec.outputs]
                for o, e, g, v in zip(spec.outputs, expected, got, got_ov, strict=True):
                    _close(g, e, f"{name} ort {o} b{batch} s{size}")
                    _close(v, e, f"{name} openvino {o} b{batch} s{size}")
                if program is not None:
                    with torch.no_grad():
                        pt = _as_tuple(program(*(feeds[i] for i in spec.inputs)))
                    for o, e, p in zip(spec.outputs, expected, pt, strict=True):
                        _close(p.numpy(), e, f"{name} pt2 {o} b{batch} s{size}")
                cases.append(f"b{batch}:" + ",".join(f"{o}{list(g.shape)}" for o, g in zip(spec.outputs, got,
                                                                                          strict=True)))
        print("   ran ort + openvino" + (" + pt2" if program is not None else " (no pt2)") + ": " + "  ".join(cases))
        feeds1 = _np(spec.feeds(1, 0))
        sess.run(None, feeds1)
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            sess.run(None, feeds1)
            samples.append((time.perf_counter_ns() - t0) / 1e6)
        timings[name] = float(np.median(samples))
        print(f"   ort batch 1, 1 thread: median {timings[name]:.2f} ms, min {min(samples):.2f} ms ({repeats} runs)")
    return timings


def _as_tuple(x: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return x if isinstance(x, tuple) else (x,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "models" / "panel")
    parser.add_argument("--only", nargs="*", choices=list(PANEL), help="build just these models")
    parser.add_argument("--verify", action="store_true", help="then load and run every file in its runtime")
    args = parser.parse_args()
    for b in build(args.out, args.only):
        files = ", ".join(p.name for p in b.files)
        print(f"{b.name:13s} {files}" + "".join(f"\n{'':13s} no .{f}: {why}" for f, why in b.skipped.items()))
    if args.verify:
        verify(args.out, args.only)


if __name__ == "__main__":
    main()
