"""Model artifacts: formats, identity (content hash), conversion, input specs, input generation."""

from inferlab.models.artifact import Artifact, ModelFormat, resolve
from inferlab.models.tensors import TensorSpec

__all__ = ["Artifact", "ModelFormat", "TensorSpec", "resolve"]
