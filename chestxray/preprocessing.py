"""What a model expects of its input images, as one value: `Preprocessing`.

`train` computes it from the training data and writes it beside the model as
`preprocessing.json`; evaluation, prediction and Grad-CAM read it back, so
every path standardises an image exactly as the model saw images in training.

standardize:
  "featurewise": every image, in training and evaluation alike, minus the mean
  and over the std of a seeded sample of training images;
  "samplewise": every image minus its own mean, over its own std.

The course's generators train samplewise and evaluate featurewise; a model
trained that way sees other inputs in evaluation than in training. `train`
uses one mode for both and records it here.

The file also carries each label's prevalence in the training table: the
weighted loss trains a model as if every label were present half the time,
and `calibrate` maps its scores back to probabilities at that prevalence.
"""

import json
import os
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .i18n import _, number
from .labels import LABELS

MODES = ("featurewise", "samplewise")
FILENAME = "preprocessing.json"


@dataclass(frozen=True)
class Preprocessing:
    image_size: int = 320
    labels: tuple = tuple(LABELS)
    standardize: str = "featurewise"
    mean: float = None  # of the training sample's pixels (0..255 scale); featurewise only
    std: float = None
    prevalence: tuple = None  # per label, in the training table; None: scores are not calibrated
    # The model's base (model.BACKBONES): every base gets these standardised, 3-channel images.
    backbone: str = "DenseNet121"
    source: str = field(default="", compare=False)  # where these settings came from, for messages

    def __post_init__(self):
        if self.standardize not in MODES:
            raise ValueError(f"standardize must be one of {MODES}, not {self.standardize!r}")
        if self.standardize == "featurewise" and (self.mean is None or self.std is None):
            raise ValueError("featurewise standardisation needs the training sample's mean and std")
        if self.prevalence is not None and len(self.prevalence) != len(self.labels):
            raise ValueError(f"{len(self.prevalence)} prevalences for {len(self.labels)} labels")
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.prevalence is not None:
            object.__setattr__(self, "prevalence", tuple(float(p) for p in self.prevalence))

    @property
    def size(self):
        return (self.image_size, self.image_size)

    @property
    def mean_std(self):
        """(mean, std) to standardise with, or (None, None): each image by its own."""
        return (self.mean, self.std) if self.standardize == "featurewise" else (None, None)

    # ------------------------------------------------------------------ made from data

    @classmethod
    def from_training(cls, train_df, image_dir, image_size=320, standardize="featurewise", labels=LABELS,
                      x_col="Image", sample_size=100, seed=1):
        """From the training table: the sample's mean and std and each label's prevalence."""
        from .data import training_sample_stats

        mean, std = training_sample_stats(train_df, image_dir, x_col, sample_size, seed, (image_size, image_size))
        sample = min(sample_size, len(train_df))
        return cls(image_size, tuple(labels), standardize, mean, std,
                   tuple(train_df[list(labels)].to_numpy().mean(axis=0)),
                   source=_("a sample of {sample} of {total} training images").format(sample=sample, total=len(train_df)))

    # ------------------------------------------------------------------ the file

    def to_dict(self):
        d = asdict(self)
        d.pop("source")
        d["labels"] = list(self.labels)
        d["prevalence"] = None if self.prevalence is None else dict(zip(self.labels, self.prevalence))
        return d

    def save(self, folder):
        """Write `folder/preprocessing.json` (atomically); returns its path."""
        path = os.path.join(folder, FILENAME)
        with open(path + ".tmp", "w") as f:
            json.dump(self.to_dict(), f, indent=2)
        os.replace(path + ".tmp", path)
        return path

    @classmethod
    def load(cls, path):
        """From a preprocessing.json, or the one beside a model file or in a run folder."""
        path = os.fspath(path)
        if not path.endswith(".json"):
            folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
            path = os.path.join(folder, FILENAME)
        try:
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} not found") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        try:
            prevalence = d.get("prevalence")
            if isinstance(prevalence, dict):
                prevalence = [prevalence[label] for label in d["labels"]]
            # Runs before the mode was one setting wrote train_mode/eval_mode; evaluate as they said.
            mode = d.get("standardize") or d.get("eval_mode", "featurewise")
            return cls(int(d["image_size"]), tuple(d["labels"]), mode, d.get("mean"), d.get("std"),
                       prevalence, d.get("backbone", "DenseNet121"), path)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: {type(e).__name__}: {e}") from None

    @classmethod
    def for_model(cls, model_path, train_df=None, image_dir=None, image_size=320, sample_size=100, seed=1):
        """The settings a model was trained with: its preprocessing.json; for a model without
        one (the course's `pretrained_model.h5`), the course's: featurewise, with the mean and
        std of a sample of its training images, and no calibration."""
        beside = os.path.join(os.path.dirname(os.path.abspath(model_path)), FILENAME)
        if os.path.exists(beside):
            return cls.load(beside)
        if train_df is None or image_dir is None:
            raise FileNotFoundError(f"no {beside}: give the training table and its image folder (--train-csv) "
                                    "to compute the normalisation the model was trained with")
        made = cls.from_training(train_df, image_dir, image_size, "featurewise", sample_size=sample_size, seed=seed)
        return replace(made, prevalence=None)

    # ------------------------------------------------------------------ applied

    def load_file(self, path):
        """One PNG, JPEG or DICOM file -> (model input (h, w, 3), gray image (h, w) on 0..255)."""
        from .data import load_file, standardize, to_rgb

        gray = load_file(path, self.size)
        return to_rgb(standardize(gray, *self.mean_std)), gray[..., 0]

    def batches(self, df, image_dir, batch_size=8, x_col="Image", cache=None, labels=None):
        """Batches over a table of images, in row order, for evaluation or prediction; their
        `labels` the table's columns `labels` (default: all the model's)."""
        from .data import ImageBatches

        mean, std = self.mean_std
        return ImageBatches(df, image_dir, x_col, list(labels or self.labels), batch_size=batch_size, size=self.size,
                            mean=mean, std=std, cache=cache)

    def calibrate(self, scores):
        """Model scores -> probabilities at the training prevalence (the prior correction).

        With w_pos = 1 - p and w_neg = p, the weighted loss is minimised by scores whose
        odds are the true odds times (1 - p) / p; multiplying the odds by p / (1 - p)
        undoes that. The order of scores within a label, hence AUROC, does not change.
        """
        if self.prevalence is None:
            raise ValueError(f"no training prevalence in {self.source or 'these settings'}: "
                             "the scores cannot be calibrated")
        scores = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
        prior = np.clip(np.asarray(self.prevalence), 1e-7, 1 - 1e-7)
        odds = scores / (1 - scores) * prior / (1 - prior)
        return odds / (1 + odds)

    def describe(self):
        """One line for people, in the current language."""
        if self.standardize == "samplewise":
            how = _("samplewise: each image by its own mean and standard deviation")
        else:
            how = _("featurewise: mean {mean}, standard deviation {std}").format(mean=number(self.mean, 2),
                                                                               std=number(self.std, 2))
        return _("{size} px, {how}, from {source}").format(size=self.image_size, how=how,
                                                          source=self.source or _("given settings"))
