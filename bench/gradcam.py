"""Grad-CAM for 14 classes: one forward pass, then the head per class (ours) vs. the course's loop.

    python bench/gradcam.py [--size 320] [--batch 1] [--repeats 3] [--layer conv4_block24_concat]

DenseNet121 (random weights: the timing does not depend on them) on the same
input. The loop runs the whole network forward and back to the feature maps
once per class, as the course's `compute_gradcam` did; ours runs it forward
once and differentiates only the head (the layers after `--layer`; by default
the last convolutional block's output). Both run eagerly, alternating, after a
warm-up call each; the script checks that the heatmaps agree.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from chestxray.explain import feature_layer, gradcam, gradcam_per_class, split_model  # noqa: E402
from chestxray.model import build_model  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layer", help="the feature layer (default: the last one with a 4-D output)")
    args = parser.parse_args()
    model = build_model(14, weights=None, image_size=args.size)
    images = np.random.default_rng(0).normal(size=(args.batch, args.size, args.size, 3)).astype("float32")
    classes = list(range(14))
    models = split_model(model, layer := feature_layer(model, args.layer).name)
    ours = lambda: gradcam(models, images, classes)[0]
    loop = lambda: gradcam_per_class(model, images, classes, layer)
    ours(), loop()  # warm-up: tracing, allocation
    times = {"ours": [], "loop": []}
    for _ in range(args.repeats):
        t, a = timed(ours)
        times["ours"].append(t)
        t, b = timed(loop)
        times["loop"].append(t)
    difference = float(np.abs(a - b).max())
    ratios = [lo / o for lo, o in zip(times["loop"], times["ours"])]
    print(f"DenseNet121, {args.size} px, batch {args.batch}, 14 classes, layer {layer}, {args.repeats} repeats")
    print(f"ours (one pass): median {statistics.median(times['ours']):.2f} s  {[round(t, 2) for t in times['ours']]}")
    print(f"per-class loop:  median {statistics.median(times['loop']):.2f} s  {[round(t, 2) for t in times['loop']]}")
    print(f"ratio loop/ours: median {statistics.median(ratios):.1f}x  {[round(r, 1) for r in ratios]}")
    print(f"largest heatmap difference: {difference:.2e}")


if __name__ == "__main__":
    main()
