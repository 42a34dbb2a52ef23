"""The graded exercises, one record each (`EXERCISES`): how a student's function is called on a
case, its reference answer, the inputs a case may give, how answers compare, the public cases.

A case is plain data (JSON): {"name", "inputs", "hint"} and, for hidden cases, an optional
"expected" (otherwise the reference solution computes it). `call(key, function, inputs)` turns
the inputs into the exercise's arguments (frames, arrays) and returns what the function gives;
`plain(value)` turns that into JSON-able data; `compare(key, got, expected)` decides a case.

Both the public tests (`public_tests.py`, in the student's notebook) and the grader
(`chestxray.grade`) use these. Only `exercise_calls.py` (call and plain) enters the
grader's sandbox: the cases' answers, the reference and the comparison stay in the
grader's own process.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import i18n
from .exercise_calls import CALLS, FUNCTIONS, MAX_ITEMS, MAX_VALUES, Call, call, plain  # noqa: F401  (the sandbox's part)


def show(p, _=None):
    """A plain result as a student reads it, in the language of `_` (the current one by default)."""
    _ = _ or i18n._
    if p["type"] == "bool":
        return f"{p['value']} (bool)"
    if p["type"] == "tuple":
        return "(" + ", ".join(show(item, _) for item in p["items"]) + ")"
    if p["type"] == "array":
        values = np.array([np.nan if v is None else v for v in p["values"]]).reshape(p["shape"])
        if values.ndim == 0:
            return f"{values.item():.7g}"
        return _("array of shape {shape}: {values}").format(shape=tuple(p["shape"]),
                                                           values=np.array2string(values, precision=7))
    if p["type"] == "large":
        return _("{python_type} of shape {shape}: too large to be an answer").format(
            python_type=p["python_type"], shape=tuple(p["shape"]))
    return f"{p['text']} ({p['python_type']})"


def error_text(error, _=str):
    """An error record (type, message, the student's line) as one line."""
    where = ""
    if error.get("line"):
        where = (_("line {number}: {code}") if error.get("code") else _("line {number}")).format(
            number=error["line"], code=error.get("code"))
        where = f" ({where})"
    return f"{error['type']}: {error['message']}{where}"


def failure(row, _=None):
    """A failed case as (label, text) lines, in the language of `_`: what went wrong (the error
    raised, why it stopped, or expected against got), then the hint. The notebook's tests, the
    feedback files and grades.csv all say a failure with these."""
    _ = _ or i18n._
    if "error" in row:
        lines = [(_("raised"), error_text(row["error"], _))]
    elif "failed" in row:
        lines = [("", i18n.say(row["failed"], _))]
    else:
        lines = [(_("Expected:"), show(row["expected"], _)), (_("Got:"), show(row["got"], _))]
    return lines + [(_("Hint:"), _(row["hint"]))]


# ----------------------------------------------------------------------------
# Comparing.

def _equal(got, expected, tolerance, relative):
    if expected["type"] == "bool":
        return got["type"] == "bool" and got["value"] == expected["value"]
    if expected["type"] == "tuple":
        return (got["type"] == "tuple" and got["length"] == expected["length"]
                and all(_equal(g, e, tolerance, relative) for g, e in zip(got["items"], expected["items"])))
    if expected["type"] == "array":
        if got["type"] != "array" or got["shape"] != expected["shape"] or None in got["values"]:
            return False
        g, e = np.array(got["values"], dtype=np.float64), np.array(expected["values"], dtype=np.float64)
        scale = np.maximum(1.0, np.abs(e)) if relative else 1.0
        return bool(np.all(np.abs(g - e) <= tolerance * scale))
    return False


def compare(key, got, expected):
    """Whether a plain result `got` answers a case of exercise `key` whose plain answer is `expected`."""
    exercise = EXERCISES[key]
    return _equal(got, expected, exercise.tolerance, exercise.relative)


# ----------------------------------------------------------------------------
# Reference answers, and the inputs a case may give.

def reference(key, inputs):
    """The right answer to a case, as plain data."""
    if key not in EXERCISES:
        raise KeyError(f"no exercise {key!r}: the exercises are {sorted(EXERCISES)}")
    return plain(EXERCISES[key].reference(inputs))


def _leakage_answer(inputs):
    return bool(set(inputs["first"]) & set(inputs["second"]))


def _frequencies_answer(inputs):
    labels = np.array(inputs["labels"], dtype=np.float64)
    positive = labels.sum(axis=0) / labels.shape[0]
    return positive, 1 - positive


def _loss_answer(inputs):
    y, pred = np.array(inputs["y"], np.float64), np.array(inputs["pred"], np.float64)
    pos, neg, eps = np.array(inputs["pos"]), np.array(inputs["neg"]), inputs["epsilon"]
    per_class = -(pos * y * np.log(pred + eps) + neg * (1 - y) * np.log(1 - pred + eps))
    return float(per_class.mean(axis=0).sum())


# What a field of a case's inputs may hold: (test of the value, None where the case leaves it out; what it must be).
IDS = (lambda v: isinstance(v, list) and all(type(x) in (int, str) for x in v), "a list of patient ids (integers "
       "or strings)")
NAME = (lambda v: v is None or _text(v, 100), "a column name (a string)")
NUMBER = (lambda v: type(v) in (int, float) and bool(np.isfinite(v)), "a number")
MATRIX = (lambda v: (isinstance(v, list) and v != [] and all(isinstance(r, list) and r != [] for r in v)
                     and len({len(r) for r in v}) == 1 and all(NUMBER[0](x) for r in v for x in r)),
          "a non-empty rectangular list of lists of numbers")
ROW = (lambda v: MATRIX[0]([v]), "a non-empty list of numbers")
DTYPE = (lambda v: v in (None, "int64", "int32", "float32", "float64", "bool"), "one of int64, int32, float32, "
         "float64, bool")


def _loss_shapes(inputs):
    """Why the loss's inputs do not fit together, or None."""
    if np.shape(inputs["pred"]) != np.shape(inputs["y"]):
        return "'pred' must have the shape of 'y'"
    if not len(inputs["pos"]) == len(inputs["neg"]) == len(inputs["y"][0]):
        return "'pos' and 'neg' must have one weight per column of 'y'"
    return None


def with_answers(key, cases):
    """The cases with "expected" filled in by the reference where they do not give it."""
    return [{**case, "expected": case["expected"] if "expected" in case else reference(key, case["inputs"])}
            for case in cases]


# ----------------------------------------------------------------------------
# The public cases: the course's examples first, then cases that catch the usual mistakes.

def _leakage(name, first, second, hint, column="patient_id", extra=None):
    return {"name": name, "inputs": {"first": first, "second": second, "column": column, "extra": extra},
            "hint": hint}


_OTHER = [[1, 0, 0, 1], [0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 0, 1], [0, 0, 1, 1], [0, 0, 0, 1], [1, 0, 1, 1]]
COURSE_LABELS = [[1, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1], [1, 0, 1]]
COURSE_Y = [[1, 1, 1], [1, 1, 0], [0, 1, 0], [1, 0, 1]]
COURSE_W_POS, COURSE_W_NEG = [0.25, 0.25, 0.5], [0.75, 0.75, 0.5]


def _loss(name, y, pred, pos, neg, epsilon, hint):
    rows = len(y)
    pred = [[pred] * len(y[0])] * rows if isinstance(pred, float) else pred
    return {"name": name, "inputs": {"y": y, "pred": pred, "pos": list(pos), "neg": list(neg), "epsilon": epsilon},
            "hint": hint}


def _random_loss_inputs():
    rng = np.random.default_rng(7)
    y = (rng.random((6, 5)) < 0.4).astype(np.float32)
    pred = rng.uniform(0.05, 0.95, (6, 5)).astype(np.float32)  # float32: what the student's function gets
    pos = rng.uniform(0.1, 0.9, 5)
    return y.tolist(), pred.astype(np.float64).tolist(), pos.tolist(), (1 - pos).tolist()


_Y5, _PRED5, _POS5, _NEG5 = _random_loss_inputs()

PUBLIC = {
    "UNQ_C1": [
        _leakage("one shared patient, course example", [0, 1, 2], [2, 3, 4],
                 "Compare the sets of patient IDs of the two frames; any patient in both means leakage."),
        _leakage("no shared patient, course example", [0, 1, 2], [3, 4, 5],
                 "Return False when the intersection of the two sets of patients is empty."),
        _leakage("the column is given by patient_col", ["a7", "b2"], ["c9", "a7", "d1"],
                 "Use df[patient_col], not a column name written into the function.", column="PatientId"),
        _leakage("frames of different sizes, repeated patients, no overlap", [5, 5, 5, 6], [7, 8, 8],
                 "Repeated IDs within one frame are not leakage: compare unique patients across frames."),
        _leakage("a shared patient in the last rows only", list(range(100)), list(range(99, 120)),
                 "Look at every row, not only the first ones."),
        _leakage("row index and other columns do not matter", [1, 2], [3, 4],
                 "Compare the patient column only, not the index or other columns.", extra="Image"),
        _leakage("the result is a bool", [1], [1],
                 "Return True or False (a bool), not the set of shared patients or their count."),
    ],
    "UNQ_C2": [
        {"name": "course example (5 examples, 3 classes)", "inputs": {"labels": COURSE_LABELS},
         "hint": "Positive frequency: the number of 1s in each column divided by the number of rows; "
                 "negative frequency: 1 minus it."},
        {"name": "7 examples, 4 classes, a class never and a class always positive", "inputs": {"labels": _OTHER},
         "hint": "Do not hard-code N or the number of classes: N is labels.shape[0]; sum over axis 0 (rows)."},
        {"name": "a single example", "inputs": {"labels": [[0, 1]]},
         "hint": "Divide by the number of rows, even when it is 1."},
        {"name": "float labels", "inputs": {"labels": _OTHER, "dtype": "float32"},
         "hint": "Work on the array you are given; float labels give the same frequencies."},
    ],
    "UNQ_C3": [
        _loss("course example, y_pred_1, epsilon 1", COURSE_Y, 0.7, COURSE_W_POS, COURSE_W_NEG, 1,
              "-(w_p * y * log(f + epsilon) + w_n * (1 - y) * log(1 - f + epsilon)), mean over examples for "
              "each class, summed over classes. Use the epsilon the loss is given. (With epsilon = 1 both "
              "logs are of numbers above 1, so this loss is negative.)"),
        _loss("course example, y_pred_2, epsilon 1", COURSE_Y, 0.3, COURSE_W_POS, COURSE_W_NEG, 1,
              "Positive examples take pos_weights, negative examples neg_weights: check they are not swapped."),
        _loss("6 examples, 5 classes, other weights, epsilon 1", _Y5, _PRED5, _POS5, _NEG5, 1,
              "Loop over len(pos_weights) classes and take the mean over however many examples the batch "
              "has: nothing may be fixed to the example's 4 x 3."),
        _loss("the same with a small epsilon", _Y5, _PRED5, _POS5, _NEG5, 1e-7,
              "Add epsilon inside both logs: log(y_pred + epsilon) and log(1 - y_pred + epsilon)."),
        _loss("a batch of one example", _Y5[:1], _PRED5[:1], _POS5, _NEG5, 1e-7,
              "The mean over the batch must work for a batch of one."),
        _loss("mean over examples, not sum", COURSE_Y * 3, 0.7, COURSE_W_POS, COURSE_W_NEG, 1,
              "Repeating the batch must not change the loss: take the mean over examples (axis 0), not the sum."),
    ],
}


@dataclass(frozen=True)
class Exercise:
    """A graded exercise, whole: the sandbox's part (`exercise_calls.Call`: the function's name,
    how it is called, whether it needs Keras), the reference answer, the fields a case's inputs
    may have, how answers compare, and the public cases. Adding an exercise is one record here
    (and its `Call`), one notebook cell, its test function and its translations."""

    call: Call
    reference: Callable  # a case's inputs -> the right answer (anything `plain` takes)
    fields: dict  # {field of a case's inputs: (test, what it must be)}
    cases: list  # the public cases
    tolerance: float = 1e-6
    relative: bool = False  # the tolerance relative to the answer's size (where above 1)
    agree: Callable = lambda inputs: None  # why well-formed fields do not fit together, or None


EXERCISES = {
    "UNQ_C1": Exercise(CALLS["UNQ_C1"], _leakage_answer, {"first": IDS, "second": IDS, "column": NAME, "extra": NAME},
                       PUBLIC["UNQ_C1"]),
    "UNQ_C2": Exercise(CALLS["UNQ_C2"], _frequencies_answer, {"labels": MATRIX, "dtype": DTYPE}, PUBLIC["UNQ_C2"]),
    # a loss: one number, to a relative 1e-4 (float32 arithmetic in any backend)
    "UNQ_C3": Exercise(CALLS["UNQ_C3"], _loss_answer, {"y": MATRIX, "pred": MATRIX, "pos": ROW, "neg": ROW,
                                                       "epsilon": NUMBER},
                       PUBLIC["UNQ_C3"], tolerance=1e-4, relative=True, agree=_loss_shapes),
}


# ----------------------------------------------------------------------------
# Checking what comes from outside: the student's process (anything) and the instructor's file.

MAX_CASES, MAX_TEXT = 200, 1000


def check_plain(p, depth=0):
    """`p` if it is a well-formed plain result, as `plain` makes one; otherwise ValueError saying
    what is wrong. The student's process can send anything: nothing here trusts its shape."""
    if depth > 3 or not isinstance(p, dict):
        raise ValueError("not a result")
    kind, fields = p.get("type"), set(p)
    if kind == "bool" and fields == {"type", "value"} and isinstance(p["value"], bool):
        return p
    if kind == "tuple" and fields == {"type", "items", "length"}:
        items, length = p["items"], p["length"]
        if isinstance(items, list) and type(length) is int and length == len(items) <= MAX_ITEMS:
            return {**p, "items": [check_plain(item, depth + 1) for item in items]}
        raise ValueError("a tuple whose items do not match its length")
    if kind == "array" and fields <= {"type", "shape", "values", "python_type"} and _text(p.get("python_type", "")):
        shape, values = p.get("shape"), p.get("values")
        if (isinstance(shape, list) and len(shape) <= 8 and all(type(n) is int and 0 <= n <= MAX_VALUES for n in shape)
                and isinstance(values, list) and len(values) == int(np.prod(shape)) <= MAX_VALUES
                and all(v is None or (type(v) in (int, float) and np.isfinite(v)) for v in values)):
            return p
        raise ValueError("an array whose shape and values do not match")
    if (kind == "large" and fields == {"type", "python_type", "shape"} and _text(p["python_type"])
            and isinstance(p["shape"], list) and len(p["shape"]) <= 64 and all(type(n) is int and n >= 0 for n in p["shape"])):
        return p
    if kind == "other" and fields == {"type", "python_type", "text"} and _text(p["python_type"]) and _text(p["text"]):
        return p
    raise ValueError("not a result")


def _text(value, limit=MAX_TEXT):
    return isinstance(value, str) and len(value) <= limit


def _check_error(error):
    if (isinstance(error, dict) and set(error) <= {"type", "message", "line", "code"} and _text(error.get("type"), 100)
            and _text(error.get("message")) and _text(error.get("code", ""), 300)
            and (type(error.get("line", 1)) is int and error.get("line", 1) >= 1)):
        return error
    raise ValueError("a malformed error record")


def read_student(message, stage):
    """What the student's process said at `stage` ("cell": defining the function, "case": one
    case), checked: {"defined", "notes"}, {"cell_error"}, {"output"} or {"raised"}; ValueError
    for anything else."""
    if not isinstance(message, dict):
        raise ValueError("not a message")
    if stage == "cell" and set(message) == {"defined", "notes"} and message["defined"] is True:
        notes = message["notes"]
        if isinstance(notes, list) and len(notes) <= 10:
            return {"defined": True, "notes": [_check_error(note) for note in notes]}
    if stage == "cell" and set(message) == {"cell_error"}:
        return {"cell_error": _check_error(message["cell_error"])}
    if stage == "case" and set(message) == {"output"}:
        return {"output": check_plain(message["output"])}
    if stage == "case" and set(message) == {"raised"}:
        return {"raised": _check_error(message["raised"])}
    raise ValueError("not a message the grader knows")


def _same_form(a, b):
    if a["type"] != b["type"]:
        return False
    if a["type"] == "tuple":
        return a["length"] == b["length"] and all(_same_form(x, y) for x, y in zip(a["items"], b["items"]))
    return a["type"] != "array" or a["shape"] == b["shape"]


def _check_inputs(key, inputs):
    """The inputs' fields, types and shapes, so that every student's call gets what the exercise promises."""
    exercise = EXERCISES[key]
    if not isinstance(inputs, dict) or not set(inputs) <= set(exercise.fields):
        raise ValueError(f"inputs must be an object with fields among {sorted(exercise.fields)}")
    for name, (test, what) in exercise.fields.items():
        if not test(inputs.get(name)):
            raise ValueError(f"{name!r} must be {what}")
    if exercise.agree(inputs):
        raise ValueError(exercise.agree(inputs))


def check_cases(cases, source="cases"):
    """Clear errors for a malformed case table ({"UNQ_C1": [case, ...], ...}), naming the case."""
    if not isinstance(cases, dict):
        raise ValueError(f"{source}: expected an object keyed by exercise ({', '.join(FUNCTIONS)})")
    for key, items in cases.items():
        if key not in FUNCTIONS:
            raise ValueError(f"{source}: unknown exercise {key!r}; the exercises are {', '.join(FUNCTIONS)}")
        if not isinstance(items, list) or len(items) > MAX_CASES:
            raise ValueError(f"{source}: {key}: expected a list of at most {MAX_CASES} cases")
        for i, case in enumerate(items):
            where = f"{source}: {key} case {i}"
            if not isinstance(case, dict):
                raise ValueError(f"{where}: expected an object with name, inputs, hint, optional expected")
            unknown = set(case) - {"name", "inputs", "hint", "expected"}
            missing = [field for field in ("name", "inputs") if field not in case]
            if missing or unknown:
                raise ValueError(f"{where}: " + (f"missing {missing}" if missing else f"unknown fields {sorted(unknown)}"))
            if not (_text(case["name"], 200) and case["name"].strip()) or not _text(case.get("hint", "")):
                raise ValueError(f"{where}: 'name' (1 to 200 characters) and 'hint' must be text")
            where += f" ({case['name']})"
            try:
                _check_inputs(key, case["inputs"])
                answer = reference(key, case["inputs"])
            except (ValueError, TypeError, KeyError, RecursionError) as error:
                raise ValueError(f"{where}: its inputs do not fit the exercise: {error}") from None
            if "expected" in case:
                try:
                    expected = check_plain(case["expected"])
                except ValueError as error:
                    raise ValueError(f"{where}: 'expected' is not a result ({error}); leave it out and the "
                                     "reference computes it") from None
                if not _same_form(expected, answer):
                    raise ValueError(f"{where}: 'expected' is not of the answer's form ({show(answer)})")
