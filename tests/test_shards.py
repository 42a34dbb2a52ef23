import json
import os

import numpy as np
import pandas as pd
import pytest

from chestxray.cli import main
from chestxray.data import load_image
from chestxray.labels import LABELS, Table
from chestxray.shards import read_stats, shard_batches, write_shards
from chestxray.train import train
from tests.test_train import tiny_model


@pytest.fixture(scope="module")
def shards(dev_frame, nih, tmp_path_factory):
    df = dev_frame.iloc[:20].reset_index(drop=True)
    folder = tmp_path_factory.mktemp("shards") / "train"
    n = write_shards(df, os.path.join(nih, "images"), str(folder), image_size=48, per_shard=8, sample_size=6)
    return df, folder, n


def test_shards_hold_the_pipeline_images(shards, nih):
    df, folder, n = shards
    assert n == 3 and len(list(folder.glob("shard-*-of-00003.tfrecord"))) == 3
    assert pd.read_csv(folder / "index.csv")["Image"].tolist() == df["Image"].tolist()
    batches = shard_batches(str(folder), batch_size=6, mean=0.0, std=1.0)
    assert len(batches) == 4 and np.array_equal(batches.labels, df[LABELS].to_numpy())
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    assert x.shape == (20, 48, 48, 3) and np.array_equal(y, df[LABELS].to_numpy(dtype="float32"))
    for i, name in enumerate(df["Image"]):
        reference = load_image(os.path.join(nih, "images", name), (48, 48)).numpy()
        assert np.abs(x[i, ..., :1] - reference).max() <= 0.5 + 1e-3  # 8-bit rounding only
    stats = read_stats(str(folder))
    rows = np.random.default_rng(1).choice(20, size=6, replace=False)
    sample = np.stack([load_image(os.path.join(nih, "images", df["Image"][r]), (48, 48)).numpy() for r in rows])
    assert stats["mean"] == pytest.approx(sample.mean(), rel=1e-6) and stats["std"] == pytest.approx(sample.std(), rel=1e-5)
    assert stats["sample_size"] == 6 and stats["image_size"] == 48


def test_shuffled_shards_cover_every_row_each_epoch(shards):
    df, folder, _ = shards
    batches = shard_batches(str(folder), batch_size=4, shuffle=True, seed=3)
    first_pixels = []
    for _ in range(2):
        x = np.concatenate([b[0].numpy() for b in batches])
        assert len(x) == 20
        assert np.allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-4)  # samplewise without mean/std
        first_pixels.append(x[:, 0, 0, 0])
    assert sorted(np.round(first_pixels[0], 4)) == sorted(np.round(first_pixels[1], 4))
    assert not np.array_equal(first_pixels[0], first_pixels[1])


def test_shards_are_not_overwritten(shards, nih):
    df, folder, _ = shards
    with pytest.raises(FileExistsError, match="already holds shards"):
        write_shards(df, os.path.join(nih, "images"), str(folder))


def test_train_from_shards_of_another_table(dev_frame, nih, tmp_path):
    """`shard`, then `train` from the shards, on a table of other columns; the validation folder is
    one shard (fewer than the parallel readers), whose shuffled batches still read."""
    images, table = os.path.join(nih, "images"), Table(("Mass", "Edema"), "file", "who")
    df = dev_frame.iloc[:40].rename(columns={"Image": "file", "PatientId": "who"})
    df.iloc[:30].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[30:].to_csv(tmp_path / "valid.csv", index=False)
    for name in ("train", "valid"):
        main(["shard", "--csv", str(tmp_path / f"{name}.csv"), "--image-dir", images, "--out", str(tmp_path / name),
              "--image-size", "32", "--per-shard", "16", "--labels", "Mass,Edema", "--x-col", "file"])
    valid = shard_batches(str(tmp_path / "valid"), 4, shuffle=True, y_cols=list(table.labels))
    assert sum(len(x) for x, _y in valid) == 10
    train(None, None, None, str(tmp_path / "run"), table=table, epochs=2, image_size=320, model_fn=tiny_model,
          verbose=0, train_shards=str(tmp_path / "train"), valid_shards=str(tmp_path / "valid"))
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history["epoch"]) == [0, 1] and np.isfinite(history["val_loss"]).all()
    preprocessing = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert preprocessing["image_size"] == 32 and preprocessing["labels"] == ["Mass", "Edema"]  # from the shards
    assert preprocessing["mean"] == read_stats(str(tmp_path / "train"))["mean"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["table"]["x_col"] == "file"
