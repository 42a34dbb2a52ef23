"""`python -m chestxray COMMAND`: argument parsing only; the work is in the modules."""

import argparse
import os
import sys
import time


def _numbers(text, kind):
    try:
        return [kind(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def cmd_split(args):
    from .metadata import read_nih_metadata
    from .splits import prevalence_table, split_frame, write_splits

    df = read_nih_metadata(args.metadata, views=args.views.split(",") if args.views else None)
    if args.images:
        present = set(os.listdir(args.images))
        df = df[df["Image"].isin(present)].reset_index(drop=True)
        print(f"{len(df)} images of {args.metadata} are in {args.images} "
              f"({len(present) - len(df)} other files there are not in the table or not in --views)")
        if df.empty:
            sys.exit(f"error: no image of {args.metadata} is in {args.images}")
    frames = split_frame(df, fractions=args.fractions, sizes=args.sizes, seed=args.seed)
    for name, path in write_splits(frames, args.out).items():
        print(f"wrote {path}: {len(frames[name])} images, {frames[name]['PatientId'].nunique()} patients")
    table = prevalence_table(frames)
    print("\nprevalence per label (share of images):")
    print(table.T.to_string(float_format=lambda v: f"{v:.4f}" if v < 1 else f"{v:.0f}"))


def cmd_phantoms(args):
    from .phantoms import make_phantoms

    metadata = make_phantoms(args.out, n=args.n, seed=args.seed, size=args.size)
    print(f"wrote {args.n} phantoms to {args.out}/images, masks to {args.out}/masks, table {metadata}")


def cmd_demo(args):
    """The main job on what is at hand: NIH images if configured, phantoms otherwise."""
    import pandas as pd

    from .metadata import nih_dir, read_nih_metadata
    from .phantoms import make_phantoms
    from .splits import split_frame, write_splits
    from .train import train

    source = nih_dir()
    if os.environ.get("CHESTXRAY_NIH") and os.path.isdir(os.path.join(source, "images")):
        metadata, image_dir = os.path.join(source, "Data_Entry_2017_v2020.csv.gz"), os.path.join(source, "images")
        print(f"using the NIH images in {image_dir}")
    else:
        print(f"no NIH images configured (CHESTXRAY_NIH): making {args.n} phantoms in {args.out}")
        metadata = make_phantoms(os.path.join(args.out, "phantoms"), n=args.n, seed=args.seed)
        image_dir = os.path.join(args.out, "phantoms", "images")
    df = read_nih_metadata(metadata)
    df = df[df["Image"].isin(set(os.listdir(image_dir)))].reset_index(drop=True)
    splits = split_frame(df, fractions=[0.7, 0.1, 0.2], seed=args.seed)
    write_splits(splits, os.path.join(args.out, "splits"))
    print({name: len(frame) for name, frame in splits.items()}, "images in train/valid/test, "
          f"no patient in two (written to {os.path.join(args.out, 'splits')})")
    run = os.path.join(args.out, "run")
    print(f"training DenseNet121 (random init) for {args.epochs} epoch(s) at {args.image_size} px into {run}")
    start = time.perf_counter()
    train(splits["train"], splits["valid"], image_dir, run, epochs=args.epochs, image_size=args.image_size,
          seed=args.seed, verbose=2)
    print(f"done in {time.perf_counter() - start:.0f} s; history:")
    print(pd.read_csv(os.path.join(run, "history.csv")).to_string(index=False))
    print(f"model: {os.path.join(run, 'model.keras')}; loss curves: {os.path.join(run, 'loss.png')}")


def cmd_train(args):
    import pandas as pd

    from .train import train

    if bool(args.train_shards) != bool(args.valid_shards):
        sys.exit("error: give both --train-shards and --valid-shards")
    if not args.train_shards and not (args.train_csv and args.valid_csv and args.image_dir):
        sys.exit("error: give --train-csv, --valid-csv and --image-dir (or --train-shards and --valid-shards)")
    frames = [None, None] if args.train_shards else [pd.read_csv(p) for p in (args.train_csv, args.valid_csv)]
    train(*frames, args.image_dir, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
          image_size=args.image_size, weights=args.weights, strategy=args.strategy, seed=args.seed,
          cache=args.cache, lr_patience=args.lr_patience, lr_factor=args.lr_factor,
          lr_min_delta=args.lr_min_delta, stop_patience=args.stop_patience,
          train_shards=args.train_shards, valid_shards=args.valid_shards)
    print(f"wrote {os.path.join(args.out, 'model.keras')} and {os.path.join(args.out, 'history.csv')}")


def cmd_shard(args):
    import pandas as pd

    from .shards import write_shards

    n = write_shards(pd.read_csv(args.csv), args.image_dir, args.out, image_size=args.image_size,
                     per_shard=args.per_shard)
    print(f"wrote {n} shard(s) of {args.csv} to {args.out}")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m chestxray",
                                     description="Chest X-ray classification on NIH ChestX-ray14: data, splits, phantoms.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("split", help="patient-level, stratified train/valid/test CSVs from NIH metadata")
    p.add_argument("--metadata", required=True, help="Data_Entry_2017 style CSV (plain or .gz)")
    p.add_argument("--images", help="keep only the images present in this folder")
    p.add_argument("--out", required=True, help="folder for train.csv, valid.csv, test.csv")
    share = p.add_mutually_exclusive_group()
    share.add_argument("--sizes", type=lambda t: _numbers(t, int), help="images per split, e.g. 875,109,420")
    share.add_argument("--fractions", type=lambda t: _numbers(t, float), help="share of images, e.g. 0.7,0.1,0.2")
    p.add_argument("--views", help="keep only these View Position values, e.g. PA or PA,AP")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_split, fractions=None)

    p = sub.add_parser("phantoms", help="synthetic radiographs with lesion masks, NIH-style table and boxes")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="image side in pixels")
    p.set_defaults(run=cmd_phantoms)

    p = sub.add_parser("train", help="train DenseNet121 on split CSVs; run again to resume after a stop")
    p.add_argument("--train-csv")
    p.add_argument("--valid-csv")
    p.add_argument("--image-dir")
    p.add_argument("--train-shards", help="instead of the CSVs and images: folders written by `shard`")
    p.add_argument("--valid-shards")
    p.add_argument("--out", required=True, help="folder for the model, checkpoints, history and logs")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8, help="per device; the global batch is this times the devices")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--image-size", type=int, default=320)
    p.add_argument("--weights", default=None,
                   help="base weights: imagenet (downloads, needs internet) or a .h5/.weights.h5 file; default none")
    p.add_argument("--strategy", choices=["none", "mirrored", "multiworker"], default="none",
                   help="mirrored: all local GPUs; multiworker: the cluster in TF_CONFIG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="'memory' or a file path: keep decoded images after epoch 1")
    p.add_argument("--lr-patience", type=int, default=2, help="epochs without val_loss progress before the lr drops")
    p.add_argument("--lr-factor", type=float, default=0.1)
    p.add_argument("--lr-min-delta", type=float, default=1e-4, help="smallest val_loss drop that counts as progress")
    p.add_argument("--stop-patience", type=int, default=5, help="epochs without progress before stopping")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("shard", help="decoded, resized images as sharded TFRecords, for training at scale")
    p.add_argument("--csv", required=True, help="a split CSV (Image, the 14 labels, PatientId)")
    p.add_argument("--image-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--image-size", type=int, default=320)
    p.add_argument("--per-shard", type=int, default=1024, help="images per shard file")
    p.set_defaults(run=cmd_shard)

    p = sub.add_parser("demo", help="split and train, on NIH images if CHESTXRAY_NIH is set, else on phantoms")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--n", type=int, default=400, help="phantoms to make when there are no NIH images")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "split" and args.sizes is None and args.fractions is None:
        args.fractions = [0.7, 0.1, 0.2]
    args.run(args)
