"""The machinery behind public_tests.py: run an exercise's cases against a student's function
and report expected against got, with a hint, for every case that fails.

The cases, the reference answers and the comparison live in `chestxray.exercises`, which
the grader uses too; here they run in the notebook's own process, for the student.
"""

import os

from chestxray import exercises
from chestxray.exercise_calls import error_record
from chestxray.i18n import _


def _student_file(filename):
    """Not a file of an installed package, of the Python library or of these tests."""
    library = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep, os.sep + "chestxray" + os.sep)
    return (not any(part in filename for part in library) and not filename.endswith(("test_utils.py", "public_tests.py"))
            and not filename.startswith(os.path.dirname(os.__file__)))


def run_cases(key, target):
    """Run the public cases of exercise `key` against `target`; print failures and the verdict;
    return the failure messages."""
    cases = exercises.with_answers(key, exercises.PUBLIC[key])
    width = max(len(_("Expected:")), len(_("Got:")))  # the two values one above the other, in any language
    failures = []
    for case in cases:
        row = {"name": case["name"], "hint": case["hint"], "expected": case["expected"]}
        try:
            row["got"] = exercises.plain(exercises.call(key, target, case["inputs"]))
        except Exception as error:  # a student's function may raise anything: that case fails
            row["error"] = error_record(error, _student_file)
        if "error" in row or not exercises.compare(key, row["got"], case["expected"]):
            heading = _("Failed case «{name}»:").format(name=_(case["name"]))
            failures.append((heading, "".join(f"\n  {label.ljust(width)} {text}"
                                              for label, text in exercises.failure(row))))
    for heading, text in failures:
        print(f"\033[91m{heading}\033[0m{text}")
    if failures:
        print("\033[91m" + _("{failed} of {total} tests failed.").format(failed=len(failures), total=len(cases))
              + "\033[0m")
    else:
        print("\033[92m" + _("All tests passed.") + "\033[0m")
    return [heading + text for heading, text in failures]
