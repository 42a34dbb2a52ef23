"""The language of what students read: messages through the standard `gettext` catalogs.

`set_language("pt-BR")` (the notebook's import cell does it, from its LANGUAGE parameter)
switches `_()` for the public tests, the course helpers and the grader's feedback.
Catalogs: `chestxray/locale/<lang>/LC_MESSAGES/chestxray.po` (edited) and `.mo` (compiled by
`compile_catalogs()`, committed so that a fresh clone works; a test fails when it is stale).
English is the source language: without a catalog, messages stay as written.
"""

import gettext
import os

import numpy as np

from .labels import LABELS

LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")
DOMAIN = "chestxray"
LANGUAGES = ("en", "pt-BR")

_language, _gettext = "en", str  # str: English, the messages as written


def _locale(language):
    return language.replace("-", "_")


def set_language(language):
    """Messages from now on in `language` ("en" or "pt-BR")."""
    global _language, _gettext
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    _language, _gettext = language, translator(language)


def _(message):
    """`message` in the current language."""
    return _gettext(message)


def translator(language):
    """A `_` for one language, whatever the current one (the grader writes each student's
    feedback in the language of that student's notebook)."""
    if language not in LANGUAGES or language == "en":
        return lambda message: message
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[_locale(language)]).gettext


def N_(message):
    """Marks a message for the catalog where it is defined; `_()` translates it where it is shown."""
    return message


def say(message, _=str):
    """A message in a language: (msgid, values), translated by `_` (a value may be a message
    too), or text as it is. The grader keeps what it tells students as messages, and says them
    in each student's language."""
    if isinstance(message, tuple):
        msgid, values = message
        return _(msgid).format(**{name: say(value, _) for name, value in values.items()})
    return str(message)


def label_name(label):
    """A pathology as the current language names it (the data's columns keep the NIH names)."""
    return _(label.replace("_", " "))


def number(value, digits=3, language=None):
    """A number in prose: 0.720 in English, 0,720 in Portuguese (thousands: 1,234 and 1.234), in
    `language` (default: the current one). `digits`: decimals, or a format spec such as "3g"."""
    text = format(value, digits if isinstance(digits, str) else f",.{digits}f")
    return text.translate(str.maketrans(",.", ".,")) if (language or _language) == "pt-BR" else text


# What the library's tables call their columns (stable keys, read by code and written to CSV
# files) as a student reads them.
COLUMNS = {"auroc": N_("AUROC"), "ci_low": N_("95% CI, low"), "ci_high": N_("95% CI, high"),
           "pr_auc": N_("PR-AUC"), "prevalence": N_("prevalence"), "n": N_("images"),
           "positives": N_("positives"), "boot_used": N_("replicates used"), "note": N_("note"),
           "brier": N_("Brier score"), "ece": N_("calibration error (ECE)"),
           "mean_probability": N_("mean probability"), "observed_rate": N_("observed rate"),
           "score": N_("score"), "probability": N_("probability"), "present": N_("present"),
           "boxes": N_("boxes"), "hit_rate": N_("hit rate"), "centre_hit_rate": N_("centre's hit rate"),
           "epoch": N_("epoch"), "loss": N_("training loss"), "val_loss": N_("validation loss"),
           "val_auroc": N_("validation AUROC"),
           "learning_rate": N_("learning rate"), "lr": N_("learning rate"), "seconds": N_("seconds"),
           "label": N_("pathology"), "probabilities": N_("probabilities")}


def table(frame, digits=3):
    """`frame` as a student reads it: columns named in the current language, pathologies by
    their names, numbers with the language's decimal mark (NaN as "n/a"). For display only:
    the values become text."""
    def cell(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            return value
        if np.isnan(value):
            return _("n/a")
        return number(value, 0 if isinstance(value, (int, np.integer)) else digits)

    shown = frame.map(cell)
    shown.columns = [_(COLUMNS[c]) if c in COLUMNS else c for c in frame.columns]
    shown.index = [label_name(i) if i in LABELS else i for i in frame.index]
    name = frame.index.name
    shown.index.name = _(COLUMNS[name]) if name in COLUMNS else name
    return shown


# ----------------------------------------------------------------------------
# Catalogs: .po (text, edited) -> .mo (binary, what gettext reads), with Babel.

def catalog_paths(language):
    folder = os.path.join(LOCALE_DIR, _locale(language), "LC_MESSAGES")
    return os.path.join(folder, DOMAIN + ".po"), os.path.join(folder, DOMAIN + ".mo")


def read_catalog(language):
    """A language's .po file as {msgid: msgstr}, and as Babel's catalog."""
    from babel.messages.pofile import read_po

    with open(catalog_paths(language)[0], "rb") as f:
        catalog = read_po(f)
    return {m.id: m.string for m in catalog if m.id}, catalog


def compile_catalogs():
    """Write every .mo from its .po; returns the paths written."""
    from babel.messages.mofile import write_mo

    for language in LANGUAGES[1:]:
        with open(catalog_paths(language)[1], "wb") as f:
            write_mo(f, read_catalog(language)[1])
    return [catalog_paths(language)[1] for language in LANGUAGES[1:]]
