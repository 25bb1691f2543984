"""Model identity: format detection, existence and sanity checks, content hash."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from inferlab.errors import ModelError
from inferlab.models.tensors import InputHint

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ModelFormat(StrEnum):
    ONNX = "onnx"
    OPENVINO = "openvino"        # IR: .xml + .bin
    TORCH_EXPORT = "torch-export"  # torch.export.save() file (.pt2)
    TORCH_FACTORY = "torch-factory"  # "package.module:factory" returning an nn.Module
    SAVED_MODEL = "tf-saved-model"  # a TensorFlow SavedModel folder (saved_model.pb, variables/)
    KERAS = "keras"                 # a Keras 3 .keras archive
    TFLITE = "tflite"               # a LiteRT (TensorFlow Lite) flatbuffer


@dataclass(frozen=True)
class Artifact:
    """One concrete model file (or factory), with the content hash that identifies it."""

    name: str
    ref: str                      # absolute path, or "package.module:factory"
    format: ModelFormat
    hash: str                     # sha256 of the content, hex
    inputs: tuple[InputHint, ...] = field(default=())  # the user's hints, merged with the model's own
    # what names the model on any host: the path relative to the experiment's folder, else the file's name
    # (a factory: its reference); trial keys use it, never `ref`
    rel: str = ""

    def __post_init__(self) -> None:
        if not self.rel:
            portable = self.ref if self.format is ModelFormat.TORCH_FACTORY else Path(self.ref).name
            object.__setattr__(self, "rel", portable)

    @property
    def path(self) -> Path:
        return Path(self.ref)

    def files(self) -> list[Path]:
        """The files that make the model (an IR's .xml and .bin); none for a factory."""
        if self.format is ModelFormat.TORCH_FACTORY:
            return []
        if self.format is ModelFormat.SAVED_MODEL:
            return sorted(f for f in self.path.rglob("*") if f.is_file())
        return [self.path, self.path.with_suffix(".bin")] if self.format is ModelFormat.OPENVINO else [self.path]

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ref": self.ref, "format": self.format.value, "hash": self.hash,
                "inputs": [t.to_json() for t in self.inputs], "rel": self.rel}

    def identity(self) -> dict[str, object]:
        """The model as a trial's key sees it: content hash and portable path, never a host's absolute path
        (input data by its content hash)."""
        hints = [{k: v for k, v in t.to_json().items() if k != "data"} for t in self.inputs]
        return {"name": self.name, "rel": self.rel, "format": self.format.value, "hash": self.hash,
                "inputs": hints}

    @staticmethod
    def from_json(d: dict[str, object]) -> Artifact:
        inputs = d.get("inputs") or []
        assert isinstance(inputs, list)
        return Artifact(str(d["name"]), str(d["ref"]), ModelFormat(str(d["format"])), str(d["hash"]),
                        tuple(InputHint.from_json(t) for t in inputs), str(d.get("rel") or ""))


def detect_format(ref: str) -> ModelFormat:
    """Tell a reference's format from its suffix (or the module:factory form)."""
    if _FACTORY.match(ref):
        return ModelFormat.TORCH_FACTORY
    suffix = Path(ref).suffix.lower()
    if suffix == ".onnx":
        return ModelFormat.ONNX
    if suffix == ".xml":
        return ModelFormat.OPENVINO
    if suffix in (".pt2", ".pt"):
        return ModelFormat.TORCH_EXPORT
    if suffix == ".keras":
        return ModelFormat.KERAS
    if suffix == ".tflite":
        return ModelFormat.TFLITE
    if not suffix or Path(ref, "saved_model.pb").is_file():
        return ModelFormat.SAVED_MODEL
    raise ModelError(f"{ref}: unknown model format; give an .onnx file, an OpenVINO .xml (with its .bin), "
                     "a torch.export .pt2 file, a Keras .keras file, a .tflite file, a TensorFlow SavedModel "
                     "folder, or 'package.module:factory'")


def _sha256_files(paths: list[Path], root: Path | None = None) -> str:
    """The files' content hash; under `root` (a folder model), each file's path in it counts as well."""
    h = hashlib.sha256()
    for p in paths:
        if root is not None:
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _check_onnx(path: Path) -> None:
    import onnx

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelError(f"{path}: not a valid ONNX file ({type(exc).__name__}); re-export the model") from exc
    if not model.graph.node:
        raise ModelError(f"{path}: the ONNX graph has no nodes; re-export the model")


def _check_ir(path: Path) -> Path:
    import xml.etree.ElementTree as ET

    weights = path.with_suffix(".bin")
    if not weights.is_file():
        raise ModelError(f"{path}: OpenVINO IR weights {weights.name} are missing; keep the .bin beside the .xml")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ModelError(f"{path}: not a valid OpenVINO IR ({exc}); re-convert the model") from exc
    if root.tag != "net":
        raise ModelError(f"{path}: not an OpenVINO IR (root element <{root.tag}>, expected <net>)")
    return weights


def _factory_source(ref: str) -> Path:
    module_name, _, attr = ref.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise ModelError(f"{ref}: module '{module_name}' cannot be found ({exc}); check PYTHONPATH") from exc
    if spec is None or spec.origin is None:
        raise ModelError(f"{ref}: module '{module_name}' cannot be found; check the name and PYTHONPATH")
    if not attr.isidentifier():
        raise ModelError(f"{ref}: '{attr}' is not a factory name; write 'package.module:factory'")
    if not Path(spec.origin).is_file():  # built in or frozen ('os.path'): no source of a model
        raise ModelError(f"{ref}: module '{module_name}' has no source file ({spec.origin}); a factory lives in "
                         "a module of your own")
    return Path(spec.origin)


def resolve(name: str, ref: str, base_dir: Path | None = None,
            inputs: tuple[InputHint, ...] = ()) -> Artifact:
    """Turn a user's model reference into an Artifact: check it exists and is sane, hash its content."""
    fmt = detect_format(ref)
    if fmt is ModelFormat.TORCH_FACTORY:
        source = _factory_source(ref)
        digest = hashlib.sha256(source.read_bytes() + ref.encode()).hexdigest()
        return Artifact(name, ref, fmt, digest, inputs, ref)
    path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    path = path.resolve()
    rel = os.path.relpath(path, base_dir.resolve()) if base_dir is not None else path.name
    if fmt is ModelFormat.SAVED_MODEL:
        from inferlab.models.savedmodel import check_saved_model

        check_saved_model(ref, path)
        return Artifact(name, str(path), fmt, _sha256_files(sorted(f for f in path.rglob("*") if f.is_file()), path),
                        inputs, rel)
    if not path.is_file():
        raise ModelError(f"{ref}: model file not found (looked at {path}); check the path")
    files = [path]
    if fmt is ModelFormat.ONNX:
        _check_onnx(path)
    elif fmt is ModelFormat.OPENVINO:
        files.append(_check_ir(path))
    elif fmt is ModelFormat.TORCH_EXPORT:
        _check_exported(path)
    elif fmt is ModelFormat.KERAS:
        _check_keras(path)
    elif fmt is ModelFormat.TFLITE:
        _check_tflite(path)
    return Artifact(name, str(path), fmt, _sha256_files(files), inputs, rel)


def model_size(path: str | Path) -> int | None:
    """Bytes on disk of a model file (an IR's .xml plus its .bin); None when it is not a file."""
    p = Path(path)
    if p.is_dir():  # a SavedModel
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    if not p.is_file():
        return None
    files = [p, p.with_suffix(".bin")] if p.suffix == ".xml" else [p]
    return sum(f.stat().st_size for f in files if f.is_file())


_EXPORT_FIX = ("save the model with torch.export.save(torch.export.export(model, example_inputs), 'model.pt2'), "
               "or name a module factory 'package.module:factory' that returns it")


def _check_exported(path: Path) -> None:
    """A .pt/.pt2 file must be a torch.export archive; tell a pickled module, a state_dict or TorchScript apart
    from its entries (without unpickling anything) and say what to do."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        raise ModelError(f"{path}: not a torch.export archive (not even a zip file); {_EXPORT_FIX}") from None
    tails = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if "archive_format" in tails or any(t.startswith("models/") and t.endswith(".json") for t in tails) or any(
            t.endswith("serialized_exported_program.json") for t in tails):
        return
    if "constants.pkl" in tails or any(t.startswith("code/") for t in tails):
        kind = "a TorchScript module (torch.jit.save)"
    elif "data.pkl" in tails:
        kind = "a pickled module or state_dict (torch.save)"
    else:
        kind = "a zip archive torch.export did not write"
    raise ModelError(f"{path}: {kind}, not a torch.export archive; {_EXPORT_FIX}")


def _check_keras(path: Path) -> None:
    """A .keras file is a zip holding the model's config.json (Keras 3); an HDF5 .h5 or a SavedModel is not."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError):
        raise ModelError(f"{path}: not a Keras 3 .keras archive (not a zip file); save the model with "
                         "model.save('model.keras')") from None
    if "config.json" not in names:
        raise ModelError(f"{path}: a zip without config.json, not a Keras .keras archive; save the model with "
                         "model.save('model.keras')")


def _check_tflite(path: Path) -> None:
    """A .tflite file is a flatbuffer whose identifier, bytes 4 to 8, reads TFL3."""
    with path.open("rb") as f:
        head = f.read(8)
    if head[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a LiteRT/TensorFlow Lite flatbuffer (no TFL3 identifier); convert the model "
                         "with TensorFlow's TFLiteConverter")


def load_factory(ref: str) -> object:
    """Import 'package.module:factory' and call the factory."""
    module_name, _, attr = ref.partition(":")
    module = importlib.import_module(module_name)
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ModelError(f"{ref}: '{attr}' is not a callable in module '{module_name}'")
    return factory()
