"""Versions of the stored result record: each stored TrialResult JSON carries `version`, and an older record
is brought up to date one version at a time by the upgrade functions here (as airspeed velocity does)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from inferlab.errors import StoreError

RESULT_VERSION = 2


def _model_rel(spec: dict[str, Any]) -> None:
    model = spec.get("model") or {}
    if not model.get("rel"):
        ref = str(model.get("ref", ""))
        model["rel"] = ref if model.get("format") == "torch-factory" else PurePath(ref).name


def _v1_to_v2(d: dict[str, Any]) -> None:
    """Version 1 (wave 1, no `version` field) named models by absolute path only; version 2 adds the path
    relative to the experiment (`rel`), which trial keys use. A v1 record gets the file's name."""
    _model_rel(d["spec"])


UPGRADES: dict[int, Callable[[dict[str, Any]], None]] = {1: _v1_to_v2}


def upgrade_result(d: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stored result record at RESULT_VERSION (records without `version` are version 1)."""
    out = copy.deepcopy(d)
    version = int(out.get("version") or 1)
    if version > RESULT_VERSION:
        raise StoreError(f"a stored result has record version {version}, newer than this inferlab reads "
                         f"({RESULT_VERSION}); upgrade inferlab to read it")
    while version < RESULT_VERSION:
        UPGRADES[version](out)
        version += 1
    out["version"] = version
    return out


def upgrade_spec(d: dict[str, Any]) -> dict[str, Any]:
    """A stored spec (a trial row's own copy, which carries no version) in today's shape."""
    out = copy.deepcopy(d)
    _model_rel(out)
    return out
