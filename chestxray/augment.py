"""Random changes to training images: flip, rotation, shift, zoom, contrast and brightness.

Each image gets its own random key (one draw of `tf.data.Dataset.random` per
image, new every epoch), and every change is a stateless function of that key:
the same seed gives the same epochs, in any number of parallel calls.
Applied to the gray image on its 0..255 scale, before standardisation.
"""

import math
from dataclasses import asdict, dataclass


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
        """'none', 'flip' (the course's horizontal flip) or 'standard' (all of them, moderately)."""
        presets = {"none": cls(flip=False), "flip": cls(),
                   "standard": cls(flip=True, rotation=10.0, shift=0.08, zoom=0.10, contrast=0.10)}
        if name not in presets:
            raise ValueError(f"unknown augmentation {name!r}: use one of {sorted(presets)}")
        return presets[name]

    def to_dict(self):
        return asdict(self)

    def __bool__(self):
        return any(asdict(self).values())

    def __call__(self, image, key):
        """`image` (height, width, 1) float; `key` an int64 scalar: the changed image."""
        import tensorflow as tf  # here, so that reading settings does not load TensorFlow

        u = tf.random.stateless_uniform([7], tf.stack([key, tf.constant(7, tf.int64)]), -1.0, 1.0)
        if self.rotation or self.shift or self.zoom:
            image = self._affine(image, u)
        if self.flip:
            image = tf.where(u[4] > 0, tf.image.flip_left_right(image), image)
        if self.contrast:
            mean = tf.reduce_mean(image)
            image = (image - mean) * (1 + self.contrast * u[5]) + mean * (1 + self.contrast * u[6])
        return image

    def _affine(self, image, u):
        """Rotation about the centre, zoom and shift in one bilinear resampling."""
        import tensorflow as tf

        height, width = image.shape[0], image.shape[1]
        angle = u[0] * self.rotation * math.pi / 180
        scale = 1.0 + u[1] * self.zoom
        dx, dy = u[2] * self.shift * width, u[3] * self.shift * height
        # The transform maps each output pixel to where it is read in the input.
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy + dx,
                              sin, cos, cy - sin * cx - cos * cy + dy, 0.0, 0.0])
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None], transforms=transform[None], output_shape=tf.constant([height, width]),
            fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")[0]
