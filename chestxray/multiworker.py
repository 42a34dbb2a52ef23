"""Make Keras 3's `fit` run under tf.distribute.MultiWorkerMirroredStrategy.

Keras 3.15 (TensorFlow backend) fails there in two places (keras-team/keras#20585):
1. before training it averages the first data batch across workers, eagerly,
   which the collective strategy cannot do ("Attempt to convert a value
   (PerReplica...)"); the batch only serves to build the model, so this
   worker's own batch does as well;
2. it averages each step's logs across workers over axis 0, but the loss is a
   scalar ("Invalid reduction dimension 0 for input with 0 dimensions"); the
   mean over workers needs no axis.

`patch_keras()` replaces those two functions once, when training runs under
this strategy (by name or as an object), and only on the Keras versions it was
written for: on another version it stops with a message instead of patching
blindly. Upstream: https://github.com/keras-team/keras/issues/20585.
tests/test_train.py runs two worker processes against it.
"""

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer

# Keras versions whose TensorFlowTrainer these two replacements were read against.
TESTED = ("3.15.",)
_patched = False


def _build_from_local_batch(self, iterator=None, data_batch=None):
    if self._distribute_strategy is None:
        return
    if iterator is not None:
        for _, _, it in iterator:
            local = lambda v: (self.distribute_strategy.experimental_local_results(v)[0]
                               if isinstance(v, tf.distribute.DistributedValues) else v)
            data_batch = tf.nest.map_structure(local, next(it))
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


_keras_reduce_per_replica = trainer.reduce_per_replica


def _reduce_per_replica(values, strategy, reduction="auto"):
    if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
        return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
    return _keras_reduce_per_replica(values, strategy, reduction)


def patch_keras():
    """Apply the two replacements (once). Raises on a Keras version they were not written for."""
    global _patched
    if _patched:
        return
    if not keras.__version__.startswith(TESTED):
        raise RuntimeError(
            f"multi-worker training needs a workaround for keras-team/keras#20585 that was written for Keras "
            f"{', '.join(v + 'x' for v in TESTED)}; this is Keras {keras.__version__}. Check whether that issue "
            "is fixed in this version (then drop chestxray/multiworker.py), or pin Keras to a tested version.")
    if not hasattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build"):
        raise RuntimeError(f"Keras {keras.__version__}: TensorFlowTrainer._maybe_symbolic_build is gone; "
                           "chestxray/multiworker.py needs updating")
    trainer.TensorFlowTrainer._maybe_symbolic_build = _build_from_local_batch
    trainer.reduce_per_replica = _reduce_per_replica
    _patched = True
