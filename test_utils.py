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
    expected, got = _("Expected:"), _("Got:")
    width = max(len(expected), len(got))  # the two values one above the other, in any language
    failures = []  # (heading, what went wrong)
    for case in cases:
        heading, hint = _("Failed case «{name}»:").format(name=_(case["name"])), _(case["hint"])
        try:
            answer = exercises.plain(exercises.call(key, target, case["inputs"]))
        except Exception as error:  # a student's function may raise anything: that case fails
            failures.append((heading, f" {_('raised')} {type(error).__name__}: {error}{where(error)}"
                                      f"\n  {_('Hint:')} {hint}"))
            continue
        if not exercises.compare(key, answer, case["expected"]):
            failures.append((heading, f"\n  {expected.ljust(width)} {exercises.show(case['expected'])}"
                                      f"\n  {got.ljust(width)} {exercises.show(answer)}\n  {_('Hint:')} {hint}"))
    for heading, text in failures:
        print(f"\033[91m{heading}\033[0m{text}")
    if failures:
        print("\033[91m" + _("{failed} of {total} tests failed.").format(failed=len(failures), total=len(cases))
              + "\033[0m")
    else:
        print("\033[92m" + _("All tests passed.") + "\033[0m")
    return [heading + text for heading, text in failures]
