"""Runs `train` with a fault injected at the Nth call of one write, then the same command again.

    python tests/fault_harness.py SPLIT IMAGES WORK POINTS_JSON

POINTS_JSON: a list of [kind, n]. For each, a fresh folder WORK/<kind>-<n>: a first run
killed (os._exit, as SIGKILL would leave it) at the n-th
  replace   os.replace (every rename: atomic files and the commit's two renames),
  save      keras.Model.save, with the file cut to half its bytes first,
  weights   keras.Model.save_weights, cut the same way,
  batch     training batch (the middle of an epoch),
  enospc    os.replace, which raises ENOSPC instead (the run must stop with a message),
  erofs     os.replace, which raises EROFS (a read-only folder; root ignores chmod, so injected),
then the same call of `train` again, to the end. ["count", 0] runs once without a fault
and reports how many calls of each kind a run makes; ["reference", 0] is the
uninterrupted run. Every run is a child forked from this process, which imported
TensorFlow once and ran nothing of it. Prints one JSON line per point.
"""

import errno
import json
import os
import sys
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import pandas as pd  # noqa: E402

from chestxray.train import train  # noqa: E402
from tests.test_train import tiny_model  # noqa: E402

SETTINGS = dict(epochs=2, batch_size=8, image_size=32, lr=3e-3, schedule="cosine", warmup_epochs=1, ema=0.8,
                augment="flip", stop_patience=100, model_fn=tiny_model, verbose=0)
COUNTS = {"replace": 0, "save": 0, "weights": 0, "batch": 0}
FAILURES = {"enospc": errno.ENOSPC, "erofs": errno.EROFS}


def install(kind, n):
    """Patch the chosen write so that its n-th call kills the process (n = 0: only count)."""
    def hit(name):
        COUNTS[name] += 1
        return kind == name and COUNTS[name] == n

    real_replace, real_batch = os.replace, keras.callbacks.TerminateOnNaN.on_train_batch_end

    def replace(src, dst, **kw):
        if hit("replace"):
            os._exit(137)
        if COUNTS["replace"] == n and kind in FAILURES:
            raise OSError(FAILURES[kind], os.strerror(FAILURES[kind]), dst)
        real_replace(src, dst, **kw)

    def cut_short(real, name):
        """`real` (a save), then, at the n-th call, the file cut to half its bytes and the process killed."""
        def save(self, path, *a, **kw):
            real(self, path, *a, **kw)
            if hit(name):
                os.truncate(path, os.path.getsize(path) // 2)
                os._exit(137)
        return save

    def batch_end(self, batch, logs=None):
        if hit("batch"):
            os._exit(137)
        return real_batch(self, batch, logs)

    os.replace = replace
    keras.Model.save, keras.Model.save_weights = cut_short(keras.Model.save, "save"), cut_short(
        keras.Model.save_weights, "weights")
    keras.callbacks.TerminateOnNaN.on_train_batch_end = batch_end


def run(frames, images, out, fault=None):
    """Train in a forked child; its exit code and the last line it printed on error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code, message = 0, ""
        try:
            if fault:
                install(*fault)
            train(frames["train"], frames["valid"], images, out, **SETTINGS)
        except BaseException as error:
            code, message = 1, f"{type(error).__name__}: {error}"
            traceback.print_exc()
        os.write(write, json.dumps({"message": message, "counts": COUNTS}).encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        report = json.loads(f.read() or b'{"message": "", "counts": {}}')
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), report


def main():
    split, images, work, points = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    frames = {name: pd.read_csv(os.path.join(split, f"{name}.csv")) for name in ("train", "valid")}
    for kind, n in points:
        out = os.path.join(work, f"{kind}-{n}")
        if kind in ("count", "reference"):
            code, report = run(frames, images, out, ("count", 0))
            print(json.dumps({"point": [kind, n], "first": code, "counts": report["counts"]}), flush=True)
            continue
        first, report = run(frames, images, out, (kind, n))
        second, again = run(frames, images, out)
        print(json.dumps({"point": [kind, n], "first": first, "first_message": report["message"],
                          "second": second, "second_message": again["message"]}), flush=True)


if __name__ == "__main__":
    main()
