"""What every command module shares: the Typer app, the consoles, the shared options and the command line as
typed. Command modules (main.py, tuning.py, ...) import this, never each other; main.py registers them."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from inferlab.config.plan import Plan

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure, compare and tune deep-learning inference.")
console = Console()
if not console.is_terminal:
    console = Console(width=max(console.width, 180))  # logs and pipes: keep the wide results table readable
err = Console(stderr=True)

# Where the store looks when --db is left out: inferlab.store.default_location (not imported here: the options
# are built before the API is imported).
DB_HELP = ("database URL or SQLite path (default: $INFERLAB_DB, else $XDG_DATA_HOME/inferlab/inferlab.db, "
           "i.e. ~/.local/share/inferlab/inferlab.db)")
DbOption = Annotated[str | None, typer.Option("--db", help=DB_HELP)]
ClusterOption = Annotated[str | None, typer.Option(
    "--cluster", help="run the trials on the Ray cluster at this address (HOST:PORT; 'local': a throwaway "
                      "one-node cluster here); results are stored here")]

_ARGS: list[str] = []


def remember_args(args: list[str]) -> None:
    """Keep the command line (without the program name) for typed_command; the entry point calls this."""
    _ARGS[:] = args


def typed_command() -> str:
    """The command line as the user typed it, without --resume and its value (for the resume hint)."""
    args = list(_ARGS)
    for i, a in enumerate(args):
        if a == "--resume":
            del args[i:i + 2]
            break
        if a.startswith("--resume="):
            del args[i]
            break
    return shlex.join(["inferlab", *args])


def shown_url(url: str) -> str:
    """A database URL as it may be printed: without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL (a plain path): nothing to hide
        return url


def show_plan(plan: Plan) -> None:
    console.print(f"planned {len(plan.specs)} trials")
    for note in plan.skipped:
        console.print(f"[yellow]skipped:[/] {note}")
