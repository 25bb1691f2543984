"""The exception tree: every error a user can cause is an InferlabError whose message names the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InferlabError(Exception):
    """A user-caused error. Its message is one line naming the field, file or value and what to do."""


class ConfigError(InferlabError):
    """The experiment configuration is invalid."""


class ModelError(InferlabError):
    """A model file or reference is missing, corrupt or unsupported."""


class BackendError(InferlabError):
    """A backend, device or knob is unknown or unusable."""


class InputSpecError(InferlabError):
    """Input names, shapes or dtypes do not fit the model."""


class StoreError(InferlabError):
    """The result database cannot be opened or does not hold what was asked for."""


class NotFound(StoreError):
    """The database holds no run, trial, study or derived model by the name asked for."""


class Interrupted(InferlabError):
    """The user stopped a run (Ctrl-C); finished trials are stored and the run can be resumed."""

    exit_code = 130


class Cancelled(InferlabError):
    """A run was cancelled while it ran (from the workbench): the trial running was stopped, the finished
    trials are stored and the run can be resumed."""

    exit_code = 130


class StoreFull(StoreError):
    """The database's disk (or its size limit) is full; what was committed before stays."""


class ArtifactsError(InferlabError):
    """The folder where trials keep their files (LoadGen logs, accuracy outputs) cannot be written."""


class RunStopped(InferlabError):
    """A run stopped because its environment failed (disk full, folder read-only); the finished trials are
    stored and the run can be resumed once the cause is fixed."""

    def __init__(self, message: str, run_id: str = "", kept: int = 0, total: int = 0) -> None:
        super().__init__(message)
        self.run_id, self.kept, self.total = run_id, kept, total


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message cut to its first line, for a one-line error; its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class DatasetError(InferlabError):
    """A dataset file, image or annotation is missing, corrupt or does not fit the model."""


class OptimizeError(InferlabError):
    """A model cannot be converted or quantized as asked."""


class ClusterError(InferlabError):
    """The Ray cluster cannot be reached, or none of its nodes can take a trial."""
