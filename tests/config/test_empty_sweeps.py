"""An empty list where a config sweeps or matches values would plan no trial of that kind, silently (the
tester's `inference_precision: []` planned 24 of 36 trials without a word): each is refused as one line naming
the key, as empty `mode`/`scenario` lists are."""

from __future__ import annotations

import pytest

from inferlab.config import load_text
from inferlab.config.loader import from_data
from inferlab.errors import ConfigError

MODEL = "models: [{path: m.onnx}]\n"
BACKENDS = "backends: [{name: onnxruntime}, {name: torch}, {name: openvino}]\n"


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load_text(text, "x.yaml")
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_the_testers_config_is_refused_naming_the_knob() -> None:
    text = MODEL + ("backends: [{name: onnxruntime}, {name: torch}, "
                    "{name: openvino, params: {inference_precision: []}}]\nbatch: [1, 2, 4]\nmode: [latency, "
                    "throughput]\n")
    assert _error(text) == ("x.yaml: backends[2].params.inference_precision: an empty list sweeps nothing; give at "
                            "least one value, or remove the key for the knob's default")


@pytest.mark.parametrize(("body", "message"), [
    ("scenario: Offline\nmode: latency\nloadgen: {test_mode: []}\n",
     "x.yaml: loadgen.test_mode: an empty list sweeps nothing; give one or more of PerformanceOnly, AccuracyOnly, "
     "FindPeakPerformance, or remove the key (PerformanceOnly)"),
    ("scenario: [Server, Offline]\nmode: latency\nloadgen: {target_qps: []}\n",
     "x.yaml: loadgen.target_qps: an empty list sweeps nothing; give at least one rate, or remove the key (half "
     "the measured capacity)"),
    ("batch: [1, 2]\ninclude: [{batch: 1}, {batch: []}]\n",
     "x.yaml: include[1].batch: an empty list matches nothing; give at least one value, or remove the key"),
    ("exclude: [{model: []}]\n",
     "x.yaml: exclude[0].model: an empty list matches nothing; give at least one value, or remove the key"),
    ("include: [{mode: []}]\n",
     "x.yaml: include[0].mode: an empty list matches nothing; give at least one value, or remove the key"),
    ("include: [{backend: onnxruntime, params: {intra_op_threads: []}}]\n",
     "x.yaml: include[0].params.intra_op_threads: an empty list matches nothing; give at least one value, or "
     "remove the key"),
])
def test_an_empty_sweep_or_match_is_refused_naming_the_key(body: str, message: str) -> None:
    assert _error(MODEL + BACKENDS + body) == message


def test_an_empty_device_list_of_a_backend_is_refused() -> None:
    """Left as it was, [] fell back to the top-level devices without a word."""
    assert _error(MODEL + "backends: [{name: onnxruntime, devices: []}]\n") == (
        "x.yaml: backends[0].devices: an empty list; give at least one value")


def test_from_bench_flags_the_flag_is_named() -> None:
    data = {"models": [{"path": "m.onnx"}], "backends": [{"name": "openvino", "params": {"inference_precision": []}}]}
    with pytest.raises(ConfigError) as exc:
        from_data(data, "bench", command="inferlab bench m.onnx -p inference_precision=[]")
    assert str(exc.value) == ("--param inference_precision: an empty list sweeps nothing; give at least one value, "
                              "or remove the key for the knob's default")


def test_lists_with_values_still_sweep() -> None:
    exp = load_text(MODEL + BACKENDS + "scenario: Server\nloadgen: {test_mode: [PerformanceOnly], target_qps: [10, "
                    "20]}\ninclude: [{batch: [1], params: {intra_op_threads: [1, 2]}}]\n")
    assert exp.loadgen.target_qps == [10, 20] and exp.include[0].batch == [1]
