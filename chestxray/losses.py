"""Class imbalance: positive/negative frequencies and the weighted binary cross-entropy.

With w_pos = freq_neg and w_neg = freq_pos, positives and negatives of each
class contribute equally to the loss however rare the class is.
"""

import keras
import numpy as np
from keras import ops


def compute_class_freqs(labels):
    """(positive_frequencies, negative_frequencies), one per class, of an (N, classes) 0/1 matrix."""
    labels = np.asarray(labels)
    positive = labels.mean(axis=0)
    return positive, 1 - positive


@keras.saving.register_keras_serializable(package="chestxray")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """For each class, the batch mean of -(w_p y log(f + eps) + w_n (1 - y) log(1 - f + eps)),
    summed over the classes.

    `call` returns the per-example sum over classes; Keras' default reduction takes
    the mean over the (global) batch, which gives the sum over classes of the
    per-class means, and divides correctly under tf.distribute.
    """

    def __init__(self, pos_weights, neg_weights, epsilon=1e-7, name="weighted_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weights = [float(w) for w in np.ravel(pos_weights)]
        self.neg_weights = [float(w) for w in np.ravel(neg_weights)]
        if len(self.pos_weights) != len(self.neg_weights):
            raise ValueError(f"{len(self.pos_weights)} positive weights but {len(self.neg_weights)} negative ones")
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        w_pos, w_neg = (ops.convert_to_tensor(w, dtype=y_pred.dtype) for w in (self.pos_weights, self.neg_weights))
        per_class = -(w_pos * y_true * ops.log(y_pred + self.epsilon)
                      + w_neg * (1 - y_true) * ops.log(1 - y_pred + self.epsilon))
        return ops.sum(per_class, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weights": self.pos_weights,
                "neg_weights": self.neg_weights, "epsilon": self.epsilon}


def get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):
    """The course's call (exercise 3): a Keras loss weighting each class's positives and negatives."""
    return WeightedBinaryCrossentropy(pos_weights, neg_weights, epsilon)
