"""Public tests of the three graded exercises, called from the notebook:

    check_for_leakage_test(check_for_leakage)
    compute_class_freqs_test(compute_class_freqs)
    get_weighted_loss_test(get_weighted_loss, epsilon)

Each prints the course's example and the student's output for it, then runs
further cases of other shapes and sizes that catch the usual wrong answers,
and prints "All tests passed." only when all of them pass. With
`return_failures=True` (the grader) each returns the list of failure messages.
"""

import numpy as np
import pandas as pd

from test_utils import run_cases


# ----------------------------------------------------------------------------
# Exercise 1: check_for_leakage(df1, df2, patient_col) -> bool

def _frames(first, second, column="patient_id"):
    return pd.DataFrame({column: first}), pd.DataFrame({column: second})


def check_for_leakage_test(target, return_failures=False):
    examples = [("Test Case 1", [0, 1, 2], [2, 3, 4]), ("Test Case 2", [0, 1, 2], [3, 4, 5])]
    for title, first, second in examples:
        df1, df2 = _frames(first, second)
        print(title + "\n")
        print("df1")
        print(df1)
        print("df2")
        print(df2)
        try:
            print(f"leakage output: {target(df1, df2, 'patient_id')}\n")
        except Exception as error:
            print(f"leakage output: raised {type(error).__name__}: {error}\n")
        print("-------------------------------------")

    def case(name, first, second, expected, hint, column="patient_id", extra=None):
        def run(f):
            df1, df2 = _frames(first, second, column)
            if extra:
                df1[extra], df2[extra] = range(len(df1)), range(len(df2))
            return f(df1, df2, column)
        return {"name": name, "run": run, "expected": expected, "hint": hint}

    cases = [
        case("one shared patient, course example", [0, 1, 2], [2, 3, 4], True,
             "Compare the sets of patient IDs of the two frames; any patient in both means leakage."),
        case("no shared patient, course example", [0, 1, 2], [3, 4, 5], False,
             "Return False when the intersection of the two sets of patients is empty."),
        case("the column is given by patient_col", ["a7", "b2"], ["c9", "a7", "d1"], True,
             "Use df[patient_col], not a column name written into the function.", column="PatientId"),
        case("frames of different sizes, repeated patients, no overlap", [5, 5, 5, 6], [7, 8, 8], False,
             "Repeated IDs within one frame are not leakage: compare unique patients across frames."),
        case("a shared patient in the last rows only", list(range(100)), list(range(99, 120)), True,
             "Look at every row, not only the first ones."),
        case("row index and other columns do not matter", [1, 2], [3, 4], False,
             "Compare the patient column only, not the index or other columns.", extra="Image"),
        case("the result is a bool", [1], [1], True,
             "Return True or False (a bool), not the set of shared patients or their count."),
    ]
    failures = run_cases(cases, target)
    return failures if return_failures else None


# ----------------------------------------------------------------------------
# Exercise 2: compute_class_freqs(labels) -> (positive_frequencies, negative_frequencies)

def compute_class_freqs_test(target, return_failures=False):
    labels = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1], [1, 0, 1]])
    print(f"Labels:\n{labels}\n")
    try:
        pos, neg = target(labels)
        print(f"Pos Freqs: {pos}")
        print(f"Neg Freqs: {neg}\n")
    except Exception as error:
        print(f"compute_class_freqs raised {type(error).__name__}: {error}\n")

    other = np.array([[1, 0, 0, 1], [0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 0, 1],
                      [0, 0, 1, 1], [0, 0, 0, 1], [1, 0, 1, 1]])

    def case(name, matrix, hint):
        matrix = np.asarray(matrix)
        positive = matrix.sum(axis=0) / matrix.shape[0]
        return {"name": name, "run": lambda f: tuple(np.asarray(v, dtype=np.float64) for v in f(matrix.copy())),
                "expected": (positive, 1 - positive), "hint": hint}

    cases = [
        case("course example (5 examples, 3 classes)", labels,
             "Positive frequency: the number of 1s in each column divided by the number of rows; "
             "negative frequency: 1 minus it."),
        case("7 examples, 4 classes, a class never and a class always positive", other,
             "Do not hard-code N or the number of classes: N is labels.shape[0]; sum over axis 0 (rows)."),
        case("a single example", [[0, 1]], "Divide by the number of rows, even when it is 1."),
        case("float labels", other.astype(np.float32),
             "Work on the array you are given; float labels give the same frequencies."),
    ]
    failures = run_cases(cases, target)
    return failures if return_failures else None


# ----------------------------------------------------------------------------
# Exercise 3: get_weighted_loss(pos_weights, neg_weights, epsilon) -> loss(y_true, y_pred)

def _reference_loss(y_true, y_pred, w_pos, w_neg, epsilon):
    """The exercise's definition: per class, the mean over examples of the weighted
    cross-entropy with epsilon inside the logs, summed over classes."""
    per_class = -(w_pos * y_true * np.log(y_pred + epsilon) + w_neg * (1 - y_true) * np.log(1 - y_pred + epsilon))
    return float(per_class.mean(axis=0).sum())


def _as_float(value):
    """A scalar from whatever the loss returns (a tensor of any backend, a numpy value)."""
    try:
        import keras

        value = keras.ops.convert_to_numpy(value)
    except Exception:
        pass
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"the loss returned {array.size} values (shape {array.shape}), not one number")
    return float(array.reshape(()))


def get_weighted_loss_test(target, epsilon, return_failures=False):
    y_true = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 0], [1, 0, 1]], dtype=np.float32)
    w_p = np.array([0.25, 0.25, 0.5])
    w_n = np.array([0.75, 0.75, 0.5])
    y_pred_1 = np.full((4, 3), 0.7, dtype=np.float32)
    y_pred_2 = np.full((4, 3), 0.3, dtype=np.float32)
    print(f"y_true:\n{y_true}\n\nw_p:\n{w_p}\n\nw_n:\n{w_n}\n\ny_pred_1:\n{y_pred_1}\n\ny_pred_2:\n{y_pred_2}\n")
    print("If you weighted them correctly, you'd expect the two losses to be the same.")
    print("With epsilon = 1, your losses should be, L(y_pred_1) = -0.4956203 and L(y_pred_2) = -0.4956203\n")
    print("Your outputs:\n")
    try:
        loss = target(w_p, w_n, epsilon)
        first, second = _as_float(loss(y_true, y_pred_1)), _as_float(loss(y_true, y_pred_2))
        print(f"L(y_pred_1) = {first:.7f}")
        print(f"L(y_pred_2) = {second:.7f}")
        print(f"Difference: L(y_pred_1) - L(y_pred_2) = {first - second:.7f}\n")
    except Exception as error:
        print(f"the loss raised {type(error).__name__}: {error}\n")

    def case(name, y, pred, pos, neg, eps, hint):
        y, pred = np.asarray(y, np.float32), np.asarray(pred, np.float32)
        pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
        return {"name": name, "run": lambda f: _as_float(f(pos, neg, eps)(y, pred)),
                "expected": _reference_loss(y, pred, pos, neg, eps),
                "check": lambda got, expected: abs(got - expected) <= 1e-4 * max(1.0, abs(expected)),
                "hint": hint}

    rng = np.random.default_rng(7)
    y5 = (rng.random((6, 5)) < 0.4).astype(np.float32)
    pred5 = rng.uniform(0.05, 0.95, (6, 5))
    pos5 = rng.uniform(0.1, 0.9, 5)
    cases = [
        case("course example, y_pred_1, epsilon 1", y_true, y_pred_1, w_p, w_n, 1,
             "-(w_p * y * log(f + epsilon) + w_n * (1 - y) * log(1 - f + epsilon)), mean over examples for "
             "each class, summed over classes. Set epsilon = 1 in the cell above."),
        case("course example, y_pred_2, epsilon 1", y_true, y_pred_2, w_p, w_n, 1,
             "Positive examples take pos_weights, negative examples neg_weights: check they are not swapped."),
        case("6 examples, 5 classes, other weights, epsilon 1", y5, pred5, pos5, 1 - pos5, 1,
             "Loop over len(pos_weights) classes and take the mean over however many examples the batch "
             "has: nothing may be fixed to the example's 4 x 3."),
        case("the same with a small epsilon", y5, pred5, pos5, 1 - pos5, 1e-7,
             "Add epsilon inside both logs: log(y_pred + epsilon) and log(1 - y_pred + epsilon)."),
        case("a batch of one example", y5[:1], pred5[:1], pos5, 1 - pos5, 1e-7,
             "The mean over the batch must work for a batch of one."),
        case("mean over examples, not sum", np.tile(y_true, (3, 1)), np.tile(y_pred_1, (3, 1)), w_p, w_n, 1,
             "Repeating the batch must not change the loss: take the mean over examples (axis 0), not the sum."),
    ]
    failures = run_cases(cases, target)
    return failures if return_failures else None
