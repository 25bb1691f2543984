"""The graph view's files: a model file, or the graph a runtime executes after its own optimisations (OpenVINO's
executed graph, ONNX Runtime's optimised model); analyze/netron.py shows them."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from inferlab import backends
from inferlab.backends.base import Session
from inferlab.errors import BackendError, did_you_mean
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.introspect import concrete_inputs
from inferlab.records.trial import Scalar

log = logging.getLogger(__name__)

# The runtimes whose sessions write their graph (Session.runtime_graph), named in messages only: what a runtime
# can show is its session's answer, never this list.
SHOWN_BY = "openvino, onnxruntime"


# ---- which file shows the model ------------------------------------------------------------------------------

def model_file(artifact: Artifact, batch: int = 1) -> Path:
    """The file that shows `artifact` as it is: the model file itself, or for a module factory (no file) the
    ONNX export the runtimes load."""
    if artifact.format is ModelFormat.TORCH_FACTORY:
        from inferlab.models.convert import torch_to_onnx

        return torch_to_onnx(artifact, concrete_inputs(artifact, batch))
    return artifact.path


def runtime_graph(artifact: Artifact, backend: str, device: str = "cpu", params: Mapping[str, Scalar] | None = None,
                  *, folder: Path, batch: int = 1) -> Path:
    """Load `artifact` through `backend` as a trial would (its input specs at `batch`, `params` checked and
    defaults filled) and write the graph the runtime executes into `folder` as `<model>.<kind>.<ext>`
    (`resnet_s.runtime.xml` with its .bin, `resnet_s.optimized.onnx`). Returns the file Netron opens."""
    names = backends.names()
    if backend not in names:
        raise BackendError(f"runtime '{backend}' is not a backend"
                           + (did_you_mean(backend, names) or f"; choose from {', '.join(names)}"))
    b = backends.get(backend)
    if not b.available():
        raise BackendError(f"runtime '{backend}' is not installed here; install it (pip install {b.distribution}) "
                           "or choose another runtime")
    if artifact.format not in b.formats:
        kinds = ", ".join(f.value for f in b.formats)
        raise BackendError(f"runtime '{backend}' cannot load {artifact.rel} (format {artifact.format.value}; it "
                           f"loads {kinds}); choose one that shows its graph ({SHOWN_BY}) and loads the model")
    if not b.accepts_device(device):
        raise BackendError(f"device '{device}' is not a device of runtime '{backend}'; its devices here: "
                           f"{', '.join(b.devices())}")
    checked = b.check_params(device, params or {}, "params")
    session = b.load(artifact, device, checked, concrete_inputs(artifact, batch))
    try:
        written = write_runtime_graph(session, Path(folder), artifact.name)
    finally:
        session.close()
    if written is None:
        raise BackendError(f"runtime '{backend}' has no graph of its own to show; choose one that has "
                           f"({SHOWN_BY}), or leave the runtime out to see the model itself")
    return written


def write_runtime_graph(session: Session, folder: Path, name: str) -> Path | None:
    """The graph `session` executes, written into `folder` and named after the model (`<name>.runtime.xml`);
    None for a runtime that has none. The session does not know the model's name: it writes into a scratch
    folder, and the files are named here."""
    with tempfile.TemporaryDirectory(prefix="inferlab-graph-") as scratch:
        written = session.runtime_graph(Path(scratch))
        return move_named(written, folder, name) if written is not None else None


def move_named(written: Path, folder: Path, name: str) -> Path:
    """Move what a session wrote (the file, and the files beside it of the same stem: an IR's .bin) into `folder`,
    named after the model: `model.runtime.xml` becomes `<name>.runtime.xml`."""
    kind = "".join(written.suffixes[-2:])  # ".runtime.xml", ".optimized.onnx"
    stem = written.name.removesuffix(kind)
    folder.mkdir(parents=True, exist_ok=True)
    for f in written.parent.iterdir():
        if f.name.startswith(f"{stem}."):
            shutil.move(f, folder / f"{name}{f.name[len(stem):]}")
    return folder / f"{name}{kind}"
