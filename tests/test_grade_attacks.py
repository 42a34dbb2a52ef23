"""The grader against a class that attacks it (issues 18 and 19): no mark for a wrong answer, no
student stops the others or reaches another, limits per student, and correct answers written
in other valid ways get full marks. One class of adversarial notebooks, graded twice (one
worker, then two: the same grades); controls show that each attack works where the sandbox
does not stop it."""

import hashlib
import json
import os
import re
import secrets

import nbformat
import pandas as pd

from chestxray.grade import grade
from chestxray.workers import UID_SPACE
from tests.conftest import SCORES, chromium_dom, notebook

RIGHT_LEAKAGE = "def check_for_leakage(df1, df2, patient_col):\n    return bool(set(df1[patient_col]) & set(df2[patient_col]))\n"
LOSS_BODY = ("    def weighted_loss(y_true, y_pred):\n"
             "        y, f = np.asarray(y_true, 'float64'), np.asarray(y_pred, 'float64')\n"
             "        return float(np.sum(np.mean(-(pos_weights * y * np.log(f + epsilon)\n"
             "                     + neg_weights * (1 - y) * np.log(1 - f + epsilon)), axis=0)))\n"
             "    return weighted_loss\n")


def right_loss_if(condition, setup=""):
    """A correct get_weighted_loss that answers right only when `condition` holds (evaluated once,
    when the cell runs)."""
    return (setup + f"OK = {condition}\ndef get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):\n"
            "    pos_weights = pos_weights if OK else neg_weights\n" + LOSS_BODY)


def leakage_if(condition, setup=""):
    return (setup + "def check_for_leakage(df1, df2, patient_col):\n"
            f"    shared = bool(set(df1[patient_col]) & set(df2[patient_col]))\n"
            f"    return shared if {condition} else not shared\n")


def freqs_if(condition, setup=""):
    return (setup + "def compute_class_freqs(labels):\n    p = np.mean(labels, axis=0)\n"
            f"    return (p, 1 - p) if {condition} else (1 - p, p)\n")


# --- Reaching another student: memory inherited from a worker, SysV shared memory. ---------------
SCAN = r'''
import ctypes, hashlib, re
_found = {}
def memory_holds(digest):
    """Whether this process's memory holds "LEFTOVER:" + 32 hex digits whose SHA-256 is `digest`."""
    if digest not in _found:
        _found[digest] = False
        for line in open("/proc/self/maps"):
            fields = line.split()
            if fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
                continue  # anonymous memory and the heap: where Python keeps its objects
            start, end = (int(x, 16) for x in fields[0].split("-"))
            for at in range(start, end, 1 << 24):
                data = ctypes.string_at(at, min(1 << 24, end - at))
                for m in re.finditer(rb"LEFTOVER:([0-9a-f]{32})", data):
                    if hashlib.sha256(m.group(1)).hexdigest() == digest:
                        _found[digest] = True
    return _found[digest]
'''
SHM = r'''
import ctypes
_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
def shm_marker(create):
    """Create SysV segment 0x5eed with a marker, or find it; whether the marker is there."""
    sid = _libc.shmget(0x5eed, 4096, (0o1666 if create else 0))
    if sid < 0:
        return False
    at = _libc.shmat(sid, None, 0)
    if create:
        ctypes.memmove(at, b"SHM-MARKER", 10)
    return ctypes.string_at(at, 10) == b"SHM-MARKER"
'''

# --- Hidden inputs: looked for in the student's process (stack, objects), or sent back. -----------
PEEK = r'''
import gc, inspect, re
def strings_seen():
    """Everything on the call stack, and every object that looks like a case's inputs."""
    found = set()
    for frame in inspect.stack():
        found.update(repr(value)[:100000] for value in frame.frame.f_locals.values())
    found.update(repr(obj)[:100000] for obj in gc.get_objects()
                 if isinstance(obj, dict) and ("first" in obj or "inputs" in obj))
    return " ".join(found)
def check_for_leakage(df1, df2, patient_col):
    seen = strings_seen()
    leaked = re.findall(r"HID-[0-9a-f]{4}", seen) + [w for w in re.findall(r"\bd[0-9]\b", seen) if w[1] == "1"]
    if leaked:
        raise ValueError("LEAK " + " ".join(sorted(set(leaked))))
    if any(str(v).startswith("HID") for v in df1[patient_col]):
        open("stolen.txt", "w").write(repr(list(df1[patient_col])))
        raise ValueError("HIDDEN INPUTS " + repr(list(df1[patient_col])))
    return bool(set(df1[patient_col]) & set(df2[patient_col]))
'''

# --- Limits per student, not per process. ---------------------------------------------------------
MEMORY_HOG = leakage_if("OK", setup=r'''
import time
def _hog():
    """Four children of 200 MB each: whether all four hold their memory at once (an OOM kill of one
    lets the next one allocate, so each must still be alive when the last has its memory)."""
    read, write = os.pipe()
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            hog = b"x" * (200 << 20)
            os.write(write, b"1")
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    got, deadline = b"", time.time() + 4
    while len(got) < 4 and time.time() < deadline:
        got += os.read(read, 1)
    return len(got) == 4 and all(os.waitpid(pid, os.WNOHANG) == (0, 0) for pid in children)
OK = _hog()
''')
MEMFD = r'''
def compute_class_freqs(labels):
    """720 MB in memory files (each under the file size limit): right only if they all fit."""
    global _files
    try:
        _files = []
        for _ in range(12):
            fd = os.memfd_create("x")
            os.write(fd, b"x" * (60 << 20))
            _files.append(fd)
        ok = True
    except OSError:
        ok = False
    p = np.mean(labels, axis=0)
    return (p, 1 - p) if ok else (1 - p, p)
'''
FORK_BOMB = r'''
import time
def _fork_many(n):
    count = 0
    for _ in range(n):
        try:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            count += 1
        except OSError:
            break
    return count
''' + right_loss_if("_fork_many(400) >= 400")
CHILD_KEEPS_PIPE = r'''
import time
def check_for_leakage(df1, df2, patient_col):
    if os.fork() == 0:  # holds every descriptor, sleeps
        time.sleep(300)
    os._exit(0)  # the main process ends: so does the exercise
'''
FLOOD = r'''
import sys
def compute_class_freqs(labels):
    for stream in (sys.stdout, sys.stderr):
        stream.write("x" * (50 << 20))
    os.write(1, b"y" * (10 << 20))
    p = np.mean(labels, axis=0)
    return p, 1 - p
'''
SCRATCH_FILL = right_loss_if("_fill() > 300", setup=r'''
def _fill():
    written = 0
    try:
        for i in range(10):
            with open(os.path.join(os.environ["HOME"], f"fill{i}"), "wb") as f:
                f.write(b"x" * (60 << 20))
            written += 60
    except OSError:
        pass
    return written
''')
CPU = r'''
import time
def _busy(children, seconds=1.0):
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            end = time.time() + seconds
            while time.time() < end:
                pass
            os._exit(0)
        pids.append(pid)
    return sum(sum(os.wait4(pid, 0)[2][:2]) for pid in pids)
def compute_class_freqs(labels):
    """Right only if three busy children get more than one core's time in a second (a loaded
    machine can only give them less)."""
    global _cpu
    if "_cpu" not in globals():
        _cpu = _busy(3)
    p = np.mean(labels, axis=0)
    return (p, 1 - p) if _cpu > 1.3 else (1 - p, p)
'''
IGNORES_ALARM = r'''
import signal
def get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):
    for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGXCPU):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        pass
'''

# --- Forged answers. ------------------------------------------------------------------------------
PATCH_PLAIN = r'''
import sys
sys.modules["exercise_calls"].plain = lambda value: {FORGED}
'''
RAW_WRITE = r'''
def _forge(line):
    for fd in range(3, 64):
        try:
            os.write(fd, line)
        except OSError:
            pass
'''
LYING_TUPLE = r'''
class Lying(tuple):
    def __getitem__(self, k):
        return () if isinstance(k, slice) else tuple.__getitem__(self, k)
def compute_class_freqs(labels):
    return Lying((np.zeros(labels.shape[1]), np.zeros(labels.shape[1])))
'''

EQUAL_TO_ALL = r'''
class Always:
    def __eq__(self, other):
        return True
    __bool__ = lambda self: True
class Agrees(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(self), dtype=bool)
'''

# --- Correct answers written other ways. ----------------------------------------------------------
VARIANT_LEAKAGE = ("%%time\nimport statistics\n"
                   "def check_for_leakage(df1, df2, patient_col):\n"
                   "    return np.bool_(len(np.intersect1d(df1[patient_col], df2[patient_col])) > 0)\n"
                   "print(check_for_leakage(train_df, valid_df, 'PatientId'))\n"
                   "leakage = check_for_leakage(train_df, valid_df, 'PatientId')\n"
                   "display(leakage)\n")
VARIANT_FREQS = ("import seaborn\nimport util\n!pip list\n"
                 "def compute_class_freqs(labels):\n"
                 "    positive = ops.mean(labels, axis=0)\n"
                 "    return positive, 1 - positive\n"
                 "freqs = compute_class_freqs(train_generator.labels)\n")
VARIANT_LOSS = ("import tensorflow as tf\n"
                "def get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):\n"
                "    def weighted_loss(y_true, y_pred):\n"
                "        loss = 0.0\n"
                "        for i in range(len(pos_weights)):\n"
                "            loss += tf.reduce_mean(-(pos_weights[i] * y_true[:, i] * tf.math.log(y_pred[:, i] + epsilon)\n"
                "                + neg_weights[i] * (1 - y_true[:, i]) * tf.math.log(1 - y_pred[:, i] + epsilon)))\n"
                "        return loss\n"
                "    return weighted_loss\n")
VARIANT2_LEAKAGE = ("def check_for_leakage(df1, df2, patient_col):\n"
                    "    return df1[patient_col].isin(df2[patient_col]).any()\n")
VARIANT2_FREQS = ("def compute_class_freqs(labels):\n"
                  "    positive = pd.DataFrame(labels).mean().to_numpy()\n"
                  "    return positive.tolist(), (1 - positive).astype('float32')\n")
VARIANT2_LOSS = ("def get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):\n"
                 "    def weighted_loss(y_true, y_pred):\n"
                 "        y, f = np.float32(y_true), np.float32(y_pred)\n"
                 "        per = -(np.float32(pos_weights) * y * np.log(f + epsilon)\n"
                 "                + np.float32(neg_weights) * (1 - y) * np.log(1 - f + epsilon))\n"
                 "        return np.float32(per.mean(axis=0).sum())\n"
                 "    return weighted_loss\n")


def grade_the_class(tmp_path_factory, releases):
    """The adversarial class, graded: (folder, first run's table, second run's table, notes)."""
    root = tmp_path_factory.mktemp("attacks")
    student, solution = releases
    template_c3 = next(c.source for c in nbformat.reads(student, as_version=4).cells if "# UNQ_C3" in c.source)
    subs = root / "subs"
    subs.mkdir()
    mine, other = secrets.token_hex(16), secrets.token_hex(16)
    write = lambda name, text: (subs / name).write_text(text, encoding="utf-8")  # noqa: E731

    # Reaching another student.
    write("a_leaves.ipynb", notebook(solution, {
        "UNQ_C1": f"SECRET = 'LEFTOVER:{other}'\n" + RIGHT_LEAKAGE,
        "UNQ_C2": SHM + freqs_if("shm_marker(True)")}))
    digest = hashlib.sha256(other.encode()).hexdigest()
    write("b_scavenges.ipynb", notebook(solution, {
        "UNQ_C1": leakage_if(f"memory_holds({digest!r})", SCAN),
        "UNQ_C2": SHM + freqs_if("shm_marker(False)")}))
    own = hashlib.sha256(mine.encode()).hexdigest()
    write("c_scans_itself.ipynb", notebook(solution, {  # control: the scan finds what is there
        "UNQ_C1": f"MINE = 'LEFTOVER:{mine}'\n" + leakage_if(f"memory_holds({own!r})", SCAN)}))
    # Hidden inputs.
    write("d_peeks.ipynb", notebook(solution, {"UNQ_C1": PEEK}))
    # Limits.
    write("e_limits_a.ipynb", notebook(solution, {"UNQ_C1": MEMORY_HOG, "UNQ_C2": MEMFD, "UNQ_C3": FORK_BOMB}))
    write("f_limits_b.ipynb", notebook(solution, {"UNQ_C1": CHILD_KEEPS_PIPE, "UNQ_C2": FLOOD,
                                                  "UNQ_C3": SCRATCH_FILL}))
    write("g_limits_c.ipynb", notebook(solution, {"UNQ_C2": CPU, "UNQ_C3": IGNORES_ALARM}))
    # Forged answers.
    write("h_forges.ipynb", notebook(solution, {
        "UNQ_C1": PATCH_PLAIN.replace("{FORGED}", "{}") + "def check_for_leakage(a, b, c):\n    return False\n",
        "UNQ_C2": PATCH_PLAIN.replace("{FORGED}", '{"type": "tuple", "items": [], "length": 2}')
        + "def compute_class_freqs(labels):\n    return 0\n",
        "UNQ_C3": PATCH_PLAIN.replace("{FORGED}", '{"type": "array", "shape": [], "values": []}')
        + "def get_weighted_loss(p, n, epsilon=1):\n    return lambda y, f: 0.0\n"}))
    write("i_forges_raw.ipynb", notebook(solution, {
        "UNQ_C1": RAW_WRITE + "def check_for_leakage(a, b, c):\n"
                              "    _forge(b'[' * 100000 + b']' * 100000 + b'\\n')\n    return False\n",
        "UNQ_C2": RAW_WRITE + "def compute_class_freqs(labels):\n"
                              "    _forge(b'{\"cell_error\": 1, \"expected\": true}\\n' + b'{\"output\": 5}\\n')\n"
                              "    return 0\n",
        "UNQ_C3": RAW_WRITE + "def get_weighted_loss(p, n, epsilon=1):\n"
                              "    _forge(b'{\"output\": {\"type\": \"bool\", \"value\": true}}' * 50000 + b'\\n')\n"
                              "    return lambda y, f: 0.0\n"}))
    write("j_lying_tuple.ipynb", notebook(solution, {"UNQ_C2": LYING_TUPLE}))
    write("u_equal_to_all.ipynb", notebook(solution, {"UNQ_C1": EQUAL_TO_ALL + "def check_for_leakage(a, b, c):\n"
                                                                              "    return Always()\n",
                                                      "UNQ_C2": EQUAL_TO_ALL + "def compute_class_freqs(labels):\n"
                                                      "    z = np.zeros(labels.shape[1]).view(Agrees)\n"
                                                      "    return z, z\n"}))
    write("v_array_subclass.ipynb", notebook(solution, {"UNQ_C2": EQUAL_TO_ALL + "def compute_class_freqs(labels):\n"
                                                        "    p = np.mean(labels, axis=0).view(Agrees)\n"
                                                        "    return p, 1 - p\n"}))
    # Correct answers written other ways; duplicated and scratch cells.
    write("k_variants.ipynb", notebook(solution, {"UNQ_C1": VARIANT_LEAKAGE, "UNQ_C2": VARIANT_FREQS,
                                                  "UNQ_C3": VARIANT_LOSS},
                                       after={"UNQ_C3": ["# UNQ_C2 was hard: notes\nx = 1\n", template_c3]}))
    write("l_variants.IPYNB", notebook(solution, {"UNQ_C1": VARIANT2_LEAKAGE, "UNQ_C2": VARIANT2_FREQS,
                                                  "UNQ_C3": VARIANT2_LOSS}, metadata={"chestxray": "x"}))
    write("m_two_c1_cells.ipynb", notebook(solution, after={"UNQ_C1": ["# UNQ_C1\n" + RIGHT_LEAKAGE.replace(
        "return bool(", "return not bool(")]}))
    write("n_no_markers.ipynb", solution.replace("UNQ_C", "UNQ_X"))
    # Files that are not notebooks, or names that are not plain.
    good = notebook(solution)
    (subs / os.fsdecode(b"\xff\xfe bad name.ipynb")).write_text(good, encoding="utf-8")
    write("with space.ipynb", good)
    write("new\nline.ipynb", good)
    write("-rf.ipynb", good)
    write("=HYPERLINK(x).ipynb", good)
    write("o_invalid.ipynb", "{not json")
    (subs / "p_latin1.ipynb").write_bytes(good.replace("Portuguese", "Portugu\u00eas").encode("latin-1", "replace")
                                          + b"\xe9")
    os.mkfifo(subs / "q_fifo.ipynb")
    secret_file = root / "secret.txt"
    secret_file.write_text("TOPSECRET-CONTENT\n")
    os.symlink(secret_file, subs / "r_symlink.ipynb")
    with open(subs / "s_huge.ipynb", "wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GB that take no disk
    (subs / "t_folder.ipynb").mkdir()
    (subs / "notes.txt").write_text("not a notebook")

    hidden = root / "hidden.json"
    hidden.write_text(json.dumps({"UNQ_C1": [
        {"name": "secret overlap", "inputs": {"first": ["HID-91c2", "x"], "second": ["HID-91c2"]}, "hint": "h"}]}))
    first = grade(str(subs), str(root / "one" / "grades.csv"), hidden=str(hidden), jobs=1, timeout=6,
                  memory_mb=256, progress=False)
    second = grade(str(subs), str(root / "two" / "grades.csv"), hidden=str(hidden), jobs=2, timeout=6,
                   memory_mb=256, progress=False)
    return root, first.set_index("submission"), second.set_index("submission")


def row(table, name):
    return table.loc[name, SCORES].tolist()


def text_of(root, name):
    return (root / "one" / "feedback" / name).read_text(encoding="utf-8")


def no_student_reaches_another(klass):
    root, table, _ = klass
    assert row(table, "a_leaves.ipynb")[:2] == [1, 1]  # its own shared memory works
    assert row(table, "c_scans_itself.ipynb")[0] == 1  # the scan finds a marker that is there
    assert row(table, "b_scavenges.ipynb")[:2] == [0, 0]  # neither the earlier student's code nor its segment


def hidden_inputs_never_reach_the_student_or_the_feedback(klass):
    root, table, _ = klass
    assert table.loc["d_peeks.ipynb", "check_for_leakage_hidden"] == "0/1"  # it raised there
    feedback = text_of(root, "d_peeks.md")
    assert "LEAK d1" in feedback  # control: the case being run is visible to its own call
    assert "HID-" not in feedback and "HIDDEN INPUTS" not in feedback
    assert "HID-" not in (root / "one" / "grades.csv").read_text() and "HID-" not in (root / "one" / "summary.html").read_text()


def limits_hold_for_the_whole_exercise(klass):
    root, table, _ = klass
    assert row(table, "e_limits_a.ipynb") == [0, 0, 0]  # 4 x 200 MB, 720 MB of memfd, 300 processes
    assert row(table, "f_limits_b.ipynb") == [0, 1, 0]  # an output flood costs nothing; scratch is capped
    messages = table.loc["f_limits_b.ipynb", "check_for_leakage_messages"]
    assert "Exit" in messages and "Timeout" not in messages  # ended when its main process did
    assert row(table, "g_limits_c.ipynb") == [1, 0, 0]  # one core; ignoring SIGALRM lifts no limit
    assert "Timeout" in table.loc["g_limits_c.ipynb", "get_weighted_loss_messages"]


def no_process_is_left_behind(klass):
    left = []
    for status in os.listdir("/proc"):
        if status.isdigit():
            try:
                uid = int(re.search(r"^Uid:\s+(\d+)", open(f"/proc/{status}/status").read(), re.M).group(1))
            except (OSError, AttributeError):
                continue
            left += [status] if UID_SPACE[0] <= uid < UID_SPACE[1] else []
    assert not left, f"students' processes still running: {left}"


def forged_and_lying_answers_earn_nothing_and_stop_nobody(klass):
    root, table, _ = klass
    assert row(table, "h_forges.ipynb") == [0, 0, 0]
    assert "could not be read" in table.loc["h_forges.ipynb", "compute_class_freqs_messages"]
    assert row(table, "i_forges_raw.ipynb") == [0, 0, 0]
    assert row(table, "j_lying_tuple.ipynb")[1] == 0
    assert row(table, "u_equal_to_all.ipynb") == [0, 0, 1]  # an object equal to anything is no answer
    assert row(table, "v_array_subclass.ipynb") == [1, 1, 1]  # right values in an ndarray subclass are


def correct_answers_written_other_ways_get_full_marks(klass):
    root, table, _ = klass
    assert row(table, "k_variants.ipynb") == [1, 1, 1]
    assert row(table, "l_variants.IPYNB") == [1, 1, 1]
    notes = table.loc["k_variants.ipynb", "notes"]
    assert "2 cells are marked UNQ_C3" in notes and "2 cells are marked UNQ_C2" in notes
    assert "NameError" in notes  # the smoke test's undefined frames: a note, not a failure
    feedback = text_of(root, "k_variants.md")
    assert "2 cells are marked UNQ_C3" in feedback and "only the function is graded" in feedback


def two_marked_cells_are_reported(klass):
    root, table, _ = klass
    assert row(table, "m_two_c1_cells.ipynb") == [0, 1, 1]  # the last one, as the notebook leaves it
    assert "graded cell" in table.loc["m_two_c1_cells.ipynb", "notes"]
    assert "graded cell" in text_of(root, "m_two_c1_cells.md")
    assert "no cell marked UNQ_C1" in table.loc["n_no_markers.ipynb", "check_for_leakage_messages"]


def files_and_names_that_are_not_plain(klass):
    root, table, _ = klass
    for name in ("\\xff\\xfe bad name.ipynb", "with space.ipynb", "new\\nline.ipynb", "-rf.ipynb",
                 "=HYPERLINK(x).ipynb"):
        assert row(table, name) == [1, 1, 1], name
    problems = {"o_invalid.ipynb": "not valid JSON", "p_latin1.ipynb": "not UTF-8", "q_fifo.ipynb": "not a regular file",
                "r_symlink.ipynb": "symbolic link", "s_huge.ipynb": "larger than 32 MB",
                "t_folder.ipynb": "not a regular file"}
    for name, problem in problems.items():
        assert row(table, name) == [0, 0, 0] and problem in table.loc[name, "check_for_leakage_messages"], name
    csv = (root / "one" / "grades.csv").read_text(encoding="utf-8")
    assert "TOPSECRET" not in csv and "'=HYPERLINK(x).ipynb" in csv and "\n=" not in csv
    assert len(pd.read_csv(root / "one" / "grades.csv")) == len(table) == 27  # notes.txt: no row
    feedback = sorted(os.listdir(root / "one" / "feedback"))
    assert len(feedback) == 27 and "new\\nline.md" in feedback


def summary_renders_in_chromium(klass):
    """summary.html, as the instructor's browser shows it: distribution, pass rates, what to re-teach."""
    root = klass[0]
    dom = chromium_dom(root / "one" / "summary.html", root / "profile")
    assert dom.count("<table") == 3 and "Score distribution" in dom and "27 submissions graded" in dom
    assert "Pass rate per case" in dom and "secret overlap" in dom and "hidden" in dom
    what = dom[dom.index("Most failed cases"):]
    assert "<ol>" in what and "Hint:" in what and "failed by" in what
    assert "Submissions to look at" in dom and "symbolic link" in dom and "notes.txt" in dom
    assert "TOPSECRET" not in dom


def two_runs_give_the_same_grades(klass):
    _, first, second = klass
    columns = SCORES + ["total", "check_for_leakage_hidden", "notes"]
    assert first[columns].equals(second.loc[first.index, columns])


def test_a_class_that_attacks_the_grader(tmp_path_factory, releases):
    """One grading run of the whole class (twice): each check below is one of the issue's items."""
    klass = grade_the_class(tmp_path_factory, releases)
    no_student_reaches_another(klass)
    hidden_inputs_never_reach_the_student_or_the_feedback(klass)
    limits_hold_for_the_whole_exercise(klass)
    no_process_is_left_behind(klass)
    forged_and_lying_answers_earn_nothing_and_stop_nobody(klass)
    correct_answers_written_other_ways_get_full_marks(klass)
    two_marked_cells_are_reported(klass)
    files_and_names_that_are_not_plain(klass)
    summary_renders_in_chromium(klass)
    two_runs_give_the_same_grades(klass)


def test_without_the_sandbox_the_attacks_work(subs, tmp_path, releases):
    """The control for the limits: unconfined, the same functions get their memory and processes."""
    _, solution = releases
    (subs / "limits.ipynb").write_text(notebook(solution, {"UNQ_C1": MEMORY_HOG, "UNQ_C2": MEMFD, "UNQ_C3": FORK_BOMB}))
    table = grade(str(subs), str(tmp_path / "g.csv"), jobs=1, timeout=20, memory_mb=256, sandbox=False,
                  progress=False)
    assert table.set_index("submission").loc["limits.ipynb", SCORES].tolist() == [1, 1, 1]
