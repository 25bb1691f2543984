"""Config validation: one-line errors naming the field, and a fuzzed loader that never raises anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferlab.config import load, load_text
from inferlab.config.loader import from_data
from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError, InferlabError

MINIMAL = "models: [{path: m.onnx}]\nbackends: [{name: onnxruntime}]\n"


def test_minimal_config_defaults() -> None:
    exp = load_text(MINIMAL)
    assert exp.devices == ["cpu"]
    assert exp.batch == 1 and exp.mode is None and exp.modes() == ["latency"]
    assert exp.measure.min_iterations == 50


def test_unknown_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError) as e:
        load_text(MINIMAL + "measure: {min_duraton_s: 2}\n", "exp.yaml")
    msg = str(e.value)
    assert msg.startswith("exp.yaml: measure.min_duraton_s: unknown key 'min_duraton_s'")
    assert "did you mean 'min_duration_s'" in msg
    assert "\n" not in msg


def test_unknown_key_in_list_item() -> None:
    with pytest.raises(ConfigError, match=r"backends\[0\]\.parms: unknown key 'parms'; did you mean 'params'"):
        load_text("models: [{path: m.onnx}]\nbackends: [{name: onnxruntime, parms: {}}]\n", "c.yaml")


def test_missing_required_field() -> None:
    with pytest.raises(ConfigError, match=r"c.yaml: backends is required"):
        load_text("models: [{path: m.onnx}]\n", "c.yaml")


def test_bad_values_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"batch"):
        load_text(MINIMAL + "batch: [1, 0]\n")
    with pytest.raises(ConfigError, match=r"mode"):
        load_text(MINIMAL + "mode: fast\n")
    with pytest.raises(ConfigError, match=r"measure.max_duration_s"):
        load_text(MINIMAL + "measure: {max_duration_s: -1}\n")


def test_invalid_yaml_names_line() -> None:
    with pytest.raises(ConfigError, match=r"not valid YAML at line 2"):
        load_text("models: [\n  - : :\n", "bad.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.yaml")


def test_load_sets_source(tmp_path: Path) -> None:
    p = tmp_path / "e.yaml"
    p.write_text(MINIMAL)
    exp = load(p)
    assert exp.base_dir() == tmp_path


def test_json_schema_describes_fields() -> None:
    schema = Experiment.model_json_schema()
    assert {"models", "backends", "measure", "exclude"} <= set(schema["properties"])


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10_000), st.floats(allow_nan=True),
                         st.text(max_size=12))
keys = st.sampled_from(["models", "backends", "devices", "batch", "mode", "measure", "path", "name", "params",
                        "inputs", "exclude", "include", "repeats", "min_iterations", "shape", "dtype", "range",
                        "alternates", "timeout_s", "zzz"])
values = st.recursive(yaml_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.one_of(keys, st.integers(0, 3)), children, max_size=5)),
    max_leaves=25)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_fuzz_from_data_validates_or_raises_inferlab_error(data: object) -> None:
    try:
        exp = from_data(data)
    except InferlabError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(exp, Experiment)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_text_validates_or_raises_inferlab_error(text: str) -> None:
    try:
        load_text(text)
    except InferlabError:
        return


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["batch", "mode", "devices", "repeats", "measure"]), values, max_size=3))
def test_fuzz_mutations_of_a_valid_config(extra: dict[str, object]) -> None:
    data = yaml.safe_load(MINIMAL)
    data.update(extra)
    try:
        from_data(data)
    except InferlabError:
        return


def test_unknown_key_inside_a_dict_of_models() -> None:
    text = "models: [{path: m.onnx, inputs: {x: {shap: [1, 3]}}}]\nbackends: [{name: onnxruntime}]\n"
    with pytest.raises(ConfigError, match=r"models\[0\]\.inputs\.x\.shap: unknown key 'shap'; did you mean 'shape'"):
        load_text(text, "c.yaml")
