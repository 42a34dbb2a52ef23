"""Explanation: Grad-CAM heatmaps for several classes at once, and how well they point at lesions.

Grad-CAM (Selvaraju et al. 2017) weighs the feature maps of a convolutional
layer by the mean gradient of a class score with respect to them. The network
runs forward once to those maps; only the rest of it (the head: with the
default layer, DenseNet's last dense block, the pooling and the dense layer)
is differentiated, one backward pass per selected class. The course's
`compute_gradcam` ran the whole network for each class (bench/gradcam.py).

Images go through the model's own `Preprocessing` (its preprocessing.json), the
one evaluation uses: the seed normalised Grad-CAM's input differently from
its test generator.
"""

import os
from dataclasses import dataclass, replace

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib.figure import Figure  # files are drawn on a Figure, not pyplot's: a notebook keeps its backend
from matplotlib.patches import Rectangle

from .i18n import _, number


@dataclass(frozen=True)
class Cam:
    """How a heatmap is made: the layer whose feature maps are weighed (None: the last one with a
    4-D output), the method ("gradcam": channel weights
    from the mean gradient, Selvaraju et al. 2017; "hirescam": gradient times features cell by
    cell, Draelos and Carin 2020), and whether to average with the horizontally flipped image."""
    layer: str = None
    method: str = "gradcam"
    flip: bool = False

    @classmethod
    def chosen(cls, layer=None, method=None, flip=None):
        """The model card's choice (DEFAULT_CAM), with whatever is given instead."""
        return cls(layer or DEFAULT_CAM.layer, method or DEFAULT_CAM.method, DEFAULT_CAM.flip if flip is None else flip)

    def on(self, model):
        """These settings for `model`: the default's layer, where the model has none of that name
        (another backbone), becomes its last 4-D layer, whatever the method and flip; any other
        layer asked for by name must exist."""
        if self.layer == DEFAULT_CAM.layer and self.layer not in [layer.name for layer in model.layers]:
            return replace(self, layer=None)
        return self

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown heatmap method {self.method!r}: use one of {', '.join(METHODS)}")


METHODS = ("gradcam", "hirescam")
# Chosen on the boxes of the training and validation images (bench/localize.py, models/nih/README.md):
# Grad-CAM on the third dense block's output (8x8 cells at 128 px, where the last block has 4x4),
# averaged with the mirrored image. A model without that layer gets its last 4-D layer (`Cam.on`).
DEFAULT_CAM = Cam("conv4_block24_concat", "gradcam", True)


def feature_layer(model, layer_name=None):
    """The named layer, or the last one with a 4-D (batch, h, w, channels) output."""
    if layer_name:
        return model.get_layer(layer_name)
    for layer in reversed(model.layers):
        if len(getattr(layer.output, "shape", ())) == 4:  # a list of outputs has no shape
            return layer
    raise ValueError(f"model {model.name!r} has no layer with a 4-D output to explain")


def split_model(model, layer_name=None):
    """(features, head): the model up to the feature layer Grad-CAM weighs, and the rest."""
    layer = feature_layer(model, layer_name)
    return keras.Model(model.input, layer.output), keras.Model(layer.output, model.output)


def _maps(models, images, classes, method):
    features_model, head = models
    features = features_model(images, training=False)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features)
        predictions = head(features, training=False)
        # Images do not interact at inference, so the gradient of a class's summed scores holds each
        # image's own: one backward pass per class (a batch Jacobian retraces a graph per call).
        scores = [tf.reduce_sum(predictions[:, k]) for k in classes]
    gradients = tf.stack([tape.gradient(score, features) for score in scores], axis=1)  # (batch, classes, h, w, c)
    if method == "hirescam":
        maps = tf.reduce_sum(gradients * features[:, None], axis=-1)
    else:
        maps = tf.einsum("bhwc,bkc->bkhw", features, tf.reduce_mean(gradients, axis=(2, 3)))
    return tf.nn.relu(maps), predictions


def gradcam(models, images, classes, method="gradcam", flip=False):
    """Heatmaps (batch, len(classes), h, w) in [0, 1] at the feature-map resolution, and predictions.

    `models` comes from `split_model`; `classes` are output indices. The full
    network runs forward once, outside the tape; only the head is differentiated.
    With `flip`, the maps of the mirrored images, mirrored back, are averaged in.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    maps, predictions = _maps(models, images, classes, method)
    if flip:
        mirrored, _scores = _maps(models, tf.reverse(images, axis=[2]), classes, method)
        maps = (maps + tf.reverse(mirrored, axis=[3])) / 2
    peak = tf.reduce_max(maps, axis=(2, 3), keepdims=True)
    return tf.math.divide_no_nan(maps, peak).numpy(), predictions.numpy()


def gradcam_per_class(model, images, classes, layer_name=None):
    """The course's way, one full forward and backward pass per class: the benchmark baseline."""
    grad_model = keras.Model(model.input, [feature_layer(model, layer_name).output, model.output])
    images = tf.convert_to_tensor(images, tf.float32)
    maps = []
    for k in classes:
        with tf.GradientTape() as tape:
            features, predictions = grad_model(images, training=False)
            score = predictions[:, k]
        gradients = tape.gradient(score, features)
        weights = tf.reduce_mean(gradients, axis=(1, 2))
        cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", features, weights))
        maps.append(tf.math.divide_no_nan(cam, tf.reduce_max(cam, axis=(1, 2), keepdims=True)))
    return tf.stack(maps, axis=1).numpy()


def explain_files(model, paths, pre, labels, cam=None, batch_size=8, models=None):
    """For each file: (gray image, heatmaps (len(labels), h, w) at the model's input size,
    probabilities of all classes), in one pass per batch of files.

    `pre`: the model's `Preprocessing`; `cam`: how the heatmaps are made (default `DEFAULT_CAM`);
    `models`: `split_model`'s pair for `cam`, when the caller has it already.
    Probabilities are calibrated to the training prevalence where `pre` knows it
    (`Preprocessing.calibrate`), else the raw scores.
    """
    cam = (cam or DEFAULT_CAM).on(model)
    models = models or split_model(model, cam.layer)
    classes = [pre.labels.index(label) for label in labels]
    for start in range(0, len(paths), batch_size):
        loaded = [pre.load_file(path) for path in paths[start:start + batch_size]]
        maps, predictions = gradcam(models, tf.stack([x for x, _ in loaded]), classes, cam.method, cam.flip)
        # Up to the input size, bilinear: a batch's classes as the channels of one resize.
        maps = np.moveaxis(tf.image.resize(np.moveaxis(maps, 1, -1), pre.size).numpy(), -1, 1)
        if pre.prevalence is not None:
            predictions = pre.calibrate(predictions)
        for (_x, gray), heatmaps, probabilities in zip(loaded, maps, predictions):
            yield gray.numpy(), heatmaps, probabilities


def gradcam_figure(gray, heatmaps, labels, probabilities, title=None, figure=None):
    """The course's figure: the image, then one overlay per class titled with its probability.

    On a new pyplot figure (to show in a notebook), or on `figure` (to save to a file).
    """
    if figure is None:
        import matplotlib.pyplot as plt

        figure = plt.figure()
    figure.set_size_inches(4 * (len(labels) + 1), 4.4)
    axes = figure.subplots(1, len(labels) + 1)
    axes[0].imshow(gray, cmap="gray")
    axes[0].set_title(title or _("Original"))
    for ax, label, heatmap, p in zip(axes[1:], labels, heatmaps, probabilities):
        ax.imshow(gray, cmap="gray")
        ax.imshow(heatmap, cmap="jet", alpha=0.4 * (heatmap.max() > 0), vmin=0, vmax=1)
        ax.set_title(f"{label}: p={number(p)}")
    for ax in axes:
        ax.axis("off")
    figure.tight_layout()
    return figure


def save_overlays(path, gray, heatmaps, probabilities, labels, shown, title=None, dpi=80):
    """Write the figure of the classes `shown` (indices into `labels`, heatmaps and probabilities)."""
    shown = list(shown)
    figure = gradcam_figure(gray, heatmaps[shown], [labels[j] for j in shown], probabilities[shown], title,
                            figure=Figure())
    figure.savefig(path, dpi=dpi, bbox_inches="tight")


# ----------------------------------------------------------------------------
# Does the heatmap point at the lesion?

def otsu_threshold(values, bins=256):
    """The threshold that maximises the between-class variance of a histogram (Otsu 1979)."""
    counts, edges = np.histogram(np.ravel(values), bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centers)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_low = sum_low / weight_low
        mean_high = (sum_low[-1] - sum_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[1:][np.nanargmax(between[:-1])]) if np.isfinite(between[:-1]).any() else float(edges[-1])


def pointing_hit(heatmap, region):
    """True when the heatmap's maximum lies inside the boolean `region`; an all-zero map,
    whose argmax would be its first pixel, points nowhere."""
    return bool(heatmap.max() > 0 and region.flat[int(np.argmax(heatmap))])


def otsu_iou(heatmap, region):
    """IoU of the Otsu-thresholded heatmap with the boolean `region`."""
    hot = heatmap > otsu_threshold(heatmap)
    union = np.logical_or(hot, region).sum()
    return float(np.logical_and(hot, region).sum() / union) if union else 0.0


def box_mask(shape, x, y, w, h, scale=1.0):
    """Boolean mask of a box given in the pixels of an image `scale` times smaller than `shape`."""
    mask = np.zeros(shape, dtype=bool)
    top, left = int(np.floor(y * scale)), int(np.floor(x * scale))
    bottom, right = int(np.ceil((y + h) * scale)), int(np.ceil((x + w) * scale))
    mask[max(top, 0):min(bottom, shape[0]), max(left, 0):min(right, shape[1])] = True
    return mask


def localize(model, boxes, image_dir, pre, box_size=1024, cam=None, batch_size=8, out=None):
    """Pointing game and Otsu IoU for every box of `boxes` (columns Image, Label, x, y, w, h,
    as `metadata.read_bboxes` gives) whose image and label the model has.

    Boxes are in the pixels of the `box_size`-pixel square images they were drawn on
    (1024 for NIH) and are scaled to the model's input. Beside each hit: whether a
    heatmap that always points at the image centre would hit (the baseline a model's
    maps must beat). Returns (per box, per class, with the heatmap's settings); with `out`,
    writes them there too (localize_boxes.csv, localize.csv).
    """
    boxes = boxes[boxes["Label"].isin(pre.labels)]
    names = sorted(set(boxes["Image"]))
    missing = [name for name in names if not os.path.exists(os.path.join(image_dir, name))]
    if missing:
        raise FileNotFoundError(f"{len(missing)} boxed image(s) not in {image_dir}, e.g. {missing[:3]}")
    rows, cam = [], (cam or DEFAULT_CAM).on(model)
    models = split_model(model, cam.layer)  # once: building it costs more than a batch
    for label in sorted(set(boxes["Label"]), key=pre.labels.index):  # one class's gradients per pass
        boxed = boxes[boxes["Label"] == label]
        images = sorted(set(boxed["Image"]))
        paths = [os.path.join(image_dir, name) for name in images]
        for name, (_gray, heatmaps, probabilities) in zip(images, explain_files(model, paths, pre, [label], cam,
                                                                           batch_size, models)):
            for box in boxed[boxed["Image"] == name].itertuples():
                heatmap = heatmaps[0]
                region = box_mask(heatmap.shape, box.x, box.y, box.w, box.h, heatmap.shape[0] / box_size)
                rows.append({"Image": name, "label": label, "p": float(probabilities[pre.labels.index(label)]),
                             "hit": pointing_hit(heatmap, region), "iou": otsu_iou(heatmap, region),
                             "centre_hit": bool(region[region.shape[0] // 2, region.shape[1] // 2]),
                             # an all-zero map points nowhere: a miss, counted apart so it can be told apart
                             "empty": bool(heatmap.max() == 0)})
    per_box = pd.DataFrame(rows, columns=["Image", "label", "p", "hit", "iou", "centre_hit", "empty"])
    per_class = per_box.groupby("label", sort=False).agg(
        hit_rate=("hit", "mean"), centre_hit_rate=("centre_hit", "mean"), mean_iou=("iou", "mean"),
        boxes=("hit", "size"), empty_maps=("empty", "sum")).assign(
        layer=feature_layer(model, cam.layer).name, method=cam.method, flip=cam.flip)
    if out:
        os.makedirs(out, exist_ok=True)
        per_box.to_csv(os.path.join(out, "localize_boxes.csv"), index=False)
        per_class.to_csv(os.path.join(out, "localize.csv"))
    return per_box, per_class


def box_figure(gray, heatmap, box, title, names=("Grad-CAM", "centre"), figure=None, box_size=1024):
    """The pointing game for one box, as a student checks it: the heatmap with the radiologist's
    box and the map's maximum, beside the baseline that always points at the image centre.
    `box`: (x, y, w, h) in the pixels of the `box_size` image it was drawn on."""
    if figure is None:
        import matplotlib.pyplot as plt

        figure = plt.figure()
    figure.set_size_inches(8, 4.4)
    scale = gray.shape[0] / box_size
    x, y, w, h = (v * scale for v in box)
    region = box_mask(heatmap.shape, *box, scale=heatmap.shape[0] / box_size)
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    centre = (heatmap.shape[0] // 2, heatmap.shape[1] // 2)
    for ax, name, point, overlay in zip(figure.subplots(1, 2), names, (peak, centre), (heatmap, None)):
        ax.imshow(gray, cmap="gray")
        if overlay is not None:
            ax.imshow(overlay, cmap="jet", alpha=0.4 * (overlay.max() > 0), vmin=0, vmax=1)
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="lime", linewidth=2))
        ax.plot(point[1], point[0], marker="x", color="white", markersize=12, markeredgewidth=3)
        hit = pointing_hit(heatmap, region) if overlay is not None else bool(region[centre])
        ax.set_title(f"{name}: {'✓' if hit else '✗'}")
        ax.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def write_gallery(model, predictions, y_true, image_dir, pre, out, count, cam=None, labels=None, x_col="Image"):
    """Grad-CAM overlays for the `count` images whose best true-positive score is highest,
    each for its true labels (at most 4) among `labels` (the columns of `y_true`; default: all
    the model's): what the report shows."""
    labels = list(labels or pre.labels)
    columns = [list(pre.labels).index(label) for label in labels]
    scores = predictions[labels].to_numpy()
    best = np.where(y_true.astype(bool), scores, -1).max(axis=1)
    chosen = [i for i in np.argsort(-best)[:count] if best[i] >= 0]
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(image_dir, predictions[x_col].iloc[i]) for i in chosen]
    for i, path, (gray, heatmaps, probabilities) in zip(chosen, paths, explain_files(model, paths, pre, labels, cam)):
        name = os.path.basename(path)
        shown = [j for j in np.argsort(-scores[i]) if y_true[i, j]][:4]
        save_overlays(os.path.join(out, os.path.splitext(name)[0] + ".png"), gray, heatmaps, probabilities[columns],
                      labels, shown, title=name)
