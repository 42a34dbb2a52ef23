"""`python -m chestxray COMMAND`: argument parsing only; the work is in the modules."""

import argparse
import ast
import dataclasses
import json
import os
import sys
import time

import numpy as np
import pandas as pd

# What imports TensorFlow (data, model, train, shards, evaluate, explain) or nbformat (course) is
# imported by the commands that use it: `--help` and the other commands start in a fraction of a second.
from .demo import run_demo
from .errors import UserError
from .grade import grade
from .i18n import compile_catalogs
from .labels import NIH, Table
from .metadata import chexpert_table, read_bboxes, read_chexpert, read_nih_metadata
from .paths import COURSE_SOURCE, SHIPPED_MODEL
from .phantoms import make_phantoms
from .preprocessing import Preprocessing
from .recipe import Recipe
from .report import build_report
from .splits import prevalence_table, split_frame, write_splits


def _numbers(text, kind):
    try:
        return [kind(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def _table(args, default=None):
    """The `Table` that --labels, --x-col and --patient-col describe (unset: `default`'s, the NIH's)."""
    default = default or NIH
    return Table(tuple(args.labels.split(",")) if args.labels else default.labels, args.x_col or default.x_col,
                 args.patient_col or default.patient_col)


def cmd_split(args):
    if args.format == "chexpert":
        table = _table(args, chexpert_table())
        df = read_chexpert(args.metadata, args.uncertain, table.labels)
    else:
        table = _table(args)
        df = read_nih_metadata(args.metadata, views=args.views.split(",") if args.views else None)
    if args.images:
        present = set(os.listdir(args.images))
        df = df[df[table.x_col].isin(present)].reset_index(drop=True)
        print(f"{len(df)} images of {args.metadata} are in {args.images} "
              f"({len(present) - len(df)} other files there are not in the table or not in --views)")
        if df.empty:
            sys.exit(f"error: no image of {args.metadata} is in {args.images}")
    fractions = args.fractions or (None if args.sizes else [0.7, 0.1, 0.2])
    frames = split_frame(df, fractions=fractions, sizes=args.sizes, seed=args.seed, table=table)
    for name, path in write_splits(frames, args.out, table).items():
        print(f"wrote {path}: {len(frames[name])} images, {frames[name][table.patient_col].nunique()} patients")
    print("\nprevalence per label (share of images):")
    print(prevalence_table(frames, table).T.to_string(float_format=lambda v: f"{v:.4f}" if v < 1 else f"{v:.0f}"))


def cmd_phantoms(args):
    metadata = make_phantoms(args.out, n=args.n, seed=args.seed, size=args.size)
    print(f"wrote {args.n} phantoms to {args.out}/images, masks to {args.out}/masks, table {metadata}")


def cmd_demo(args):
    """The main job: the shipped model (or one trained first with --train) on the course's test images."""
    metrics, localization, report = run_demo(args.out, args.model, n_boot=args.n_boot, train_first=args.train,
                                             epochs=args.epochs, image_size=args.image_size, seed=args.seed)
    print(metrics[["auroc", "ci_low", "ci_high", "pr_auc", "positives"]].to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"mean AUROC {metrics['auroc'].mean():.3f} over {int(metrics['auroc'].notna().sum())} labels")
    print("\nGrad-CAM pointing game on the radiologists' boxes (centre_hit_rate: a heatmap that always "
          "points at the image centre):")
    print(localization.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\nreport: {report}")


def cmd_train(args):
    from .train import train

    if bool(args.train_shards) != bool(args.valid_shards):
        sys.exit("error: give both --train-shards and --valid-shards")
    if not args.train_shards and not (args.train_csv and args.valid_csv and args.image_dir):
        sys.exit("error: give --train-csv, --valid-csv and --image-dir (or --train-shards and --valid-shards)")
    frames = [None, None] if args.train_shards else [pd.read_csv(p) for p in (args.train_csv, args.valid_csv)]
    recipe = Recipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe)})
    train(*frames, args.image_dir, args.out, recipe, table=_table(args), strategy=args.strategy, cache=args.cache,
          train_shards=args.train_shards, valid_shards=args.valid_shards, verbose=args.verbose)
    print(f"wrote {os.path.join(args.out, 'model.weights.h5')}, model.keras and history.csv in {args.out}")


def cmd_shard(args):
    from .shards import write_shards

    table = _table(args)
    n = write_shards(pd.read_csv(args.csv), args.image_dir, args.out, image_size=args.image_size,
                     per_shard=args.per_shard, x_col=table.x_col, y_cols=list(table.labels))
    print(f"wrote {n} shard(s) of {args.csv} to {args.out}")


def _model_and_settings(args):
    """The model and the `Preprocessing` it was trained with (preprocessing.json beside it, or
    a sample of --train-csv's images, as the course's test generator computed them)."""
    from .model import load_model

    model = load_model(args.model)
    train_df = pd.read_csv(args.train_csv) if args.train_csv else None
    pre = Preprocessing.for_model(args.model, train_df, args.train_image_dir or getattr(args, "image_dir", None),
                                  image_size=model.input_shape[1])
    if tuple(pre.size) != tuple(model.input_shape[1:3]):
        sys.exit(f"error: {pre.source} says {pre.size} px, the model takes {model.input_shape[1:3]}")
    print(f"evaluating {os.path.relpath(args.model)}; preprocessing: {pre.describe()}", file=sys.stderr)
    return model, pre


def cmd_evaluate(args):
    from .evaluate import comparison_table, evaluate

    model, pre = _model_and_settings(args)
    metrics = evaluate(model, pd.read_csv(args.test_csv), args.image_dir, pre, args.out, n_boot=args.n_boot,
                       seed=args.seed, batch_size=args.batch_size, gallery=args.gallery, x_col=args.x_col)
    print(metrics.drop(columns="note").to_string(float_format=lambda v: f"{v:.3f}"),
          comparison_table(metrics).to_string(), sep="\n\n")
    print(f"\nwrote predictions.csv, scores.csv, metrics.csv, comparison.csv, calibration.csv, roc.png, "
          f"reliability.png and gradcam/ to {args.out}")


def cmd_predict(args):
    model, pre = _model_and_settings(args)
    images = np.stack([pre.load_file(path)[0] for path in args.images])
    scores = model.predict(images, batch_size=8, verbose=0)
    calibrated = pre.prevalence is not None
    probabilities = pre.calibrate(scores) if calibrated else scores
    if args.json:
        print(json.dumps({path: {label: {"probability": round(float(p), 6), "score": round(float(s), 6)}
                                 for label, p, s in zip(pre.labels, ps, ss)}
                          for path, ps, ss in zip(args.images, probabilities, scores)}, indent=2))
        return
    for path, ps, ss in zip(args.images, probabilities, scores):
        table = pd.DataFrame({"probability": ps, "score": ss}, index=list(pre.labels))
        print(f"{path}:")
        print(table.sort_values("probability", ascending=False).to_string(float_format=lambda v: f"{v:.3f}"))
    print("probability: " + ("the score at each label's training prevalence (prior correction)" if calibrated
                             else "the raw score (no training prevalence known for this model)")
          + "; score: the model's output (trained as if each label were present half the time)")


def cmd_gradcam(args):
    from .explain import explain_files, save_overlays

    model, pre = _model_and_settings(args)
    labels, chosen = list(pre.labels), args.labels.split(",") if args.labels else None
    if set(chosen or ()) - set(labels):
        sys.exit(f"error: unknown label(s) {sorted(set(chosen) - set(labels))}; the model has {labels}")
    os.makedirs(args.out, exist_ok=True)
    paths = [os.path.join(args.image_dir, name) for name in args.images]
    for path, (gray, heatmaps, probabilities) in zip(paths, explain_files(model, paths, pre, labels, _cam(args))):
        shown = [labels.index(k) for k in chosen] if chosen else np.argsort(-probabilities)[:args.top]
        target = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0] + "_gradcam.png")
        save_overlays(target, gray, heatmaps, probabilities, labels, shown, title=os.path.basename(path))
        print(f"wrote {target}")


def _cam(args):
    """The heatmap settings of --layer, --method, --flip: the default's, for those not given."""
    from .explain import Cam
    return Cam.chosen(args.layer, args.method, None if args.flip is None else args.flip == "on")


def _cam_arguments(p):
    p.add_argument("--layer", help="layer whose feature maps are weighed (default: the model card's choice, "
                                   "else the last 4-D one)")
    p.add_argument("--method", choices=("gradcam", "hirescam"),  # explain.METHODS, without importing TensorFlow here
                   help="gradcam or hirescam (default: the model card's choice)")
    p.add_argument("--flip", choices=["on", "off"], help="average with the mirrored image (default: the model "
                                                         "card's choice)")


def cmd_localize(args):
    from .explain import localize

    model, pre = _model_and_settings(args)
    boxes = read_bboxes(args.bbox)
    present = boxes["Image"].map(lambda name: os.path.exists(os.path.join(args.image_dir, name)))
    print(f"{int(present.sum())} of {len(boxes)} boxes have their image in {args.image_dir}; "
          f"{int((~present).sum())} are left out")
    if not present.any():
        sys.exit(f"error: no boxed image of {args.bbox} is in {args.image_dir}")
    _, per_class = localize(model, boxes[present], args.image_dir, pre, args.box_size, _cam(args), out=args.out)
    print(per_class.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"wrote localize.csv and localize_boxes.csv to {args.out}")


def cmd_report(args):
    print(f"wrote {build_report(args.eval, args.out)}")


def cmd_notebook(args):
    from . import course

    default_student, default_solution = course.release_paths(args.lang)
    args.student, args.solution = args.student or default_student, args.solution or default_solution
    if args.lang != "en" and not args.check:
        compile_catalogs()  # the messages' .mo files, from the .po files beside them
    student, solution = course.build(args.source, None if args.check else args.student, args.solution,
                                     language=args.lang)
    if args.check:
        with open(args.student, encoding="utf-8") as f:
            if f.read() != student:
                sys.exit(f"error: {args.student} differs from what {args.source} builds: "
                         "run `python -m chestxray notebook` and commit it")
        print(f"{args.student} is up to date with {args.source}")
    else:
        print(f"wrote {args.student} (student release) and {args.solution} (solutions)")
    if args.execute:
        parameters = {name: _literal(value) for name, value in (item.split("=", 1) for item in args.parameter or [])}
        executed = os.path.splitext(args.solution)[0] + ".executed.ipynb"
        start = time.perf_counter()
        course.execute(args.solution, executed, parameters, cwd=os.getcwd(), timeout=args.cell_timeout)
        print(f"ran {args.solution} in {time.perf_counter() - start:.0f} s: {executed}")


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def cmd_grade(args):
    table = grade(args.submissions, args.out, hidden=args.hidden, jobs=args.jobs, timeout=args.timeout,
                  memory_mb=args.memory_mb, sandbox=not args.no_sandbox, feedback_dir=args.feedback,
                  max_mb=args.max_mb)
    if len(table):
        scores = [c for c in table.columns if c.endswith("_score")]
        print(table[["submission", *scores, "total"]].to_string(index=False))
    beside = os.path.dirname(os.path.abspath(args.out))
    print(f"wrote {args.out}: {len(table)} submission(s); feedback per submission in "
          f"{args.feedback or os.path.join(beside, 'feedback')}; the class's summary in {beside}/summary.html")


def _model_arguments(p, model_default=None):
    p.add_argument("--model", required=model_default is None, default=model_default,
                   help="a .keras file from `train`, or weights of the whole model (.h5)"
                   + (f" (default {model_default})" if model_default else ""))
    p.add_argument("--train-csv", help="for a model without preprocessing.json beside it: its training table")
    p.add_argument("--train-image-dir", help="the images of --train-csv (default: --image-dir)")


def _table_arguments(p, labels=True, patients=True):
    """--labels, --x-col, --patient-col: the columns of the CSVs (default: the NIH course's)."""
    if labels:
        p.add_argument("--labels", help="comma-separated label columns, in the model's order (default: the 14 NIH "
                                        "labels; for --format chexpert, its 5 competition labels)")
    p.add_argument("--x-col", help="the column of image file names (default Image; chexpert: Path)")
    if patients:
        p.add_argument("--patient-col", help="the column of patient ids (default PatientId; chexpert: Patient)")


def _recipe_arguments(p):
    """One option per field of `Recipe`, with its type, choices, default and help."""
    for f in dataclasses.fields(Recipe):
        kind = f.type if f.type in (int, float) else None
        help = f.metadata["help"] + (" (default %(default)s)" if f.metadata["help"] else "")
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, choices=f.metadata["choices"], default=f.default,
                       help=help or None)


def _data_commands(sub):
    """split, phantoms, shard: tables and images in."""
    p = sub.add_parser("split", help="patient-level, stratified train/valid/test CSVs from a data set's table")
    p.add_argument("--metadata", required=True, help="Data_Entry_2017 style CSV (plain or .gz), or CheXpert's")
    p.add_argument("--format", choices=["nih", "chexpert"], default="nih", help="the table's source (default nih)")
    p.add_argument("--uncertain", choices=["ones", "zeros"], default="ones",
                   help="chexpert: what an uncertain label (-1) becomes (default ones: U-Ones of Irvin et al. 2019)")
    p.add_argument("--images", help="keep only the images present in this folder")
    p.add_argument("--out", required=True, help="folder for train.csv, valid.csv, test.csv")
    share = p.add_mutually_exclusive_group()
    share.add_argument("--sizes", type=lambda t: _numbers(t, int),
                       help="images per split, e.g. 659,109,420 (the course's)")
    share.add_argument("--fractions", type=lambda t: _numbers(t, float), help="share of images, e.g. 0.7,0.1,0.2")
    p.add_argument("--views", help="keep only these View Position values, e.g. PA or PA,AP")
    p.add_argument("--seed", type=int, default=0)
    _table_arguments(p)
    p.set_defaults(run=cmd_split)

    p = sub.add_parser("phantoms", help="synthetic radiographs with lesion masks, NIH-style table and boxes")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="image side in pixels")
    p.set_defaults(run=cmd_phantoms)

    p = sub.add_parser("shard", help="decoded, resized images as sharded TFRecords, for training at scale")
    p.add_argument("--csv", required=True, help="a split CSV (default: Image, the 14 labels, PatientId)")
    p.add_argument("--image-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--image-size", type=int, default=320)
    p.add_argument("--per-shard", type=int, default=1024, help="images per shard file")
    _table_arguments(p, patients=False)
    p.set_defaults(run=cmd_shard, patient_col=None)


def _train_command(sub):
    """train, with one option per field of the recipe."""
    p = sub.add_parser("train", help="train DenseNet121 on split CSVs; run again to resume after a stop")
    p.add_argument("--train-csv")
    p.add_argument("--valid-csv")
    p.add_argument("--image-dir")
    p.add_argument("--train-shards", help="instead of the CSVs and images: folders written by `shard`")
    p.add_argument("--valid-shards")
    p.add_argument("--out", required=True, help="folder for the model, checkpoints, history and logs")
    _table_arguments(p)
    _recipe_arguments(p)
    p.add_argument("--strategy", choices=["none", "mirrored", "multiworker"], default="none",
                   help="mirrored: all local GPUs; multiworker: the cluster in TF_CONFIG")
    p.add_argument("--cache", default=None, help="'memory' or a file path: keep decoded images after epoch 1")
    p.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2], help="Keras' fit: 2 prints a line an epoch")
    p.set_defaults(run=cmd_train)


def _model_commands(sub):
    """evaluate, predict, gradcam, localize, report: what a trained model says, and why."""
    p = sub.add_parser("evaluate", help="predictions, AUROC with bootstrap CIs, PR-AUC, ROC, comparison, Grad-CAM")
    _model_arguments(p)
    p.add_argument("--test-csv", required=True)
    p.add_argument("--image-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n-boot", type=int, default=10000, help="bootstrap replicates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--gallery", type=int, default=4, help="test images to show with Grad-CAM")
    _table_arguments(p, labels=False, patients=False)  # the labels: the model's, those the table has
    p.set_defaults(run=cmd_evaluate, x_col="Image")

    p = sub.add_parser("predict", help="probability per label for PNG, JPEG or DICOM files")
    p.add_argument("images", nargs="+")
    _model_arguments(p, model_default=os.path.relpath(SHIPPED_MODEL))
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=cmd_predict, image_dir=None)

    p = sub.add_parser("gradcam", help="Grad-CAM overlays, all classes from one pass per batch")
    p.add_argument("images", nargs="+", help="file names inside --image-dir")
    _model_arguments(p)
    p.add_argument("--image-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--labels", help="comma-separated labels to show (default: the --top most probable)")
    p.add_argument("--top", type=int, default=4)
    _cam_arguments(p)
    p.set_defaults(run=cmd_gradcam)

    p = sub.add_parser("localize", help="does Grad-CAM point at the radiologists' boxes? pointing game and IoU")
    _model_arguments(p)
    p.add_argument("--bbox", required=True, help="BBox_List_2017 style CSV (plain or .gz)")
    p.add_argument("--image-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--box-size", type=int, default=1024,
                   help="side of the square images the boxes were drawn on (NIH: 1024)")
    _cam_arguments(p)
    p.set_defaults(run=cmd_localize)

    p = sub.add_parser("report", help="one self-contained HTML page from an evaluate folder")
    p.add_argument("--eval", required=True, help="the folder `evaluate` wrote")
    p.add_argument("--out", default="report.html")
    p.set_defaults(run=cmd_report)


def _course_commands(sub):
    """notebook, grade, demo: the course module and the main job."""
    p = sub.add_parser("notebook", help="build the student and solution notebooks from the course source")
    p.add_argument("--source", default=COURSE_SOURCE)
    p.add_argument("--lang", choices=["en", "pt-BR"], default="en",
                   help="the release's language (pt-BR: from course/C1W1_Assignment.pt-BR.txt)")
    p.add_argument("--student", help="default: C1W1_Assignment.ipynb (C1W1_Assignment.pt-BR.ipynb for pt-BR)")
    p.add_argument("--solution", help="default: build/C1W1_Assignment_solution[.pt-BR].ipynb")
    p.add_argument("--check", action="store_true", help="fail if the committed student notebook is out of date")
    p.add_argument("--run", dest="execute", action="store_true", help="then execute the solution notebook headless")
    p.add_argument("-p", "--parameter", action="append", metavar="NAME=VALUE",
                   help="set a parameter of the notebook's parameters cell (with --run)")
    p.add_argument("--cell-timeout", type=int, default=900)
    p.set_defaults(run=cmd_notebook)

    p = sub.add_parser("grade", help="grade a folder of student notebooks in a sandbox: a score per exercise")
    p.add_argument("submissions", help="folder of .ipynb files")
    p.add_argument("--out", default="grades.csv")
    p.add_argument("--hidden", help="JSON file of hidden cases (the public cases' format), graded apart")
    p.add_argument("--feedback", help="folder for one Markdown feedback file per submission "
                                      "(default: feedback/ beside --out)")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: the core count)")
    p.add_argument("--timeout", type=int, default=60, help="seconds per cell and per case")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory an exercise's processes may add, together")
    p.add_argument("--max-mb", type=int, default=32, help="larger notebooks are not read (a row says so)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade without the sandbox where none can be made (students' code then reaches "
                        "everything this user can)")
    p.set_defaults(run=cmd_grade)

    p = sub.add_parser("demo", help="the shipped model on the course's test images: metrics with CIs, "
                                    "calibration, Grad-CAM, localization, report.html")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--model", default=os.path.relpath(SHIPPED_MODEL), help="default: the shipped model")
    p.add_argument("--n-boot", type=int, default=10000, help="bootstrap replicates")
    p.add_argument("--train", action="store_true",
                   help="first train a model from random weights on data/nih/train.csv, and evaluate that one")
    p.add_argument("--epochs", type=int, default=2, help="with --train")
    p.add_argument("--image-size", type=int, default=128, help="with --train")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_demo)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m chestxray",
                                     description="Chest X-ray classification on NIH ChestX-ray14: data, training, "
                                                 "evaluation, explanation.",
                                     epilog="Errors in the input end in one line; add --debug for the traceback.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_data_commands, _train_command, _model_commands, _course_commands):
        add(sub)
    return parser


def main(argv=None):
    """Run a command; errors propagate (for callers and tests). `entry` is the command line's."""
    args = build_parser().parse_args(argv)
    args.run(args)


# What a user's input can cause: a missing or undecodable file, a bad value, another run's folder,
# a full disk.
USER_ERRORS = (UserError, FileNotFoundError, FileExistsError, IsADirectoryError, PermissionError, ValueError)


def entry(argv=None):
    """`python -m chestxray`: errors in what the user gave end in one line, `error: ...`, and exit
    status 2; other exceptions are bugs and keep their traceback. `--debug` shows every traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        main([arg for arg in argv if arg != "--debug"])
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"error: {str(e).strip() or type(e).__name__}", file=sys.stderr)
        sys.exit(2)
