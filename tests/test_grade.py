"""The grader: verdicts outside the students' code, each submission in a sandbox, hidden cases,
feedback. Each test plays a student who wants the marks (or another student's)."""

import json
import os
import socket
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from chestxray import exercises
from chestxray.cli import main
from chestxray.grade import grade
from tests.conftest import SCORES, notebook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WRONG_LEAKAGE = "def check_for_leakage(df1, df2, patient_col):\n    return False\n"
WRONG_FREQS = "import numpy as np\ndef compute_class_freqs(labels):\n    return np.zeros(labels.shape[1]), np.ones(labels.shape[1])\n"
WRONG_LOSS = "def get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):\n    return lambda y_true, y_pred: 0.0\n"


def submit(folder, name, solution, replace=None):
    (folder / name).write_text(notebook(solution, replace))
    return folder / name


def scores(table):
    return table.set_index("submission")[SCORES]


def test_grader_scores_each_exercise_and_survives_bad_submissions(subs, releases, tmp_path):
    student, solved = releases
    submit(subs, "a_good.ipynb", solved)
    (subs / "b_untouched.ipynb").write_text(student)
    (subs / "c_broken.ipynb").write_text("{not json")
    submit(subs, "d_loops.ipynb", solved, {"UNQ_C1": "def check_for_leakage(a, b, c):\n    while True:\n"
                                                     "        pass\n"})
    submit(subs, "e_syntax_and_memory.ipynb", solved, {
        "UNQ_C2": "def compute_class_freqs(labels)\n    return 1\n",
        "UNQ_C3": "import numpy as np\ndef get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):\n"
                  "    return np.ones((1 << 40,), dtype=np.uint8)\n"})
    submit(subs, "f_exits.ipynb", solved, {"UNQ_C1": "import sys\nsys.exit(3)\n"})
    submit(subs, "g_raises.ipynb", solved, {"UNQ_C2": "def compute_class_freqs(labels):\n"
                                                      "    n = labels.shape[0]\n    return labels / undefined\n"})
    out = tmp_path / "grades.csv"
    main(["grade", str(subs), "--out", str(out), "--timeout", "5", "--jobs", "2"])
    grades = pd.read_csv(out, keep_default_na=False).set_index("submission")
    got = grades[SCORES]
    assert got.loc["a_good.ipynb"].tolist() == [1, 1, 1]
    assert got.loc["b_untouched.ipynb"].tolist() == [0, 0, 0]
    assert got.loc["c_broken.ipynb"].tolist() == [0, 0, 0]
    assert "does not parse" in grades.loc["c_broken.ipynb", "check_for_leakage_messages"]
    assert got.loc["d_loops.ipynb"].tolist() == [0, 1, 1]
    assert "Timeout" in grades.loc["d_loops.ipynb", "check_for_leakage_messages"]
    assert got.loc["e_syntax_and_memory.ipynb"].tolist() == [1, 0, 0]
    assert "SyntaxError" in grades.loc["e_syntax_and_memory.ipynb", "compute_class_freqs_messages"]
    assert "MemoryError" in grades.loc["e_syntax_and_memory.ipynb", "get_weighted_loss_messages"]
    assert got.loc["f_exits.ipynb"].tolist() == [0, 1, 1]
    assert got.loc["g_raises.ipynb"].tolist() == [1, 0, 1]
    assert grades["total"].tolist() == [3, 0, 0, 2, 1, 2, 2]
    assert grades.loc["a_good.ipynb", "check_for_leakage_public"] == "7/7"
    assert "Expected:" in grades.loc["b_untouched.ipynb", "compute_class_freqs_messages"]
    # Feedback per student: expected against got, hints, and the error's type and line.
    feedback = (tmp_path / "feedback" / "g_raises.md").read_text()
    assert "NameError: name 'undefined' is not defined (line 4: return labels / undefined)" in feedback
    assert "Score: **2 / 3**" in feedback and "Hint:" in feedback
    untouched = (tmp_path / "feedback" / "b_untouched.md").read_text()
    assert "- Expected: `" in untouched and "- Got: `" in untouched


def test_students_cannot_give_themselves_the_marks(subs, releases, tmp_path):
    """Wrong answers stay wrong whatever else the cell does: patch the tests or the comparison,
    write a verdict to any descriptor, exit early, kill what it can."""
    _, solved = releases
    patch = ("import sys\nfor name in ('public_tests', 'test_utils', 'exercises'):\n"
             "    try:\n        module = __import__(name)\n    except ImportError:\n        continue\n"
             "    for attr in ('compare', 'values_equal', '_equal', 'check_for_leakage_test', 'run_cases'):\n"
             "        setattr(module, attr, lambda *a, **k: True)\n")
    forge = ("import os, json\nline = b'@@grade@@' + json.dumps({'score': 1, 'messages': []}).encode() + b'\\n'\n"
             "fake = json.dumps({'id': 0, 'results': {}}).encode() + b'\\n'\n"
             "for fd in range(0, 64):\n    try:\n        os.write(fd, line + fake)\n    except OSError:\n"
             "        pass\n")
    kill = ("import signal\nfor target in (os.getppid(), 1, -1):\n    try:\n        os.kill(target, signal.SIGKILL)\n"
            "    except OSError:\n        pass\n")
    submit(subs, "a_patches.ipynb", solved, {"UNQ_C1": patch + WRONG_LEAKAGE, "UNQ_C2": patch + WRONG_FREQS,
                                             "UNQ_C3": patch + WRONG_LOSS})
    submit(subs, "b_forges.ipynb", solved, {"UNQ_C1": WRONG_LEAKAGE + forge + "os._exit(0)\n",
                                            "UNQ_C2": WRONG_FREQS + forge,
                                            "UNQ_C3": WRONG_LOSS + forge + kill})
    submit(subs, "c_good.ipynb", solved)
    table = grade(str(subs), str(tmp_path / "grades.csv"), jobs=1, timeout=10, progress=False)
    got = scores(table)
    assert got.loc["a_patches.ipynb"].tolist() == [0, 0, 0]
    assert got.loc["b_forges.ipynb"].tolist() == [0, 0, 0]
    assert got.loc["c_good.ipynb"].tolist() == [1, 1, 1]  # graded after them, by the same worker


def test_the_sandbox_hides_the_host_and_other_students(subs, releases, tmp_path):
    """Each function answers right only if it can reach what the sandbox must hide: another
    submission, the grades file, the hidden cases, the reference answers, a folder outside its
    scratch, the network, the grader's command line. Every score must be 0; the student it
    attacks keeps 3/3."""
    _, solved = releases
    victim = submit(subs, "z_victim.ipynb", solved)
    hidden = tmp_path / "hidden.json"
    hidden.write_text(json.dumps({"UNQ_C1": [{"name": "h", "inputs": {"first": [1], "second": [2]}, "hint": ""}]}))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    reach = (f"import os, socket, glob\n"
             f"def reachable():\n"
             f"    found = []\n"
             f"    for path in ({str(victim)!r}, {str(hidden)!r}, {str(tmp_path / 'grades.csv')!r}, {ROOT!r}):\n"
             f"        found.append(os.path.exists(path))\n"
             f"    try:\n        open({str(victim)!r}, 'a').close()\n        found.append(True)\n"
             f"    except OSError:\n        pass\n"
             f"    for path in ({str(tmp_path / 'planted')!r}, '/usr/planted', '/planted'):\n"
             f"        try:\n            open(path, 'w').write('x')\n            found.append(True)\n"
             f"        except OSError:\n            pass\n"
             f"    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=2)\n        found.append(True)\n"
             f"    except OSError:\n        pass\n"
             f"    found += [os.path.exists(p) for p in glob.glob('/grader/*') if 'exercise_calls' not in p "
             f"and 'sandbox' not in p]\n"
             f"    try:\n        import exercises\n        found.append(hasattr(exercises, 'reference'))\n"
             f"    except ImportError:\n        pass\n"
             f"    for cmdline in glob.glob('/proc/*/cmdline'):\n"
             f"        try:\n            found.append('subs' in open(cmdline).read())\n        except OSError:\n"
             f"            pass\n"
             f"    return any(found)\n")
    submit(subs, "a_snoops.ipynb", solved, {
        "UNQ_C1": reach + "def check_for_leakage(df1, df2, patient_col):\n"
                          "    shared = bool(set(df1[patient_col]) & set(df2[patient_col]))\n"
                          "    return shared if reachable() else not shared\n",
        "UNQ_C2": reach + "def compute_class_freqs(labels):\n    p = labels.mean(axis=0)\n"
                          "    return (p, 1 - p) if reachable() else (1 - p, p)\n"})
    table = grade(str(subs), str(tmp_path / "grades.csv"), hidden=str(hidden), jobs=2, timeout=10, progress=False)
    got = scores(table)
    assert got.loc["a_snoops.ipynb"].tolist()[:2] == [0, 0]
    assert got.loc["z_victim.ipynb"].tolist() == [1, 1, 1]
    assert nbformat.read(str(victim), as_version=4).cells  # untouched
    assert not (tmp_path / "planted").exists()
    # The control: without the sandbox the same functions reach all that, and score.
    table = grade(str(subs), str(tmp_path / "grades.csv"), jobs=1, timeout=10, sandbox=False, progress=False)
    assert scores(table).loc["a_snoops.ipynb"].tolist()[:2] == [1, 1]
    server.close()


def test_hidden_cases_count_apart_and_stay_hidden(subs, releases, tmp_path):
    _, solved = releases
    memorised = ("def check_for_leakage(df1, df2, patient_col):\n"
                 "    first = list(df1[patient_col])\n"
                 "    return first in ([0, 1, 2], [], ['a7', 'b2'], list(range(100)), [1]) and "
                 "list(df2[patient_col]) != [3, 4, 5]\n")
    submit(subs, "a_memorised.ipynb", solved, {"UNQ_C1": memorised})
    submit(subs, "b_good.ipynb", solved)
    hidden = tmp_path / "hidden.json"
    hidden.write_text(json.dumps({
        "UNQ_C1": [{"name": "secret overlap SECRET-1", "inputs": {"first": [7, 8], "second": [8, 9]}, "hint": "x"},
                   {"name": "secret disjoint SECRET-2", "inputs": {"first": [0, 1, 2], "second": [9]}, "hint": "x"}],
        "UNQ_C2": [{"name": "secret freqs", "inputs": {"labels": [[1, 1], [0, 1], [0, 1]]}}]}))
    table = grade(str(subs), str(tmp_path / "grades.csv"), hidden=str(hidden), jobs=1, progress=False)
    table = table.set_index("submission")
    assert table.loc["a_memorised.ipynb", "check_for_leakage_public"] == "7/7"
    assert table.loc["a_memorised.ipynb", "check_for_leakage_hidden"] == "0/2"
    assert table.loc["a_memorised.ipynb", "check_for_leakage_score"] == 0
    assert table.loc["b_good.ipynb", "check_for_leakage_hidden"] == "2/2"
    assert table.loc["b_good.ipynb", "compute_class_freqs_hidden"] == "1/1"
    assert table.loc["b_good.ipynb", "total"] == 3
    feedback = (tmp_path / "feedback" / "a_memorised.md").read_text()
    assert "hidden cases: 0 of 2 passed" in feedback and "SECRET" not in feedback and "[7, 8]" not in feedback
    assert "SECRET" not in table.loc["a_memorised.ipynb", "check_for_leakage_messages"]


@pytest.mark.parametrize("content, message", [
    (json.dumps({"UNQ_C9": []}), r"hidden.json: unknown exercise 'UNQ_C9'"),
    (json.dumps({"UNQ_C2": [{"name": "x", "inputs": {"label": [[1]]}}]}), r"UNQ_C2 case 0 \(x\): its inputs do not fit"),
    (json.dumps({"UNQ_C1": [{"name": "x", "inputs": {"first": [1], "second": [1]}, "expected": True}]}),
     r"UNQ_C1 case 0 \(x\): 'expected' is not a result"),
    (json.dumps({"UNQ_C2": [{"name": "x", "inputs": {"labels": [[1, 0]]},
                             "expected": {"type": "bool", "value": True}}]}),
     r"UNQ_C2 case 0 \(x\): 'expected' is not of the answer's form"),
    (json.dumps({"UNQ_C1": [{"name": "x", "inputs": {"first": "abc", "second": [1]}}]}),
     r"UNQ_C1 case 0 \(x\): its inputs do not fit the exercise: 'first' must be a list"),
    (json.dumps({"UNQ_C3": [{"name": "x", "inputs": {"y": [[1, 0]], "pred": [[0.5]], "pos": [1, 1], "neg": [1, 1],
                                                     "epsilon": 1}}]}), r"'pred' must have the shape of 'y'"),
    (json.dumps({"UNQ_C1": [{"name": "x", "inputs": {"first": [1], "second": [1]}, "hnit": ""}]}),
     r"UNQ_C1 case 0: unknown fields \['hnit'\]"),
    (json.dumps({"UNQ_C1": ["x"]}), r"UNQ_C1 case 0: expected an object"),
    ("[" * 100000 + "]" * 100000, r"nested too deeply"),
    (b"\xff{}", r"not UTF-8"),
], ids=["exercise", "inputs", "expected-true", "expected-form", "ids-type", "shapes", "field", "case-type", "deep",
        "utf8"])
def test_a_malformed_hidden_file_is_named_before_grading(subs, tmp_path, content, message):
    (subs / "a.ipynb").write_text("{}")
    bad = tmp_path / "hidden.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message):
        grade(str(subs), str(tmp_path / "g.csv"), hidden=str(bad), progress=False)
    assert not (tmp_path / "g.csv").exists()


def test_a_dead_worker_is_replaced_and_the_run_goes_on(subs, releases, tmp_path, monkeypatch):
    from chestxray import workers as grading

    _, solved = releases
    submit(subs, "a_first.ipynb", solved)
    submit(subs, "b_second.ipynb", solved)
    phase, killed = grading.Worker.phase, []

    def dies_once(worker, *args, **kwargs):
        if not killed:  # the worker dies before its first phase
            killed.append(worker.process.pid)
            worker.process.kill()
            worker.process.wait()
        return phase(worker, *args, **kwargs)

    monkeypatch.setattr(grading.Worker, "phase", dies_once)
    table = grade(str(subs), str(tmp_path / "g.csv"), jobs=1, timeout=10, progress=False).set_index("submission")
    assert killed and table.loc["a_first.ipynb", SCORES].tolist() == [0, 1, 1]
    assert "the sandbox worker failed" in table.loc["a_first.ipynb", "check_for_leakage_messages"]
    assert table.loc["b_second.ipynb", SCORES].tolist() == [1, 1, 1]


def test_without_a_sandbox_the_grader_refuses_unless_told(subs, releases, tmp_path):
    _, solved = releases
    submit(subs, "a_good.ipynb", solved)
    env = {**os.environ, "PATH": "/nonexistent"}
    command = [sys.executable, "-m", "chestxray", "grade", str(subs), "--out", str(tmp_path / "g.csv")]
    refused = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "error: bubblewrap (bwrap) is not installed" in refused.stderr
    assert not (tmp_path / "g.csv").exists()
    unconfined = subprocess.run(command + ["--no-sandbox"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=300)
    assert unconfined.returncode == 0, unconfined.stderr[-2000:]
    assert pd.read_csv(tmp_path / "g.csv")["total"].tolist() == [3]


def test_cases_live_in_one_place():
    """The public tests and the grader read the same cases; the release never holds hidden ones."""
    import public_tests
    import test_utils

    assert "exercises" in test_utils.run_cases.__globals__
    assert public_tests.run_cases is test_utils.run_cases
    for key, cases in exercises.PUBLIC.items():
        assert all(exercises.compare(key, c["expected"], c["expected"]) for c in exercises.with_answers(key, cases))


def test_each_grading_run_draws_user_ids_of_its_own():
    """Two runs on one machine get disjoint id ranges (a user id's process limit is machine-wide)."""
    from chestxray.workers import IDS_PER_WORKER, UID_SPACE, uid_base

    for jobs in (1, 2, 16, 64):
        span = IDS_PER_WORKER * jobs
        bases = {uid_base(jobs) for _ in range(50)}
        assert len(bases) > 40  # drawn, not fixed
        for base in bases:
            assert UID_SPACE[0] <= base and base + span <= UID_SPACE[1] < 2**31
            assert (base - UID_SPACE[0]) % span == 0  # aligned: two draws share every id or none
