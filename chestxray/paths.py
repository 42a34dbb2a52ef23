"""Where things are, in one place, anchored to the repository: every command works from any folder."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The course's 1,188 images (320 px), the metadata table, the box list and the splits, committed
# with the code: what the notebook, the tests and the main command use.
DATA_DIR = os.path.join(REPO, "data", "nih")
SHIPPED_MODEL = os.path.join(REPO, "models", "nih", "model.weights.h5")  # trained by `train` (its README)
# The course module: one source (with solutions), its translations, the helpers the notebook imports.
COURSE_SOURCE = os.path.join(REPO, "course", "C1W1_Assignment.py")
TRANSLATIONS = {"pt-BR": os.path.join(REPO, "course", "C1W1_Assignment.pt-BR.txt")}
COURSE_HELPERS = [os.path.join(REPO, name) for name in ("util.py", "public_tests.py", "test_utils.py")]


def release_paths(language="en"):
    """(student release, solution) of a language."""
    suffix = "" if language == "en" else f".{language}"
    return (os.path.join(REPO, f"C1W1_Assignment{suffix}.ipynb"),
            os.path.join(REPO, "build", f"C1W1_Assignment_solution{suffix}.ipynb"))


def nih_dir():
    """Where the benchmark copy of the NIH data is (the 1024 px originals in `images-1024/`):
    $CHESTXRAY_NIH, else ../shared/data/nih beside the checkout."""
    return os.path.normpath(os.environ.get("CHESTXRAY_NIH", os.path.join(REPO, "..", "shared", "data", "nih")))
