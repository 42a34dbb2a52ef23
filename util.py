"""Course-facing helpers for C1W1_Assignment.ipynb: thin re-exports of the chestxray package.

The notebook imports from here so that its cells stay short; everything is
implemented (and tested) in `chestxray`.
"""

import logging
import os
import warnings

from chestxray.data import get_test_and_valid_generator, get_train_generator  # noqa: F401
from chestxray.i18n import _, label_name, number, set_language, table  # noqa: F401
from chestxray.labels import LABELS  # noqa: F401
from chestxray.splits import check_for_leakage  # noqa: F401

# Two messages that would only confuse a student: Keras's note that `fit` does not shuffle a
# tf.data pipeline (ours shuffles itself, every epoch), and TensorFlow's notes on re-tracing
# Grad-CAM's gradient function for each new set of classes (about speed, not results).
warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
logging.getLogger("tensorflow").setLevel(logging.ERROR)


def load_trained_model(path, train_df=None, image_dir=None):
    """(model, its Preprocessing): a model file and the preprocessing.json beside it (for a
    model without one, such as the course's `pretrained_model.h5`, the course's
    normalisation from a sample of `train_df`'s images)."""
    from chestxray.model import load_model
    from chestxray.preprocessing import Preprocessing

    model = load_model(path)
    preprocessing = Preprocessing.for_model(path, train_df, image_dir, image_size=model.input_shape[1])
    print(f"{_('evaluating')} {path}\n{_('preprocessing:')} {preprocessing.describe()}")
    return model, preprocessing


def get_roc_curve(labels, predicted_vals, generator):
    """The course's helper: ROC curves of every label on one figure; returns the AUROCs (NaN where undefined)."""
    import matplotlib.pyplot as plt

    from chestxray.evaluate import roc_figure

    _figure, aurocs = roc_figure(generator.labels, predicted_vals, [label_name(label) for label in labels])
    plt.show()
    return aurocs


def compute_gradcam(model, img, image_dir, df, labels, selected_labels, layer_name=None, sample_size=100, seed=1,
                    preprocessing=None, method=None):
    """The course's helper: the image and one Grad-CAM overlay per selected label, titled with p=...

    The image is preprocessed as the model's evaluation images are: with
    `preprocessing` (the model's `Preprocessing`) when given; otherwise exactly as
    `get_test_and_valid_generator` normalises test images (the mean and std of the
    same seeded sample of `df`, the training table), where the course's version used
    another random sample. All selected labels come from one forward pass.
    `layer_name` and `method` default to the model card's choice (`chestxray.explain.DEFAULT_CAM`).
    """
    import matplotlib.pyplot as plt

    from chestxray.data import training_sample_stats
    from chestxray.explain import Cam, explain_files, gradcam_figure
    from chestxray.preprocessing import Preprocessing

    if preprocessing is None:
        size = model.input_shape[1]
        mean, std = training_sample_stats(df, image_dir, "Image", sample_size, seed, (size, size))
        preprocessing = Preprocessing(size, tuple(labels), "featurewise", mean, std)
    names = [label_name(label) for label in selected_labels]
    print(_("Grad-CAM of {image} for {labels}, in one pass").format(image=img, labels=", ".join(names)))
    gray, heatmaps, probabilities = next(explain_files(model, [os.path.join(image_dir, img)], preprocessing,
                                                       list(selected_labels), Cam.chosen(layer_name, method)))
    shown = [list(preprocessing.labels).index(label) for label in selected_labels]
    gradcam_figure(gray, heatmaps, names, probabilities[shown], title=img)
    plt.show()


def _boxes(image_dir, frame=None):
    """The radiologists' boxes whose image is in `image_dir` (and in `frame`, when given)."""
    from chestxray.metadata import read_bboxes
    from chestxray.paths import DATA_DIR

    boxes = read_bboxes(os.path.join(DATA_DIR, "BBox_List_2017.csv.gz"))
    names = set(os.listdir(image_dir)) & (set(frame["Image"]) if frame is not None else set(boxes["Image"]))
    return boxes[boxes["Image"].isin(names)].reset_index(drop=True)


def pointing_game(model, preprocessing, image_dir, cam=None):
    """Does the heatmap's maximum fall in the radiologists' box? For every boxed image in
    `image_dir`: prints the hits of the heatmap and of a map fixed at the image centre, and
    returns them per label (`table` shows them in the student's language)."""
    from chestxray.explain import localize

    per_box, per_class = localize(model, _boxes(image_dir), image_dir, preprocessing, cam=cam)
    print(_("The heatmap's maximum falls in the box for {hits} of {n} boxes; a heatmap fixed at the image "
            "centre, for {centre} of {n}.").format(hits=int(per_box["hit"].sum()), n=len(per_box),
                                                   centre=int(per_box["centre_hit"].sum())))
    return per_class[["boxes", "hit_rate", "centre_hit_rate"]]


def show_boxes(model, preprocessing, frame, image_dir, count=3, cam=None):
    """For the first `count` boxes of `frame`'s images: the heatmap of the boxed finding with the
    box and the map's maximum, beside the centre baseline (`chestxray.explain.box_figure`)."""
    import matplotlib.pyplot as plt

    from chestxray.explain import box_figure, explain_files

    for box in _boxes(image_dir, frame).head(count).itertuples():
        gray, heatmaps, probabilities = next(explain_files(model, [os.path.join(image_dir, box.Image)],
                                                           preprocessing, [box.Label], cam))
        p = probabilities[list(preprocessing.labels).index(box.Label)]
        box_figure(gray, heatmaps[0], (box.x, box.y, box.w, box.h), f"{box.Image}: {label_name(box.Label)}, p={number(p)}",
                   names=(_("heatmap"), _("centre")))
        plt.show()

