"""The machinery behind public_tests.py: run an exercise's cases against a student's function
and report expected against got, with a hint, for every case that fails.

The cases, the reference answers and the comparison live in `chestxray.exercises`, which
the grader uses too; here they run in the notebook's own process, for the student.
"""

import os
import traceback

from chestxray import exercises
from chestxray.i18n import _


def where(error):
    """The student's line that raised: the deepest frame outside installed packages, the Python
    library and these test files."""
    library = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep, os.sep + "chestxray" + os.sep)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not any(part in frame.filename for part in library)
              and not frame.filename.endswith(("test_utils.py", "public_tests.py"))
              and not frame.filename.startswith(os.path.dirname(os.__file__))]
    return " (" + _("line {number}: {code}").format(number=frames[-1].lineno, code=frames[-1].line) + ")" \
        if frames else ""


def run_cases(key, target):
    """Run the public cases of exercise `key` against `target`; print failures and the verdict;
    return the failure messages."""
    cases = exercises.with_answers(key, exercises.PUBLIC[key])
    failures = []
    for case in cases:
        name, hint = _(case["name"]), _(case["hint"])
        try:
            got = exercises.plain(exercises.call(key, target, case["inputs"]))
        except Exception as error:  # a student's function may raise anything: that case fails
            failures.append(f"{name}: {_('raised')} {type(error).__name__}: {error}{where(error)}"
                            f"\n  {_('Hint:')} {hint}")
            continue
        if not exercises.compare(key, got, case["expected"]):
            failures.append(f"{name}:\n  {_('Expected:')} {exercises.show(case['expected'])}"
                            f"\n  {_('Got:')}      {exercises.show(got)}\n  {_('Hint:')} {hint}")
    for message in failures:
        print(f"\033[91m{_('Failed')}\033[0m " + message)
    if failures:
        print("\033[91m" + _("{failed} of {total} tests failed.").format(failed=len(failures), total=len(cases))
              + "\033[0m")
    else:
        print("\033[92m" + _("All tests passed.") + "\033[0m")
    return failures
