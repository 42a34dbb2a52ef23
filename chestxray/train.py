"""Training: weighted loss, the course's callbacks, resuming after a kill, tf.distribute.

`train(...)` writes into `out`:
  run.json           the recipe, the table's columns and the data of this run, written first; a
                     restart must match it
  preprocessing.json backbone, image size, standardisation, the training sample's mean/std, labels
                     and their prevalence
  best.keras         the model of the best epoch so far (by `recipe.monitor`)
  model.keras        the final model (best epoch's weights), written at the end
  model.weights.h5   the same weights alone (no optimizer state): what is shipped
  history.csv        one row per finished epoch, `epoch` from 0: loss, val_loss, val_auroc, lr
  loss.png           training and validation loss, and validation mean AUROC
  logs/              TensorBoard
  resume/            the state after the last finished epoch (runstate.py)

Started again with the same arguments, it continues after the last finished
epoch. Every file is written atomically and each epoch's state is committed
whole (runstate.py), so a kill at any instant loses at most the epoch in
progress, and the finished folder is the same as an uninterrupted run's.
"""

import json
import math
import os
from dataclasses import asdict, replace
from functools import partial

import keras
import pandas as pd
import tensorflow as tf
from matplotlib.figure import Figure  # files are drawn on a Figure, not pyplot's: a notebook keeps its backend

from .augment import Augmentation
from .data import ImageBatches
from .evaluate import ValidationMetrics
from .i18n import _, number
from .labels import NIH
from .losses import compute_class_freqs, get_weighted_loss
from .model import build_model
from .preprocessing import Preprocessing
from .recipe import Recipe
from .runstate import RunState, save_atomic, write_atomic
from .shards import read_stats, shard_batches


def make_strategy(name):
    """tf.distribute strategy by name: none (default), mirrored (all local GPUs), multiworker (TF_CONFIG)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
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


class EMAWeights(keras.callbacks.SwapEMAWeights):
    """The weights' moving average in the model from the end of each epoch (validation,
    checkpoint, early stopping see it) to the start of the next. `training_weights()`
    puts the trained weights back early: `RunState` saves those, with the average in
    the optimizer, so that a restart goes on exactly."""

    def __init__(self):
        super().__init__(swap_on_epoch=True)

    def training_weights(self):
        if self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False


def plot_history(history_csv, path):
    """loss.png: training and validation loss, and the validation mean AUROC, per epoch."""
    history = pd.read_csv(history_csv).set_index("epoch")
    fig = Figure(figsize=(10, 4))
    ax, right = fig.subplots(1, 2)
    history.filter(["loss", "val_loss"]).plot(ax=ax, marker="o", ylabel="weighted loss",
                                              title="Training and validation loss")
    title = "Validation mean AUROC"
    if "val_auroc" in history and history["val_auroc"].notna().any():
        history["val_auroc"].plot(ax=right, marker="o", color="tab:green", ylabel="mean AUROC")
        title += f" (best {history['val_auroc'].max():.3f}, epoch {history['val_auroc'].idxmax()})"
    right.set(title=title, xlabel="epoch")
    fig.tight_layout()
    save_atomic(lambda tmp: fig.savefig(tmp, format="png"), path)


def _data(train_df, valid_df, image_dir, recipe, table, global_batch, whole, cache, train_shards, valid_shards):
    """(preprocessing, training batches, validation batches), from tables of images or from shards."""
    labels = list(table.labels)
    if train_shards:
        stats = read_stats(train_shards)
        if recipe.image_size != stats["image_size"]:
            print(f"image size {stats['image_size']}, as in {train_shards} (not {recipe.image_size})")
        index = table.check(pd.read_csv(os.path.join(train_shards, "index.csv")), f"{train_shards}/index.csv", False)
        pre = Preprocessing(stats["image_size"], labels, recipe.standardize, stats["mean"], stats["std"],
                            index[labels].to_numpy().mean(axis=0), source=f"{train_shards}/stats.json")
        make = partial(shard_batches, y_cols=labels)
        sources = train_shards, valid_shards
    else:
        for frame, what in ((train_df, "the training table"), (valid_df, "the validation table")):
            table.check(frame, what, patients=False)
        pre = Preprocessing.from_training(train_df, image_dir, recipe.image_size, recipe.standardize, labels,
                                          table.x_col, sample_size=recipe.sample_size, seed=recipe.seed)
        make = partial(ImageBatches, image_dir=image_dir, x_col=table.x_col, y_cols=labels, size=pre.size, cache=cache)
        sources = train_df, valid_df
    mean, std = pre.mean_std
    return (pre, make(sources[0], batch_size=global_batch, mean=mean, std=std, drop_remainder=whole, shuffle=True,
                      seed=recipe.seed, augment=Augmentation.named(recipe.augment)),
            make(sources[1], batch_size=global_batch, mean=mean, std=std, drop_remainder=whole))


def _run_record(out, recipe, table, train_df, valid_df, train_shards, valid_shards):
    """Write run.json on a fresh start; on a restart, refuse a folder of another run."""
    data = ({"train_shards": train_shards, "valid_shards": valid_shards} if train_shards else
            {"train_images": train_df[table.x_col].tolist(), "valid_images": valid_df[table.x_col].tolist()})
    # The augmentation's settings beside its preset's name: what the run did, should a preset change.
    record = {"recipe": asdict(recipe), "augmentation": Augmentation.named(recipe.augment).to_dict(),
              "table": table.to_dict(), "data": data}
    path = os.path.join(out, "run.json")
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        differ = sorted(k for k in record["recipe"] if saved["recipe"].get(k) != record["recipe"][k])
        differ += sorted(k for k in record["data"] if saved["data"].get(k) != record["data"][k])
        differ += ["table"] if saved.get("table", NIH.to_dict()) != record["table"] else []
        if differ:
            raise FileExistsError(f"{out} holds another run ({path} differs in {', '.join(differ)}): "
                                  "choose a new --out, or repeat that run's settings to resume it")
        return
    if any(os.path.exists(os.path.join(out, name)) for name in ("history.csv", "resume", "model.keras")):
        raise FileExistsError(f"{out} holds another run's files but no {path}: choose a new --out "
                              "(nothing was overwritten)")
    write_atomic(path, json.dumps(record, indent=1))


def train(train_df, valid_df, image_dir, out, recipe=None, *, table=NIH, strategy="none", cache=None, callbacks=(),
          verbose=1, model_fn=None, train_shards=None, valid_shards=None, **settings):
    """Train (or resume training) a model; returns the final model (the best epoch's weights).

    `recipe`: a `Recipe`; keyword `settings` override its fields (`epochs=3, lr=1e-3`).
    Data: frames with `table`'s columns (the course's by default) and `image_dir`, or folders
    written by `write_shards` (`train_shards`, `valid_shards`; then the frames and image_dir are
    not used). The model has one output per label of `table`.
    `model_fn(n_classes, weights, image_size)` replaces `build_model` (e.g. a small model for tests).
    Seeds Python's, NumPy's and TensorFlow's global generators with `recipe.seed`.
    """
    recipe = replace(recipe or Recipe(), **settings)
    model_fn = model_fn or partial(build_model, backbone=recipe.backbone)
    keras.utils.set_random_seed(recipe.seed)
    strategy = make_strategy(strategy) if isinstance(strategy, (str, type(None))) else strategy
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from .multiworker import patch_keras
        patch_keras()  # Keras 3's fit fails under this strategy without it (keras-team/keras#20585)
    chief = _is_chief(strategy)
    # Every worker saves (checkpoints, resume state), but only the chief where asked.
    out = out if chief else os.path.join(out, f".worker-{strategy.cluster_resolver.task_id}")
    os.makedirs(out, exist_ok=True)
    _run_record(out, recipe, table, train_df, valid_df, train_shards, valid_shards)  # first: whose folder this is

    global_batch = recipe.batch_size * strategy.num_replicas_in_sync
    # Across workers a last, partial batch leaves some worker an empty one, which fails:
    # there, every batch is whole, and the images left over each epoch are said.
    whole = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    pre, train_batches, valid_batches = _data(train_df, valid_df, image_dir, recipe, table, global_batch, whole, cache,
                                              train_shards, valid_shards)
    for name, batches in (("training", train_batches), ("validation", valid_batches)):
        left_out = len(batches.labels) - len(batches) * global_batch if whole else 0
        if left_out:
            print(f"multiworker: {left_out} {name} image(s) per epoch left out to keep batches whole "
                  f"(global batch {global_batch})")
    pre = replace(pre, backbone=recipe.backbone)
    pre.save(out)

    freq_pos, freq_neg = compute_class_freqs(train_batches.labels)
    loss = get_weighted_loss(freq_neg, freq_pos)
    stateful = {"stop": keras.callbacks.EarlyStopping(recipe.monitor, mode=recipe.mode,
                                                      patience=recipe.stop_patience, verbose=1)}
    if recipe.schedule == "plateau":  # a cosine schedule sets the rate itself
        stateful["plateau"] = keras.callbacks.ReduceLROnPlateau(
            recipe.monitor, mode=recipe.mode, factor=recipe.lr_factor, patience=recipe.lr_patience,
            min_delta=recipe.lr_min_delta, verbose=1)
    ema = EMAWeights() if recipe.ema else None
    run = RunState(out, stateful, recipe.monitor, recipe.mode, ema)

    with strategy.scope():
        model, state = run.load()
        if model is None:
            model = model_fn(len(pre.labels), recipe.weights, pre.image_size)
            model.compile(optimizer=recipe.optimizer(len(train_batches)), loss=loss)
            initial_epoch = 0
        else:
            initial_epoch = state["epoch"] + 1
            rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
            print(_("resuming after epoch {epoch} from {folder}: learning rate {rate}, optimizer step {step}").format(
                epoch=state["epoch"], folder=run.folder, rate=number(rate, "3g"),
                step=int(model.optimizer.iterations)))

    # Order matters. The average weights go in first and the validation metrics follow, so that
    # the others see both; RunState, last, restores the others after they reset themselves,
    # and commits the epoch (best.keras, history.csv: ModelCheckpoint's and CSVLogger's jobs).
    all_callbacks = [*([ema] if ema else []), ValidationMetrics(valid_batches, loss), *stateful.values(),
                     keras.callbacks.TensorBoard(os.path.join(out, "logs")),
                     keras.callbacks.TerminateOnNaN(), *callbacks, run]
    if initial_epoch < recipe.epochs and not (state and state.get("stopped")):
        history = model.fit(train_batches, epochs=recipe.epochs, initial_epoch=initial_epoch, shuffle=False,
                            callbacks=all_callbacks, verbose=verbose)
        losses = history.history.get("loss", [])
        if losses and not math.isfinite(losses[-1]):
            raise FloatingPointError(
                f"training stopped: the loss became {losses[-1]} in epoch {initial_epoch + len(losses) - 1}. "
                f"The best model so far is intact in {run.best_path}; {os.path.join(out, 'model.keras')} was "
                "not written. Lower the learning rate (--lr) or check the input.")
    else:
        print(_("nothing to do: {done} of {epochs} epochs already done in {out}").format(
            done=initial_epoch, epochs=recipe.epochs, out=out))
    return _finish(run, out, model_fn, pre, chief)


def _finish(run, out, model_fn, pre, chief):
    """model.keras, model.weights.h5 and loss.png, from the committed best model: made again,
    whole, by a restart after they were cut short."""
    best = run.best_model()
    # Keras 3 saves a compiled model's loss and optimizer state with it: model.keras and
    # model.weights.h5 hold a bare model with the best weights, so that plain Keras loads
    # model.keras without this package (best.keras and resume/ keep the loss and optimizer).
    bare = model_fn(len(pre.labels), None, pre.image_size)
    bare.set_weights(best.get_weights())
    save_atomic(bare.save, os.path.join(out, "model.keras"))
    save_atomic(bare.save_weights, os.path.join(out, "model.weights.h5"))
    if chief:
        plot_history(run.history_csv, os.path.join(out, "loss.png"))
    return best
