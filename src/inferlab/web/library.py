"""The server's data folder: models imported by upload, each kept under `models/<hash>/` (its content hash,
never a name the upload chose), with the name it was uploaded under kept as data. Uploads are streamed to a
scratch file with a size limit, hashed, checked by the model reader of inferlab (no Python is imported from
them), then moved into place."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from inferlab.api import queries
from inferlab.api.queries import Lineage
from inferlab.errors import ModelError
from inferlab.models.artifact import resolve
from inferlab.web.problems import Problem

SUFFIXES = {".onnx": "onnx", ".xml": "openvino", ".pt2": "torch-export"}
CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredModel:
    hash: str
    name: str            # the uploaded file's stem, for people (never a path)
    format: str
    path: str            # relative to the data folder: what a config names
    size: int
    parent: str | None = None   # the model it was derived from (hash), for lineage
    content_hash: str | None = None  # the model's identity in results and lineage (sha256 of its files)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def display_name(filename: str | None) -> str:
    stem = Path(filename or "model").stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80] or "model"


def _save(upload: BinaryIO, target: Path, limit: int, what: str) -> str:
    """Stream an upload to `target` (a scratch file), stopping at `limit` bytes; return its sha256."""
    h = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise Problem(413, f"{what} is larger than this server's limit of {limit / 2**20:g} MB "
                                   "(inferlab serve --max-upload-mb raises it)")
            h.update(chunk)
            out.write(chunk)
    if size == 0:
        raise Problem(422, f"{what} is empty")
    return h.hexdigest()


def scratch_folder(data_dir: Path) -> Path:
    """A new folder under the data folder's `incoming/` where an upload lands until it is checked."""
    (data_dir / "incoming").mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=data_dir / "incoming"))


class Library:
    """Models imported by upload, and the models inferlab derived from them (a tuning's INT8, a quantization)
    whose files it wrote into the data folder, listed with their parent's key."""

    def __init__(self, data_dir: Path, limit: int, db: str | None) -> None:
        self.root = data_dir
        self.limit = limit
        self.db = db
        self.models_dir = data_dir / "models"


    def import_model(self, name: str | None, main: BinaryIO, weights: BinaryIO | None = None) -> StoredModel:
        """Import an .onnx, a .pt2, or an OpenVINO .xml with its .bin (`weights`)."""
        suffix = Path(name or "").suffix.lower()
        if suffix not in SUFFIXES:
            raise Problem(415, f"file '{display_name(name)}{suffix}': import an .onnx, an OpenVINO .xml with its "
                               ".bin, or a torch.export .pt2 (Python modules and factories are not accepted)")
        if suffix == ".xml" and weights is None:
            raise Problem(422, "an OpenVINO model needs its .bin weights: upload the .xml and the .bin together")
        scratch = scratch_folder(self.root)
        try:
            main_path = scratch / f"model{suffix}"
            digest = _save(main, main_path, self.limit, "the model file")
            h = hashlib.sha256(digest.encode())
            if suffix == ".xml":
                assert weights is not None
                h.update(_save(weights, scratch / "model.bin", self.limit, "the .bin weights").encode())
            elif weights is not None:
                raise Problem(422, f"only an OpenVINO .xml takes a weights file; a {suffix} model is one file")
            key = h.hexdigest()[:16]
            try:
                artifact = resolve(display_name(name), str(main_path))  # parsed as a model, never imported
            except ModelError as exc:
                raise Problem(422, f"file '{display_name(name)}{suffix}': "
                                   f"{str(exc).split(': ', 1)[-1]}") from None
            folder = self.models_dir / key
            if not folder.exists():
                folder.parent.mkdir(parents=True, exist_ok=True)
                scratch.rename(folder)
            model = StoredModel(key, display_name(name), SUFFIXES[suffix], f"models/{key}/model{suffix}",
                                sum(f.stat().st_size for f in folder.glob("model.*")), content_hash=artifact.hash)
            meta = folder / "meta.json"
            if not meta.exists():
                meta.write_text(json.dumps(model.to_json()))
            return self.model(key)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def models(self) -> list[StoredModel]:
        listed = self._listed()
        if self._adopt(listed, queries.lineages(self.db)):
            listed = self._listed()
        return listed

    def _listed(self) -> list[StoredModel]:
        if not self.models_dir.is_dir():
            return []
        out = [self._read(p) for p in sorted(self.models_dir.iterdir()) if (p / "meta.json").is_file()]
        return sorted(out, key=lambda m: m.name)

    def model(self, key: str) -> StoredModel:
        if not re.fullmatch(r"[0-9a-f]{16}", key):
            raise Problem(404, f"model '{key[:40]}': no such model; the Models page lists them")
        folder = self.models_dir / key
        if not (folder / "meta.json").is_file():
            raise Problem(404, f"model '{key}': no such model; the Models page lists them")
        return self._read(folder)

    @staticmethod
    def _read(folder: Path) -> StoredModel:
        return StoredModel(**json.loads((folder / "meta.json").read_text()))

    def file(self, model: StoredModel) -> Path:
        return self.root / model.path

    def _adopt(self, listed: list[StoredModel], every: list[Lineage]) -> bool:
        """List the models inferlab derived from models here, and from those in turn, when their files lie in
        the data folder: each by its content hash, with its parent's key. True when one was added."""
        keys = {m.content_hash: m for m in listed if m.content_hash}
        names = {m.name for m in listed}
        root = self.root.resolve()
        added = False
        for lin in every:  # oldest first: a parent is adopted before what was derived from it
            parent = keys.get(lin.parent_hash or "")
            path = Path(lin.path).resolve()
            if parent is None or lin.hash in keys or not path.is_relative_to(root) or not path.is_file():
                continue
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{parent.name}.{lin.method}")
            if name in names:  # another model derived the same way (a tuning's and a quantization's INT8)
                name = f"{name}-{lin.hash[:6]}"
            names.add(name)
            model = StoredModel(lin.hash[:16], name, lin.format, str(path.relative_to(root)), lin.size_bytes,
                                parent.hash, lin.hash)
            (self.models_dir / model.hash).mkdir(parents=True, exist_ok=True)
            (self.models_dir / model.hash / "meta.json").write_text(json.dumps(model.to_json()))
            keys[lin.hash] = model
            added = True
        return added


@dataclass(frozen=True)
class StoredDataset:
    hash: str            # the first 16 hex digits of the dataset's content hash (samples and annotations)
    name: str            # the archive's stem, for people
    format: str          # imagenet, voc or coco
    path: str            # relative to the data folder: what a config's dataset.path names
    labels: str | None   # the class-names file (relative), when the archive has one
    samples: int
    classes: int
    class_names: list[str]
    size: int            # bytes unpacked
    content_hash: str
    previews: list[str]  # the first samples' images (relative)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class Datasets:
    """Dataset archives imported into the data folder, each under `datasets/<content hash>/`."""

    def __init__(self, data_dir: Path, upload_limit: int, unpacked_limit: int) -> None:
        self.root = data_dir
        self.folder = data_dir / "datasets"
        self.upload_limit, self.unpacked_limit = upload_limit, unpacked_limit

    def import_archive(self, name: str | None, upload: BinaryIO) -> StoredDataset:
        from inferlab.api.datasets import describe_dataset
        from inferlab.errors import DatasetError
        from inferlab.web.archives import unpack

        filename = Path(name or "dataset").name
        if not filename.lower().endswith((".zip", ".tar", ".tar.gz", ".tgz")):
            raise Problem(415, f"file '{display_name(filename)}': import a dataset as a .zip, .tar, .tar.gz or "
                               ".tgz archive")
        scratch = scratch_folder(self.root)
        try:
            archive = scratch / "archive"
            _save(upload, archive, self.upload_limit, "the archive")
            unpacked = scratch / "data"
            unpacked.mkdir()
            unpack(archive, filename, unpacked, self.unpacked_limit)
            archive.unlink()
            top = [p for p in unpacked.iterdir() if not p.name.startswith(("__MACOSX", "."))]
            root = top[0] if len(top) == 1 and top[0].is_dir() else unpacked
            labels = root / "labels.txt" if (root / "labels.txt").is_file() else None
            try:
                info = describe_dataset(root, labels)
            except DatasetError as exc:
                where = str(exc).replace(str(unpacked) + "/", "").replace(str(unpacked), filename)
                raise Problem(422, f"{filename}: {where.splitlines()[0]}") from None
            key = info.hash[:16]
            folder = self.folder / key
            rel = root.relative_to(scratch)
            if not folder.exists():
                folder.parent.mkdir(parents=True, exist_ok=True)
                scratch.rename(folder)
                base = folder / rel

                def inside(p: str) -> str:
                    return str((base / Path(p).relative_to(root)).relative_to(self.root))

                size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                ds = StoredDataset(key, display_name(filename.split(".")[0]), info.format,
                                   str(base.relative_to(self.root)),
                                   inside(str(labels)) if labels else None, info.samples, len(info.classes),
                                   list(info.classes[:50]), size, info.hash, [inside(f) for f in info.sample_files])
                (folder / "meta.json").write_text(json.dumps(ds.to_json()))
            return self.dataset(key)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def datasets(self) -> list[StoredDataset]:
        if not self.folder.is_dir():
            return []
        return sorted((self._read(p) for p in self.folder.iterdir() if (p / "meta.json").is_file()),
                      key=lambda d: d.name)

    def dataset(self, key: str) -> StoredDataset:
        if not re.fullmatch(r"[0-9a-f]{16}", key) or not (self.folder / key / "meta.json").is_file():
            raise Problem(404, f"dataset '{key[:40]}': no such dataset; the Datasets page lists them")
        return self._read(self.folder / key)

    @staticmethod
    def _read(folder: Path) -> StoredDataset:
        return StoredDataset(**json.loads((folder / "meta.json").read_text()))

    def preview(self, key: str, index: int) -> Path:
        ds = self.dataset(key)
        if not 0 <= index < len(ds.previews):
            raise Problem(404, f"dataset {ds.name}: preview {index} does not exist (0..{len(ds.previews) - 1})")
        return self.root / ds.previews[index]
