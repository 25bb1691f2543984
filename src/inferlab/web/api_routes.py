"""The JSON API under /api: runs (list with filters, one run's rows, start, cancel, live events), comparison
of trials with the significance verdict of `inferlab compare`, models (import, list, analysis), backends
and the experiment config's JSON Schema (what the new-experiment form is generated from)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

from inferlab import api
from inferlab.api import queries
from inferlab.config.schema import Experiment
from inferlab.errors import InferlabError
from inferlab.records.accuracy import Preprocess
from inferlab.report.compare import compare
from inferlab.report.rows import flatten
from inferlab.web import confine
from inferlab.web.jobs import Job, JobReporter, Jobs
from inferlab.web.library import Datasets, Library, StoredModel
from inferlab.web.problems import Problem
from inferlab.web.settings import Settings

router = APIRouter(prefix="/api")
POLL_S = 0.1           # a run started here: how often the event stream looks for new events
STORE_POLL_S = 0.5     # a run started elsewhere: how often it reads the store
RUN_ID = r"^[A-Za-z0-9_-]{1,64}$"
TRIAL_REF = r"^[A-Za-z0-9_-]{1,64}:[0-9]{1,6}$"
QUANTIZE_WAIT_S = 900  # a quantization answers once its model is derived (accuracy-aware INT8 takes longest)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs


def _library(request: Request) -> Library:
    return request.app.state.library


def _datasets(request: Request) -> Datasets:
    return request.app.state.datasets


class DatasetOut(BaseModel):
    hash: str
    name: str
    format: str
    path: str
    labels: str | None
    samples: int
    classes: int
    class_names: list[str]
    size: int
    content_hash: str
    previews: list[str]


class RunOut(BaseModel):  # a RunInfo (its other fields, server paths among them, left out) and what it covers
    id: str
    name: str
    status: str
    created_at: str
    finished_at: str | None
    trials: int
    done: int
    models: list[str]
    backends: list[str]
    devices: list[str]


class RunDetail(BaseModel):
    id: str
    name: str
    status: str
    trials: int
    done: int
    rows: list[dict[str, Any]]


class Started(BaseModel):
    id: str
    url: str


class NewRun(BaseModel):
    config: str = Field(max_length=1_000_000, description="the experiment as YAML (what `inferlab run` reads)")


class Cancelled(BaseModel):
    id: str
    cancelled: bool


class CompareRow(BaseModel):
    what: str
    a: str
    b: str
    change: str


class Comparison(BaseModel):
    a: str
    b: str
    rows: list[CompareRow]
    notes: list[str]


class ModelOut(BaseModel):
    hash: str
    name: str
    format: str
    path: str
    size: int
    parent: str | None = None


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: such figures go out as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@router.get("/runs", response_model=list[RunOut])
def list_runs(request: Request,
              model: Annotated[str | None, Query(max_length=200)] = None,
              backend: Annotated[str | None, Query(max_length=100)] = None,
              device: Annotated[str | None, Query(max_length=100)] = None,
              status: Annotated[str | None, Query(max_length=40)] = None) -> list[RunOut]:
    """Stored runs, newest first; each filter keeps the runs with a trial that matches it."""
    return [RunOut(**asdict(s.info), models=s.models, backends=s.backends, devices=s.devices)
            for s in queries.run_summaries(_settings(request).db) if s.matches(model, backend, device, status)]


@router.get("/runs/{run_id}", response_model=RunDetail)
def get_run(request: Request, run_id: Annotated[str, PathParam(pattern=RUN_ID)]) -> RunDetail:
    """A run and its results, one flat row each (the columns of `inferlab results --format csv`)."""
    stored = queries.stored_run(run_id, _settings(request).db)
    i = stored.info
    rows = [{k: _clean(v) for k, v in flatten(r, i.id).items()} for r in stored.results]
    return RunDetail(id=i.id, name=i.name, status=i.status, trials=i.trials, done=i.done, rows=rows)


@router.post("/runs", response_model=Started, status_code=201)
def start_run(request: Request, body: NewRun) -> Started:
    """Run an experiment (YAML) here, through the same executor as `inferlab run`: every trial in its own
    process. Models and datasets are named as the workbench imported them (paths on the server are refused)."""
    settings = _settings(request)
    exp = confine.experiment(body.config, settings.data_dir)
    run_id = _jobs(request).start(exp)
    return Started(id=run_id, url=f"/runs/{run_id}")


@router.post("/runs/{run_id}/cancel", response_model=Cancelled, status_code=202)
def cancel_run(request: Request, run_id: Annotated[str, PathParam(pattern=RUN_ID)]) -> Cancelled:
    """Cancel a run this server started: the trial running is stopped, finished trials stay stored."""
    info = queries.run_info(run_id, _settings(request).db)
    if not _jobs(request).cancel(info.id):
        raise Problem(409, f"run {info.id} is not running here ({info.status}); only a run started from this "
                           "workbench and still running can be cancelled")
    return Cancelled(id=info.id, cancelled=True)


@router.get("/runs/{run_id}/winner.yaml", response_class=PlainTextResponse)
def winner_config(request: Request, run_id: Annotated[str, PathParam(pattern=RUN_ID)]) -> PlainTextResponse:
    """A finished tuning's winner as a ready config (what `inferlab tune --emit` writes), its files named as
    the workbench's configs name them, so it runs here as it is."""
    settings = _settings(request)
    found, text = api.winner_config(run_id, settings.db, settings.data_dir)
    if text is None:
        raise Problem(404, f"run {found} has no winner to download (not a tuning, or none met its constraints yet)")
    return PlainTextResponse(text, media_type="application/yaml")


@router.get("/runs/{run_id}/events")
async def run_events(request: Request, run_id: Annotated[str, PathParam(pattern=RUN_ID)]) -> EventSourceResponse:
    """Server-sent events of a run's progress: trial-started, phase, progress, trial-finished, run-ended (for a
    run started elsewhere, trial-finished and run-ended as the store sees them)."""
    db = _settings(request).db
    info = queries.run_info(run_id, db)
    job = _jobs(request).get(info.id)

    async def from_job() -> AsyncIterator[dict[str, str]]:
        assert job is not None
        seq = 0
        while True:
            events = job.since(seq)
            for e in events:
                yield {"event": e["type"], "data": json.dumps(e, default=_clean)}
            seq += len(events)
            if any(e["type"] == "run-ended" for e in events):
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_S)

    async def from_store() -> AsyncIterator[dict[str, str]]:
        done = -1
        while True:
            now = await asyncio.to_thread(queries.run_info, info.id, db)
            if now.done != done:
                done = now.done
                yield {"event": "count", "data": json.dumps({"done": now.done, "trials": now.trials})}
            if now.status != "running":
                yield {"event": "run-ended", "data": json.dumps({"outcome": now.status})}
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(STORE_POLL_S)

    return EventSourceResponse(from_job() if job is not None else from_store(), ping=10)


@router.get("/compare", response_model=list[Comparison])
def compare_trials(request: Request,
                   trial: Annotated[list[str], Query(min_length=2, max_length=12)]) -> list[Comparison]:
    """Each trial (RUN:N) against the first, as `inferlab compare A B` shows them: the ratio and whether it is
    significant (Mann–Whitney U on the raw latencies)."""
    for ref in trial:
        if not _valid_ref(ref):
            raise Problem(422, f"trial '{ref[:80]}': name a trial as RUN:N (the N-th row of a run)")
    db = _settings(request).db
    first = api.trial(trial[0], db)
    out = []
    for ref in trial[1:]:
        rows, notes = compare(first, api.trial(ref, db))
        out.append(Comparison(a=trial[0], b=ref, rows=[CompareRow(what=r.what, a=r.a, b=r.b, change=r.change)
                                                       for r in rows], notes=notes))
    return out


def _valid_ref(ref: str) -> bool:
    import re

    return re.fullmatch(TRIAL_REF[1:-1], ref) is not None


@router.get("/models", response_model=list[ModelOut])
def list_models(request: Request) -> list[ModelOut]:
    """Models imported into this workbench (by content hash)."""
    return [ModelOut(**m.to_json()) for m in _library(request).models()]


@router.post("/models", response_model=ModelOut, status_code=201)
def import_model(request: Request, file: Annotated[UploadFile, File(description=".onnx, .xml or .pt2")],
                 weights: Annotated[UploadFile | None, File(description="an OpenVINO .xml's .bin")] = None,
                 ) -> ModelOut:
    """Import a model by upload: kept under the data folder by its content hash, checked as a model file."""
    m: StoredModel = _library(request).import_model(file.filename, file.file,
                                                    weights.file if weights is not None else None)
    return ModelOut(**m.to_json())


@router.get("/models/{key}", response_model=ModelOut)
def get_model(request: Request, key: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")]) -> ModelOut:
    return ModelOut(**_library(request).model(key).to_json())


@router.get("/models/{key}/analysis")
def analyze_model(request: Request, key: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")],
                  batch: Annotated[int, Query(ge=1, le=4096)] = 1) -> JSONResponse:
    """The model's complexity at a batch: FLOPs, parameters, weights and activation memory."""
    lib = _library(request)
    m = lib.model(key)
    try:
        c = api.analyze(lib.file(m), batch=batch)
    except InferlabError as exc:
        raise Problem(422, f"model {m.name}: {str(exc).splitlines()[0]}") from None
    return JSONResponse(json.loads(json.dumps(c.to_json(), default=str)))


class QuantizeIn(BaseModel):
    backend: Literal["onnxruntime", "openvino"] = "onnxruntime"
    precision: Literal["int8", "fp16"] = "int8"
    dataset: str = Field("digits", pattern=r"^(digits|[0-9a-f]{16})$",
                         description="an imported dataset's key, or digits (scikit-learn's, built in)")
    preprocess: Preprocess = Field(default_factory=Preprocess,
                                   description="how the model reads a sample: a config's models[].preprocess")
    max_drop: float | None = Field(None, ge=0, le=1, description="INT8 within this drop of the first metric, "
                                                                   "absolute in its unit (0.01 = 1 pp of top-1)")
    calibration: int = Field(300, ge=1, le=10_000, description="calibration samples (a seeded random subset)")
    batch: int = Field(1, ge=1, le=256)
    time_s: float = Field(2.0, gt=0, le=60, description="seconds of latency measurement per model")


@router.post("/models/{key}/quantize", response_model=Started, status_code=201)
def quantize_model(request: Request, key: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")],
                   body: QuantizeIn) -> Started:
    """Derive an INT8 model (within a maximum accuracy drop) or an FP16 one, keep it with its lineage, then
    measure it beside the original (accuracy and latency, each trial in its own process). Answers once the
    derived model exists and its measurement has started; the run's page follows it."""
    settings, lib = _settings(request), _library(request)
    m = lib.model(key)
    if body.dataset == "digits":
        dataset: dict[str, Any] = {"format": "digits", "split": "test"}
    else:
        ds = _datasets(request).dataset(body.dataset)
        dataset = {"format": ds.format, "path": str(settings.data_dir / ds.path)}
        if ds.labels:
            dataset["labels"] = str(settings.data_dir / ds.labels)
    data = api.DataOptions(dataset, body.preprocess.model_dump(exclude_defaults=True))
    model = lib.file(m)

    def work(job: Job, on_run: Callable[[str], None]) -> None:
        api.quantize(str(model), body.backend, data, body.precision, body.max_drop, body.calibration, None,
                     body.batch, {"min_duration_s": body.time_s}, settings.db, JobReporter(job),
                     note=lambda text: job.add("note", text=text), output_dir=model.parent / "inferlab-derived",
                     stop=job.stop, on_run=on_run, name=m.name)

    run_id = _jobs(request).launch(work, wait_s=QUANTIZE_WAIT_S)
    return Started(id=run_id, url=f"/runs/{run_id}")


@router.get("/datasets", response_model=list[DatasetOut])
def list_datasets(request: Request) -> list[DatasetOut]:
    """Datasets imported into this workbench (by content hash)."""
    return [DatasetOut(**d.to_json()) for d in _datasets(request).datasets()]


@router.post("/datasets", response_model=DatasetOut, status_code=201)
def import_dataset(request: Request,
                   file: Annotated[UploadFile, File(description="a .zip, .tar, .tar.gz or .tgz archive in ImageNet "
                                                                "class-folder, VOC or COCO layout")]) -> DatasetOut:
    """Import a dataset archive: unpacked safely under the data folder, opened and checked as an accuracy check
    would, kept by its content hash."""
    return DatasetOut(**_datasets(request).import_archive(file.filename, file.file).to_json())


@router.get("/datasets/{key}", response_model=DatasetOut)
def get_dataset(request: Request, key: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")]) -> DatasetOut:
    return DatasetOut(**_datasets(request).dataset(key).to_json())


@router.get("/datasets/{key}/previews/{index}", response_class=FileResponse)
def dataset_preview(request: Request, key: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")],
                    index: Annotated[int, PathParam(ge=0, le=1000)]) -> FileResponse:
    """One of the dataset's first images, as stored."""
    path = _datasets(request).preview(key, index)
    kind = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".bmp": "image/bmp",
            ".webp": "image/webp"}.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=kind)


@router.get("/backends")
def backends() -> list[dict[str, Any]]:
    """The backends of this server, whether each is usable, its devices and its knobs with their domains."""
    return [{"name": b.name, "version": b.version, "usable": b.usable, "devices": b.devices,
             "knobs": [{"name": k.name, "kind": k.kind, "default": _clean(k.default), "choices": list(k.choices),
                        "low": k.low, "high": k.high,
                        "doc": k.doc} for k in b.knobs]} for b in queries.backend_catalogue()]


@router.get("/schema/experiment")
def experiment_schema() -> dict[str, Any]:
    """The JSON Schema of an experiment config, from the same model `inferlab run` validates with."""
    return Experiment.model_json_schema()
