"""Run as a script (TensorFlow must see 2 logical CPUs before it starts): the distributed path.

1. A small model without batch normalisation, our weighted loss: the loss on one
   global batch and the weights after one step under MirroredStrategy on 2
   replicas match one device to 1e-5 (the loss must be averaged over the global batch).
2. The real DenseNet121 model trains one step under the strategy.
3. `train(..., strategy=...)` runs end to end on phantoms through our input pipeline.
"""

import os
import sys

import numpy as np
import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from chestxray.losses import get_weighted_loss  # noqa: E402
from chestxray.model import build_model  # noqa: E402


def small_model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(14, activation="sigmoid")(x))


def one_step(strategy, x, y, loss):
    with strategy.scope():
        model = small_model()
        model.compile(keras.optimizers.SGD(0.5), loss)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
    before = model.evaluate(data, verbose=0)
    model.fit(data, epochs=1, verbose=0)
    return before, model.get_weights()


def main():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, devices
    mirrored = tf.distribute.MirroredStrategy(devices)
    assert mirrored.num_replicas_in_sync == 2
    rng = np.random.default_rng(0)
    x = rng.random((8, 16, 16, 3)).astype("float32")
    y = (rng.random((8, 14)) < 0.3).astype("float32")
    loss = get_weighted_loss(rng.random(14), rng.random(14))
    single_loss, single_weights = one_step(tf.distribute.OneDeviceStrategy(devices[0]), x, y, loss)
    mirrored_loss, mirrored_weights = one_step(mirrored, x, y, loss)
    print(f"loss on one device {single_loss:.7f}, on 2 replicas {mirrored_loss:.7f}")
    assert abs(single_loss - mirrored_loss) < 1e-5
    worst = max(np.abs(a - b).max() for a, b in zip(single_weights, mirrored_weights))
    moved = max(np.abs(a - b).max() for a, b in zip(single_weights, small_model().get_weights()))
    print(f"largest weight difference {worst:.2e} (the step moved weights by up to {moved:.2e})")
    assert worst < 1e-5 and moved > 1e-3
    print("same loss and weights on 2 replicas")

    with mirrored.scope():
        model = build_model(image_size=32)
        model.compile(keras.optimizers.Adam(1e-3), get_weighted_loss(np.full(14, 0.9), np.full(14, 0.1)))
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x[:, :, :, :].repeat(2, axis=1).repeat(2, axis=2), y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    print("densenet step under MirroredStrategy: loss", history.history["loss"][0])

    import tempfile

    import pandas as pd

    from chestxray.metadata import read_nih_metadata
    from chestxray.phantoms import make_phantoms
    from chestxray.splits import split_frame
    from chestxray.train import train
    from tests.test_train import tiny_model

    with tempfile.TemporaryDirectory() as scratch:
        frames = split_frame(read_nih_metadata(make_phantoms(scratch, n=40, size=64)), fractions=[0.8, 0.2, 0])
        train(frames["train"], frames["valid"], os.path.join(scratch, "images"), os.path.join(scratch, "run"),
              epochs=2, batch_size=4, image_size=32, strategy=mirrored, model_fn=tiny_model, verbose=0)
        history = pd.read_csv(os.path.join(scratch, "run", "history.csv"))
        assert list(history["epoch"]) == [0, 1] and np.isfinite(history["loss"]).all()
    print("train() under MirroredStrategy: 2 epochs")


if __name__ == "__main__":
    main()
