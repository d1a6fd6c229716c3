#!/usr/bin/env bash
# The GPU checks, as one prepared script for a machine with a CUDA device: run from the repository root.
#
#   scripts/gpu_check.sh            # on a GPU machine: everything, output under $OUT (default ./gpu-check-out)
#   scripts/gpu_check.sh --cpu      # the same steps on the CPU at tiny sizes, with no installs (to test the script)
#
# Steps, each with a time limit, each one's output in a file of its own under $OUT and all of it in
# $OUT/gpu_check.log; a step that fails is reported and the next one runs (the exit status counts the failures):
#   1. the machine: nvidia-smi, python, torch and whether it sees CUDA;
#   2. a CUDA build of torch when the installed one is a CPU build (the default pip wheel is a CUDA one), and
#      `pip install -e .[dev]` (skipped with --no-install, or when specdsl and pytest import already);
#   3. `pytest -m gpu` (tests/train/test_gpu.py, tests/train/test_train_device.py);
#   4. benchmarks/train_speed.py --device cuda: the MNIST CNN in fp32 and bf16, ResNet-50 at 224x224 in bf16
#      (synthetic batches), each with --json;
#   5. benchmarks/scale.py on a reduced size (1,000 photos at 150x150, one round).
# The whole run is meant to fit in about 9 minutes of a 15-minute device lease.
set -u

MODE=cuda
INSTALL=1
for arg in "$@"; do
    case "$arg" in
        --cpu) MODE=cpu; INSTALL=0 ;;
        --no-install) INSTALL=0 ;;
        *) echo "usage: scripts/gpu_check.sh [--cpu] [--no-install]" >&2; exit 2 ;;
    esac
done

OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export KERAS_BACKEND=torch
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's specdsl, installed or not
export SPECDSL_CACHE="$OUT/cache"
FAILED=0
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

step() {  # step NAME SECONDS COMMAND...: run it under a time limit, its output into $OUT/NAME.txt
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*"
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    tail -n 40 "$OUT/$name.txt"
    if [ "$rc" -ne 0 ]; then
        FAILED=$((FAILED + 1))
        echo "== $name FAILED (exit $rc$([ "$rc" -eq 124 ] && echo ', out of time')) after $((SECONDS - t0))s"
    else
        echo "== $name ok in $((SECONDS - t0))s"
    fi
}

# 1. the machine
step machine 60 bash -c "nvidia-smi || true; $PY --version; $PY -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"available\", torch.cuda.is_available(), \"devices\", torch.cuda.device_count())'"

# 2. installs
if [ "$INSTALL" -eq 1 ]; then
    if ! $PY -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null; then
        # a CPU build of torch (scripts/setup.sh keeps one on machines without a GPU): PyPI's wheel of the same
        # version is a CUDA build. The CPU build's "+cpu" version satisfies `torch==V`, hence the forced
        # reinstall (without dependencies, so numpy & co stay), then an install that adds its nvidia-* wheels.
        V=$($PY -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo "")
        step install_torch 420 bash -c "$PY -m pip install --force-reinstall --no-deps 'torch${V:+==$V}' && $PY -m pip install 'torch${V:+==$V}'"
    fi
    if ! $PY -c 'import specdsl, pytest, keras' 2>/dev/null; then
        step install_specdsl 300 $PY -m pip install -e ".[dev]"
    fi
fi

if [ "$MODE" = cuda ]; then
    if ! $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "== torch sees no CUDA device here: the gpu tests would all be skipped; stopping (see $OUT/machine.txt)"
        exit 1
    fi
    # 3. the gpu tests
    step pytest_gpu 300 $PY -m pytest -m gpu -p no:cacheprovider -q -rs tests/train/test_gpu.py tests/train/test_train_device.py
    # 4. train_speed on the GPU
    step speed_mnist_fp32 150 $PY benchmarks/train_speed.py --device cuda --precision fp32 --rounds 3 --json "$OUT/speed_mnist_fp32.json"
    step speed_mnist_bf16 150 $PY benchmarks/train_speed.py --device cuda --precision bf16 --rounds 3 --json "$OUT/speed_mnist_bf16.json"
    step speed_resnet50_bf16 300 $PY benchmarks/train_speed.py --model resnet50 --device cuda --precision bf16 --images 512 --rounds 2 --windows 2 --json "$OUT/speed_resnet50_bf16.json"
    # 5. scale.py, reduced
    step scale 300 $PY benchmarks/scale.py --images 1000 --size 150 --rounds 1
else
    # the same steps on the CPU at tiny sizes: what can be checked on a machine without a GPU
    step pytest_gpu 300 $PY -m pytest -m gpu -p no:cacheprovider -q -rs tests/train/test_gpu.py
    step speed_quick 600 $PY benchmarks/train_speed.py --quick --device cpu --threads 1 --json "$OUT/speed_quick.json"
    step scale 300 $PY benchmarks/scale.py --images 24 --size 20 --rounds 1 --threads 1
fi

echo "== done: $FAILED step(s) failed; output in $OUT"
exit "$FAILED"
