import gzip
import os

import numpy as np
import pytest

from chestxray.labels import LABELS
from chestxray.metadata import read_bboxes, read_nih_metadata

# Label counts of the 1,188 dev images, from the data README.
DEV_COUNTS = {"Atelectasis": 146, "Cardiomegaly": 49, "Consolidation": 86, "Edema": 76, "Effusion": 112,
              "Emphysema": 39, "Fibrosis": 40, "Hernia": 14, "Infiltration": 213, "Mass": 66, "Nodule": 76,
              "Pleural_Thickening": 67, "Pneumonia": 361, "Pneumothorax": 42}


def test_labels_are_the_course_list():
    assert LABELS[:4] == ["Cardiomegaly", "Emphysema", "Effusion", "Hernia"]
    assert len(LABELS) == len(set(LABELS)) == 14


def test_full_table(nih_table):
    assert list(nih_table.columns) == ["Image", *LABELS, "PatientId"]
    assert len(nih_table) == 112120 and nih_table["PatientId"].nunique() == 30805
    assert set(np.unique(nih_table[LABELS].to_numpy())) == {0, 1}
    first = nih_table.iloc[1]  # 00000001_001.png: Cardiomegaly|Emphysema
    assert first["Image"] == "00000001_001.png" and first["Cardiomegaly"] == first["Emphysema"] == 1
    assert first[LABELS].sum() == 2


def test_dev_images_counts(dev_frame):
    assert len(dev_frame) == 1188 and dev_frame["PatientId"].nunique() == 960
    assert dev_frame[LABELS].sum().to_dict() == DEV_COUNTS
    assert (dev_frame[LABELS].sum(axis=1) == 0).sum() == 470  # No Finding


def test_plain_and_gzipped_read_the_same_and_views_filter(nih, tmp_path):
    lines = gzip.open(os.path.join(nih, "Data_Entry_2017_v2020.csv.gz"), "rt").readlines()[:500]
    (tmp_path / "t.csv").write_text("".join(lines))
    with gzip.open(tmp_path / "t.csv.gz", "wt") as f:
        f.write("".join(lines))
    plain, zipped = read_nih_metadata(tmp_path / "t.csv"), read_nih_metadata(tmp_path / "t.csv.gz")
    assert len(plain) == 499 and plain.equals(zipped)
    pa = read_nih_metadata(tmp_path / "t.csv", views=["PA"])
    both = read_nih_metadata(tmp_path / "t.csv", views=["PA", "AP"])
    assert 0 < len(pa) < len(both) == 499
    with pytest.raises(ValueError, match="LL"):
        read_nih_metadata(tmp_path / "t.csv", views=["LL"])


HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,View Position\n"


def test_unknown_finding_names_the_line(tmp_path):
    (tmp_path / "t.csv").write_text(HEADER + "a.png,Mass,0,1,PA\nb.png,Mass|Cancer,0,2,PA\n")
    with pytest.raises(ValueError, match=r"line 3: unknown finding 'Cancer'"):
        read_nih_metadata(tmp_path / "t.csv")


def test_missing_column_and_repeated_image(tmp_path):
    (tmp_path / "a.csv").write_text("Image Index,Finding Labels\na.png,Mass\n")
    with pytest.raises(ValueError, match="Patient ID"):
        read_nih_metadata(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text(HEADER + "a.png,Mass,0,1,PA\na.png,No Finding,1,1,PA\n")
    with pytest.raises(ValueError, match="a.png appears more than once"):
        read_nih_metadata(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text(HEADER + "a.png,,0,1,PA\n")
    with pytest.raises(ValueError, match="line 2: empty 'Finding Labels'"):
        read_nih_metadata(tmp_path / "c.csv")


def test_bboxes(nih):
    boxes = read_bboxes(os.path.join(nih, "BBox_List_2017.csv.gz"))
    assert len(boxes) == 984 and boxes["Image"].nunique() == 880
    assert list(boxes.columns) == ["Image", "Label", "x", "y", "w", "h"]
    assert "Infiltrate" not in set(boxes["Label"]) and (boxes["Label"] == "Infiltration").sum() == 123
    assert set(boxes["Label"]) <= set(LABELS) and (boxes[["w", "h"]] > 0).all().all()


def test_chexpert_tables_read_with_a_stated_uncertainty_policy(tmp_path):
    from chestxray.metadata import chexpert_table, read_chexpert

    path = tmp_path / "train.csv"
    path.write_text("Path,Sex,Atelectasis,Cardiomegaly,Consolidation,Edema,Pleural Effusion\n"
                    "CheXpert-v1.0/train/patient00001/study1/view1_frontal.jpg,F,1.0,-1.0,,0.0,\n"
                    "CheXpert-v1.0/train/patient00002/study1/view1_frontal.jpg,M,-1.0,0.0,1.0,,1.0\n")
    ones, zeros = read_chexpert(path, "ones"), read_chexpert(path, "zeros")
    assert list(ones.columns) == chexpert_table().columns and list(ones["Patient"]) == ["patient00001", "patient00002"]
    assert ones["Cardiomegaly"].tolist() == [1, 0] and zeros["Cardiomegaly"].tolist() == [0, 0]
    assert ones["Atelectasis"].tolist() == [1, 1] and zeros["Atelectasis"].tolist() == [1, 0]
    assert ones["Pleural Effusion"].tolist() == [0, 1]  # empty: not mentioned, negative
    with pytest.raises(ValueError, match="use one of"):
        read_chexpert(path, "ignore")
    path.write_text("Path,Atelectasis,Cardiomegaly,Consolidation,Edema,Pleural Effusion\n"
                    "x/patient00001/a.jpg,1,0,0,0,0\nx/patient00002/b.jpg,2,0,0,0,0\n")
    with pytest.raises(ValueError, match="line 3: a label that is not 1, 0, -1 or empty"):
        read_chexpert(path)
