import os
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from chestxray.data import (ImageBatches, ImageFileError, check_files, get_test_and_valid_generator,
                            get_train_generator, image_stats, load_image)
from chestxray.labels import LABELS
from tests.test_train import tiny_model
from util import get_test_and_valid_generator as util_valid_test
from util import get_train_generator as util_train


def _bits(n):
    """Labels that encode the row number in binary, so that the order of a pass can be read back."""
    return (np.arange(n)[:, None] >> np.arange(len(LABELS))[None, :]) & 1


def _frame(names):
    df = pd.DataFrame(_bits(len(names)), columns=LABELS)
    df.insert(0, "Image", names)
    return df


def _rows(y):
    return (np.asarray(y).astype(int) << np.arange(len(LABELS))).sum(axis=1)


@pytest.fixture(scope="module")
def dev(dev_frame, nih):
    return dev_frame.iloc[:48].reset_index(drop=True), os.path.join(nih, "images")


def test_course_generators(dev):
    df, image_dir = dev
    assert util_train is get_train_generator and util_valid_test is get_test_and_valid_generator
    train = get_train_generator(df.iloc[:24], image_dir, "Image", LABELS, batch_size=8)
    valid, test = get_test_and_valid_generator(df.iloc[24:36], df.iloc[36:], df.iloc[:24], image_dir,
                                               "Image", LABELS, sample_size=10, batch_size=5)
    assert (len(train), len(valid), len(test)) == (3, 3, 3)
    assert isinstance(train, tf.data.Dataset)
    x, y = train[0]
    assert x.shape == (8, 320, 320, 3) and x.dtype == np.float32 and y.shape == (8, 14) and y.dtype == np.float32
    assert np.array_equal(x[..., 0], x[..., 2])  # gray repeated
    # Samplewise: every training image has mean 0 and std 1 on its own.
    assert np.allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-4) and np.allclose(x.std(axis=(1, 2, 3)), 1, atol=1e-3)
    assert np.array_equal(train.labels, df.iloc[:24][LABELS].to_numpy())
    # Featurewise: valid/test use the training sample's statistics, not their own.
    xv, yv = valid[2]
    assert xv.shape == (2, 320, 320, 3) and np.array_equal(yv, df.iloc[34:36][LABELS].to_numpy())
    raw = np.stack([load_image(os.path.join(image_dir, n)).numpy() for n in df["Image"][34:36]])
    assert np.allclose(xv[..., :1], (raw - valid.mean) / (valid.std + 1e-6), atol=1e-4)
    assert not np.allclose(xv.mean(axis=(1, 2, 3)), 0, atol=1e-3)
    assert (test.mean, test.std) == (valid.mean, valid.std)


def test_featurewise_stats_come_from_a_seeded_training_sample(dev):
    df, image_dir = dev
    a, _ = get_test_and_valid_generator(df[:4], df[4:8], df, image_dir, "Image", LABELS, sample_size=6, seed=1)
    b, _ = get_test_and_valid_generator(df[:4], df[4:8], df, image_dir, "Image", LABELS, sample_size=6, seed=1)
    c, _ = get_test_and_valid_generator(df[:4], df[4:8], df, image_dir, "Image", LABELS, sample_size=6, seed=2)
    assert (a.mean, a.std) == (b.mean, b.std) != (c.mean, c.std)
    rows = np.sort(np.random.default_rng(1).choice(len(df), 6, replace=False))
    pixels = np.stack([load_image(os.path.join(image_dir, n)).numpy() for n in df["Image"][rows]])
    assert a.mean == pytest.approx(pixels.mean(), rel=1e-5) and a.std == pytest.approx(pixels.std(), rel=1e-4)


def test_fit_and_predict_in_row_order(dev):
    df, image_dir = dev
    train = ImageBatches(df, image_dir, "Image", LABELS, batch_size=8, size=(64, 64), shuffle=True)
    test = ImageBatches(df, image_dir, "Image", LABELS, batch_size=5, size=(64, 64), mean=120.0, std=60.0)
    model = tiny_model(14, None, 64)
    model.compile("adam", "binary_crossentropy")
    history = model.fit(train, validation_data=test, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["val_loss"]).all()
    predicted = model.predict(test, verbose=0)
    stacked = np.concatenate([test[i][0] for i in range(len(test))])
    assert predicted.shape == (48, 14)
    assert np.allclose(predicted, model.predict(stacked, verbose=0), atol=1e-5)


def test_shuffle_reshuffles_each_epoch(dev):
    df, image_dir = dev
    df = _frame(df["Image"].tolist())
    for cache in (None, "memory"):
        batches = ImageBatches(df, image_dir, "Image", LABELS, batch_size=8, size=(32, 32), shuffle=True,
                               seed=4, cache=cache)
        epochs = [np.concatenate([_rows(y) for _, y in batches]) for _ in range(3)]
        for order in epochs:
            assert sorted(order) == list(range(48))
        assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    again = ImageBatches(df, image_dir, "Image", LABELS, size=(32, 32), shuffle=True, seed=4)
    first = ImageBatches(df, image_dir, "Image", LABELS, size=(32, 32), shuffle=True, seed=4)
    assert np.array_equal(np.concatenate([_rows(y) for _, y in again]),
                          np.concatenate([_rows(y) for _, y in first]))
    assert np.array_equal(_rows(again[0][1]), _rows(first[0][1]))
    plain = ImageBatches(df, image_dir, "Image", LABELS, batch_size=8, size=(32, 32))
    assert list(np.concatenate([_rows(y) for _, y in plain])) == list(range(48))


def test_images_match_their_labels_after_shuffle_and_cache(dev, tmp_path):
    df, image_dir = dev
    df = _frame(df["Image"].tolist())
    reference = {r: load_image(os.path.join(image_dir, df["Image"][r]), (32, 32)).numpy() for r in range(48)}
    for cache in (None, "memory", str(tmp_path / "cache")):
        batches = ImageBatches(df, image_dir, "Image", LABELS, batch_size=16, size=(32, 32), shuffle=True,
                               cache=cache, mean=0.0, std=1.0)
        for _ in range(2):
            for x, y in batches:
                for image, row in zip(x.numpy(), _rows(y)):
                    assert np.allclose(image[..., :1], reference[row], atol=1e-3)
    assert any(p.name.startswith("cache") for p in tmp_path.iterdir())


def test_horizontal_flip(dev):
    df, image_dir = dev
    df = _frame(df["Image"].tolist()[:32])
    batches = ImageBatches(df, image_dir, "Image", LABELS, batch_size=32, size=(32, 32), mean=0.0, std=1.0,
                           horizontal_flip=True, seed=0)
    counts = []
    for _ in range(2):
        x, y = next(iter(batches))
        flips = []
        for image, row in zip(x.numpy()[..., 0], _rows(y)):
            original = load_image(os.path.join(image_dir, df["Image"][row]), (32, 32)).numpy()[..., 0]
            assert np.allclose(image, original, atol=1e-3) or np.allclose(image, original[:, ::-1], atol=1e-3)
            flips.append(np.allclose(image, original[:, ::-1], atol=1e-3))
        counts.append(flips)
    assert 4 < sum(counts[0]) < 28 and counts[0] != counts[1]  # about half, and new coins each epoch


def test_every_kind_of_file_decodes_alike(nih, tmp_path):
    src = os.path.join(nih, "images", "00000061_012.png")
    gray = np.asarray(Image.open(src).convert("L"))
    Image.fromarray(gray).save(tmp_path / "g8.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    Image.fromarray(gray).convert("RGB").save(tmp_path / "rgb.png")
    Image.fromarray(gray).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(gray).save(tmp_path / "j.jpg", quality=95)
    names = ["g8.png", "g16.png", "rgb.png", "rgba.png", "j.jpg"]
    assert check_files([str(tmp_path / n) for n in names]) == ["png8", "png16", "png8", "png8", "jpeg"]
    # One table with every kind, through the pipeline.
    x, _ = ImageBatches(_frame(names), str(tmp_path), "Image", LABELS, batch_size=5, size=(96, 96),
                        mean=0.0, std=1.0)[0]
    for image in x[1:4]:
        assert np.array_equal(image, x[0])
    assert np.abs(x[4] - x[0]).mean() < 1.5  # JPEG is lossy
    # Tables of one kind each take the specialised decoder, with the same result.
    for name in names:
        single, _ = ImageBatches(_frame([name]), str(tmp_path), "Image", LABELS, size=(96, 96),
                                 mean=0.0, std=1.0)[0]
        assert np.allclose(single[0], x[names.index(name)], atol=1e-3)


def test_full_resolution_originals(nih, originals):
    names = sorted(os.listdir(originals))[:4]
    big = ImageBatches(_frame(names), originals, "Image", LABELS, size=(96, 96),
                       mean=0.0, std=1.0)
    small = ImageBatches(_frame(names), os.path.join(nih, "images"), "Image", LABELS, size=(96, 96),
                         mean=0.0, std=1.0)
    (a, _), (b, _) = big[0], small[0]
    assert a.shape == b.shape == (4, 96, 96, 3)
    assert np.abs(a - b).mean() < 6  # same radiographs, resized from 1024 or from 320 px


def test_bad_files_are_named_before_any_work(nih, tmp_path):
    src = os.path.join(nih, "images", "00000061_012.png")
    shutil.copy(src, tmp_path / "good.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(open(src, "rb").read()[:5000])
    (tmp_path / "text.png").write_text("not an image at all")
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    names = ["good.png", "missing.png", "empty.png", "cut.png", "text.png", "cut.jpg"]
    with pytest.raises(ImageFileError) as error:
        get_train_generator(_frame(names), str(tmp_path), "Image", LABELS)
    message = str(error.value)
    assert message.startswith("5 of 6 image file(s) cannot be used")
    for name, why in [("missing.png", "missing"), ("empty.png", "empty"), ("cut.png", "truncated PNG"),
                      ("text.png", "not a PNG, JPEG or DICOM"), ("cut.jpg", "truncated JPEG")]:
        assert f"{name} ({why}" in message
    assert "good.png" not in message


def _broken_png(src):
    """The bytes of `src` damaged inside the image data: signature and IEND intact, so only decoding fails."""
    data = bytearray(open(src, "rb").read())
    data[3000:3200] = bytes(200)
    return bytes(data)


@pytest.mark.parametrize("position", [0, 2, 4])
@pytest.mark.parametrize("shuffle", [False, True])
def test_corrupt_file_stops_the_pass_with_its_name(nih, tmp_path, position, shuffle):
    src = os.path.join(nih, "images", "00000061_012.png")
    names = ["a.png", "b.png", "c.png", "d.png"]
    for name in names:
        shutil.copy(src, tmp_path / name)
    names.insert(position, "broken.png")
    (tmp_path / "broken.png").write_bytes(_broken_png(src))
    for seed in range(4 if shuffle else 1):  # shuffled, the broken file lands at other epoch positions
        batches = ImageBatches(_frame(names), str(tmp_path), "Image", LABELS, batch_size=2, size=(32, 32),
                               shuffle=shuffle, seed=seed)
        with pytest.raises(tf.errors.InvalidArgumentError, match="Cannot decode image file.*broken.png"):
            for _ in batches:
                pass


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_table_of_only_broken_files_names_one(nih, tmp_path, shuffle):
    names = ["broken1.png", "broken2.png", "broken3.png"]
    for name in names:
        (tmp_path / name).write_bytes(_broken_png(os.path.join(nih, "images", "00000061_012.png")))
    batches = ImageBatches(_frame(names), str(tmp_path), "Image", LABELS, size=(32, 32), shuffle=shuffle)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Cannot decode image file.*broken\d.png"):
        for _ in batches:
            pass


def test_table_errors(dev):
    df, image_dir = dev
    with pytest.raises(ValueError, match=r"the table: missing column\(s\) \['Nope'\]"):
        ImageBatches(df, image_dir, "Image", LABELS + ["Nope"])
    bad = df.copy()
    bad.loc[3, "Mass"] = 2
    with pytest.raises(ValueError, match=r"'Mass', row 3 .*value 2 is not 0 or 1"):
        ImageBatches(bad, image_dir, "Image", LABELS)
    bad = df.copy().astype({"Edema": float})
    bad.loc[5, "Edema"] = np.nan
    with pytest.raises(ValueError, match=r"'Edema', row 5"):
        ImageBatches(bad, image_dir, "Image", LABELS)
    with pytest.raises(ValueError, match="listed twice"):
        ImageBatches(pd.concat([df, df.iloc[:1]]), image_dir, "Image", LABELS)
    for name in ["/etc/passwd", "../images/00000061_012.png", "sub/../../x.png"]:
        escaped = df.copy()
        escaped.loc[2, "Image"] = name
        with pytest.raises(ValueError, match="row 2.*inside the image directory"):
            ImageBatches(escaped, image_dir, "Image", LABELS)


def test_image_stats(dev):
    df, image_dir = dev
    paths = [os.path.join(image_dir, n) for n in df["Image"][:5]]
    mean, std = image_stats(paths, (64, 64))
    pixels = np.stack([load_image(p, (64, 64)).numpy() for p in paths])
    assert mean == pytest.approx(pixels.mean(), rel=1e-6) and std == pytest.approx(pixels.std(), rel=1e-5)


def test_index_errors(dev):
    df, image_dir = dev
    batches = ImageBatches(df.iloc[:10], image_dir, "Image", LABELS, batch_size=4, size=(32, 32))
    assert len(batches) == 3 and batches[-1][0].shape[0] == 2
    with pytest.raises(IndexError, match="3 batches"):
        batches[3]
    whole = ImageBatches(df.iloc[:10], image_dir, "Image", LABELS, batch_size=4, size=(32, 32), drop_remainder=True)
    assert len(whole) == 2 and [len(x) for x, _ in whole] == [4, 4]
