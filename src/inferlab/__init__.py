"""inferlab: measure, compare and tune deep-learning inference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferlab.errors import InferlabError

if TYPE_CHECKING:
    from inferlab.api import Run, analyze, benchmark, run

__version__ = "0.1.0"
__all__ = ["InferlabError", "Run", "__version__", "analyze", "benchmark", "run"]


def start_trial_process() -> None:
    """For entry points: start the next trial's process now, before the API is imported, so that the two
    imports overlap. That process serves one trial of this process, fresh, if its environment fits; it is
    dropped at exit if none comes (inferlab.execute.child)."""
    from inferlab.execute import child

    child.start_early()


def __getattr__(name: str) -> Any:
    # The API (and the store, scipy, alembic behind it) is imported on first use, not by every trial process
    # that imports a backend: a trial starts seconds sooner.
    if name == "analyze":  # the package, which is callable: inferlab.analyze(model, ...) (see analyze/__init__.py)
        import importlib

        return importlib.import_module("inferlab.analyze")
    if name in ("Run", "benchmark", "run"):
        from inferlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'inferlab' has no attribute {name!r}")
