"""chestxray: multi-label chest X-ray classification on NIH ChestX-ray14.

Data flows one way: labels -> metadata -> splits -> preprocessing and data (the
tf.data batches) -> model and losses -> train -> evaluate -> explain -> report.
Importing the package loads neither TensorFlow nor Keras: `labels`, `metadata`
and `splits` (and the command line's help) stay fast. Saved `.keras` models load
with `chestxray.model.load_model`, or with `keras.models.load_model` after
`import chestxray.losses`, which registers the weighted loss.
"""

__version__ = "0.1.0"
