"""The graded exercises as the sandbox knows them, one record each: the function's name, how a
case's inputs become its arguments, whether it needs Keras; and results turned into plain data.

The only part of the exercises that enters the grader's sandbox (`sandbox.py`): no case, no
reference answer, no comparison (`exercises.py` adds those to each record). Imports nothing
but the standard library, NumPy and pandas.
"""

import re
import traceback
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

MAX_VALUES = 10_000  # a result larger than this is not an answer to any case
MAX_ITEMS = 16  # nor a tuple longer than this


# ----------------------------------------------------------------------------
# Plain data out of whatever a function returns.

def plain(value):
    """JSON-able description of a result: bools stay bools, numbers and arrays (of any
    tensor library) become {"shape", "values"}, tuples and lists keep their items."""
    if isinstance(value, (bool, np.bool_)):
        return {"type": "bool", "value": bool(value)}
    if isinstance(value, (tuple, list)) and not _numeric_list(value):
        items = list(value)  # one pass: the items and their count agree, whatever the class overrides
        if len(items) > MAX_ITEMS:
            return {"type": "large", "python_type": type(value).__name__, "shape": [len(items)]}
        return {"type": "tuple", "items": [plain(v) for v in items], "length": len(items)}
    array = _as_array(value)
    if array is not None:
        if array.size > MAX_VALUES:
            return {"type": "large", "python_type": type(value).__name__, "shape": list(array.shape)}
        return {"type": "array", "shape": list(array.shape),
                "values": [None if not np.isfinite(v) else float(v) for v in array.ravel()],
                "python_type": type(value).__name__}
    return {"type": "other", "python_type": type(value).__name__, "text": repr(value)[:300]}


def _numeric_list(value):
    return len(value) > 0 and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                  for v in value)


def _as_array(value):
    """A float64 array from numbers, arrays and tensors (numpy(), or Keras' convert_to_numpy)."""
    if isinstance(value, (set, frozenset, dict, str, bytes)) or value is None:
        return None
    for convert in (lambda v: v, lambda v: v.numpy(), _keras_numpy):
        try:
            return np.asarray(convert(value), dtype=np.float64)
        except Exception:
            pass
    return None


def _keras_numpy(value):
    import sys

    keras = sys.modules.get("keras")  # only where the student's code loaded it
    return keras.ops.convert_to_numpy(value)


# ----------------------------------------------------------------------------
# The exercises: how each function is called on a case's inputs.

def _leakage(function, inputs):
    column = inputs.get("column") or "patient_id"
    df1, df2 = pd.DataFrame({column: inputs["first"]}), pd.DataFrame({column: inputs["second"]})
    if inputs.get("extra"):
        df1[inputs["extra"]], df2[inputs["extra"]] = range(len(df1)), range(len(df2))
    return function(df1, df2, column)


def _frequencies(function, inputs):
    return function(np.array(inputs["labels"], dtype=inputs.get("dtype", "int64")))


def _loss(function, inputs):
    y, pred = np.array(inputs["y"], np.float32), np.array(inputs["pred"], np.float32)
    loss = function(np.array(inputs["pos"], np.float64), np.array(inputs["neg"], np.float64), inputs["epsilon"])
    return loss(y, pred)


@dataclass(frozen=True)
class Call:
    """A graded exercise as the sandbox sees it."""

    function: str  # the name the notebook's cell defines
    call: Callable  # (the student's function, a case's inputs) -> what it returns
    needs_keras: bool = False  # the sandbox imports Keras before the cell runs


CALLS = {"UNQ_C1": Call("check_for_leakage", _leakage), "UNQ_C2": Call("compute_class_freqs", _frequencies),
         "UNQ_C3": Call("get_weighted_loss", _loss, needs_keras=True)}
FUNCTIONS = {key: exercise.function for key, exercise in CALLS.items()}


def marked(source, key):
    """Whether a cell carries the marker of exercise `key` ("# UNQ_C1 ...")."""
    return re.search(rf"#\s*{re.escape(key)}\b", source) is not None


def error_record(error, is_student, source=None):
    """Type, message and the student's line of an exception: the deepest frame whose file name
    `is_student` accepts (the cell's name in the sandbox; not a library file in the notebook),
    its code read from `source` (the cell) where given."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if is_student(frame.filename)]
    if isinstance(error, SyntaxError) and error.lineno and is_student(error.filename or ""):
        frames = [traceback.FrameSummary(error.filename, error.lineno, "", line=error.text or "")]
    where = {}
    if frames:
        lines = source.splitlines() if source is not None else None
        number, code = frames[-1].lineno, frames[-1].line
        if lines is not None:
            code = lines[number - 1] if 0 < number <= len(lines) else None
        if code is not None:
            where = {"line": number, "code": code.strip()[:200]}
    return {"type": type(error).__name__, "message": str(error)[:500], **where}


def call(key, function, inputs):
    """What `function` (the student's) returns for a case's inputs."""
    if key not in CALLS:
        raise KeyError(f"no exercise {key!r}: the exercises are {sorted(CALLS)}")
    return CALLS[key].call(function, inputs)
