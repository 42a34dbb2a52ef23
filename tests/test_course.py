"""The public tests pass the right answers and catch the usual wrong ones, with the course's output."""

import ast
import os

import numpy as np
import pytest
from keras import ops

import public_tests
from chestxray import course
from chestxray.cli import main
from chestxray.losses import compute_class_freqs, get_weighted_loss
from chestxray.paths import DATA_DIR, REPO
from chestxray.submissions import cells_of as graded_cells
from chestxray.splits import check_for_leakage


def run(test, *args, capsys):
    failures = test(*args, return_failures=True)
    return failures, capsys.readouterr().out


def test_right_answers_pass_with_the_course_output(capsys):
    failures, out = run(public_tests.check_for_leakage_test, check_for_leakage, capsys=capsys)
    assert failures == [] and "All tests passed." in out
    assert "Test Case 1" in out and "leakage output: True" in out and "leakage output: False" in out
    failures, out = run(public_tests.compute_class_freqs_test, compute_class_freqs, capsys=capsys)
    assert failures == [] and "All tests passed." in out
    assert "Pos Freqs: [0.8 0.4 0.8]" in out and "Neg Freqs: [0.2 0.6 0.2]" in out
    failures, out = run(public_tests.get_weighted_loss_test, get_weighted_loss, 1, capsys=capsys)
    assert failures == [] and "All tests passed." in out
    assert "L(y_pred_1) = -0.4956203" in out and "L(y_pred_2) = -0.4956203" in out
    assert public_tests.compute_class_freqs_test(compute_class_freqs) is None  # a notebook cell displays nothing


def test_the_solution_notebook_cells_pass(capsys):
    """What a student writes following the notebook: its solution cells, as the grader reads them."""
    cells = graded_cells(course.read_source())
    namespace = {}
    exec("import numpy as np\nfrom keras import ops\n" + "\n".join(cells.values()), namespace)
    for test, args in ((public_tests.check_for_leakage_test, ()), (public_tests.compute_class_freqs_test, ()),
                       (public_tests.get_weighted_loss_test, (1,))):
        name = test.__name__[:-len("_test")]
        failures, out = run(test, namespace[name], *args, capsys=capsys)
        assert failures == [] and "All tests passed." in out, name


LEAKAGE_MISTAKES = {
    "returns the shared patients": lambda df1, df2, col: set(df1[col]) & set(df2[col]),
    "returns their count": lambda df1, df2, col: len(set(df1[col]) & set(df2[col])),
    "hard-coded column": lambda df1, df2, col: bool(set(df1["patient_id"]) & set(df2["patient_id"])),
    "first rows only": lambda df1, df2, col: bool(set(df1[col][:3]) & set(df2[col][:3])),
    "compares the index": lambda df1, df2, col: bool(set(df1.index) & set(df2.index)),
    "always False": lambda df1, df2, col: False,
}


@pytest.mark.parametrize("mistake", LEAKAGE_MISTAKES)
def test_leakage_mistakes_are_caught(mistake, capsys):
    failures, out = run(public_tests.check_for_leakage_test, LEAKAGE_MISTAKES[mistake], capsys=capsys)
    assert failures and "All tests passed." not in out and "Hint:" in out and ("Expected:" in out or "raised" in out)


FREQ_MISTAKES = {
    "wrong axis": lambda labels: (np.mean(labels, axis=1), 1 - np.mean(labels, axis=1)),
    "N hard-coded to 5": lambda labels: (np.sum(labels, axis=0) / 5, 1 - np.sum(labels, axis=0) / 5),
    "swapped": lambda labels: (1 - np.mean(labels, axis=0), np.mean(labels, axis=0)),
    "counts, not frequencies": lambda labels: (np.sum(labels, axis=0), len(labels) - np.sum(labels, axis=0)),
    "the course's values": lambda labels: (np.array([0.8, 0.4, 0.8]), np.array([0.2, 0.6, 0.2])),
}


@pytest.mark.parametrize("mistake", FREQ_MISTAKES)
def test_frequency_mistakes_are_caught(mistake, capsys):
    failures, out = run(public_tests.compute_class_freqs_test, FREQ_MISTAKES[mistake], capsys=capsys)
    assert failures and "All tests passed." not in out and "Hint:" in out


def loss_with(mistake):
    def get(pos_weights, neg_weights, epsilon=1e-7):
        def weighted_loss(y_true, y_pred):
            w_p, w_n = (neg_weights, pos_weights) if mistake == "swapped weights" else (pos_weights, neg_weights)
            eps = 0.0 if mistake == "no epsilon" else epsilon
            classes = 3 if mistake == "3 classes hard-coded" else len(pos_weights)
            reduce = ops.sum if mistake == "sum over examples" else ops.mean
            loss = 0.0
            for i in range(classes):
                loss += reduce(-(w_p[i] * y_true[:, i] * ops.log(y_pred[:, i] + eps)
                                 + w_n[i] * (1 - y_true[:, i]) * ops.log(1 - y_pred[:, i] + eps)))
            if mistake == "mean over classes":
                loss = loss / classes
            return loss
        return weighted_loss
    return get


@pytest.mark.parametrize("mistake", ["swapped weights", "no epsilon", "3 classes hard-coded",
                                     "sum over examples", "mean over classes"])
def test_loss_mistakes_are_caught(mistake, capsys):
    failures, out = run(public_tests.get_weighted_loss_test, loss_with(mistake), 1, capsys=capsys)
    assert failures and "All tests passed." not in out and "Hint:" in out


def test_a_loss_that_raises_fails_and_says_where(capsys):
    def broken(pos_weights, neg_weights, epsilon=1e-7):
        return lambda y_true, y_pred: undefined_name  # noqa: F821
    failures, out = run(public_tests.get_weighted_loss_test, broken, 1, capsys=capsys)
    assert len(failures) == 6 and "NameError" in out and "All tests passed." not in out


def test_data_folder_splits_are_what_the_split_command_writes(nih, tmp_path):
    main(["split", "--metadata", os.path.join(nih, "Data_Entry_2017_v2020.csv.gz"),
          "--images", os.path.join(nih, "images"), "--out", str(tmp_path), "--sizes", "659,109,420"])
    for name in ("train.csv", "valid.csv", "test.csv"):
        with open(os.path.join(DATA_DIR, name), "rb") as committed, open(tmp_path / name, "rb") as made:
            assert committed.read() == made.read(), f"data/nih/{name} differs from what `split` writes"


def test_the_package_has_no_import_circle():
    """Data flows one way: no module imports, even inside a function, one that imports it back."""
    package = os.path.join(REPO, "chestxray")
    imports = {}
    for name in os.listdir(package):
        if name.endswith(".py"):
            tree = ast.parse(open(os.path.join(package, name), encoding="utf-8").read())
            imports[name[:-3]] = {node.module.split(".")[0] if node.module else alias.name
                                  for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
                                  for alias in node.names}

    def reaches(start, goal, seen=()):
        return any(module == goal or (module not in seen and reaches(module, goal, (*seen, module)))
                   for module in imports.get(start, ()))

    circles = sorted(module for module in imports if reaches(module, module))
    assert not circles, f"modules in an import circle: {circles}"
