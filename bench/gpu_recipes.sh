#!/bin/bash
# Two recipes of bench/train_arrays.py at once on one GPU (Keras 3 on JAX), each stopped before
# $BUDGET seconds; then the two best by validation mean AUROC are packed into $OUT.
#   $PRE (.gpu/preprocessing.json): from `python bench/train_arrays.py stats` (needs TensorFlow: run it first, here)
#   OUT=results BUDGET=420 bash bench/gpu_recipes.sh
set -u
OUT=${OUT:-gpu-out}; BUDGET=${BUDGET:-420}
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
deadline=$(( $(date +%s) + BUDGET ))
mkdir -p runs "$OUT"
fit() {  # name, then train_arrays.py's options
    local name=$1; shift
    python3 bench/train_arrays.py fit --preprocessing "${PRE:-.gpu/preprocessing.json}" --out "runs/$name" \
        --deadline "$deadline" "$@" > "runs/$name.log" 2>&1
    echo "$name: exit $? $(tail -1 "runs/$name.log")"
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# Two at a time: four compiling at once took 190 s before their first epoch ended (2026-12-04).
fit b16-standard --batch-size 16 --epochs 150 & first=$!
fit b32-strong --batch-size 32 --epochs 150 --augment strong & second=$!
(sleep 200; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader) &
wait $first $second
# The two best runs' weights, each in two parts under the 16 MiB a returned file may have.
python3 - "$OUT" <<'PY'
import json, glob, os, sys
runs = sorted(glob.glob("runs/*/summary.json"), key=lambda p: -json.load(open(p))["best_val_auroc"])
for path in runs:
    print(os.path.dirname(path), json.load(open(path)))
for path in runs[:2]:
    name, data = os.path.basename(os.path.dirname(path)), open(os.path.join(os.path.dirname(path), "model.weights.h5"), "rb").read()
    half = len(data) // 2 + 1
    for i in range(2):
        open(os.path.join(sys.argv[1], f"{name}.part{i}"), "wb").write(data[i * half:(i + 1) * half])
PY
tar czf "$OUT/runs.tgz" --exclude='*.weights.h5' runs
ls -la "$OUT"
