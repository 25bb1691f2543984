"""Load an experiment from YAML: every problem becomes one ConfigError line naming the file and field."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError, did_you_mean


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema class that holds the field at `loc` (to list what keys are allowed there)."""
    current: Any = cls
    containers = 0  # list indexes / dict keys still to pass before the next field name
    for part in loc:
        if containers:
            containers -= 1
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = current.model_fields[part].annotation
        # unwrap list[X], dict[str, X], X | None down to a model class, counting the containers passed
        while typing.get_origin(current) is not None or isinstance(current, types.UnionType):
            if typing.get_origin(current) in (list, dict):
                containers += 1
            args = [a for a in typing.get_args(current) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            current = models[0] if models else (args[-1] if args else None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _message(err: dict[str, Any], source: str) -> str:
    loc = tuple(err.get("loc", ()))
    where = _loc(loc)
    if err.get("type") == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        parent = _model_at(Experiment, loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = did_you_mean(key, allowed) or (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        return f"{source}: {where}: unknown key '{key}'{hint}"
    if err.get("type") == "missing":
        return f"{source}: {where} is required"
    value = err.get("input")
    scalar = (str, int, float, bool)
    simple = isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))
    shown = repr(value) if simple else type(value).__name__
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{source}: {where}: {msg} (got {shown[:60]})"


def load_text(text: str, source: str = "<config>") -> Experiment:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{at}; check indentation and quoting") from exc
    return from_data(data, source)


def from_data(data: Any, source: str = "<config>") -> Experiment:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with 'models' and 'backends'")
    if "backends" not in data and "tune" not in data:  # only a tuning may leave the backends open
        raise ConfigError(f"{source}: backends is required")
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_message(dict(errors[0]), source) + more) from None
    except (TypeError, ValueError) as exc:  # non-string keys and other shapes pydantic refuses outright
        raise ConfigError(f"{source}: {exc}") from None


def load(path: str | Path) -> Experiment:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the config ({exc.__class__.__name__})") from None
    exp = load_text(text, str(p))
    exp._source = p.resolve()
    return exp
