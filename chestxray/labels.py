"""The 14 ChestX-ray14 pathologies, the one list the whole project uses by default; and `Table`,
what a split CSV holds, as one value (the NIH's by default, any other data set's when given).

The order is the course's (it fixes the columns of the label matrix and the
outputs of the model), not the alphabetical order of the NIH table.
"""

from dataclasses import asdict, dataclass

LABELS = ["Cardiomegaly", "Emphysema", "Effusion", "Hernia", "Infiltration", "Mass", "Nodule", "Atelectasis",
          "Pneumothorax", "Pleural_Thickening", "Pneumonia", "Fibrosis", "Edema", "Consolidation"]

# What the NIH table writes for an image with none of the 14.
NO_FINDING = "No Finding"

# Other spellings of our labels in NIH files (the bounding-box list says "Infiltrate").
ALIASES = {"Infiltrate": "Infiltration"}

# CheXpert's five competition labels (Irvin et al. 2019), as its CSVs name them.
CHEXPERT_LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


def require_columns(frame, columns, source):
    """`frame`, or ValueError naming `source` (a file, a table) and the columns it lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; found {list(frame.columns)}")
    return frame


@dataclass(frozen=True)
class Table:
    """The columns of a split CSV: the image file's, the patient's, and one 0/1 column per label
    in the model's order. Recorded in run.json; split, shard, train and evaluate read it."""

    labels: tuple = tuple(LABELS)
    x_col: str = "Image"
    patient_col: str = "PatientId"

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        if not self.labels:
            raise ValueError("a table needs at least one label")

    @property
    def columns(self):
        return [self.x_col, *self.labels, self.patient_col]

    def check(self, frame, source, patients=True):
        """`frame`, or ValueError naming `source` and the columns it lacks."""
        return require_columns(frame, self.columns if patients else self.columns[:-1], source)

    def to_dict(self):
        return {**asdict(self), "labels": list(self.labels)}


NIH = Table()
