"""The machinery behind public_tests.py: run an exercise's cases against a student's function
and report expected against got, with a hint, for every case that fails.

The cases, the reference answers and the comparison live in `chestxray.exercises`, which
the grader uses too; here they run in the notebook's own process, for the student.
"""

import os
import traceback

from chestxray import exercises


def where(error):
    """The student's line that raised: the deepest frame outside installed packages, the Python
    library and these test files."""
    library = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep, os.sep + "chestxray" + os.sep)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not any(part in frame.filename for part in library)
              and not frame.filename.endswith(("test_utils.py", "public_tests.py"))
              and not frame.filename.startswith(os.path.dirname(os.__file__))]
    return f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""


def run_cases(key, target):
    """Run the public cases of exercise `key` against `target`; print failures and the verdict;
    return the failure messages."""
    cases = exercises.with_answers(key, exercises.PUBLIC[key])
    failures = []
    for case in cases:
        try:
            got = exercises.plain(exercises.call(key, target, case["inputs"]))
        except Exception as error:  # a student's function may raise anything: that case fails
            failures.append(f"{case['name']}: raised {type(error).__name__}: {error}{where(error)}"
                            f"\n  Hint: {case['hint']}")
            continue
        if not exercises.compare(key, got, case["expected"]):
            failures.append(f"{case['name']}:\n  Expected: {exercises.show(case['expected'])}"
                            f"\n  Got:      {exercises.show(got)}\n  Hint: {case['hint']}")
    for message in failures:
        print("\033[91mFailed\033[0m " + message)
    if failures:
        print(f"\033[91m{len(failures)} of {len(cases)} tests failed.\033[0m")
    else:
        print("\033[92mAll tests passed.\033[0m")
    return failures
