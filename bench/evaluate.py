"""Bootstrap AUROC: our vectorised replicates vs. a loop over sklearn's roc_auc_score, same replicates.

    python bench/evaluate.py [--boot 10000] [--loop-boot 10000]

14 classes x 420 images (the course's test-set size), synthetic scores with
ties. Ours computes all replicates of a class from one sort; the loop resamples
and calls roc_auc_score once per replicate and class. Both use the same
bootstrap counts, and the script checks that they agree.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from chestxray.evaluate import _auroc_weighted, bootstrap_auroc  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boot", type=int, default=10000)
    parser.add_argument("--loop-boot", type=int, default=10000, help="replicates for the sklearn loop")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, classes = 420, 14
    y = (rng.random((n, classes)) < np.linspace(0.02, 0.4, classes)).astype(int)
    score = np.round(rng.random((n, classes)) + 0.6 * y, 3)

    start = time.perf_counter()
    bootstrap_auroc(y, score, n_boot=args.boot, seed=0)
    ours = time.perf_counter() - start

    counts = np.random.default_rng(0).multinomial(n, np.full(n, 1.0 / n), size=args.loop_boot)
    start = time.perf_counter()
    looped = np.full((args.loop_boot, classes), np.nan)
    for b in range(args.loop_boot):
        rows = np.repeat(np.arange(n), counts[b])
        for j in range(classes):
            if 0 < y[rows, j].sum() < n:
                looped[b, j] = roc_auc_score(y[rows, j], score[rows, j])
    loop = time.perf_counter() - start
    fast = np.stack([_auroc_weighted(y[:, j], score[:, j], counts) for j in range(classes)], axis=1)
    assert np.allclose(fast, looped, atol=1e-12, equal_nan=True), "the two disagree"

    per_ours, per_loop = ours / args.boot, loop / args.loop_boot
    print(f"{classes} classes x {n} images; ours {args.boot} replicates in {ours:.2f} s; "
          f"sklearn loop {args.loop_boot} replicates in {loop:.1f} s; same values")
    print(f"per replicate: ours {1e3 * per_ours:.3f} ms, loop {1e3 * per_loop:.2f} ms; ratio {per_loop / per_ours:.0f}x")


if __name__ == "__main__":
    main()
