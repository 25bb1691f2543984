"""`inferlab analyze` from the command line: the example ResNet-S as a table and as JSON, the other formats, and
bad input (a corrupt file, a dynamic dimension without --shape, a typo in the path) in one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import _one_line_error, cli

ROOT = Path(__file__).resolve().parents[2]
RESNET = ROOT / "examples" / "models" / "resnet_s.onnx"
# ResNet-S at 224x224: its convolutions and head, counted by hand from examples/architectures.py
RESNET_MACS = 251_938_816


def test_resnet_json(tmp_path: Path) -> None:
    out = cli("analyze", str(RESNET), "--batch", "2", "--format", "json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["counted_by"].startswith("onnx-tool") and d["batch"] == 2
    assert d["inputs"] == [{"name": "image", "shape": [2, 3, 224, 224], "dtype": "float32"}]
    t = d["totals"]
    assert t["macs"] == 2 * RESNET_MACS and t["flops"] == 4 * RESNET_MACS and t["int8_share"] == 0.0
    assert t["params"] == 1_484_840 == sum(x["params"] for x in d["layers"])
    assert t["weight_bytes"] == 4 * t["params"] and d["weights"][0]["precision"] == "fp32"
    assert t["min_memory_bytes"] < t["max_memory_bytes"] == t["weight_bytes"] + t["activation_bytes"]
    assert sum(x["flops"] for x in d["layers"]) == t["flops"]
    assert {x["type"] for x in d["layers"] if x["macs"]} == {"Conv", "Gemm"}


def test_resnet_table() -> None:
    out = cli("analyze", str(RESNET), "--top", "3", "--order", "size")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "3 of 29 layers, largest first" in text and "/stem/stem.0/stem.0.0/Conv" in text
    for needle in ("GFLOP", "GIOP", "INT8 share", "min memory", "max memory", "counted by", "onnx-tool 1.0.1",
                   "0.5039", "1,484,840"):
        assert needle in text, needle


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(bytes(range(256)) * 8)
    _one_line_error(cli("analyze", str(bad)), "model.onnx: not a valid ONNX file")


def test_dynamic_dimension_without_shape(tmp_path: Path) -> None:
    from tests.fixtures.input_models import detector

    model = detector(tmp_path / "det.onnx")
    _one_line_error(cli("analyze", model), "input 'images' has dynamic dimensions", "--shape images=1x3x")


def test_typo_in_the_path(tmp_path: Path) -> None:
    _one_line_error(cli("analyze", str(RESNET.with_name("resnet_z.onnx"))), "resnet_z.onnx: model file not found",
                    "check the path")


def test_bad_flags() -> None:
    _one_line_error(cli("analyze", str(RESNET), "--format", "yaml"), "--format 'yaml'")
    _one_line_error(cli("analyze", str(RESNET), "--batch", "0"), "--batch 0")
    _one_line_error(cli("analyze", str(RESNET), "--input", "image=pics/"), "--input image=pics/",
                    "a constant or a range")


@pytest.mark.slow
def test_other_formats() -> None:
    """The .pt2 twin counts the same convolutions through FlopCounterMode; the IR through inferlab's counter."""
    for name, counter in (("resnet_s.pt2", "torch.utils.flop_counter"), ("resnet_s.xml", "OpenVINO op counter")):
        out = cli("analyze", str(RESNET.with_name(name)), "--format", "json")
        assert out.returncode == 0, out.stderr
        d = json.loads(out.stdout)
        assert counter in d["counted_by"] and d["totals"]["macs"] == RESNET_MACS, name
        assert not out.stderr.strip(), out.stderr
