"""Rich progress for a run: a bar across trials and one within the measurement in progress."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from inferlab.records.trial import TrialResult, TrialSpec
from inferlab.report import numbers


class RichReporter:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.trials: TaskID | None = None
        self.current: TaskID | None = None   # the trial started last: phases and progress speak of it
        self.running: dict[str, TaskID] = {}  # every trial in flight (several at once on a cluster), by key
        self.label = ""
        self.phase = ""

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def trial_started(self, index: int, total: int, spec: TrialSpec) -> None:
        if self.trials is None:
            self.trials = self.progress.add_task("trials", total=total, detail=f"0/{total}")
        self.label = spec.label()
        self.current = self.progress.add_task(f"  {self.label}: starting", total=None, detail="")
        self.running[spec.key()] = self.current

    def trial_phase(self, name: str) -> None:
        if name.startswith("waiting"):  # for the host's lock: say so in the log too, not only in the bar
            self.console.print(f"[yellow]…[/] {escape(name)}", highlight=False)
        self.phase = name
        if self.current is not None:
            self.progress.update(self.current, description=f"  {self.label}: {name}")

    def trial_progress(self, elapsed_s: float, planned_s: float, requests: int) -> None:
        if self.current is not None and self.phase == "accuracy":  # progress counts samples here
            self.progress.update(self.current, total=max(planned_s, 1), completed=elapsed_s,
                                 description=f"  {self.label}: accuracy", detail=f"{requests}/{planned_s:.0f} samples")
        elif self.current is not None:
            self.progress.update(self.current, total=max(planned_s, elapsed_s, 1e-9), completed=elapsed_s,
                                 description=f"  {self.label}: measuring ({requests} requests)",
                                 detail=f"{elapsed_s:.1f}/{planned_s:.1f} s")

    def trial_finished(self, result: TrialResult) -> None:
        mine = self.running.pop(result.spec.key(), None)
        if mine is not None:
            self.progress.remove_task(mine)
            if mine == self.current:
                self.current = None
        if self.trials is not None:
            self.progress.advance(self.trials)
            task = self.progress.tasks[self.trials]
            self.progress.update(self.trials, detail=f"{int(task.completed)}/{int(task.total or 0)}")
        lg = result.loadgen
        if lg is not None and result.status in ("ok", "invalid"):
            verdict = lg.validity or f"{lg.test_mode}"
            colour = "green" if result.status == "ok" else "yellow"
            self.console.print(f"[{colour}]{'✓' if result.status == 'ok' else '!'}[/] {result.spec.label()}: "
                               f"{lg.headline()}, [{colour}]{verdict}[/]"
                               + (f" ({result.reason})" if result.reason else ""))
        elif result.status == "ok" and result.throughput_sps is not None and result.latency is not None:
            self.console.print(f"[green]✓[/] {result.spec.label()}: {numbers.fps(result.throughput_sps)} FPS, "
                               f"median {numbers.ms(result.latency.median_3sigma_ms)} ms"
                               + (f", {result.accuracy.headline()}" if result.accuracy else ""))
        elif result.status == "ok" and result.accuracy is not None:
            self.console.print(f"[green]✓[/] {result.spec.label()}: {result.accuracy.headline()} "
                               f"({result.accuracy.samples} samples)")
        else:
            label, reason = escape(result.spec.label()), escape(result.reason or "")
            self.console.print(f"[red]✗[/] {label}: {result.status}: {reason}", highlight=False)
