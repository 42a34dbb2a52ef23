"""Training that no kill can break (runstate.py): a kill at every write of a small run, then the same
command again; the folder must end as an uninterrupted run leaves it. Deterministic fault points
(tests/fault_harness.py), no sleeps."""

import json
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pandas as pd
import pytest

from chestxray.preprocessing import Preprocessing
from chestxray.runstate import DamagedState
from chestxray.train import train
from tests.fault_harness import SETTINGS
from tests.test_train import ROOT, split_phantoms, tiny_model  # noqa: F401  (fixture)


def harness(split, images, work, points):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "fault_harness.py"), str(split), images,
                           str(work), json.dumps(points)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def folder_summary(out):
    """What must be the same after any kill and restart as in an uninterrupted run."""
    out = str(out)
    files = sorted(name for name in os.listdir(out) if name != "logs")
    history = pd.read_csv(os.path.join(out, "history.csv"))
    state = keras.models.load_model(os.path.join(out, "resume", "model.keras"), safe_mode=True)
    for name in ("best.keras", "model.keras"):
        keras.models.load_model(os.path.join(out, name), safe_mode=True)
    shipped = tiny_model(14, None, 32)
    shipped.load_weights(os.path.join(out, "model.weights.h5"))
    with h5py.File(os.path.join(out, "model.weights.h5")) as f:
        assert sorted(f) == ["layers", "vars"]
    png = open(os.path.join(out, "loss.png"), "rb").read()
    assert png.startswith(b"\x89PNG") and png.rstrip().endswith(b"IEND\xaeB`\x82")
    return {"files": files, "epochs": history["epoch"].tolist(),
            "learning_rate": np.round(history["learning_rate"].to_numpy(), 10).tolist(),
            "steps": int(state.optimizer.iterations), "preprocessing": Preprocessing.load(out),
            "run": json.load(open(os.path.join(out, "run.json"))), "resume": sorted(os.listdir(out + "/resume"))}


def test_a_kill_at_any_write_resumes_to_the_same_folder(split_phantoms, tmp_path):  # noqa: F811
    images, split, frames = split_phantoms
    counted = harness(split, images, tmp_path, [["count", 0]])[0]["counts"]
    points = ([["replace", n] for n in range(1, counted["replace"] + 1)]
              + [["save", n] for n in range(1, counted["save"] + 1)]
              + [["weights", n] for n in range(1, counted["weights"] + 1)]
              + [["batch", n] for n in (2, counted["batch"] // 2 + 1, counted["batch"])])
    assert counted["replace"] >= 12 and counted["save"] >= 3, counted  # every write goes through these
    reference = folder_summary(tmp_path / "count-0")
    assert reference["epochs"] == [0, 1]
    for result in harness(split, images, tmp_path, points):
        kind, n = result["point"]
        assert result["first"] == 137, result  # killed where asked (not finished, not failed)
        assert result["second"] == 0, result
        assert folder_summary(tmp_path / f"{kind}-{n}") == reference, result


def test_a_full_disk_or_read_only_folder_stops_with_a_message(split_phantoms, tmp_path):  # noqa: F811
    images, split, frames = split_phantoms
    # The 4th rename is the first commit's rename into resume/; the 9th, in the second epoch's commit.
    for result in harness(split, images, tmp_path, [["enospc", 4], ["enospc", 9]]):
        message = result["first_message"]
        assert result["first"] == 1 and message.startswith("SaveError: ")
        assert "No space left on device" in message and "run the same command again" in message
        assert result["second"] == 0  # room again: the same command resumes and finishes
    first_epoch, read_only = harness(split, images, tmp_path / "again", [["enospc", 4], ["erofs", 9]])
    assert "The last saved state (none yet) is untouched" in first_epoch["first_message"]
    message = read_only["first_message"]  # a folder made read-only during the second epoch's save
    assert read_only["first"] == 1 and "Read-only file system" in message, read_only
    assert "The last saved state (epoch 0) is untouched" in message and "writable" in message
    assert read_only["second"] == 0


def test_a_damaged_commit_falls_back_or_says_so(split_phantoms, tmp_path, capsys):  # noqa: F811
    images, split, frames = split_phantoms
    out = str(tmp_path / "run")
    train(frames["train"], frames["valid"], images, out, **SETTINGS)
    with open(os.path.join(out, "resume", "model.keras"), "r+b") as f:
        f.truncate(1000)
    train(frames["train"], frames["valid"], images, out, **SETTINGS)  # the state of epoch 0, epoch 1 again
    printed = capsys.readouterr().out
    assert "damaged saved state" in printed and "resuming after epoch 0" in printed
    assert pd.read_csv(os.path.join(out, "history.csv"))["epoch"].tolist() == [0, 1]
    for folder in ("resume", "resume.old"):
        with open(os.path.join(out, folder, "model.keras"), "r+b") as f:
            f.truncate(1000)
    with pytest.raises(DamagedState, match=r"no saved state of .* loads: .*resume .*resume.old"):
        train(frames["train"], frames["valid"], images, out, **SETTINGS)
