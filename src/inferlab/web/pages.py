"""The workbench's pages, rendered on the server from the same data the API serves: runs (a filtered list, a
run's report with its live progress and cancel), compare (trials side by side with the verdict, and the
throughput-against-latency chart of the runs they come from), models (import, analysis) and a new
experiment (its YAML, checked against the config's schema before it runs)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from inferlab import api
from inferlab.api import queries
from inferlab.errors import InferlabError, first_line
from inferlab.report import charts
from inferlab.report.compare import compare
from inferlab.report.html import TEMPLATES as REPORT_TEMPLATES
from inferlab.report.html import report_context
from inferlab.report.numbers import fps, ms
from inferlab.web.api_routes import _datasets, _jobs, _library, _settings
from inferlab.web.problems import Problem

router = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).parent / "templates"
_env = jinja2.Environment(loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(TEMPLATES),
                                                      jinja2.FileSystemLoader(REPORT_TEMPLATES)]),
                          autoescape=True, undefined=jinja2.StrictUndefined)
STATUSES = ("running", "finished", "interrupted", "cancelled", "stopped")


def page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context))


def _run_id(run_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        raise Problem(404, f"run '{run_id[:64]}': no such run")
    return run_id


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, model: Annotated[str, Query(max_length=200)] = "",
              backend: Annotated[str, Query(max_length=100)] = "", device: Annotated[str, Query(max_length=100)] = "",
              status: Annotated[str, Query(max_length=40)] = "") -> HTMLResponse:
    summaries = queries.run_summaries(_settings(request).db)
    shown = [s for s in summaries if s.matches(model, backend, device, status)]
    choices = {"model": sorted({m for s in summaries for m in s.models}),
               "backend": sorted({b for s in summaries for b in s.backends}),
               "device": sorted({d for s in summaries for d in s.devices}), "status": list(STATUSES)}
    return page("runs.html.j2", title="Runs", runs=shown, total=len(summaries), choices=choices,
                chosen={"model": model, "backend": backend, "device": device, "status": status})


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    db = _settings(request).db
    info = queries.run_info(_run_id(run_id), db)
    runs, envs = api.report_runs([info.id], db)  # its results once, with its tuning study when it is one
    context = report_context(runs, envs)
    study = runs[0].study
    job = _jobs(request).get(info.id)
    trials = [(f"{info.id}:{i + 1}", r.spec.label(), r.status, fps(r.throughput_sps),
               ms(r.latency.median_3sigma_ms) if r.latency else "—") for i, r in enumerate(runs[0].results)]
    winner = bool(study is not None and study.best.get("snippet"))
    return page("run.html.j2", **context, plotly_js="", run=info, live=info.status == "running", winner=winner,
                cancellable=job is not None and not job.done, trials=trials, page_title=f"Run {info.id}")


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, run: Annotated[list[str] | None, Query(max_length=12)] = None,
                 trial: Annotated[list[str] | None, Query(max_length=12)] = None) -> HTMLResponse:
    db = _settings(request).db
    runs = [queries.stored_run(_run_id(r), db) for r in dict.fromkeys(run or [])]
    chosen = list(dict.fromkeys(trial or []))
    comparisons: list[dict[str, Any]] = []
    error = None
    picked = []
    if len(chosen) >= 2:
        try:
            picked = [api.trial(ref, db) for ref in chosen]  # each trial read once
            for ref, b in zip(chosen[1:], picked[1:], strict=True):
                rows, notes = compare(picked[0], b)
                comparisons.append({"a": chosen[0], "b": ref, "rows": rows, "notes": notes})
        except InferlabError as exc:
            error = first_line(exc, 300)
    elif trial:
        error = "choose two trials or more: the first is A, each other is compared with it"
    results = [r for s in runs for r in s.results] or picked
    figures: list[dict[str, Any]] = []
    styles = charts.Styles(results)
    for model, rs in charts.by_model(results).items():
        fig = charts.throughput_latency(model, rs, styles, None, "p99")
        best = charts.sweet_spot(rs, None, "p99")
        if fig is not None:
            figures.append({"id": f"cmp-{len(figures)}", "figure": fig.to_json(), "caption": None if best is None
                            else f"{best.spec.label()}: {fps(best.throughput_sps)} FPS at p99 "
                                 f"{ms(best.latency.p99_ms if best.latency else None)} ms"})
    trial_choices = [(f"{s.info.id}:{i + 1}", f"{s.info.id}:{i + 1} {r.spec.label()}", r.status)
                     for s in runs for i, r in enumerate(s.results)]
    all_runs = queries.run_summaries(db)
    return page("compare.html.j2", title="Compare", all_runs=all_runs, runs=[s.info.id for s in runs],
                chosen=chosen, trial_choices=trial_choices, comparisons=comparisons, error=error, charts=figures)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> HTMLResponse:
    return page("models.html.j2", title="Models", models=_library(request).models())


@router.get("/models/{key}", response_class=HTMLResponse)
def model_page(request: Request, key: str, batch: Annotated[int, Query(ge=1, le=4096)] = 1) -> HTMLResponse:
    lib = _library(request)
    m = lib.model(key)
    analysis, error = None, None
    try:
        analysis = api.analyze(lib.file(m), batch=batch)
    except InferlabError as exc:
        error = first_line(exc, 300)
    rows = [] if analysis is None else [
        ("counted by", analysis.counted_by), ("inputs", ", ".join(f"{i.name} {'x'.join(map(str, i.shape))}"
                                                                  for i in analysis.inputs)),
        ("FLOPs", f"{analysis.flops / 1e9:.3f} G"), ("MACs", f"{analysis.macs / 1e9:.3f} G"),
        ("parameters", f"{analysis.params / 1e6:.3f} M"), ("weights", f"{analysis.weight_bytes / 2**20:.2f} MiB"),
        ("peak activations", f"{analysis.peak_activation_bytes / 2**20:.2f} MiB"),
        ("layers", str(len(analysis.layers)))]
    derived = queries.derived_from(m.content_hash, _settings(request).db) if m.content_hash else []
    listed = {x.hash: x for x in lib.models()}
    return page("model.html.j2", title=f"Model {m.name}", model=m, rows=rows, notes=analysis.notes if analysis
                else (), error=error, batch=batch, derived=derived, listed=listed,
                datasets=_datasets(request).datasets())


@router.get("/models/{key}/graph/", response_class=HTMLResponse)
def graph_page(request: Request, key: str) -> Response:
    """The model in Netron (its bundled web app, served by this server; nothing fetched from elsewhere)."""
    lib = _library(request)
    m = lib.model(key)
    view = api.netron_page(lib.file(m), "data/")  # Netron fetches it relative to its page
    response = Response(view.html, media_type="text/html; charset=utf-8",
                        headers={"content-security-policy": view.csp, "cache-control": "no-store"})
    response.set_cookie("consent", str(int(time.time() * 1000)), max_age=view.consent_max_age_s,
                        path=f"/models/{m.hash}/graph/", samesite="strict")
    return response


@router.get("/models/{key}/graph/data/{name}")
def graph_data(request: Request, key: str, name: str) -> Response:
    lib = _library(request)
    m = lib.model(key)
    path = api.netron_page(lib.file(m), "").files.get(name)
    if path is None or not path.is_file():
        raise Problem(404, f"model {m.name}: no file '{name[:80]}' beside it")
    return FileResponse(path, media_type="application/octet-stream", headers={"cache-control": "no-store"})


@router.get("/models/{key}/graph/{name}")
def graph_asset(request: Request, key: str, name: str) -> Response:
    _library(request).model(key)
    found = api.netron_asset(name)
    if found is None:
        raise Problem(404, f"/models/{key[:16]}/graph/{name[:80]}: no such file of Netron's")
    path, kind = found
    return FileResponse(path, media_type=kind, headers={"cache-control": "public, max-age=3600"})


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request) -> HTMLResponse:
    return page("datasets.html.j2", title="Datasets", datasets=request.app.state.datasets.datasets())


@router.get("/datasets/{key}", response_class=HTMLResponse)
def dataset_page(request: Request, key: str) -> HTMLResponse:
    d = request.app.state.datasets.dataset(key)
    return page("dataset.html.j2", title=f"Dataset {d.name}", dataset=d)


@router.get("/experiments/new", response_class=HTMLResponse)
def new_experiment(request: Request, model: Annotated[str, Query(max_length=16)] = "") -> HTMLResponse:
    lib = _library(request)
    models = lib.models()
    picked = [m for m in models if m.hash == model] or models[:1]
    return page("new.html.j2", title="New experiment", models=models, picked=picked)
