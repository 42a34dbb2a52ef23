"""Public tests of the three graded exercises, called from the notebook:

    check_for_leakage_test(check_for_leakage)
    compute_class_freqs_test(compute_class_freqs)
    get_weighted_loss_test(get_weighted_loss, epsilon)

Each prints the course's example and the student's output for it, then runs
further cases of other shapes and sizes that catch the usual wrong answers
(`chestxray.exercises.PUBLIC`), and prints "All tests passed." only when all of
them pass. With `return_failures=True` each returns the list of failure messages.
The grader (`python -m chestxray grade`) runs the same cases, and hidden ones, in
a sandbox, and does not use this file.
"""

import numpy as np
import pandas as pd

from chestxray.exercises import COURSE_LABELS, COURSE_W_NEG, COURSE_W_POS, COURSE_Y
from chestxray.i18n import _, number
from test_utils import run_cases


# ----------------------------------------------------------------------------
# Exercise 1: check_for_leakage(df1, df2, patient_col) -> bool

def _frames(first, second, column="patient_id"):
    return pd.DataFrame({column: first}), pd.DataFrame({column: second})


def check_for_leakage_test(target, return_failures=False):
    examples = [(_("Test Case 1"), [0, 1, 2], [2, 3, 4]), (_("Test Case 2"), [0, 1, 2], [3, 4, 5])]
    for title, first, second in examples:
        df1, df2 = _frames(first, second)
        print(title + "\n")
        print("df1")
        print(df1)
        print("df2")
        print(df2)
        try:
            print(f"{_('leakage output:')} {target(df1, df2, 'patient_id')}\n")
        except Exception as error:
            print(_("{function} raised {error}").format(function="check_for_leakage",
                                                        error=f"{type(error).__name__}: {error}") + "\n")
        print("-------------------------------------")

    failures = run_cases("UNQ_C1", target)
    return failures if return_failures else None


# ----------------------------------------------------------------------------
# Exercise 2: compute_class_freqs(labels) -> (positive_frequencies, negative_frequencies)

def compute_class_freqs_test(target, return_failures=False):
    labels = np.array(COURSE_LABELS)
    print(f"{_('Labels:')}\n{labels}\n")
    try:
        pos, neg = target(labels)
        print(f"{_('Pos Freqs:')} {pos}")
        print(f"{_('Neg Freqs:')} {neg}\n")
    except Exception as error:
        print(_("{function} raised {error}").format(function="compute_class_freqs",
                                                    error=f"{type(error).__name__}: {error}") + "\n")

    failures = run_cases("UNQ_C2", target)
    return failures if return_failures else None


# ----------------------------------------------------------------------------
# Exercise 3: get_weighted_loss(pos_weights, neg_weights, epsilon) -> loss(y_true, y_pred)

def _as_float(value):
    """A scalar from whatever the loss returns (a tensor of any backend, a numpy value)."""
    try:
        import keras

        value = keras.ops.convert_to_numpy(value)
    except Exception:
        pass
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(_("the loss returned {n} values (shape {shape}), not one number: take the mean over the "
                           "examples of each class (ops.mean), then add the classes up").format(
                               n=array.size, shape=array.shape))
    return float(array.reshape(()))


def get_weighted_loss_test(target, epsilon, return_failures=False):
    y_true = np.array(COURSE_Y, dtype=np.float32)
    w_p, w_n = np.array(COURSE_W_POS), np.array(COURSE_W_NEG)
    y_pred_1 = np.full((4, 3), 0.7, dtype=np.float32)
    y_pred_2 = np.full((4, 3), 0.3, dtype=np.float32)
    print(f"y_true:\n{y_true}\n\nw_p:\n{w_p}\n\nw_n:\n{w_n}\n\ny_pred_1:\n{y_pred_1}\n\ny_pred_2:\n{y_pred_2}\n")
    print(_("If you weighted them correctly, you'd expect the two losses to be the same."))
    print(_("With epsilon = 1, your losses should be, L(y_pred_1) = -0.4956203 and L(y_pred_2) = -0.4956203"))
    print(_("(negative because epsilon = 1 makes both logs, log(f + 1) and log(2 - f), positive)") + "\n")
    print(_("Your outputs:") + "\n")
    try:
        loss = target(w_p, w_n, epsilon)
        first, second = _as_float(loss(y_true, y_pred_1)), _as_float(loss(y_true, y_pred_2))
        print(f"L(y_pred_1) = {number(first, 7)}")
        print(f"L(y_pred_2) = {number(second, 7)}")
        print(f"{_('Difference:')} L(y_pred_1) - L(y_pred_2) = {number(first - second, 7)}\n")
    except Exception as error:
        print(_("{function} raised {error}").format(function=_("the loss"),
                                                    error=f"{type(error).__name__}: {error}") + "\n")

    failures = run_cases("UNQ_C3", target)
    return failures if return_failures else None
