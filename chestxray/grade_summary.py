"""`summary.html` for the instructor, beside `grades.csv`: how the class did and what to re-teach.

Score distribution, pass rate per exercise and per case (public and hidden), the most failed
cases with their hints, and what could not be graded or was graded with a note. In the
language of most of the class's notebooks. One self-contained page (report.STYLE).
"""

import collections
import html

from . import exercises
from .exercises import error_text
from .i18n import say, translator
from .report import STYLE

TOP_FAILED = 5


def class_language(subs):
    """The language of most of the notebooks that could be read ("en" when none could)."""
    languages = collections.Counter(s.language for s in subs if s.language)
    return languages.most_common(1)[0][0] if languages else "en"


def note_text(note, _=str):
    """A note in the student's language: (message, values) from the grader, or the error record
    of a top-level statement from the student's process."""
    if isinstance(note, tuple):
        return say(note, _)
    return _("{key}: a top-level statement raised {error}; only the function is graded").format(
        key=note["key"], error=error_text(note, _))


def _rate(passed, total, number):
    return f"{number(100 * passed / total)} %" if total else "n/a"


def _bar(fraction):
    return (f"<span style='display:inline-block;background:#4a7;height:0.8em;width:{200 * fraction:.0f}px'>"
            "</span>")


def write_summary(path, subs, results, grader, skipped=()):
    """Write the page; `subs` and `results` in the same order (`grade`)."""
    language = class_language(subs)
    _ = translator(language)

    def number(value):
        text = f"{value:.0f}"
        return text.replace(".", ",") if language == "pt-BR" else text

    e = html.escape
    n = len(subs)
    parts = [f"<h1>{e(_('Grading summary'))}</h1>",
             f"<p>{e(_('{n} submissions graded').format(n=n))}</p>"]
    # Score distribution.
    totals = collections.Counter(sum(r[k]["score"] for k in r) for r in results)
    full = len(exercises.FUNCTIONS)
    parts += [f"<h2>{e(_('Score distribution'))}</h2>", "<table>",
              f"<tr><th>{e(_('Score'))}</th><th>{e(_('Submissions'))}</th><th></th></tr>"]
    parts += [f"<tr><td>{score} / {full}</td><td>{totals[score]}</td><td>{_bar(totals[score] / max(n, 1))}</td></tr>"
              for score in range(full + 1)]
    parts.append("</table>")
    # Pass rate per exercise, then per case.
    parts += [f"<h2>{e(_('Pass rate per exercise'))}</h2>", "<table>",
              f"<tr><th>{e(_('Exercise'))}</th><th>{e(_('Passed'))}</th><th>{e(_('Pass rate'))}</th></tr>"]
    for key, function in exercises.FUNCTIONS.items():
        passed = sum(r[key]["score"] for r in results)
        parts.append(f"<tr><td>{e(function)} ({key})</td><td>{passed} / {n}</td>"
                     f"<td>{_rate(passed, n, number)}</td></tr>")
    parts.append("</table>")
    failed = []
    parts += [f"<h2>{e(_('Pass rate per case'))}</h2>", "<table>",
              f"<tr><th>{e(_('Case'))}</th><th>{e(_('Kind'))}</th><th>{e(_('Passed'))}</th>"
              f"<th>{e(_('Pass rate'))}</th></tr>"]
    for key in exercises.FUNCTIONS:
        for kind, cases in (("public", grader.public[key]), ("hidden", grader.secret[key])):
            for i, case in enumerate(cases):
                graded = [r[key][kind][i] for r in results if len(r[key][kind]) > i]
                passed = sum(row["passed"] for row in graded)
                name = _(case["name"]) if kind == "public" else case["name"]
                parts.append(f"<tr><td>{key}: {e(name)}</td><td>{e(_('public') if kind == 'public' else _('hidden'))}</td><td>{passed} / {len(graded)}</td>"
                             f"<td>{_rate(passed, len(graded), number)}</td></tr>")
                if len(graded) - passed:
                    hint = _(case.get("hint", "")) if kind == "public" else case.get("hint", "")
                    failed.append((len(graded) - passed, key, name, hint))
    parts.append("</table>")
    # What to re-teach.
    parts += [f"<h2>{e(_('Most failed cases: what to re-teach'))}</h2>"]
    if failed:
        parts.append("<ol>")
        parts += [f"<li><b>{key}: {e(name)}</b>: {e(_('failed by {count} of {n}').format(count=count, n=n))}"
                  f"<br><span class='note'>{e(_('Hint'))}: {e(hint)}</span></li>"
                  for count, key, name, hint in sorted(failed, key=lambda f: -f[0])[:TOP_FAILED]]
        parts.append("</ol>")
    else:
        parts.append(f"<p>{e(_('Every case was passed by every submission.'))}</p>")
    # Submissions with a problem or a note.
    flagged = [(s.label, say(s.problem, _)) for s in subs if s.problem]
    flagged += [(s.label, "; ".join(note_text(note, _) for note in s.notes)) for s in subs if s.notes]
    flagged += [(name, _("not graded: not a .ipynb file")) for name in skipped]
    if flagged:
        parts += [f"<h2>{e(_('Submissions to look at'))}</h2>", "<ul>"]
        parts += [f"<li><code>{e(label)}</code>: {e(text)}</li>" for label, text in flagged]
        parts.append("</ul>")
    if getattr(grader.cgroups, "why", ""):
        parts.append(f"<p class='note'>{e(_('No cgroup could be made for the students: memory was capped per process.'))}"
                     f" ({e(grader.cgroups.why)})</p>")
    page = (f"<!DOCTYPE html><html lang='{language}'><head><meta charset='utf-8'>"
            f"<title>{e(_('Grading summary'))}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
