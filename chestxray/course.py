"""The course module's notebooks: one text source, a student release, a solution that runs headless.

The source, `course/C1W1_Assignment.py` (jupytext percent format), holds the
solutions between `### START CODE HERE` and `### END CODE HERE`. The student
release keeps the structure of each solution and replaces what it computes by
`None`, as the course did: assignments become `name = None` (or `+= None`),
loops and comments stay.
"""

import ast
import hashlib
import os
import re
import textwrap

import jupytext
import nbformat

from .exercises import PUBLIC
from .labels import LABELS
from .paths import COURSE_HELPERS, REPO, TRANSLATIONS, release_paths
from .paths import COURSE_SOURCE as SOURCE

START, END = "### START CODE HERE", "### END CODE HERE"
AUGMENTED = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}  # x += ... in a solution: x += None

STUDENT, SOLUTION = release_paths("en")
# Other languages (TRANSLATIONS): the English source's cells translated, keyed by a hash of the English text.
SEPARATOR = re.compile(r"^==== cell ([0-9a-f]{12}) ====$", re.M)


def messages():
    """Every message students or graders read: each `_("...")` (or `N_`) in the package and the
    course's helpers, the exercises' case names and hints, and the 14 labels."""
    package = os.path.join(REPO, "chestxray")
    found = set()
    files = [os.path.join(package, name) for name in sorted(os.listdir(package)) if name.endswith(".py")]
    for path in files + COURSE_HELPERS:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_")
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    for cases in PUBLIC.values():
        found.update(text for case in cases for text in (case["name"], case["hint"]))
    found.update(label.replace("_", " ") for label in LABELS)
    return sorted(found)


def needs_translation(cell):
    """Markdown, and code with comments or printed messages: what a student reads."""
    return cell.cell_type == "markdown" or any(mark in cell.source for mark in ("#", "print(", "plt.title(",
                                                                                "plt.xlabel(", "plt.ylabel("))


def code_shape(source):
    """A code cell without its comments and the text of its strings: what must be the same in
    every language (names, calls, numbers, structure)."""
    class Blank(ast.NodeTransformer):
        def visit_Constant(self, node):
            return ast.copy_location(ast.Constant("" if isinstance(node.value, str) else node.value), node)

        def visit_JoinedStr(self, node):
            return ast.copy_location(ast.Constant(""), node)

    return ast.dump(Blank().visit(ast.parse(source)))


def translate(notebook, language, path=None):
    """The notebook with every cell a student reads in `language`. Fails, naming the cells, when
    a translation is missing or stale (its English text changed), or changes code."""
    path = path or TRANSLATIONS[language]
    with open(path, encoding="utf-8") as f:
        parts = SEPARATOR.split(f.read())
    translations = {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts), 2)}  # {English hash: text}
    problems, used = [], set()
    for i, cell in enumerate(notebook.cells):
        key = hashlib.sha256(cell.source.encode("utf-8")).hexdigest()[:12]
        if key in translations:
            used.add(key)
            text = translations[key]
            if cell.cell_type == "code" and code_shape(text) != code_shape(cell.source):
                problems.append(f"cell {i} ({key}): the translation changes the code, not only comments "
                                "and strings")
            cell.source = text
        elif needs_translation(cell):
            problems.append(f"cell {i} ({key}) has no translation: {cell.source.splitlines()[0][:70]!r}")
    stale = sorted(set(translations) - used)
    if stale:
        problems.append(f"{len(stale)} translation(s) of English text that is no longer there: {', '.join(stale)}")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return notebook


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
            op = " = " if isinstance(node, ast.Assign) else f" {AUGMENTED[type(node.op)]}= "
            original = lines[first]
            replaced[first] = original[:len(original) - len(original.lstrip())] + target + op + "None"
            for later in range(first + 1, node.end_lineno):
                replaced[later] = None
    out = [replaced.get(i, line) for i, line in enumerate(lines)]
    return "\n".join(line for line in out if line is not None)


def strip_solutions(source):
    """A code cell's text with every START ... END block replaced by placeholders."""
    pattern = re.compile(rf"(^[^\n]*{re.escape(START)}[^\n]*\n)(.*?)(^[^\n]*{re.escape(END)})", re.S | re.M)
    return pattern.sub(lambda m: m.group(1) + placeholders(m.group(2).rstrip("\n")) + "\n" + m.group(3), source)


def read_source(path=SOURCE):
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


def build(source=SOURCE, student=STUDENT, solution=SOLUTION, language="en", translations=None):
    """Write the student release and the solution notebook from the source, in `language`;
    returns their texts."""
    notebook = _clean(read_source(source))
    notebook = translate(notebook, language, translations) if language != "en" else notebook
    notebook.metadata["chestxray"] = {"language": language}  # what the grader answers a student in
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
        notebook.cells.insert(where + 1, nbformat.v4.new_code_cell(text, metadata={"tags": ["injected-parameters"]}))
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
    nbformat.write(notebook, out)
    return notebook


def text_outputs(notebook):
    """All text a notebook printed, joined (for checks on executed notebooks)."""
    texts = (output.get("text") or output.get("data", {}).get("text/plain")
             for cell in notebook.cells for output in cell.get("outputs", []))
    return "\n".join(text for text in texts if text)
