"""The resolve step: product of settings, include/exclude rules, and the bad inputs it must name."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.config import load_text, plan
from inferlab.errors import BackendError, ConfigError, InputSpecError, ModelError


def _exp(tiny: dict[str, str], body: str) -> str:
    return f"models: [{{name: tiny, path: {tiny['tiny.onnx']}, alternates: [{tiny['tiny.pt2']}]}}]\n" + body


@pytest.mark.slow
def test_cartesian_product_with_swept_params(tiny_models: dict[str, str]) -> None:
    exp = load_text(_exp(tiny_models, """
backends:
  - {name: onnxruntime, params: {intra_op_threads: [1, 2]}}
  - {name: openvino}
batch: [1, 4]
mode: [latency, throughput]
"""))
    p = plan(exp)
    # onnxruntime: 2 threads x 2 batches x 2 modes; openvino: 2 x 2
    assert len(p.specs) == 12
    ort = [s for s in p.specs if s.backend == "onnxruntime"]
    assert {s.param_dict["intra_op_threads"] for s in ort} == {1, 2}
    # defaults are filled in, so the spec records the effective request
    assert all(s.param_dict["graph_optimization_level"] == "all" for s in ort)
    ov = [s for s in p.specs if s.backend == "openvino"]
    assert all(s.param_dict["inference_precision"] == "f32" for s in ov)
    assert len({s.key() for s in p.specs}) == 12


@pytest.mark.slow
def test_each_backend_gets_a_format_it_loads(tiny_models: dict[str, str]) -> None:
    exp = load_text(_exp(tiny_models, "backends: [{name: onnxruntime}, {name: torch}]\n"))
    formats = {s.backend: s.model.format.value for s in plan(exp).specs}
    assert formats == {"onnxruntime": "onnx", "torch": "torch-export"}


@pytest.mark.slow
def test_model_without_a_loadable_format_is_skipped_with_reason(tiny_models: dict[str, str]) -> None:
    text = f"models: [{{path: {tiny_models['tiny.onnx']}}}]\nbackends: [{{name: onnxruntime}}, {{name: torch}}]\n"
    p = plan(load_text(text))
    assert {s.backend for s in p.specs} == {"onnxruntime"}
    assert any("torch skips model 'tiny': 'tiny.onnx' is an .onnx file, and torch loads a torch.export .pt2" in note
               for note in p.skipped)


@pytest.mark.slow
def test_exclude_and_include_rules(tiny_models: dict[str, str]) -> None:
    body = """
backends: [{name: onnxruntime, params: {intra_op_threads: [1, 2]}}, {name: openvino}]
batch: [1, 4]
mode: [latency, throughput]
exclude:
  - {backend: openvino, mode: throughput}
  - {params: {intra_op_threads: 2}, batch: 1}
"""
    specs = plan(load_text(_exp(tiny_models, body))).specs
    assert not any(s.backend == "openvino" and s.mode == "throughput" for s in specs)
    assert not any(s.param_dict.get("intra_op_threads") == 2 and s.batch == 1 for s in specs)
    assert len(specs) == 12 - 2 - 2
    specs = plan(load_text(_exp(tiny_models, body + "include: [{batch: 4}]\n"))).specs
    assert specs and all(s.batch == 4 for s in specs)


@pytest.mark.slow
def test_repeats_are_distinct_trials(tiny_models: dict[str, str]) -> None:
    specs = plan(load_text(_exp(tiny_models, "backends: [{name: onnxruntime}]\nrepeats: 3\n"))).specs
    assert [s.repeat for s in specs] == [0, 1, 2]


def test_unknown_backend_suggests_name(tiny_models: dict[str, str]) -> None:
    with pytest.raises(BackendError, match=r"backends\[0\]\.name: 'onxruntime' is not a backend; "
                                           r"did you mean 'onnxruntime'\?"):
        plan(load_text(_exp(tiny_models, "backends: [{name: onxruntime}]\n")))


def test_unknown_knob_names_field(tiny_models: dict[str, str]) -> None:
    with pytest.raises(BackendError, match=r"backends\[0\]\.params\.intra_threads: 'intra_threads' is not a knob "
                                           r"of backend 'onnxruntime'; did you mean 'intra_op_threads'\?"):
        plan(load_text(_exp(tiny_models, "backends: [{name: onnxruntime, params: {intra_threads: 2}}]\n")))


def test_bad_knob_value(tiny_models: dict[str, str]) -> None:
    with pytest.raises(BackendError, match=r"params\.performance_hint: 'FAST' is not one of LATENCY"):
        plan(load_text(_exp(tiny_models, "backends: [{name: openvino, params: {performance_hint: FAST}}]\n")))
    with pytest.raises(BackendError, match=r"params\.intra_op_threads: -1 is outside"):
        plan(load_text(_exp(tiny_models, "backends: [{name: onnxruntime, params: {intra_op_threads: -1}}]\n")))


def test_missing_model_file(tmp_path: Path) -> None:
    exp = load_text(f"models: [{{path: {tmp_path}/absent.onnx}}]\nbackends: [{{name: onnxruntime}}]\n")
    with pytest.raises(ModelError, match=r"models\[0\]\.path: .*absent.onnx: model file not found"):
        plan(exp)


def test_corrupt_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf\xff\xff\xff")
    exp = load_text(f"models: [{{path: {bad}}}]\nbackends: [{{name: onnxruntime}}]\n")
    with pytest.raises(ModelError, match=r"broken.onnx: not a valid ONNX file"):
        plan(exp)


def test_unknown_model_format(tmp_path: Path) -> None:
    f = tmp_path / "weights.h5"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown model format"):
        plan(load_text(f"models: [{{path: {f}}}]\nbackends: [{{name: onnxruntime}}]\n"))


def test_ir_without_weights(tmp_path: Path, tiny_models: dict[str, str]) -> None:
    xml = tmp_path / "m.xml"
    xml.write_text(Path(tiny_models["tiny.xml"]).read_text())
    with pytest.raises(ModelError, match=r"m.xml: OpenVINO IR weights m.bin are missing"):
        plan(load_text(f"models: [{{path: {xml}}}]\nbackends: [{{name: openvino}}]\n"))


def test_wrong_input_shape(tiny_models: dict[str, str]) -> None:
    body = (f"models: [{{name: tiny, path: {tiny_models['tiny.onnx']}, inputs: {{x: {{shape: [-1, 3, 32, 32]}}}}}}]\n"
            "backends: [{name: onnxruntime}]\n")
    with pytest.raises(InputSpecError, match=r"tiny: models\[0\].inputs.x.shape \[-1, 3, 32, 32\]: dimension 2 is 32, "
                                             r"but the model fixes it at 16 \(\[batch, 3, 16, 16\]\)"):
        plan(load_text(body))


def test_unknown_input_name(tiny_models: dict[str, str]) -> None:
    body = (f"models: [{{path: {tiny_models['tiny.onnx']}, inputs: {{image: {{dtype: float32}}}}}}]\n"
            "backends: [{name: onnxruntime}]\n")
    with pytest.raises(InputSpecError, match=r"models\[0\].inputs.image: 'image' is not an input of model 'tiny'; "
                                             r"its inputs are x"):
        plan(load_text(body))


def test_fixed_batch_model_with_larger_batch(tiny_models: dict[str, str]) -> None:
    body = f"models: [{{path: {tiny_models['tiny_b1.onnx']}}}]\nbackends: [{{name: onnxruntime}}]\nbatch: [1, 8]\n"
    with pytest.raises(InputSpecError, match=r"input 'x' \[1, 3, 16, 16\]: its batch axis 0 is fixed at 1, "
                                             r"so batch 8 cannot run; run batch 1, or export the model with a dynamic"):
        plan(load_text(body))


def test_rules_that_remove_everything(tiny_models: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="no trials left to run"):
        plan(load_text(_exp(tiny_models, "backends: [{name: onnxruntime}]\nexclude: [{backend: onnxruntime}]\n")))


def test_device_a_backend_cannot_name(tiny_models: dict[str, str]) -> None:
    with pytest.raises(BackendError, match=r"backends\[0\]\.devices: 'gpu' is not a device backend 'torch' can use"):
        plan(load_text(_exp(tiny_models, "backends: [{name: torch, devices: [gpu]}]\n")))


def test_scenarios_beside_modes(tiny_models: dict[str, str]) -> None:
    exp = load_text(_exp(tiny_models, """
backends: [{name: onnxruntime}]
batch: [1, 4]
mode: latency
scenario: [single_stream, server]
loadgen: {target_qps: [100, 200], latency_bound_ms: 5}
measure: {min_duration_s: 2}
exclude: [{mode: server, batch: 1}]
"""))
    p = plan(exp)
    got = sorted((s.mode, s.batch, s.loadgen.target_qps if s.loadgen else None) for s in p.specs)
    # SingleStream at batch 4 is skipped (one sample per query); Server sweeps its two target rates, which
    # SingleStream does not use (so it runs once)
    assert got == [("Server", 4, 100), ("Server", 4, 200), ("SingleStream", 1, None), ("latency", 1, None),
                   ("latency", 4, None)]
    assert any("SingleStream sends one sample per query" in note for note in p.skipped)
    lg = next(s.loadgen for s in p.specs if s.mode == "Server")
    assert lg is not None and lg.min_duration_s == 2 and lg.latency_bound_ms == 5  # measure's duration by default
    assert all(s.loadgen is None for s in p.specs if s.mode == "latency")


def test_official_runs_get_a_time_out_that_fits(tiny_models: dict[str, str]) -> None:
    body = "backends: [{name: onnxruntime}]\nscenario: Offline\nloadgen: {official: true}\n"
    exp = load_text(_exp(tiny_models, body))
    (spec,) = plan(exp).specs
    assert spec.loadgen is not None and spec.loadgen.official and spec.loadgen.min_duration_s is None
    assert spec.measure.timeout_s >= 600 * 2  # LoadGen's 600 s, with room for loading and calibration


def test_a_backend_not_installed_is_refused_with_its_install_line(tiny_models: dict[str, str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from inferlab import backends
    from inferlab.api import queries

    litert = backends.get("litert")
    monkeypatch.setattr(type(litert), "available", lambda self: False)
    with pytest.raises(BackendError, match=r"backends\[1\]\.name: 'litert' is not installed here; "
                                           r"pip install 'inferlab\[litert\]', or leave it out"):
        plan(load_text(_exp(tiny_models, "backends: [{name: onnxruntime}, {name: litert}]\n")))
    listed = {b.name: b for b in queries.backend_catalogue()}
    assert not listed["litert"].usable and listed["litert"].install == "pip install 'inferlab[litert]'"


def test_tensorflow_formats_are_told_apart_and_checked(tmp_path: Path) -> None:
    keras = tmp_path / "m.keras"
    keras.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"m.keras: not a Keras 3 .keras archive"):
        plan(load_text(f"models: [{{path: {keras}}}]\nbackends: [{{name: tensorflow}}]\n"))
    lite = tmp_path / "m.tflite"
    lite.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match=r"m.tflite: not a LiteRT/TensorFlow Lite flatbuffer"):
        plan(load_text(f"models: [{{path: {lite}}}]\nbackends: [{{name: litert}}]\n"))
    folder = tmp_path / "exported"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"a folder without saved_model.pb, not a TensorFlow SavedModel"):
        plan(load_text(f"models: [{{path: {folder}}}]\nbackends: [{{name: tensorflow}}]\n"))


def test_framework_must_be_a_measured_backend(tiny_models: dict[str, str]) -> None:
    body = ("models: [{name: tiny, path: " + tiny_models["tiny.onnx"] + ", framework: torch}]\n"
            "backends: [{name: onnxruntime}]\n")
    with pytest.raises(ConfigError, match=r"models\[0\]\.framework: 'torch' is not one of the experiment's "
                                          r"backends, so there is nothing to compare with"):
        plan(load_text(body))
    both = body.replace("backends: [{name: onnxruntime}]", "backends: [{name: onnxruntime}, {name: torch}]")
    both = both.replace("framework: torch}", "framework: torch, alternates: [" + tiny_models["tiny.pt2"] + "]}")
    assert {s.framework for s in plan(load_text(both)).specs} == {"torch"}
