"""The grader's worker inside the sandbox (README, "Grading"): runs a student's graded cell on
case inputs and hands back, untouched, what the student's process answered; it never sees a
reference answer. `workers.Worker` starts it as `python -I sandbox.py CONFIG` inside bubblewrap.
Three kinds of process, so that no student's code or case reaches another student's process:

- the *zygote* (this process) imports the libraries once, then only forks: it never reads a job;
- a *supervisor* per phase (one exercise of one submission, public or hidden cases) reads the
  cell, forks the student's process, relays one case and one answer at a time, enforces the time
  limit from outside it, and at the end kills every process of the phase's user id;
- the *student's process*, confined (`_confine`: namespaces, a scratch tmpfs, cgroups, a user id
  of its own, no privilege), defines the function and answers each case on a pipe.

Protocol: one JSON line each way (`workers.Worker.phase`); the grader checks what the student
sent in its own process (`exercises.read_student`). Imports only the standard library and
`exercise_calls` (beside it in the sandbox).
"""

import ast
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
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exercise_calls as exercises  # noqa: E402  (calling and plain data only: no case, no answer)

MAX_LINE = 1 << 20  # an answer longer than this is no answer to any case
END_OF_INPUT = 17  # a supervisor's exit status when the grader closed stdin: the zygote stops
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18
LIBC = ctypes.CDLL(None, use_errno=True)


# ----------------------------------------------------------------------------
# Lines over raw descriptors (no buffered reads: a fork must never inherit unread input).

def write_line(fd, message):
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def read_line(fd, seconds=None, pidfd=None):
    """One line from `fd` as text; None at end of input, or when the writer (`pidfd`) has exited
    and what it wrote is read; TimeoutError after `seconds`; ValueError past MAX_LINE bytes. A
    read never takes part of the next line: the peer sends it only after an answer."""
    deadline = None if seconds is None else time.monotonic() + seconds
    data = b""
    while not data.endswith(b"\n"):
        if deadline is not None:
            left = deadline - time.monotonic()
            ready = select.select([fd, pidfd], [], [], left)[0] if left > 0 else []
            if not ready:
                raise TimeoutError
            if fd not in ready:  # the writer exited, and what it wrote is read
                return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_LINE:
            raise ValueError(f"a line of more than {MAX_LINE} bytes")
    return data.decode("utf-8", "replace")


# ----------------------------------------------------------------------------
# The student's process.

def _error(error, cell_name, cell):
    """Type, message and the student's line (in the cell) of an exception."""
    return exercises.error_record(error, lambda filename: filename == cell_name, cell)


def define(key, cell, namespace):
    """Run the cell's top level in `namespace` statement by statement; the student's function.
    A bare expression at the top level (a call left to try the function, `display(...)`) is not
    run, and an error in another top-level statement is a note: only the function is graded."""
    name = f"<{key} cell>"
    tree = compile(cell, name, "exec", ast.PyCF_ONLY_AST)  # a SyntaxError fails the cell
    notes = []
    for node in tree.body:
        if isinstance(node, ast.Expr):
            continue
        try:
            exec(compile(ast.Module([node], []), name, "exec"), namespace)
        except Exception as error:
            notes.append({"line": node.lineno, **_error(error, name, cell)})
    function = namespace.get(exercises.FUNCTIONS[key])
    if not callable(function):
        raise NameError(f"the {key} cell does not define {exercises.FUNCTIONS[key]}")
    return function, notes


def student(key, cell, namespace, inbox, outbox):
    """Define the function, then answer each case read from `inbox` on `outbox`."""
    name = f"<{key} cell>"
    try:
        function, notes = define(key, cell, namespace)
    except BaseException as error:
        write_line(outbox, {"cell_error": _error(error, name, cell)})
        return
    write_line(outbox, {"defined": True, "notes": notes[:10]})
    while True:
        line = read_line(inbox)
        if line is None:
            return
        inputs = json.loads(line)
        try:
            answer = {"output": exercises.plain(exercises.call(key, function, inputs))}
        except BaseException as error:
            answer = {"raised": _error(error, name, cell)}
        del inputs
        write_line(outbox, answer)


def _confine(uid, config, memory_mb, cpu_seconds):
    """In the student's process, as the sandbox's root, before any of the student's code: own IPC
    and mount namespaces, a scratch tmpfs of its own, the phase's cgroups, a user id of its own,
    no privilege, limits; stdin/stdout/stderr on /dev/null."""
    scratch = config["scratch"]
    if not config["unconfined"]:
        if LIBC.unshare(CLONE_NEWIPC | CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare (IPC and mount namespaces)")
        LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
        options = f"size={config['scratch_mb']}m,mode=0700,uid={uid},gid={uid}".encode()
        if LIBC.mount(b"tmpfs", scratch.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
            raise OSError(ctypes.get_errno(), f"mount tmpfs on {scratch}")
        for folder in config["cgroups"]:
            with open(os.path.join(folder, f"s{uid}", "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    if not config["unconfined"]:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # from root to another user: every capability goes
        if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            os._exit(3)
    os.chdir(scratch)
    os.environ.update(HOME=scratch, TMPDIR=scratch, MPLCONFIGDIR=scratch)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()  # what the imports already use
    limits = {resource.RLIMIT_AS: mapped + memory_mb * 2**20, resource.RLIMIT_FSIZE: 64 * 2**20,
              resource.RLIMIT_CORE: 0, resource.RLIMIT_CPU: cpu_seconds}
    if not config["unconfined"]:
        limits[resource.RLIMIT_NPROC] = config["max_processes"]  # per user id: this phase's
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))


# ----------------------------------------------------------------------------
# The supervisor of one phase.

class Phase:
    """Cgroups, the student's process, and the relay of its lines, for one phase."""

    def __init__(self, uid, config, header):
        self.uid, self.config, self.header = uid, config, header
        self.cgroups = [os.path.join(folder, f"s{uid}") for folder in config["cgroups"]]
        self.pid = self.pidfd = None
        self.stopped = None  # why the student's process can answer no more

    def start(self, namespace):
        memory_mb, timeout, n = self.header["memory_mb"], self.header["timeout"], self.header["n"]
        self._make_cgroups(memory_mb)
        if self.config["unconfined"]:
            self.config = {**self.config, "scratch": tempfile.mkdtemp(prefix="grade-")}
        to_student, self.inbox = os.pipe()
        self.outbox, from_student = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                keep = sorted((to_student, from_student))
                os.closerange(3, keep[0])
                os.closerange(keep[0] + 1, keep[1])
                os.closerange(keep[1] + 1, 1 << 16)
                _confine(self.uid, self.config, memory_mb, cpu_seconds=timeout * (n + 2) + 5)
                student(self.header["key"], self.header["cell"], namespace, to_student, from_student)
            finally:
                os._exit(0)
        os.close(to_student)
        os.close(from_student)
        self.pidfd = os.pidfd_open(self.pid)

    def _make_cgroups(self, memory_mb):
        limits = {"memory.limit_in_bytes": (memory_mb + 256) * 2**20,  # + what the libraries add when used
                  "memory.max": (memory_mb + 256) * 2**20, "pids.max": self.config["max_processes"],
                  "cpu.cfs_period_us": 100_000, "cpu.cfs_quota_us": 100_000, "cpu.max": "100000 100000"}
        for folder in self.cgroups:
            os.mkdir(folder)
            for name, value in limits.items():
                if os.path.exists(os.path.join(folder, name)):
                    with open(os.path.join(folder, name), "w") as f:
                        f.write(str(value))

    def answer(self, seconds):
        """The student's next line (as text), or None with `self.stopped` saying why."""
        if self.stopped:
            return None
        try:
            line = read_line(self.outbox, seconds, self.pidfd)
        except TimeoutError:
            self.stopped = "timeout"
            return None
        except ValueError:
            self.stopped = "too_large"
            return None
        if line is None:
            self.stopped = self._why_exited()
        return line

    def _why_exited(self):
        for folder in self.cgroups:
            for name in ("memory.oom_control", "memory.events"):
                try:
                    with open(os.path.join(folder, name)) as f:
                        if any(line.split()[0] == "oom_kill" and line.split()[1] != "0" for line in f):
                            return "memory"
                except OSError:
                    pass
        return "exited"

    def send(self, inputs_line):
        try:
            os.write(self.inbox, inputs_line.encode())
        except OSError:  # the student's process closed its end or is gone
            self.stopped = self.stopped or self._why_exited()

    def finish(self):
        """Kill every process of the phase, wherever it went; remove its cgroups and scratch."""
        for fd in (self.inbox, self.outbox, self.pidfd):
            if fd is not None:
                os.close(fd)
        if self.pid:
            _kill_user(self.uid, self.pid, self.config["unconfined"])
            os.waitpid(self.pid, 0)
        for folder in self.cgroups:
            _remove_cgroup(folder)
        if self.config["unconfined"]:
            shutil.rmtree(self.config["scratch"], ignore_errors=True)


def _kill_user(uid, pid, unconfined):
    """Every process of `uid` (a new session or process group does not escape it)."""
    if unconfined:  # no user id of its own: its session
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    killer = os.fork()
    if killer == 0:
        try:
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)  # as that user: exactly its processes
        finally:
            os._exit(0)
    os.waitpid(killer, 0)


def _remove_cgroup(folder, tries=200):
    for _ in range(tries):
        try:
            os.rmdir(folder)
            return
        except FileNotFoundError:
            return
        except OSError:  # processes still dying (200 x 10 ms); the grader removes what is left at the end
            time.sleep(0.01)


def supervise(uid, config, namespace):
    """One phase: header, then one case in and one answer out at a time, then {"end"}."""
    line = read_line(0)
    if line is None:
        return END_OF_INPUT
    header = json.loads(line)
    phase = Phase(uid, config, header)
    try:
        phase.start(namespace)
        del header["cell"], line
        timeout = header["timeout"]
        first = phase.answer(timeout)
        write_line(1, {"student": first} if first is not None else {"stopped": phase.stopped})
        for _ in range(header["n"]):  # every case, whatever happened: the grader and this stay in step
            inputs = read_line(0)
            if inputs is None:
                return END_OF_INPUT
            if not phase.stopped:
                phase.send(inputs)
            got = phase.answer(timeout)
            write_line(1, {"student": got} if got is not None else {"stopped": phase.stopped})
    finally:
        phase.finish()
    write_line(1, {"end": True})
    return 0


# ----------------------------------------------------------------------------
# The zygote.

def prelude():
    """What a graded cell sees, as after the notebook's import cell: np, pd, keras and ops (where
    an exercise needs Keras), plt, sns, os; `display` (does nothing here); `import util` works,
    its helpers are not for graded functions."""
    import numpy as np
    import pandas as pd

    keras = ops = None
    if any(exercise.needs_keras for exercise in exercises.CALLS.values()):
        import keras
        from keras import ops

    try:  # the notebook's plotting imports, where this environment has them (pip's chestxray does not need them)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import seaborn as sns
    except ImportError:
        plt = sns = None

    util = types.ModuleType("util", "The course's helpers: not available to graded functions.")

    def missing(name):
        raise AttributeError(f"util.{name}: the course's helpers are not available when grading; "
                             "a graded function needs none of them")

    util.__getattr__ = missing
    sys.modules["util"] = util
    names = {"__name__": "__main__", "os": os, "keras": keras, "plt": plt, "np": np, "pd": pd, "sns": sns,
             "ops": ops, "display": lambda *args, **kwargs: None}
    return {name: value for name, value in names.items() if value is not None}


def main():
    config = json.loads(sys.argv[1])
    namespace = prelude()
    write_line(1, {"ready": True, "executable": sys.executable, "prefix": sys.prefix, "pid": os.getpid()})
    uid = config["uid_base"]
    while True:
        uid += 1
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = supervise(uid, config, dict(namespace))
            except BaseException:
                traceback.print_exc()  # to the grader's log of this worker (stderr)
            finally:
                os._exit(code)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code == END_OF_INPUT:
            return
        if code:
            write_line(1, {"end": True, "error": f"the phase's supervisor failed (exit code {code})"})


if __name__ == "__main__":
    main()
