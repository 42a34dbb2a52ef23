"""Evaluation: AUROC per class with bootstrap 95% confidence intervals, as in the CheXNeXt paper.

The test sets here are small (hundreds of images, a handful of positives for
rare labels), so a point AUROC alone says little: every figure comes with a
percentile interval over bootstrap replicates of the test set.
"""

import os
import sys

import keras
import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # files are drawn on a Figure, not pyplot's: a notebook keeps its backend
from matplotlib.ticker import FuncFormatter
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from .i18n import _, number
from .labels import LABELS

PUBLISHED = os.path.join(os.path.dirname(__file__), "tables", "published_auroc.csv")
CHEXNEXT_N = 420  # images in the CheXNeXt comparison set (tables/README.md)
CHEXNET_N = 22400  # about: CheXNet's test set, a fifth of ChestX-ray14


def _auroc_weighted(y, score, weights):
    """AUROC of one class for each row of `weights` (bootstrap draw counts), ties counted half.

    Mann-Whitney form: AUROC = sum over (positive i, negative j) of w_i w_j K(s_i, s_j)
    / (W+ W-), with K = 1 if s_i > s_j, 1/2 if equal. K is built once per class, and
    all replicates go through one matrix product. The sums are of half-integers far
    below 2**24, so float32 computes them exactly.
    """
    positive = np.asarray(y).astype(bool)
    above, below = score[positive][:, None], score[~positive][None, :]
    kernel = ((above > below) + 0.5 * (above == below)).astype(np.float32)
    w_pos = weights[:, positive].astype(np.float32)
    w_neg = weights[:, ~positive].astype(np.float32)
    pairs = np.einsum("bn,bn->b", w_pos @ kernel, w_neg, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pairs / (w_pos.sum(axis=1, dtype=np.float64) * w_neg.sum(axis=1, dtype=np.float64))


def mean_auroc(y_true, y_score):
    """Mean AUROC over the classes that have both positive and negative cases (NaN if none)."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    values = [roc_auc_score(y_true[:, j], y_score[:, j]) for j in range(y_true.shape[1])
              if 0 < y_true[:, j].sum() < len(y_true)]
    return float(np.mean(values)) if values else float("nan")


class ValidationMetrics(keras.callbacks.Callback):
    """val_loss (the weighted loss) and val_auroc (mean AUROC over the labels that have both
    classes) from one pass over the validation data, into the epoch's logs: `train`'s tf.data
    batches (their `labels`), or arrays with `labels` given (bench/train_arrays.py, on JAX).

    First among the callbacks, so that the checkpoint, early stopping, the learning
    rate schedule and history.csv all see them.
    """

    def __init__(self, batches, loss, labels=None):
        super().__init__()
        self.labels = batches.labels if labels is None else labels
        if hasattr(batches, "with_options"):  # tf.data: every worker of a cluster predicts it all,
            import tensorflow as tf           # so that each computes the same metrics

            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            batches = batches.with_options(options)
        self.batches, self.loss = batches, loss

    def on_epoch_end(self, epoch, logs=None):
        scores = self.model.predict(self.batches, verbose=0)
        y = np.asarray(self.labels[:len(scores)], dtype=np.float32)  # whole batches only under multiworker
        if not np.isfinite(scores).all():  # a diverged model: nothing to rank
            logs["val_loss"] = logs["val_auroc"] = float("nan")
            return
        logs["val_loss"] = float(self.loss(y, scores))
        logs["val_auroc"] = mean_auroc(y, scores)
        logs.setdefault("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def bootstrap_auroc(y_true, y_score, n_boot=10000, seed=0, labels=None):
    """One row per class: auroc, ci_low, ci_high (2.5th/97.5th percentiles), n, positives,
    boot_used (replicates with both kinds of cases), note (why a value is NaN)."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} must be the same (N, classes) shape")
    n, classes = y_true.shape
    if labels is None:
        labels = LABELS if classes == len(LABELS) else [f"class_{j}" for j in range(classes)]
    rng = np.random.default_rng(seed)
    # The same replicates for every class, as in CheXNeXt; a replicate is a vector of draw counts.
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.int32)
    ones = np.ones((1, n), dtype=np.int32)
    rows = []
    for j, label in enumerate(labels):
        y, s = y_true[:, j], y_score[:, j]
        positives = int(y.sum())
        row = {"label": label, "auroc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": n,
               "positives": positives, "boot_used": 0, "note": ""}
        if positives == 0 or positives == n:
            row["note"] = _("no positive cases") if positives == 0 else _("no negative cases")
        else:
            row["auroc"] = float(_auroc_weighted(y, s, ones)[0])
            replicates = _auroc_weighted(y, s, counts)
            used = replicates[np.isfinite(replicates)]
            row["boot_used"] = int(used.size)
            if used.size:
                row["ci_low"], row["ci_high"] = np.percentile(used, [2.5, 97.5])
            if used.size < n_boot:
                row["note"] = _("{count} one-class replicates left out of the CI").format(
                    count=n_boot - used.size)
        rows.append(row)
    return pd.DataFrame(rows).set_index("label")


def _decimal_ticks(ax):
    """Tick labels with the language's decimal mark (0,2 in Portuguese)."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda value, _position: number(value, 1)))


def roc_figure(y_true, y_score, labels=LABELS, ax=None):
    """ROC curve per class on one axes, AUROC in the legend; returns (figure, aurocs).

    A class without both positive and negative cases has no curve: its AUROC is
    NaN and the legend says why.
    """
    import matplotlib.pyplot as plt  # a figure to show: pyplot only when asked for one

    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if ax is None:
        _figure, ax = plt.subplots(figsize=(7, 7))
    aurocs = []
    for j, label in enumerate(labels):
        y = y_true[:, j]
        if 0 < y.sum() < len(y):
            aurocs.append(float(roc_auc_score(y, y_score[:, j])))
            fpr, tpr, _thresholds = roc_curve(y, y_score[:, j])
            ax.plot(fpr, tpr, label=f"{label} ({number(aurocs[-1])})")
        else:
            aurocs.append(np.nan)
            why = _("no positive cases") if y.sum() == 0 else _("no negative cases")
            ax.plot([], [], " ", label=f"{label} ({_('n/a')}: {why})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set(xlabel=_("false positive rate"), ylabel=_("true positive rate"), title=_("ROC curves (AUROC)"))
    _decimal_ticks(ax)
    ax.legend(loc="lower right", fontsize="small")
    return ax.figure, aurocs


def pr_auc(y_true, y_score):
    """Average precision (area under the precision-recall curve) per class; NaN without positives."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    return np.array([average_precision_score(y_true[:, j], y_score[:, j]) if y_true[:, j].any() else np.nan
                     for j in range(y_true.shape[1])])


def metrics_table(y_true, y_score, labels=None, n_boot=10000, seed=0):
    """`bootstrap_auroc`'s table with PR-AUC and prevalence beside it."""
    table = bootstrap_auroc(y_true, y_score, n_boot=n_boot, seed=seed, labels=labels)
    table.insert(3, "pr_auc", pr_auc(y_true, y_score))
    table.insert(4, "prevalence", table["positives"] / table["n"])
    return table


def published():
    """Published AUROCs per label: CheXNet 2017, CheXNeXt 2018 radiologists and algorithm with CIs."""
    return pd.read_csv(PUBLISHED, index_col="label")


def comparison_table(metrics):
    """Our AUROC [95% CI] beside the published figures, with each test set's size in the header."""
    def interval(value, low, high):
        if np.isnan(value):
            return _("n/a")
        return _("{value} [{low}, {high}]").format(value=number(value), low=number(low), high=number(high))

    paper = published()
    n = int(metrics["n"].iloc[0])
    rows = {}
    for label, ours in metrics.iterrows():
        row = {_("ours (n={n}) AUROC [95% CI]").format(n=n): interval(ours["auroc"], ours["ci_low"], ours["ci_high"]),
               _("positives"): int(ours["positives"])}
        if label in paper.index:
            ref = paper.loc[label]
            row[_("CheXNet 2017 (n~{n})").format(n=number(CHEXNET_N, 0))] = number(ref["chexnet"])
            row[_("CheXNeXt radiologists (n={n})").format(n=CHEXNEXT_N)] = interval(
                ref["chexnext_radiologists"], ref["chexnext_radiologists_low"], ref["chexnext_radiologists_high"])
            row[_("CheXNeXt algorithm (n={n})").format(n=CHEXNEXT_N)] = interval(
                ref["chexnext"], ref["chexnext_low"], ref["chexnext_high"])
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("label")


def _binned(y_true, probabilities, bins):
    """(name, (probabilities, labels, [mask of each non-empty bin])) per set of probabilities, flat
    over all image-label pairs; `bins` equal-width bins of the predicted probability."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    for name, p in probabilities.items():
        p = np.asarray(p, dtype=np.float64).ravel()
        which = np.minimum((p * bins).astype(int), bins - 1)
        yield name, (p, y, [which == b for b in range(bins) if (which == b).any()])


def calibration_table(y_true, probabilities, bins=10):
    """Brier score and expected calibration error (ECE) of each set of probabilities
    (`probabilities`: name -> (N, classes) array), over all image-label pairs at once;
    ECE over `bins` equal-width bins of the predicted probability."""
    rows = {}
    for name, (p, y, binned) in _binned(y_true, probabilities, bins):
        gap = sum(abs(p[b].mean() - y[b].mean()) * b.sum() for b in binned)
        rows[name] = {"brier": float(np.mean((p - y) ** 2)), "ece": float(gap / len(p)),
                      "mean_probability": float(p.mean()), "observed_rate": float(y.mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("probabilities")


def reliability_figure(y_true, probabilities, bins=10, ax=None):
    """Observed rate against mean predicted probability per bin, one line per set of probabilities."""
    ax = ax or Figure(figsize=(5, 5)).subplots()
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label=_("perfect"))
    for name, (p, y, binned) in _binned(y_true, probabilities, bins):
        ax.plot([p[b].mean() for b in binned], [y[b].mean() for b in binned], marker="o", label=name)
    ax.set(xlabel=_("predicted probability"), ylabel=_("observed rate"), title=_("Reliability, all labels"))
    _decimal_ticks(ax)
    ax.legend()
    return ax.figure


def evaluate(model, test_df, image_dir, pre, out, n_boot=10000, seed=0, batch_size=8, gallery=4, x_col="Image"):
    """Predict the test table with the model's `Preprocessing` `pre` and write into `out`:
    scores.csv (the model's outputs), predictions.csv (probabilities: the scores calibrated
    to the training prevalence, or the scores where `pre` has none), metrics.csv,
    comparison.csv, calibration.csv, roc.png, reliability.png and a Grad-CAM gallery
    (gradcam/) of the `gallery` most confident true positives. Scores the labels the model
    and the table share, and says which of the model's it left out. Returns the metrics."""
    labels = [label for label in pre.labels if label in test_df.columns]
    left_out = [label for label in pre.labels if label not in labels]
    if not labels:
        raise ValueError(f"the test table has none of the model's labels {list(pre.labels)}")
    if left_out:
        print(f"note: the test table has no column for {', '.join(left_out)}: scoring the other {len(labels)} of "
              "the model's labels", file=sys.stderr)
    os.makedirs(out, exist_ok=True)
    batches = pre.batches(test_df, image_dir, batch_size, x_col, labels=labels)
    outputs = model.predict(batches, verbose=0)
    calibrated = pre.calibrate(outputs) if pre.prevalence is not None else outputs
    for name, values in (("scores", outputs), ("predictions", calibrated)):
        pd.DataFrame({x_col: batches.filenames, **dict(zip(pre.labels, values.T))}).to_csv(
            os.path.join(out, f"{name}.csv"), index=False)
    columns = [list(pre.labels).index(label) for label in labels]
    scores, calibrated = outputs[:, columns], calibrated[:, columns]
    metrics = metrics_table(batches.labels, scores, labels, n_boot=n_boot, seed=seed)
    metrics.to_csv(os.path.join(out, "metrics.csv"))
    comparison_table(metrics).to_csv(os.path.join(out, "comparison.csv"))
    sets = {"model scores": scores, **({"calibrated": calibrated} if pre.prevalence is not None else {})}
    calibration_table(batches.labels, sets).to_csv(os.path.join(out, "calibration.csv"))
    reliability_figure(batches.labels, sets).savefig(os.path.join(out, "reliability.png"), dpi=100,
                                                    bbox_inches="tight")
    figure, _aurocs = roc_figure(batches.labels, scores, labels, ax=Figure(figsize=(7, 7)).subplots())
    figure.savefig(os.path.join(out, "roc.png"), dpi=100, bbox_inches="tight")
    if gallery:
        from .explain import write_gallery

        write_gallery(model, pd.read_csv(os.path.join(out, "scores.csv")), batches.labels, image_dir, pre,
                      os.path.join(out, "gradcam"), gallery, labels=labels, x_col=x_col)
    return metrics
