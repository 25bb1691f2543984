"""Unpacking an uploaded dataset archive (.zip, .tar, .tar.gz, .tgz) safely: every member is checked before
anything is written — no absolute path, no '..', no link, device or other special file — and the unpacked
size and the number of members are bounded, so an archive can neither write outside its folder nor fill the
disk."""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from inferlab.web.problems import Problem

MAX_MEMBERS = 200_000


def _safe_name(name: str, archive: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if not p.parts or p.parts == (".",):
        raise Problem(422, f"{archive}: a member has no name; refused")
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise Problem(422, f"{archive}: member '{name[:120]}' has an absolute path; an archive's members are "
                           "relative to it")
    if ".." in p.parts:
        raise Problem(422, f"{archive}: member '{name[:120]}' leads outside the archive ('..'); refused")
    return p


def _check_total(total: int, count: int, limit: int, archive: str) -> None:
    if count > MAX_MEMBERS:
        raise Problem(413, f"{archive}: more than {MAX_MEMBERS} members; split the dataset")
    if total > limit:
        raise Problem(413, f"{archive}: unpacks to more than {limit / 2**20:g} MB, this server's limit for a "
                           "dataset")


def unpack(archive: Path, name: str, target: Path, limit: int) -> None:
    """Unpack `archive` (uploaded as `name`) into the empty folder `target`, refusing any unsafe member."""
    lower = name.lower()
    if lower.endswith(".zip"):
        _unzip(archive, name, target, limit)
    elif lower.endswith((".tar", ".tar.gz", ".tgz")):
        _untar(archive, name, target, limit)
    else:
        raise Problem(415, f"file '{name[:120]}': import a dataset as a .zip, .tar, .tar.gz or .tgz archive")


def _unzip(archive: Path, name: str, target: Path, limit: int) -> None:
    try:
        z = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise Problem(422, f"{name}: not a readable zip archive") from None
    with z:
        members = z.infolist()
        total = 0
        for m in members:  # every member checked before any is written
            _safe_name(m.filename, name)
            kind = stat.S_IFMT(m.external_attr >> 16)  # 0 where the writer recorded no type
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise Problem(422, f"{name}: member '{m.filename[:120]}' is a link or special file; refused")
            total += m.file_size
            _check_total(total, len(members), limit, name)
        for m in members:
            dest = target.joinpath(*_safe_name(m.filename, name).parts)
            if m.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with z.open(m) as src, dest.open("wb") as out:  # the sizes a zip declares are checked as it unpacks
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > m.file_size:
                        raise Problem(422, f"{name}: member '{m.filename[:120]}' is larger than it declares")
                    out.write(chunk)


def _untar(archive: Path, name: str, target: Path, limit: int) -> None:
    try:
        t = tarfile.open(archive)  # noqa: SIM115 (closed by the with below; its failure is named first)
    except (tarfile.TarError, OSError):
        raise Problem(422, f"{name}: not a readable tar archive") from None
    with t:
        members = t.getmembers()
        total = 0
        for m in members:
            _safe_name(m.name, name)
            if not (m.isfile() or m.isdir()):
                raise Problem(422, f"{name}: member '{m.name[:120]}' is a link or special file; refused")
            total += m.size
            _check_total(total, len(members), limit, name)
        for m in members:
            dest = target.joinpath(*_safe_name(m.name, name).parts)
            if m.isdir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = t.extractfile(m)
            assert src is not None
            with src, dest.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
