"""Train a Keras version of the example digits CNN (real weights) and save it in TensorFlow's own formats, for
comparing the original framework with the optimised runtimes (examples/tensorflow.yaml):

  models/digits_keras.keras       the Keras 3 archive
  models/digits_keras_savedmodel/ a SavedModel with a serving signature (input `image`, NHWC 32x32x1, float32)

The architecture follows examples/architectures.py's DigitsCNN (four conv-BN-ReLU layers, 32..128 channels,
two with stride 2, global pool, 10 logits), in channels-last layout as Keras builds it. The data are the
training split of scikit-learn's digits, preprocessed as examples/tensorflow.yaml says (resize to 32x32,
scale by 1/16, NHWC). Seeded, with TensorFlow's deterministic ops and one thread, so that two runs on one
kind of CPU with the locked dependencies end at the same accuracy."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOME", str(HERE / "models" / ".keras"))  # not ~/.keras

from inferlab.accuracy.datasets import digits_split  # noqa: E402
from inferlab.accuracy.preprocess import preprocess  # noqa: E402
from inferlab.records.accuracy import Preprocess  # noqa: E402

PREPROCESS = Preprocess(resize=(32, 32), scale=1 / 16, layout="NHWC")  # keep in step with examples/tensorflow.yaml


def arrays(images: np.ndarray) -> np.ndarray:
    return np.stack([preprocess(im, PREPROCESS, "float32", "digits")[0] for im in images])


def build(keras: object) -> object:
    from keras import layers

    def conv_bn(x: object, filters: int, stride: int = 1) -> object:
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)  # Keras's 0.99 lags behind so short a training
        return layers.ReLU()(x)

    inp = keras.Input((32, 32, 1), name="image")  # type: ignore[attr-defined]
    x = conv_bn(inp, 32)
    x = conv_bn(x, 64, 2)
    x = conv_bn(x, 64)
    x = conv_bn(x, 128, 2)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(10, name="logits")(x)
    return keras.Model(inp, out, name="digits_keras")  # type: ignore[attr-defined]


def train(epochs: int, seed: int) -> tuple[object, float]:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    images, labels, is_test = digits_split(seed=0)
    x_train, y_train = arrays(images[~is_test]), labels[~is_test]
    x_test, y_test = arrays(images[is_test]), labels[is_test]
    model = build(keras)
    steps = epochs * ((len(x_train) + 63) // 64)
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, steps, warmup_target=None)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),  # type: ignore[attr-defined]
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        # small translations, as the PyTorch trainer does: the test digits are not centred alike
        shifted = np.stack([np.roll(x, tuple(rng.integers(-2, 3, 2)), axis=(0, 1)) for x in x_train])
        hist = model.fit(shifted, y_train, batch_size=64, epochs=1, shuffle=True, verbose=0)  # type: ignore[attr-defined]
        _, acc = model.evaluate(x_test, y_test, verbose=0)  # type: ignore[attr-defined]
        print(f"epoch {epoch + 1:2d}: loss {hist.history['loss'][0]:.4f}, test top-1 {100 * acc:.2f}%")
    return model, float(acc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "models", help="folder for the two files")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="train even if the models exist")
    args = parser.parse_args()
    keras_file, saved = args.out / "digits_keras.keras", args.out / "digits_keras_savedmodel"
    if keras_file.is_file() and (saved / "saved_model.pb").is_file() and not args.force:
        print(f"{keras_file} and {saved} exist (--force retrains)")
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    t0 = time.perf_counter()
    model, acc = train(args.epochs, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(keras_file)  # type: ignore[attr-defined]
    model.export(str(saved), verbose=False)  # type: ignore[attr-defined]
    print(f"wrote {keras_file} and {saved}/: test top-1 {100 * acc:.2f}% in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
