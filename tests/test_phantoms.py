import os
import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

from chestxray.labels import LABELS
from chestxray.metadata import read_bboxes, read_nih_metadata
from chestxray.phantoms import PHANTOM_LABELS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_phantoms_are_an_nih_release(phantoms):
    out, metadata = phantoms
    table = read_nih_metadata(metadata)
    assert len(table) == 60 and 20 < table["PatientId"].nunique() < 60  # several images per patient
    assert table[PHANTOM_LABELS].sum().min() > 5
    assert table[[label for label in LABELS if label not in PHANTOM_LABELS]].to_numpy().sum() == 0
    boxes = read_bboxes(os.path.join(out, "BBox_List_phantoms.csv"))
    for _, row in table.iterrows():
        image = np.asarray(Image.open(os.path.join(out, "images", row["Image"])))
        assert image.shape == (128, 128) and image.dtype == np.uint8
        for label in PHANTOM_LABELS:
            mask_path = os.path.join(out, "masks", f"{row['Image'][:-4]}_{label}.png")
            assert os.path.exists(mask_path) == bool(row[label])
            if row[label]:
                mask = np.asarray(Image.open(mask_path)) > 0
                box = boxes[(boxes["Image"] == row["Image"]) & (boxes["Label"] == label)].iloc[0]
                ys, xs = np.nonzero(mask)
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (
                    box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"])


def test_lesions_show_in_the_pixels(phantoms):
    out, metadata = phantoms
    table = read_nih_metadata(metadata)
    for label, brighter in (("Mass", True), ("Nodule", True), ("Pneumothorax", False)):
        for name in table.loc[table[label] == 1, "Image"][:3]:
            image = np.asarray(Image.open(os.path.join(out, "images", name))).astype(float)
            mask = np.asarray(Image.open(os.path.join(out, "masks", f"{name[:-4]}_{label}.png"))) > 0
            ring = np.zeros_like(mask)
            ys, xs = np.nonzero(mask)
            ring[max(ys.min() - 6, 0):ys.max() + 7, max(xs.min() - 6, 0):xs.max() + 7] = True
            inside, around = image[mask].mean(), image[ring & ~mask].mean()
            assert (inside > around + 10) if brighter else (inside < around - 10), (label, name)


def test_same_seed_same_phantoms(tmp_path):
    from chestxray.phantoms import make_phantoms
    a = make_phantoms(str(tmp_path / "a"), n=5, seed=1, size=64)
    b = make_phantoms(str(tmp_path / "b"), n=5, seed=1, size=64)
    assert open(a).read() == open(b).read()
    names = pd.read_csv(a)["Image Index"]
    for name in names:
        assert open(tmp_path / "a" / "images" / name, "rb").read() == open(tmp_path / "b" / "images" / name, "rb").read()


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "chestxray", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


def test_cli_help_and_phantoms(tmp_path):
    result = _run("--help")
    assert result.returncode == 0
    for command in ("split", "phantoms", "demo"):
        assert command in result.stdout
    result = _run("phantoms", "--out", str(tmp_path), "--n", "7", "--size", "64")
    assert result.returncode == 0, result.stderr
    assert len(os.listdir(tmp_path / "images")) == 7
