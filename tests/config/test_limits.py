"""Size limits: a config file, its lists, mappings, strings, names, nesting and the grid it plans are bounded,
and a config past a limit is one ConfigError line naming the file and field (or, from `bench`, the flag) and
the limit, raised at once, before anything is resolved or written."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml

from inferlab.cli.main import main
from inferlab.config import load, load_text, plan
from inferlab.config.loader import MAX_CONFIG_BYTES, from_data
from inferlab.config.plan import MAX_TRIALS, check_grid, grid_size
from inferlab.config.words import Where
from inferlab.errors import ConfigError

MINIMAL = "models: [{path: m.onnx}]\nbackends: [{name: onnxruntime}]\n"
BENCH = "inferlab bench m.onnx"  # an experiment built from flags: errors name the flags


def _error(text: str, source: str = "x.yaml") -> str:
    with pytest.raises(ConfigError) as exc:
        load_text(text, source)
    message = str(exc.value)
    assert "\n" not in message
    return message


def _bench_error(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as exc:
        from_data(data, "bench", command=BENCH)
    return str(exc.value)


# the config file ---------------------------------------------------------------------------------------------


def test_a_config_file_over_1_mib_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """The tester's 50 MB `batch:` list ran 300 s to 3 GB; now it is a line at once."""
    big = tmp_path / "big.yaml"
    body = MINIMAL + "batch: [" + ", ".join(["1"] * 400_000) + "]\n"
    big.write_text(body)
    size = big.stat().st_size
    assert size > MAX_CONFIG_BYTES
    with pytest.raises(ConfigError) as exc:
        load(big)
    assert str(exc.value) == (f"{big}: the config file is {size:,} bytes; at most 1,048,576 (1 MiB) are allowed: "
                              "list fewer values, or split it into several experiments")
    with pytest.raises(ConfigError, match=r"^<config>: the config text is [\d,]+ bytes; at most 1,048,576"):
        load_text(body)


def test_a_config_file_of_exactly_1_mib_loads(tmp_path: Path) -> None:
    path = tmp_path / "padded.yaml"
    text = MINIMAL + "# padding\n"
    path.write_text(text + "#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n")
    assert path.stat().st_size == MAX_CONFIG_BYTES
    assert load(path).models[0].path == "m.onnx"


def test_a_config_read_from_a_pipe_is_bounded_too(tmp_path: Path) -> None:
    """A FIFO has no size to look at first: at most one character past the limit is read."""
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        try:
            with fifo.open("w") as f:
                f.write(MINIMAL + "#" * (2 * MAX_CONFIG_BYTES))
        except BrokenPipeError:  # the reader stopped at the limit and closed its end: as it should
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    with pytest.raises(ConfigError, match=f"^{fifo}: the config file is more than 1,048,576 bytes; at most"):
        load(fifo)
    writer.join(timeout=10)


# names, strings, lists, mappings -----------------------------------------------------------------------------


def test_a_name_is_at_most_200_characters() -> None:
    """The tester's 50 MB `name` grew the database to 200 MB."""
    assert load_text(MINIMAL + f"name: {'n' * 200}\n").name == "n" * 200
    assert _error(MINIMAL + f"name: {'n' * 201}\n") == ("x.yaml: name: 201 characters; at most 200 are allowed, "
                                                        "give a shorter one")
    assert _error(f"models: [{{path: m.onnx, name: {'m' * 300}}}]\nbackends: [{{name: onnxruntime}}]\n") == (
        "x.yaml: models[0].name: 300 characters; at most 200 are allowed, give a shorter one")


def test_a_string_is_at_most_4096_characters() -> None:
    assert _error(f"models: [{{path: {'p' * 4097}}}]\nbackends: [{{name: onnxruntime}}]\n") == (
        "x.yaml: models[0].path: a string of 4,097 characters; at most 4,096 are allowed")
    assert _error(MINIMAL + f"name: {'n' * 1_000_000}\n").startswith("x.yaml: name: a string of 1,000,000 characters")
    # a key too: named by where it is, not by its 5,000 characters (YAML's explicit '?' key: no 1024 limit)
    assert _error(MINIMAL + f"measure:\n  ? {'k' * 5000}\n  : 1\n") == (
        "x.yaml: measure: a key of 5,000 characters; at most 4,096 are allowed")
    assert _bench_error({"models": [{"path": "m" * 5000}], "backends": [{"name": "onnxruntime"}]}) == (
        "MODEL: a string of 5,000 characters; at most 4,096 are allowed")


def test_a_list_is_at_most_1000_items() -> None:
    thousand = list(range(1, 1001))
    assert load_text(MINIMAL + f"batch: {thousand}\n").batch == thousand
    assert _error(MINIMAL + f"batch: {[*thousand, 1001]}\n") == (
        "x.yaml: batch: a list of 1,001 items; at most 1,000 are allowed: sweep fewer values, or split the "
        "experiment")
    assert _error(f"models: [{{path: m.onnx}}]\nbackends: [{{name: openvino, params: {{num_streams: "
                  f"{list(range(5000))}}}}}]\n") == (
        "x.yaml: backends[0].params.num_streams: a list of 5,000 items; at most 1,000 are allowed: sweep fewer "
        "values, or split the experiment")
    # from bench flags: the flag is named
    base = {"models": [{"path": "m.onnx"}], "backends": [{"name": "onnxruntime"}]}
    assert _bench_error({**base, "batch": list(range(1, 2001))}).startswith(
        "--batch: a list of 2,000 items; at most 1,000 are allowed")
    assert _bench_error({**base, "backends": [{"name": "onnxruntime", "params": {"intra_op_threads": [1] * 1001}}]}
                        ).startswith("--param intra_op_threads: a list of 1,001 items; at most 1,000")


def test_a_mapping_is_at_most_1000_keys() -> None:
    inputs = ", ".join(f"in{i}: {{value: 1}}" for i in range(1001))
    assert _error(f"models: [{{path: m.onnx, inputs: {{{inputs}}}}}]\nbackends: [{{name: onnxruntime}}]\n") == (
        "x.yaml: models[0].inputs: 1,001 keys; at most 1,000 are allowed")


def test_yaml_aliases_cannot_expand_past_100000_values() -> None:
    """A 'billion laughs' config is a few hundred bytes; expanded it would never finish validating."""
    lines = ["l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "\n".join(lines) + "\nmodels: [{path: m.onnx}]\nbackends: [{name: openvino, params: {x: *l8}}]\n"
    assert len(text) < 1000
    assert _error(text) == ("x.yaml: more than 100,000 values (with YAML aliases expanded); at most that many are "
                            "allowed in one config")


def test_nesting_is_bounded() -> None:
    assert _error(MINIMAL + "measure: " + "[" * 50_000 + "]" * 50_000 + "\n") == (
        "x.yaml: nested too deeply to read; a config is a few levels of mappings and lists")
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ConfigError, match=r"^x\.yaml: measure(\[0\]){31}: nested more than 32 levels deep"):
        from_data({"models": [{"path": "m.onnx"}], "backends": [{"name": "onnxruntime"}], "measure": deep}, "x.yaml")


def test_a_number_python_cannot_read_is_a_config_error() -> None:
    assert _error(MINIMAL + "repeats: " + "1" * 5000 + "\n").startswith(
        "x.yaml: a value cannot be read (Exceeds the limit (4300 digits) for integer string conversion")


# the grid -----------------------------------------------------------------------------------------------------


def _grid(tiny: dict[str, str], body: str) -> str:
    return f"models: [{{path: {tiny['tiny.onnx']}}}]\n" + body


def test_grid_size_counts_what_plan_builds(tiny_models: dict[str, str]) -> None:
    exp = load_text(_grid(tiny_models, "backends: [{name: onnxruntime, params: {intra_op_threads: [1, 2]}}, "
                                       "{name: 'null'}]\nbatch: [1, 2, 4]\nmode: [latency, throughput]\nrepeats: 2\n"))
    assert grid_size(exp) == (2 + 1) * 3 * 2 * 2 == len(plan(exp).specs)


def test_a_grid_over_100000_trials_is_refused_before_it_is_built(tiny_models: dict[str, str],
                                                                 tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    batches = list(range(1, 1001))
    config.write_text(_grid(tiny_models, f"backends: [{{name: 'null'}}]\nbatch: {batches}\nrepeats: 101\n"))
    with pytest.raises(ConfigError) as exc:
        plan(load(config))
    assert str(exc.value) == (
        f"{config}: the grid plans 101,000 trials (models × backends × devices × params × batch × mode/scenario × "
        "repeats); at most 100,000 run in one experiment: sweep fewer values, or split it into several experiments")
    # three sweeps of a thousand knob values: 10^9 combinations, refused without making any of them
    knobs = ", ".join(f"k{i}: {list(range(1000))}" for i in range(3))
    huge = load_text(_grid(tiny_models, f"backends: [{{name: 'null', params: {{{knobs}}}}}]\n"
                                        "exclude: [{batch: 2}]\n"))
    with pytest.raises(ConfigError, match=r"^the grid plans 1,000,000,000 trials before include/exclude"):
        plan(huge)


def test_the_grid_limit_is_inclusive_and_names_flags_for_bench() -> None:
    exp = from_data({"models": [{"path": "m.onnx"}], "backends": [{"name": "null"}], "batch": list(range(1, 1001)),
                     "repeats": 100}, "x.yaml")
    assert grid_size(exp) == MAX_TRIALS
    check_grid(exp, Where("x.yaml", cli=False))  # exactly the limit: allowed
    bench = from_data({"models": [{"path": "m.onnx"}], "backends": [{"name": "null"}], "devices": ["cpu", "cpu:0"],
                       "batch": list(range(1, 1001)), "mode": ["latency", "throughput"],
                       "scenario": ["Offline", "Server"], "loadgen": {"target_qps": list(range(1, 100))}},
                      "bench", command=BENCH)
    with pytest.raises(ConfigError) as exc:
        check_grid(bench, Where(None, cli=True))
    assert str(exc.value) == ("the flags plan 400,000 trials (--backend × --device × --param values × --batch × "
                              "--mode/--scenario); at most 100,000 run at once: give fewer values")


def test_run_refuses_a_huge_grid_without_writing_the_database(tiny_models: dict[str, str], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "huge.yaml"
    config.write_text(yaml.safe_dump({"models": [{"path": tiny_models["tiny.onnx"]}], "backends": [{"name": "null"}],
                                      "batch": list(range(1, 1001)), "mode": ["latency", "throughput"],
                                      "repeats": 60}))
    db = tmp_path / "r.db"
    assert main(["run", str(config), "--db", str(db)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"error: {config}: the grid plans 120,000 trials (models × backends × devices × params × batch × "
                   "mode/scenario × repeats); at most 100,000 run in one experiment: sweep fewer values, or split "
                   "it into several experiments"]
    assert not db.exists()
