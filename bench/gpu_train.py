"""Training throughput of the course model on a GPU: float32 vs mixed_float16, with and without XLA.

    KERAS_BACKEND=jax python bench/gpu_train.py [--out results.txt] [--budget 280] [--xla both|on|off]

DenseNet121 + our weighted loss at 320x320, in-memory random tensors (the
input pipeline is measured by bench/train.py). For each configuration: build,
compile, one warm-up epoch (tracing/compilation), then a timed epoch; prints
images/s. Configurations run in order of interest until `--budget` seconds
are spent, each result written as soon as it is measured. Runs on any Keras 3
backend; "XLA" is `jit_compile=True` (for JAX, without it every op runs eagerly).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from chestxray.losses import get_weighted_loss  # noqa: E402
from chestxray.model import build_model  # noqa: E402

CONFIGS = [  # (policy, jit_compile, batch, timed steps)
    ("float32", True, 32, 30), ("mixed_float16", True, 32, 30),
    ("float32", True, 64, 20), ("mixed_float16", True, 64, 20),
    ("float32", False, 32, 5), ("mixed_float16", False, 32, 5),
    ("float32", False, 64, 4), ("mixed_float16", False, 64, 4),
]


def setup(policy, jit, batch, steps, size=320):
    """The compiled course model under `policy`, and `steps` batches of random images and labels."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_model(image_size=size)
    model.compile(keras.optimizers.Adam(1e-4), get_weighted_loss(np.full(14, 0.9), np.full(14, 0.1)),
                  jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * steps, size, size, 3), dtype=np.float32)
    y = (rng.random((batch * steps, 14)) < 0.1).astype(np.float32)
    return model, x, y


def measure(policy, jit, batch, steps, size=320):
    model, x, y = setup(policy, jit, batch, steps, size)
    start = time.perf_counter()
    model.fit(x[:batch * 2], y[:batch * 2], batch_size=batch, epochs=1, verbose=0)  # compile + warm up
    warm = time.perf_counter() - start
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    assert np.isfinite(history.history["loss"][0])
    return batch * steps / seconds, warm, history.history["loss"][0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None)
    parser.add_argument("--budget", type=float, default=280)
    parser.add_argument("--xla", choices=["both", "on", "off"], default="both")
    args = parser.parse_args()
    configs = [c for c in CONFIGS if args.xla == "both" or c[1] == (args.xla == "on")]
    began = time.perf_counter()
    lines = [f"backend {keras.backend.backend()}, keras {keras.__version__}"]
    if keras.backend.backend() == "jax":
        import jax
        lines.append(f"jax {jax.__version__}, devices {jax.devices()}")
    elif keras.backend.backend() == "torch":
        import torch
        lines.append(f"torch {torch.__version__}, device {torch.cuda.get_device_name(0)}")
    for line in lines:
        print(line, flush=True)
    for policy, jit, batch, steps in configs:
        if time.perf_counter() - began > args.budget:
            lines.append(f"skipped {policy} jit={jit} batch={batch}: budget spent")
            print(lines[-1], flush=True)
            continue
        rate, warm, loss = measure(policy, jit, batch, steps)
        lines.append(f"{policy:14s} xla={str(jit):5s} batch {batch:3d}: {rate:8.1f} images/s "
                     f"(warm-up/compile {warm:5.1f} s, {steps} timed steps, loss {loss:.3f})")
        print(lines[-1], flush=True)
        if args.out:
            with open(args.out, "w") as f:
                f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
