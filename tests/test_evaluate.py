import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import util
from chestxray.evaluate import _auroc_weighted, bootstrap_auroc, roc_figure
from chestxray.labels import LABELS


def _data(n=420, classes=14, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, classes)) < np.linspace(0.02, 0.4, classes)).astype(int)
    score = rng.random((n, classes)) + 0.6 * y
    if ties:
        score = np.round(score, 1)  # many equal scores
    return y, score


@pytest.mark.parametrize("ties", [False, True])
def test_point_estimates_equal_sklearn(ties):
    y, score = _data(ties=ties)
    table = bootstrap_auroc(y, score, n_boot=200)
    assert list(table.index) == LABELS
    for j, label in enumerate(LABELS):
        assert table.loc[label, "auroc"] == pytest.approx(roc_auc_score(y[:, j], score[:, j]), abs=1e-9)
    assert (table["n"] == 420).all() and (table["positives"] == y.sum(axis=0)).all()


def test_replicates_equal_sklearn_on_the_resampled_rows():
    y, score = _data(n=60, classes=3, seed=1, ties=True)
    rng = np.random.default_rng(5)
    counts = rng.multinomial(60, np.full(60, 1 / 60), size=20)
    for j in range(3):
        fast = _auroc_weighted(y[:, j], score[:, j], counts)
        for b in range(20):
            rows = np.repeat(np.arange(60), counts[b])
            if 0 < y[rows, j].sum() < len(rows):
                assert fast[b] == pytest.approx(roc_auc_score(y[rows, j], score[rows, j]), abs=1e-12)
            else:
                assert np.isnan(fast[b])


def test_confidence_intervals():
    y, score = _data()
    table = bootstrap_auroc(y, score, n_boot=2000, seed=3)
    assert (table["ci_low"] < table["auroc"]).all() and (table["auroc"] < table["ci_high"]).all()
    width = table["ci_high"] - table["ci_low"]
    assert width.iloc[0] > width.iloc[-1]  # fewer positives, wider interval
    again = bootstrap_auroc(y, score, n_boot=2000, seed=3)
    assert again.equals(table)
    assert not bootstrap_auroc(y, score, n_boot=2000, seed=4)["ci_low"].equals(table["ci_low"])


def test_classes_with_one_kind_of_case():
    y, score = _data(n=50, classes=3)
    y[:, 0], y[:, 1] = 0, 1
    y[:, 2] = 0
    y[7, 2] = 1  # one positive: many replicates miss it
    table = bootstrap_auroc(y, score, n_boot=500, labels=["none", "all", "one"])
    assert np.isnan(table.loc["none", "auroc"]) and table.loc["none", "note"] == "no positive cases"
    assert np.isnan(table.loc["all", "ci_low"]) and table.loc["all", "note"] == "no negative cases"
    one = table.loc["one"]
    assert np.isfinite(one["auroc"]) and 0 < one["boot_used"] < 500
    assert one["note"] == f"{500 - one['boot_used']} one-class replicates left out of the CI"


def test_shape_errors():
    with pytest.raises(ValueError, match="same"):
        bootstrap_auroc(np.zeros((5, 2)), np.zeros((5, 3)))


def test_roc_figure_and_the_course_helper():
    y, score = _data(n=100, classes=14, seed=2)
    y[:, 3] = 0  # a class with no positive case
    figure, aurocs = roc_figure(y, score)
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "Hernia (n/a: no positive cases)" in legend and np.isnan(aurocs[3])
    for j in (0, 5, 13):
        assert aurocs[j] == pytest.approx(roc_auc_score(y[:, j], score[:, j]))
        assert legend[j] == f"{LABELS[j]} ({aurocs[j]:.3f})"

    class Generator:  # what the notebook passes: anything with .labels
        labels = y
    assert np.allclose(util.get_roc_curve(LABELS, score, Generator()), aurocs, equal_nan=True)
