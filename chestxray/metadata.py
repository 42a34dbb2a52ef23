"""Source tables -> split frames: NIH metadata (Image, the 14 labels, PatientId), CheXpert-style
CSVs (Path, the 5 competition labels, Patient, with uncertain labels mapped by a stated policy);
and the NIH box list."""

import numpy as np
import pandas as pd

from .labels import ALIASES, CHEXPERT_LABELS, LABELS, NO_FINDING, Table, require_columns

IMAGE, FINDINGS, PATIENT, VIEW = "Image Index", "Finding Labels", "Patient ID", "View Position"
BOX_COLUMNS = ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]


def read_nih_metadata(path, views=None):
    """Read a `Data_Entry_2017` style table (plain or .gz) into the course frame.

    Returns a DataFrame with columns `Image`, the 14 labels (0/1, LABELS order)
    and `PatientId`, one row per image, in the order of the file. `views`
    (e.g. ["PA"]) keeps only those values of `View Position`. A finding that
    is not one of the 14 labels, an empty cell or a repeated image is an error
    that names the row; nothing is dropped silently.
    """
    table = pd.read_csv(path, dtype={IMAGE: str, FINDINGS: str})
    require_columns(table, [IMAGE, FINDINGS, PATIENT] + ([VIEW] if views else []), path)
    if views:
        unknown = sorted(set(views) - set(table[VIEW].dropna().unique()))
        if unknown:
            raise ValueError(f"{path}: no image has view {unknown} in column {VIEW!r}")
        table = table[table[VIEW].isin(views)]

    for column in (IMAGE, FINDINGS, PATIENT):
        empty = table[column].isna()
        if empty.any():
            row = table.index[empty][0] + 2  # +1 for the header, +1 for 1-based lines
            raise ValueError(f"{path}: line {row}: empty {column!r} ({int(empty.sum())} such rows)")
    duplicated = table[IMAGE].duplicated()
    if duplicated.any():
        name = table.loc[duplicated, IMAGE].iloc[0]
        raise ValueError(f"{path}: image {name} appears more than once in {IMAGE!r}")

    findings = table[FINDINGS].str.split("|").explode().str.strip().replace(ALIASES)  # one row per finding
    unknown = findings[~findings.isin([*LABELS, NO_FINDING])]
    if len(unknown):
        raise ValueError(f"{path}: line {unknown.index[0] + 2}: unknown finding {unknown.iloc[0]!r} "
                         f"(expected one of the 14 labels or {NO_FINDING!r})")
    y = pd.get_dummies(findings).groupby(level=0).max().reindex(index=table.index, columns=LABELS, fill_value=0)
    frame = pd.DataFrame(y.to_numpy(dtype=np.int64), columns=LABELS)
    frame.insert(0, "Image", table[IMAGE].to_numpy())
    frame["PatientId"] = table[PATIENT].to_numpy()
    return frame


# How a CheXpert label of -1 (uncertain) is read: the policies of Irvin et al. 2019 that need no
# second model ("U-Zeros", "U-Ones"). Nothing else is allowed: an unknown policy is an error.
UNCERTAIN = {"zeros": 0, "ones": 1}


def read_chexpert(path, uncertain="ones", labels=CHEXPERT_LABELS):
    """A CheXpert-style CSV (`Path`, one column per label with 1, 0, -1 or empty) as a split frame
    of `chexpert_table(labels)`: empty is negative (not mentioned), -1 becomes `UNCERTAIN[uncertain]`,
    and the patient is the `patientNNNNN` part of the path. Any other value is an error naming the row."""
    if uncertain not in UNCERTAIN:
        raise ValueError(f"uncertain labels: use one of {sorted(UNCERTAIN)}, not {uncertain!r}")
    table = pd.read_csv(path)
    require_columns(table, ["Path", *labels], path)
    values = table[list(labels)].fillna(0)
    bad = ~values.isin([1, 0, -1])
    if bad.any().any():
        line = values.index[bad.any(axis=1)][0] + 2
        raise ValueError(f"{path}: line {line}: a label that is not 1, 0, -1 or empty")
    patients = table["Path"].str.extract(r"(patient\d+)", expand=False)
    if patients.isna().any():
        raise ValueError(f"{path}: line {patients.index[patients.isna()][0] + 2}: no patientNNNNN in 'Path'")
    frame = values.replace(-1, UNCERTAIN[uncertain]).astype(np.int64)
    frame.insert(0, "Path", table["Path"].to_numpy())
    frame["Patient"] = patients.to_numpy()
    return frame


def chexpert_table(labels=CHEXPERT_LABELS):
    return Table(tuple(labels), "Path", "Patient")


def read_bboxes(path):
    """Read the NIH bounding-box list: columns Image, Label, x, y, w, h (pixels of the original image)."""
    table = pd.read_csv(path)
    require_columns(table, BOX_COLUMNS, path)
    boxes = table[BOX_COLUMNS].copy()
    boxes.columns = ["Image", "Label", "x", "y", "w", "h"]
    boxes["Label"] = boxes["Label"].replace(ALIASES)
    unknown = ~boxes["Label"].isin(LABELS)
    if unknown.any():
        line = boxes.index[unknown][0] + 2
        raise ValueError(f"{path}: line {line}: unknown label {boxes['Label'][unknown].iloc[0]!r}")
    coords = boxes[["x", "y", "w", "h"]]
    bad = coords.isna().any(axis=1) | (coords[["w", "h"]] <= 0).any(axis=1)
    if bad.any():
        raise ValueError(f"{path}: line {boxes.index[bad][0] + 2}: missing or non-positive box size")
    return boxes
