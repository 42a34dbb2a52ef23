"""Training throughput: our input pipeline vs. the same model fed from in-memory tensors.

    python bench/train.py [--images 48] [--rounds 2]

DenseNet121 + the weighted loss, batch 8, on the 384 px dev images at 224 and
320 px. "memory": the images decoded and preprocessed once into tensors, fed
by `tf.data.Dataset.from_tensor_slices(...).batch(8)`. "pipeline": `model.fit(get_train_generator(...))`,
decoding, resizing and standardizing every epoch. The two alternate, epoch by
epoch, on one compiled model; the pipeline's cost is 1 - its rate / memory's.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from chestxray.data import OPTIONS, get_train_generator  # noqa: E402
from chestxray.labels import LABELS  # noqa: E402
from chestxray.losses import compute_class_freqs, get_weighted_loss  # noqa: E402
from chestxray.metadata import read_nih_metadata  # noqa: E402
from chestxray.paths import nih_dir  # noqa: E402
from chestxray.model import build_model  # noqa: E402


def timed_epoch(model, data):
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="224,320")
    args = parser.parse_args()
    nih = nih_dir()
    image_dir = os.path.join(nih, "images")
    table = read_nih_metadata(os.path.join(nih, "Data_Entry_2017_v2020.csv.gz"))
    df = table[table["Image"].isin(set(os.listdir(image_dir)))].sort_values("Image").head(args.images)
    df = df.reset_index(drop=True)
    print(f"{len(df)} dev images, batch 8, cores {os.cpu_count()}")
    for size in [int(s) for s in args.sizes.split(",")]:
        pipeline = get_train_generator(df, image_dir, "Image", LABELS, batch_size=8, target_w=size, target_h=size)
        x = np.concatenate([pipeline[i][0] for i in range(len(pipeline))])  # same preprocessing, once
        y = df[LABELS].to_numpy(dtype="float32")[pipeline._order]
        # With the pipeline's options (autotuning off), so that neither pays tf.data's end-of-epoch stall.
        memory = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).prefetch(2).with_options(OPTIONS)
        model = build_model(image_size=size)
        freq_pos, freq_neg = compute_class_freqs(y)
        model.compile(keras.optimizers.Adam(1e-4), get_weighted_loss(freq_neg, freq_pos))
        warm = timed_epoch(model, memory)
        timed_epoch(model, pipeline)  # the pipeline's first pass, for a fair start
        ratios = []
        for r in range(args.rounds):
            in_memory = timed_epoch(model, memory)
            ours = timed_epoch(model, pipeline)
            ratios.append(in_memory / ours)
            print(f"{size} px round {r}: memory {len(df) / in_memory:6.2f} img/s, pipeline {len(df) / ours:6.2f} img/s, "
                  f"pipeline cost {100 * (1 - ratios[-1]):+.1f}%", flush=True)
        print(f"{size} px: median pipeline cost {100 * (1 - statistics.median(ratios)):+.1f}% "
              f"(first epoch with tracing: {warm:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
