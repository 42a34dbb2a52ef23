"""The 14 ChestX-ray14 pathologies: the one list the whole project uses.

The order is the course's (it fixes the columns of the label matrix and the
outputs of the model), not the alphabetical order of the NIH table.
"""

LABELS = [
    "Cardiomegaly",
    "Emphysema",
    "Effusion",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Atelectasis",
    "Pneumothorax",
    "Pleural_Thickening",
    "Pneumonia",
    "Fibrosis",
    "Edema",
    "Consolidation",
]

# What the NIH table writes for an image with none of the 14.
NO_FINDING = "No Finding"

# Other spellings of our labels in NIH files (the bounding-box list says "Infiltrate").
ALIASES = {"Infiltrate": "Infiltration"}
