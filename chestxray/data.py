"""The input pipeline: one preprocessing for training, evaluation and explanation, on tf.data.

Every image goes through the same two steps:

1. `load_image`: decode (PNG 8/16-bit, gray/RGB/RGBA, or JPEG) to one gray channel
   on the 0..255 scale, resized (bilinear) to the model's size;
2. `standardize`: subtract a mean and divide by a standard deviation; then `to_rgb`
   repeats the gray channel three times for the ImageNet-shaped DenseNet input. Training
   images use their own mean and std ("samplewise"); validation and test images
   use the mean and std of a sample of *training* images ("featurewise"), because
   at prediction time there is one image, not a batch of test images to learn from.

`get_train_generator` / `get_test_and_valid_generator` keep the course's calls
and return `ImageBatches`: a `tf.data.Dataset` that `model.fit` and
`model.predict` take directly, with `len()`, `[i]` and `.labels` as the
notebook uses them.
"""

import math
import os
from pathlib import PurePath

import numpy as np
import tensorflow as tf

from . import pixels
from .augment import Augmentation
from .labels import require_columns

# Fixed parallelism, autotuning off: tf.data's autotuning thread made ending an
# iterator (every epoch) stall for up to a second on 2 cores. Static graph rewrites
# off too: none applies to this pipeline, and running them made every iterator
# (every epoch) start 20 ms later (bench/RESULTS.md).
PARALLEL = os.cpu_count() or 2
OPTIONS = tf.data.Options()
OPTIONS.autotune.enabled = False
OPTIONS.experimental_optimization.apply_default_optimizations = False
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its CRC end every PNG
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
TAIL_BYTES = 1024  # how far from the end of a file we look for its end marker


class ImageFileError(ValueError):
    """Image files listed in a table that are missing, empty or not whole PNG/JPEG files."""


# ----------------------------------------------------------------------------
# Checks on the table and the files, before anything is decoded.

def check_table(df, x_col, y_cols):
    """Clear errors for what would otherwise fail late or silently: columns, labels, names."""
    require_columns(df, [x_col, *y_cols], "the table")
    for column in y_cols:
        values = df[column]
        bad = ~values.isin([0, 1])
        if bad.any():
            row = bad.to_numpy().argmax()
            raise ValueError(f"label column {column!r}, row {row} ({df[x_col].iloc[row]}): "
                             f"value {values.iloc[row]} is not 0 or 1")
    names = df[x_col]
    if names.isna().any():
        raise ValueError(f"column {x_col!r}, row {int(names.isna().to_numpy().argmax())}: no file name")
    repeated = names[names.duplicated()]
    if len(repeated):
        raise ValueError(f"column {x_col!r}: {len(repeated)} image(s) listed twice, e.g. {repeated.iloc[0]!r}")
    for row, name in enumerate(names):
        path = PurePath(str(name))
        if path.is_absolute() or ".." in path.parts or os.path.isabs(str(name)):
            raise ValueError(f"column {x_col!r}, row {row}: {name!r} must be a name inside the "
                             "image directory (no absolute path, no '..')")


def sniff(path):
    """'png8', 'png16', 'jpeg' or 'dicom' from the file's first and last bytes, or why it cannot be used.

    Checking the end marker catches empty, truncated and non-image files for the
    price of two small reads, instead of a whole extra decoding pass.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(132)
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        return None, "missing"
    except OSError as e:
        return None, f"unreadable: {e.strerror}"
    if size == 0:
        return None, "empty"
    if head.startswith(PNG_SIGNATURE):
        return ("png16" if head[24] == 16 else "png8", None) if PNG_END in tail else (
            None, "truncated PNG (no IEND chunk at the end)")
    if head.startswith(JPEG_START):
        return ("jpeg", None) if JPEG_END in tail else (None, "truncated JPEG (no end-of-image marker)")
    if head[128:132] == b"DICM":  # the DICOM preamble is 128 bytes, then this magic
        return "dicom", None
    return None, "not a PNG, JPEG or DICOM file"


def check_files(paths):
    """The kinds of the files (see `sniff`); raises ImageFileError naming the files at fault."""
    kinds, problems = [], []
    for path in paths:
        kind, problem = sniff(path)
        kinds.append(kind)
        if problem:
            problems.append(f"{path} ({problem})")
    if problems:
        raise ImageFileError(f"{len(problems)} of {len(paths)} image file(s) cannot be used: "
                             + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
    return kinds


# ----------------------------------------------------------------------------
# The one preprocessing.

def decoder_for(kinds):
    """One decoder for a whole table: a per-image choice (tf.cond) halves the throughput."""
    kinds = set(kinds)
    if "dicom" in kinds:
        raise ImageFileError("DICOM files in a table: training and evaluation read PNG or JPEG; "
                             "`predict` and `gradcam` read DICOM files one by one")
    if kinds <= {"png8"}:
        return lambda data: tf.io.decode_png(data, channels=1)
    if kinds <= {"png8", "png16"}:
        return lambda data: tf.io.decode_png(data, channels=1, dtype=tf.uint16)
    if kinds == {"jpeg"}:
        return lambda data: tf.io.decode_jpeg(data, channels=1)
    return lambda data: tf.io.decode_image(data, channels=1, dtype=tf.float32, expand_animations=False)


def load_image(path, size=(320, 320), decode=None):
    """One file -> float32 (height, width, 1) on the 0..255 scale, whatever its bit depth."""
    decode = decode or decoder_for(["png8", "png16", "jpeg"])
    image = decode(tf.io.read_file(path))
    # To the 8-bit scale: decode_image gives floats in [0, 1], decode_png integers of 8 or 16 bits.
    scale = 255.0 if image.dtype.is_floating else 255.0 / image.dtype.max
    # Bilinear without antialiasing (which costs half again the PNG decode: bench/RESULTS.md),
    # straight from the integers: no float copy of the full-size image.
    resized = tf.image.resize(image, size)
    return resized if scale == 1.0 else resized * scale


def read_dicom(path):
    """A DICOM radiograph -> float (height, width) on the 0..255 scale, bright = dense, as in the PNGs.

    Stored values go through the modality rescale (slope, intercept) and the
    window in the file if it has one; MONOCHROME1 (low values bright) is inverted.
    """
    import pydicom
    from pydicom.pixels import apply_rescale

    ds = pydicom.dcmread(path)
    pixels = apply_rescale(ds.pixel_array, ds).astype(np.float64)
    if pixels.ndim != 2:
        raise ImageFileError(f"{path}: DICOM pixel data of shape {pixels.shape}; expected one gray frame")
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = float(np.ravel(ds.WindowCenter)[0]), float(np.ravel(ds.WindowWidth)[0])
        pixels = np.clip(pixels, center - width / 2, center + width / 2)
    low, high = pixels.min(), pixels.max()
    pixels = (pixels - low) / (high - low or 1.0) * 255.0
    return 255.0 - pixels if ds.PhotometricInterpretation == "MONOCHROME1" else pixels


def load_file(path, size=(320, 320)):
    """One PNG, JPEG or DICOM file -> what `load_image` gives, for prediction on single files."""
    kind, problem = sniff(path)
    if problem:
        raise ImageFileError(f"{path}: {problem}")
    if kind == "dicom":
        return tf.image.resize(tf.constant(read_dicom(path)[..., None], tf.float32), size)
    return load_image(path, size, decoder_for([kind]))


def standardize(image, mean=None, std=None):
    """`pixels.standardize` with `mean` and `std`; without them, the image's own (samplewise)."""
    if mean is None:
        mean, std = tf.reduce_mean(image), tf.math.reduce_std(image)
    return pixels.standardize(image, mean, std)


def to_rgb(images):
    """Repeat the gray channel three times: DenseNet's ImageNet layout wants (..., 3)."""
    return tf.tile(images, [1] * (images.shape.rank - 1) + [3])


def preprocess(path, size=(320, 320), mean=None, std=None, decode=None):
    """One file -> the model's input for it, (height, width, 3): what every batch is made of."""
    return to_rgb(standardize(load_image(path, size, decode), mean, std))


def load_rows(paths, labels, prepare, shuffle=False, seed=0):
    """Dataset of `(prepare(path), y)`, one per row: in table order, or in a new order each epoch.

    Decoding runs on all cores. A file that passes `check_files` but still fails
    to decode stops the pass with its name: failed rows are dropped by
    `ignore_errors`, and a running check on the row positions that do arrive
    (plus one end marker) names the first one missing. The epoch's order is a
    stateless permutation of positions (`index_shuffle`) keyed by one random
    number per epoch, so the check can tell which file sat at the missing position.

    Shape of it: positions (with the epoch's key) -> parallel load -> drop
    failures -> + end marker -> check -> take n. Building it costs 5 to 20 ms
    per traced function (bench/RESULTS.md), hence no more stages than these.
    """
    n = len(paths)
    paths, labels = tf.constant(paths), tf.constant(labels, tf.float32)
    positions = tf.data.Dataset.range(n)
    if shuffle:
        # One random key per epoch orders that epoch: each iteration of `Dataset.random`
        # draws new numbers, and the scan hands the one drawn at position 0 to every row.
        def latch(key, element):
            position, draw = element
            key = tf.where(position == 0, draw, key)
            return key, (position, key)

        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        rows = tf.data.Dataset.zip(positions, draws).scan(tf.constant(0, tf.int64), latch)
    else:
        rows = tf.data.Dataset.zip(positions, tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat())

    def row_at(position, key):
        if not shuffle:
            return position
        return tf.random.experimental.index_shuffle(position, tf.stack([key, seed]), n - 1)

    def load(position, key):
        row = row_at(position, key)
        return position, key, prepare(tf.gather(paths, row)), tf.gather(labels, row)

    def check(state, element):
        expected, key = state
        position, element_key, image, y = element
        key = tf.where(position < n, element_key, key)  # the end marker carries no key
        # Assert only formats its message (the file name) when the check fails.
        name = tf.gather(paths, row_at(tf.minimum(expected, n - 1), key))
        with tf.control_dependencies([tf.debugging.Assert(tf.equal(position, expected),
                                                          ["Cannot decode image file", name])]):
            return (expected + 1, key), (tf.identity(image), y)

    loaded = rows.map(load, num_parallel_calls=PARALLEL).ignore_errors()
    # An end marker at position n: `take(n)` never asks for it unless a row went missing,
    # in which case it arrives where row n - 1 should and the check names the file. (If
    # every row failed, the key is unknown, but then whichever file it names failed too.)
    end = tf.data.Dataset.from_tensors(tuple(
        tf.fill(spec.shape, tf.cast(n, spec.dtype)) for spec in loaded.element_spec))
    zero = tf.constant(0, tf.int64)
    checked = loaded.concatenate(end).scan((zero, zero), check).take(n)
    # ignore_errors hides the length; Keras wants it to end epochs without a warning.
    return checked.apply(tf.data.experimental.assert_cardinality(n)).with_options(OPTIONS)


def image_stats(paths, size=(320, 320), decode=None, batch_size=32):
    """Mean and std over all pixels of the given images (for featurewise standardization)."""
    total = total_sq = count = 0.0
    decode = decode or decoder_for(check_files(paths))
    prepare = lambda path: load_image(path, size, decode)
    for batch, _ in load_rows(paths, np.zeros((len(paths), 1)), prepare).batch(batch_size):
        x = batch.numpy().astype(np.float64)
        total, total_sq, count = total + x.sum(), total_sq + (x ** 2).sum(), count + x.size
    mean = total / count
    return float(mean), float(math.sqrt(max(total_sq / count - mean ** 2, 0.0)))


# ----------------------------------------------------------------------------
# Batches over a table.

def batched(ds, batch_size, drop_remainder=False, augment=None, seed=0, mean=None, std=None):
    """Images `(h, w, 1)` and labels -> model batches `(b, h, w, 3)`. With `augment`, images on
    the 0..255 scale are changed (a new random key per image and epoch), then standardized:
    after the change, so that samplewise statistics see it."""
    if augment:
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, keys).map(
            lambda xy, key: (standardize(augment(xy[0], key), mean, std), xy[1]), num_parallel_calls=PARALLEL)
    return (ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=PARALLEL)
            .map(lambda x, y: (to_rgb(x), y), num_parallel_calls=PARALLEL).prefetch(2))


class Batches(tf.data.Dataset):
    """A tf.data.Dataset of `(x, y)` batches that also knows its length and labels.

    Being a real `tf.data.Dataset`, `model.fit` / `model.predict` take it as is.
    """

    def __init__(self, dataset, labels, batch_size, drop_remainder=False):
        self._dataset, self.labels, self.batch_size, self.drop_remainder = dataset, labels, batch_size, drop_remainder
        super().__init__(dataset._variant_tensor)

    def _inputs(self):
        return [self._dataset]

    @property
    def element_spec(self):
        return self._dataset.element_spec

    def __len__(self):
        return (len(self.labels) // self.batch_size if self.drop_remainder
                else math.ceil(len(self.labels) / self.batch_size))


class ImageBatches(Batches):
    """Batches `(x, y)` over a table of images, decoded on all cores.

    Predictions come in row order unless `shuffle`. As the course's generators had:
    `len(b)` batches, `b[i]` -> numpy `(x, y)` of batch i, `b.labels` (N x classes),
    `b.filenames`. `mean`/`std`: featurewise standardization (None: samplewise).
    `augment`: an `Augmentation` for training (`horizontal_flip=True` is the flip alone);
    `b[i]` shows images unchanged.
    """

    def __init__(self, df, image_dir, x_col, y_cols, batch_size=8, size=(320, 320),
                 shuffle=False, seed=1, mean=None, std=None, horizontal_flip=False,
                 cache=None, shuffle_buffer=4096, drop_remainder=False, augment=None):
        check_table(df, x_col, y_cols)
        self.filenames = df[x_col].astype(str).tolist()
        self.paths = [os.path.join(image_dir, name) for name in self.filenames]
        self.size, self.mean, self.std = tuple(size), mean, std
        self._decode = decoder_for(check_files(self.paths))
        labels = df[list(y_cols)].to_numpy()
        # `b[i]` shows batch i of one fixed order: the table's, or one shuffle of it.
        self._order = np.random.default_rng(seed).permutation(len(labels)) if shuffle else np.arange(len(labels))
        augment = Augmentation(flip=True) if augment is None and horizontal_flip else augment

        # With a cache, decoded images come in one order, which the cache replays:
        # reshuffle them each epoch through a buffer. Without, shuffle rows before decoding.
        # Standardizing before the cache keeps that work out of later epochs (unless
        # augmentation changes images first); only the channel repeat, which would
        # triple the cache, is left for after it.
        load = lambda path: load_image(path, self.size, self._decode)
        prepare = load if augment else lambda path: standardize(load(path), mean, std)
        ds = load_rows(self.paths, labels, prepare, shuffle and not cache, seed)
        if cache:
            ds = ds.cache("" if cache == "memory" else str(cache))
            if shuffle:
                ds = ds.shuffle(min(len(labels), shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
        super().__init__(batched(ds, batch_size, drop_remainder, augment, seed, mean, std), labels, batch_size,
                         drop_remainder)

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(f"batch {i} out of range: there are {len(self)} batches")
        i %= len(self)
        rows = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        images = [preprocess(self.paths[r], self.size, self.mean, self.std, self._decode) for r in rows]
        return tf.stack(images).numpy(), self.labels[rows].astype(np.float32)


# ----------------------------------------------------------------------------
# The course's two functions, with the seed's signatures.

def get_train_generator(df, image_dir, x_col, y_cols, shuffle=True, batch_size=8, seed=1,
                        target_w=320, target_h=320, horizontal_flip=False, cache=None):
    """Training batches, each image standardized by its own mean and std."""
    return ImageBatches(df, image_dir, x_col, y_cols, batch_size=batch_size,
                        size=(target_h, target_w), shuffle=shuffle, seed=seed,
                        horizontal_flip=horizontal_flip, cache=cache)


def training_sample_stats(train_df, image_dir, x_col, sample_size=100, seed=1, size=(320, 320)):
    """Mean and std of a seeded random sample of `sample_size` training images."""
    rows = np.random.default_rng(seed).choice(len(train_df), size=min(sample_size, len(train_df)), replace=False)
    return image_stats([os.path.join(image_dir, str(name)) for name in train_df[x_col].iloc[np.sort(rows)]], size)


def get_test_and_valid_generator(valid_df, test_df, train_df, image_dir, x_col, y_cols,
                                 sample_size=100, batch_size=8, seed=1, target_w=320,
                                 target_h=320, cache=None):
    """(valid, test) batches in file order, standardized with the mean and std of a
    random sample of `sample_size` training images."""
    size = (target_h, target_w)
    mean, std = training_sample_stats(train_df, image_dir, x_col, sample_size, seed, size)
    make = lambda df: ImageBatches(df, image_dir, x_col, y_cols, batch_size=batch_size, size=size,
                                   mean=mean, std=std, cache=cache)
    return make(valid_df), make(test_df)
