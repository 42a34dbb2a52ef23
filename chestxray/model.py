"""DenseNet121 + global average pooling + one sigmoid per label, and loading saved models.

Base weights: "imagenet" (Keras downloads them on first use: needs internet),
a path to a weights file of the DenseNet121 base without its top (`.h5` from
Keras 2, such as the course's `models/nih/densenet.hdf5`, or `.weights.h5`),
or None (random initialisation).
"""

import os

import keras

from .labels import LABELS


def build_model(n_classes=len(LABELS), weights=None, image_size=320):
    """The course's architecture, uncompiled."""
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise FileNotFoundError(f"base weights file not found: {weights}")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    base = keras.applications.DenseNet121(include_top=False, weights=weights, input_tensor=inputs)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
    # float32 head even under mixed precision: in float16 the loss's log(f + 1e-7) would be log(0).
    outputs = keras.layers.Dense(n_classes, activation="sigmoid", name="predictions", dtype="float32")(features)
    return keras.Model(inputs, outputs, name="chestxray_densenet121")


def load_model(path, image_size=320, n_classes=len(LABELS)):
    """A trained model: a `.keras` file, or weights of the whole model (`.h5`, `.weights.h5`,
    as the course's `pretrained_model.h5`) put into `build_model`'s architecture."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if path.endswith(".keras"):
        from . import losses  # noqa: F401  (registers the weighted loss for deserialisation)
        return keras.models.load_model(path, safe_mode=True)
    model = build_model(n_classes, weights=None, image_size=image_size)
    model.load_weights(path)
    return model
