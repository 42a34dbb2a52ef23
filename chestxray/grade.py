"""The grader: every submission's graded cells run in a sandbox; the verdicts are made here.

`grade(submissions, out)` reads each notebook as data (`submissions`: nothing of it runs in
this process), sends each graded cell to a sandboxed worker (`workers`, one per job slot) with
the cases' inputs one at a time, checks every answer's structure and compares it with the
reference answer (`exercises`), which never enters the sandbox. Public and hidden cases run in
separate phases, each in a fresh process. It writes `out`, a Markdown feedback file per
submission and `summary.html` (`grade_summary`). What they hold, and what the sandbox protects
against and what it does not: README, "Grading".
"""

import concurrent.futures
import json
import os
import queue
import sys
import threading
import time

import pandas as pd

from . import exercises, submissions
from .grade_summary import class_language, note_text, write_summary
from .i18n import LANGUAGES, N_, say, translator
from .paths import release_paths
from .workers import Cgroups, SandboxUnavailable, Worker, WorkerFailed, check_sandbox, uid_base


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
# Verdicts.

# What a student reads of a case that did not answer: (msgid, values), said in their language.
STOPPED = {"timeout": N_("Timeout: took more than {timeout} s"),
           "exited": N_("Exit: the process ended before answering"),
           "memory": N_("MemoryError: the exercise used more than its memory limit ({memory_mb} MB)"),
           "too_large": N_("the answer was larger than 1 MiB")}


def _reply(reply, stage, limits):
    """A checked answer from a worker's reply: {"output"}, {"raised"}, {"defined"}, {"cell_error"},
    or {"failed": message} for anything else (stopped, unreadable, malformed)."""
    if "stopped" in reply:
        return {"failed": (STOPPED[reply["stopped"]], limits), "stopped": reply["stopped"]}
    try:
        return exercises.read_student(json.loads(reply["student"]), stage)
    except (ValueError, RecursionError) as error:
        return {"failed": (N_("the answer could not be read: {why}"), {"why": str(error)})}


def run_phase(worker, key, cell, cases, limits):
    """The function's answers to `cases`, checked: (cell outcome, [answer per case])."""
    first, replies = worker.phase(key, cell, [c["inputs"] for c in cases], **limits)
    cell_outcome = _reply(first, "cell", limits)
    answers, stop = [], None
    for reply in replies:
        answer = _reply(reply, "case", limits)
        if stop and answer.get("stopped"):  # cases after the one that stopped it never ran
            answer = {"failed": (N_("not run: {why}"), {"why": stop})}
        elif answer.get("stopped") == "timeout":
            stop = (N_("the function took more than {timeout} s on an earlier case"), limits)
        elif answer.get("stopped"):
            stop = (N_("the process had ended"), {})
        answers.append(answer)
    return cell_outcome, answers


def verdicts(key, cell_outcome, answers, cases):
    """Per case: passed, and what the student sees (expected vs got as plain results, hint, error
    and line, or a message)."""
    rows = []
    for case, answer in zip(cases, answers):
        row = {"name": case["name"], "hint": case.get("hint", ""), "expected": case["expected"]}
        outcome = answer if "defined" in cell_outcome else cell_outcome  # a cell that failed fails every case
        if "output" in outcome:
            row.update(passed=exercises.compare(key, outcome["output"], case["expected"]), got=outcome["output"])
        elif "failed" in outcome:
            row.update(passed=False, failed=outcome["failed"])
        else:
            row.update(passed=False, error=outcome.get("raised") or outcome["cell_error"])
        rows.append(row)
    return rows


def _failure_text(row):
    """A failed case in grades.csv, for the instructor (in English)."""
    return row["name"] + ":" + "".join(f"\n  {label} {text}".rstrip() if label else f"\n  {text}"
                                       for label, text in exercises.failure(row, str))


def feedback(name, results, problem=None, language="en", notes=()):
    """The Markdown a student gets, in the language of their notebook: every public case with
    expected vs got, hints and errors; of the hidden cases, only how many passed."""
    _ = translator(language)
    lines = [f"# {_('Feedback')}: {name}", ""]
    if problem:
        lines += [f"**{say(problem, _)}**", ""]
    lines += [f"- {note_text(note, _)}" for note in notes] + ([""] if notes else [])
    total = sum(r["score"] for r in results.values())
    lines += [f"{_('Score')}: **{total} / {len(results)}**", ""]
    for key, r in results.items():
        lines += [f"## {exercises.FUNCTIONS[key]} ({key}): {r['score']} / 1", ""]
        if r.get("missing"):
            lines += [say(r["missing"], _), ""]
            continue
        for row in r["public"]:
            if row["passed"]:
                lines.append(f"- {_('passed')}: {_(row['name'])}")
                continue
            lines.append(f"- **{_('failed')}**: {_(row['name'])}")
            for label, text in exercises.failure(row, _):
                text = f"`{text}`" if label in (_("Expected:"), _("Got:")) else text  # values as code
                lines.append(f"  - {label} {text}" if label else f"  - {text}")
        if r["hidden"]:
            passed = sum(row["passed"] for row in r["hidden"])
            lines.append("- " + _("hidden cases: {passed} of {total} passed").format(passed=passed,
                                                                                    total=len(r["hidden"])))
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# The run.

def _progress(done, total, started, width=30):
    filled = int(width * done / total) if total else width
    rate = done / max(time.monotonic() - started, 1e-9) * 60
    print(f"\rgrading [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:.0f} per minute)", end="",
          file=sys.stderr, flush=True)


def _csv_safe(value):
    """Text a spreadsheet shows as text: a leading =, +, -, @, tab or CR would start a formula."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


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
                                "missing": submission.problem or (N_("no cell marked {key} ({function})"),
                                                                  {"key": key, "function": function})}
                continue
            rows = []
            for cases in (self.public[key], self.secret[key]):  # hidden cases in a phase of their own
                if not cases:
                    continue
                try:
                    outcome, answers = run_phase(worker, key, submission.cells[key], cases, self.limits)
                except Exception as error:  # the worker, or this side of the protocol: this submission's row says so
                    worker.kill()
                    why = str(error) if isinstance(error, WorkerFailed) else f"{type(error).__name__}: {error}"
                    outcome, answers = {"failed": (N_("grader error: the sandbox worker failed ({why}); grade this "
                                                      "submission again"), {"why": why})}, [{}] * len(cases)
                    worker = self.worker(slot)  # a fresh one, in step
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
    hidden_cases = read_hidden(hidden) if hidden else {}  # the instructor's file first: a typo fails at once
    if sandbox:
        check_sandbox()
    names, skipped = submissions.find(folder)
    if skipped:
        sys.stderr.write(f"not graded (not .ipynb): {', '.join(submissions.printable(n) for n in skipped)}\n")
    feedback_dir = feedback_dir or os.path.join(os.path.dirname(os.path.abspath(out)), "feedback")
    os.makedirs(feedback_dir, exist_ok=True)
    templates = submissions.templates([release_paths(language)[0] for language in LANGUAGES])
    subs = [submissions.read(folder, name, templates, max_mb * 2**20) for name in names]
    language = class_language(subs)  # a notebook that could not be read is answered in the class's
    for submission in subs:
        submission.language = submission.language or language

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(subs) or 1))
    grader = Grader(hidden_cases, timeout, memory_mb, sandbox, jobs)
    if sandbox and grader.cgroups.why:
        sys.stderr.write(f"note: no cgroup for the students ({grader.cgroups.why}): memory is capped per "
                         "process and processes per student's user id\n")
    todo, done, lock, failures, started = queue.Queue(), {}, threading.Lock(), [], time.monotonic()
    for index in range(len(subs)):
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

    try:
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            list(pool.map(serve, range(jobs)))
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
            row[f"{function}_messages"] = (say(r.get("missing", "")) or
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
