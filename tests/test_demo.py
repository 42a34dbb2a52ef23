"""The main command on a fresh clone: the shipped model on the course's test images."""

import os
import subprocess
import sys

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_evaluates_the_shipped_model(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "chestxray", "demo", "--out", str(out), "--n-boot", "2000"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "evaluating models/nih/model.weights.h5 on 420 test images" in result.stdout
    metrics = pd.read_csv(out / "eval" / "metrics.csv", index_col="label")
    assert len(metrics) == 14 and (metrics["ci_low"] <= metrics["auroc"]).all()
    assert f"mean AUROC {metrics['auroc'].mean():.3f}" in result.stdout
    localization = pd.read_csv(out / "eval" / "localize.csv", index_col="label")
    assert localization["boxes"].sum() >= 30 and {"hit_rate", "centre_hit_rate"} <= set(localization.columns)
    calibration = pd.read_csv(out / "eval" / "calibration.csv", index_col=0)
    assert calibration.loc["calibrated", "brier"] < calibration.loc["model scores", "brier"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"report: {out / 'report.html'}" in result.stdout
    assert "models/nih/model.weights.h5" in report and "Mean AUROC" in report and "models/nih/README.md" in report
    assert len(os.listdir(out / "eval" / "gradcam")) == 4
