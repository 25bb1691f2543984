"""The input flags of `bench`: --shape, --input and --batch-axis, parsed into a config's `inputs` settings.

    --shape images=1x3x640x640     --shape 1x3x224x224 (a one-input model)     --shape images[1,3,640,640]
    --input sr=16000               --input ids=0..999                         --input images=pics/ (or x.npy)
    --batch-axis state=1           --batch-axis sr=none
"""

from __future__ import annotations

import re
from typing import Any

from inferlab.errors import ConfigError

_NUMBER = r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
_BRACKETED = re.compile(r"\s*([^\[\],=]*?)\s*\[([^\]]*)\]\s*,?")


def _dims(text: str, flag: str, whole: str) -> list[int]:
    parts = [p.strip() for p in re.split(r"[x,]", text.strip().strip("[]")) if p.strip()] if text.strip("[] ") else []
    out = []
    for p in parts:
        if p in ("?", "-1"):
            out.append(-1)
        elif p.isdigit() and int(p) > 0:
            out.append(int(p))
        else:
            raise ConfigError(f"{flag} '{whole}': '{p}' is not a dimension; write positive sizes separated by x, "
                              "with ? for one to leave to the batch, e.g. --shape images=1x3x640x640")
    return out


def parse_shapes(values: list[str]) -> dict[str, list[int]]:
    """NAME=1x3x224x224, NAME[1,3,224,224] (benchmark_app's form, several comma-separated), or a bare shape
    (name '' : the model's only input)."""
    out: dict[str, list[int]] = {}
    for text in values:
        if "=" in text:
            name, _, dims = text.partition("=")
            out[name.strip()] = _dims(dims, "--shape", text)
        elif re.fullmatch(r"(\s*[^\[\],=]*\[[^\]]*\]\s*,?)+", text) and not text.strip().startswith("["):
            for m in _BRACKETED.finditer(text):
                out[m.group(1)] = _dims(m.group(2), "--shape", text)
        else:
            out[""] = _dims(text, "--shape", text)
    return out


def parse_value(text: str) -> dict[str, Any]:
    """A constant (16000, 0.5, true), a range LOW..HIGH, or a path to real data."""
    t = text.strip()
    if t.lower() in ("true", "false"):
        return {"value": 1.0 if t.lower() == "true" else 0.0}
    if re.fullmatch(_NUMBER, t):
        return {"value": float(t)}
    m = re.fullmatch(f"({_NUMBER})\\.\\.({_NUMBER})", t)
    if m:
        return {"range": [float(m.group(1)), float(m.group(5))]}
    return {"data": t}


def parse_inputs(values: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep:
            name, value = "", text
        if not value.strip():
            raise ConfigError(f"--input '{text}': give a value, LOW..HIGH or a path after '=', "
                              "e.g. --input sr=16000")
        out.setdefault(name.strip(), {}).update(parse_value(value))
    return out


def parse_batch_axes(values: list[str]) -> dict[str, int | str]:
    out: dict[str, int | str] = {}
    for text in values:
        name, sep, axis = text.partition("=")
        a = axis.strip().lower()
        if not sep or not name.strip() or not (a.isdigit() or a == "none"):
            raise ConfigError(f"--batch-axis '{text}': write NAME=AXIS (0, 1, ...) or NAME=none, "
                              "e.g. --batch-axis state=1")
        out[name.strip()] = int(a) if a.isdigit() else "none"
    return out


def input_settings(shape: list[str] | None, inputs: list[str] | None,
                   batch_axis: list[str] | None) -> dict[str, dict[str, Any]]:
    """The flags merged per input name, as a config's `inputs` mapping."""
    out: dict[str, dict[str, Any]] = {}
    for name, dims in parse_shapes(shape or []).items():
        out.setdefault(name, {})["shape"] = dims
    for name, settings in parse_inputs(inputs or []).items():
        out.setdefault(name, {}).update(settings)
    for name, axis in parse_batch_axes(batch_axis or []).items():
        out.setdefault(name, {})["batch_axis"] = axis
    return out
