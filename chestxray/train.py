"""Training: weighted loss, the course's callbacks, resuming after a kill, tf.distribute.

`train(...)` writes into `out`:
  best.keras         the model of the best epoch so far (lowest val_loss)
  model.keras        the final model (best epoch's weights), written at the end
  history.csv        one row per finished epoch, `epoch` from 0
  loss.png           training and validation loss curves
  preprocessing.json image size, labels and the featurewise mean/std for evaluation
  logs/              TensorBoard
  resume/            the state after the last finished epoch (model with optimizer, callback state)

Started again with the same arguments, it continues after the last finished
epoch: the state of an epoch is committed only once the epoch is complete, in
one rename, so a kill at any moment loses at most the epoch in progress.
"""

import json
import math
import os
import shutil

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .data import ImageBatches, training_sample_stats
from .labels import LABELS
from .losses import compute_class_freqs, get_weighted_loss
from .model import build_model
from .shards import read_stats, shard_batches


def make_strategy(name):
    """tf.distribute strategy by name: none (default), mirrored (all local GPUs), multiworker (TF_CONFIG)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        from .multiworker import patch_keras
        patch_keras()  # Keras 3's fit fails under this strategy without it (keras-team/keras#20585)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name in (None, "none"):
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}: use none, mirrored or multiworker")


def _is_chief(strategy):
    """Worker 0 (or the chief) writes the outputs; the others write theirs apart."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def _write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class Resume(keras.callbacks.Callback):
    """Commits the training state after each finished epoch; restores it at the start.

    Keras' own BackupAndRestore keeps neither the other callbacks' state
    (ReduceLROnPlateau's and EarlyStopping's counters, the best val_loss) nor
    history.csv in step with the weights. Here one folder holds all of it,
    written beside the old one and swapped in by renames.
    """

    def __init__(self, folder, stateful, history_csv, best_path):
        super().__init__()
        self.folder, self.stateful = folder, stateful
        self.history_csv, self.best_path = history_csv, best_path
        self.restored = None  # set by `load`: the state dict of the last finished epoch

    def saved(self):
        """The folder holding the last committed state, or None on a fresh start."""
        for folder in (self.folder, self.folder + ".old"):  # .old: killed between the two renames
            if os.path.exists(os.path.join(folder, "state.json")):
                return folder
        return None

    def load(self):
        """The saved model (with its optimizer) and state, or (None, None) on a fresh start."""
        folder = self.saved()
        if folder is None:
            return None, None
        with open(os.path.join(folder, "state.json")) as f:
            self.restored = json.load(f)
        # history.csv keeps exactly the finished epochs; CSVLogger appends the rest
        # (so this happens before it opens the file).
        if os.path.exists(self.history_csv):
            history = pd.read_csv(self.history_csv)
            kept = history[history["epoch"] <= self.restored["epoch"]]
            _write_atomic(self.history_csv, kept.to_csv(index=False))
        return keras.models.load_model(os.path.join(folder, "model.keras")), self.restored

    def on_train_begin(self, logs=None):
        if not self.restored:
            return
        # After the other callbacks' own on_train_begin, which resets them.
        for name, callback in self.stateful.items():
            for key, value in self.restored["callbacks"][name].items():
                setattr(callback, key, value)
            if getattr(callback, "restore_best_weights", False) and os.path.exists(self.best_path):
                callback.best_weights = keras.models.load_model(self.best_path).get_weights()

    def on_epoch_end(self, epoch, logs=None):
        if not all(math.isfinite(float(v)) for v in (logs or {}).values()):
            return  # never commit a diverged state
        state = {"epoch": epoch, "callbacks": {
            name: {key: _plain(getattr(callback, key)) for key in _STATE[type(callback)]}
            for name, callback in self.stateful.items()}}
        new, old = self.folder + ".new", self.folder + ".old"
        shutil.rmtree(new, ignore_errors=True)
        os.makedirs(new)
        self.model.save(os.path.join(new, "model.keras"))
        _write_atomic(os.path.join(new, "state.json"), json.dumps(state))
        if os.path.exists(self.folder):
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.folder, old)
        os.replace(new, self.folder)
        shutil.rmtree(old, ignore_errors=True)


# What each stateful callback needs back after a restart (EarlyStopping's best weights
# come from best.keras, which ModelCheckpoint wrote at the same epochs).
_STATE = {
    keras.callbacks.ReduceLROnPlateau: ["best", "wait", "cooldown_counter"],
    keras.callbacks.EarlyStopping: ["best", "wait", "best_epoch"],
    keras.callbacks.ModelCheckpoint: ["best"],
}


def _plain(value):
    return None if value is None else float(value) if isinstance(value, (float, np.floating)) else value


def _plot_history(history_csv, path):
    from matplotlib.figure import Figure  # no pyplot: a notebook's figures must keep their backend

    history = pd.read_csv(history_csv)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for column in ("loss", "val_loss"):
        if column in history:
            ax.plot(history["epoch"], history[column], marker="o", label=column)
    ax.set_xlabel("epoch")
    ax.set_ylabel("weighted loss")
    ax.set_title("Training and validation loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def train(train_df, valid_df, image_dir, out, epochs=10, batch_size=8, lr=1e-4, image_size=320,
          weights=None, strategy="none", seed=0, sample_size=100, cache=None, horizontal_flip=True,
          lr_patience=2, lr_factor=0.1, lr_min_delta=1e-4, stop_patience=5, callbacks=(), verbose=1,
          model_fn=None, train_shards=None, valid_shards=None):
    """Train (or resume training) a model; returns the fitted model.

    Data: the course frames and `image_dir`, or folders written by `write_shards`
    (`train_shards`, `valid_shards`; then the frames and image_dir are not used).

    `model_fn(n_classes, weights, image_size)` replaces `build_model` (e.g. a small model for tests).
    """
    keras.utils.set_random_seed(seed)
    strategy = make_strategy(strategy) if isinstance(strategy, (str, type(None))) else strategy
    chief = _is_chief(strategy)
    # Every worker saves (checkpoints, resume state), but only the chief where asked.
    out = out if chief else os.path.join(out, f".worker-{strategy.cluster_resolver.task_id}")
    os.makedirs(out, exist_ok=True)

    history_csv = os.path.join(out, "history.csv")
    best_path = os.path.join(out, "best.keras")
    plateau = keras.callbacks.ReduceLROnPlateau("val_loss", factor=lr_factor, patience=lr_patience,
                                                min_delta=lr_min_delta, verbose=1)
    stop = keras.callbacks.EarlyStopping("val_loss", patience=stop_patience, restore_best_weights=True, verbose=1)
    checkpoint = keras.callbacks.ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True)
    resume = Resume(os.path.join(out, "resume"), {"plateau": plateau, "stop": stop, "checkpoint": checkpoint},
                    history_csv, best_path)
    if os.path.exists(history_csv) and resume.saved() is None:
        raise FileExistsError(f"{history_csv} exists but {resume.folder} does not: this is another run's "
                              "folder; choose a new --out (nothing was overwritten)")

    global_batch = batch_size * strategy.num_replicas_in_sync
    # Across workers a last, partial batch leaves some worker an empty one, which fails:
    # there, every batch is whole, and the images left over each epoch are said.
    whole = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if train_shards:
        stats = read_stats(train_shards)
        if image_size != stats["image_size"]:
            print(f"image size {stats['image_size']}, as in {train_shards} (not {image_size})")
        image_size, mean, std = stats["image_size"], stats["mean"], stats["std"]
        train_batches = shard_batches(train_shards, global_batch, shuffle=True, seed=seed,
                                      horizontal_flip=horizontal_flip, drop_remainder=whole)
        valid_batches = shard_batches(valid_shards, global_batch, mean=mean, std=std, drop_remainder=whole)
    else:
        size = (image_size, image_size)
        mean, std = training_sample_stats(train_df, image_dir, "Image", sample_size, seed, size)
        train_batches = ImageBatches(train_df, image_dir, "Image", LABELS, batch_size=global_batch, size=size,
                                     shuffle=True, seed=seed, horizontal_flip=horizontal_flip, cache=cache,
                                     drop_remainder=whole)
        valid_batches = ImageBatches(valid_df, image_dir, "Image", LABELS, batch_size=global_batch, size=size,
                                     mean=mean, std=std, cache=cache, drop_remainder=whole)
    for name, batches in (("training", train_batches), ("validation", valid_batches)):
        left_out = len(batches.labels) - len(batches) * global_batch if whole else 0
        if left_out:
            print(f"multiworker: {left_out} {name} image(s) per epoch left out to keep batches whole "
                  f"(global batch {global_batch})")
    preprocessing = {"image_size": image_size, "labels": LABELS, "mean": mean, "std": std,
                     "train_mode": "samplewise", "eval_mode": "featurewise"}
    _write_atomic(os.path.join(out, "preprocessing.json"), json.dumps(preprocessing, indent=2))

    with strategy.scope():
        model, state = resume.load()
        if model is None:
            freq_pos, freq_neg = compute_class_freqs(train_batches.labels)
            model = (model_fn or build_model)(len(LABELS), weights, image_size)
            model.compile(optimizer=keras.optimizers.Adam(lr), loss=get_weighted_loss(freq_neg, freq_pos))
            initial_epoch = 0
        else:
            initial_epoch = state["epoch"] + 1
            print(f"resuming after epoch {state['epoch']} from {resume.folder}: learning rate "
                  f"{float(model.optimizer.learning_rate):.3g}, optimizer step {int(model.optimizer.iterations)}")

    # Order matters: ReduceLROnPlateau adds learning_rate to the logs that CSVLogger writes,
    # and Resume, last, restores the others after they reset themselves and saves after them.
    all_callbacks = [plateau, stop, checkpoint,
                     keras.callbacks.CSVLogger(history_csv, append=True),
                     keras.callbacks.TensorBoard(os.path.join(out, "logs")),
                     keras.callbacks.TerminateOnNaN(), *callbacks, resume]
    if initial_epoch >= epochs:
        print(f"nothing to do: {initial_epoch} of {epochs} epochs already done in {out}")
        return model
    history = model.fit(train_batches, validation_data=valid_batches, epochs=epochs, initial_epoch=initial_epoch,
                        callbacks=all_callbacks, verbose=verbose)

    losses = history.history.get("loss", [])
    if losses and not math.isfinite(losses[-1]):
        raise FloatingPointError(
            f"training stopped: the loss became {losses[-1]} in epoch {initial_epoch + len(losses) - 1}. "
            f"The best model so far is intact in {best_path}; {os.path.join(out, 'model.keras')} was not written. "
            "Lower the learning rate (--lr) or check the input.")
    model.save(os.path.join(out, "model.keras"))
    if chief:
        _plot_history(history_csv, os.path.join(out, "loss.png"))
    return model
