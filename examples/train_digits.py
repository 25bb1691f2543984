"""Train the example digits classifier (a real trained model, for the accuracy and quantization examples):
DigitsCNN on the training split of scikit-learn's digits, preprocessed exactly as examples/accuracy.yaml
says (resize to 32x32, scale by 1/16), then exported to ONNX with a dynamic batch. Deterministic: seeded, one
thread and deterministic kernels, so two runs with the locked dependencies (constraints.txt) on one kind of CPU
write the same bytes."""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from architectures import DigitsCNN  # noqa: E402

from inferlab.accuracy.datasets import digits_split  # noqa: E402
from inferlab.accuracy.preprocess import preprocess  # noqa: E402
from inferlab.records.accuracy import Preprocess  # noqa: E402

PREPROCESS = Preprocess(resize=(32, 32), scale=1 / 16)  # keep in step with examples/accuracy.yaml


def tensors(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([preprocess(im, PREPROCESS, "float32", "digits")[0] for im in images]))


def deterministic(seed: int, threads: int) -> None:
    """Seed every generator the training draws from and fix the thread count: CPU kernels split reductions by
    thread, so another count sums in another order and ends in other weights (and another accuracy)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # settable only before the first parallel op; harmless if too late
        torch.set_num_interop_threads(threads)
    torch.use_deterministic_algorithms(True)


def train(epochs: int = 12, seed: int = 0) -> tuple[nn.Module, float]:
    torch.manual_seed(seed)
    images, labels, is_test = digits_split(seed=0)
    x_train, y_train = tensors(images[~is_test]), torch.from_numpy(labels[~is_test])
    x_test, y_test = tensors(images[is_test]), torch.from_numpy(labels[is_test])
    model = DigitsCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * ((len(x_train) + 63) // 64))
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train))
        total = 0.0
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            batch = x_train[idx]
            shift = torch.randint(-2, 3, (2,))  # small translations: the test digits are not centred alike
            batch = torch.roll(batch, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
            loss = loss_fn(model(batch), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            acc = float((model(x_test).argmax(1) == y_test).float().mean())
        print(f"epoch {epoch + 1:2d}: loss {total / len(x_train):.4f}, test top-1 {100 * acc:.2f}%")
    return model, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "models" / "digits_cnn.onnx")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--force", action="store_true", help="train even if the model exists")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads; the result is reproducible for a given count (default 1)")
    args = parser.parse_args()
    if args.out.is_file() and not args.force:
        print(f"{args.out} exists (--force retrains)")
        return
    t0 = time.perf_counter()
    deterministic(args.seed, args.threads)
    model, acc = train(args.epochs, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (torch.zeros(2, 1, 32, 32),), str(args.out), input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17, dynamo=False)
    print(f"wrote {args.out}: test top-1 {100 * acc:.2f}% in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
