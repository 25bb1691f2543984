"""`inferlab tune`: run a tuning study and show what it found and why (its trials, the winner, the front)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from inferlab import api
from inferlab.cli.app import ClusterOption, DbOption, console, shown_url, typed_command
from inferlab.config.tuning import TuneConfig
from inferlab.tune.leaders import leaders
from inferlab.tune.record import TrialRecord
from inferlab.tune.spec import DIRECTION, UNIT


def _point(r: TrialRecord) -> str:
    return r.point.describe() if r.point is not None else (r.note or "")


def _value(objective: str, v: float) -> str:
    return f"{v:.1f}" if objective == "throughput" else f"{v:.3f}" if objective.startswith("latency") else f"{v:.4g}"


def trials_table(run: api.TuneRun, objectives: list[str]) -> Table:
    t = Table(title=f"tuning {run.id}: {len(run.outcome.records)} proposals, sampler {run.outcome.sampler}",
              header_style="bold")
    for col in ("#", "role", "state", "configuration", *(f"{o} ({UNIT.get(o, 'ms')})" for o in objectives),
                "constraints / note"):
        t.add_column(col, justify="right" if col == "#" or "(" in col else "left")
    winner = run.outcome.winner
    front = {r.position for r in run.outcome.front}
    for r in run.outcome.records:
        state = {"complete": "[green]ok[/]" if r.feasible or r.role == "reference" else "[yellow]infeasible[/]",
                 "failed": "[red]failed[/]", "pruned": "[dim]pruned[/]"}[r.state]
        mark = " ★" if winner is not None and r.position == winner.position else (" ◆" if r.position in front else "")
        values = [_value(o, v) for o, v in zip(objectives, r.values, strict=False)] or [""] * len(objectives)
        if r.point is None:  # the FP32 accuracy reference
            note = f"{r.note}: accuracy {r.accuracy * 100:.2f}%" if r.accuracy is not None else (r.note or "")
            t.add_row(str(r.position), r.role, state, "[dim]the original model[/]", *[""] * len(objectives), note)
            continue
        t.add_row(f"{r.position}{mark}", r.role, state, _point(r), *values, r.note or "")
    marks = ["★ winner (after re-measurement)"] if winner is not None else []
    t.caption = "   ".join(marks + (["◆ Pareto front"] if front else []))
    return t


def leaders_table(run: api.TuneRun, objective: str) -> Table | None:
    """Per device: the best configuration, the best of each other precision, and their speed-up over the
    runtime's defaults."""
    rows = leaders(run.outcome.records, objective, run.outcome.baseline)
    if not rows:
        return None
    t = Table(title=f"per device: the best, the best of each precision, and the speed-up over the defaults "
              f"({objective})", header_style="bold")
    for col in ("device", "precision", "configuration", f"{objective} ({UNIT.get(objective, 'ms')})",
                "vs defaults", "defaults measured"):
        t.add_column(col, justify="right" if "(" in col or col == "vs defaults" else "left")
    for row in rows:
        base = row.defaults
        t.add_row(row.device, ("[bold]" if row.best else "") + row.precision, _point(row.record),
                  _value(objective, row.value), f"{row.speedup:.2f}×" if row.speedup is not None else "—",
                  f"#{base.position} ({base.role}, b{base.point.batch}): {_value(objective, base.values[0])}"
                  if base is not None and base.point is not None else "not at this batch")
    return t


def show(console: Console, run: api.TuneRun, objectives: list[str], emit: Path | None) -> None:
    console.print(trials_table(run, objectives))
    out = run.outcome
    for line in out.summary:
        console.print(f"[dim]·[/] {line}")
    if out.winner is None:
        console.print(f"[bold red]{out.message}[/]")
        return
    if (table := leaders_table(run, objectives[0])) is not None:
        console.print(table)
    values = ", ".join(f"{o} {_value(o, v)} {UNIT.get(o, 'ms')} ({DIRECTION[o]}d)"
                       for o, v in zip(objectives, out.winner_values, strict=False))
    console.print(f"[bold green]best:[/] {_point(out.winner)} — {values} (median of its measurements)")
    if emit is not None and run.snippet is not None:
        from inferlab.tune.emit import write

        write(emit, run.snippet)
        console.print(f"wrote the best configuration to [bold]{emit}[/]; run it with `inferlab run {emit}`")
    console.print(f"stored in [bold]{shown_url(run.db)}[/] as run [bold]{run.id}[/]; "
                  f"`inferlab report {run.id} -o report.html` plots it")


class _Lines:
    """Prints what the executor's progress does not: pruned proposals."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def recorded(self, record: TrialRecord, measured: int, budget: int) -> None:
        if record.state == "pruned":
            self.console.print(f"[dim]- pruned {_point(record)}: {record.note}[/]")


def tune(config: Annotated[Path, typer.Argument(help="experiment YAML with a `tune:` block")],
         resume: Annotated[str | None, typer.Option(help="continue tuning run RUN (its stored study)")] = None,
         emit: Annotated[Path | None, typer.Option(help="write the best configuration as an experiment YAML")] = None,
         max_trials: Annotated[int | None, typer.Option(help="override tune.max_trials")] = None,
         time_budget: Annotated[float | None, typer.Option(help="override tune.time_budget_s (seconds)")] = None,
         db: DbOption = None, cluster: ClusterOption = None) -> None:
    """Search a config's space for the best configuration under its constraints (optuna: grid, TPE or NSGA-II);
    every trial is isolated and stored, and the study can be resumed."""
    from inferlab import config as cfg
    from inferlab.cli.progress import RichReporter

    exp = cfg.load(config)
    tc = exp.tune or TuneConfig()
    overrides = {k: v for k, v in (("max_trials", max_trials), ("time_budget_s", time_budget)) if v is not None}
    if overrides:
        data = {**exp.model_dump(mode="json", exclude_unset=True), "tune": {**tc.model_dump(), **overrides}}
        source = exp.source
        exp = cfg.loader.from_data(data, str(config))
        exp._source = source
        tc = exp.tune or tc
    with RichReporter(console) as reporter:
        run = api.tune(exp, db=db, resume=resume, reporter=reporter, events=_Lines(console),
                       note=lambda m: console.print(f"[dim]{m}[/]"), resume_command=typed_command(),
                       cluster=cluster)
    if run.resumed_skipped:
        console.print(f"resumed tuning {run.id}: {run.resumed_skipped} measured trials kept, not run again")
    show(console, run, list(tc.objectives), emit)
    if run.outcome.winner is None:
        raise typer.Exit(1)
