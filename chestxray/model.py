"""A convolutional base + global average pooling + one sigmoid per label, and loading saved models.

Bases (`backbone`): DenseNet121, the course's and CheXNet's; ResNet50 and EfficientNetB0 from
`keras.applications` too. Base weights: "imagenet" (Keras downloads them on first use: needs
internet), a path to a weights file of the base without its top (`.h5` from Keras 2, such as
the course's `models/nih/densenet.hdf5`, or `.weights.h5`), or None (random initialisation).
"""

import os

from .labels import LABELS

BACKBONES = ("DenseNet121", "ResNet50", "EfficientNetB0")


def base_weights(weights):
    """None, "imagenet" or a file: "none" (any case) and "" mean None, as on the command line."""
    if weights is None or str(weights).strip().lower() in ("", "none"):
        return None
    return "imagenet" if str(weights).lower() == "imagenet" else weights


def build_model(n_classes=len(LABELS), weights=None, image_size=320, backbone="DenseNet121"):
    """The course's architecture on `backbone`, uncompiled."""
    import keras

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}: use one of {', '.join(BACKBONES)}")
    weights = base_weights(weights)
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise FileNotFoundError(f"base weights file not found: {weights}")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    # Built on our input tensor, the base's layers are the model's own (a flat graph), not one
    # nested layer: Grad-CAM reads an inner layer's output on the way from this input.
    base = getattr(keras.applications, backbone)(include_top=False, weights=weights, input_tensor=inputs)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
    # float32 head even under mixed precision: in float16 the loss's log(f + 1e-7) would be log(0).
    outputs = keras.layers.Dense(n_classes, activation="sigmoid", name="predictions", dtype="float32")(features)
    return keras.Model(inputs, outputs, name=f"chestxray_{backbone.lower()}")


def load_model(path, image_size=None, n_classes=None):
    """A trained model: a `.keras` file, or weights of the whole model (`.weights.h5` as `train`
    writes and `models/nih/` ships, or `.h5` as the course's `pretrained_model.h5`) put into
    `build_model`'s architecture, on the backbone, image size and labels of the
    preprocessing.json beside it (else DenseNet121, 320 px and the 14 labels)."""
    import keras

    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if path.endswith(".keras"):
        from . import losses  # noqa: F401  (registers the weighted loss for deserialisation)
        return keras.models.load_model(path, safe_mode=True)
    from .preprocessing import FILENAME, Preprocessing

    backbone = "DenseNet121"
    if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(path)), FILENAME)):
        pre = Preprocessing.load(path)
        image_size, n_classes, backbone = image_size or pre.image_size, n_classes or len(pre.labels), pre.backbone
    model = build_model(n_classes or len(LABELS), weights=None, image_size=image_size or 320, backbone=backbone)
    try:
        model.load_weights(path)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not weights of this model ({backbone}; {type(e).__name__}: {e})") from None
    return model
