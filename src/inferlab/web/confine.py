"""What a config sent from the workbench may name: only models and datasets imported into the server's
data folder (by their names there), never a path elsewhere on the server, a Python factory, or a parent
folder. The config is kept under the data folder by its content hash, so relative names resolve there."""

from __future__ import annotations

import hashlib
from pathlib import Path

from inferlab.config import loader
from inferlab.config.schema import Experiment
from inferlab.errors import ConfigError, ModelError
from inferlab.models.artifact import ModelFormat, detect_format

SOURCE = "the experiment"


def _inside(root: Path, value: str, field: str) -> None:
    try:
        factory = detect_format(value) is ModelFormat.TORCH_FACTORY  # 'package.module:factory'
    except ModelError:
        factory = False
    if factory:
        raise ConfigError(f"{SOURCE}: {field} '{value}' names Python code; the workbench runs only model files "
                          "imported on its Models page")
    p = Path(value)
    if p.is_absolute() or ".." in p.parts:
        raise ConfigError(f"{SOURCE}: {field} '{value}' is a path on the server; name a model or dataset "
                          "imported into the workbench (as its Models and Datasets pages list it)")
    resolved = (root / p).resolve()
    if not resolved.is_relative_to(root):
        raise ConfigError(f"{SOURCE}: {field} '{value}' leads outside the workbench's data folder")


def experiment(text: str, data_dir: Path) -> Experiment:
    """Validate a config sent from the workbench and confine every file it names to the data folder."""
    exp = loader.load_text(text, SOURCE)
    root = data_dir.resolve()
    for i, m in enumerate(exp.models):
        _inside(root, m.path, f"models[{i}].path")
        for j, alt in enumerate(m.alternates):
            _inside(root, alt, f"models[{i}].alternates[{j}]")
        for name, override in m.inputs.items():
            if override.data is not None:
                _inside(root, override.data, f"models[{i}].inputs.{name}.data")
    if exp.dataset is not None:
        for attr in ("path", "labels", "annotations"):
            value = getattr(exp.dataset, attr)
            if value is not None:
                _inside(root, value, f"dataset.{attr}")
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"experiment-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    path.write_text(text)
    exp._source = path  # relative names resolve in the data folder, and a resume names this file
    return exp
