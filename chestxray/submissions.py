"""Students' notebooks, read as untrusted data: which files are submissions, what each one's
graded cells are, and why one cannot be graded.

Nothing here runs a student's code. A submission is a regular file (not a link, a FIFO or a
folder) whose name ends in .ipynb in any case, of at most `max_bytes`, UTF-8 JSON in the
notebook format 4. Its graded cell for an exercise is the code cell marked `# UNQ_Cn` that
defines the exercise's function; when several marked cells do, the last one is graded (the one
a top-to-bottom run leaves defined), a copy of the release's untouched template is passed over
while another remains, and the student and the instructor are told which cell was graded.
"""

import ast
import json
import os
import re
import stat
from dataclasses import dataclass, field

from .exercise_calls import FUNCTIONS, marked
from .i18n import LANGUAGES, N_

MAX_MB = 32
# Cell magics whose body is not Python: such a cell defines nothing.
NOT_PYTHON = {"bash", "sh", "script", "writefile", "file", "html", "javascript", "js", "latex", "markdown", "svg",
              "perl", "ruby", "system", "capture_output"}


@dataclass
class Submission:
    name: str  # the file's name as the system gives it (may hold undecodable bytes as surrogates)
    label: str = ""  # the name as people read it: undecodable bytes and control characters escaped
    cells: dict = field(default_factory=dict)  # {"UNQ_C1": source, ...}: what is graded
    notes: list = field(default_factory=list)  # (message, values) for the student and the instructor
    problem: tuple = ()  # why nothing could be graded: (msgid, values)
    language: str = ""  # of the notebook: "en", "pt-BR", or "" where it could not be read

    def __post_init__(self):
        self.label = self.label or printable(self.name)


def printable(name):
    """A file name as text anyone can read and write: bytes that are not UTF-8 as \\xNN,
    newlines and other control characters as escapes."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def find(folder):
    """The submissions' file names in `folder` (sorted), and the other entries' names."""
    names = sorted(os.listdir(folder))
    notebooks = [n for n in names if n.lower().endswith(".ipynb")]
    return notebooks, [n for n in names if n not in notebooks]


def read(folder, name, templates=None, max_bytes=MAX_MB * 2**20):
    """A `Submission`: its graded cells, or the problem that stops grading it."""
    submission = Submission(name)
    try:
        notebook = _load(os.path.join(folder, name), max_bytes)
    except Unreadable as error:
        submission.problem = error.message
        return submission
    metadata = notebook.get("metadata")
    settings = metadata.get("chestxray") if isinstance(metadata, dict) else None
    language = settings.get("language") if isinstance(settings, dict) else None
    submission.language = language if language in LANGUAGES else "en"
    submission.cells, submission.notes = graded_cells(_code_cells(notebook), templates or {})
    return submission


def _code_cells(notebook):
    """[(cell index, source)] of a notebook's code cells whose source reads as text."""
    code = [(i, _source(cell)) for i, cell in enumerate(notebook["cells"])
            if isinstance(cell, dict) and cell.get("cell_type") == "code"]
    return [(i, source) for i, source in code if source is not None]


class Unreadable(ValueError):
    """A notebook that cannot be graded; `message` is (msgid, values), said in the student's language."""

    def __init__(self, msgid, **values):
        super().__init__(msgid.format(**values))
        self.message = (msgid, values)


def _load(path, max_bytes):
    """The notebook as JSON data; `Unreadable` with what is wrong, never the file's content."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if os.path.islink(path):
            raise Unreadable(N_("not graded: a symbolic link, not the notebook file itself")) from None
        raise Unreadable(N_("not graded: cannot be opened ({why})"), why=error.strerror) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(N_("not graded: not a regular file (a folder, a FIFO or a device)"))
        if info.st_size > max_bytes:
            raise Unreadable(N_("not graded: larger than {mb} MB"), mb=max_bytes // 2**20)
        data = os.read(fd, max_bytes + 1)
        while len(data) <= max_bytes and (chunk := os.read(fd, max_bytes + 1 - len(data))):
            data += chunk  # a file still growing stops at the cap
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise Unreadable(N_("not graded: larger than {mb} MB"), mb=max_bytes // 2**20)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(N_("the notebook does not parse: not UTF-8 text (byte {byte})"), byte=error.start) from None
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise Unreadable(N_("the notebook does not parse: not valid JSON (line {line}, column {column})"),
                         line=error.lineno, column=error.colno) from None
    except RecursionError:
        raise Unreadable(N_("the notebook does not parse: JSON nested too deeply")) from None
    if not isinstance(notebook, dict) or notebook.get("nbformat") != 4 or not isinstance(notebook.get("cells"), list):
        raise Unreadable(N_("the notebook does not parse: not a Jupyter notebook of format 4 (an object with "
                            "nbformat 4 and a list of cells)"))
    return notebook


def _source(cell):
    source = cell.get("source")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    return source if isinstance(source, str) else None


def strip_magics(source):
    """Python without IPython's syntax: `%line` and `!shell` lines become `pass` (same indentation,
    same line numbers); a `%%magic` first line is dropped, and a cell magic whose body is not
    Python leaves nothing. A cell that already parses is left as it is."""
    try:
        ast.parse(source)
        return source
    except (SyntaxError, ValueError):
        pass
    lines = source.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].strip()[2:].split(" ")[0]
        if magic in NOT_PYTHON:
            return ""
        lines[first] = ""
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in lines)


def _defines(source, function):
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return re.search(rf"^\s*def\s+{function}\s*\(", source, re.M) is not None
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function
               for node in tree.body)


def _normal(source):
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def graded_cells(code, templates):
    """{"UNQ_Cn": source} from [(cell index, source)] of a notebook's code cells, and notes that
    say which cell was graded wherever more than one is marked."""
    cells, notes = {}, []
    for key, function in FUNCTIONS.items():
        tagged = [(i, strip_magics(source)) for i, source in code if marked(source, key)]
        if not tagged:
            continue
        defining = [(i, s) for i, s in tagged if _defines(s, function)] or tagged[:1]
        untouched = [(i, s) for i, s in defining if _normal(s) in templates.get(key, ())]
        if len(untouched) < len(defining):
            defining = [c for c in defining if c not in untouched]
        index, cells[key] = defining[-1]
        if len(tagged) > 1:  # a message and its values: feedback says it in the student's language
            notes.append((N_("{count} cells are marked {key} (cells {cells}): graded cell {cell}, the last that "
                          "defines {function} and is not the untouched template"),
                          {"count": len(tagged), "key": key, "cells": ", ".join(str(i + 1) for i, _source in tagged),
                           "cell": index + 1, "function": function}))
    return cells, notes


def cells_of(notebook, templates=None):
    """{"UNQ_Cn": source}: the graded cells of a notebook (JSON data or nbformat's)."""
    return graded_cells(_code_cells(notebook), templates or {})[0]


def templates(paths):
    """{"UNQ_Cn": {the release's graded cells, normalised}} from the student releases at `paths`."""
    found = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                notebook = json.load(f)
        except (OSError, ValueError):
            continue
        for _index, source in _code_cells(notebook):
            for key in FUNCTIONS:
                if marked(source, key):
                    found.setdefault(key, set()).add(_normal(source))
    return found
