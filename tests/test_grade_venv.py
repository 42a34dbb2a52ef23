"""The grader where instructors run it (issue 18): from a virtualenv (in a folder named `work`,
in a path with a space), with the sandbox on; a worker that cannot start says why."""

import glob
import os
import pathlib
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from chestxray import workers as grading
from tests.conftest import SCORES, notebook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_grades_from_a_virtualenv_whose_packages_live_only_there(tmp_path, releases):
    venv = tmp_path / "work" / "my venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = pathlib.Path(glob.glob(str(venv / "lib" / "python*" / "site-packages"))[0])
    # The virtualenv reaches this machine's packages through a .pth (installing TensorFlow into it
    # would take minutes), and holds one module of its own: a student's cell imports it.
    host = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    (site / "host.pth").write_text("\n".join(host) + "\n")
    (site / "only_in_the_venv.py").write_text("ANSWER = 42\n")
    _, solution = releases
    subs = tmp_path / "work" / "sub missions"
    subs.mkdir()
    (subs / "good.ipynb").write_text(solution)
    (subs / "wrong.ipynb").write_text(notebook(solution, {
        "UNQ_C2": "def compute_class_freqs(labels):\n    p = np.mean(labels, axis=1)\n    return p, 1 - p\n"}))
    (subs / "venv_module.ipynb").write_text(notebook(solution, {
        "UNQ_C1": "import only_in_the_venv\ndef check_for_leakage(df1, df2, patient_col):\n"
                  "    shared = bool(set(df1[patient_col]) & set(df2[patient_col]))\n"
                  "    return shared if only_in_the_venv.ANSWER == 42 else not shared\n"}))
    out = tmp_path / "work" / "grades out" / "grades.csv"
    out.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "chestxray", "grade", str(subs), "--out", str(out),
                           "--timeout", "20"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(out).set_index("submission")[SCORES]
    assert table.loc["good.ipynb"].tolist() == [1, 1, 1]
    assert table.loc["wrong.ipynb"].tolist() == [1, 0, 1]
    assert table.loc["venv_module.ipynb"].tolist() == [1, 1, 1]


def test_a_worker_that_cannot_start_says_why(tmp_path, monkeypatch):
    broken = tmp_path / "grader"
    broken.mkdir()
    (broken / "sandbox.py").write_text("import numpy_that_is_not_installed\n")
    shutil.copy(os.path.join(ROOT, "chestxray", "exercise_calls.py"), broken)
    monkeypatch.setattr(grading, "HERE", str(broken))
    with pytest.raises(grading.SandboxUnavailable) as raised:
        grading.Worker(0, grading.UID_SPACE[0], sandbox=True, start_seconds=60)
    message = str(raised.value)
    assert "did not start" in message and "No module named 'numpy_that_is_not_installed'" in message
    assert sys.executable in message and sys.prefix in message and "read-only in the sandbox" in message


def test_the_scratch_folder_hides_no_python(monkeypatch):
    """A Python under /sandbox (or /work, where the scratch folder used to be) stays visible."""
    monkeypatch.setattr(grading, "python_roots", lambda: ["/sandbox/python", "/work/venv"])
    command, roots = grading.sandbox_command(0, grading.UID_SPACE[0])
    scratch = command[command.index("--tmpfs") + 1]
    assert scratch.startswith("/sandbox-") and not any(r.startswith(scratch) for r in roots)
    assert command.index("--tmpfs") > max(i for i, arg in enumerate(command) if arg in roots)  # bound after them
    assert command[command.index("/work/venv") - 1] == "--ro-bind"
    assert command[command.index("-I") - 1] == sys.executable  # the environment's own interpreter, not its target
