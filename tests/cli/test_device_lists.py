"""--device lists: a multi:/hetero: device keeps its members, so a trial measures what the user wrote or is
refused in one line, never a plain member measured in its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.cli.main import _devices, main


def test_a_multi_or_hetero_device_takes_the_rest_of_the_list() -> None:
    assert _devices("cpu") == ["cpu"]
    assert _devices("cpu, cuda:0") == ["cpu", "cuda:0"]
    assert _devices("multi:cpu,cpu") == ["multi:cpu,cpu"]
    assert _devices("cpu,multi:cuda:0,cpu") == ["cpu", "multi:cuda:0,cpu"]
    assert _devices("HETERO:GPU,CPU") == ["HETERO:GPU,CPU"]


def test_a_multi_device_a_backend_cannot_use_is_refused_not_replaced(
        tiny_models: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", tiny_models["tiny.onnx"], "--backend", "onnxruntime", "--device", "multi:cpu,npu",
                 "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "--device: 'multi:cpu,npu' is not a device backend 'onnxruntime' can use" in err
