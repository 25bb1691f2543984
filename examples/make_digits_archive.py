"""Write scikit-learn's digits (the held-out split that examples/accuracy.yaml checks) as a dataset archive in
ImageNet class-folder layout: one folder per digit, each image an 8x8 grayscale PNG (0..16 scaled to 0..240),
and labels.txt naming the classes in the model's order. The workbench imports it on its Datasets page.

    .venv/bin/python examples/make_digits_archive.py [OUT.zip]     (default: examples/digits-test.zip)"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from inferlab.accuracy.datasets import digits_split


def write(out: Path) -> Path:
    images, labels, is_test = digits_split(seed=0)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("digits-test/labels.txt", "".join(f"{d}\n" for d in range(10)))
        for i in np.flatnonzero(is_test):
            buf = io.BytesIO()
            Image.fromarray((images[i][..., 0] * 15).astype(np.uint8)).save(buf, format="PNG")
            z.writestr(f"digits-test/{labels[i]}/{i:04d}.png", buf.getvalue())
    return out


if __name__ == "__main__":
    path = write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "digits-test.zip")
    print(path)
