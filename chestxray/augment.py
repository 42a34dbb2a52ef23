"""Random changes to training images: flip, rotation, shift, zoom, contrast and brightness.

Each image gets its own random key (one draw of `tf.data.Dataset.random` per
image, new every epoch), and every change is a stateless function of that key:
the same seed gives the same epochs, in any number of parallel calls.
Applied to the gray image on its 0..255 scale, before standardisation.
The changes are written once, in `keras.ops`: the tf.data pipeline makes them, and
`Augmentation.layer` makes them as a Keras layer for training from arrays on a backend
without tf.data (JAX on a GPU).
"""

import math
from dataclasses import asdict, dataclass


# An image's random numbers, each uniform in [-1, 1]: what each change draws.
DRAWS = ("angle", "zoom", "shift_x", "shift_y", "flip", "contrast", "brightness")
PRESETS = {"none": {"flip": False}, "flip": {"flip": True},
           "standard": {"flip": True, "rotation": 10.0, "shift": 0.08, "zoom": 0.10, "contrast": 0.10},
           "strong": {"flip": True, "rotation": 15.0, "shift": 0.10, "zoom": 0.15, "contrast": 0.20}}


@dataclass(frozen=True)
class Augmentation:
    """How much each change may do; 0 (or False) turns it off.

    rotation: degrees, uniform in [-rotation, rotation]; shift: fraction of the
    side, each direction; zoom: scale in [1 - zoom, 1 + zoom]; contrast: contrast
    and brightness each scaled by a factor in [1 - contrast, 1 + contrast].
    """

    flip: bool = True
    rotation: float = 0.0
    shift: float = 0.0
    zoom: float = 0.0
    contrast: float = 0.0

    @classmethod
    def named(cls, name):
        """A preset (PRESETS): 'none', 'flip' (the course's horizontal flip), 'standard' (all of
        them, moderately) or 'strong'."""
        if name not in PRESETS:
            raise ValueError(f"unknown augmentation {name!r}: use one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])

    def to_dict(self):
        return asdict(self)

    def __bool__(self):
        return any(asdict(self).values())

    def __call__(self, image, key):
        """`image` (height, width, 1) float; `key` an int64 scalar: the changed image (tf.data)."""
        import tensorflow as tf  # here, so that reading settings does not load TensorFlow

        seed = tf.stack([key, tf.constant(len(DRAWS), tf.int64)])  # any constant second word; this one, always
        u = tf.random.stateless_uniform([1, len(DRAWS)], seed, -1.0, 1.0)
        return self.apply_batch(image[None], u)[0]

    def apply_batch(self, images, u):
        """The changes to a batch (batch, height, width, 1), with draws `u` (batch, DRAWS), in
        `keras.ops`: the tf.data pipeline (one image at a time) and the Keras layer of any
        backend (JAX on a GPU: `layer`) make them with this one function."""
        from keras import ops

        draw = {name: u[:, i][:, None, None, None] for i, name in enumerate(DRAWS)}  # (batch, 1, 1, 1) each
        if self.rotation or self.shift or self.zoom:
            transforms = self.transforms(u, images.shape[1], images.shape[2], ops)
            images = ops.image.affine_transform(images, transforms, "bilinear", fill_mode="nearest")
        if self.flip:
            images = ops.where(draw["flip"] > 0, ops.flip(images, axis=2), images)
        if self.contrast:
            mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
            images = (images - mean) * (1 + self.contrast * draw["contrast"]) + mean * (1 + self.contrast * draw["brightness"])
        return images

    def transforms(self, u, height, width, xp):
        """Rotation about the centre, zoom and shift for draws `u` (..., DRAWS) as projective
        transforms (..., 8) that map each output pixel to where it is read in the input.
        `xp`: `tensorflow` or `keras.ops` (anything with cos, sin and stack)."""
        angle, zoom, shift_x, shift_y = (u[..., DRAWS.index(name)] for name in ("angle", "zoom", "shift_x", "shift_y"))
        angle = angle * (self.rotation * math.pi / 180)
        scale = 1.0 + zoom * self.zoom
        dx, dy = shift_x * (self.shift * width), shift_y * (self.shift * height)
        cos, sin = xp.cos(angle) / scale, xp.sin(angle) / scale
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        zero = angle * 0.0
        return xp.stack([cos, -sin, cx - cos * cx + sin * cy + dx,
                         sin, cos, cy - sin * cx - cos * cy + dy, zero, zero], axis=-1)

    def layer(self, seed=0):
        """A Keras layer that makes these changes to batches in training (a fresh draw per image
        and step) and none in inference: for backends without tf.data (bench/train_arrays.py)."""
        import keras

        augmentation = self

        class RandomAugmentation(keras.layers.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.seed_generator = keras.random.SeedGenerator(seed)

            def call(self, images, training=False):
                if not training or not augmentation:
                    return images
                u = keras.random.uniform((keras.ops.shape(images)[0], len(DRAWS)), -1.0, 1.0, seed=self.seed_generator)
                return augmentation.apply_batch(images, u)

        return RandomAugmentation(name="augmentation")
