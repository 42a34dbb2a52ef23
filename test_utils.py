"""The machinery behind public_tests.py: run named cases against a student's function and report.

Each case is a dict with:
  name      what is checked, shown when it fails
  run       a function of the student's function that returns what it gives ("got")
  expected  what it should give
  check     optional: a function (got, expected) -> bool; default: `values_equal`
  hint      what is usually wrong when this case fails

`run_cases` prints every failure with expected vs. got and the hint, and
"All tests passed." only when every case passes. It returns the list of
failure messages, which the grader records.
"""

import traceback

import numpy as np


def values_equal(got, expected, tolerance=1e-6):
    """Equal types of result (bool stays bool) and values, numbers to `tolerance`."""
    if isinstance(expected, (bool, np.bool_)):
        return isinstance(got, (bool, np.bool_)) and bool(got) == bool(expected)
    if isinstance(expected, tuple):
        return (isinstance(got, (tuple, list)) and len(got) == len(expected)
                and all(values_equal(g, e, tolerance) for g, e in zip(got, expected)))
    try:
        got_array, expected_array = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return got_array.shape == expected_array.shape and np.allclose(got_array, expected_array, atol=tolerance)


def _show(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}: {np.array2string(value, precision=7)}"
    return f"{value!r} ({type(value).__name__})"


def _where(error):
    """The student's line that raised: the deepest frame outside libraries and these test files."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if "site-packages" not in frame.filename and not frame.filename.endswith(
                  ("test_utils.py", "public_tests.py"))]
    return f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""


def run_cases(cases, target):
    """Run `cases` against `target`; print failures and the verdict; return the failure messages."""
    failures = []
    for case in cases:
        try:
            got = case["run"](target)
        except Exception as error:  # a student's function may raise anything: that case fails
            failures.append(f"{case['name']}: raised {type(error).__name__}: {error}{_where(error)}"
                            f"\n  Hint: {case['hint']}")
            continue
        check = case.get("check", values_equal)
        if not check(got, case["expected"]):
            failures.append(f"{case['name']}:\n  Expected: {_show(case['expected'])}\n  Got:      {_show(got)}"
                            f"\n  Hint: {case['hint']}")
    for message in failures:
        print("\033[91mFailed\033[0m " + message)
    if failures:
        print(f"\033[91m{len(failures)} of {len(cases)} tests failed.\033[0m")
    else:
        print("\033[92mAll tests passed.\033[0m")
    return failures
