"""How a graded function is called on a case's inputs, and its result turned into plain data.

The only part of the exercises that enters the grader's sandbox (`sandbox.py`): no case, no
reference answer, no comparison. Imports nothing but NumPy and pandas.
"""

import numpy as np
import pandas as pd

FUNCTIONS = {"UNQ_C1": "check_for_leakage", "UNQ_C2": "compute_class_freqs", "UNQ_C3": "get_weighted_loss"}
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
            array = np.asarray(convert(value), dtype=np.float64)
        except Exception:
            continue
        return array
    return None


def _keras_numpy(value):
    import sys

    keras = sys.modules.get("keras")  # only where the student's code loaded it
    return keras.ops.convert_to_numpy(value)


# ----------------------------------------------------------------------------
# Calling a function on a case's inputs.

def call(key, function, inputs):
    """What `function` (the student's) returns for a case's inputs."""
    if key == "UNQ_C1":
        column = inputs.get("column", "patient_id")
        df1, df2 = pd.DataFrame({column: inputs["first"]}), pd.DataFrame({column: inputs["second"]})
        if inputs.get("extra"):
            df1[inputs["extra"]], df2[inputs["extra"]] = range(len(df1)), range(len(df2))
        return function(df1, df2, column)
    if key == "UNQ_C2":
        return function(np.array(inputs["labels"], dtype=inputs.get("dtype", "int64")))
    if key == "UNQ_C3":
        y, pred = np.array(inputs["y"], np.float32), np.array(inputs["pred"], np.float32)
        loss = function(np.array(inputs["pos"], np.float64), np.array(inputs["neg"], np.float64), inputs["epsilon"])
        return loss(y, pred)
    raise KeyError(f"no exercise {key!r}: the exercises are {sorted(FUNCTIONS)}")
