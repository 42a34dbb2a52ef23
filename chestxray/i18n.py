"""The language of what students read: messages through the standard `gettext` catalogs.

`set_language("pt-BR")` (the notebook's import cell does it, from its LANGUAGE parameter)
switches `_()` for the public tests, the course helpers and the grader's feedback.
Catalogs: `chestxray/locale/<lang>/LC_MESSAGES/chestxray.po` (edited) and `.mo` (compiled by
`compile_catalogs()`, committed so that a fresh clone works; a test fails when it is stale).
English is the source language: without a catalog, messages stay as written.
"""

import ast
import gettext
import os
import struct

LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")
DOMAIN = "chestxray"
LANGUAGES = ("en", "pt-BR")

_translation = gettext.NullTranslations()
_language = "en"


def _locale(language):
    return language.replace("-", "_")


def set_language(language):
    """Messages from now on in `language` ("en" or "pt-BR")."""
    global _translation, _language
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    _language = language
    _translation = (gettext.NullTranslations() if language == "en" else
                    gettext.translation(DOMAIN, LOCALE_DIR, languages=[_locale(language)]))


def language():
    return _language


def _(message):
    """`message` in the current language."""
    return _translation.gettext(message)


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


def number(value, digits=3):
    """A number in prose: 0.720 in English, 0,720 in Portuguese (thousands: 1,234 and 1.234).
    `digits`: decimals, or a format spec such as "3g"."""
    text = format(value, digits if isinstance(digits, str) else f",.{digits}f")
    return text.translate(str.maketrans(",.", ".,")) if _language == "pt-BR" else text


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
    import numpy as np

    from .labels import LABELS

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
# Catalogs: .po (text) -> .mo (binary), without GNU gettext's msgfmt.

def read_po(path):
    """{msgid: msgstr} of a .po file (no plurals, no contexts: this project uses neither)."""
    entries, msgid, msgstr, current = {}, None, None, None

    def flush():
        if msgid is not None:
            entries[msgid] = msgstr or ""

    with open(path, encoding="utf-8") as f:
        for number_, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("msgid "):
                flush()
                msgid, msgstr, current = ast.literal_eval(line[6:]), None, "id"
            elif line.startswith("msgstr "):
                msgstr, current = ast.literal_eval(line[7:]), "str"
            elif line.startswith('"'):
                if current == "id":
                    msgid += ast.literal_eval(line)
                elif current == "str":
                    msgstr += ast.literal_eval(line)
                else:
                    raise ValueError(f"{path}, line {number_}: a string outside msgid/msgstr")
            else:
                raise ValueError(f"{path}, line {number_}: cannot read {line[:40]!r}")
    flush()
    return entries


def mo_bytes(entries):
    """The GNU .mo format (little-endian, sorted keys), as Python's gettext reads it."""
    items = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in entries.items() if v or k == "")
    ids = strs = b""
    offsets = []
    for key, value in items:
        offsets.append((len(ids), len(key), len(strs), len(value)))
        ids += key + b"\0"
        strs += value + b"\0"
    start = 7 * 4 + 16 * len(items)
    key_table = b"".join(struct.pack("<2I", length, start + offset) for offset, length, _, _ in offsets)
    value_start = start + len(ids)
    value_table = b"".join(struct.pack("<2I", length, value_start + offset) for _, _, offset, length in offsets)
    header = struct.pack("<7I", 0x950412DE, 0, len(items), 7 * 4, 7 * 4 + 8 * len(items), 0, 0)
    return header + key_table + value_table + ids + strs


def catalog_paths(language):
    folder = os.path.join(LOCALE_DIR, _locale(language), "LC_MESSAGES")
    return os.path.join(folder, DOMAIN + ".po"), os.path.join(folder, DOMAIN + ".mo")


def compile_catalogs():
    """Write every .mo from its .po; returns the paths written."""
    written = []
    for language in LANGUAGES[1:]:
        po, mo = catalog_paths(language)
        with open(mo, "wb") as f:
            f.write(mo_bytes(read_po(po)))
        written.append(mo)
    return written
