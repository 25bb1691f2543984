"""What a cluster node is sent for a trial: every file the trial reads, an ensemble's members included, and the
spec rewritten to the node's copies."""

from __future__ import annotations

from pathlib import Path

from inferlab.execute.deploy import localise, spec_paths
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.records.ensemble import EnsembleSpec
from inferlab.records.trial import TrialSpec


def test_an_ensembles_members_all_travel_and_are_rewritten(tmp_path: Path) -> None:
    files = [tmp_path / "a.onnx", tmp_path / "b.onnx"]
    for f in files:
        f.write_bytes(b"x")
    members = tuple(Artifact(f.stem, str(f), ModelFormat.ONNX, f.stem * 8) for f in files)
    ensemble = EnsembleSpec("pair", members)
    spec = TrialSpec(ensemble.model(), "onnxruntime", "cpu", (), 1, "latency", ensemble=ensemble)
    assert spec_paths(spec) == files
    moved = TrialSpec.from_json(localise(spec.to_json(), {str(f): f"/node/{f.name}" for f in files}))
    assert moved.ensemble is not None
    assert [m.ref for m in moved.ensemble.members] == ["/node/a.onnx", "/node/b.onnx"]
    assert moved.key() == spec.key()  # the key knows no host path
