"""The winner of a tuning as a ready experiment config (`inferlab tune ... --emit best.yaml`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from inferlab.config.schema import Experiment
from inferlab.models.artifact import Artifact
from inferlab.tune.space import Point
from inferlab.tune.spec import UNIT


def snippet(exp: Experiment, artifact: Artifact, point: Point, mode: str, values: tuple[float, ...]) -> dict[str, Any]:
    """An experiment that measures the winning configuration: its model file, knobs set away from their
    defaults, device, batch and mode; the measure settings and dataset of the tuning come along."""
    entry = exp.models[0]
    model: dict[str, Any] = entry.model_dump(mode="json", exclude_defaults=True)
    model["path"] = artifact.ref
    if point.precision != "fp32":
        model["name"] = f"{entry.display_name()}-{point.precision}"
    model.pop("alternates", None)
    knobs = point.knobs()
    out: dict[str, Any] = {
        "name": f"{exp.name}-best", "models": [model],
        "backends": [{"name": point.backend, **({"params": knobs} if knobs else {})}],
        "devices": [point.device], "batch": point.batch, "mode": mode,
    }
    measure = exp.measure.model_dump(mode="json", exclude_defaults=True)
    if measure:
        out["measure"] = measure
    if exp.dataset is not None:
        out["dataset"] = exp.dataset.model_dump(mode="json", exclude_defaults=True)
        out["accuracy"] = {"with_speed": True}
    tc = exp.tune
    if tc is not None:
        out["_tuned"] = {o: f"{v:.5g} {UNIT.get(o, 'ms')}" for o, v in zip(tc.objectives, values, strict=False)}
    return out


def text(data: dict[str, Any], base: Path) -> str:
    """The snippet as YAML, its files named relative to `base` (the folder the config will be read from, as
    configs resolve them); what it achieved goes in a comment, so the text loads as a config."""
    data = dict(data)
    tuned = data.pop("_tuned", {})
    data["models"] = [{**m, "path": _relative(m["path"], base)} for m in data.get("models", [])]
    if data.get("dataset"):
        data["dataset"] = {k: _relative(v, base) if k in ("path", "labels", "annotations") and v else v
                           for k, v in data["dataset"].items()}
    head = "# the best configuration inferlab tune found"
    if tuned:
        head += ": " + ", ".join(f"{k} {v}" for k, v in tuned.items())
    return head + "\n" + yaml.safe_dump(data, sort_keys=False)


def _relative(path: str, base: Path) -> str:
    return os.path.relpath(path, base.resolve()) if Path(path).is_absolute() else path


def write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(text(data, path.resolve().parent))
