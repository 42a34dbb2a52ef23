"""Course-facing helpers for C1W1_Assignment.ipynb: thin re-exports of the chestxray package.

The notebook imports from here so that its cells stay short; everything is
implemented (and tested) in `chestxray`.
"""

from chestxray.data import get_test_and_valid_generator, get_train_generator  # noqa: F401
from chestxray.labels import LABELS  # noqa: F401
from chestxray.splits import check_for_leakage  # noqa: F401
