"""The grader's worker inside the sandbox: runs students' graded cells on case inputs and
sends back what their functions returned, as plain data. It never sees a reference answer.

Started by `chestxray.grade` as `python -I sandbox.py UID_BASE` inside bubblewrap (no network,
nothing of the host but the Python installation, read-only; the submissions, the grades
file and the hidden answers are not there). It imports NumPy, pandas and Keras once, then
for each job (one submission, a JSON line on stdin) forks one process per exercise that

- takes a user id of its own (UID_BASE + a counter), unused by anyone else, and drops every
  privilege: it can write nothing but its own scratch folder (mode 0700), signal or trace
  no other student's process, and gains no privilege back (no_new_privs);
- caps its address space, processes, file sizes and CPU time;
- defines the student's function from the cell, calls it on each case's inputs with a
  time limit, and writes one JSON line per case to a pipe: the result as plain data
  (`exercise_calls.plain`), or the error's type, message and line.

This process reads those lines, keeps the first answer per case, kills everything that
user id still runs when the exercise ends (or at its time limit), removes the scratch
folder, and writes one JSON line per job to stdout, which only it holds: the student's
processes have /dev/null for stdout and stderr and no other descriptor of this one.
The grader compares the answers with the reference in its own process.
This file imports only the standard library and `exercise_calls` (beside it in the sandbox).
"""

import ctypes
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exercise_calls as exercises  # noqa: E402  (calling and plain data only: no case, no answer)

PRELUDE = "import numpy as np\nimport pandas as pd\n"
PRELUDE_KERAS = PRELUDE + "import keras\nfrom keras import ops\n"
PR_SET_NO_NEW_PRIVS = 38
MAX_ANSWER_BYTES = 1 << 20
# `grade --no-sandbox`: the same worker outside bubblewrap, without user ids of its own
# (no root needed): time limits and caps still hold, isolation does not.
UNCONFINED = os.environ.get("NO_SANDBOX") == "1"
SCRATCH = tempfile.mkdtemp(prefix="grade-") if UNCONFINED else "/work"


class Timeout(BaseException):
    """Not an Exception: a student's `except Exception` must not swallow the time limit."""


def _alarm(signum, frame):
    raise Timeout("time limit")


def _error(error, cell_name, cell):
    """Type, message and the student's line (in the cell) of an exception."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == cell_name]
    if isinstance(error, SyntaxError) and error.filename == cell_name and error.lineno:
        frames = [traceback.FrameSummary(cell_name, error.lineno, "")]
    lines = cell.splitlines()
    where = {}
    if frames and 0 < frames[-1].lineno <= len(lines):
        where = {"line": frames[-1].lineno, "code": lines[frames[-1].lineno - 1].strip()[:200]}
    return {"type": type(error).__name__, "message": str(error)[:500], **where}


def _drop_privileges(uid, scratch, memory_mb, cpu_seconds):
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if not UNCONFINED:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # from root to another user: every capability goes
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            os._exit(3)
    os.chdir(scratch)
    os.environ.update(HOME=scratch, TMPDIR=scratch)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()  # what the imports already use
    limits = {resource.RLIMIT_AS: mapped + memory_mb * 2**20, resource.RLIMIT_NPROC: 512,
              resource.RLIMIT_FSIZE: 64 * 2**20, resource.RLIMIT_CORE: 0, resource.RLIMIT_CPU: cpu_seconds}
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))


def _exercise(key, cell, cases, send, timeout):
    """In the student's process: define the function, answer each case on `send` (a file)."""
    def write(message):
        send.write(json.dumps(message) + "\n")
        send.flush()

    name = f"<{key} cell>"
    namespace = {}
    signal.signal(signal.SIGALRM, _alarm)
    try:
        exec(PRELUDE_KERAS if key == "UNQ_C3" else PRELUDE, namespace)
        signal.alarm(timeout)
        exec(compile(cell, name, "exec"), namespace)
        signal.alarm(0)
    except BaseException as error:  # SystemExit and the time limit included
        signal.alarm(0)
        write({"cell_error": _error(error, name, cell) if not isinstance(error, Timeout)
               else {"type": "Timeout", "message": f"the cell took more than {timeout} s"}})
        return
    function = namespace.get(exercises.FUNCTIONS[key])
    if not callable(function):
        write({"cell_error": {"type": "NameError",
                              "message": f"the {key} cell does not define {exercises.FUNCTIONS[key]}"}})
        return
    for i, inputs in enumerate(cases):
        try:
            signal.alarm(timeout)
            answer = {"case": i, "output": exercises.plain(exercises.call(key, function, inputs))}
            signal.alarm(0)
        except BaseException as error:
            signal.alarm(0)
            answer = {"case": i, "raised": _error(error, name, cell) if not isinstance(error, Timeout)
                      else {"type": "Timeout", "message": f"took more than {timeout} s"}}
        write(answer)
        if answer.get("raised", {}).get("type") == "Timeout":
            return  # a function that loops once loops again: the other cases count as not answered


def _kill_user(uid, session):
    """Every process of `uid`, wherever it went (a new session, a new process group)."""
    if UNCONFINED:  # no user id of its own: its session
        try:
            os.killpg(session, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)  # as that user: exactly its processes
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def run_exercise(key, cell, cases, uid, timeout, memory_mb):
    """Fork the student's process for one exercise; its answers, checked to be plain data."""
    scratch = os.path.join(SCRATCH, f"{uid}-{key}")
    os.mkdir(scratch, 0o700)
    if not UNCONFINED:
        os.chown(scratch, uid, uid)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            os.closerange(3, write)
            os.closerange(write + 1, 1 << 16)
            _drop_privileges(uid, scratch, memory_mb, cpu_seconds=timeout * (len(cases) + 1) + 5)
            with os.fdopen(write, "w") as send:
                _exercise(key, cell, cases, send, timeout)
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + timeout * (len(cases) + 1) + 5
    received, timed_out = b"", False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read], [], [], left)
        if not ready:
            continue
        chunk = os.read(read, 65536)
        if not chunk or len(received) > MAX_ANSWER_BYTES:
            break
        received += chunk
    os.close(read)
    _kill_user(uid, pid)
    os.waitpid(pid, 0)
    shutil.rmtree(scratch, ignore_errors=True)
    return _answers(received, len(cases), timed_out, timeout)


def _answers(received, n_cases, timed_out, timeout):
    """The first well-formed answer per case; what is missing says why."""
    result = {"cell_error": None, "cases": [None] * n_cases}
    for line in received.decode("utf-8", "replace").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if "cell_error" in message and result["cell_error"] is None:
            result["cell_error"] = message["cell_error"]
        i = message.get("case")
        if isinstance(i, int) and 0 <= i < n_cases and result["cases"][i] is None:
            if isinstance(message.get("output"), dict) or isinstance(message.get("raised"), dict):
                result["cases"][i] = {k: message[k] for k in ("output", "raised") if k in message}
    why = ("stopped: the exercise took more than its time limit" if timed_out
           else "no answer: the process ended or timed out before this case")
    result["cases"] = [case or {"raised": {"type": "Timeout" if timed_out else "Exit", "message": why}}
                       for case in result["cases"]]
    return result


def main():
    uid = int(sys.argv[1])
    import numpy  # noqa: F401  (once here, not in every student's process)
    import pandas  # noqa: F401
    import keras  # noqa: F401
    from keras import ops  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        results = {}
        for key, cell in job["cells"].items():
            uid = uid + 1
            results[key] = run_exercise(key, cell, job["cases"][key], uid, job["timeout"], job["memory_mb"])
        print(json.dumps({"id": job["id"], "results": results}), flush=True)


if __name__ == "__main__":
    main()
