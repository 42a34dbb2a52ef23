"""Why was mixed precision slower on the GPU? float32 vs mixed_float16 vs mixed_bfloat16, fed two ways.

    KERAS_BACKEND=jax python bench/gpu_precision.py [--batch 64] [--steps 20]

`bench/gpu_train.py` fed `fit` NumPy arrays, so every step also sliced and
copied its batch from the host. Here, for each policy, the same compiled
(XLA) train step runs (a) on one batch already on the device
(`train_on_batch` with device arrays: the step alone) and, with `--fit`,
(b) through `fit` on NumPy arrays as before (after a warm-up `fit`: it
compiles its own function). Ratios against float32 are printed in one run.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench.gpu_train import setup  # noqa: E402


def measure(policy, batch, steps, with_fit, size=320):
    import jax

    model, x, y = setup(policy, True, batch, steps, size)
    x_dev, y_dev = jax.device_put(x[:batch]), jax.device_put(y[:batch])
    start = time.perf_counter()
    for _ in range(3):
        model.train_on_batch(x_dev, y_dev)  # compile + warm up
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x_dev, y_dev)
    on_device = batch * steps / (time.perf_counter() - start)
    from_host = None
    if with_fit:
        model.fit(x[:batch * 2], y[:batch * 2], batch_size=batch, epochs=1, verbose=0)  # fit compiles anew
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        from_host = batch * steps / (time.perf_counter() - start)
    return on_device, from_host, warm, float(np.ravel(loss)[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--policies", default="float32,mixed_bfloat16,mixed_float16")
    parser.add_argument("--fit", action="store_true", help="also time fit on NumPy arrays (a second compile)")
    args = parser.parse_args()
    import jax

    print(f"backend {keras.backend.backend()}, keras {keras.__version__}, jax {jax.__version__}, {jax.devices()}")
    base = None
    for policy in args.policies.split(","):
        on_device, from_host, warm, loss = measure(policy, args.batch, args.steps, args.fit)
        base = base or (on_device, from_host)
        fit = f", fit from host {from_host:7.1f} img/s ({from_host / base[1]:.2f}x)" if from_host else ""
        print(f"{policy:15s} batch {args.batch}: step alone {on_device:7.1f} img/s ({on_device / base[0]:.2f}x)"
              f"{fit}; compile {warm:.0f} s, loss {loss:.3f}", flush=True)


if __name__ == "__main__":
    main()
