"""Load an experiment from YAML: every problem becomes one ConfigError line naming the file and field."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from inferlab.config.schema import Experiment
from inferlab.config.words import flag_for
from inferlab.errors import ConfigError, did_you_mean


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and _UNION_TAG.match(part):
            continue  # pydantic names the member of a union it tried ("literal[...]", "list[...]"): not a field
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


_UNION_TAG = re.compile(r"^(literal|list|dict|tuple|function-\w+|union|nullable|str|int|float|bool|none)(\[.*\])?$")


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


def _message(err: dict[str, Any], source: str, command: str | None) -> str:
    loc = tuple(err.get("loc", ()))
    where = _loc(loc)
    if command is not None:  # built from command-line flags: name the flag, not a config field
        return _message(err, "", None).replace(f": {where}", flag_for(where) or where, 1).lstrip(": ")
    if err.get("type") == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        parent = _model_at(Experiment, loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = did_you_mean(key, allowed) or (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        return f"{source}: {where}: unknown key '{key}'{hint}"
    if err.get("type") == "missing":
        return f"{source}: {where} is required"
    if err.get("type") == "too_short":
        return f"{source}: {where}: an empty list; give at least one value"
    if err.get("type") in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"{source}: {where}: {err.get('input')!r} is not one of {expected}"
    value = err.get("input")
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    key, sep, rest = msg.partition(": ")
    if sep and isinstance(value, dict) and key in value:  # a validator of a mapping names the key at fault
        where, msg, value = f"{where}.{key}", rest, value[key]
    scalar = (str, int, float, bool)
    simple = isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))
    if not simple or repr(value) in msg:
        return f"{source}: {where}: {msg}"
    return f"{source}: {where}: {msg} (got {repr(value)[:60]})"


def load_text(text: str, source: str = "<config>") -> Experiment:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{at}; check indentation and quoting") from exc
    return from_data(data, source)


def from_data(data: Any, source: str = "<config>", command: str | None = None) -> Experiment:
    """Validate a config's data. `command`: the command line that built it from flags (`bench`), so errors
    name flags instead of config fields."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with 'models' and 'backends'")
    if "backends" not in data and "tune" not in data:  # only a tuning may leave the backends open
        raise ConfigError(f"{source}: backends is required")
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_message(dict(errors[0]), source, command) + more) from None
    except (TypeError, ValueError) as exc:  # non-string keys and other shapes pydantic refuses outright
        raise ConfigError(f"{source}: {exc}") from None
    exp._command = command
    return exp


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
