"""Split quality on the full NIH table: our stratified patient split vs. a plain GroupShuffleSplit.

    python bench/splits.py [--seeds 5]

Fractions 0.7/0.1/0.2 of the 112,120 images, seeds 0..4. Prints, per seed and
method: seconds, the image shares of the three splits, and the largest gap
between a split's per-label prevalence (over images) and the whole table's,
over the 14 labels and 3 splits. Patients in two splits are counted too (must be 0).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from chestxray.metadata import read_nih_metadata  # noqa: E402
from chestxray.paths import nih_dir  # noqa: E402
from chestxray.splits import group_shuffle_split, max_prevalence_gap, stratified_patient_split  # noqa: E402


def leaked_patients(df, split):
    sets = [set(df.loc[split == j, "PatientId"]) for j in range(3)]
    return len(sets[0] & sets[1]) + len(sets[0] & sets[2]) + len(sets[1] & sets[2])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    df = read_nih_metadata(os.path.join(nih_dir(), "Data_Entry_2017_v2020.csv.gz"))
    print(f"read {len(df)} images of {df['PatientId'].nunique()} patients in {time.perf_counter() - start:.1f} s")
    fractions = [0.7, 0.1, 0.2]
    print(f"{'seed':>4} {'method':<22} {'seconds':>7} {'shares':<22} {'leaked':>6} {'max gap':>8}")
    gaps = {"stratified (ours)": [], "GroupShuffleSplit": []}
    for seed in range(args.seeds):
        for name, method in (("stratified (ours)", stratified_patient_split), ("GroupShuffleSplit", group_shuffle_split)):
            start = time.perf_counter()
            split = method(df, fractions, seed=seed)
            seconds = time.perf_counter() - start
            shares = np.bincount(split, minlength=3)[:3] / len(df)
            gaps[name].append(max_prevalence_gap(df, split))
            print(f"{seed:>4} {name:<22} {seconds:>7.2f} {np.array2string(shares, precision=4):<22} "
                  f"{leaked_patients(df, split):>6} {gaps[name][-1]:>8.5f}")
    for name, values in gaps.items():
        print(f"{name}: max gap over seeds {max(values):.5f}, mean {np.mean(values):.5f}")


if __name__ == "__main__":
    main()
