"""Course-facing helpers for C1W1_Assignment.ipynb: thin re-exports of the chestxray package.

The notebook imports from here so that its cells stay short; everything is
implemented (and tested) in `chestxray`.
"""

import os

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


def compute_gradcam(model, img, image_dir, df, labels, selected_labels, layer_name=None, sample_size=100, seed=1):
    """The course's helper: the image and one Grad-CAM overlay per selected label, titled with p=...

    The image is normalised exactly as `get_test_and_valid_generator` normalises
    test images (the mean and std of the same seeded sample of `df`, the training
    table); the course's version computed them from another random sample. All
    selected labels come from one forward pass. `layer_name` defaults to the
    last convolutional block's output (DenseNet121: "relu", right after "bn").
    """
    import matplotlib.pyplot as plt

    from chestxray.data import training_sample_stats
    from chestxray.explain import explain_files, gradcam_figure

    size = tuple(model.input_shape[1:3])
    mean, std = training_sample_stats(df, image_dir, "Image", sample_size, seed, size)
    settings = {"size": size, "mean": mean, "std": std, "labels": list(labels)}
    print(f"Grad-CAM of {img} for {', '.join(selected_labels)}, in one pass")
    gray, heatmaps, probabilities = next(explain_files(model, [os.path.join(image_dir, img)], settings,
                                                       list(selected_labels), layer_name))
    shown = [list(labels).index(label) for label in selected_labels]
    gradcam_figure(gray, heatmaps, selected_labels, probabilities[shown], title=img)
    plt.show()
