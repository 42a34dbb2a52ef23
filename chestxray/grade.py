"""The grader: every submission's graded cells run in a sandbox; the verdicts are made here.

`grade(submissions, out)` reads each notebook (as data: nothing of it runs in this
process), sends its three graded cells and the cases' inputs to sandboxed workers
(`sandbox.py` inside bubblewrap, one per job slot, all cores), and compares the
plain answers they send back with the reference answers (`exercises`), which never
enter the sandbox. It writes `out` (one row per submission: per exercise the 0/1
score, public and hidden cases passed, the public failures) and one Markdown
feedback file per submission.

What the sandbox protects against, and what it does not: README, "Grading".
"""

import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import threading
import time

import nbformat

from . import exercises
from .i18n import translator

HERE = os.path.dirname(os.path.abspath(__file__))
# The students' user ids: a base drawn at random per grading run, + 100,000 x worker + a counter
# (one per exercise graded), far above any account's id on the host. Two graders on one machine
# then almost never share an id: a user id's process limit counts across the whole machine, so a
# student of one run that forks to the limit would stop another run's student with that id.
UID_SPACE = (1_000_000, 2_000_000_000)
IDS_PER_WORKER = 100_000


class SandboxUnavailable(PermissionError):
    """No sandbox can be made here; `grade` refuses unless told to run without one."""


def notebook_language(notebook):
    """The language of a course notebook ("en" or "pt-BR"), from its metadata."""
    return notebook.metadata.get("chestxray", {}).get("language", "en")


def graded_cells(notebook):
    """{"UNQ_C1": source, ...}: the cells that define the graded functions, by their identifier."""
    import re

    found = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for key in exercises.FUNCTIONS:
                if re.search(rf"#\s*{key}\b", cell.source):
                    found[key] = cell.source
    return found


def read_hidden(path):
    """The instructor's hidden cases (JSON, the public cases' format: {"UNQ_C1": [{"name", "inputs",
    "hint", optional "expected"}, ...], ...}), checked."""
    try:
        with open(path, encoding="utf-8") as f:
            cases = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    exercises.check_cases(cases, path)
    return cases


# ----------------------------------------------------------------------------
# The sandbox.

def _python_roots():
    """Folders the Python installation needs, read-only in the sandbox."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    for entry in sys.path:
        entry = os.path.realpath(entry) if entry else ""
        if entry.endswith(("site-packages", "dist-packages")) and not any(entry.startswith(r + os.sep)
                                                                          for r in roots):
            roots.add(entry)
    return sorted(roots)


def uid_base(jobs):
    """The first user id of a grading run with `jobs` workers, drawn from UID_SPACE."""
    span = IDS_PER_WORKER * jobs
    return UID_SPACE[0] + secrets.randbelow((UID_SPACE[1] - UID_SPACE[0]) // span) * span


def sandbox_command(worker, base=UID_SPACE[0]):
    """bubblewrap around `sandbox.py`: no network, own process tree, only Python and the worker
    script visible (read-only), no /tmp, a scratch tmpfs that only the worker populates."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`")
    command = [bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--unshare-cgroup-try", "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            command += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            command += ["--ro-bind", f"/{link}", f"/{link}"]
    for root in _python_roots():
        if not root.startswith("/usr/"):
            command += ["--ro-bind", root, root]
    command += ["--ro-bind", os.path.join(HERE, "sandbox.py"), "/grader/sandbox.py",
                "--ro-bind", os.path.join(HERE, "exercise_calls.py"), "/grader/exercise_calls.py",
                "--tmpfs", "/work", "--proc", "/proc", "--dev", "/dev",
                "--cap-drop", "ALL"]
    # The worker keeps what it needs to give each student a user id of their own and clean up after.
    for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER"):
        command += ["--cap-add", cap]
    command += ["--clearenv", "--setenv", "PATH", "/usr/bin", "--setenv", "HOME", "/work",
                "--setenv", "KERAS_BACKEND", "tensorflow", "--setenv", "TF_CPP_MIN_LOG_LEVEL", "3",
                "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--chdir", "/work",
                os.path.realpath(sys.executable), "-I", "/grader/sandbox.py", str(base + IDS_PER_WORKER * worker)]
    return command


def check_sandbox():
    """Why no sandbox can be made here, as an exception; nothing if one can."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"the sandbox needs Linux namespaces (bubblewrap); this is {sys.platform}")
    if os.geteuid() != 0:
        raise SandboxUnavailable("the sandbox gives each student a user id of its own, which needs root: "
                                 "run the grader as root (or in a container where it is root)")
    command = sandbox_command(0)
    probe = command[:command.index(os.path.realpath(sys.executable))] + ["/usr/bin/true"]
    done = subprocess.run(probe, capture_output=True, text=True)
    if done.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap cannot make a sandbox here: {done.stderr.strip()}")


class Worker:
    """One sandboxed worker: jobs in (a JSON line each), plain answers out."""

    def __init__(self, index, sandbox=True, base=UID_SPACE[0]):
        if sandbox:
            command = sandbox_command(index, base)
        else:  # --no-sandbox: the same worker, unconfined (students' code can reach everything)
            command = [sys.executable, "-I", os.path.join(HERE, "sandbox.py"), str(base + IDS_PER_WORKER * index)]
        env = None if sandbox else {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NO_SANDBOX": "1"}
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, env=env)
        ready = self.process.stdout.readline()
        if not ready.startswith('{"ready"'):
            raise SandboxUnavailable(f"the grading worker did not start (exit code {self.process.poll()})")

    def run(self, job):
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the grading worker died (exit code {self.process.wait()})")
        return json.loads(line)["results"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ----------------------------------------------------------------------------
# Verdicts.

def verdicts(key, answers, cases):
    """Per case: passed, and what the student sees (expected vs got, hint, error and line)."""
    rows = []
    for case, answer in zip(cases, answers["cases"]):
        row = {"name": case["name"], "hint": case.get("hint", ""), "expected": exercises.show(case["expected"])}
        if answers["cell_error"]:
            error = answers["cell_error"]
            row.update(passed=False, error=error)
        elif "output" in answer:
            row.update(passed=exercises.compare(key, answer["output"], case["expected"]),
                       got=exercises.show(answer["output"]))
        else:
            row.update(passed=False, error=answer["raised"])
        rows.append(row)
    return rows


def _error_text(error, _=str):
    where = (" (" + _("line {number}: {code}").format(number=error["line"], code=error["code"]) + ")"
             if error.get("line") else "")
    return f"{error['type']}: {error['message']}{where}"


def _failure_text(row):
    if "error" in row:
        return f"{row['name']}: raised {_error_text(row['error'])}\n  Hint: {row['hint']}"
    return f"{row['name']}:\n  Expected: {row['expected']}\n  Got:      {row['got']}\n  Hint: {row['hint']}"


def feedback(name, results, problem=None, language="en"):
    """The Markdown a student gets, in the language of their notebook: every public case with
    expected vs got, hints and errors; of the hidden cases, only how many passed."""
    _ = translator(language)
    lines = [f"# {_('Feedback')}: {name}", ""]
    if problem:
        lines += [f"**{problem}**", ""]
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
                lines += [f"- **{_('failed')}**: {case}", f"  - {_('raised')} {_error_text(row['error'], _)}",
                          f"  - {_('hint')}: {hint}"]
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


def grade(submissions, out, hidden=None, jobs=None, timeout=60, memory_mb=2048, sandbox=True, feedback_dir=None,
          progress=True):
    """Grade every .ipynb in `submissions`; returns the table written to `out`."""
    import pandas as pd

    if sandbox:
        check_sandbox()
    hidden_cases = read_hidden(hidden) if hidden else {}
    public = {key: exercises.with_answers(key, exercises.PUBLIC[key]) for key in exercises.FUNCTIONS}
    secret = {key: exercises.with_answers(key, hidden_cases.get(key, [])) for key in exercises.FUNCTIONS}
    names = sorted(name for name in os.listdir(submissions) if name.endswith(".ipynb"))
    feedback_dir = feedback_dir or os.path.join(os.path.dirname(os.path.abspath(out)), "feedback")
    os.makedirs(feedback_dir, exist_ok=True)

    todo, done = queue.Queue(), {}
    languages = {}
    for index, name in enumerate(names):
        try:
            notebook = nbformat.read(os.path.join(submissions, name), as_version=4)
            cells, problem, languages[name] = graded_cells(notebook), None, notebook_language(notebook)
        except Exception as error:
            cells, problem = {}, f"the notebook does not parse: {type(error).__name__}: {error}"
        todo.put((index, name, cells, problem))

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(names) or 1))
    started, lock, failures, base = time.monotonic(), threading.Lock(), [], uid_base(jobs)

    def serve(slot):
        try:
            worker = Worker(slot, sandbox, base)
        except Exception as error:
            failures.append(error)
            return
        try:
            while True:
                try:
                    index, name, cells, problem = todo.get_nowait()
                except queue.Empty:
                    return
                job = {"id": index, "timeout": timeout, "memory_mb": memory_mb, "cells": cells,
                       "cases": {key: [c["inputs"] for c in public[key] + secret[key]] for key in cells}}
                answers = worker.run(job) if cells else {}
                with lock:
                    done[name] = (answers, cells, problem)
                    if progress:
                        _progress(len(done), len(names), started)
        finally:
            worker.close()

    threads = [threading.Thread(target=serve, args=(slot,)) for slot in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if progress and names:
        sys.stderr.write("\n")
    if failures and len(done) < len(names):
        raise failures[0]

    rows = []
    for name in names:
        answers, cells, problem = done[name]
        results = {}
        for key, function in exercises.FUNCTIONS.items():
            if key not in cells:
                results[key] = {"score": 0, "public": [], "hidden": [],
                                "missing": problem or f"no cell marked {key} ({function})"}
                continue
            n = len(public[key])
            rows_all = verdicts(key, answers[key], public[key] + secret[key])
            results[key] = {"public": rows_all[:n], "hidden": rows_all[n:],
                            "score": int(all(row["passed"] for row in rows_all))}
        row = {"submission": name}
        for key, function in exercises.FUNCTIONS.items():
            r = results[key]
            row[f"{function}_score"] = r["score"]
            row[f"{function}_public"] = f"{sum(x['passed'] for x in r['public'])}/{len(public[key])}"
            row[f"{function}_hidden"] = (f"{sum(x['passed'] for x in r['hidden'])}/{len(secret[key])}"
                                         if secret[key] else "")
            row[f"{function}_messages"] = (r.get("missing") or
                                           "\n".join(_failure_text(x) for x in r["public"] if not x["passed"]))
        row["total"] = sum(r["score"] for r in results.values())
        rows.append(row)
        with open(os.path.join(feedback_dir, os.path.splitext(name)[0] + ".md"), "w", encoding="utf-8") as f:
            f.write(feedback(name, results, problem, languages.get(name, "en")))
    table = pd.DataFrame(rows)
    table.to_csv(out, index=False)
    return table
