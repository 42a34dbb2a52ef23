import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

from chestxray.labels import LABELS
from chestxray.losses import compute_class_freqs, get_weighted_loss
from chestxray.model import build_model, load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_class_freqs():
    labels = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1], [1, 0, 1]])
    pos, neg = compute_class_freqs(labels)
    assert np.allclose(pos, [0.8, 0.4, 0.8]) and np.allclose(neg, [0.2, 0.6, 0.2])


def _reference(y, f, wp, wn, eps):
    """The formula, written out with numpy."""
    return sum(np.mean(-(wp[c] * y[:, c] * np.log(f[:, c] + eps) + wn[c] * (1 - y[:, c]) * np.log(1 - f[:, c] + eps)))
               for c in range(y.shape[1]))


def test_weighted_loss_course_case():
    y = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 0], [1, 0, 1]], dtype="float32")
    wp, wn = np.array([0.25, 0.25, 0.5]), np.array([0.75, 0.75, 0.5])
    loss = get_weighted_loss(wp, wn, epsilon=1)
    for value in (0.7, 0.3):
        assert float(loss(y, np.full((4, 3), value, "float32"))) == pytest.approx(-0.4956203, abs=1e-6)


def test_weighted_loss_matches_the_formula():
    rng = np.random.default_rng(0)
    y = (rng.random((6, 14)) < 0.3).astype("float32")
    f = rng.uniform(0.01, 0.99, (6, 14)).astype("float32")
    wp, wn = rng.random(14), rng.random(14)
    for eps in (1e-7, 0.5):
        assert float(get_weighted_loss(wp, wn, eps)(y, f)) == pytest.approx(_reference(y, f, wp, wn, eps), rel=1e-5)


def _base_weights_file(tmp_path, legacy):
    base = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(32, 32, 3))
    if legacy:  # the Keras 2 layout of the course's densenet.hdf5
        from keras.src.legacy.saving import legacy_h5_format
        path = str(tmp_path / "densenet.hdf5")
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, base)
    else:
        path = str(tmp_path / "densenet.weights.h5")
        base.save_weights(path)
    return base, path


@pytest.mark.parametrize("legacy", [False, True])
def test_build_model_with_a_weights_file(tmp_path, legacy):
    base, path = _base_weights_file(tmp_path, legacy)
    model = build_model(weights=path, image_size=64)
    assert model.output_shape == (None, 14) and model.input_shape == (None, 64, 64, 3)
    assert model.layers[-1].activation.__name__ == "sigmoid"
    assert isinstance(model.layers[-2], keras.layers.GlobalAveragePooling2D)
    expected = base.get_weights()
    got = model.get_weights()[:len(expected)]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))
    fresh = build_model(image_size=64)  # random initialisation differs
    assert not np.array_equal(fresh.get_weights()[0], expected[0])


def test_saved_model_loads_in_a_fresh_process(tmp_path):
    model = build_model(image_size=32)
    model.compile("adam", get_weighted_loss(np.full(14, 0.9), np.full(14, 0.1)))
    model.optimizer.build(model.trainable_variables)  # saved with its (fresh) state, as after training
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", model.predict(x, verbose=0))
    script = (
        "import sys, numpy as np, keras, chestxray.losses\n"
        "m = keras.models.load_model(sys.argv[1] + '/m.keras', safe_mode=True)\n"
        "assert type(m.loss).__name__ == 'WeightedBinaryCrossentropy', m.loss\n"
        "assert np.allclose(m.loss.pos_weights, 0.9)\n"
        "p = m.predict(np.load(sys.argv[1] + '/x.npy'), verbose=0)\n"
        "assert np.allclose(p, np.load(sys.argv[1] + '/p.npy'), atol=1e-5)\n"
        "print('loaded')\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr[-2000:]
    # One call loads either kind of file.
    for name in ("m.keras", "m.weights.h5"):
        loaded = load_model(str(tmp_path / name), image_size=32)
        assert np.allclose(loaded.predict(x, verbose=0), np.load(tmp_path / "p.npy"), atol=1e-5)
    assert len(LABELS) == loaded.output_shape[-1]


def test_the_package_imports_without_tensorflow():
    """`import chestxray` and the table modules stay light: the command line's help and `split`
    must not wait for TensorFlow."""
    script = ("import sys, chestxray, chestxray.labels, chestxray.metadata, chestxray.splits, "
              "chestxray.preprocessing, chestxray.recipe, chestxray.cli\n"
              "chestxray.cli.build_parser()\n"
              "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr[-2000:]
