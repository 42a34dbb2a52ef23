"""The course in Brazilian Portuguese: the same code as the English release, translated text,
messages through gettext catalogs, and the grader's feedback in the notebook's language."""

import ast
import gettext
import io
import os
import re
import shutil
from contextlib import redirect_stdout
from types import SimpleNamespace

import matplotlib.pyplot as plt
import matplotlib.text
import nbformat
import numpy as np
import pandas as pd
import pytest

import public_tests
import util
from chestxray import course, evaluate, exercises, grade as grading, i18n, submissions
from chestxray.grade import grade
from chestxray.labels import LABELS
from chestxray.preprocessing import Preprocessing
from tests.conftest import notebook
from tests.test_explain import random_cnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNQ = re.compile(r"#\s*UNQ_C\d.*")


@pytest.fixture(scope="module")
def both_languages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("i18n")
    built = {}
    for language in ("en", "pt-BR"):
        student, solution = course.build(os.path.join(ROOT, course.SOURCE), str(folder / f"{language}.ipynb"),
                                         str(folder / f"{language}.solution.ipynb"), language=language,
                                         translations=os.path.join(ROOT, course.TRANSLATIONS["pt-BR"]))
        built[language] = (nbformat.reads(student, as_version=4), nbformat.reads(solution, as_version=4), student)
    return folder, built


@pytest.fixture
def portuguese():
    i18n.set_language("pt-BR")
    yield
    i18n.set_language("en")


def test_committed_portuguese_release_is_what_the_build_writes(both_languages):
    _, built = both_languages
    with open(os.path.join(ROOT, course.release_paths("pt-BR")[0]), encoding="utf-8") as f:
        assert f.read() == built["pt-BR"][2], "C1W1_Assignment.pt-BR.ipynb is stale: run " \
                                              "`python -m chestxray notebook --lang pt-BR`"


@pytest.mark.parametrize("which", [0, 1], ids=["student", "solution"])
def test_the_two_releases_hold_the_same_code(both_languages, which):
    _, built = both_languages
    english, portuguese = built["en"][which], built["pt-BR"][which]
    assert english.metadata["chestxray"] == {"language": "en"}
    assert portuguese.metadata["chestxray"] == {"language": "pt-BR"}
    assert [c.cell_type for c in english.cells] == [c.cell_type for c in portuguese.cells]
    translated = 0
    for i, (a, b) in enumerate(zip(english.cells, portuguese.cells)):
        assert a.metadata.get("tags") == b.metadata.get("tags"), i
        if a.cell_type != "code":
            translated += a.source != b.source
            continue
        assert course.code_shape(a.source) == course.code_shape(b.source), f"cell {i}: the code differs"
        assert UNQ.findall(a.source) == UNQ.findall(b.source), f"cell {i}: the UNQ_C marks differ"
        assert ([line.strip() for line in a.source.splitlines() if line.strip().endswith("= None")]
                == [line.strip() for line in b.source.splitlines() if line.strip().endswith("= None")]), i
    assert translated == sum(c.cell_type == "markdown" for c in english.cells)  # every text cell


def test_a_stale_translation_fails_the_build_by_name(tmp_path):
    source = open(os.path.join(ROOT, course.SOURCE), encoding="utf-8").read()
    changed = tmp_path / "source.py"
    changed.write_text(source.replace("## 1. Import packages", "## 1. Import the packages"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"has no translation: '## 1. Import the packages'.*no longer there"):
        course.build(str(changed), None, None, language="pt-BR",
                     translations=os.path.join(ROOT, course.TRANSLATIONS["pt-BR"]))
    # A translation that changes code, not only its comments and strings, is refused too.
    bad = tmp_path / "bad.txt"
    text = open(os.path.join(ROOT, course.TRANSLATIONS["pt-BR"]), encoding="utf-8").read()
    bad.write_text(text.replace("keras.utils.set_random_seed(0)", "keras.utils.set_random_seed(1)"), encoding="utf-8")
    with pytest.raises(ValueError, match="changes the code"):
        course.build(os.path.join(ROOT, course.SOURCE), None, None, language="pt-BR", translations=str(bad))


def test_every_message_is_translated_and_compiled():
    entries, mo = i18n.read_catalog("pt-BR")[0], i18n.catalog_paths("pt-BR")[1]
    messages = course.messages()
    assert not [m for m in messages if m not in entries], "messages missing from the catalog"
    assert not [m for m in messages if not entries[m]], "messages with an empty msgstr"
    assert not [m for m in entries if m not in messages], "catalog entries no code uses"
    with open(mo, "rb") as f:
        compiled = gettext.GNUTranslations(f)
    stale = [m for m, text in entries.items() if compiled.gettext(m) != text]
    assert not stale, f"{mo} is stale ({stale[:2]}): run `python -m chestxray notebook --lang pt-BR`"


def test_pathologies_and_numbers_read_as_in_brazil(portuguese):
    names = [i18n.label_name(label) for label in ("Effusion", "Pleural_Thickening", "Hernia", "Pneumothorax")]
    assert names == ["Derrame pleural", "Espessamento pleural", "Hérnia", "Pneumotórax"]
    assert i18n.number(0.7214) == "0,721"
    i18n.set_language("en")
    assert i18n.label_name("Pleural_Thickening") == "Pleural Thickening" and i18n.number(0.7214) == "0.721"


def test_public_tests_speak_portuguese(portuguese, capsys):
    public_tests.compute_class_freqs_test(lambda labels: (np.mean(labels, axis=1), 1 - np.mean(labels, axis=1)))
    wrong = capsys.readouterr().out
    assert "Falhou" in wrong and "Esperado:" in wrong and "Obtido:" in wrong and "Dica:" in wrong
    assert "testes falharam." in wrong and "exemplo do curso" in wrong and "Expected" not in wrong

    def right(labels):
        p = np.mean(labels, axis=0)
        return p, 1 - p
    public_tests.compute_class_freqs_test(right)
    assert "Todos os testes passaram." in capsys.readouterr().out


def test_grader_feedback_follows_the_notebook_language(subs, both_languages, tmp_path):
    folder, _ = both_languages
    wrong = notebook((folder / "pt-BR.solution.ipynb").read_text(encoding="utf-8"), {
        "UNQ_C2": "def compute_class_freqs(labels):\n    return np.mean(labels, axis=1), 1 - np.mean(labels, axis=1)\n"})
    for name in ("aluno.ipynb", "outro aluno.ipynb"):
        (subs / name).write_text(wrong, encoding="utf-8")
    shutil.copy(folder / "en.solution.ipynb", subs / "student.ipynb")
    (subs / "quebrado.ipynb").write_text("{not json", encoding="utf-8")  # no language of its own
    table = grade(str(subs), str(tmp_path / "notas.csv"), jobs=1, progress=False)
    assert table.set_index("submission")["total"].to_dict() == {"aluno.ipynb": 2, "outro aluno.ipynb": 2,
                                                                 "quebrado.ipynb": 0, "student.ipynb": 3}
    broken = (tmp_path / "feedback" / "quebrado.md").read_text(encoding="utf-8")  # the class's language
    assert "o notebook não pôde ser lido: não é JSON válido (linha 1" in broken
    assert "nenhuma célula" not in broken and "Nota: **0 / 3**" in broken
    summary = (tmp_path / "summary.html").read_text(encoding="utf-8")  # most of the class writes Portuguese
    assert "Resumo da correção" in summary and "Taxa de acerto por caso" in summary and "o que ensinar" in summary
    text = (tmp_path / "feedback" / "aluno.md").read_text(encoding="utf-8")
    assert "# Devolutiva: aluno.ipynb" in text and "Nota: **2 / 3**" in text
    assert "**falhou**: exemplo do curso (5 exemplos, 3 classes)" in text and "  - Dica: " in text and "  - Esperado: `" in text
    assert "- passou: um paciente em comum, exemplo do curso" in text
    english = (tmp_path / "feedback" / "student.md").read_text(encoding="utf-8")
    assert "# Feedback: student.ipynb" in english and "- passed: one shared patient" in english


# ----------------------------------------------------------------------------
# What a pt-BR student sees: the notebook's figures, tables, test messages and the grader's
# feedback, rendered in both languages. Nothing English may be left in the Portuguese.

# Words that read the same in both languages, or are names (of files, columns, Python types).
NEUTRAL = {"AUROC", "PR-AUC", "Grad-CAM", "CheXNet", "CheXNeXt", "Brier", "ECE", "ROC", "bool", "array",
           "epsilon", "Edema", "Pneumonia", "Original", "ValueError", "TypeError", "ndarray", "float",
           "float32", "float64", "Tensor", "Timeout", "MemoryError", "UNQ_C1", "UNQ_C2", "UNQ_C3", "y_pred",
           "patient_id", "check_for_leakage", "compute_class_freqs", "get_weighted_loss", "featurewise",
           "samplewise", "labels", "shape", "True", "False", "y_true", "png", "aluno",
           "raise"}  # the last two: the feedback's file name, the student's own line of code


def _figure_texts(figure):
    figure.canvas.draw()  # tick labels exist once drawn
    return [t.get_text() for t in figure.findobj(matplotlib.text.Text) if t.get_text().strip()]


def _table_texts(frame):
    return ([str(c) for c in frame.columns] + [str(i) for i in frame.index] + [str(frame.index.name or "")]
            + [str(v) for v in frame.to_numpy().ravel() if isinstance(v, str)])


def _student_view(language, nih, capsys):
    """Every text the notebook's library calls and the grader show a student, in `language`."""
    i18n.set_language(language)
    texts, printed = [], io.StringIO()
    rng = np.random.default_rng(0)
    y = (rng.random((60, 14)) < 0.3).astype(float)
    y[:, 13] = 0  # a label without positives: its notes
    scores = np.clip(y * 0.3 + rng.random((60, 14)) * 0.7, 0, 1)
    image_dir = os.path.join(nih, "images")
    train = pd.read_csv(os.path.join(nih, "train.csv")).head(40)
    pre = Preprocessing.from_training(train, image_dir, image_size=64)
    model = random_cnn(14, 64)
    plt.close("all")
    with redirect_stdout(printed):
        util.get_roc_curve(LABELS, scores, SimpleNamespace(labels=y))
        metrics = evaluate.metrics_table(y, scores, LABELS, n_boot=50)
        texts += _table_texts(util.table(metrics))
        texts += _table_texts(util.table(evaluate.comparison_table(metrics)))
        probabilities = pre.calibrate(scores)
        compared = {"a": scores, "b": probabilities}
        evaluate.reliability_figure(y, compared, ax=plt.figure().subplots())
        texts += _table_texts(util.table(evaluate.calibration_table(y, compared)))
        first = pd.DataFrame({"score": scores[0], "probability": probabilities[0], "present": y[0].astype(int)},
                             index=[util.label_name(label) for label in LABELS])
        texts += _table_texts(util.table(first))
        texts += _table_texts(util.table(pd.DataFrame({"epoch": [0], "learning_rate": [1e-3], "loss": [1.4],
                                                       "val_auroc": [0.6], "val_loss": [1.3]}).set_index("epoch")))
        texts.append(pre.describe())
        util.compute_gradcam(model, train["Image"][0], image_dir, train, LABELS, ["Mass", "Edema"], preprocessing=pre)
        texts += _table_texts(util.table(util.pointing_game(model, pre, image_dir), digits=2))
        util.show_boxes(model, pre, pd.read_csv(os.path.join(nih, "test.csv")), image_dir, count=1)
        for number in plt.get_fignums():
            texts += _figure_texts(plt.figure(number))
        plt.close("all")

        def raises(*args):
            raise ValueError("x")

        public_tests.check_for_leakage_test(raises)
        public_tests.compute_class_freqs_test(lambda labels: (np.mean(labels, axis=1), 1 - np.mean(labels, axis=1)))
        public_tests.get_weighted_loss_test(lambda pos, neg, epsilon: lambda y, p: np.mean(p, axis=1), 1)
    texts.append(printed.getvalue())
    capsys.readouterr()

    # The grader's feedback, from its own verdicts: wrong values, a raise, a stop, a too-large answer,
    # a missing cell, an unreadable notebook and a note.
    cases = exercises.with_answers("UNQ_C2", exercises.PUBLIC["UNQ_C2"])
    answers = [{"output": exercises.plain((np.zeros(2), np.ones(2)))},
               {"raised": {"type": "ValueError", "message": "x", "line": 3, "code": "N = 5"}},
               {"output": {"type": "large", "python_type": "ndarray", "shape": [200, 200]}}, {}]
    answers[3] = grading._reply({"stopped": "timeout"}, "case", {"timeout": 6, "memory_mb": 256})
    rows = grading.verdicts("UNQ_C2", {"defined": True, "notes": []}, answers, cases)
    results = {"UNQ_C1": {"score": 0, "public": [], "hidden": [],
                          "missing": ("no cell marked {key} ({function})", {"key": "UNQ_C1", "function": "x"})},
               "UNQ_C2": {"score": 0, "public": rows, "hidden": rows[:1]}}
    problem = submissions.Unreadable("not graded: larger than {mb} MB", mb=32).message
    note = ("{count} cells are marked {key} (cells {cells}): graded cell {cell}, the last that defines "
            "{function} and is not the untouched template",
            {"count": 2, "key": "UNQ_C2", "cells": "3, 4", "cell": 4, "function": "compute_class_freqs"})
    texts.append(grading.feedback("aluno.ipynb", results, problem, language, [note]))
    i18n.set_language("en")
    return texts


def _words(texts):
    return {word for text in texts for word in re.findall(r"[A-Za-zÀ-ÿ_][A-Za-z0-9À-ÿ_'-]{2,}", text)}


def test_what_a_portuguese_student_sees_is_portuguese(nih, capsys):
    english, portuguese = _student_view("en", nih, capsys), _student_view("pt-BR", nih, capsys)
    assert len(english) == len(portuguese) > 100
    entries = i18n.read_catalog("pt-BR")[0]
    shown = "\n".join(portuguese)
    # No English message of the catalog, in whole words (the literal parts around its {placeholders}).
    leftovers = []
    for msgid, msgstr in entries.items():
        if not msgid or msgid == msgstr:
            continue
        for part in re.split(r"\{\w+\}", msgid):
            part = part.strip(" :,.()«»")
            if len(part) >= 4 and re.search(r"[a-z]{3}", part) and part not in msgstr:
                if re.search(rf"(?<![\wÀ-ÿ]){re.escape(part)}(?![\wÀ-ÿ])", shown):
                    leftovers.append(part)
    assert not leftovers, f"English messages in what a pt-BR student sees: {sorted(set(leftovers))}"
    # No English word the English view shows that is no Portuguese word: text written outside the catalog.
    vocabulary = _words(entries.values()) | NEUTRAL
    stray = (_words(english) & _words(portuguese)) - vocabulary
    stray = {w for w in stray if not re.fullmatch(r"[\w-]*\d[\w.-]*", w)}  # file names, ids
    assert not stray, f"English words in what a pt-BR student sees: {sorted(stray)}"
    # Numbers with the decimal comma in tables, figures and the loss test's prose.
    decimal_points = [t for t in portuguese if "array" not in t and "[" not in t  # numpy's own printing aside
                      and re.search(r"(?<![\w.])(0\.\d+|\d+\.\d{1,2})(?![\w.])", t)]  # not 22.400
    assert "L(y_pred_1) = -0,4956203" in shown and re.search(r"0,\d{3}", shown) and not decimal_points, decimal_points


def test_the_portuguese_notebook_code_says_nothing_in_english(both_languages):
    """The strings of every code cell (prints, titles, column names) are translated, or are names."""
    _, built = both_languages

    def strings(source):
        return {node.value for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Constant) and isinstance(node.value, str)}

    english, portuguese = built["en"][1], built["pt-BR"][1]
    same = []
    for a, b in zip(english.cells, portuguese.cells):
        if a.cell_type == "code":
            same += [text for text in strings(a.source) & strings(b.source)
                     if {w for w in re.findall(r"[A-Za-z][A-Za-z0-9_]+", text) if len(w) > 2} - NEUTRAL - DATA_NAMES]
    assert not same, f"English strings left in the pt-BR notebook's code: {same}"


# Names in the data and the code, the same in every language.
DATA_NAMES = {"Image", "PatientId", "csv", "train", "valid", "test", "data", "nih", "images", "models", "runs",
              "course", "model", "weights", "keras", "hdf5", "densenet", "history", "gray", "steelblue", "off",
              "TF_CPP_MIN_LOG_LEVEL", "loss", "auroc", "ci_low", "ci_high", "pr_auc", "positives", "note", "score",
              "probability", "present", "epoch", "float32", "float"}
