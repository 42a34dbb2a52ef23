"""Patient-level splits: no patient in two splits, per-label prevalence over images as in the whole.

Patients carry different numbers of images, so stratifying patients by their
OR-ed labels does not balance prevalence over images. We run the iterative
stratification of Sechidis et al. (2011) on patients, each weighted by how many
of its images carry each label (and by its image count for the split sizes).
"""

import os

import numpy as np
import pandas as pd

from .labels import LABELS, NIH


def check_for_leakage(df1, df2, patient_col):
    """True if any patient appears in both frames (graded exercise 1)."""
    return len(set(df1[patient_col]) & set(df2[patient_col])) > 0


def stratified_patient_split(df, fractions, seed=0, patient_col="PatientId", labels=LABELS):
    """Assign each patient to one split; returns an array of split numbers, one per row of `df`.

    `fractions` are the wanted shares of images per split (they may sum to less
    than 1: the rest goes to an extra, last split, which callers leave unused).
    """
    fractions = np.asarray(fractions, dtype=float)
    if (fractions < 0).any() or fractions.sum() > 1 + 1e-9:
        raise ValueError(f"split fractions must be >= 0 and sum to at most 1, got {fractions.tolist()}")
    if fractions.sum() < 1 - 1e-9:
        fractions = np.append(fractions, 1 - fractions.sum())
    rng = np.random.default_rng(seed)
    # Per patient: images, and images carrying each label.
    grouped = df.groupby(patient_col, sort=True)
    sizes = grouped.size()
    patients, sizes = sizes.index.to_numpy(), sizes.to_numpy(dtype=np.int64)
    counts = grouped[list(labels)].sum().to_numpy(dtype=np.int64)

    # What each split still wants: images of each label, and images overall.
    want_label = fractions[:, None] * counts.sum(axis=0)[None, :]
    want_size = fractions * sizes.sum()
    assigned = np.full(len(patients), -1)
    remaining = counts.copy()  # label counts of the patients not yet assigned

    def assign(p, score):
        # Best split by `score`, ties broken by the overall size still wanted, then at random.
        keys = np.lexsort((rng.random(len(fractions)), -want_size, -score))
        j = keys[0]
        assigned[p] = j
        want_label[j] -= counts[p]
        want_size[j] -= sizes[p]
        remaining[p] = 0

    while True:
        left = remaining.sum(axis=0)
        if not left.any():
            break
        # The rarest label still to place goes first: it has the least room for error.
        rarest = np.flatnonzero(left == left[left > 0].min())
        label = rng.choice(rarest)
        members = np.flatnonzero(remaining[:, label] > 0)
        # Big patients first, small ones fill the gaps they leave (ties at random).
        members = members[np.lexsort((rng.random(len(members)), -counts[members, label]))]
        for p in members:
            assign(p, want_label[:, label])
    # Patients with none of the labels only balance the split sizes.
    unlabelled = np.flatnonzero(assigned < 0)
    unlabelled = unlabelled[np.lexsort((rng.random(len(unlabelled)), -sizes[unlabelled]))]
    for p in unlabelled:
        assign(p, want_size)

    split_of_patient = pd.Series(assigned, index=patients)
    return split_of_patient.loc[df[patient_col]].to_numpy()


def group_shuffle_split(df, fractions, seed=0, patient_col="PatientId"):
    """Baseline: shuffle patients and cut by patient fractions (what torchxrayvision does)."""
    from sklearn.model_selection import GroupShuffleSplit

    groups = df[patient_col].to_numpy()
    first, rest = next(GroupShuffleSplit(1, test_size=1 - fractions[0], random_state=seed)
                       .split(df, groups=groups))
    share = fractions[1] / (1 - fractions[0])
    second, third = next(GroupShuffleSplit(1, test_size=1 - share, random_state=seed)
                         .split(rest, groups=groups[rest]))
    out = np.zeros(len(df), dtype=int)
    out[rest[second]], out[rest[third]] = 1, 2
    return out


def prevalence_table(frames, table=NIH):
    """Images, patients and per-label prevalence of each split, and of all of them together."""
    frames = {**frames, "all": pd.concat(frames.values())}
    rows = {name: {"images": len(frame), "patients": frame[table.patient_col].nunique(),
                   **frame[list(table.labels)].mean()} for name, frame in frames.items()}
    return pd.DataFrame(rows).T


def max_prevalence_gap(df, split, labels=LABELS, n_splits=3):
    """Largest |prevalence in a split - prevalence overall|, over labels and splits 0..n_splits-1."""
    overall = df[labels].to_numpy().mean(axis=0)
    return max(np.abs(df.loc[split == j, labels].to_numpy().mean(axis=0) - overall).max()
               for j in range(n_splits))


SPLIT_NAMES = ("train", "valid", "test")


def split_frame(df, fractions=None, sizes=None, seed=0, table=NIH):
    """{'train', 'valid', 'test'} frames of `df` (the columns of `table`), by patient, stratified
    on `table`'s labels; leakage is checked.

    Give `fractions` of the images (summing to at most 1) or `sizes` in images
    (summing to at most len(df)); what is left over goes in no split.
    """
    table.check(df, "the table to split")
    patient_col = table.patient_col
    if (fractions is None) == (sizes is None):
        raise ValueError("give either fractions or sizes")
    if sizes is not None:
        if sum(sizes) > len(df):
            raise ValueError(f"sizes {list(sizes)} ask for {sum(sizes)} images; the table has {len(df)}")
        fractions = [s / len(df) for s in sizes]
    if len(fractions) != len(SPLIT_NAMES):
        raise ValueError(f"need 3 numbers (train, valid, test), got {list(fractions)}")
    split = stratified_patient_split(df, fractions, seed, patient_col, table.labels)
    frames = {name: df[split == j].reset_index(drop=True) for j, name in enumerate(SPLIT_NAMES)}
    for a in SPLIT_NAMES:
        for b in SPLIT_NAMES:
            if a < b and check_for_leakage(frames[a], frames[b], patient_col):
                raise RuntimeError(f"patients in both {a} and {b}: the split is wrong, nothing written")
    return frames


def write_splits(frames, out, table=NIH):
    """train.csv, valid.csv, test.csv with `table`'s columns (the course's: Image, the 14 labels,
    PatientId); their paths."""
    os.makedirs(out, exist_ok=True)
    paths = {name: os.path.join(out, f"{name}.csv") for name in frames}
    for name, frame in frames.items():
        frame[table.columns].to_csv(paths[name], index=False, lineterminator="\n")
    return paths
