import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest

from chestxray.cli import main
from chestxray.evaluate import evaluate
from chestxray.explain import Cam, explain_files
from chestxray.labels import CHEXPERT_LABELS
from chestxray.metadata import chexpert_table, read_nih_metadata
from chestxray.model import load_model
from chestxray.preprocessing import Preprocessing
from chestxray.splits import split_frame
from chestxray.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_model(n_classes, weights, image_size):
    """A small CNN for testing the training machinery quickly (no batch norm)."""
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="sigmoid")(x))


@pytest.fixture(scope="module")
def split_phantoms(phantoms, tmp_path_factory):
    out, metadata = phantoms
    frames = split_frame(read_nih_metadata(metadata), fractions=[0.7, 0.15, 0.15], seed=0)
    folder = tmp_path_factory.mktemp("split")
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return str(out / "images"), folder, frames


# A SIGKILL from outside at a moment the run does not choose (every kill point: test_faults.py). A small
# model: the state is model.keras whatever the network; DenseNet121's loads fresh: test_losses_model.py
KILLABLE = """
import sys, time, keras, pandas as pd
sys.path.insert(0, {root!r})
from chestxray.train import train
from tests.test_train import tiny_model
slow = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: time.sleep({pause}))
train(pd.read_csv({split!r} + '/train.csv'), pd.read_csv({split!r} + '/valid.csv'), {images!r}, {out!r},
      epochs=3, batch_size=8, lr=1e-3, image_size=32, lr_patience=0, lr_factor=0.5, lr_min_delta=1e9,
      stop_patience=100, callbacks=[slow], model_fn=tiny_model, verbose=0)
print('finished')
"""


def _history(out):
    path = os.path.join(out, "history.csv")
    return pd.read_csv(path) if os.path.exists(path) and os.path.getsize(path) else pd.DataFrame()


def test_resumes_after_sigkill(split_phantoms, tmp_path):
    images, split, frames = split_phantoms
    out = str(tmp_path / "run")

    def start(pause):
        script = KILLABLE.format(root=ROOT, pause=pause, split=str(split), images=images, out=out)
        return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    run = start(pause=0.3)
    deadline = time.time() + 300
    while len(_history(out)) < 2 and time.time() < deadline and run.poll() is None:
        time.sleep(0.1)
    assert run.poll() is None, run.communicate()[1][-2000:]
    time.sleep(0.7)  # into the next epoch
    run.send_signal(signal.SIGKILL)
    run.wait()
    done = json.loads(open(os.path.join(out, "resume", "state.json")).read())["epoch"]
    assert done == 1

    run = start(pause=0)
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0 and "finished" in stdout, stderr[-2000:]
    assert f"resuming after epoch {done}" in stdout
    history = _history(out)
    assert list(history["epoch"]) == [0, 1, 2]  # none missing, none repeated
    # The learning rate halves after every epoch but the first (lr_min_delta is never met):
    # only if the optimizer's rate and ReduceLROnPlateau's state both survived the kill.
    assert np.allclose(history["learning_rate"], [1e-3, 1e-3, 5e-4], rtol=1e-5)
    model = keras.models.load_model(os.path.join(out, "resume", "model.keras"), safe_mode=True)
    steps = int(np.ceil(len(frames["train"]) / 8))
    assert int(model.optimizer.iterations) == 3 * steps  # Adam's state carried over too
    for name in ("best.keras", "loss.png", "preprocessing.json"):
        assert os.path.exists(os.path.join(out, name))


class PoisonAt(keras.callbacks.Callback):
    """Turns the weights into NaN when an epoch starts, as a diverging run would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.set_weights([np.full_like(w, np.nan) for w in self.model.get_weights()])


def test_nan_loss_stops_with_a_message_and_keeps_the_best(split_phantoms, tmp_path):
    images, _, frames = split_phantoms
    out = str(tmp_path / "nan")
    with pytest.raises(FloatingPointError, match="loss became nan in epoch 2.*best model so far is intact"):
        train(frames["train"], frames["valid"], images, out, epochs=5, image_size=32, lr=1e-3,
              stop_patience=100, model_fn=tiny_model, callbacks=[PoisonAt(2)], verbose=0)
    history = _history(out)
    assert list(history["epoch"][:2]) == [0, 1] and np.isfinite(history["val_loss"][:2]).all()
    best = keras.models.load_model(os.path.join(out, "best.keras"))
    assert all(np.isfinite(w).all() for w in best.get_weights())
    assert not os.path.exists(os.path.join(out, "model.keras"))
    assert json.loads(open(os.path.join(out, "resume", "state.json")).read())["epoch"] == 1  # diverged: not committed


def test_another_runs_folder_is_not_overwritten(split_phantoms, tmp_path):
    images, _, frames = split_phantoms
    (tmp_path / "history.csv").write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(FileExistsError, match="holds another run's files but no .*run.json"):
        train(frames["train"], frames["valid"], images, str(tmp_path), epochs=1, image_size=32,
              model_fn=tiny_model, verbose=0)
    assert (tmp_path / "history.csv").read_text() == "epoch,loss\n0,1.0\n"
    assert sorted(os.listdir(tmp_path)) == ["history.csv"]  # nothing else written either


def test_train_command(split_phantoms, tmp_path, capsys, monkeypatch):
    """The command line's whole run. DenseNet121 itself trains in test_resumes_after_sigkill;
    here a tiny model stands in for it (building and tracing DenseNet121 costs about a minute)."""
    images, split, frames = split_phantoms
    out = tmp_path / "cli"
    monkeypatch.setattr("chestxray.train.build_model", lambda n, weights, size, backbone: tiny_model(n, weights, size))
    main(["train", "--train-csv", str(split / "train.csv"), "--valid-csv", str(split / "valid.csv"),
          "--image-dir", images, "--out", str(out), "--epochs", "1", "--image-size", "32"])
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [0] and {"loss", "val_loss", "learning_rate"} <= set(history.columns)
    for name in ("model.keras", "best.keras", "loss.png", "preprocessing.json"):
        assert (out / name).exists(), name
    assert any(files for _, _, files in os.walk(out / "logs"))  # TensorBoard wrote events
    model = keras.models.load_model(out / "model.keras")
    shipped = tiny_model(14, None, 32)
    assert model.output_shape == (None, 14) and len(model.layers) == len(shipped.layers)
    shipped.load_weights(out / "model.weights.h5")  # the weights alone, for the same architecture
    preprocessing = json.loads((out / "preprocessing.json").read_text())
    assert preprocessing["image_size"] == 32 and 0 < preprocessing["mean"] < 255
    # Run again: nothing left to do, nothing repeated.
    main(["train", "--train-csv", str(split / "train.csv"), "--valid-csv", str(split / "valid.csv"),
          "--image-dir", images, "--out", str(out), "--epochs", "1", "--image-size", "32"])
    assert "nothing to do" in capsys.readouterr().out
    assert len(pd.read_csv(out / "history.csv")) == 1


def test_distributed_matches_one_device():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "distributed_check.py")], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "same loss and weights on 2 replicas" in result.stdout
    assert "densenet step under MirroredStrategy" in result.stdout
    assert "train() under MirroredStrategy: 2 epochs" in result.stdout


WORKER = """
import sys, pandas as pd
sys.path.insert(0, {root!r})
from tests.test_train import tiny_model
from chestxray.train import train
train(pd.read_csv({split!r} + '/train.csv'), pd.read_csv({split!r} + '/valid.csv'), {images!r}, {out!r},
      epochs=2, batch_size=4, image_size=32, strategy='multiworker', model_fn=tiny_model, verbose=0)
print('worker done')
"""


def _free_ports(n):
    sockets = [socket.create_server(("localhost", 0)) for _ in range(n)]  # open together: n different ports
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_on_two_local_processes(split_phantoms, tmp_path):
    images, split, _ = split_phantoms
    out = str(tmp_path / "mw")
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    script = WORKER.format(root=ROOT, split=str(split), images=images, out=out)
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        errors = [line for line in stderr.splitlines() if "Error" in line]
        assert worker.returncode == 0 and "worker done" in stdout, errors[-5:]
    chief = pd.read_csv(os.path.join(out, "history.csv"))
    other = pd.read_csv(os.path.join(out, ".worker-1", "history.csv"))  # written apart
    assert list(chief["epoch"]) == [0, 1]
    # The workers train one model: the same (all-reduced) losses on both.
    assert np.allclose(chief["loss"], other["loss"]) and np.allclose(chief["val_loss"], other["val_loss"])
    assert os.path.exists(os.path.join(out, "model.keras")) and os.path.exists(os.path.join(out, "loss.png"))
    assert not os.path.exists(os.path.join(out, ".worker-1", "loss.png"))


def test_multiworker_workaround_refuses_an_untested_keras(monkeypatch):
    from chestxray import multiworker

    monkeypatch.setattr(multiworker, "_patched", False)
    monkeypatch.setattr(multiworker.keras, "__version__", "3.99.0")
    before = multiworker.trainer.reduce_per_replica
    with pytest.raises(RuntimeError, match=r"keras-team/keras#20585.*this is Keras 3\.99\.0"):
        multiworker.patch_keras()
    assert multiworker.trainer.reduce_per_replica is before  # nothing replaced


@pytest.mark.parametrize("backbone", ["ResNet50", "EfficientNetB0"])  # DenseNet121: every other test
def test_each_backbone_trains_reloads_through_predict_and_explains(backbone, nih, tmp_path, capsys):
    """The backbone is a value: recorded in preprocessing.json, read back by `predict` and
    `load_model`, and its flat graph lets Grad-CAM reach an inner layer."""
    images = os.path.join(nih, "images")
    table = pd.read_csv(os.path.join(nih, "train.csv"))
    out = str(tmp_path / backbone)
    trained = train(table.head(8), table.iloc[8:12], images, out, epochs=1, batch_size=4, image_size=32,
                    augment="none", sample_size=8, backbone=backbone, verbose=0)
    pre = Preprocessing.load(out)
    run = json.loads(open(os.path.join(out, "run.json")).read())
    assert pre.backbone == backbone and run["recipe"]["backbone"] == backbone
    assert run["augmentation"] == {"flip": False, "rotation": 0.0, "shift": 0.0, "zoom": 0.0, "contrast": 0.0}
    weights = os.path.join(out, "model.weights.h5")
    reloaded = load_model(weights)
    assert reloaded.name == f"chestxray_{backbone.lower()}"
    path = os.path.join(images, table["Image"][0])
    main(["predict", path, "--model", weights, "--json"])
    predicted = json.loads(capsys.readouterr().out)[path]
    expected = trained.predict(pre.load_file(path)[0][None], verbose=0)[0]
    np.testing.assert_allclose([predicted[label]["score"] for label in pre.labels], expected, atol=1e-5)
    _gray, heatmaps, _probabilities = next(explain_files(reloaded, [path], pre, ["Mass", "Edema"]))
    assert heatmaps.shape == (2, 32, 32) and np.isfinite(heatmaps).all()
    # Another method alone keeps the model card's layer, which this backbone lacks: its last 4-D one.
    _gray, heatmaps, _probabilities = next(explain_files(reloaded, [path], pre, ["Mass"], Cam.chosen(method="hirescam")))
    assert heatmaps.shape == (1, 32, 32)


def test_a_model_of_other_labels_trains_and_is_scored_on_the_labels_it_shares(nih, tmp_path, capsys):
    """The table as a value: CheXpert's five labels under its column names train a five-output
    model; evaluated on an NIH table, it is scored on the four labels both have, and says so."""
    images = os.path.join(nih, "images")
    nih_train = pd.read_csv(os.path.join(nih, "train.csv"))
    chexpert = nih_train.rename(columns={"Image": "Path", "PatientId": "Patient", "Effusion": "Pleural Effusion"})
    table = chexpert_table()
    out = str(tmp_path / "run")
    train(chexpert.head(16), chexpert.iloc[16:24], images, out, table=table, model_fn=tiny_model, epochs=1,
          batch_size=8, image_size=32, sample_size=8, verbose=0)
    run = json.loads(open(os.path.join(out, "run.json")).read())
    assert run["table"] == {"labels": CHEXPERT_LABELS, "x_col": "Path", "patient_col": "Patient"}
    pre = Preprocessing.load(out)
    assert list(pre.labels) == CHEXPERT_LABELS
    model = keras.models.load_model(os.path.join(out, "model.keras"))
    assert model.output_shape == (None, 5)
    test = pd.read_csv(os.path.join(nih, "test.csv")).head(40)
    metrics = evaluate(model, test, images, pre, str(tmp_path / "eval"), n_boot=20, gallery=1)
    assert list(metrics.index) == ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema"]
    assert "no column for Pleural Effusion" in capsys.readouterr().err
    scores = pd.read_csv(tmp_path / "eval" / "scores.csv")
    assert list(scores.columns) == ["Image", *CHEXPERT_LABELS] and len(scores) == 40
