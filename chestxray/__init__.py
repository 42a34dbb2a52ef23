"""chestxray: multi-label chest X-ray classification on NIH ChestX-ray14.

Data flows one way: labels -> metadata -> splits -> data (the one preprocessing
and the tf.data batches). Importing the package registers its Keras objects,
so saved models load with `keras.models.load_model` and nothing else.
"""

__version__ = "0.1.0"

from . import losses  # noqa: E402,F401  (registers WeightedBinaryCrossentropy with Keras)
