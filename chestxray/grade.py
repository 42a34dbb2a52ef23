"""The grader: every submission's graded cells run in a sandbox; the verdicts are made here.

`grade(submissions, out)` reads each notebook as data (`submissions`: nothing of it runs in
this process), sends each graded cell to a sandboxed worker (`sandbox.py` inside bubblewrap,
one per job slot, all cores) with the cases' inputs one at a time, checks every answer's
structure and compares it with the reference answer (`exercises`), which never enters the
sandbox. Public and hidden cases run in separate phases, each in a fresh process. It writes
`out` (one row per submission: per exercise the 0/1 score, public and hidden cases passed,
the public failures; notes; the total), one Markdown feedback file per submission and
`summary.html` for the instructor (`grade_summary`).

What the sandbox protects against, and what it does not: README, "Grading".
"""

import json
import os
import queue
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import exercises, submissions
from .grade_summary import error_text, note_text, write_summary
from .i18n import translator

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RELEASES = [os.path.join(REPO, name) for name in ("C1W1_Assignment.ipynb", "C1W1_Assignment.pt-BR.ipynb")]
# The students' user ids: a base drawn at random per grading run, + 100,000 x worker + a counter
# (one per phase), far above any account's id on the host. Two graders on one machine then
# almost never share an id: a user id's process limit counts across the whole machine.
UID_SPACE = (1_000_000, 2_000_000_000)
IDS_PER_WORKER = 100_000
MAX_PROCESSES = 256  # per phase: TensorFlow's threads count as processes
CONTROLLERS = ("memory", "pids", "cpu")


class SandboxUnavailable(PermissionError):
    """No sandbox can be made here; `grade` refuses unless told to run without one."""


class WorkerFailed(RuntimeError):
    """A worker stopped answering as the protocol says: it is replaced."""


def read_hidden(path):
    """The instructor's hidden cases (JSON, the public cases' format: {"UNQ_C1": [{"name", "inputs",
    "hint", optional "expected"}, ...], ...}), checked before anything is graded."""
    try:
        with open(path, encoding="utf-8") as f:
            cases = json.load(f)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply") from None
    exercises.check_cases(cases, path)
    return cases


# ----------------------------------------------------------------------------
# The sandbox.

def python_roots():
    """Folders the Python environment needs, read-only in the sandbox: its prefixes (a
    virtualenv's and its base interpreter's), the interpreter's own folder, site-packages."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    roots |= {sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}  # the venv as named, and its link's target
    for entry in sys.path:
        entry = os.path.realpath(entry) if entry else ""
        if entry.endswith(("site-packages", "dist-packages")):
            roots.add(entry)
    roots = {r for r in roots if os.path.isdir(r) and r != "/"}
    return sorted(r for r in roots if not any(r.startswith(o + os.sep) for o in roots if o != r))


def uid_base(jobs):
    """The first user id of a grading run with `jobs` workers, drawn from UID_SPACE."""
    span = IDS_PER_WORKER * jobs
    return UID_SPACE[0] + secrets.randbelow((UID_SPACE[1] - UID_SPACE[0]) // span) * span


def scratch_root(roots):
    """A top-level folder for the worker's files that hides none of `roots` (a Python under
    /work or /sandbox stays visible)."""
    name = "/sandbox"
    while any(r == name or r.startswith(name + os.sep) for r in roots) or os.path.islink(name):
        name = f"/sandbox-{secrets.token_hex(3)}"
    return name


def _ancestors(path):
    """/a, /a/b for /a/b/c: made 0755 in the sandbox (bubblewrap copies the host's modes, and a
    Python under /root, 0700, would be unreadable to the students' user ids)."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def sandbox_command(slot, base, cgroups=()):
    """bubblewrap around `sandbox.py`: no network, own process tree, only the Python environment
    and the worker's two files visible (read-only), a scratch tmpfs, the worker's cgroups."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`")
    roots = python_roots()
    command = [bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            command += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            command += ["--ro-bind", f"/{link}", f"/{link}"]
    made = set()
    for root in roots:
        if root.startswith("/usr/"):
            continue
        for folder in _ancestors(root):
            if folder not in made and folder not in ("/usr", "/bin", "/lib", "/lib64", "/sbin"):
                command += ["--perms", "0755", "--dir", folder]
                made.add(folder)
        command += ["--ro-bind", root, root]
    scratch = scratch_root(roots)  # after the read-only roots
    command += ["--tmpfs", scratch, "--dir", f"{scratch}/scratch",
                "--ro-bind", os.path.join(HERE, "sandbox.py"), f"{scratch}/grader/sandbox.py",
                "--ro-bind", os.path.join(HERE, "exercise_calls.py"), f"{scratch}/grader/exercise_calls.py",
                "--proc", "/proc", "--dev", "/dev", "--cap-drop", "ALL"]
    inside = []
    for controller, folder in cgroups:
        inside.append(f"/sys/fs/cgroup/{controller}")
        command += ["--bind", folder, inside[-1]]
    # The worker keeps what it needs to give each student a user id, namespaces, a scratch tmpfs
    # and cgroups of their own, and to clean up after. Students' processes lose all of it.
    for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                "CAP_SYS_ADMIN"):
        command += ["--cap-add", cap]
    config = {"uid_base": base + IDS_PER_WORKER * slot, "scratch": f"{scratch}/scratch", "scratch_mb": 256,
              "cgroups": inside, "unconfined": False, "max_processes": MAX_PROCESSES}
    command += ["--clearenv", "--setenv", "PATH", "/usr/bin", "--setenv", "HOME", scratch,
                "--setenv", "KERAS_BACKEND", "tensorflow", "--setenv", "TF_CPP_MIN_LOG_LEVEL", "3",
                "--setenv", "MPLBACKEND", "Agg", "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--chdir", scratch,
                sys.executable, "-I", f"{scratch}/grader/sandbox.py", json.dumps(config)]
    return command, roots


def check_sandbox():
    """Why no sandbox can be made here, as an exception; nothing if one can."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"the sandbox needs Linux namespaces (bubblewrap); this is {sys.platform}")
    if os.geteuid() != 0:
        raise SandboxUnavailable("the sandbox gives each student a user id of its own, which needs root: "
                                 "run the grader as root (or in a container where it is root)")
    command, _ = sandbox_command(0, UID_SPACE[0])
    probe = command[:command.index(sys.executable)] + ["/usr/bin/true"]
    done = subprocess.run(probe, capture_output=True, text=True)
    if done.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap cannot make a sandbox here: {done.stderr.strip()}")


class Cgroups:
    """One cgroup per worker in each of the memory, pids and cpu controllers (cgroup v1, under this
    process's own); the worker makes one per phase inside it. Where none can be made, `folders`
    is empty and `why` says why: limits are then per process and per user id only."""

    def __init__(self, jobs):
        self.run, self.folders, self.why = [], [[] for _ in range(jobs)], ""
        try:
            own = self._own()
            missing = [c for c in CONTROLLERS if c not in own]
            if missing:
                raise OSError(f"no cgroup v1 hierarchy for {', '.join(missing)}")
            name = f"chestxray-grade-{os.getpid()}-{secrets.token_hex(3)}"
            self._remove_stale(own)
            for controller in CONTROLLERS:
                self.run.append(os.path.join(own[controller], name))
                os.mkdir(self.run[-1])
                for slot in range(jobs):
                    os.mkdir(os.path.join(self.run[-1], f"w{slot}"))
                    self.folders[slot].append((controller, os.path.join(self.run[-1], f"w{slot}")))
        except OSError as error:
            self.close()
            self.folders, self.why = [[] for _ in range(jobs)], str(error)

    @staticmethod
    def _own():
        """{controller: this process's cgroup folder} for the v1 controllers mounted here."""
        mounts = {}
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                tail = fields[fields.index("-") + 1:]
                if tail[0] == "cgroup" and os.access(fields[4], os.W_OK):
                    for option in tail[2].split(","):
                        mounts[option] = (fields[4], fields[3])  # mount point, the hierarchy's folder it shows
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                for controller in names.split(","):
                    if controller in mounts:
                        point, root = mounts[controller]
                        relative = os.path.relpath(path, root) if path.startswith(root) else "."
                        own[controller] = os.path.normpath(os.path.join(point, relative))
        return own

    def _remove_stale(self, own):
        """Folders a killed grading run left behind (its process is gone): removed when empty."""
        for controller in CONTROLLERS:
            for entry in os.listdir(own[controller]):
                pid = entry.split("-")[2] if entry.startswith("chestxray-grade-") else ""
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    for folder, _, _ in sorted(os.walk(os.path.join(own[controller], entry)), key=lambda w: -len(w[0])):
                        try:
                            os.rmdir(folder)
                        except OSError:
                            pass

    def close(self):
        """Kill whatever is left in the run's cgroups, and remove them."""
        for top in self.run:
            for folder, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    with open(os.path.join(folder, "cgroup.procs")) as f:
                        for pid in f.read().split():
                            os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
                for _ in range(200):
                    try:
                        os.rmdir(folder)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.01)


class Worker:
    """One sandboxed worker (a zygote): phases in, the student's lines and the supervisor's word out."""

    def __init__(self, slot, base, sandbox=True, cgroups=(), start_seconds=300):
        self.log = tempfile.TemporaryFile()
        if sandbox:
            command, roots = sandbox_command(slot, base, cgroups)
            env = None
        else:  # --no-sandbox: the same worker, unconfined (students' code can reach everything)
            roots = ["(no sandbox)"]
            config = {"uid_base": base + IDS_PER_WORKER * slot, "scratch": "", "scratch_mb": 0, "cgroups": [],
                      "unconfined": True, "max_processes": MAX_PROCESSES}
            command = [sys.executable, "-I", os.path.join(HERE, "sandbox.py"), json.dumps(config)]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        env=env, bufsize=0)
        self.buffer = b""
        try:
            ready = self._read(start_seconds)
        except WorkerFailed as error:
            self.kill()
            raise SandboxUnavailable(self._why_not_started(error, roots)) from None
        if ready.get("prefix") != sys.prefix:
            self.kill()
            raise SandboxUnavailable(f"the sandbox runs another Python environment: {ready.get('prefix')!r}, "
                                     f"not the grader's {sys.prefix!r} ({sys.executable})")

    def _why_not_started(self, error, roots):
        self.log.seek(0)
        lines = self.log.read().decode("utf-8", "replace").strip().splitlines()[-15:]
        return (f"the grading worker did not start ({error}); interpreter {sys.executable} "
                f"(prefix {sys.prefix}); read-only in the sandbox: {', '.join(roots)}; its last lines:\n"
                + ("\n".join("  " + line for line in lines) or "  (nothing)"))

    def _read(self, seconds):
        """The worker's next line, as data; WorkerFailed when it ends, stalls or says nonsense."""
        deadline = time.monotonic() + seconds
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerFailed(f"no answer in {seconds:.0f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerFailed(f"it exited (status {self.process.wait()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            raise WorkerFailed("it wrote a line that is not JSON") from None
        if not isinstance(message, dict):
            raise WorkerFailed("it wrote a line that is not an object")
        return message

    def _send(self, text):
        try:
            self.process.stdin.write((text + "\n").encode())
        except OSError as error:
            raise WorkerFailed(f"it stopped reading ({error})") from None

    def phase(self, key, cell, inputs, timeout, memory_mb):
        """The student's process's first line (defining the function) and one line per case, each
        {"student": text} or {"stopped": why}."""
        self._send(json.dumps({"key": key, "cell": cell, "n": len(inputs), "timeout": timeout,
                               "memory_mb": memory_mb}))
        patience = timeout + 30  # the supervisor enforces `timeout`; this only catches a stuck worker
        replies = [self._expect(patience)]
        for case in inputs:
            self._send(json.dumps(case))
            replies.append(self._expect(patience))
        if not self._read(patience).get("end"):
            raise WorkerFailed("it did not end the phase")
        return replies[0], replies[1:]

    def _expect(self, seconds):
        reply = self._read(seconds)
        if not (isinstance(reply.get("student"), str) or reply.get("stopped") in STOPPED):
            raise WorkerFailed(reply.get("error") or "it broke the protocol")
        return reply

    def close(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self.log.close()

    def kill(self):
        self.process.kill()  # bubblewrap's init: every process of its namespace goes with it
        self.process.wait()


# ----------------------------------------------------------------------------
# Verdicts.

STOPPED = {"timeout": "Timeout: took more than {timeout} s",
           "exited": "Exit: the process ended before answering",
           "memory": "MemoryError: the exercise used more than its memory limit ({memory_mb} MB)",
           "too_large": "the answer was larger than 1 MiB"}


def _reply(reply, stage, limits):
    """A checked answer from a worker's reply: {"output"}, {"raised"}, {"defined"}, {"cell_error"},
    or {"failed": text} for anything else (stopped, unreadable, malformed)."""
    if "stopped" in reply:
        return {"failed": STOPPED[reply["stopped"]].format(**limits), "stopped": reply["stopped"]}
    try:
        return exercises.read_student(json.loads(reply["student"]), stage)
    except (ValueError, RecursionError) as error:
        return {"failed": f"the answer could not be read: {error}"}


def run_phase(worker, key, cell, cases, limits):
    """The function's answers to `cases`, checked: (cell outcome, [answer per case])."""
    first, replies = worker.phase(key, cell, [c["inputs"] for c in cases], **limits)
    cell_outcome = _reply(first, "cell", limits)
    answers, stop = [], None
    for reply in replies:
        answer = _reply(reply, "case", limits)
        if stop and answer.get("stopped"):  # cases after the one that stopped it never ran
            answer = {"failed": "not run: " + stop}
        elif answer.get("stopped") == "timeout":
            stop = f"the function took more than {limits['timeout']} s on an earlier case"
        elif answer.get("stopped"):
            stop = "the process had ended"
        answers.append(answer)
    return cell_outcome, answers


def verdicts(key, cell_outcome, answers, cases):
    """Per case: passed, and what the student sees (expected vs got, hint, error and line)."""
    rows = []
    for case, answer in zip(cases, answers):
        row = {"name": case["name"], "hint": case.get("hint", ""), "expected": exercises.show(case["expected"])}
        if "cell_error" in cell_outcome:
            row.update(passed=False, error=cell_outcome["cell_error"])
        elif "failed" in cell_outcome:
            row.update(passed=False, failed=cell_outcome["failed"])
        elif "output" in answer:
            row.update(passed=exercises.compare(key, answer["output"], case["expected"]),
                       got=exercises.show(answer["output"]))
        elif "raised" in answer:
            row.update(passed=False, error=answer["raised"])
        else:
            row.update(passed=False, failed=answer["failed"])
        rows.append(row)
    return rows


def _failure_text(row):
    if "error" in row:
        return f"{row['name']}: raised {error_text(row['error'])}\n  Hint: {row['hint']}"
    if "failed" in row:
        return f"{row['name']}: {row['failed']}\n  Hint: {row['hint']}"
    return f"{row['name']}:\n  Expected: {row['expected']}\n  Got:      {row['got']}\n  Hint: {row['hint']}"


def feedback(name, results, problem=None, language="en", notes=()):
    """The Markdown a student gets, in the language of their notebook: every public case with
    expected vs got, hints and errors; of the hidden cases, only how many passed."""
    _ = translator(language)
    lines = [f"# {_('Feedback')}: {name}", ""]
    if problem:
        lines += [f"**{problem}**", ""]
    lines += [f"- {note_text(note, _)}" for note in notes] + ([""] if notes else [])
    total = sum(r["score"] for r in results.values())
    lines += [f"{_('Score')}: **{total} / {len(results)}**", ""]
    for key, r in results.items():
        lines += [f"## {exercises.FUNCTIONS[key]} ({key}): {r['score']} / 1", ""]
        if r.get("missing"):
            lines += [r["missing"], ""]
            continue
        for row in r["public"]:
            case, hint = _(row["name"]), _(row["hint"])
            if row["passed"]:
                lines.append(f"- {_('passed')}: {case}")
            elif "error" in row:
                lines += [f"- **{_('failed')}**: {case}", f"  - {_('raised')} {error_text(row['error'], _)}",
                          f"  - {_('hint')}: {hint}"]
            elif "failed" in row:
                lines += [f"- **{_('failed')}**: {case}", f"  - {row['failed']}", f"  - {_('hint')}: {hint}"]
            else:
                lines += [f"- **{_('failed')}**: {case}", f"  - {_('expected')}: `{row['expected']}`",
                          f"  - {_('got')}: `{row['got']}`", f"  - {_('hint')}: {hint}"]
        if r["hidden"]:
            passed = sum(row["passed"] for row in r["hidden"])
            lines.append("- " + _("hidden cases: {passed} of {total} passed").format(passed=passed,
                                                                                    total=len(r["hidden"])))
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# The run.

def _progress(done, total, started):
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / max(time.monotonic() - started, 1e-9) * 60
    sys.stderr.write(f"\rgrading [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                     f"({rate:.0f} per minute)")
    sys.stderr.flush()


def _csv_safe(value):
    """Text a spreadsheet shows as text: a leading =, +, -, @, tab or CR would start a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _feedback_names(labels):
    """One feedback file name per submission, none overwriting another."""
    names, taken = [], set()
    for label in labels:
        stem = os.path.splitext(label)[0].replace("/", "_").lstrip(".") or "notebook"
        name, k = stem + ".md", 2
        while name.lower() in taken:
            name, k = f"{stem}-{k}.md", k + 1
        taken.add(name.lower())
        names.append(name)
    return names


class Grader:
    """The state of one grading run: cases, workers, limits; `one(worker, submission)` grades a
    submission whatever it does, and replaces a worker that fails."""

    def __init__(self, hidden_cases, timeout, memory_mb, sandbox, jobs):
        self.public = {key: exercises.with_answers(key, exercises.PUBLIC[key]) for key in exercises.FUNCTIONS}
        self.secret = {key: exercises.with_answers(key, hidden_cases.get(key, [])) for key in exercises.FUNCTIONS}
        self.limits = {"timeout": timeout, "memory_mb": memory_mb}
        self.sandbox, self.base = sandbox, uid_base(jobs)
        self.cgroups = Cgroups(jobs) if sandbox else None

    def worker(self, slot):
        folders = self.cgroups.folders[slot] if self.cgroups else ()
        return Worker(slot, self.base, self.sandbox, folders)

    def one(self, slot, worker, submission):
        """(results per exercise, worker): a worker that failed is replaced by a fresh one."""
        results = {}
        for key, function in exercises.FUNCTIONS.items():
            if key not in submission.cells:
                results[key] = {"score": 0, "public": [], "hidden": [],
                                "missing": submission.problem or f"no cell marked {key} ({function})"}
                continue
            rows = []
            for cases in (self.public[key], self.secret[key]):  # hidden cases in a phase of their own
                if not cases:
                    continue
                try:
                    outcome, answers = run_phase(worker, key, submission.cells[key], cases, self.limits)
                except WorkerFailed as error:
                    worker.kill()
                    outcome, answers = {"failed": f"grader error: the sandbox worker failed ({error}); "
                                                  "grade this submission again"}, [{}] * len(cases)
                    worker = self.worker(slot)
                rows += verdicts(key, outcome, answers, cases)
                if cases is self.public[key] and "defined" in outcome:
                    submission.notes += [{"key": key, **note} for note in outcome["notes"]]
            n = len(self.public[key])
            results[key] = {"public": rows[:n], "hidden": rows[n:], "score": int(all(r["passed"] for r in rows))}
        return results, worker

    def close(self):
        if self.cgroups:
            self.cgroups.close()


def grade(folder, out, hidden=None, jobs=None, timeout=60, memory_mb=2048, sandbox=True, feedback_dir=None,
          progress=True, max_mb=submissions.MAX_MB):
    """Grade every notebook in `folder`; returns the table written to `out`."""
    import pandas as pd

    hidden_cases = read_hidden(hidden) if hidden else {}  # the instructor's file first: a typo fails at once
    if sandbox:
        check_sandbox()
    names, skipped = submissions.find(folder)
    if skipped:
        sys.stderr.write(f"not graded (not .ipynb): {', '.join(submissions.printable(n) for n in skipped)}\n")
    feedback_dir = feedback_dir or os.path.join(os.path.dirname(os.path.abspath(out)), "feedback")
    os.makedirs(feedback_dir, exist_ok=True)
    templates = submissions.templates(RELEASES)
    subs = [submissions.read(folder, name, templates, max_mb * 2**20) for name in names]

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(subs) or 1))
    grader = Grader(hidden_cases, timeout, memory_mb, sandbox, jobs)
    if sandbox and grader.cgroups.why:
        sys.stderr.write(f"note: no cgroup for the students ({grader.cgroups.why}): memory is capped per "
                         "process and processes per student's user id\n")
    todo, done, lock, failures, started = queue.Queue(), {}, threading.Lock(), [], time.monotonic()
    for index, submission in enumerate(subs):
        todo.put(index)

    def serve(slot):
        try:
            worker = grader.worker(slot)
        except Exception as error:
            failures.append(error)
            return
        try:
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                submission = subs[index]
                try:
                    results, worker = grader.one(slot, worker, submission)
                except SandboxUnavailable as error:  # the worker could not be replaced: leave it to the others
                    todo.put(index)
                    failures.append(error)
                    return
                with lock:
                    done[index] = results
                    if progress:
                        _progress(len(done), len(subs), started)
        finally:
            worker.close()

    threads = [threading.Thread(target=serve, args=(slot,)) for slot in range(jobs)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        grader.close()
    if progress and subs:
        sys.stderr.write("\n")
    if len(done) < len(subs):
        raise failures[0] if failures else RuntimeError("some submissions were not graded")

    rows = []
    for index, (submission, file_name) in enumerate(zip(subs, _feedback_names(s.label for s in subs))):
        results = done[index]
        row = {"submission": submission.label}
        for key, function in exercises.FUNCTIONS.items():
            r = results[key]
            row[f"{function}_score"] = r["score"]
            row[f"{function}_public"] = f"{sum(x['passed'] for x in r['public'])}/{len(grader.public[key])}"
            row[f"{function}_hidden"] = (f"{sum(x['passed'] for x in r['hidden'])}/{len(grader.secret[key])}"
                                         if grader.secret[key] else "")
            row[f"{function}_messages"] = (r.get("missing") or
                                           "\n".join(_failure_text(x) for x in r["public"] if not x["passed"]))
        row["total"] = sum(r["score"] for r in results.values())
        row["notes"] = "\n".join(note_text(n) for n in submission.notes)
        row["feedback"] = file_name
        rows.append(row)
        with open(os.path.join(feedback_dir, file_name), "w", encoding="utf-8") as f:
            f.write(feedback(submission.label, results, submission.problem, submission.language, submission.notes))
    table = pd.DataFrame(rows, columns=None if rows else ["submission", "total"])
    table.map(_csv_safe).to_csv(out, index=False)
    write_summary(os.path.join(os.path.dirname(os.path.abspath(out)), "summary.html"), subs,
                  [done[i] for i in range(len(subs))], grader,
                  [submissions.printable(n) for n in skipped])
    return table
