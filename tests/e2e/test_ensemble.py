"""A co-located ensemble end to end: two small digits classifiers trained here, run as one ensemble trial through
`inferlab run` on ONNX Runtime with a dataset, stored in SQLite and reported; the stored accuracies are checked
against the same models run directly with onnxruntime and numpy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from inferlab.cli.main import main
from inferlab.store import Store

pytestmark = pytest.mark.slow

SUBSET = 200  # digits' test split has 540 samples; 200 keeps it fast and leaves a padded last batch of 16


def _digits_test() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as the dataset `{format: digits, split: test, subset: N}` selects them, computed here from
    scikit-learn directly: the training images and labels, and the first SUBSET test images and labels (in
    the order of their index in the whole set)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images, labels = d.images.astype(np.float32), d.target.astype(np.int64)
    _, test_idx = train_test_split(np.arange(len(labels)), test_size=0.3, stratify=labels, random_state=0)
    is_test = np.zeros(len(labels), bool)
    is_test[test_idx] = True
    test = np.where(is_test)[0][:SUBSET]
    return images[~is_test], labels[~is_test], images[test], labels[test]


def _train(path: Path, seed: int, steps: int, input_scale: float, logit_scale: float, softmax: bool,
           x: np.ndarray, y: np.ndarray) -> Path:
    """A small MLP on [N, 1, 8, 8] digits, trained briefly from `seed` on inputs multiplied by `input_scale`;
    its export multiplies the logits by `logit_scale` and, with `softmax`, ends in probabilities."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    xt, yt = torch.from_numpy(x[:, None] * input_scale), torch.from_numpy(y)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()

    class Export(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            logits = self.net(image) * logit_scale
            return torch.softmax(logits, dim=1) if softmax else logits

    torch.onnx.export(Export().eval(), (torch.zeros(2, 1, 8, 8),), str(path), input_names=["image"],
                      output_names=["scores"], dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return path


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _top1(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(scores.argmax(axis=1) == labels))


@dataclass(frozen=True)
class Pair:
    """The two members, and what they give on the test samples when run here."""

    raw: Path              # takes the digits' 0..16 values, gives large logits
    unit: Path             # takes them scaled to 0..1 (its preprocess), gives probabilities (its postprocess)
    labels: np.ndarray
    raw_logits: np.ndarray
    unit_probs: np.ndarray


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    import onnxruntime as ort

    d = tmp_path_factory.mktemp("ensemble-pair")
    train_x, train_y, test_x, test_y = _digits_test()
    raw = _train(d / "raw.onnx", 0, 25, 1.0, 4.0, False, train_x, train_y)
    unit = _train(d / "unit.onnx", 1, 15, 1 / 16, 1.0, True, train_x, train_y)

    def outputs(path: Path, scale: float) -> np.ndarray:
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(s.run(None, {"image": np.ascontiguousarray(test_x[:, None] * np.float32(scale))})[0])

    got = Pair(raw, unit, test_y, outputs(raw, 1.0), outputs(unit, 1 / 16))
    assert np.allclose(got.unit_probs.sum(axis=1), 1, atol=1e-4)
    # the models are such that reading them wrongly changes the score: averaging the raw scores (no softmax of
    # the logits), or feeding `unit` unscaled inputs, gives another top-1; so the equalities in the tests can fail
    mean = _top1((_softmax(got.raw_logits) + got.unit_probs) / 2, test_y)
    assert _top1((got.raw_logits + got.unit_probs) / 2, test_y) != mean
    assert _top1((_softmax(got.raw_logits) + outputs(unit, 1.0)) / 2, test_y) != mean
    scores = (_top1(got.raw_logits, test_y), _top1(got.unit_probs, test_y), mean)
    assert len(set(scores)) == 3, scores
    return got


def _config(pair: Pair, path: Path, combine: str, mode: str) -> Path:
    path.write_text(f"""
name: ensemble-e2e
models:
  - {{name: raw, path: {pair.raw}}}
  - name: unit
    path: {pair.unit}
    preprocess: {{scale: 0.0625}}
    postprocess: {{scores: probabilities}}
ensemble: {{members: [raw, unit], name: pair, combine: {combine}}}
backends: [{{name: onnxruntime, params: {{intra_op_threads: 1}}}}]
batch: 16
mode: {mode}
dataset: {{format: digits, split: test, subset: {SUBSET}}}
accuracy: {{with_speed: true, metrics: [top1]}}
measure: {{warmup_iterations: 2, min_iterations: 5, min_duration_s: 0.2, max_duration_s: 5, timeout_s: 120}}
""")
    return path


def test_an_ensemble_trial_measures_each_member_and_scores_the_combined_outputs(
        pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test_y = pair.labels
    raw_top1, unit_top1 = _top1(pair.raw_logits, test_y), _top1(pair.unit_probs, test_y)
    ensemble_top1 = _top1((_softmax(pair.raw_logits) + pair.unit_probs) / 2, test_y)
    cfg = _config(pair, tmp_path / "ensemble.yaml", "mean", "latency")
    db = tmp_path / "e.db"
    assert main(["run", str(cfg), "--db", f"sqlite:///{db}"]) == 0, capsys.readouterr().err
    terminal = capsys.readouterr().out
    assert "ensembles" in terminal and "interference" in terminal

    (r,) = Store(f"sqlite:///{db}").results()
    assert r.status == "ok", r.reason
    assert r.spec.model.name == "pair" and r.spec.ensemble is not None
    assert [m.name for m in r.spec.ensemble.members] == ["raw", "unit"]
    assert r.latency is not None and r.throughput_sps is not None and r.throughput_sps > 0

    # each member: its figures in the ensemble, alone, the interference ratio and its own accuracy
    assert [m.model for m in r.members] == ["raw", "unit"] and [m.member for m in r.members] == [0, 1]
    for m in r.members:
        assert m.requests == r.requests and m.share == 1.0
        assert m.latency_median_ms is not None and m.latency_median_ms > 0
        assert m.alone_throughput_sps is not None and m.alone_throughput_sps > 0
        assert m.alone_latency_median_ms is not None and m.alone_latency_median_ms > 0
        assert m.interference == pytest.approx(m.latency_median_ms / m.alone_latency_median_ms)
        assert m.interference is not None and m.interference > 0
        assert m.accuracy is not None
    # one after another, and what co-location gains
    e = r.ensemble
    assert e is not None and e.combine == "mean"
    assert e.sequential_throughput_sps is not None and e.sequential_throughput_sps > 0
    assert e.sequential_latency_median_ms is not None and e.sequential_latency_median_ms > 0
    assert e.gain == pytest.approx(r.throughput_sps / e.sequential_throughput_sps)

    # the strong check: the stored accuracies are those of the models run here, each read its own way
    assert r.accuracy is not None and r.accuracy.samples == SUBSET
    half = 0.5 / SUBSET  # the same count of correct samples
    assert r.accuracy.metrics["top1"] == pytest.approx(ensemble_top1, abs=half)
    assert r.members[0].accuracy == pytest.approx(raw_top1, abs=half)
    assert r.members[1].accuracy == pytest.approx(unit_top1, abs=half)

    # the report's ensembles table, with both members
    out = tmp_path / "r.html"
    assert main(["report", "--db", f"sqlite:///{db}", "-o", str(out)]) == 0
    html = out.read_text()
    assert 'id="ensembles-table"' in html
    table = html[html.index('id="ensembles-table"'):]
    table = table[:table.index("</table>")]
    assert "<td>raw</td>" in table and "<td>unit</td>" in table and "one after another" in table
    md = tmp_path / "r.md"
    assert main(["report", "--db", f"sqlite:///{db}", "-o", str(md)]) == 0
    assert "## Ensembles" in md.read_text()


def test_an_accuracy_trial_of_an_ensemble_votes_and_scores_each_member(
        pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "a.db"
    cfg = _config(pair, tmp_path / "vote.yaml", "vote", "accuracy")
    assert main(["run", str(cfg), "--db", f"sqlite:///{db}"]) == 0, capsys.readouterr().err
    (r,) = Store(f"sqlite:///{db}").results()
    assert r.status == "ok", r.reason
    assert r.spec.mode == "accuracy" and r.spec.ensemble is not None and r.spec.ensemble.combine == "vote"
    # computed here: each member's top class is a vote; a tie (they disagree) goes to the higher mean probability
    probs = np.stack([_softmax(pair.raw_logits), pair.unit_probs])
    votes = np.zeros_like(probs[0])
    for p in probs:
        votes[np.arange(len(p)), p.argmax(axis=1)] += 1
    expect = _top1(votes + probs.mean(axis=0) / 3, pair.labels)
    half = 0.5 / SUBSET
    assert r.accuracy is not None and r.accuracy.samples == SUBSET
    assert r.accuracy.metrics["top1"] == pytest.approx(expect, abs=half)
    # no speed windows: each member has its own score only
    assert [m.model for m in r.members] == ["raw", "unit"]
    assert r.members[0].accuracy == pytest.approx(_top1(pair.raw_logits, pair.labels), abs=half)
    assert r.members[1].accuracy == pytest.approx(_top1(pair.unit_probs, pair.labels), abs=half)
    assert all(m.alone_latency_median_ms is None and m.interference is None for m in r.members)
