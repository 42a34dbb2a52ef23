"""Sharded TFRecords of decoded, resized images: for the full data set on many GPUs or machines.

Decoding 1024 px PNGs costs about 9 ms of CPU per image (bench/RESULTS.md); a
few GPUs eat images faster than a host's cores decode them. `write_shards`
pays the decode once; training then reads raw pixels from many files at once
(tf.data interleave), and each worker of a cluster can read its own shards.

A folder of shards holds `shard-NNNNN-of-MMMMM.tfrecord` files, `index.csv`
(the table, in record order) and `stats.json` (image size, and the mean and std
of a seeded sample of its images, as `training_sample_stats` computes them,
which a training set lends to validation).
Pixels are stored as 8-bit gray after the resize (rounded: at most half a grey
level from what the image pipeline computes).
"""

import glob
import json
import os

import numpy as np
import pandas as pd
import tensorflow as tf

from .data import (OPTIONS, PARALLEL, Batches, batched, check_files, check_table, decoder_for,
                   load_image, load_rows, standardize, training_sample_stats)
from .labels import LABELS


def _record(image, labels, name):
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        "labels": tf.train.Feature(float_list=tf.train.FloatList(value=labels)),
        "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shards(df, image_dir, out, image_size=320, per_shard=1024, sample_size=100, seed=1,
                 x_col="Image", y_cols=LABELS):
    """Write `df`'s images as shards under `out`; returns the number of shards."""
    check_table(df, x_col, y_cols)
    if os.path.exists(out) and glob.glob(os.path.join(out, "shard-*.tfrecord")):
        raise FileExistsError(f"{out} already holds shards: remove them or choose another folder")
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(image_dir, str(name)) for name in df[x_col]]
    decode = decoder_for(check_files(paths))
    labels = df[list(y_cols)].to_numpy(dtype=np.float32)
    size = (image_size, image_size)
    n_shards = max(1, -(-len(df) // per_shard))

    images = load_rows(paths, labels, lambda path: load_image(path, size, decode))
    writer = None
    for row, (image, y) in enumerate(images.as_numpy_iterator()):
        if row % per_shard == 0:
            if writer:
                writer.close()
            name = f"shard-{row // per_shard:05d}-of-{n_shards:05d}.tfrecord"
            writer = tf.io.TFRecordWriter(os.path.join(out, name))
        pixels = np.clip(np.round(image[..., 0]), 0, 255).astype(np.uint8)
        writer.write(_record(pixels, y, str(df[x_col].iloc[row])))
    writer.close()
    df.to_csv(os.path.join(out, "index.csv"), index=False)
    # The same sample and statistics as training from the images would use.
    mean, std = training_sample_stats(df, image_dir, x_col, sample_size, seed, size)
    stats = {"image_size": image_size, "images": len(df), "shards": n_shards,
             "sample_size": min(sample_size, len(df)), "seed": seed, "mean": mean, "std": std}
    with open(os.path.join(out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=2)
    return n_shards


def read_stats(folder):
    path = os.path.join(folder, "stats.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: write shards with `python -m chestxray shard`")
    with open(path) as f:
        return json.load(f)


def shard_batches(folder, batch_size=8, shuffle=False, seed=1, mean=None, std=None, shuffle_buffer=4096,
                  y_cols=LABELS, drop_remainder=False, augment=None):
    """Batches `(x, y)` from a folder of shards, with the same standardization as `ImageBatches`.

    Shuffled: shard order each epoch, records from several shards interleaved, then a
    buffer. In order otherwise (for validation and prediction).
    """
    stats = read_stats(folder)
    files = sorted(glob.glob(os.path.join(folder, "shard-*.tfrecord")))
    if len(files) != stats["shards"]:
        raise FileNotFoundError(f"{folder}: {len(files)} shard files, stats.json says {stats['shards']}")
    labels = pd.read_csv(os.path.join(folder, "index.csv"))[list(y_cols)].to_numpy()
    side = stats["image_size"]
    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "labels": tf.io.FixedLenFeature([len(y_cols)], tf.float32)}

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        image = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), [side, side, 1])
        image = tf.cast(image, tf.float32)
        return (image if augment else standardize(image, mean, std)), example["labels"]

    if shuffle:  # records of several shards at once, in a new shard order each epoch
        ds = (tf.data.Dataset.from_tensor_slices(files)
              .shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
              .interleave(tf.data.TFRecordDataset, cycle_length=min(PARALLEL, len(files)),
                          num_parallel_calls=min(PARALLEL, len(files))))  # not more than the cycle: one shard
    else:  # one shard after the other: the order of index.csv
        ds = tf.data.TFRecordDataset(files)
    ds = ds.map(parse, num_parallel_calls=PARALLEL)
    if shuffle:
        ds = ds.shuffle(min(len(labels), shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(labels))).with_options(OPTIONS)
    return Batches(batched(ds, batch_size, drop_remainder, augment, seed, mean, std), labels, batch_size,
                   drop_remainder)
