#!/usr/bin/env bash
# One GPU session in one go (docs/gpu.md): install the carried wheels, profile a few training batches, run speed.py
# (PyKEEN's sLCWA loop and the device-side loop), run the test suite. Every step has its own time limit and writes
# into $OUT as it goes, so a step that runs out of time still leaves the others' results.
#
# On the GPU machine, from the repository root (carry .whl and .gpu/data, see docs/gpu.md):
#     bash benchmarks/gpu_session.sh
# Without a GPU it falls back to the CPU; SMOKE=1 shrinks every step to a quick check of the script itself:
#     SMOKE=1 OUT=/tmp/gpu_out bash benchmarks/gpu_session.sh
#
# Environment: OUT (where the results go, default ./gpu_out), DATA (default: the carried .gpu/data.tar.gz unpacked
# into /tmp/data, else .gpu/data/fb15k237), SMOKE (0/1), DEADLINE (seconds after the start by which all has ended).
# The device tool returns only a few files, so every step writes into a work folder and the end packs it into
# $OUT/gpu_session.tar.gz, next to summary.txt and steps.txt.
set -u
FINAL_OUT=${OUT:-$PWD/gpu_out}
OUT=$(mktemp -d /tmp/gpu_session.XXXX)
SMOKE=${SMOKE:-0}
DEADLINE=${DEADLINE:-560}
mkdir -p "$FINAL_OUT"
START=$(date +%s)
if [ -z "${DATA:-}" ]; then
    DATA_ROOT=.gpu/data
    if [ -f .gpu/data.tar.gz ]; then
        mkdir -p /tmp/data && tar xzf .gpu/data.tar.gz -C /tmp/data && DATA_ROOT=/tmp/data
    fi
    DATA=$DATA_ROOT/fb15k237
fi
DATA_ROOT=$(dirname "$DATA")
left() {  # seconds left before DEADLINE
    echo $((DEADLINE - ($(date +%s) - START)))
}
pack() {
    tar czf "$FINAL_OUT/gpu_session.tar.gz" -C "$OUT" . 2>/dev/null
    cp "$OUT/steps.txt" "$FINAL_OUT/steps.txt" 2>/dev/null
}

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log into $OUT/NAME.log, record the exit status
    local name=$1 limit=$2
    shift 2
    local begin
    begin=$(date +%s)
    echo "=== $name (limit ${limit}s) started at +$((begin - START))s" | tee -a "$OUT/steps.txt"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "=== $name rc=$rc in $(($(date +%s) - begin))s" | tee -a "$OUT/steps.txt"
    return 0
}

# 0. the machine, and the wheels the image lacks (installed next to it, not over it)
{
    date -u
    nproc
    uptime
    nvidia-smi --query-gpu=name,memory.total,memory.used,utilization.gpu --format=csv 2>/dev/null || echo "no nvidia-smi"
    nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv 2>/dev/null
    python --version
} >"$OUT/machine.txt" 2>&1
MISSING=$(python - <<'EOF'
import importlib.metadata as metadata
import pathlib

for wheel in sorted(pathlib.Path(".whl").glob("*.whl")):
    name = wheel.name.split("-")[0]
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        print(wheel)
EOF
)
for wheel in $MISSING; do
    # one at a time: a wheel that does not fit this machine must not block the others
    timeout 60 python -m pip install --quiet --no-deps --no-index --target /tmp/site "$wheel" >>"$OUT/install.log" 2>&1 &&
        echo "installed $wheel" >>"$OUT/install.log"
done
# the checkout's code first; /tmp/site adds the wheels (and this package's entry points, from its own wheel)
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python - >>"$OUT/machine.txt" 2>&1 <<'EOF'
import importlib.metadata as metadata

import torch

import pykeen
import pykeen_vbkgc

print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
for name in ("pykeen", "optuna", "class-resolver", "sqlalchemy", "pykeen-vbkgc", "pytest-xdist"):
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "MISSING")
from pykeen.training import training_loop_resolver  # noqa: E402

pykeen_vbkgc.register()
print("deviceslcwa registered:", training_loop_resolver.lookup("deviceslcwa").__name__)
print("pykeen", pykeen.get_version())
EOF
cat "$OUT/machine.txt"

if [ "$SMOKE" = 1 ]; then
    PROFILE_ARGS=(--warmup 1 --batches 2 --embedding-dim 8 --feature-dim 8)
    SPEED_ARGS=(--epochs 2 --num-test 50 --num-train 20000 --embedding-dim 8 --feature-dim 8)
    TESTS=(tests/test_device_sampling.py -k "registered or permutation")
else
    PROFILE_ARGS=()
    SPEED_ARGS=(--epochs 3)
    # the tests that exercise CUDA paths: models, samplers, loops, pipelines, HPO (the whole suite takes too long)
    TESTS=(tests/test_device_sampling.py tests/test_model.py tests/test_nscaching.py tests/test_pipeline.py
        tests/test_sampler.py tests/test_loss.py tests/test_hpo_example.py tests/test_nosampling.py tests/test_defaults.py
        tests/test_train_cli.py tests/test_resume.py)
fi

# 1. where a batch's time goes: phases, host-device synchronisations, top operators (host and device)
step profile 60 python benchmarks/profile_step.py --data "$DATA" "${PROFILE_ARGS[@]}" --output "$OUT/profile.md"
# 2. the issue's settings (d = 128, k = 16, batch 2,048, 768-d random features), the full test split; alone
step speed_device 100 python benchmarks/speed.py --data "$DATA" "${SPEED_ARGS[@]}" --training-loop deviceslcwa \
    --output "$OUT/speed_deviceslcwa.json"
step speed_slcwa 100 python benchmarks/speed.py --data "$DATA" "${SPEED_ARGS[@]}" --training-loop slcwa \
    --output "$OUT/speed_slcwa.json"
# whether compiling pays back on CUDA (not done by default there): the first epoch shows the compile time, the others
# the fused kernels' speed; a time-out means a compile longer than the limit
step speed_compiled 90 env PYKEEN_VBKGC_COMPILE=1 python benchmarks/speed.py --data "$DATA" "${SPEED_ARGS[@]}" \
    --training-loop deviceslcwa --output "$OUT/speed_compiled.json"
pack

# 3. side by side: the accuracy matrices of issue 18 (benchmarks/accuracy_matrix.py) and the tests of the CUDA paths;
# the matrices use the device-side loop if its speed run worked, else PyKEEN's
LOOP=slcwa
[ -f "$OUT/speed_deviceslcwa.json" ] && LOOP=deviceslcwa
REMAINING=$(left)
# each row trains until its budget, then evaluates the full test split: keep 100 s for that and the packing
FB_BUDGET=$((REMAINING - 100))
WN9_BUDGET=$(((REMAINING - 100) / 3))
echo "matrix training loop $LOOP, $REMAINING s left, budgets: FB15k-237 $FB_BUDGET s, WN9 $WN9_BUDGET s" \
    | tee -a "$OUT/steps.txt"
MATRIX=(python benchmarks/accuracy_matrix.py --training-loop "$LOOP" --threads 1)
if [ "$SMOKE" = 1 ]; then
    FB_ROWS=(--rows vbkgc-defaults transe-nssa9-k64 --max-epochs 1)
    WN9_ROWS=(--rows vbkgc-defaults --max-epochs 1)
    FB_SEEDS=()
else
    FB_ROWS=()
    WN9_ROWS=(--max-epochs 100)
    FB_SEEDS=(1 2)
fi
mkdir -p "$OUT/matrix"
step matrix_fb15k237 $((REMAINING - 10)) "${MATRIX[@]}" --matrix fb15k237 --dataset fb15k237multimodal \
    --data "$DATA_ROOT/fb15k237" --budget "$FB_BUDGET" --workers 10 "${FB_ROWS[@]}" \
    --output "$OUT/matrix/fb15k237.jsonl" &
for seed in "${FB_SEEDS[@]}"; do
    step "matrix_fb15k237_seed$seed" $((REMAINING - 10)) "${MATRIX[@]}" --matrix fb15k237 \
        --dataset fb15k237multimodal --data "$DATA_ROOT/fb15k237" --budget "$FB_BUDGET" --seed "$seed" --workers 2 \
        --rows transe-nssa9-k64 vbkgc-twins-nssa3-k64-lr1e-2 --output "$OUT/matrix/fb15k237.jsonl" &
done
step matrix_wn9 $((REMAINING - 10)) "${MATRIX[@]}" --matrix wn9 --dataset wn9 --data "$DATA_ROOT/wn9" \
    --budget "$WN9_BUDGET" --workers 4 "${WN9_ROWS[@]}" --output "$OUT/matrix/wn9.jsonl" &
XDIST=()
python -c "import xdist" 2>/dev/null && XDIST=(-n 3)
step tests $((REMAINING - 15)) python -m pytest -q -m "not slow" "${XDIST[@]}" -p no:cacheprovider --durations=15 \
    --junitxml="$OUT/junit.xml" "${TESTS[@]}" &
wait

# a summary for the caller (the tail of the output is what comes back first)
{
    echo "=== summary after $(($(date +%s) - START))s"
    cat "$OUT/steps.txt"
    grep -A 7 "^## [a-z_]*, " "$OUT/profile.md" 2>/dev/null | grep -v "^--$"
    python benchmarks/gpu_summary.py "$OUT"
    tail -n 15 "$OUT/tests.log" 2>/dev/null
} 2>&1 | tee "$OUT/summary.txt"
cp "$OUT/summary.txt" "$FINAL_OUT/summary.txt"
pack
