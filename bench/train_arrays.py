"""`train`'s recipe on in-memory arrays, for a Keras 3 backend without TensorFlow (JAX on a GPU).

    # here (TensorFlow): the training sample's mean/std and prevalence, as `train` computes them
    python bench/train_arrays.py stats --image-size 320 --out .gpu/preprocessing.json
    # on the GPU machine (Keras 3 on JAX, no TensorFlow):
    KERAS_BACKEND=jax python bench/train_arrays.py fit --preprocessing .gpu/preprocessing.json \\
        --out runs/nih-320 --epochs 100 --batch-size 32 --lr 1e-3 --augment standard --ema 0.99 \\
        --deadline $(( $(date +%s) + 400 ))

The same pieces as `python -m chestxray train`: `build_model`, the weighted loss
with this training table's frequencies, Adam with the weights' moving average
(EMA) from `Recipe.optimizer`, the `Augmentation` preset (as a Keras layer:
`Augmentation.layer`), one standardisation for training and validation
(`preprocessing.json`), the best epoch by validation mean AUROC of the EMA
weights. `bench/gpu_recipes.sh` runs two recipes at once on one GPU. What differs: the learning
rate is set per epoch, a tenth of --lr in epoch 0, then a cosine from --lr
over the epochs that fit before --deadline (counted once epoch 1 is timed; a
lent GPU's time is short and compiling takes minutes); images are
decoded once with Pillow at their stored size (the repo's 320 px PNGs; `train`'s
TensorFlow decoder gives the same pixels at that size, checked by `stats`), and
batches are whole (the few images of a last partial batch wait for the next
epoch's shuffle), so that XLA compiles one training step. Writes into `--out`:
model.weights.h5 (best epoch, EMA weights, no optimizer state),
preprocessing.json, run.json, history.csv, summary.json.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import asdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from chestxray.labels import LABELS  # noqa: E402
from chestxray.pixels import standardize  # noqa: E402
from chestxray.preprocessing import Preprocessing  # noqa: E402
from chestxray.recipe import Recipe  # noqa: E402


def read_images(df, image_dir, size):
    """uint8 (N, size, size, 1) from the PNGs, which must already be `size` px (no resampling here)."""
    from PIL import Image

    images = np.empty((len(df), size, size, 1), np.uint8)
    for i, name in enumerate(df["Image"]):
        path = os.path.join(image_dir, name)
        with Image.open(path) as im:
            if im.size != (size, size) or im.mode not in ("L", "RGB", "RGBA"):
                raise ValueError(f"{path}: {im.mode} {im.size[0]}x{im.size[1]}; this script reads 8-bit "
                                 f"PNGs of exactly {size}x{size} (resize them first, or use `chestxray train`)")
            # A few of the course's PNGs are RGBA with R = G = B: gray, as TensorFlow decodes them.
            images[i, ..., 0] = np.asarray(im.convert("L"))
    return images


def stats(args):
    """preprocessing.json as `train` writes it; and a check that Pillow reads what TensorFlow does."""
    from chestxray.data import load_image

    train_df = pd.read_csv(args.train_csv)
    pre = Preprocessing.from_training(train_df, args.image_dir, args.image_size, "featurewise",
                                      sample_size=args.sample_size, seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(pre.to_dict(), f, indent=2)
    head = pd.concat([train_df.head(8), train_df[train_df["Image"] == "00000773_001.png"]])  # one RGBA
    ours = read_images(head, args.image_dir, args.image_size)[..., 0].astype(np.float32)
    theirs = np.stack([load_image(os.path.join(args.image_dir, n), pre.size).numpy()[..., 0] for n in head["Image"]])
    print(f"wrote {args.out}: {pre.describe()}; Pillow vs TensorFlow decode, max |difference| "
          f"{np.abs(ours - theirs).max():.4f} over {len(head)} images")


def whole_batches(x, y, batch_size, seed):
    """Whole, shuffled batches of (uint8 images, labels); a new order each epoch."""
    import keras

    class WholeBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self):
            return len(x) // batch_size

        def __getitem__(self, i):
            rows = self.order[i * batch_size:(i + 1) * batch_size]
            return x[rows], y[rows]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))

    return WholeBatches()


def training_model(base, pre, augmentation, seed):
    """gray 0..255 -> [augment, training only] -> standardise -> 3 channels -> `base`."""
    import keras

    mean, std = pre.mean_std
    if mean is None:
        raise ValueError("this script trains featurewise only (preprocessing.json says samplewise)")
    inputs = keras.Input(tuple(base.inputs[0].shape[1:3]) + (1,), name="gray")
    x = standardize(augmentation.layer(seed)(keras.ops.cast(inputs, "float32")), mean, std)
    x = keras.ops.concatenate([x, x, x], axis=-1)
    return keras.Model(inputs, base(x))


def fit(args):
    import keras

    from chestxray.augment import Augmentation
    from chestxray.evaluate import ValidationMetrics
    from chestxray.losses import compute_class_freqs, get_weighted_loss
    from chestxray.model import build_model

    began = time.time()
    pre = Preprocessing.load(args.preprocessing)
    # The rate is set per epoch by `Validate` below (a constant rate for the optimizer), so that
    # the cosine can be fitted to the time left once an epoch's time is known.
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, image_size=pre.image_size,
                    augment=args.augment, schedule="plateau", warmup_epochs=1.0,
                    weight_decay=args.weight_decay, ema=args.ema, monitor="val_auroc",
                    stop_patience=args.epochs, seed=args.seed, sample_size=args.sample_size)
    keras.utils.set_random_seed(recipe.seed)
    train_df, valid_df = pd.read_csv(args.train_csv), pd.read_csv(args.valid_csv)
    if args.limit:
        train_df, valid_df = train_df.head(args.limit), valid_df.head(args.limit)
    x_train, x_valid = (read_images(df, args.image_dir, pre.image_size) for df in (train_df, valid_df))
    y_train, y_valid = (df[LABELS].to_numpy(np.float32) for df in (train_df, valid_df))
    os.makedirs(args.out, exist_ok=True)
    pre.save(args.out)
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({"recipe": asdict(recipe), "schedule": "per epoch: lr/10 in epoch 0, then cosine from lr "
                   "(epoch 1) over the epochs that fit before --deadline (summary.json)",
                   "backend": keras.backend.backend(), "script": "bench/train_arrays.py",
                   "data": {"train_images": train_df["Image"].tolist(),
                            "valid_images": valid_df["Image"].tolist()}}, f, indent=1)

    freq_pos, freq_neg = compute_class_freqs(y_train)
    loss = get_weighted_loss(freq_neg, freq_pos)
    batches = whole_batches(x_train, y_train, recipe.batch_size, recipe.seed)
    base = build_model(len(LABELS), recipe.weights, pre.image_size)
    model = training_model(base, pre, Augmentation.named(recipe.augment), recipe.seed)
    model.compile(optimizer=recipe.optimizer(len(batches)), loss=loss)

    history, best = [], {"val_auroc": -1.0, "epoch": None}
    weights_path = os.path.join(args.out, "model.weights.h5")
    plan = {"epochs": recipe.epochs}  # cut to what fits before the deadline, after epoch 1

    def rate(epoch):
        """The learning rate of an epoch: a tenth of the peak in the warm-up epoch (0), then
        cosine from the peak (epoch 1) towards 0 (the epoch after the last)."""
        if epoch < 1:
            return recipe.lr * 0.1
        return recipe.lr * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / (plan["epochs"] - 1)))

    class Validate(keras.callbacks.Callback):
        """The epoch's learning rate; after the EMA swap and `ValidationMetrics`: the history, the
        best epoch's base weights kept; after epoch 1 (compiled), the epochs fitted to the deadline."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()
            model.optimizer.learning_rate = rate(epoch)

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch, **{k: logs[k] for k in ("loss", "val_loss", "val_auroc", "learning_rate")},
                   "seconds": time.time() - self.started}
            history.append(row)
            pd.DataFrame(history).to_csv(os.path.join(args.out, "history.csv"), index=False)
            if row["val_auroc"] > best["val_auroc"]:
                best.update(val_auroc=row["val_auroc"], epoch=epoch)
                base.save_weights(weights_path)
            print(" ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
            if epoch == 1 and args.deadline:
                # 1.5: later epochs ran up to 1.6 times epoch 1's time on the H200 (two runs sharing it)
                fits = 2 + int((args.deadline - time.time()) / (1.5 * row["seconds"]))
                plan["epochs"] = max(2, min(recipe.epochs, fits))
                print(f"{plan['epochs']} epochs fit before the deadline ({row['seconds']:.1f} s each)", flush=True)
            if epoch + 1 >= plan["epochs"] or (args.deadline and time.time() > args.deadline):
                self.model.stop_training = True

    callbacks = ([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if recipe.ema else []) + [
        ValidationMetrics(x_valid, loss, y_valid), Validate()]
    model.fit(batches, epochs=recipe.epochs, callbacks=callbacks, verbose=0)
    summary = {"best_epoch": best["epoch"], "best_val_auroc": best["val_auroc"], "epochs_done": len(history),
               "epochs_planned": plan["epochs"], "epochs_max": recipe.epochs, "seconds": time.time() - began,
               "backend": keras.backend.backend()}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("stats", "fit"):
        p = commands.add_parser(name)
        p.add_argument("--train-csv", default="data/nih/train.csv")
        p.add_argument("--image-dir", default="data/nih/images")
        p.add_argument("--out", required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--sample-size", type=int, default=100)
    commands.choices["stats"].add_argument("--image-size", type=int, default=320)
    p = commands.choices["fit"]
    p.add_argument("--preprocessing", required=True, help="preprocessing.json written by `stats`")
    p.add_argument("--valid-csv", default="data/nih/valid.csv")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--ema", type=float, default=0.99)
    p.add_argument("--augment", default="standard")
    p.add_argument("--deadline", type=float, default=0, help="Unix time: stop before an epoch would pass it")
    p.add_argument("--limit", type=int, default=0, help="only the first N training and validation rows (a smoke test)")
    args = parser.parse_args()
    stats(args) if args.command == "stats" else fit(args)


if __name__ == "__main__":
    main()
