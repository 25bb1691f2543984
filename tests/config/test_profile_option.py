"""`profile:` in a config and `--profile` on the command line: which trials it reaches, and the one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.cli.main import main
from inferlab.config import load_text, plan
from inferlab.config.loader import with_profiles
from inferlab.errors import BackendError, ConfigError


def _exp(tiny: dict[str, str], body: str) -> str:
    return f"models: [{{name: tiny, path: {tiny['tiny.onnx']}}}]\n" + body


def test_profile_reaches_the_speed_trials_only(tiny_models: dict[str, str]) -> None:
    exp = load_text(_exp(tiny_models, "backends: [{name: onnxruntime}]\nmode: [latency, throughput]\n"
                                      "profile: [roofline, layers]\n"))
    assert exp.profiles() == ("layers", "roofline")  # one fixed order: part of the trial's key
    specs = plan(exp).specs
    assert [s.profile for s in specs] == [("layers", "roofline")] * 2


def test_an_unknown_analysis_is_named(tiny_models: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"profile: 'layer' is not an analysis; choose layers or roofline"):
        load_text(_exp(tiny_models, "backends: [{name: onnxruntime}]\nprofile: layer\n"))
    exp = load_text(_exp(tiny_models, "backends: [{name: onnxruntime}]\n"))
    with pytest.raises(ConfigError, match=r"^--profile layrs: not an analysis; did you mean 'layers'\?"):
        with_profiles(exp, ["layrs"])
    assert with_profiles(exp, ["roofline"]).profiles() == ("roofline",)


def test_a_backend_that_cannot_profile_is_refused(tiny_models: dict[str, str]) -> None:
    exp = load_text(_exp(tiny_models, "backends: [{name: 'null'}]\nprofile: layers\n"), "x.yaml")
    with pytest.raises(BackendError, match=r"^profile: backend 'null' cannot profile layers; leave layers out for "
                                           r"it, or use a backend that can \(onnxruntime"):
        plan(exp)


def test_a_multi_device_is_refused_a_profile(tiny_models: dict[str, str]) -> None:
    exp = load_text(_exp(tiny_models, "backends: [{name: onnxruntime}]\ndevices: ['multi:cpu,cpu']\n"
                                      "profile: layers\n"))
    with pytest.raises(BackendError, match=r"^profile: a multi-device \(multi:cpu,cpu\) has no profile of its own"):
        plan(exp)


def test_bench_profile_on_a_backend_that_cannot_profile_is_one_line(
        tiny_models: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", tiny_models["tiny.onnx"], "--backend", "null", "--profile", "layers",
                 "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("error: --profile: backend 'null' cannot profile layers")
    assert not (tmp_path / "x.db").exists() or "trials" not in err  # nothing half-written: refused at planning


def test_the_example_config_asks_for_both_analyses() -> None:
    from inferlab.config import load

    root = Path(__file__).resolve().parents[2]
    assert load(root / "examples" / "analysis.yaml").profiles() == ("layers", "roofline")
