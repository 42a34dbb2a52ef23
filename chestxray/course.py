"""The course module's notebooks: one text source, a student release, a solution that runs headless.

The source, `course/C1W1_Assignment.py` (jupytext percent format), holds the
solutions between `### START CODE HERE` and `### END CODE HERE`. The student
release keeps the structure of each solution and replaces what it computes by
`None`, as the course did: assignments become `name = None` (or `+= None`),
loops and comments stay.
"""

import ast
import os
import re
import textwrap

import nbformat

START, END = "### START CODE HERE", "### END CODE HERE"
SOURCE = os.path.join("course", "C1W1_Assignment.py")
STUDENT = "C1W1_Assignment.ipynb"
SOLUTION = os.path.join("build", "C1W1_Assignment_solution.ipynb")
GRADED = {"UNQ_C1": "check_for_leakage", "UNQ_C2": "compute_class_freqs", "UNQ_C3": "get_weighted_loss"}


def placeholders(block):
    """Solution lines -> the student's lines: each assignment's value becomes None; the rest stays."""
    lines = block.splitlines()
    code = textwrap.dedent("\n".join(lines))
    replaced = {}  # first line (0-based) -> new text; other lines of a statement -> None (dropped)
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            first = node.lineno - 1
            target = " = ".join(ast.unparse(t) for t in node.targets) if isinstance(node, ast.Assign) \
                else ast.unparse(node.target)
            op = " = " if isinstance(node, ast.Assign) else f" {_augmented(node.op)}= "
            original = lines[first]
            replaced[first] = original[:len(original) - len(original.lstrip())] + target + op + "None"
            for later in range(first + 1, node.end_lineno):
                replaced[later] = None
    out = [replaced.get(i, line) for i, line in enumerate(lines)]
    return "\n".join(line for line in out if line is not None)


def _augmented(op):
    return {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(op)]


def strip_solutions(source):
    """A code cell's text with every START ... END block replaced by placeholders."""
    pattern = re.compile(rf"(^[^\n]*{re.escape(START)}[^\n]*\n)(.*?)(^[^\n]*{re.escape(END)})", re.S | re.M)
    return pattern.sub(lambda m: m.group(1) + placeholders(m.group(2).rstrip("\n")) + "\n" + m.group(3), source)


def read_source(path=SOURCE):
    import jupytext

    return jupytext.read(path, fmt="py:percent")


def _clean(notebook):
    """No outputs, no execution counts, no jupytext bookkeeping: the same bytes for the same source."""
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{i:03d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def build(source=SOURCE, student=STUDENT, solution=SOLUTION):
    """Write the student release and the solution notebook from the source; returns their texts."""
    notebook = _clean(read_source(source))
    solution_text = nbformat.writes(notebook) + "\n"
    for cell in notebook.cells:
        if cell.cell_type == "code" and START in cell.source:
            cell.source = strip_solutions(cell.source)
    student_text = nbformat.writes(notebook) + "\n"
    for path, text in ((student, student_text), (solution, solution_text)):
        if path:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    return student_text, solution_text


def execute(path, out, parameters=None, cwd=".", timeout=900):
    """Run a notebook top to bottom in a fresh kernel, with `parameters` set in a cell placed after
    the cell tagged "parameters" (as papermill does); write the executed notebook to `out`."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    if parameters:
        where = next((i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])),
                     None)
        if where is None:
            raise ValueError(f"{path}: no cell tagged 'parameters' to set {sorted(parameters)} after")
        text = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
        cell = nbformat.v4.new_code_cell(text, metadata={"tags": ["injected-parameters"]})
        notebook.cells.insert(where + 1, cell)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
    nbformat.write(notebook, out)
    return notebook


def graded_cells(notebook):
    """{"UNQ_C1": source, ...}: the cells that define the graded functions, by their identifier."""
    found = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for key in GRADED:
                if re.search(rf"#\s*{key}\b", cell.source):
                    found[key] = cell.source
    return found


def text_outputs(notebook):
    """All text a notebook printed, joined (for checks on executed notebooks)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain")
            if text:
                parts.append(text)
    return "\n".join(parts)


# ----------------------------------------------------------------------------
# The grader: each exercise of each submission in its own process.

COURSE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # public_tests.py lives here
PRELUDE = {"UNQ_C1": "import numpy as np\nimport pandas as pd\n",
           "UNQ_C2": "import numpy as np\nimport pandas as pd\n",
           "UNQ_C3": "import numpy as np\nimport pandas as pd\nimport keras\nfrom keras import ops\n"}
CALLS = {"UNQ_C1": "check_for_leakage_test({f}, return_failures=True)",
         "UNQ_C2": "compute_class_freqs_test({f}, return_failures=True)",
         "UNQ_C3": "get_weighted_loss_test({f}, 1, return_failures=True)"}
RESULT = "@@grade@@"


def _run_exercise(key, cell, timeout, memory_mb):
    """In the worker process: define the student's function, run its public test; a dict result."""
    import contextlib
    import io
    import resource
    import signal
    import sys

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))

    class Timeout(BaseException):
        """Not an Exception: the public tests catch those as failed cases and would go on."""

    def alarm(signum, frame):
        raise Timeout(f"took more than {timeout} s")

    signal.signal(signal.SIGALRM, alarm)
    sys.path.insert(0, COURSE_ROOT)
    namespace, printed = {}, io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(PRELUDE[key], namespace)
            signal.alarm(timeout)
            exec(compile(cell, f"<{key} cell>", "exec"), namespace)
            signal.alarm(0)
            if GRADED[key] not in namespace:
                return {"score": 0, "messages": [f"the {key} cell does not define {GRADED[key]}"]}
            import public_tests

            namespace.update(vars(public_tests))
            signal.alarm(timeout)
            failures = eval(CALLS[key].format(f=GRADED[key]), namespace)
            signal.alarm(0)
    except BaseException as error:  # the student's code may raise anything, SystemExit included
        signal.alarm(0)
        return {"score": 0, "messages": [f"{type(error).__name__}: {error}"]}
    return {"score": 0 if failures else 1, "messages": failures}


def grade_exercise(key, cell, scratch, timeout=60, memory_mb=2048):
    """One exercise in a fresh Python process whose working folder is `scratch`."""
    import subprocess
    import sys

    cell_path = os.path.join(scratch, f"{key}.py")
    with open(cell_path, "w", encoding="utf-8") as f:
        f.write(cell)
    # This file run as a script, not as `-m chestxray.course`: the package's import of Keras is not needed.
    command = [sys.executable, os.path.abspath(__file__), key, cell_path, str(timeout), str(memory_mb)]
    env = {**os.environ, "PYTHONPATH": COURSE_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run(command, cwd=scratch, capture_output=True, text=True, env=env,
                              timeout=2 * timeout + 60)
    except subprocess.TimeoutExpired:
        return {"score": 0, "messages": [f"stopped after {2 * timeout + 60} s"]}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT):
            import json

            return json.loads(line[len(RESULT):])
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"score": 0, "messages": [f"the grading process ended with code {done.returncode}: {tail[0]}"]}


def grade(submissions, out, timeout=60, memory_mb=2048):
    """Grade every .ipynb in `submissions`: one row per file, a score (0/1) and messages per exercise."""
    import tempfile

    import pandas as pd

    rows = []
    for name in sorted(os.listdir(submissions)):
        if not name.endswith(".ipynb"):
            continue
        row = {"submission": name}
        try:
            cells = graded_cells(nbformat.read(os.path.join(submissions, name), as_version=4))
            problem = None
        except Exception as error:
            cells, problem = {}, f"the notebook does not parse: {type(error).__name__}: {error}"
        with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
            for key, function in GRADED.items():
                if key in cells:
                    result = grade_exercise(key, cells[key], scratch, timeout, memory_mb)
                else:
                    result = {"score": 0, "messages": [problem or f"no cell marked {key} ({function})"]}
                row[f"{function}_score"] = result["score"]
                row[f"{function}_messages"] = "\n".join(result["messages"])
        row["total"] = sum(row[f"{function}_score"] for function in GRADED.values())
        rows.append(row)
        print(f"{name}: {row['total']}/{len(GRADED)}")
    table = pd.DataFrame(rows)
    table.to_csv(out, index=False)
    return table


if __name__ == "__main__":
    import json
    import sys

    key, cell_path, timeout, memory_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(cell_path, encoding="utf-8") as f:
        result = _run_exercise(key, f.read(), timeout, memory_mb)
    print(RESULT + json.dumps(result))
