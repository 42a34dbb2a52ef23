"""Shared fixtures: the real NIH data (one setting, CHESTXRAY_NIH) and small phantom sets."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the course files (util.py, public_tests.py) live at the root

from chestxray.metadata import nih_dir, read_nih_metadata  # noqa: E402
from chestxray.phantoms import make_phantoms  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def nih():
    """The NIH data folder; a clear failure (never a skip) when it is not there."""
    path = nih_dir()
    needed = ["Data_Entry_2017_v2020.csv.gz", "BBox_List_2017.csv.gz", "images", "images-1024"]
    missing = [name for name in needed if not os.path.exists(os.path.join(path, name))]
    if missing:
        pytest.fail(f"NIH test data not found: {missing} missing in {path}. Put the shared data "
                    "there (see README, 'Data') or set CHESTXRAY_NIH to the folder that holds it.",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def nih_table(nih):
    return read_nih_metadata(os.path.join(nih, "Data_Entry_2017_v2020.csv.gz"))


@pytest.fixture(scope="session")
def dev_frame(nih, nih_table):
    """The course frame for the 1,188 dev images, in file-name order."""
    present = set(os.listdir(os.path.join(nih, "images")))
    return nih_table[nih_table["Image"].isin(present)].sort_values("Image").reset_index(drop=True)


@pytest.fixture(scope="session")
def phantoms(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantoms")
    metadata = make_phantoms(str(out), n=60, seed=3, size=128)
    return out, metadata
