"""evaluate, predict (PNG and DICOM), gradcam, localize and report, end to end on a small trained model."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score

from chestxray.cli import main
from chestxray.labels import LABELS
from chestxray.phantoms import PHANTOM_LABELS
from chestxray.preprocessing import Preprocessing
from chestxray.train import train
from tests.conftest import chromium_dom
from tests.test_train import ROOT, split_phantoms, tiny_model  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def trained(split_phantoms, tmp_path_factory):  # noqa: F811
    images, split, frames = split_phantoms
    run = str(tmp_path_factory.mktemp("run"))
    train(frames["train"], frames["valid"], images, run, epochs=2, batch_size=8, lr=1e-3, image_size=32,
          model_fn=tiny_model, verbose=0)
    return os.path.join(run, "model.keras"), images, split, frames


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory):
    model, images, split, frames = trained
    out = str(tmp_path_factory.mktemp("eval"))
    main(["evaluate", "--model", model, "--test-csv", str(split / "test.csv"), "--image-dir", images,
          "--out", out, "--n-boot", "300", "--gallery", "2"])
    return out, frames["test"]


def test_a_trained_model_loads_in_plain_keras(trained):
    """model.keras holds the model alone: plain Keras loads it without this package (issue 20)."""
    path = trained[0]
    code = ("import sys, keras\nmodel = keras.models.load_model(sys.argv[1])\n"
            "assert 'chestxray' not in sys.modules\nprint(model.output_shape)")
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(path), env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith(f"(None, {len(LABELS)})")


def test_evaluate_writes_predictions_metrics_and_figures(evaluated):
    out, test = evaluated
    predictions = pd.read_csv(os.path.join(out, "predictions.csv"))
    assert predictions["Image"].tolist() == test["Image"].tolist()  # row order kept
    assert list(predictions.columns[1:]) == LABELS and predictions[LABELS].stack().between(0, 1).all()
    metrics = pd.read_csv(os.path.join(out, "metrics.csv"), index_col="label")
    for label in PHANTOM_LABELS:
        y = test[label].to_numpy()
        assert metrics.loc[label, "pr_auc"] == pytest.approx(average_precision_score(y, predictions[label]))
        assert metrics.loc[label, "prevalence"] == pytest.approx(y.mean())
        assert metrics.loc[label, "ci_low"] <= metrics.loc[label, "auroc"] <= metrics.loc[label, "ci_high"]
    absent = metrics.loc["Hernia"]  # no phantom has it
    assert np.isnan(absent["auroc"]) and np.isnan(absent["pr_auc"]) and "no positive" in absent["note"]
    comparison = pd.read_csv(os.path.join(out, "comparison.csv"), index_col="label")
    assert f"ours (n={len(test)}) AUROC [95% CI]" in comparison.columns
    assert comparison.loc["Cardiomegaly", "CheXNet 2017 (n~22,400)"] == pytest.approx(0.925, abs=1e-3)
    assert comparison.loc["Cardiomegaly", "CheXNeXt radiologists (n=420)"] == "0.888 [0.863, 0.910]"
    assert os.path.getsize(os.path.join(out, "roc.png")) > 10_000
    assert len(os.listdir(os.path.join(out, "gradcam"))) == 2
    # predictions.csv: the model's scores (scores.csv) calibrated to the training prevalence.
    scores = pd.read_csv(os.path.join(out, "scores.csv"))
    calibration = pd.read_csv(os.path.join(out, "calibration.csv"), index_col=0)
    assert list(calibration.index) == ["model scores", "calibrated"]
    y = test[LABELS].to_numpy()
    for name, table in (("model scores", scores), ("calibrated", predictions)):
        assert calibration.loc[name, "brier"] == pytest.approx(np.mean((table[LABELS].to_numpy() - y) ** 2))
        assert 0 <= calibration.loc[name, "ece"] <= 1
    assert (predictions[LABELS].to_numpy() <= scores[LABELS].to_numpy() + 1e-9).all()  # every label under 50%
    assert os.path.getsize(os.path.join(out, "reliability.png")) > 10_000


COUNT_IMAGES = ("<script>window.addEventListener('load', () => { const all = [...document.images]; "
                "document.title = 'images ' + all.filter(i => i.complete && i.naturalWidth > 0).length "
                "+ '/' + all.length + ' tables ' + document.querySelectorAll('table').length; });</script>")


def test_report_renders_in_headless_chromium(evaluated, tmp_path):
    out, test = evaluated
    page = str(tmp_path / "report.html")
    main(["report", "--eval", out, "--out", page])
    text = open(page, encoding="utf-8").read()
    assert "src=\"data:image/png;base64," in text and "file://" not in text  # self-contained
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", COUNT_IMAGES + "</body>"), encoding="utf-8")
    dom = chromium_dom(probe, tmp_path / "profile", "--virtual-time-budget=10000")
    loaded, total, tables = map(int, re.search(r"images (\d+)/(\d+) tables (\d+)", dom).groups())
    assert total == 2 + 2 and loaded == total  # the ROC and reliability figures, the two Grad-CAM images
    assert tables == 3 and "Cardiomegaly" in dom and f"Test set: {len(test)} images" in dom  # metrics,
    assert "Mean AUROC" in dom and "Calibration" in dom  # comparison and calibration tables


def write_dicom(path, stored, photometric, slope, intercept):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_predict_gives_the_same_for_png_and_dicom(trained, tmp_path, capsys):
    model, images, split, frames = trained
    name = frames["test"]["Image"].iloc[0]
    gray = np.array(Image.open(os.path.join(images, name))).astype(np.float64)
    gray = np.round((gray - gray.min()) / (gray.max() - gray.min()) * 255).astype(np.uint8)  # full 0..255
    Image.fromarray(gray).save(tmp_path / "image.png")
    # The same picture as a 12-bit MONOCHROME1 DICOM (dense = low stored value) with a rescale.
    write_dicom(tmp_path / "image.dcm", (255 - gray.astype(np.int64)) * 16 + 7, "MONOCHROME1", 0.5, -100)
    capsys.readouterr()
    main(["predict", str(tmp_path / "image.png"), str(tmp_path / "image.dcm"), "--model", model, "--json"])
    result = json.loads(capsys.readouterr().out)
    png, dcm = result[str(tmp_path / "image.png")], result[str(tmp_path / "image.dcm")]
    assert list(png) == LABELS
    for kind in ("probability", "score"):
        np.testing.assert_allclose([png[k][kind] for k in LABELS], [dcm[k][kind] for k in LABELS], atol=2e-5)
    # Probabilities are the scores put back at the training prevalence.
    pre = Preprocessing.load(model)
    np.testing.assert_allclose([png[k]["probability"] for k in LABELS],
                               pre.calibrate([[png[k]["score"] for k in LABELS]])[0], atol=2e-6)
    # An inverted picture (MONOCHROME2 with the same stored values) is a different image.
    write_dicom(tmp_path / "wrong.dcm", (255 - gray.astype(np.int64)) * 16 + 7, "MONOCHROME2", 0.5, -100)
    main(["predict", str(tmp_path / "wrong.dcm"), "--model", model, "--json"])
    wrong = json.loads(capsys.readouterr().out)[str(tmp_path / "wrong.dcm")]
    assert max(abs(wrong[k]["score"] - png[k]["score"]) for k in LABELS) > 1e-3


def test_predict_without_preprocessing_asks_for_the_training_table(trained, tmp_path):
    model, images, split, frames = trained
    bare = tmp_path / "bare" / "model.keras"
    bare.parent.mkdir()
    shutil.copy(model, bare)  # without preprocessing.json beside it
    with pytest.raises(FileNotFoundError, match="--train-csv"):
        main(["predict", os.path.join(images, frames["test"]["Image"].iloc[0]), "--model", str(bare)])


def test_gradcam_and_localize_commands(trained, phantoms, tmp_path, capsys):
    model, images, split, frames = trained
    names = frames["test"]["Image"].iloc[:2].tolist()
    main(["gradcam", *names, "--model", model, "--image-dir", images, "--out", str(tmp_path / "cams"),
          "--labels", "Cardiomegaly,Mass"])
    assert sorted(os.listdir(tmp_path / "cams")) == sorted(n[:-4] + "_gradcam.png" for n in names)
    with pytest.raises(SystemExit, match="unknown label"):
        main(["gradcam", names[0], "--model", model, "--image-dir", images, "--out", str(tmp_path), "--labels", "Flu"])
    out, _ = phantoms
    main(["localize", "--model", model, "--bbox", str(out / "BBox_List_phantoms.csv"), "--image-dir", images,
          "--out", str(tmp_path / "loc"), "--box-size", "128"])
    per_class = pd.read_csv(tmp_path / "loc" / "localize.csv", index_col="label")
    boxes = pd.read_csv(out / "BBox_List_phantoms.csv")
    assert per_class["boxes"].sum() == len(boxes)
    assert set(per_class.index) == set(boxes["Finding Label"])
    assert per_class["hit_rate"].between(0, 1).all() and per_class["mean_iou"].between(0, 1).all()
    assert set(per_class["method"]) == {"gradcam"} and per_class["flip"].all()  # the default: the card's choice
    main(["localize", "--model", model, "--bbox", str(out / "BBox_List_phantoms.csv"), "--image-dir", images,
          "--out", str(tmp_path / "loc2"), "--box-size", "128", "--method", "hirescam", "--flip", "off",
          "--layer", per_class["layer"].iloc[0]])
    again = pd.read_csv(tmp_path / "loc2" / "localize.csv", index_col="label")
    assert set(again["method"]) == {"hirescam"} and not again["flip"].any()
    assert set(again["layer"]) == set(per_class["layer"])  # the tiny model's last 4-D layer, by name


def test_user_errors_are_one_line_and_status_2(trained, tmp_path):
    model, images, split, frames = trained
    (tmp_path / "notes.png").write_text("not an image")
    cases = [(["predict", str(tmp_path / "notes.png"), "--model", model],
              f"{tmp_path / 'notes.png'}: not a PNG, JPEG or DICOM file"),
             (["predict", str(tmp_path / "notes.png"), "--model", str(tmp_path / "no.keras")],
              f"model file not found: {tmp_path / 'no.keras'}")]
    for args, message in cases:
        result = subprocess.run([sys.executable, "-m", "chestxray", *args], cwd=ROOT, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1] == f"error: {message}"
    debug = subprocess.run([sys.executable, "-m", "chestxray", *cases[1][0], "--debug"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # --debug: the whole story
