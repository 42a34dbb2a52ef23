"""Synthetic chest radiographs with lesions at known places: the offline default.

Not realistic: a body, two dark lung fields, a heart, ribs and noise, plus
lesions for five of the 14 labels, each with its mask. They let demos and tests
run without the NIH images, and let Grad-CAM be checked against a known lesion.
Written as the NIH release is: PNG images, a `Data_Entry_2017` style table and
a `BBox_List_2017` style box list (boxes from the masks).
"""

import os

import numpy as np
import pandas as pd
from PIL import Image

PHANTOM_LABELS = ["Cardiomegaly", "Effusion", "Mass", "Nodule", "Pneumothorax"]
PREVALENCE = 0.25  # of each phantom label, independently


def _soft(distance, width):
    """1 inside (distance < 0), 0 outside, with a smooth edge `width` wide."""
    return np.clip(0.5 - distance / width, 0.0, 1.0)


def _ellipse(yy, xx, cy, cx, ry, rx):
    """Signed distance-like field of an ellipse: < 0 inside."""
    return (np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) - 1.0) * min(ry, rx)


def render(rng, size, findings):
    """One phantom: (uint8 image, {label: bool mask}) for the requested findings."""
    yy, xx = np.mgrid[0:size, 0:size] / size  # coordinates in [0, 1)
    edge = 2.0 / size
    jitter = lambda scale: rng.normal(0.0, scale)
    # Lungs: the image's left is the patient's right, the heart sits towards the image's right.
    lungs = [(0.47 + jitter(0.02), 0.31 + jitter(0.02), 0.27, 0.13),
             (0.47 + jitter(0.02), 0.69 + jitter(0.02), 0.27, 0.13)]
    heart_r = 0.16 if "Cardiomegaly" in findings else 0.10
    heart = (0.64 + jitter(0.01), 0.58 + jitter(0.01), heart_r * 0.85, heart_r)

    body = _soft(_ellipse(yy, xx, 0.55, 0.5, 0.55, 0.45), 0.05)
    lung_masks = [_soft(_ellipse(yy, xx, *lung), edge * 3) for lung in lungs]
    lung_field = np.maximum(*lung_masks)
    ribs = 0.5 + 0.5 * np.cos(2 * np.pi * (yy * 9 + 0.6 * (xx - 0.5) ** 2 * 9))
    image = 0.2 + 0.4 * body - 0.3 * lung_field + 0.08 * lung_field * ribs ** 4

    masks = {}
    heart_mask = _soft(_ellipse(yy, xx, *heart), edge * 3)
    image = np.maximum(image, heart_mask * 0.8)
    if "Cardiomegaly" in findings:
        masks["Cardiomegaly"] = heart_mask > 0.5
    side = rng.integers(2)  # the lung that gets effusion, mass and nodule
    cy, cx, ry, rx = lungs[side]
    if "Effusion" in findings:  # fluid filling the base of one lung, up to a level line
        level = cy + ry * rng.uniform(0.2, 0.5)
        fluid = lung_masks[side] * _soft(level - yy, edge * 4)
        image += 0.4 * fluid
        masks["Effusion"] = fluid > 0.5
    for label, radius in (("Mass", rng.uniform(0.06, 0.08)), ("Nodule", rng.uniform(0.02, 0.03))):
        if label in findings:
            y0 = cy + rng.uniform(-0.5, 0.3) * ry
            x0 = cx + rng.uniform(-0.4, 0.4) * rx
            lesion = _soft(np.hypot(yy - y0, xx - x0) - radius, edge * 2)
            image += 0.3 * lesion
            masks[label] = lesion > 0.5
    if "Pneumothorax" in findings:  # air at the top outer edge of the other lung: dark, no rib lines
        other = 1 - side
        cy, cx, ry, rx = lungs[other]
        rim = _ellipse(yy, xx, cy - ry * 0.2, cx - (rx * 0.5 if other == 0 else -rx * 0.5), ry * 0.6, rx * 0.7)
        air = lung_masks[other] * _soft(rim, edge * 3) * _soft(yy - cy, edge * 3)
        image = image * (1 - air)
        masks["Pneumothorax"] = air > 0.5

    image += rng.normal(0.0, 0.02, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), masks


def make_phantoms(out, n=400, seed=0, size=256, labels=PHANTOM_LABELS):
    """Write n phantoms (1 to 3 per patient) with masks, metadata and boxes under `out`,
    with findings drawn from `labels` (a subset of PHANTOM_LABELS)."""
    unknown = set(labels) - set(PHANTOM_LABELS)
    if unknown:
        raise ValueError(f"phantoms cannot show {sorted(unknown)}; they show {PHANTOM_LABELS}")
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "masks"), exist_ok=True)
    rows, boxes, patient, followup = [], [], 1, 0
    for _ in range(n):
        findings = [label for label in PHANTOM_LABELS if rng.random() < PREVALENCE and label in labels]
        name = f"phantom{patient:05d}_{followup:03d}.png"
        image, masks = render(rng, size, findings)
        Image.fromarray(image).save(os.path.join(out, "images", name))
        for label, mask in masks.items():
            Image.fromarray(mask.astype(np.uint8) * 255).save(
                os.path.join(out, "masks", f"{name[:-4]}_{label}.png"))
            ys, xs = np.nonzero(mask)
            boxes.append([name, label, xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
        rows.append([name, "|".join(findings) or "No Finding", followup, patient,
                     int(rng.integers(20, 80)), "MF"[rng.integers(2)], "PA" if rng.random() < 0.7 else "AP",
                     size, size, 0.143, 0.143])
        # Next image: a follow-up of the same patient, or a new patient.
        if followup < 2 and rng.random() < 0.5:
            followup += 1
        else:
            patient, followup = patient + 1, 0
    columns = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
               "Patient Gender", "View Position", "OriginalImage[Width", "Height]",
               "OriginalImagePixelSpacing[x", "y]"]
    metadata = os.path.join(out, "Data_Entry_phantoms.csv")
    pd.DataFrame(rows, columns=columns).to_csv(metadata, index=False)
    pd.DataFrame(boxes, columns=["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]).to_csv(
        os.path.join(out, "BBox_List_phantoms.csv"), index=False)
    return metadata
