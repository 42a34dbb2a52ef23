"""`summary.html` for the instructor, beside `grades.csv`: how the class did and what to re-teach.

Score distribution, pass rate per exercise and per case (public and hidden), the most failed
cases with their hints, and what could not be graded or was graded with a note. In the
language of most of the class's notebooks. One self-contained page (report.STYLE).
"""

import collections
import html

from . import exercises
from .exercises import error_text
from .i18n import number, say, translator
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


def _rate(passed, total, language):
    return f"{number(100 * passed / total, 0, language)} %" if total else "n/a"


def _bar(fraction):
    return (f"<span style='display:inline-block;background:#4a7;height:0.8em;width:{200 * fraction:.0f}px'>"
            "</span>")


def write_summary(path, subs, results, grader, skipped=()):
    """Write the page; `subs` and `results` in the same order (`grade`)."""
    language = class_language(subs)
    _ = translator(language)

    e = html.escape

    def table(heads, rows):
        return ["<table>", "<tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr>",
                *("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows), "</table>"]

    n = len(subs)
    parts = [f"<h1>{e(_('Grading summary'))}</h1>", f"<p>{e(_('{n} submissions graded').format(n=n))}</p>"]
    totals = collections.Counter(sum(r[k]["score"] for k in r) for r in results)
    full = len(exercises.FUNCTIONS)
    parts += [f"<h2>{e(_('Score distribution'))}</h2>"] + table(
        [_("Score"), _("Submissions"), ""],
        [(f"{score} / {full}", totals[score], _bar(totals[score] / max(n, 1))) for score in range(full + 1)])
    passed = {key: sum(r[key]["score"] for r in results) for key in exercises.FUNCTIONS}
    parts += [f"<h2>{e(_('Pass rate per exercise'))}</h2>"] + table(
        [_("Exercise"), _("Passed"), _("Pass rate")],
        [(f"{e(function)} ({key})", f"{passed[key]} / {n}", _rate(passed[key], n, language))
         for key, function in exercises.FUNCTIONS.items()])
    failed, rows = [], []
    for key in exercises.FUNCTIONS:
        for kind, said, cases in (("public", _("public"), grader.public[key]),
                                  ("hidden", _("hidden"), grader.secret[key])):
            for i, case in enumerate(cases):
                graded = [r[key][kind][i] for r in results if len(r[key][kind]) > i]
                passed = sum(row["passed"] for row in graded)
                name = _(case["name"]) if kind == "public" else case["name"]
                rows.append((f"{key}: {e(name)}", e(said), f"{passed} / {len(graded)}",
                             _rate(passed, len(graded), language)))
                if len(graded) - passed:
                    hint = _(case.get("hint", "")) if kind == "public" else case.get("hint", "")
                    failed.append((len(graded) - passed, key, name, hint))
    parts += [f"<h2>{e(_('Pass rate per case'))}</h2>"] + table([_("Case"), _("Kind"), _("Passed"), _("Pass rate")], rows)
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
