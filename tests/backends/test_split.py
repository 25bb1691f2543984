"""PyTorch's split of one model across devices (`hetero:A,B`): ops placed by affinity rules, copies inserted
where an input crosses, outputs unchanged; rules that match nothing refused in one line at planning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inferlab import backends
from inferlab.backends.split import CROSSING, check_rules, hetero_members, split
from inferlab.cli.main import main
from inferlab.errors import BackendError
from inferlab.models.artifact import resolve
from inferlab.models.convert import load_exported
from inferlab.models.tensors import TensorSpec
from inferlab.store import Store
from tests.fixtures.devices import needs_cuda


class Blocks(torch.nn.Module):
    """Two conv blocks with a residual add and a head: layers a split can cut between."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.block = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        y = y + self.block(y)
        return self.head(y.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("split") / "blocks.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(Blocks().eval(), (torch.rand(2, 3, 8, 8),), dynamic_shapes=({0: batch},)),
                      str(path))
    return path


def _module(path: Path) -> torch.nn.Module:
    return load_exported(resolve("blocks", str(path))).module()


def test_device_strings() -> None:
    assert hetero_members("hetero:cuda:0,cpu") == ["cuda:0", "cpu"]
    assert hetero_members("HETERO:cpu, cpu") == ["cpu", "cpu"]
    assert hetero_members("multi:cpu,cpu") is None and hetero_members("cpu") is None


def test_ops_go_where_the_rules_say_and_crossings_are_copied_and_counted(program: Path) -> None:
    """`cpu:0` is a second name for the CPU: a real copy is inserted at every crossing, without a GPU."""
    x = torch.rand(5, 3, 8, 8)
    want = _module(program)(x)
    gm = _module(program)
    placement = split(gm, ["cpu", "cpu:0"], [("block*", "cpu:0")])
    assert placement.layers == {"stem": "cpu", "block.0": "cpu:0", "block.1": "cpu:0", "head": "cpu"}
    assert placement.ops["cpu:0"] == 2 and placement.ops["cpu"] > 2
    # into the block (its input, once, though the residual add also reads it on cpu) and back out of it
    assert placement.crossings == 2
    got = gm(x)
    torch.testing.assert_close(got, want)
    # per inference: the stem's output into the block, the block's output back: two [5, 8, 8, 8] float tensors
    assert getattr(gm, CROSSING).bytes == 2 * 5 * 8 * 8 * 8 * 4


def test_rules_by_layer_type_and_by_op(program: Path) -> None:
    by_type = split(_module(program), ["cpu", "cpu:0"], [("Linear", "cpu:0")])
    assert [layer for layer, d in by_type.layers.items() if d == "cpu:0"] == ["head"]
    by_op = split(_module(program), ["cpu", "cpu:0"], [("conv2d", "cpu:0")])
    assert {layer for layer, d in by_op.layers.items() if d == "cpu:0"} == {"stem", "block.0"}


def test_a_rule_matching_no_layer_names_what_the_model_has(program: Path) -> None:
    with pytest.raises(BackendError) as e:
        check_rules(_module(program), [("Convolution", "cpu")], "blocks")
    text = str(e.value)
    assert "'Convolution' matches no layer of model 'blocks'" in text and "Conv2d" in text and "conv2d" in text
    assert "relu," in text or text.endswith("relu") or "relu;" in text  # in-place ops by their plain names
    check_rules(_module(program), [("block.*", "cpu"), ("Conv2d", "cpu")], "blocks")  # these match


def _config(tmp_path: Path, program: Path, device: str, affinity: str) -> Path:
    cfg = tmp_path / "split.yaml"
    cfg.write_text(f"""
models: [{{path: {program}}}]
backends:
  - name: torch
    devices: ["{device}"]
    affinity: {affinity}
batch: 2
measure: {{warmup_iterations: 2, min_iterations: 5, min_duration_s: 0.1, max_duration_s: 5}}
""")
    return cfg


@pytest.mark.parametrize(("device", "affinity", "says"), [
    ("hetero:cpu,cpu", "{Convolution: cpu}", "affinity: affinity rule 'Convolution' matches no layer"),
    ("hetero:cpu,cpu", "{Conv2d: 'cuda:0'}", "affinity.Conv2d: 'cuda:0' is not a device of hetero:cpu,cpu"),
])
def test_bad_affinity_is_one_line_exit_2_and_nothing_stored(tmp_path: Path, program: Path, device: str,
                                                            affinity: str, says: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.db"
    code = main(["run", str(_config(tmp_path, program, device, affinity)), "--db", f"sqlite:///{db}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and says in err
    assert not db.exists() or Store(f"sqlite:///{db}").runs() == []


def test_a_backend_that_cannot_split_says_so(tmp_path: Path, tiny_models: dict[str, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", tiny_models["tiny.onnx"], "--backend", "onnxruntime", "--device", "hetero:cpu,cpu",
                 "--db", f"sqlite:///{tmp_path / 'r.db'}"])
    err = capsys.readouterr().err
    assert code == 2 and "backend 'onnxruntime' cannot split a model across devices" in err and "torch" in err


def test_a_split_trial_records_where_layers_ran(tmp_path: Path, program: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["run", str(_config(tmp_path, program, "hetero:cpu,cpu", "{Linear: cpu}")), "--db", db]) == 0
    (r,) = Store(db).results()
    assert r.status == "ok" and r.spec.affinity == (("Linear", "cpu"),)
    assert r.runtime["device"] == "hetero:cpu,cpu" and "0 crossings" in str(r.runtime["placement"])


@needs_cuda
def test_a_split_across_the_gpu_and_the_cpu_gives_the_same_outputs(program: Path) -> None:
    backend = backends.get("torch")
    artifact = resolve("blocks", str(program))
    inputs = [TensorSpec("x", (4, 3, 8, 8), "float32", batch_axis=0)]
    x = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)
    want = backend.load(artifact, "cpu", {}, inputs).infer({"x": x})
    session = backend.load_split(artifact, ["cuda:0", "cpu"], {}, inputs, "latency", [("block*", "cpu")])
    got = session.infer({"x": x})
    np.testing.assert_allclose(next(iter(got.values())), next(iter(want.values())), rtol=1e-4, atol=1e-4)
    module = session._module  # type: ignore[attr-defined]
    assert module.stem.weight.device.type == "cuda" and module.get_submodule("block.0").weight.device.type == "cpu"
    session.close()
    assert session.info.runtime["crossing_mb_per_inference"] > 0
    placed = str(session.info.runtime["placement"])
    assert "cuda:0:" in placed and "2 crossings" in placed
