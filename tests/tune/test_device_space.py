"""The shape of a search space per device: which knobs a backend searches on a GPU and on a CPU, and the
constraints between knobs, which no proposal breaks and which a config that names them is refused for (one
line) or, in a sweep, skipped for. The knob declarations need no GPU: these tests run everywhere."""

from __future__ import annotations

import itertools
from typing import Any

import optuna
import pytest

from inferlab import backends
from inferlab.config import loader, plan
from inferlab.errors import BackendError, ConfigError
from inferlab.tune.space import build


def _exp(params: dict[str, Any] | None = None, mode: str = "throughput", **extra: Any) -> Any:
    data = {"models": [{"path": "m.pt2"}], "mode": mode, "devices": ["cuda:0"], "batch": [8],
            "backends": [{"name": "torch", "params": params or {}}], "tune": {}, **extra}
    return loader.from_data(data, "t.yaml")


def _proposals(space: Any, n: int, seed: int = 0) -> list[Any]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, 1.0)
    return out


def test_torch_on_cuda_searches_precision_and_compiler_and_fixes_cpu_placement() -> None:
    space = build(_exp(), {"torch": ("fp32",)}, "throughput")
    (arm,) = space.arms
    dims = {d.name.split(".", 1)[1]: d.values for d in arm.dims}
    assert dims["dtype"] == ("float32", "float16", "bfloat16")
    assert dims["compile"] == ("off", "default", "reduce-overhead")  # max-autotune only when named
    assert dims["in_flight"] == (1, 2, 4)
    assert {"threads", "interop_threads", "cpus", "inference_mode"}.isdisjoint(dims)
    cpu = build(_exp(devices=["cpu"]), {"torch": ("fp32",)}, "throughput")
    cpu_dims = {d.name.split(".", 1)[1] for d in cpu.arms[0].dims}
    assert {"threads", "interop_threads", "cpus"} <= cpu_dims and not {"dtype", "compile"} & cpu_dims


def test_no_proposal_breaks_a_constraint_and_the_size_counts_only_possible_points() -> None:
    space = build(_exp(), {"torch": ("fp32",)}, "throughput")
    backend = backends.get("torch")
    points = _proposals(space, 400)
    assert all(backend.broken("cuda:0", dict(p.params)) is None for p in points)
    params = [dict(p.params) for p in points]
    assert all(p["in_flight"] in (0, 1) for p in params if p["cuda_graphs"])
    assert all(not p["cuda_graphs"] and p["in_flight"] in (0, 1) for p in params
               if p["compile"] == "reduce-overhead")
    assert {p["dtype"] for p in params} == {"float32", "float16", "bfloat16"}
    assert any(p["cuda_graphs"] for p in params) and any(p["in_flight"] == 4 for p in params)
    # the size: every combination of the searched values, less those a constraint forbids
    (arm,) = space.arms
    names = [d.name.split(".", 1)[1] for d in arm.dims]
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(d.values for d in arm.dims))]
    possible = [c for c in combos if backend.broken("cuda:0", c) is None]
    assert space.size() == len(possible) < len(combos)
    assert len({p.key() for p in points}) <= space.size()


def test_a_fixed_value_narrows_the_other_knob_instead_of_failing() -> None:
    space = build(_exp({"in_flight": 4}), {"torch": ("fp32",)}, "throughput")
    params = [dict(p.params) for p in _proposals(space, 100)]
    assert all(p["in_flight"] == 4 and not p["cuda_graphs"] for p in params)
    assert all(p["compile"] in ("off", "default") for p in params)


def test_fixed_values_that_cannot_go_together_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"backends\[0\]\.params\.in_flight: in_flight 4 cannot go with "
                                          r"cuda_graphs true on cuda:0 \(one captured graph"):
        build(_exp({"cuda_graphs": True, "in_flight": 4}), {"torch": ("fp32",)}, "throughput")
    with pytest.raises(BackendError, match=r"params\.cuda_graphs: cuda_graphs true cannot go with compile "
                                           r"reduce-overhead"):
        backends.get("torch").check_params("cuda:0", {"compile": "reduce-overhead", "cuda_graphs": True},
                                           "params")


def test_a_sweep_skips_the_combinations_a_constraint_forbids_and_says_so(tmp_path: Any) -> None:
    model = {"path": "tests.fixtures.tiny_models:tiny_convnet", "inputs": {"x": {"shape": [-1, 3, 8, 8]}}}
    exp = loader.from_data({"models": [model], "mode": "throughput", "devices": ["cuda:0"],
                            "batch": [1], "backends": [{"name": "torch", "params": {
                                "cuda_graphs": [False, True], "in_flight": [1, 4]}}]}, str(tmp_path / "t.yaml"))
    p = plan(exp, devices_here=False)
    combos = sorted((s.param_dict["cuda_graphs"], s.param_dict["in_flight"]) for s in p.specs)
    assert combos == [(False, 1), (False, 4), (True, 1)]
    assert any("in_flight 4 with cuda_graphs true skipped (one captured graph" in s for s in p.skipped)
    fixed = loader.from_data({**exp.model_dump(mode="json", exclude_unset=True), "backends": [
        {"name": "torch", "params": {"cuda_graphs": True, "in_flight": 4}}]}, str(tmp_path / "t.yaml"))
    with pytest.raises(BackendError, match=r"backends\[0\]\.params\.in_flight: in_flight 4 cannot go with"):
        plan(fixed, devices_here=False)


def test_backends_declare_a_space_for_each_kind_of_device() -> None:
    torch = backends.get("torch")
    assert torch.device_kinds() == ["cpu", "cuda:0"]
    assert torch.constraints("cpu") == () and len(torch.constraints("cuda:0")) == 3
    assert torch.precision_of({"dtype": "bfloat16"}) == "bf16"
    assert backends.get("onnxruntime").precision_of({}) is None


def test_a_gpu_search_starts_from_the_backends_seed_at_the_largest_batch_and_breaks_no_constraint() -> None:
    from inferlab.records.trial import TrialResult, TrialSpec
    from inferlab.tune.search import Tuner
    from tests.tune.test_search import ARTIFACT, _lat

    exp = loader.from_data({"models": [{"path": "m.pt2"}], "mode": "throughput", "devices": ["cuda:0"],
                            "backends": [{"name": "torch"}], "tune": {"max_trials": 24, "baseline": False}}, "t.yaml")
    space = build(exp, {"torch": ("fp32",)}, "throughput")
    calls: list[TrialSpec] = []

    def spec(point: Any, repeat: int, full: bool) -> TrialSpec:
        return TrialSpec(ARTIFACT, point.backend, point.device, point.params, point.batch, "throughput", repeat=repeat)

    def measure(specs: Any) -> Any:
        for s in specs:  # a GPU-like landscape: half precision and the compiler pay, the defaults saturate early
            calls.append(s)
            p = s.param_dict
            fps = 3000.0 * s.batch / (s.batch + 16) * (4 if p["dtype"] != "float32" else 1) * \
                (1.6 if p["compile"] != "off" else 1)
            yield TrialResult(s, "ok", throughput_sps=fps, throughput_ci_low_sps=fps * 0.99,
                              throughput_ci_high_sps=fps * 1.01, latency=_lat(1000 * s.batch / fps))

    tuner = Tuner(exp.tune, space, spec, measure, lambda r: None)
    out = tuner.run()
    ladder = [s for s in calls if s.param_dict["dtype"] == "float32" and s.param_dict["compile"] == "off"
              and not s.param_dict["cuda_graphs"]][:5]
    assert [s.batch for s in ladder] == [1, 2, 4, 8, 16]
    first = calls[len([r for r in out.records if r.role == "ladder"])]
    assert first.param_dict["dtype"] == "float16" and first.param_dict["compile"] == "default"
    assert first.param_dict["cuda_graphs"] and first.param_dict["in_flight"] == 1
    assert first.batch == max(tuner.space.batch.values)  # the largest the ladder allows, 2 doublings past it
    assert all(backends.get("torch").broken("cuda:0", s.param_dict) is None for s in calls)
    assert out.winner is not None and out.winner.point.compute_precision() in ("fp16", "bf16")
