"""Shared fixtures: the real NIH data in the repository (data/nih), the 1024 px originals
(CHESTXRAY_NIH), small phantom sets; the course's notebooks and students' versions of them."""

import os
import re
import shutil
import subprocess
import sys

import matplotlib
import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the course files (util.py, public_tests.py) live at the root

from chestxray import course  # noqa: E402
from chestxray.metadata import read_nih_metadata  # noqa: E402
from chestxray.paths import DATA_DIR, nih_dir  # noqa: E402
from chestxray.phantoms import make_phantoms  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
matplotlib.use("Agg")  # figures are drawn, never shown
SCORES = ["check_for_leakage_score", "compute_class_freqs_score", "get_weighted_loss_score"]  # grades.csv
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def nih():
    """The course's NIH data in the repository: a clear failure (never a skip) when it is not there."""
    needed = ["Data_Entry_2017_v2020.csv.gz", "BBox_List_2017.csv.gz", "images"]
    missing = [name for name in needed if not os.path.exists(os.path.join(DATA_DIR, name))]
    if missing:
        pytest.fail(f"NIH data not found: {missing} missing in {DATA_DIR}. It is committed with the "
                    "code: check out the whole repository (see data/nih/README.md).", pytrace=False)
    return DATA_DIR


@pytest.fixture(scope="session")
def originals():
    """The 1024 px NIH originals (not committed): $CHESTXRAY_NIH/images-1024."""
    path = os.path.join(nih_dir(), "images-1024")
    if not os.path.isdir(path):
        pytest.fail(f"the 1024 px NIH originals are not in {path}: put the shared data there "
                    "(see README, 'Data') or set CHESTXRAY_NIH to the folder that holds images-1024/.",
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


@pytest.fixture(scope="session")
def releases():
    """(student release, solution notebook) of the English course, as text (nothing written)."""
    return course.build(student=None, solution=None)


@pytest.fixture
def subs(tmp_path):
    """An empty folder for students' notebooks: tmp_path/subs."""
    (tmp_path / "subs").mkdir()
    return tmp_path / "subs"


def notebook(solution, replace=None, after=None, metadata=None):
    """A student's notebook: the solution (text) with graded cells replaced ({"UNQ_C1": source}),
    cells added after one ({"UNQ_C3": [source, ...]}), its metadata changed."""
    nb = nbformat.reads(solution, as_version=4)
    cells = []
    for cell in nb.cells:
        for key, source in (replace or {}).items():
            if cell.cell_type == "code" and re.search(rf"#\s*{key}\b", cell.source):
                magic, rest = source.split("\n", 1) if source.startswith("%%") else ("", source)
                cell.source = (magic + "\n" if magic else "") + f"# {key}\n" + rest  # a cell magic comes first
        cells.append(cell)
        for key, extra in (after or {}).items():
            if cell.cell_type == "code" and re.search(rf"#\s*{key}\b", cell.source):
                cells += [nbformat.v4.new_code_cell(source) for source in extra]
    nb.cells = cells
    nb.metadata.update(metadata or {})
    return nbformat.writes(nb)


def chromium_dom(page, profile, *flags):
    """The DOM of the HTML file `page` as headless Chromium (Debian's chromium package) renders it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium not found: install Debian's chromium package (`apt-get install -y chromium`)"
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120).stdout
