"""The training recipe (augmentation, schedule, weight averaging, monitored metric) and the one
`Preprocessing` that training writes and every evaluation path reads."""

import json
import os

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from chestxray.augment import Augmentation
from chestxray.evaluate import mean_auroc
from chestxray.labels import LABELS, NIH
from chestxray.model import base_weights, build_model
from chestxray.preprocessing import Preprocessing
from chestxray.recipe import Recipe
from chestxray.train import _data, train
from tests.test_train import split_phantoms, tiny_model  # noqa: F401  (fixture)


# ---------------------------------------------------------------- augmentation

def _spot(size=33):
    image = np.zeros((size, size, 1), np.float32)
    image[size // 2, size // 2] = 255.0
    image[2:6, 2:6] = 100.0  # an off-centre patch, so that changes show
    return tf.constant(image)


def test_augmentation_is_a_function_of_the_key():
    augment = Augmentation.named("standard")
    image = _spot()
    key = tf.constant(12345, tf.int64)
    np.testing.assert_array_equal(augment(image, key), augment(image, key))
    others = [augment(image, tf.constant(k, tf.int64)).numpy() for k in range(6)]
    assert len({o.tobytes() for o in others}) == 6  # every key its own image
    assert all(o.shape == (33, 33, 1) for o in others)
    assert not Augmentation.named("none") and Augmentation.named("flip")
    with pytest.raises(ValueError, match="unknown augmentation 'wild'"):
        Augmentation.named("wild")


def test_flip_alone_flips_or_keeps():
    image = _spot()
    seen = {augment.tobytes() for augment in
            (Augmentation(flip=True)(image, tf.constant(k, tf.int64)).numpy() for k in range(16))}
    assert seen == {image.numpy().tobytes(), image.numpy()[:, ::-1].tobytes()}


def test_rotation_and_zoom_turn_about_the_centre():
    image = _spot()
    for k in range(5):
        turned = Augmentation(flip=False, rotation=30.0, zoom=0.2)(image, tf.constant(k, tf.int64)).numpy()
        assert np.unravel_index(turned[..., 0].argmax(), (33, 33)) == (16, 16)  # the centre stays put
        assert not np.allclose(turned, image.numpy())  # but the patch moved


def test_the_keras_layer_makes_the_same_changes_as_the_tf_data_path():
    augment = Augmentation.named("strong")
    rng = np.random.default_rng(0)
    image = np.cumsum(rng.uniform(0, 8, (40, 40, 1)), axis=0).astype(np.float32)  # smooth, not symmetric
    u = rng.uniform(-1, 1, (6, 7)).astype(np.float32)
    one_by_one = np.stack([augment.apply_batch(tf.constant(image[None]), tf.constant(row[None]))[0].numpy() for row in u])
    batch = keras.ops.convert_to_numpy(augment.apply_batch(tf.constant(np.stack([image] * 6)), tf.constant(u)))
    np.testing.assert_allclose(batch, one_by_one, atol=1e-3)
    assert len({b.round(2).tobytes() for b in batch}) == 6

    layer = augment.layer(seed=1)
    x = np.stack([image] * 4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    trained = keras.ops.convert_to_numpy(layer(x, training=True))
    assert trained.shape == x.shape and not np.allclose(trained[0], x[0])
    assert not np.allclose(trained[0], trained[1])  # a draw per image
    assert Augmentation.named("strong").rotation > Augmentation.named("standard").rotation


# ---------------------------------------------------------------- preprocessing

def test_preprocessing_round_trip_and_errors(tmp_path):
    pre = Preprocessing(64, LABELS, "featurewise", 120.5, 60.25, np.linspace(0.01, 0.3, 14))
    pre.save(str(tmp_path))
    assert Preprocessing.load(str(tmp_path / "model.weights.h5")) == pre
    assert json.loads((tmp_path / "preprocessing.json").read_text())["prevalence"]["Hernia"] == pytest.approx(
        pre.prevalence[LABELS.index("Hernia")])
    assert Preprocessing(64, LABELS, "samplewise").mean_std == (None, None)
    with pytest.raises(ValueError, match="needs the training sample's mean and std"):
        Preprocessing(64, LABELS, "featurewise")
    with pytest.raises(ValueError, match="standardize must be one of"):
        Preprocessing(64, LABELS, "per-batch", 1.0, 1.0)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "preprocessing.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad/preprocessing.json: not valid JSON"):
        Preprocessing.load(str(tmp_path / "bad"))
    with pytest.raises(FileNotFoundError, match="nowhere/preprocessing.json"):
        Preprocessing.load(str(tmp_path / "nowhere" / "model.keras"))


def test_an_older_run_is_evaluated_as_its_file_says(tmp_path):
    (tmp_path / "preprocessing.json").write_text(json.dumps(
        {"image_size": 32, "labels": LABELS, "mean": 100.0, "std": 50.0,
         "train_mode": "samplewise", "eval_mode": "featurewise"}))
    pre = Preprocessing.load(str(tmp_path))
    assert pre.standardize == "featurewise" and pre.mean_std == (100.0, 50.0) and pre.prevalence is None
    with pytest.raises(ValueError, match="no training prevalence"):
        pre.calibrate(np.full((1, 14), 0.5))


def test_calibration_undoes_the_weighted_loss():
    """The weighted loss is minimised by f with odds(f) = odds(P) (1 - p) / p: calibrate gives P back."""
    prevalence = np.linspace(0.02, 0.5, 14)
    pre = Preprocessing(32, LABELS, "samplewise", prevalence=prevalence)
    truth = np.random.default_rng(0).uniform(0.001, 0.999, (50, 14))
    odds = truth / (1 - truth) * (1 - prevalence) / prevalence  # what the weighted loss drives f to
    scores = odds / (1 + odds)
    np.testing.assert_allclose(pre.calibrate(scores), truth, rtol=1e-6)
    np.testing.assert_allclose(pre.calibrate(np.full((1, 14), 0.5))[0], prevalence)  # undecided -> the prior
    order = np.argsort(scores, axis=0)  # AUROC cannot change
    np.testing.assert_array_equal(np.argsort(pre.calibrate(scores), axis=0), order)


# ---------------------------------------------------------------- training reads as evaluation reads

def _image_stats(batches):
    x = np.concatenate([x for x, _ in batches])
    return np.sort(np.round(np.stack([x.mean(axis=(1, 2, 3)), x.std(axis=(1, 2, 3))], axis=1), 4), axis=0)


@pytest.mark.parametrize("mode", ["featurewise", "samplewise"])
def test_training_and_evaluation_standardise_alike(split_phantoms, tmp_path, mode):  # noqa: F811
    """A tiny model trained one way: preprocessing.json says so, and the evaluation batches of the
    training images hold the very pixels training saw (up to order)."""
    images, _, frames = split_phantoms
    out = str(tmp_path / mode)
    train(frames["train"], frames["valid"], images, out, epochs=1, image_size=32, standardize=mode, augment="none",
          model_fn=tiny_model, verbose=0)
    pre = Preprocessing.load(out)
    assert pre.standardize == mode and pre.image_size == 32
    assert pre.prevalence == pytest.approx(tuple(frames["train"][LABELS].mean()))
    recipe = Recipe(image_size=32, standardize=mode, augment="none")
    _, train_batches, _ = _data(frames["train"], frames["valid"], images, recipe, NIH, 8, False, None, None, None)
    seen_in_training = _image_stats(train_batches)
    seen_in_evaluation = _image_stats(pre.batches(frames["train"], images))
    np.testing.assert_allclose(seen_in_training, seen_in_evaluation, atol=2e-3)
    if mode == "samplewise":
        np.testing.assert_allclose(seen_in_evaluation, [[0, 1]] * len(frames["train"]), atol=2e-3)


# ---------------------------------------------------------------- recipe options

def test_cosine_schedule_average_weights_and_auroc_selection(split_phantoms, tmp_path):  # noqa: F811
    images, _, frames = split_phantoms
    out = str(tmp_path / "run")
    model = train(frames["train"], frames["valid"], images, out, epochs=4, batch_size=8, image_size=32, lr=3e-3,
                  schedule="cosine", warmup_epochs=1, ema=0.9, augment="standard", monitor="val_auroc",
                  weight_decay=1e-4, stop_patience=100, model_fn=tiny_model, verbose=0)
    history = pd.read_csv(os.path.join(out, "history.csv"))
    assert list(history["epoch"]) == [0, 1, 2, 3]
    assert history["val_auroc"].between(0, 1).all()
    # Logged at each epoch's end: the peak after the one-epoch warm-up, then the cosine's decay to 0.
    steps = int(np.ceil(len(frames["train"]) / 8))
    done = steps * np.arange(1, 5)
    expected = 3e-3 * (1 + np.cos(np.pi * (done - steps) / (3 * steps))) / 2
    np.testing.assert_allclose(history["learning_rate"], expected, rtol=1e-4, atol=1e-9)
    # The model that comes back is the best epoch's by val_auroc, as evaluated (the average weights).
    best = int(history["val_auroc"].idxmax())
    valid = Preprocessing.load(out).batches(frames["valid"], images)
    scores = model.predict(valid, verbose=0)
    assert mean_auroc(valid.labels, scores) == pytest.approx(history["val_auroc"][best], abs=1e-6)
    shipped = tiny_model(14, None, 32)
    shipped.load_weights(os.path.join(out, "model.weights.h5"))
    import h5py
    with h5py.File(os.path.join(out, "model.weights.h5")) as f:  # weights only: no optimizer state
        assert sorted(f) == ["layers", "vars"], list(f)
    np.testing.assert_allclose(shipped.predict(valid, verbose=0), scores, atol=1e-6)
    # The trained (not averaged) weights went into the resume state, with the average in the optimizer.
    state = keras.models.load_model(os.path.join(out, "resume", "model.keras"))
    assert not all(np.allclose(a, b) for a, b in zip(state.get_weights(), model.get_weights()))
    run = json.loads(open(os.path.join(out, "run.json")).read())
    assert run["recipe"]["schedule"] == "cosine" and len(run["data"]["train_images"]) == len(frames["train"])


def test_a_restart_with_average_weights_goes_on(split_phantoms, tmp_path):  # noqa: F811
    """Stopped after epoch 1 and started again, a run with a schedule and average weights goes on
    from its state: the same epochs, rates and step count as the uninterrupted run, and losses
    close to its losses (not equal: a restarted process draws epoch 2's order and changes
    anew, as epoch 0's)."""
    images, _, frames = split_phantoms

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    settings = dict(epochs=4, image_size=32, lr=3e-3, schedule="cosine", warmup_epochs=1, ema=0.8,
                    stop_patience=100, model_fn=tiny_model, verbose=0)
    whole = train(frames["train"], frames["valid"], images, str(tmp_path / "whole"), **settings)
    with pytest.raises(KeyboardInterrupt):
        train(frames["train"], frames["valid"], images, str(tmp_path / "cut"), callbacks=[Stop()], **settings)
    again = train(frames["train"], frames["valid"], images, str(tmp_path / "cut"), **settings)
    a, b = (pd.read_csv(tmp_path / name / "history.csv") for name in ("whole", "cut"))
    assert list(b["epoch"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(a[["loss", "val_loss"]][:2], b[["loss", "val_loss"]][:2], rtol=1e-5)
    np.testing.assert_allclose(a["learning_rate"], b["learning_rate"], rtol=1e-6)
    np.testing.assert_allclose(a[["loss", "val_loss"]], b[["loss", "val_loss"]], rtol=5e-3)
    assert int(whole.optimizer.iterations) == int(again.optimizer.iterations) == 4 * int(np.ceil(len(frames["train"]) / 8))


def test_another_recipe_in_the_same_folder_is_refused(split_phantoms, tmp_path):  # noqa: F811
    images, _, frames = split_phantoms
    out = str(tmp_path / "run")
    train(frames["train"], frames["valid"], images, out, epochs=1, image_size=32, model_fn=tiny_model, verbose=0)
    before = open(os.path.join(out, "history.csv")).read()
    with pytest.raises(FileExistsError, match="differs in lr"):
        train(frames["train"], frames["valid"], images, out, epochs=1, image_size=32, lr=0.5, model_fn=tiny_model,
              verbose=0)
    assert open(os.path.join(out, "history.csv")).read() == before


def test_weights_none_in_any_case():
    assert base_weights("none") is None and base_weights("None") is None and base_weights(None) is None
    assert base_weights("imagenet") == "imagenet" and base_weights("x.h5") == "x.h5"
    assert build_model(14, "NONE", 32).output_shape == (None, 14)
    with pytest.raises(FileNotFoundError, match="base weights file not found: missing.h5"):
        build_model(14, "missing.h5", 32)
