"""The three graded exercises in one place: their cases, reference answers, and how a student's
function is called on a case and its result turned into plain data.

A case is plain data (JSON): {"name", "inputs", "hint"} and, for hidden cases, an optional
"expected" (otherwise the reference solution computes it). `call(key, function, inputs)` turns
the inputs into the exercise's arguments (frames, arrays) and returns what the function gives;
`plain(value)` turns that into JSON-able data; `compare(key, got, expected)` decides a case.

Both the public tests (`public_tests.py`, in the student's notebook) and the grader
(`chestxray.grade`) use these. Only `exercise_calls.py` (call and plain) enters the
grader's sandbox: the cases' answers, the reference and the comparison stay in the
grader's own process.
"""

import numpy as np

from .exercise_calls import FUNCTIONS, call, plain  # noqa: F401  (the part the sandbox sees)
from .i18n import _


def show(p):
    """A plain result as a student reads it."""
    if p["type"] == "bool":
        return f"{p['value']} (bool)"
    if p["type"] == "tuple":
        return "(" + ", ".join(show(item) for item in p["items"]) + ")"
    if p["type"] == "array":
        values = np.array([np.nan if v is None else v for v in p["values"]]).reshape(p["shape"])
        if values.ndim == 0:
            return f"{values.item():.7g}"
        return _("array of shape {shape}: {values}").format(shape=tuple(p["shape"]),
                                                           values=np.array2string(values, precision=7))
    return f"{p['text']} ({p['python_type']})"


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
    """Whether a plain result `got` answers a case whose plain answer is `expected`."""
    if key == "UNQ_C3":  # a loss: one number, to a relative 1e-4 (float32 arithmetic in any backend)
        return _equal(got, expected, 1e-4, relative=True)
    return _equal(got, expected, 1e-6, relative=False)


# ----------------------------------------------------------------------------
# Reference answers.

def reference(key, inputs):
    """The right answer to a case, as plain data."""
    if key == "UNQ_C1":
        return plain(bool(set(inputs["first"]) & set(inputs["second"])))
    if key == "UNQ_C2":
        labels = np.array(inputs["labels"], dtype=np.float64)
        positive = labels.sum(axis=0) / labels.shape[0]
        return plain((positive, 1 - positive))
    if key == "UNQ_C3":
        y, pred = np.array(inputs["y"], np.float64), np.array(inputs["pred"], np.float64)
        pos, neg, eps = np.array(inputs["pos"]), np.array(inputs["neg"]), inputs["epsilon"]
        per_class = -(pos * y * np.log(pred + eps) + neg * (1 - y) * np.log(1 - pred + eps))
        return plain(float(per_class.mean(axis=0).sum()))
    raise KeyError(f"no exercise {key!r}: the exercises are {sorted(FUNCTIONS)}")


def with_answers(key, cases):
    """The cases with "expected" filled in by the reference where they do not give it."""
    return [{**case, "expected": case.get("expected") or reference(key, case["inputs"])} for case in cases]


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


def check_cases(cases, source="cases"):
    """Clear errors for a malformed case table ({"UNQ_C1": [case, ...], ...})."""
    if not isinstance(cases, dict):
        raise ValueError(f"{source}: expected an object keyed by exercise ({', '.join(FUNCTIONS)})")
    for key, items in cases.items():
        if key not in FUNCTIONS:
            raise ValueError(f"{source}: unknown exercise {key!r}; the exercises are {', '.join(FUNCTIONS)}")
        for i, case in enumerate(items):
            missing = [field for field in ("name", "inputs") if field not in case]
            if missing:
                raise ValueError(f"{source}: {key} case {i}: missing {missing}")
            try:
                reference(key, case["inputs"])
            except Exception as error:
                raise ValueError(f"{source}: {key} case {i} ({case['name']}): its inputs do not fit the exercise: "
                                 f"{type(error).__name__}: {error}") from None
