"""The course in Brazilian Portuguese: the same code as the English release, translated text,
messages through gettext catalogs, and the grader's feedback in the notebook's language."""

import os
import re
import shutil

import nbformat
import numpy as np
import pytest

import public_tests
from chestxray import course, i18n
from chestxray.grade import grade

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNQ = re.compile(r"#\s*UNQ_C\d.*")


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
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


def test_committed_portuguese_release_is_what_the_build_writes(releases):
    _, built = releases
    with open(os.path.join(ROOT, course.release_paths("pt-BR")[0]), encoding="utf-8") as f:
        assert f.read() == built["pt-BR"][2], "C1W1_Assignment.pt-BR.ipynb is stale: run " \
                                              "`python -m chestxray notebook --lang pt-BR`"


@pytest.mark.parametrize("which", [0, 1], ids=["student", "solution"])
def test_the_two_releases_hold_the_same_code(releases, which):
    _, built = releases
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
    po, mo = i18n.catalog_paths("pt-BR")
    entries = i18n.read_po(po)
    messages = i18n.messages()
    assert not [m for m in messages if m not in entries], "messages missing from the catalog"
    assert not [m for m in messages if not entries[m]], "messages with an empty msgstr"
    assert not [m for m in entries if m and m not in messages], "catalog entries no code uses"
    with open(mo, "rb") as f:
        assert f.read() == i18n.mo_bytes(entries), f"{mo} is stale: run `python -m chestxray notebook --lang pt-BR`"


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


def test_grader_feedback_follows_the_notebook_language(releases, tmp_path):
    folder, _ = releases
    subs = tmp_path / "subs"
    subs.mkdir()
    notebook = nbformat.read(str(folder / "pt-BR.solution.ipynb"), as_version=4)
    for cell in notebook.cells:
        if "# UNQ_C2" in cell.source:
            cell.source = "# UNQ_C2\nimport numpy as np\ndef compute_class_freqs(labels):\n" \
                          "    return np.mean(labels, axis=1), 1 - np.mean(labels, axis=1)\n"
    nbformat.write(notebook, str(subs / "aluno.ipynb"))
    nbformat.write(notebook, str(subs / "outro aluno.ipynb"))
    shutil.copy(folder / "en.solution.ipynb", subs / "student.ipynb")
    table = grade(str(subs), str(tmp_path / "notas.csv"), jobs=1, progress=False)
    assert table.set_index("submission")["total"].to_dict() == {"aluno.ipynb": 2, "outro aluno.ipynb": 2,
                                                                 "student.ipynb": 3}
    summary = (tmp_path / "summary.html").read_text(encoding="utf-8")  # most of the class writes Portuguese
    assert "Resumo da correção" in summary and "Taxa de acerto por caso" in summary and "o que ensinar" in summary
    text = (tmp_path / "feedback" / "aluno.md").read_text(encoding="utf-8")
    assert "# Devolutiva: aluno.ipynb" in text and "Nota: **2 / 3**" in text
    assert "**falhou**: exemplo do curso (5 exemplos, 3 classes)" in text and "  - dica: " in text
    assert "- passou: um paciente em comum, exemplo do curso" in text
    english = (tmp_path / "feedback" / "student.md").read_text(encoding="utf-8")
    assert "# Feedback: student.ipynb" in english and "- passed: one shared patient" in english
