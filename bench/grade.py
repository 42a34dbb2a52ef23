"""Grading throughput: submissions per minute, the sandboxed grader against the one before it.

Makes N ordinary submissions from the solution notebook (half right, the others with one
usual mistake in one exercise), grades them with this checkout's `python -m chestxray grade`
and with the grader of an earlier commit (a git worktree of BASELINE, default the last
commit before the sandboxed grader), one after the other on the same files, and prints
both rates and their ratio. Both must agree on every score. The baseline takes about 10 s a
submission on 2 cores, so it grades only the first --baseline-n of them (its rate does not
depend on how many: one process per exercise, nothing shared).

    python bench/grade.py [--n 100] [--baseline 6a1079e] [--baseline-n 20] [--jobs 2] [--hidden]

--hidden adds one hidden case per exercise (graded in a phase of its own, as the grader does).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import nbformat
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from chestxray import course  # noqa: E402

MISTAKES = [
    ("UNQ_C1", "def check_for_leakage(df1, df2, patient_col):\n    return len(set(df1[patient_col]) & set(df2[patient_col]))\n"),
    ("UNQ_C2", "import numpy as np\ndef compute_class_freqs(labels):\n    p = np.mean(labels, axis=1)\n    return p, 1 - p\n"),
    ("UNQ_C3", "from keras import ops\ndef get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):\n"
               "    def weighted_loss(y_true, y_pred):\n        loss = 0.0\n        for i in range(len(pos_weights)):\n"
               "            loss += ops.mean(-(neg_weights[i] * y_true[:, i] * ops.log(y_pred[:, i] + epsilon)\n"
               "                + pos_weights[i] * (1 - y_true[:, i]) * ops.log(1 - y_pred[:, i] + epsilon)))\n"
               "        return loss\n    return weighted_loss\n"),
]


HIDDEN = {"UNQ_C1": [{"name": "h1", "inputs": {"first": [7, 8], "second": [8, 9]}, "hint": ""}],
          "UNQ_C2": [{"name": "h2", "inputs": {"labels": [[1, 1], [0, 1], [0, 1]]}, "hint": ""}],
          "UNQ_C3": [{"name": "h3", "inputs": {"y": [[1, 0]], "pred": [[0.6, 0.2]], "pos": [0.3, 0.6],
                                               "neg": [0.7, 0.4], "epsilon": 1e-7}, "hint": ""}]}


def make_submissions(folder, n):
    _, solution = course.build(os.path.join(ROOT, course.SOURCE), None, os.path.join(folder, "solution.ipynb"))
    subs = os.path.join(folder, "subs")
    os.makedirs(subs)
    for i in range(n):
        notebook = nbformat.reads(solution, as_version=4)
        if i % 2:
            key, source = MISTAKES[(i // 2) % len(MISTAKES)]
            for cell in notebook.cells:
                if cell.cell_type == "code" and re.search(rf"#\s*{key}\b", cell.source):
                    cell.source = f"# {key}\n" + source
        nbformat.write(notebook, os.path.join(subs, f"student_{i:03d}.ipynb"))
    return subs


def timed(command, cwd):
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{done.stderr[-3000:]}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--baseline", default="6a1079e", help="commit of the grader to compare with")
    parser.add_argument("--baseline-n", type=int, default=20, help="submissions the baseline grades")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--hidden", action="store_true", help="with one hidden case per exercise")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        subs = make_submissions(scratch, args.n)
        first = os.path.join(scratch, "first")  # the baseline's share: the first --baseline-n
        os.makedirs(first)
        k = min(args.n, args.baseline_n)
        for name in sorted(os.listdir(subs))[:k]:
            shutil.copy(os.path.join(subs, name), first)
        hidden = []
        if args.hidden:
            hidden = ["--hidden", os.path.join(scratch, "hidden.json")]
            with open(hidden[1], "w") as f:
                json.dump(HIDDEN, f)
        baseline = os.path.join(scratch, "baseline")
        subprocess.run(["git", "worktree", "add", "--detach", baseline, args.baseline], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            ours_csv, theirs_csv = os.path.join(scratch, "ours.csv"), os.path.join(scratch, "theirs.csv")
            ours = timed([sys.executable, "-m", "chestxray", "grade", subs, "--out", ours_csv,
                          "--jobs", str(args.jobs), *hidden], ROOT)
            theirs = timed([sys.executable, "-m", "chestxray", "grade", first, "--out", theirs_csv], baseline)  # no --hidden then
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", baseline], cwd=ROOT, capture_output=True)
        a, b = pd.read_csv(ours_csv), pd.read_csv(theirs_csv)
        agree = (a["total"].to_numpy()[:k] == b["total"].to_numpy()).all()
        print(f"{args.n} submissions ({args.n - args.n // 2} right, {args.n // 2} with one mistake), "
              f"{os.cpu_count()} cores" + (", one hidden case per exercise" if args.hidden else ""))
        print(f"sandboxed grader (--jobs {args.jobs}): {ours:.1f} s, {args.n / ours * 60:.0f} per minute")
        print(f"baseline {args.baseline}, the first {k}: {theirs:.1f} s, {k / theirs * 60:.1f} per minute")
        print(f"ratio: {(args.n / ours) / (k / theirs):.2f}x; the same scores on those {k}: {bool(agree)} "
              f"(totals: {a['total'].value_counts().sort_index().to_dict()})")


if __name__ == "__main__":
    main()
