"""Standardisation, the pixel arithmetic every path shares, written once and free of TensorFlow:
the tf.data pipeline, Grad-CAM's input and `bench/train_arrays.py`'s Keras layer (on JAX) use it."""

EPSILON = 1e-6  # added to the std, as Keras' ImageDataGenerator did


def standardize(image, mean, std):
    """`image` minus `mean`, over `std` (+ EPSILON): NumPy arrays or tensors of any backend."""
    return (image - mean) / (std + EPSILON)
