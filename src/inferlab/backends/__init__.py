"""Runtimes, one module each, found through the `inferlab.backends` entry-point group."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from inferlab.backends.base import Backend, Knob, LayerTiming, Session, SessionInfo
from inferlab.errors import BackendError, did_you_mean
from inferlab.records.trial import Scalar

GROUP = "inferlab.backends"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def names() -> list[str]:
    return sorted(_entry_points())


@cache
def get(name: str) -> Backend:
    """The backend registered under `name`; raises naming the value and the nearest name."""
    eps = _entry_points()
    if name not in eps:
        raise BackendError(f"'{name}' is not a backend" + (did_you_mean(name, eps) or f"; choose from {sorted(eps)}"))
    cls = eps[name].load()
    backend: Backend = cls()
    if backend.name != name:
        raise BackendError(f"entry point '{name}' loads a backend named '{backend.name}'; the names must agree")
    return backend


def non_default(name: str, device: str, params: Iterable[tuple[str, Scalar]]) -> dict[str, Scalar]:
    """The knobs of `params` set away from the backend's defaults (all of them for an unknown backend)."""
    try:
        defaults = {k: knob.default for k, knob in get(name).knobs(device).items()}
    except BackendError:
        defaults = {}
    missing = object()
    return {k: v for k, v in params if defaults.get(k, missing) != v}


__all__ = ["Backend", "Knob", "LayerTiming", "Session", "SessionInfo", "get", "names", "non_default"]
