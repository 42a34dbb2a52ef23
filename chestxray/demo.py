"""The main job: the shipped model (or one trained here first) on the course's test images.

Evaluation with bootstrap CIs, calibration, a Grad-CAM gallery, the pointing
game on the radiologists' boxes, and one HTML report of all of it.
"""

import json
import os

import pandas as pd

from .paths import DATA_DIR, SHIPPED_MODEL


def model_summary(model_path):
    """One sentence on a model: its file, what it was trained on (run.json beside it) and its card."""
    folder = os.path.dirname(os.path.abspath(model_path))
    text = f"Model: {os.path.relpath(model_path)}"
    run = os.path.join(folder, "run.json")
    if os.path.exists(run):
        with open(run) as f:
            record = json.load(f)
        recipe, data = record["recipe"], record["data"]
        if "train_images" in data:
            text += (f", trained by `python -m chestxray train` on {len(data['train_images'])} images "
                     f"(best epoch chosen on {len(data['valid_images'])} validation images, by {recipe['monitor']})")
        text += (f", {recipe.get('backbone', 'DenseNet121')} at {recipe['image_size']} px, {recipe['epochs']} epochs, "
                 f"base weights {recipe['weights'] or 'random'}")
    card = os.path.join(folder, "README.md")
    if os.path.exists(card):
        text += f". Model card: {os.path.relpath(card)}"
    return text + "."


def run_demo(out, model_path=SHIPPED_MODEL, data_dir=DATA_DIR, n_boot=10000, gallery=4, train_first=False,
             epochs=2, image_size=128, seed=0):
    """Evaluate, localize and report into `out`; returns (metrics, localization per label, report path).

    `train_first`: train a model from random weights on the course's training images
    (`epochs`, `image_size`) into `out/run`, and evaluate that instead.
    """
    from .evaluate import evaluate
    from .explain import localize
    from .metadata import read_bboxes
    from .model import load_model
    from .preprocessing import Preprocessing
    from .report import build_report

    images = os.path.join(data_dir, "images")
    splits = {name: pd.read_csv(os.path.join(data_dir, f"{name}.csv")) for name in ("train", "valid", "test")}
    if train_first:
        from .train import train

        run = os.path.join(out, "run")
        print(f"training DenseNet121 (random weights) for {epochs} epoch(s) at {image_size} px into {run}")
        train(splits["train"], splits["valid"], images, run, epochs=epochs, image_size=image_size, seed=seed,
              verbose=2)
        model_path = os.path.join(run, "model.weights.h5")
    model, pre = load_model(model_path), Preprocessing.for_model(model_path)
    print(f"evaluating {os.path.relpath(model_path)} on {len(splits['test'])} test images; "
          f"preprocessing: {pre.describe()}")
    eval_dir = os.path.join(out, "eval")
    metrics = evaluate(model, splits["test"], images, pre, eval_dir, n_boot=n_boot, seed=seed, gallery=gallery)

    boxes = read_bboxes(os.path.join(data_dir, "BBox_List_2017.csv.gz"))
    boxes = boxes[boxes["Image"].isin(set(os.listdir(images)))]
    _, per_class = localize(model, boxes, images, pre, out=eval_dir)
    report = build_report(eval_dir, os.path.join(out, "report.html"), about=model_summary(model_path))
    return metrics, per_class, report
