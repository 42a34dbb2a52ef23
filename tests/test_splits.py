import hashlib
import os

import numpy as np
import pandas as pd
import pytest

from chestxray.cli import main
from chestxray.labels import LABELS
from chestxray.splits import (check_for_leakage, group_shuffle_split, max_prevalence_gap,
                              split_frame, stratified_patient_split)


def test_check_for_leakage():
    a = pd.DataFrame({"pid": [0, 1, 2]})
    assert check_for_leakage(a, pd.DataFrame({"pid": [2, 3, 4]}), "pid") is True
    assert check_for_leakage(a, pd.DataFrame({"pid": [3, 4, 5]}), "pid") is False
    assert check_for_leakage(a, pd.DataFrame({"pid": []}), "pid") is False


@pytest.mark.parametrize("seed", range(5))
def test_full_table_split_is_balanced(nih_table, seed):
    split = stratified_patient_split(nih_table, [0.7, 0.1, 0.2], seed=seed)
    shares = np.bincount(split, minlength=3) / len(split)
    assert np.allclose(shares, [0.7, 0.1, 0.2], atol=0.005)
    patients = [set(nih_table.loc[split == j, "PatientId"]) for j in range(3)]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    gap = max_prevalence_gap(nih_table, split)
    assert gap <= 0.002
    # The plain patient shuffle is measurably worse on the same table and seed.
    assert max_prevalence_gap(nih_table, group_shuffle_split(nih_table, [0.7, 0.1, 0.2], seed)) > 2 * gap


def test_split_frame_sizes_and_errors(dev_frame):
    frames = split_frame(dev_frame, sizes=[800, 100, 288], seed=0)
    assert [len(f) for f in frames.values()] == pytest.approx([800, 100, 288], abs=6)
    assert sum(len(f) for f in frames.values()) == 1188
    small = split_frame(dev_frame, sizes=[300, 50, 100], seed=0)  # the rest goes nowhere
    assert sum(len(f) for f in small.values()) < 1188
    with pytest.raises(ValueError, match="1400 images; the table has 1188"):
        split_frame(dev_frame, sizes=[875, 105, 420])
    with pytest.raises(ValueError, match="sum to at most 1"):
        split_frame(dev_frame, fractions=[0.8, 0.2, 0.2])


def _digest(folder):
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in ("train.csv", "valid.csv", "test.csv")}


def test_split_command(nih, tmp_path, capsys):
    args = ["split", "--metadata", os.path.join(nih, "Data_Entry_2017_v2020.csv.gz"),
            "--images", os.path.join(nih, "images"), "--fractions", "0.7,0.1,0.2"]
    main(args + ["--out", str(tmp_path / "a"), "--seed", "0"])
    out = capsys.readouterr().out
    assert "1188 images" in out and "Pneumonia" in out and "patients" in out
    main(args + ["--out", str(tmp_path / "b"), "--seed", "1"])  # (the same seed, the same bytes: test_course.py)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "b")
    frames = {n: pd.read_csv(tmp_path / "a" / f"{n}.csv") for n in ("train", "valid", "test")}
    for frame in frames.values():
        assert list(frame.columns) == ["Image", *LABELS, "PatientId"]
    assert sum(len(f) for f in frames.values()) == 1188
    assert not check_for_leakage(frames["train"], frames["test"], "PatientId")
    assert not check_for_leakage(frames["train"], frames["valid"], "PatientId")


def test_split_command_views_and_missing_images(nih, tmp_path):
    meta = os.path.join(nih, "Data_Entry_2017_v2020.csv.gz")
    main(["split", "--metadata", meta, "--images", os.path.join(nih, "images"), "--views", "PA",
          "--out", str(tmp_path / "pa")])
    pa = pd.concat(pd.read_csv(tmp_path / "pa" / f"{n}.csv") for n in ("train", "valid", "test"))
    views = pd.read_csv(meta).set_index("Image Index").loc[pa["Image"], "View Position"]
    assert (views == "PA").all() and 0 < len(pa) < 1188
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no image of"):
        main(["split", "--metadata", meta, "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "x")])


def test_another_table_splits_by_its_own_columns(tmp_path, capsys):
    """Two labels, other column names: split, written and checked with them; the NIH's columns
    missing is a clear error, not a KeyError."""
    from chestxray.labels import Table

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"file": [f"{i}.png" for i in range(90)], "A": rng.integers(0, 2, 90),
                       "B": (rng.random(90) < 0.2).astype(int), "who": rng.integers(0, 30, 90)})
    table = Table(("A", "B"), "file", "who")
    frames = split_frame(df, fractions=[0.6, 0.2, 0.2], table=table)
    assert sum(len(f) for f in frames.values()) == 90
    assert not check_for_leakage(frames["train"], frames["test"], "who")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['Image', 'Cardiomegaly'"):
        split_frame(df, fractions=[0.6, 0.2, 0.2])
    source = tmp_path / "chexpert.csv"
    source.write_text("Path,Atelectasis,Cardiomegaly,Consolidation,Edema,Pleural Effusion\n" + "".join(
        f"t/patient{i % 30:05d}/s/{i}.jpg,{i % 2},{-1 if i % 7 == 0 else 0},{i % 3 == 0:d},0,{i % 5 == 0:d}\n"
        for i in range(90)))
    main(["split", "--metadata", str(source), "--format", "chexpert", "--uncertain", "zeros",
          "--fractions", "0.6,0.2,0.2", "--out", str(tmp_path / "out"), "--labels", "Atelectasis,Cardiomegaly"])
    written = pd.read_csv(tmp_path / "out" / "train.csv")
    assert list(written.columns) == ["Path", "Atelectasis", "Cardiomegaly", "Patient"]
    assert "patients" in capsys.readouterr().out
