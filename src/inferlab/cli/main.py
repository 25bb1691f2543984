"""The `inferlab` command: the entry point and the commands that run, show and export trials. Commands parse,
call inferlab.api and render; user errors print one line and exit 2; --debug shows the traceback; SIGTERM
stops a run as Ctrl-C does."""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from inferlab.cli import cluster as cluster_commands  # noqa: F401  (registers `inferlab cluster`)
from inferlab.cli.app import (
    ClusterOption,
    DbOption,
    app,
    console,
    err,
    remember_args,
    show_plan,
    shown_url,
    typed_command,
)
from inferlab.errors import ConfigError, InferlabError, Interrupted

if TYPE_CHECKING:
    from inferlab import api
    from inferlab.config.schema import Experiment
    from inferlab.records.trial import TrialResult


def _finish(run: api.Run) -> None:
    from inferlab.report.table import results_table

    console.print(results_table(run.results, title=f"run {run.id}"))
    _members(run.results)
    for r in run.results:  # the table cuts reasons short; what to do is often at the end
        if r.status in ("failed", "timeout") and r.reason and len(r.reason) > 70:
            console.print(f"[red]{r.status}:[/] {escape(r.spec.label())}: {escape(r.reason)}", highlight=False)
    console.print(f"results stored in [bold]{shown_url(run.db)}[/] as run [bold]{run.id}[/]; "
                  f"`inferlab export {run.id} --format csv` exports them")
    if not run.ok:
        raise typer.Exit(1)


def _members(results: list[TrialResult]) -> None:
    from inferlab.report.members import members_tables

    for t in members_tables(results):
        console.print(t)


def _execute(exp: Experiment, db: str | None, resume: str | None = None, cluster: str | None = None) -> None:
    from inferlab import api
    from inferlab.cli.progress import RichReporter

    with RichReporter(console) as reporter:
        run = api.execute(exp, db=db, resume=resume, reporter=reporter, on_plan=show_plan,
                          resume_command=typed_command(), cluster=cluster)
    if run.resumed_skipped:
        console.print(f"resumed run {run.id}: {run.resumed_skipped} finished trials kept, not run again")
    _finish(run)


ProfileOption = Annotated[str | None, typer.Option(
    "--profile", help="analyses after each speed trial's measured window, comma-separated: layers (per-layer "
    "profile and the runtime's optimised graph), roofline (device peaks, compute- or memory-bound)")]


@app.command()
def run(config: Annotated[Path, typer.Argument(help="experiment YAML")], db: DbOption = None,
        resume: Annotated[str | None, typer.Option(help="continue run RUN_ID: skip trials already stored")] = None,
        cluster: ClusterOption = None, profile: ProfileOption = None) -> None:
    """Run every trial of an experiment config, each in its own process, and store the results."""
    from inferlab import config as cfg

    exp = cfg.load(config)
    if profile:
        exp = cfg.loader.with_profiles(exp, _split(profile, "profile"))
    _execute(exp, db, resume, cluster)


def _split(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"--{what}: give at least one value")
    return items


def _devices(text: str) -> list[str]:
    """--device's list: comma-separated devices, where a `multi:` or `hetero:` device takes the rest of the list
    as its members (`cpu,multi:cuda:0,cpu` is two devices), so it is measured as the user wrote it."""
    items = _split(text, "device")
    for i, item in enumerate(items):
        if item.lower().startswith(("multi:", "hetero:")):
            return [*items[:i], ",".join(items[i:])]
    return items


def _param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise ConfigError(f"--param '{text}': write KNOB=VALUE, e.g. --param intra_op_threads=2")
    key, value = text.split("=", 1)
    import yaml

    return key.strip(), yaml.safe_load(value)


ShapeOption = Annotated[list[str] | None, typer.Option(
    "--shape", help="an input's shape: NAME=1x3x640x640 (? for the batch), NAME[1,3,640,640], or a bare "
    "1x3x224x224 for a one-input model (repeatable)")]
InputOption = Annotated[list[str] | None, typer.Option(
    "--input", "-i", help="what to feed an input: NAME=16000 (a constant), NAME=0..999 (a range), NAME=x.npy or "
    "NAME=folder/ (real data: .npy arrays or images) (repeatable)")]
BatchAxisOption = Annotated[list[str] | None, typer.Option(
    "--batch-axis", help="NAME=AXIS or NAME=none: which axis of an input carries the batch (default: inferred "
    "from the model; none for a state or scalar input, fed as given) (repeatable)")]


@app.command()
def bench(
    model: Annotated[str, typer.Argument(
        help="model file (.onnx, .xml, .pt2, .keras, .tflite), a TensorFlow SavedModel folder, or "
             "package.module:factory")],
    backend: Annotated[str, typer.Option(help="backend(s), comma-separated")] = "onnxruntime",
    device: Annotated[str, typer.Option(help="device(s), comma-separated; multi:A,B or hetero:A,B takes the rest "
                                              "of the list as its members")] = "cpu",
    batch: Annotated[str | None, typer.Option(help="batch size(s), comma-separated (default: the batch --shape "
                                                   "gives, else 1)")] = None,
    mode: Annotated[str | None, typer.Option(help="latency, throughput, or both comma-separated "
                                                  "(default: latency unless --scenario is given)")] = None,
    shape: ShapeOption = None, input: InputOption = None, batch_axis: BatchAxisOption = None,
    time: Annotated[float, typer.Option("--time", help="measurement (LoadGen: minimum) duration in seconds")] = 5.0,
    in_flight: Annotated[int | None, typer.Option(help="requests in flight (throughput, Server, Offline; default: "
                                                       "what the runtime recommends)")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="KNOB=VALUE (repeatable)")] = None,
    scenario: Annotated[str | None, typer.Option(help="MLPerf scenario(s) through LoadGen: singlestream, "
                                                      "multistream, server, offline")] = None,
    qps: Annotated[float | None, typer.Option(help="Server: target queries/s")] = None,
    latency_ms: Annotated[float | None, typer.Option(help="Server: latency bound (ms) for the p99")] = None,
    samples_per_query: Annotated[int | None, typer.Option(help="MultiStream: samples per query")] = None,
    test_mode: Annotated[str, typer.Option(help="LoadGen mode: performance, accuracy, findpeak")] = "performance",
    find_peak: Annotated[bool, typer.Option("--find-peak", help="Server: search the highest VALID QPS")] = False,
    official: Annotated[bool, typer.Option("--official", help="MLPerf's durations (600 s), counts and seeds")
                        ] = False,
    user_conf: Annotated[Path | None, typer.Option(help="a LoadGen user.conf")] = None,
    resume: Annotated[str | None, typer.Option(help="continue run RUN_ID (same flags): skip trials already "
                                                    "stored")] = None,
    profile: ProfileOption = None,
    framework: Annotated[str | None, typer.Option(
        help="the backend of the framework the model comes from (e.g. tensorflow): the report gives every other "
             "runtime's speed-up over it")] = None,
    db: DbOption = None,
    cluster: ClusterOption = None,
) -> None:
    """Benchmark one model without a config (benchmark_app's role, or MLPerf's with --scenario); results
    are stored too."""
    from inferlab import api
    from inferlab.cli.inputs import input_settings

    batches = None
    if batch is not None:
        try:
            batches = [int(b) for b in _split(batch, "batch")]
        except ValueError:
            raise ConfigError(f"--batch '{batch}': give integers, e.g. --batch 1,8") from None
    if time <= 0:
        raise ConfigError(f"--time {time}: give a positive number of seconds")
    measure = {"min_duration_s": time, "max_duration_s": max(60.0, 4 * time), "in_flight": in_flight}
    params = dict(_param(p) for p in (param or []))
    loadgen = {"test_mode": test_mode, "target_qps": qps, "latency_bound_ms": latency_ms,
               "samples_per_query": samples_per_query, "find_peak_qps": find_peak, "official": official,
               "user_conf": str(user_conf.resolve()) if user_conf else None}
    modes = _split(mode, "mode") if mode else ([] if scenario else ["latency"])
    exp = api.bench_experiment(model, _split(backend, "backend"), _devices(device), batches, modes,
                               params, measure, scenarios=_split(scenario, "scenario") if scenario else None,
                               loadgen={k: v for k, v in loadgen.items() if v is not None},
                               inputs=input_settings(shape, input, batch_axis), command=typed_command(),
                               profile=_split(profile, "profile") if profile else None, framework=framework)
    _execute(exp, db, resume, cluster)


MlperfOption = Annotated[bool, typer.Option("--mlperf", help="MLPerf-style table of the scenario results")]
ReferenceOption = Annotated[str | None, typer.Option(help="with --mlperf: run whose results are the reference "
                                                          "system (speedup column)")]
ReferenceBackendOption = Annotated[str | None, typer.Option(help="with --reference: only this backend's results")]


@app.command()
def results(run: Annotated[str | None, typer.Argument(help="run id (default: the latest)")] = None,
            runs: Annotated[bool, typer.Option("--runs", help="list the stored runs instead")] = False,
            mlperf: MlperfOption = False, reference: ReferenceOption = None,
            reference_backend: ReferenceBackendOption = None, db: DbOption = None) -> None:
    """Show a run's results as a table (or list the runs)."""
    from inferlab.api import queries
    from inferlab.report.mlperf import mlperf_table
    from inferlab.report.table import results_table

    if runs:
        t = Table("run", "name", "status", "trials", "done", "created", header_style="bold")
        for listed in queries.runs(db):
            t.add_row(listed.id, listed.name, listed.status, str(listed.trials), str(listed.done), listed.created_at)
        console.print(t)
        return
    if mlperf:
        info, rows = queries.mlperf_rows(run, db, reference, reference_backend)
        console.print(mlperf_table(rows, title=f"run {info.id} ({info.name}): MLPerf Inference scenarios"))
        return
    stored = queries.stored_run(run, db)
    info, res = stored.info, stored.results
    from inferlab.report.html import environment_label
    from inferlab.report.published import published, to_rich

    table = published(res, lambda env_id: environment_label(stored.environment(env_id), env_id))
    if table.rows:
        console.print(to_rich(table, title=f"run {info.id} ({info.name}): published table"))
    console.print(results_table(res, title=f"run {info.id} ({info.name}, {info.status}): every trial"))
    _members(res)


@app.command()
def report(runs: Annotated[list[str] | None, typer.Argument(help="run ids (default: the latest)")] = None,
           output: Annotated[Path, typer.Option("--output", "-o", help="report.html (charts), report.md or "
                                                                       "report.csv (tables)")] = Path("report.html"),
           latency_ms: Annotated[float | None, typer.Option(help="latency threshold of the sweet spot (default: "
                                                                 "a tuning's max_latency_ms)")] = None,
           percentile: Annotated[str | None, typer.Option(help="latency percentile of the charts: median, p50, p90, "
                                                               "p95, p99")] = None,
           db: DbOption = None) -> None:
    """Write a report of stored runs: one self-contained HTML file (tables and interactive charts, offline),
    or its tables as Markdown or CSV."""
    from inferlab import api

    if percentile is not None and percentile not in ("median", "p50", "p90", "p95", "p99"):
        raise ConfigError(f"--percentile '{percentile}': choose median, p50, p90, p95 or p99")
    if latency_ms is not None and latency_ms <= 0:
        raise ConfigError(f"--latency-ms {latency_ms}: give a positive threshold in milliseconds")
    path = api.report(runs or ["latest"], output, db, latency_ms, percentile)
    console.print(f"wrote [bold]{path}[/] ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def export(run: Annotated[str, typer.Argument(help="run id, or 'latest'")],
           format: Annotated[str, typer.Option("--format", "-f", help="csv or json")] = "csv",
           output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
           samples: Annotated[bool, typer.Option(help="include raw latencies (json)")] = False,
           mlperf: MlperfOption = False, reference: ReferenceOption = None,
           reference_backend: ReferenceBackendOption = None, db: DbOption = None) -> None:
    """Export a run's results as CSV or JSON (or its MLPerf-style table with --mlperf)."""
    from inferlab.api import queries
    from inferlab.report.export import rows_to_csv, to_csv, to_json

    if format not in ("csv", "json"):
        raise ConfigError(f"--format '{format}': choose csv or json")
    if mlperf:
        info, rows = queries.mlperf_rows(run, db, reference, reference_backend)
        count = len(rows)
        text = rows_to_csv(rows) if format == "csv" else json.dumps({"run": info.id, "mlperf": rows}, indent=2)
    else:
        stored = queries.stored_run(run, db, with_samples=samples)
        res, count = stored.results, len(stored.results)
        text = to_csv(res, stored.info.id) if format == "csv" else to_json(res, stored.info.id, with_samples=samples)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err.print(f"wrote {count} results to {output}")


DatasetOption = Annotated[str | None, typer.Option("--dataset", help="'digits', a .npz file, or a dataset folder "
                                                                    "(imagenet, image list, VOC, COCO)")]
DatasetFormatOption = Annotated[str | None, typer.Option("--dataset-format", help="digits, npz, imagenet, "
                                                         "image-list, voc, coco (default: guessed)")]
SplitOption = Annotated[str, typer.Option(help="digits: all, train or test")]
LabelsOption = Annotated[str | None, typer.Option(help="labels file (image-list) or class names (imagenet, voc)")]
AnnotationsOption = Annotated[str | None, typer.Option(help="COCO instances JSON")]
SubsetOption = Annotated[int | None, typer.Option(help="use the first N samples")]
PreOption = Annotated[list[str] | None, typer.Option("--preprocess", help="KEY=VALUE, e.g. resize=[32,32] "
                                                     "scale=0.0625 (repeatable)")]
PostOption = Annotated[list[str] | None, typer.Option("--postprocess", help="KEY=VALUE, e.g. layout=ssd "
                                                      "(repeatable)")]
MetricOption = Annotated[str | None, typer.Option("--metric", help="metrics, comma-separated (default: by task)")]


def _data(dataset: str | None, dataset_format: str | None, split: str, labels: str | None, annotations: str | None,
          subset: int | None, preprocess: list[str] | None, postprocess: list[str] | None,
          metric: str | None) -> api.DataOptions | None:
    from inferlab import api

    if dataset is None:
        return None
    from inferlab.accuracy.datasets import guess_format

    fmt = dataset_format or guess_format(dataset, labels)
    data = {"format": fmt, "path": None if fmt == "digits" else str(Path(dataset).resolve()), "split": split,
            "labels": labels, "annotations": annotations, "subset": subset}
    return api.DataOptions({k: v for k, v in data.items() if v is not None},
                           dict(_param(p) for p in preprocess or []), dict(_param(p) for p in postprocess or []),
                           _split(metric, "metric") if metric else None)


@app.command()
def accuracy(
    target: Annotated[str, typer.Argument(help="experiment YAML (its trials run in accuracy mode) or a model file")],
    dataset: DatasetOption = None, dataset_format: DatasetFormatOption = None, split: SplitOption = "all",
    labels: LabelsOption = None, annotations: AnnotationsOption = None, subset: SubsetOption = None,
    preprocess: PreOption = None, postprocess: PostOption = None, metric: MetricOption = None,
    backend: Annotated[str, typer.Option(help="backend(s), comma-separated (model only)")] = "onnxruntime",
    batch: Annotated[str, typer.Option(help="batch size(s), comma-separated (model only)")] = "1",
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="KNOB=VALUE (repeatable)")] = None,
    db: DbOption = None,
) -> None:
    """Check accuracy on a dataset: every trial of a config, or one model on the given backends."""
    from inferlab import api
    from inferlab import config as cfg

    data = _data(dataset, dataset_format, split, labels, annotations, subset, preprocess, postprocess, metric)
    if target.endswith((".yaml", ".yml")):
        exp = cfg.load(Path(target))
        update: dict[str, object] = {"mode": ["accuracy"], "scenario": None}
        if data is not None:
            update["dataset"] = cfg.loader.from_data({**exp.model_dump(), "dataset": data.dataset}, target).dataset
        exp = exp.model_copy(update=update)
    else:
        if data is None:
            raise ConfigError("--dataset: give the data to check the model on, e.g. --dataset digits")
        try:
            batches = [int(b) for b in _split(batch, "batch")]
        except ValueError:
            raise ConfigError(f"--batch '{batch}': give integers, e.g. --batch 1,8") from None
        exp = api.bench_experiment(target, _split(backend, "backend"), ["cpu"], batches, ["accuracy"],
                                   dict(_param(p) for p in (param or [])), name="accuracy", data=data)
    from inferlab.cli.progress import RichReporter
    from inferlab.report.accuracy import accuracy_table

    with RichReporter(console) as reporter:
        run = api.execute(exp, db=db, reporter=reporter, on_plan=show_plan)
    console.print(accuracy_table(run.results, title=f"run {run.id}: accuracy"))
    console.print(f"results stored in [bold]{shown_url(run.db)}[/] as run [bold]{run.id}[/]")
    if not run.ok:
        raise typer.Exit(1)


@app.command()
def quantize(
    model: Annotated[str, typer.Argument(
        help="an .onnx model (an OpenVINO .xml for --backend openvino; a Keras .keras file or a SavedModel folder "
             "for --backend litert)")],
    backend: Annotated[str, typer.Option(
        help="onnxruntime (QDQ INT8), openvino (NNCF) or litert (TensorFlow's converter, full-integer INT8)"),
    ] = "onnxruntime",
    dataset: DatasetOption = None, dataset_format: DatasetFormatOption = None, split: SplitOption = "all",
    labels: LabelsOption = None, annotations: AnnotationsOption = None, subset: SubsetOption = None,
    preprocess: PreOption = None, postprocess: PostOption = None, metric: MetricOption = None,
    precision: Annotated[str, typer.Option(help="int8 or fp16")] = "int8",
    max_drop: Annotated[float | None, typer.Option(help="accuracy-aware INT8: the largest allowed drop of the first "
                                                        "metric, absolute in its unit (0.01 = 1 pp of top-1)")] = None,
    calibration: Annotated[int, typer.Option(help="calibration samples (a seeded random subset)")] = 300,
    calibration_split: Annotated[str | None, typer.Option(help="digits: split to calibrate on (default: train "
                                                               "when validating on test)")] = None,
    batch: Annotated[int, typer.Option(help="batch for the speed comparison")] = 1,
    time: Annotated[float, typer.Option("--time", help="seconds of latency measurement per model")] = 3.0,
    output: Annotated[Path | None, typer.Option(help="folder for the derived model (default: beside it)")] = None,
    db: DbOption = None,
) -> None:
    """Derive an FP16 or INT8 model (within --max-drop), store its lineage, and compare it with the original:
    accuracy, drop and speed, measured side by side."""
    from inferlab import api
    from inferlab.cli.progress import RichReporter
    from inferlab.report.compare import compare, comparison_table

    if precision not in ("int8", "fp16"):
        raise ConfigError(f"--precision '{precision}': choose int8 or fp16")
    data = _data(dataset, dataset_format, split, labels, annotations, subset, preprocess, postprocess, metric)
    if data is None:
        raise ConfigError("--dataset: quantization needs data to calibrate and check on, e.g. --dataset digits")
    if time <= 0:
        raise ConfigError(f"--time {time}: give a positive number of seconds")
    with RichReporter(console) as reporter:
        out = api.quantize(model, backend, data, precision, max_drop, calibration, calibration_split,  # type: ignore[arg-type]
                           batch, {"min_duration_s": time}, db, reporter,
                           note=lambda msg: console.print(f"[dim]{msg}[/]"), output_dir=output)
    lin, results = out.lineage, out.run.results
    console.print(f"derived [bold]{lin.path}[/] ({lin.method}, {lin.hash[:12]}) from {lin.parent_path}")
    if len(results) == 2:
        rows, notes = compare(results[0], results[1])
        console.print(comparison_table(rows, f"original vs {lin.method} on {backend} (run {out.run.id})",
                                       "original", lin.method))
        for n in notes:
            console.print(f"[yellow]note:[/] {n}")
    drop = lin.outcome.get("drop")
    if max_drop is not None and isinstance(drop, float) and drop > max_drop + 1e-12:
        console.print(f"[yellow]the best reachable drop is {drop:+.4f}, over --max-drop {max_drop}[/]")
    if not out.run.ok:
        raise typer.Exit(1)


@app.command("compare")
def compare_cmd(
    a: Annotated[str, typer.Argument(help="a trial RUN:N (N-th row of `inferlab results RUN`) or a model file")],
    b: Annotated[str, typer.Argument(help="the other trial or model")],
    backend: Annotated[str, typer.Option(help="models: the backend to run both on")] = "onnxruntime",
    dataset: DatasetOption = None, dataset_format: DatasetFormatOption = None, split: SplitOption = "all",
    labels: LabelsOption = None, annotations: AnnotationsOption = None, subset: SubsetOption = None,
    preprocess: PreOption = None, postprocess: PostOption = None, metric: MetricOption = None,
    batch: Annotated[int, typer.Option(help="models: batch size")] = 1,
    time: Annotated[float, typer.Option("--time", help="models: seconds of latency measurement each")] = 3.0,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="KNOB=VALUE (repeatable)")] = None,
    layers: Annotated[bool, typer.Option("--layers", help="then the per-layer profiles side by side (trials "
                                                          "measured with --profile layers; models are)")] = False,
    top: Annotated[int | None, typer.Option("--top", help="with --layers: the N layers that differ most")] = None,
    db: DbOption = None,
) -> None:
    """Two trials or two models side by side: accuracy, drop, agreement, latency, throughput, speed-up, size;
    with --layers, their layers too."""
    from inferlab import api
    from inferlab.report.compare import compare, comparison_table

    if top is not None and top < 1:
        raise ConfigError(f"--top {top}: give a positive number of layers")
    if Path(a).is_file() and Path(b).is_file():
        data = _data(dataset, dataset_format, split, labels, annotations, subset, preprocess, postprocess, metric)
        exp = api.bench_experiment([a, b], [backend], ["cpu"], [batch], ["latency"],
                                   dict(_param(p) for p in (param or [])), {"min_duration_s": time},
                                   name="compare", data=data, with_speed=data is not None,
                                   profile=["layers"] if layers else None)
        from inferlab.cli.progress import RichReporter

        with RichReporter(console) as reporter:
            run = api.execute(exp, db=db, reporter=reporter, on_plan=show_plan)
        ra, rb = run.results[:2]
        title = f"{Path(a).name} vs {Path(b).name} on {backend} (run {run.id})"
        names = (f"A ({Path(a).name})", f"B ({Path(b).name})")
    else:
        ra, rb = api.trial(a, db), api.trial(b, db)
        title = f"{a} vs {b}"
        names = (f"A ({a})", f"B ({b})")
    rows, notes = compare(ra, rb)
    console.print(comparison_table(rows, title))
    for n in notes:
        console.print(f"[yellow]note:[/] {n}")
    if layers:
        from inferlab.report.layers import compare_layers, layers_table, require_profiles

        require_profiles(ra, rb, *names)  # the comparison above stands; the missing profile is the one line
        cmp = compare_layers(ra, rb)
        console.print(layers_table(cmp, f"per layer: {title}", top))
        console.print(comparison_table(cmp.totals(), "layers against each trial's time"))
        console.print(escape(cmp.precision_line()), highlight=False)


@app.command("lineage")
def lineage_cmd(model: Annotated[str, typer.Argument(help="a derived model's path or content hash")],
                db: DbOption = None) -> None:
    """Where a derived model came from: parent, method, parameters, calibration data, outcome."""
    from inferlab import api

    t = Table("model", "hash", "method", "parent", "parameters", "calibration", "outcome", header_style="bold")
    for lin in api.lineage(model, db):
        outcome = {k: v for k, v in lin.outcome.items() if k != "steps"}
        t.add_row(lin.path, lin.hash[:12], lin.method, f"{lin.parent_path} ({(lin.parent_hash or '')[:12]})",
                  json.dumps(lin.params), (lin.calibration_hash or "—")[:12], json.dumps(outcome))
    console.print(t)


@app.command("backends")
def list_backends() -> None:
    """List backends: version, whether usable here, devices and knobs."""
    from inferlab.api import queries

    cores = len(os.sched_getaffinity(0))
    for b in queries.backend_catalogue():
        devices = ", ".join(b.devices) if b.usable else "—"
        usable = "[green]usable[/]" if b.usable else f"[red]not installed[/] ({b.install})"
        console.print(f"[bold]{b.name}[/] {b.version or ''}  {usable}  devices: {devices}  "
                      f"per-layer profiles: {'yes' if b.can_profile else 'no'}")
        kinds = list(b.spaces)
        t = Table("knob", "domain", "default", *(f"a tuning on {d} tries" for d in kinds), "meaning",
                  header_style="dim", box=None, padding=(0, 2))
        for knob in b.knobs:
            t.add_row(knob.name, knob.domain(), str(knob.default), *(b.searched(knob.name, d, cores) for d in kinds),
                      knob.doc)
        if t.row_count:
            console.print(t)
        for d in kinds:
            for c in b.spaces[d][1]:
                console.print(f"  [dim]on {d}:[/] {c.text()}")
            for seed in b.seed_texts(d):
                console.print(f"  [dim]on {d}, a tuning first measures:[/] {seed}")


@app.command()
def env() -> None:
    """Show this machine's environment fingerprint."""
    from inferlab.api import queries

    console.print_json(json.dumps(queries.host_environment()))


@app.command()
def schema() -> None:
    """Print the experiment config's JSON Schema (for editor completion)."""
    from inferlab.config.schema import Experiment

    sys.stdout.write(json.dumps(Experiment.model_json_schema(), indent=2) + "\n")


TRIAL_COMMANDS = ("run", "bench", "tune", "accuracy", "quantize")  # they run trials on this host


def _start_trial_process(args: list[str]) -> None:
    """A command that runs trials here starts its first trial's process before it imports the API, so that
    the two processes' imports (about a second each) overlap; the process serves one trial, and is dropped
    at exit if none comes."""
    if (args and args[0] in TRIAL_COMMANDS
            and not any(a in ("--help", "-h", "--cluster") or a.startswith("--cluster=") for a in args)):
        import inferlab

        inferlab.start_trial_process()


def _register_commands() -> None:
    """Commands that live in modules of their own (they import cli.app, never this module); imported here, not
    at the top, because they import the API."""
    from inferlab.cli import analysis, graph, serve, tuning

    for command in (tuning.tune, graph.graph, analysis.analyze, serve.serve):
        if not any(c.callback is command for c in app.registered_commands):
            app.command()(command)


# At exit, spare the cyclic collector a walk over every imported module's objects (SciPy, SQLAlchemy, a runtime:
# half a second here); exit handlers still run, and the memory goes back to the kernel all the same.
atexit.register(gc.freeze)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the Ctrl-C path: the trial process is killed, the run marked 'interrupted'


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a process manager, a job scheduler, `kill`) stops a command as Ctrl-C does. Only the main thread
    may install a handler; called elsewhere (a test driving the CLI from a thread) the default stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    remember_args(args)
    _start_trial_process(args)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s")
    try:
        with _sigterm_as_ctrl_c():
            _register_commands()  # imports the API: Ctrl-C or SIGTERM meanwhile ends as they do later
            app(args=args, prog_name="inferlab")  # usage errors: click prints them and exits 2
    except InferlabError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        err.print("interrupted")
        return Interrupted.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
