"""`ensemble:` in an experiment: the trials it plans (one per backend × batch × mode, its members in order, the
members not run alone), what it refuses in one line naming the field, what it skips with a note, and the
ensemble's place in a trial's spec and key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inferlab.cli.main import main
from inferlab.config import load_text, plan
from inferlab.errors import BackendError, ConfigError
from inferlab.execute.ensemble import member_inputs
from inferlab.records.ensemble import EnsembleFigures, EnsembleSpec
from inferlab.records.trial import MemberResult, TrialResult, TrialSpec


def _classifier(path: Path, shape: list[int | str], seed: int, classes: int = 10) -> str:
    """x [batch, C, H, W] -> y [batch, classes]: a pooled linear layer, written with onnx.helper (instant)."""
    rng = np.random.default_rng(seed)
    channels = shape[1]
    assert isinstance(channels, int)
    inits = [numpy_helper.from_array(rng.standard_normal((channels, classes)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(classes, np.float32), "b")]
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"])]
    graph = helper.make_graph(nodes, "classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """alpha and beta take [batch, 3, 16, 16]; gamma takes [batch, 3, 8, 8]; digit takes [batch, 1, 8, 8]."""
    d = tmp_path_factory.mktemp("ensemble-nets")
    return {"alpha": _classifier(d / "alpha.onnx", ["batch", 3, 16, 16], 0),
            "beta": _classifier(d / "beta.onnx", ["batch", 3, 16, 16], 1),
            "gamma": _classifier(d / "gamma.onnx", ["batch", 3, 8, 8], 2),
            "digit": _classifier(d / "digit.onnx", ["batch", 1, 8, 8], 3)}


def _models(nets: dict[str, str], **extra: str) -> str:
    """A models: list of alpha, beta and gamma by name (`extra`: more YAML inside an entry, by name)."""
    entries = [f"{{name: {n}, path: {nets[n]}{', ' + extra[n] if n in extra else ''}}}"
               for n in ("alpha", "beta", "gamma")]
    return f"models: [{', '.join(entries)}]\n"


ORT = "backends: [{name: onnxruntime}]\n"


@pytest.mark.slow
def test_an_ensemble_is_one_trial_per_backend_batch_and_mode(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + """
backends: [{name: onnxruntime}, {name: openvino}]
ensemble: {members: [beta, alpha]}
batch: [1, 4]
mode: [latency, throughput]
""")
    specs = plan(exp).specs
    ensembles = [s for s in specs if s.ensemble is not None]
    assert len(ensembles) == 2 * 2 * 2
    assert sorted((s.backend, s.batch, s.mode) for s in ensembles) == sorted(
        (b, n, m) for b in ("onnxruntime", "openvino") for n in (1, 4) for m in ("latency", "throughput"))
    for s in ensembles:
        assert s.ensemble is not None
        assert [m.name for m in s.ensemble.members] == ["beta", "alpha"]  # the ensemble's order, not models'
        assert s.ensemble.name == s.model.name == "beta+alpha"
        assert s.ensemble.combine == "mean"
        assert s.model.hash not in {m.hash for m in s.ensemble.members}
        assert s.device == "cpu" and s.profile == ()
    # a model named in an ensemble runs only inside it; the others run alone as ever
    alone = [s for s in specs if s.ensemble is None]
    assert {s.model.name for s in alone} == {"gamma"} and len(alone) == 8
    assert len({s.key() for s in specs}) == len(specs) == 16


def test_an_ensemble_is_named_and_combined_as_asked(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + ORT + "ensemble: {members: [alpha, beta], name: pair, combine: vote}\n")
    specs = plan(exp).specs
    (s,) = [s for s in specs if s.ensemble is not None]
    assert s.ensemble is not None
    assert s.model.name == s.ensemble.name == "pair" and s.ensemble.combine == "vote"
    assert "pair(alpha+beta)" in s.label()
    # the members' inputs at the trial's batch, each its own
    assert [[t.shape for t in ins] for ins in member_inputs(s)] == [[(1, 3, 16, 16)], [(1, 3, 16, 16)]]


def test_a_member_that_is_not_a_model_is_named_with_a_suggestion(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + ORT + "ensemble: {members: [alpha, betta]}\n")
    with pytest.raises(ConfigError, match=r"^ensemble\.members\[1\]: 'betta' is not a model of this experiment "
                                          r"\(its models: alpha, beta, gamma\); did you mean 'beta'\?"):
        plan(exp)
    exp = load_text(_models(nets) + ORT + "ensemble: {members: [zzz, alpha]}\n")
    with pytest.raises(ConfigError, match=r"^ensemble\.members\[0\]: 'zzz' is not a model") as info:
        plan(exp)
    assert "did you mean" not in str(info.value)


def test_a_member_named_twice_is_refused(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + ORT + "ensemble: {members: [alpha, beta, alpha]}\n")
    with pytest.raises(ConfigError, match=r"^ensemble\.members\[2\]: 'alpha' is named twice"):
        plan(exp)


TWO = "models: [{path: a.onnx}, {path: b.onnx}]\nbackends: [{name: onnxruntime}]\n"


def test_an_ensemble_entry_is_checked_when_the_config_loads() -> None:
    for body in ("ensemble: {members: [a]}", "ensemble: {members: [a, b], combine: max}",
                 "ensemble: {members: [a, b], combin: vote}", "ensemble: [{members: [a, b]}, {members: [a]}]"):
        with pytest.raises(ConfigError, match=r"^e\.yaml: ensemble"):
            load_text(TWO + body + "\n", "e.yaml")
    assert load_text(TWO + "ensemble: {members: [a, b]}\n").ensembles()[0][0] == "ensemble"


def test_a_mistyped_key_of_an_ensemble_names_its_field_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        load_text(TWO + "ensemble: {members: [a, b], combin: vote}\n", "e.yaml")
    assert str(info.value).startswith("e.yaml: ensemble.combin: unknown key 'combin'; did you mean 'combine'?")


def test_a_mistake_in_a_list_of_ensembles_names_the_entry() -> None:
    with pytest.raises(ConfigError) as info:
        load_text(TWO + "ensemble: [{members: [a, b]}, {members: [a, b], combine: max}]\n", "e.yaml")
    assert str(info.value).startswith("e.yaml: ensemble[1].combine: 'max' is not one of"), str(info.value)


def test_one_member_is_refused_for_what_it_is() -> None:
    with pytest.raises(ConfigError) as info:
        load_text(TWO + "ensemble: {members: [a]}\n", "e.yaml")
    message = str(info.value)
    assert message.startswith("e.yaml: ensemble.members: ") and "empty" not in message, message


def test_members_of_different_input_shapes_need_each_members_shape(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + ORT + "ensemble: {members: [alpha, gamma]}\n")
    with pytest.raises(ConfigError, match=r"^ensemble\.members: 'alpha' takes 1x3x16x16 but 'gamma' takes 1x3x8x8, "
                                          r"and members are fed the same samples; give each member its input shape "
                                          r"\(models\[0\]\.inputs\.x\.shape\)"):
        plan(exp)
    # one member's shape is not enough: the message names the member still lacking one
    exp = load_text(_models(nets, gamma="inputs: {x: {shape: [-1, 3, 8, 8]}}") + ORT
                    + "ensemble: {members: [alpha, gamma]}\n")
    with pytest.raises(ConfigError, match=r"^ensemble\.members: .*\(models\[0\]\.inputs\.x\.shape\)"):
        plan(exp)
    exp = load_text(_models(nets, alpha="inputs: {x: {shape: [-1, 3, 16, 16]}}") + ORT
                    + "ensemble: {members: [alpha, gamma]}\n")
    with pytest.raises(ConfigError, match=r"\(models\[2\]\.inputs\.x\.shape\)"):
        plan(exp)


def test_members_of_different_input_shapes_plan_when_every_member_gives_its_shape(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets, alpha="inputs: {x: {shape: [-1, 3, 16, 16]}}",
                            gamma="inputs: {x: {shape: [-1, 3, 8, 8]}}")
                    + ORT + "ensemble: {members: [alpha, gamma]}\nbatch: [2, 4]\n")
    ensembles = [s for s in plan(exp).specs if s.ensemble is not None]
    assert [s.batch for s in ensembles] == [2, 4]
    for s in ensembles:
        assert [[t.shape for t in ins] for ins in member_inputs(s)] == [[(s.batch, 3, 16, 16)], [(s.batch, 3, 8, 8)]]


def test_a_scenario_is_skipped_for_an_ensemble_with_a_note(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + ORT + "ensemble: {members: [alpha, beta]}\nmode: latency\nscenario: Offline\n")
    p = plan(exp)
    assert sorted((s.model.name, s.mode) for s in p.specs) == [("alpha+beta", "latency"), ("gamma", "Offline"),
                                                                ("gamma", "latency")]
    assert [n for n in p.skipped if "alpha+beta" in n] == [
        "ensemble 'alpha+beta' runs with inferlab's drivers; Offline (LoadGen) is skipped"]


def test_an_ensemble_is_refused_a_profile(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + ORT + "ensemble: {members: [alpha, beta]}\nprofile: [layers]\n")
    with pytest.raises(BackendError, match=r"^profile: an ensemble has no profile of its own"):
        plan(exp)


def test_a_multi_device_is_skipped_for_an_ensemble(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + ORT + "ensemble: {members: [alpha, beta]}\ndevices: [cpu, 'multi:cpu,cpu']\n")
    p = plan(exp)
    assert [s.device for s in p.specs if s.ensemble is not None] == ["cpu"]
    assert "ensemble 'alpha+beta' runs on one device, not on multi:cpu,cpu" in p.skipped


def test_a_backend_that_cannot_load_a_member_skips_the_ensemble(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets) + "backends: [{name: onnxruntime}, {name: torch}]\n"
                    "ensemble: {members: [alpha, beta]}\n")
    p = plan(exp)
    assert {s.backend for s in p.specs if s.ensemble is not None} == {"onnxruntime"}
    assert any(n.startswith("ensemble 'alpha+beta': torch skips model 'alpha'") for n in p.skipped), p.skipped


def test_a_list_of_ensembles(nets: dict[str, str]) -> None:
    exp = load_text(_models(nets, gamma="inputs: {x: {shape: [-1, 3, 8, 8]}}",
                            beta="inputs: {x: {shape: [-1, 3, 16, 16]}}") + ORT + """
ensemble:
  - {members: [alpha, beta]}
  - {members: [beta, gamma], name: bg, combine: vote}
""")
    assert [f for f, _ in exp.ensembles()] == ["ensemble[0]", "ensemble[1]"]
    got = [(s.model.name, [m.name for m in s.ensemble.members], s.ensemble.combine)
           for s in plan(exp).specs if s.ensemble is not None]
    assert got == [("alpha+beta", ["alpha", "beta"], "mean"), ("bg", ["beta", "gamma"], "vote")]
    assert all(s.ensemble is not None for s in plan(exp).specs)  # every model is a member of one
    # errors name the entry of the list
    bad = load_text(_models(nets) + ORT + "ensemble: [{members: [alpha, beta]}, {members: [beta, gama]}]\n")
    with pytest.raises(ConfigError, match=r"^ensemble\[1\]\.members\[1\]: 'gama' is not a model .*did you mean "
                                          r"'gamma'\?"):
        plan(bad)
    bad = load_text(_models(nets) + ORT + "ensemble: [{members: [alpha, beta]}, {members: [beta, gamma]}]\n")
    with pytest.raises(ConfigError, match=r"^ensemble\[1\]\.members: 'beta' takes 1x3x16x16 but 'gamma'"):
        plan(bad)


def test_each_member_reads_the_dataset_its_own_way(nets: dict[str, str]) -> None:
    d = nets["digit"]
    exp = load_text(f"""
models:
  - {{name: plain, path: {d}}}
  - {{name: scaled, path: {d}, preprocess: {{scale: 0.0625}}, postprocess: {{scores: probabilities}}}}
backends: [{{name: onnxruntime}}]
ensemble: {{members: [scaled, plain]}}
dataset: {{format: digits, split: test, subset: 20}}
accuracy: {{with_speed: true}}
mode: [latency, throughput, accuracy]
""")
    specs = plan(exp).specs
    assert sorted(s.mode for s in specs) == ["accuracy", "latency", "throughput"]
    for s in specs:
        assert s.ensemble is not None and s.accuracy is not None
        assert [m.name for m in s.ensemble.members] == ["scaled", "plain"]
        assert s.ensemble.members[0].hash == s.ensemble.members[1].hash  # one file, two readings
        (pre0, post0), (pre1, post1) = s.ensemble.readings
        assert (pre0.scale, post0.scores, pre1.scale, post1.scores) == (0.0625, "probabilities", 1.0, "logits")
        first, second = s.ensemble.member_accuracy(s.accuracy, 0), s.ensemble.member_accuracy(s.accuracy, 1)
        assert first.preprocess.scale == 0.0625 and first.postprocess.scores == "probabilities"
        assert second.preprocess.scale == 1.0 and second.postprocess.scores == "logits"
        assert first.dataset == second.dataset == s.accuracy.dataset


def test_an_ensemble_refuses_a_detection_dataset(nets: dict[str, str], tmp_path: Path) -> None:
    from tests.fixtures.datasets import voc_tree

    root = voc_tree(tmp_path / "voc", {"a": [("cat", (1, 2, 10, 12), False)]})
    exp = load_text(_models(nets) + ORT + f"ensemble: {{members: [alpha, beta]}}\n"
                    f"dataset: {{format: voc, path: {root}, labels: {tmp_path / 'classes.txt'}}}\n"
                    "accuracy: {with_speed: true}\n")
    (tmp_path / "classes.txt").write_text("cat\n")
    with pytest.raises(ConfigError, match=r"^ensemble\.combine: an ensemble combines class scores, but a 'voc' "
                                          r"dataset is for detection"):
        plan(exp)


# the ensemble in a trial's spec and key ---------------------------------------------------------------------

def _spec(nets: dict[str, str], body: str = "ensemble: {members: [alpha, beta]}\n") -> TrialSpec:
    (s,) = [s for s in plan(load_text(_models(nets) + ORT + body)).specs if s.ensemble is not None]
    return s


def test_the_trial_key_tells_ensembles_apart(nets: dict[str, str]) -> None:
    mean = _spec(nets)
    vote = _spec(nets, "ensemble: {members: [alpha, beta], combine: vote}\n")
    swapped = _spec(nets, "ensemble: {members: [beta, alpha], name: alpha+beta}\n")
    assert mean.ensemble is not None and vote.ensemble is not None
    assert replace(mean, ensemble=replace(mean.ensemble, combine="vote")) == vote
    assert len({mean.key(), vote.key(), swapped.key()}) == 3
    assert mean.key() == _spec(nets).key()  # and the same ensemble keeps its key
    # the members' hashes, in order, are the trial model's
    assert mean.model.hash != swapped.model.hash


def test_a_spec_with_an_ensemble_round_trips_through_json(nets: dict[str, str]) -> None:
    import json

    d = nets["digit"]
    exp = load_text(f"""
models:
  - {{name: plain, path: {d}}}
  - {{name: scaled, path: {d}, preprocess: {{scale: 0.0625}}, postprocess: {{scores: probabilities}}}}
backends: [{{name: onnxruntime}}]
ensemble: {{members: [plain, scaled], name: two, combine: vote}}
dataset: {{format: digits, split: test, subset: 20}}
accuracy: {{with_speed: true}}
mode: latency
""")
    (spec,) = plan(exp).specs
    assert spec.ensemble is not None
    back = TrialSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert back == spec and back.key() == spec.key()
    assert back.ensemble is not None and back.ensemble.readings == spec.ensemble.readings
    assert EnsembleSpec.from_json(spec.ensemble.to_json()) == spec.ensemble

    # and a result with its members and the ensemble's own figures
    members = (MemberResult("cpu", 0, 10, 1.0, 100.0, 1.5, 2.0, "plain", 150.0, 1.0, 1.5, 0.9),
               MemberResult("cpu", 1, 10, 1.0, 100.0, 1.2, 1.9, "scaled", 160.0, 1.1, 1.09, 0.8))
    r = TrialResult(spec=spec, status="ok", throughput_sps=100.0, members=members,
                    ensemble=EnsembleFigures(80.0, 2.5, 1.25, "vote"))
    again = TrialResult.from_json(json.loads(json.dumps(r.to_json())))
    assert again.members == members and again.ensemble == r.ensemble and again.spec == spec


def test_a_config_error_through_the_cli_is_one_line_and_writes_nothing(
        nets: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "e.yaml"
    cfg.write_text(_models(nets) + ORT + "ensemble: {members: [alpha, betta]}\n")
    db = tmp_path / "x.db"
    code = main(["run", str(cfg), "--db", f"sqlite:///{db}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "ensemble.members[1]: 'betta' is not a model" in err
    assert "did you mean 'beta'?" in err and "Traceback" not in err
    assert not db.exists()
