"""Course-facing helpers for C1W1_Assignment.ipynb: thin re-exports of the chestxray package.

The notebook imports from here so that its cells stay short; everything is
implemented (and tested) in `chestxray`.
"""

from chestxray.data import get_test_and_valid_generator, get_train_generator  # noqa: F401
from chestxray.labels import LABELS  # noqa: F401
from chestxray.splits import check_for_leakage  # noqa: F401


def get_roc_curve(labels, predicted_vals, generator):
    """The course's helper: ROC curves of every label on one figure; returns the AUROCs (NaN where undefined)."""
    import matplotlib.pyplot as plt

    from chestxray.evaluate import roc_figure

    figure, aurocs = roc_figure(generator.labels, predicted_vals, labels)
    plt.show()
    return aurocs
