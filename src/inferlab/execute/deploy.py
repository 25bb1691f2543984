"""Deployment of a trial's files to a cluster node: the model (an IR with its weights), a dataset folder or
file, input data and a LoadGen user.conf travel as deterministic zip bundles keyed by their content hash, are
unpacked once into the node's cache, and the trial's spec is rewritten to the node's copies (its key does not
change: keys know no absolute path)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from inferlab.records.trial import TrialSpec

_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same files give the same bundle and key


def node_cache() -> Path:
    """Where a node keeps shipped files: INFERLAB_NODE_CACHE, else ~/.cache/inferlab/node."""
    return Path(os.environ.get("INFERLAB_NODE_CACHE") or Path.home() / ".cache" / "inferlab" / "node")


def spec_paths(spec: TrialSpec) -> list[Path]:
    """The host paths a trial reads: its model file (an ensemble's: each member's), dataset path, labels and
    annotations, input data files, a user.conf. Each becomes one bundle."""
    out: list[Path] = [] if spec.model.format.value == "torch-factory" else [spec.model.path]
    if spec.accuracy is not None:
        config = spec.accuracy.dataset.config
        out += [Path(p) for p in (config.path, config.labels, config.annotations) if p]
    out += [Path(h.data) for h in spec.model.inputs if h.data]
    for m in spec.ensemble.members if spec.ensemble is not None else ():  # every member's file, not just the first
        out += ([] if m.format.value == "torch-factory" else [m.path]) + [Path(h.data) for h in m.inputs if h.data]
    if spec.loadgen is not None and spec.loadgen.user_conf:
        out.append(Path(spec.loadgen.user_conf))
    return [p for p in dict.fromkeys(out) if p.exists()]


def _members(path: Path) -> Iterator[tuple[str, Path]]:
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            if f.is_file():
                yield f"{path.name}/{f.relative_to(path).as_posix()}", f
        return
    yield path.name, path
    if path.suffix.lower() == ".xml" and path.with_suffix(".bin").is_file():  # an IR's weights beside it
        yield path.with_suffix(".bin").name, path.with_suffix(".bin")


def pack(path: Path) -> tuple[str, bytes]:
    """A deterministic zip of a file (an IR: with its .bin) or folder, and its content key."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        for name, f in _members(path):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = 0o644 << 16
            with f.open("rb") as src, z.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    blob = buffer.getvalue()
    return hashlib.sha256(blob).hexdigest()[:32], blob


def cached(key: str, name: str) -> Path | None:
    """The node's copy of bundle `key` (its top entry `name`), if it was unpacked before."""
    folder = node_cache() / key
    return folder / name if (folder / ".complete").is_file() else None


def unpack(key: str, name: str, blob: bytes) -> Path:
    """Unpack a bundle into the node's cache (atomically: a half-written bundle is never used) and return
    the path of its top entry `name`."""
    root = node_cache()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / key
    if not (folder / ".complete").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            for member in z.namelist():  # our own bundles; still, never write outside the folder
                if member.startswith("/") or ".." in Path(member).parts:
                    raise ValueError(f"bundle {key}: unsafe member name {member!r}")
            z.extractall(tmp)
        (tmp / ".complete").write_text(key)
        try:
            tmp.rename(folder)
        except OSError:  # another trial unpacked it first
            shutil.rmtree(tmp, ignore_errors=True)
    return folder / name


def rewrite(value: Any, change: Callable[[str], str]) -> Any:
    """A copy of a JSON value with every string passed through `change`."""
    if isinstance(value, dict):
        return {k: rewrite(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, change) for v in value]
    return change(value) if isinstance(value, str) else value


def localise(spec_json: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The spec JSON with every host path in `mapping` replaced by the node's copy."""
    out = rewrite(spec_json, lambda s: mapping.get(s, s))
    assert isinstance(out, dict)
    return out


def rebase(value: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """A copy of a JSON record with the paths under folder `old` moved under `new`."""
    out = rewrite(value, lambda s: new + s[len(old):] if s.startswith(old) else s)
    assert isinstance(out, dict)
    return out


def pack_folder(folder: Path) -> bytes | None:
    """A trial's artifacts folder on a node (LoadGen logs, accuracy outputs), zipped to travel back."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    return pack(folder)[1]


def unpack_folder(blob: bytes, dest: Path) -> None:
    """Unpack a trial's artifacts folder, shipped back from its node, into `dest` (the head's folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        for info in z.infolist():
            parts = Path(info.filename).parts[1:]  # drop the node folder's own name
            if not parts or ".." in parts or info.filename.startswith("/"):
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)
