#!/usr/bin/env bash
# Every GPU check in one script, well inside 10 minutes on one H200, its figures under $OUT:
#
#   OUT=/tmp/gpu-out DATA=/path/to/folder-with-cifar10-jpeg.tar.gz benchmarks/gpu_check.sh
#
# 1. the CUDA tests (`pytest -m cuda`: tests/test_cuda.py and the attacks' GPU checks);
# 2. benchmarks/gpu_throughput.py: curve training and one evaluated t point, mcbench's path
#    against the reference pipeline, bf16 and fp32;
# 3. benchmarks/pgd_cost.py (against torchattacks, where it is installed) and
#    benchmarks/hessian_cost.py (time per 1,000 images);
# 4. the gpu profile's backdoor-repair track end to end (needs CIFAR-10 under $DATA).
#
# Each step has its own time limit, so one that hangs costs only its share; a step that
# fails is noted in $OUT/summary.txt and the next one runs. Run from the repository root,
# with torch, torchvision, timm and the project's other dependencies installed; a folder
# .whl of wheels (torchattacks) is installed first when present.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:?set OUT to the folder the figures go to}"
DATA="${DATA:-}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg MCBENCH_CACHE="${MCBENCH_CACHE:-/tmp/mcbench-cache}"
summary="$OUT/summary.txt"
: >"$summary"

step() {  # step NAME SECONDS COMMAND...: run it, its output in $OUT/NAME.txt
    local name=$1 limit=$2
    shift 2
    local started=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
    local rc=$?
    echo "$name: exit $rc after $((SECONDS - started)) s (limit $limit s)" | tee -a "$summary"
}

nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
        export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.txt" 2>&1 ||
    echo "install: failed (see install.txt)" | tee -a "$summary"
python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" \
    >>"$summary" 2>&1

step cuda_tests 90 python3 -m pytest -m cuda -q -p no:cacheprovider tests/test_cuda.py \
    tests/test_pgd.py tests/test_cw.py
step throughput_bf16 120 python3 benchmarks/gpu_throughput.py --device cuda --precision bf16 \
    --out "$OUT/throughput_bf16.json"
step throughput_fp32 60 python3 benchmarks/gpu_throughput.py --device cuda --precision fp32 \
    --networks resnet18 --out "$OUT/throughput_fp32.json"
step pgd 45 python3 benchmarks/pgd_cost.py --device cuda --archs resnet18 --epochs 1 \
    --data-root "${DATA:-/nonexistent}" --cache "$MCBENCH_CACHE"
step hessian 45 python3 benchmarks/hessian_cost.py --device cuda --samples 1000 --repeats 3 \
    --archs convnet vgg16 preresnet20

if [ -n "$DATA" ]; then
    step gpu_profile 180 python3 -m mcbench run benchmarks.yaml --profile gpu \
        --track backdoor-repair --data-root "$DATA" --results "$OUT/gpu-results" \
        --workers-per-gpu 4
    python3 benchmarks/main_job_time.py --from "$OUT/gpu-results" >"$OUT/gpu_profile_time.txt" 2>&1
    rm -rf "$OUT/gpu-results/artifacts" "$OUT/gpu-results/cache"  # keep records, logs, tables
else
    echo "gpu_profile: skipped (DATA is not set: no CIFAR-10 copy)" | tee -a "$summary"
fi
