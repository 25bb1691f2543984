"""Load an experiment from YAML: every problem becomes one ConfigError line naming the file and field. Sizes are
bounded before anything is validated (file, lists, strings, nesting), so a runaway config fails at once."""

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
from inferlab.records.analysis import PROFILES

MAX_CONFIG_BYTES = 1 << 20   # a config file (1 MiB): hundreds of times what a real experiment takes
MAX_ITEMS = 1000             # items of any one list, keys of any one mapping
MAX_STRING = 4096            # characters of any string or key (PATH_MAX: a path fits)
MAX_VALUES = 100_000         # values in the whole config, YAML aliases expanded (an alias bomb stops here)
MAX_DEPTH = 32               # nesting of mappings and lists (a real config is a few levels deep)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and (_UNION_TAG.match(part) or part in _BRANCHES):
            continue  # pydantic names the member of a union it tried ("literal[...]", "list[...]"): not a field
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


_UNION_TAG = re.compile(r"^(literal|list|dict|tuple|function-\w+|union|nullable|str|int|float|bool|none)(\[.*\])?$")
# the schema's classes: pydantic names a union's model branch by its class (ensemble.EnsembleEntry.members)
_BRANCHES = frozenset({"EnsembleEntry"})


def _model_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema class that holds the field at `loc` (to list what keys are allowed there)."""
    current: Any = cls
    containers = 0  # list indexes / dict keys still to pass before the next field name
    for part in loc:
        if containers:
            containers -= 1
            continue
        if isinstance(part, str) and (part in _BRANCHES or _UNION_TAG.match(part)):  # a union's branch
            containers += part.startswith(("list[", "dict["))
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


# "this branch of a union does not take that shape": noise beside the error of the branch that fits the input
_WRONG_BRANCH = frozenset({"list_type", "dict_type", "model_type", "model_attributes_type"})


def _relevant(errors: list[Any]) -> list[Any]:
    """The errors worth reporting: a field that takes one value or a list of them (`ensemble`, `batch`) fails
    in both branches; the branch that does not fit the input's shape only says so."""
    fitting = [e for e in errors if e.get("type") not in _WRONG_BRANCH]
    return fitting or errors


def _message(err: dict[str, Any], source: str, command: str | None) -> str:
    loc = tuple(err.get("loc", ()))
    where = _loc(loc)
    if command is not None:  # built from command-line flags: name the flag, not a config field
        line = _message(err, "", None).removeprefix(": ")
        # the field the line names: up to ": ", or up to " is required"; it may go deeper than `where` (a
        # validator of a mapping names the key at fault: backends[0].params.KNOB)
        path, sep, rest = line.partition(": ")
        if " " in path:
            path, sep, rest = line.partition(" ")
        return f"{flag_for(path) or path}{sep}{rest}"
    if err.get("type") == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        parent = _model_at(Experiment, loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = did_you_mean(key, allowed) or (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        return f"{source}: {where}: unknown key '{key}'{hint}"
    if err.get("type") == "missing":
        return f"{source}: {where} is required"
    if err.get("type") == "too_short":
        least = int(err.get("ctx", {}).get("min_length") or 1)
        if least > 1:
            n = len(err.get("input") or ())
            return f"{source}: {where}: {n} item{'s' * (n != 1)}; give at least {least}"
        return f"{source}: {where}: an empty list; give at least one value"
    if err.get("type") == "too_long":  # a list over its own limit
        limit, n = err.get("ctx", {}).get("max_length"), len(err.get("input") or ())
        return f"{source}: {where}: a list of {n:,} items; at most {limit:,} are allowed"
    if err.get("type") == "string_too_long":
        limit, n = err.get("ctx", {}).get("max_length"), len(str(err.get("input", "")))
        return f"{source}: {where}: {n:,} characters; at most {limit:,} are allowed, give a shorter one"
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
    if not simple or repr(value) in msg or value == []:
        return f"{source}: {where}: {msg}"
    return f"{source}: {where}: {msg} (got {repr(value)[:60]})"


def _too_large(source: str, size: int | None, what: str = "config") -> ConfigError:
    """`size` None: more than the limit (read from a pipe, whose size is not known)."""
    is_ = f"is {size:,} bytes" if size is not None else f"is more than {MAX_CONFIG_BYTES:,} bytes"
    return ConfigError(f"{source}: the {what} {is_}; at most {MAX_CONFIG_BYTES:,} (1 MiB) are allowed: list "
                       "fewer values, or split it into several experiments")


def check_sizes(data: Any, source: str = "<config>", command: str | None = None) -> None:
    """Refuse a config whose lists, mappings, strings, nesting or total size pass the limits, naming the field
    (or, from `bench` flags, the flag) and the limit, before validation walks it."""
    budget = MAX_VALUES

    def at(loc: tuple[Any, ...]) -> str:
        where = _loc(loc)
        return (flag_for(where) or where) if command is not None else f"{source}: {where}"

    def walk(node: Any, loc: tuple[Any, ...]) -> None:
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise ConfigError(f"{'' if command is not None else source + ': '}more than {MAX_VALUES:,} values "
                              "(with YAML aliases expanded); at most that many are allowed in one config")
        if len(loc) > MAX_DEPTH:
            raise ConfigError(f"{at(loc[:MAX_DEPTH])}: nested more than {MAX_DEPTH} levels deep; a config is a "
                              "few levels of mappings and lists")
        if isinstance(node, str):
            if len(node) > MAX_STRING:
                raise ConfigError(f"{at(loc)}: a string of {len(node):,} characters; at most {MAX_STRING:,} are "
                                  "allowed")
        elif isinstance(node, (list, tuple)):
            if len(node) > MAX_ITEMS:
                raise ConfigError(f"{at(loc)}: a list of {len(node):,} items; at most {MAX_ITEMS:,} are allowed: "
                                  "sweep fewer values, or split the experiment")
            for i, item in enumerate(node):
                walk(item, (*loc, i))
        elif isinstance(node, dict):
            if len(node) > MAX_ITEMS:
                raise ConfigError(f"{at(loc)}: {len(node):,} keys; at most {MAX_ITEMS:,} are allowed")
            for key, value in node.items():
                if isinstance(key, str) and len(key) > MAX_STRING:
                    raise ConfigError(f"{at(loc)}: a key of {len(key):,} characters; at most {MAX_STRING:,} "
                                      "are allowed")
                walk(value, (*loc, key if isinstance(key, str) else str(key)))

    walk(data, ())


def load_text(text: str, source: str = "<config>") -> Experiment:
    if len(text) > MAX_CONFIG_BYTES or len(text.encode(errors="surrogatepass")) > MAX_CONFIG_BYTES:
        raise _too_large(source, len(text.encode(errors="surrogatepass")), "config text")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{at}; check indentation and quoting") from exc
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read; a config is a few levels of mappings and "
                          "lists") from None
    except ValueError as exc:  # a value YAML parses but Python refuses, e.g. an integer of 5,000 digits
        raise ConfigError(f"{source}: a value cannot be read ({str(exc).split(';')[0]}); check the numbers "
                          "in the file") from None
    return from_data(data, source)


def from_data(data: Any, source: str = "<config>", command: str | None = None) -> Experiment:
    """Validate a config's data. `command`: the command line that built it from flags (`bench`), so errors
    name flags instead of config fields."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with 'models' and 'backends'")
    check_sizes(data, source, command)
    if "backends" not in data and "tune" not in data:  # only a tuning may leave the backends open
        raise ConfigError(f"{source}: backends is required")
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        errors = _relevant(exc.errors())
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_message(dict(errors[0]), source, command) + more) from None
    except (TypeError, ValueError) as exc:  # non-string keys and other shapes pydantic refuses outright
        raise ConfigError(f"{source}: {exc}") from None
    exp._command = command
    return exp


def load(path: str | Path) -> Experiment:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise _too_large(str(p), size, "config file")
        with p.open() as f:  # a pipe or device has no size: read one character past the limit at most
            text = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the config ({exc.__class__.__name__})") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise _too_large(str(p), None, "config file")
    exp = load_text(text, str(p))
    exp._source = p.resolve()
    return exp


def with_profiles(exp: Experiment, profiles: list[str]) -> Experiment:
    """The experiment with the analyses `--profile` asks for added to those the config names."""
    for name in profiles:
        if name not in PROFILES:
            raise ConfigError(f"--profile {name}: not an analysis{did_you_mean(name, PROFILES)}; choose "
                              f"{' or '.join(PROFILES)}")
    asked = [*exp.profiles(), *profiles]
    return exp.model_copy(update={"profile": [p for p in PROFILES if p in asked]})
