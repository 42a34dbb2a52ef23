"""Input pipeline throughput: the seed's ImageDataGenerator vs. our tf.data pipeline, side by side.

    pip install --no-deps tf-keras==2.21.0     # the baseline (Keras 2's ImageDataGenerator)
    python bench/pipeline.py [--rounds 3]

One pass (construction included, up-front checks included) over the 1024 px
originals (the 100 of them copied under new names to 300 files) and over the
1,188 dev images at 384 px, at 320x320, batch 8, samplewise standardization,
as the course's training generator. Then a second epoch with our memory cache.
The two run in alternation for several rounds and the ratio of each round is
printed, with the CPU time per image, which a noisy machine moves much less.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pandas as pd  # noqa: E402
from tf_keras.preprocessing.image import ImageDataGenerator  # noqa: E402

from chestxray.data import get_train_generator  # noqa: E402
from chestxray.labels import LABELS  # noqa: E402
from chestxray.paths import nih_dir  # noqa: E402


def frame(names):
    df = pd.DataFrame(0, index=range(len(names)), columns=LABELS)
    df.insert(0, "Image", names)
    return df


def seed_pass(df, image_dir):
    """What the course ran: flow_from_dataframe with samplewise standardization."""
    generator = ImageDataGenerator(samplewise_center=True, samplewise_std_normalization=True).flow_from_dataframe(
        dataframe=df, directory=image_dir, x_col="Image", y_col=LABELS, class_mode="raw",
        batch_size=8, shuffle=True, seed=1, target_size=(320, 320))
    for i in range(len(generator)):
        generator[i]
    return generator


def our_pass(df, image_dir, batches=None, **options):
    batches = batches or get_train_generator(df, image_dir, "Image", LABELS, **options)
    for _ in batches:
        pass
    return batches


def timed(run, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = run(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def compare(title, df, image_dir, rounds):
    n = len(df)
    print(f"\n{title}: {n} images, 320x320, batch 8")
    print(f"{'round':>5} {'seed img/s':>11} {'ours img/s':>11} {'ratio':>6}   {'seed cpu ms/img':>15} {'ours cpu ms/img':>15}")
    ratios, cpu_ratios = [], []
    for r in range(rounds):
        _, seed_wall, seed_cpu = timed(seed_pass, df, image_dir)
        _, our_wall, our_cpu = timed(our_pass, df, image_dir)
        ratios.append(seed_wall / our_wall)
        cpu_ratios.append(seed_cpu / our_cpu)
        print(f"{r:>5} {n / seed_wall:>11.1f} {n / our_wall:>11.1f} {ratios[-1]:>6.2f}   "
              f"{1000 * seed_cpu / n:>15.2f} {1000 * our_cpu / n:>15.2f}")
    print(f"median ratio (ours / seed, images/s): {statistics.median(ratios):.2f}; "
          f"best {max(ratios):.2f}; CPU-time ratio {statistics.median(cpu_ratios):.2f}")
    return seed_wall


def cached_epochs(df, image_dir, rounds):
    n = len(df)
    print(f"\nmemory cache, {n} images: epoch 1 (fills the cache) and epoch 2, vs. a seed pass")
    ratios = []
    for r in range(rounds):
        _, seed_wall, _ = timed(seed_pass, df, image_dir)
        batches, first, _ = timed(our_pass, df, image_dir, cache="memory")
        _, second, _ = timed(our_pass, df, image_dir, batches=batches)
        ratios.append(seed_wall / second)
        print(f"round {r}: seed {n / seed_wall:.1f} img/s; ours epoch 1 {n / first:.1f} img/s, "
              f"epoch 2 {n / second:.1f} img/s; epoch-2 ratio {ratios[-1]:.1f}")
    print(f"median epoch-2 ratio (ours cached / seed): {statistics.median(ratios):.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=3, help="copies of each 1024 px original")
    args = parser.parse_args()
    nih = nih_dir()
    print(f"data: {nih}; cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as scratch:
        names = []
        for name in sorted(os.listdir(os.path.join(nih, "images-1024"))):
            for copy in range(args.copies):
                names.append(f"copy{copy}_{name}")
                shutil.copy(os.path.join(nih, "images-1024", name), os.path.join(scratch, names[-1]))
        originals = frame(names)
        seed_pass(originals.iloc[:8], scratch), our_pass(originals.iloc[:8], scratch)  # warm up imports
        compare("1024 px originals", originals, scratch, args.rounds)
        cached_epochs(originals, scratch, args.rounds)
    dev = os.path.join(nih, "images")
    compare("384 px dev images", frame(sorted(os.listdir(dev))), dev, args.rounds)


if __name__ == "__main__":
    main()
