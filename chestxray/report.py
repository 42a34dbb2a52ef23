"""One self-contained HTML page from an `evaluate` folder: metrics with CIs, ROC, comparison, Grad-CAM.

Images are embedded as data URIs, so the page can be mailed or attached as one file.
"""

import base64
import glob
import html
import os

import pandas as pd

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; }
.note { color: #666; }
"""


def _image(path, alt):
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(frame):
    return frame.to_html(float_format="{:.3f}".format, na_rep="n/a", border=0, escape=True)


def _optional_sections(eval_dir):
    """Calibration (calibration.csv, reliability.png) and localization (localize.csv), where present."""
    parts = []
    calibration = os.path.join(eval_dir, "calibration.csv")
    if os.path.exists(calibration):
        parts += ["<h2>Calibration</h2>",
                  "<p class='note'>The weighted loss trains the model as if every label were present half the "
                  "time, so its raw scores overstate every finding. The calibrated probabilities put each label "
                  "back at its training prevalence (odds times prevalence / (1 - prevalence)); AUROC does not "
                  "change. Brier score and expected calibration error (10 bins) over all image-label pairs; "
                  "lower is better.</p>",
                  _table(pd.read_csv(calibration, index_col=0))]
        if os.path.exists(os.path.join(eval_dir, "reliability.png")):
            parts.append(_image(os.path.join(eval_dir, "reliability.png"), "reliability diagram"))
    localization = os.path.join(eval_dir, "localize.csv")
    if os.path.exists(localization):
        parts += ["<h2>Does Grad-CAM point at the radiologists' boxes?</h2>",
                  "<p class='note'>Pointing game: a hit when the heatmap's maximum falls inside the box. "
                  "centre_hit_rate: the same for a heatmap that always points at the image centre, the "
                  "baseline to beat. Few boxes per label: read these as rough.</p>",
                  _table(pd.read_csv(localization, index_col=0))]
    return parts


def build_report(eval_dir, out, title="Chest X-ray classifier: evaluation", about=None):
    """Write the page to `out`; returns its path. `about`: a sentence on the model (`demo.model_summary`)."""
    needed = ["metrics.csv", "comparison.csv", "roc.png"]
    missing = [name for name in needed if not os.path.exists(os.path.join(eval_dir, name))]
    if missing:
        raise FileNotFoundError(f"{eval_dir} lacks {missing}: run `python -m chestxray evaluate` into it first")
    metrics = pd.read_csv(os.path.join(eval_dir, "metrics.csv"), index_col="label")
    comparison = pd.read_csv(os.path.join(eval_dir, "comparison.csv"), index_col="label")
    n = int(metrics["n"].iloc[0])
    shown = metrics[["auroc", "ci_low", "ci_high", "pr_auc", "prevalence", "positives", "n"]]
    notes = metrics["note"].dropna()
    gallery = sorted(glob.glob(os.path.join(eval_dir, "gradcam", "*.png")))
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *([f"<p>{html.escape(about)}</p>"] if about else []),
        f"<p><b>Mean AUROC {metrics['auroc'].mean():.3f}</b> over the {int(metrics['auroc'].notna().sum())} labels "
        f"with positive and negative test images. Test set: {n} images. Intervals are 95% bootstrap percentile intervals over "
        f"{int(metrics['boot_used'].max())} replicates of the test set, as in the CheXNeXt paper.</p>",
        "<h2>AUROC and PR-AUC per label</h2>", _table(shown),
        *(f"<p class='note'>{html.escape(label)}: {html.escape(str(note))}</p>" for label, note in notes.items()),
        "<h2>ROC curves</h2>", _image(os.path.join(eval_dir, "roc.png"), "ROC curves"),
        "<h2>Beside published results</h2>",
        f"<p class='note'>CheXNet and CheXNeXt were measured on other, larger or expert-labelled test sets; "
        f"with {n} test images, compare the intervals, not the digits.</p>",
        _table(comparison),
        "<h2>Grad-CAM</h2>",
        "<p class='note'>Where the model looks for each true label of the test images it scores highest.</p>"
        if gallery else "<p class='note'>No Grad-CAM images in this evaluation.</p>",
        *(f"<figure>{_image(path, os.path.basename(path))}<figcaption>{html.escape(os.path.basename(path))}"
          "</figcaption></figure>" for path in gallery),
        *_optional_sections(eval_dir),
        "<p class='note'>Not a medical device.</p>",
        "</body></html>",
    ]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return out
