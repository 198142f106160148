#!/usr/bin/env bash
# GPU check (issue 4): on a machine with an NVIDIA GPU and CuPy, run the test suite on the CuPy backend and the
# GPU benchmark (benchmarks/gpu_bench.py), and write a results file with the card, driver, CuPy version, commit
# and numbers. Needs python3 with cupy, numpy, pytest and hypothesis; no network; runs from the source tree.
#
#   bash benchmarks/gpu_check.sh                      # results under $OUT, default benchmarks/results/
#   GPUAD_COMMIT=<sha> OUT=/some/dir bash benchmarks/gpu_check.sh   # where the tree has no .git
#
# Budget (under 9 minutes in all): the benchmark first (at most 2 minutes), the checkpoint benchmark (at most
# 45 s), then the GPU-specific tests (the gpu marker, fusion and kernels: at most 2.5), then the rest of the suite
# on the CuPy backend (at most 3). Each step's counts are written even when a later one runs out of time. Exit
# status: non-zero when a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULT="$OUT/gpu_check_$STAMP.txt"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export GPUAD_BACKEND=cupy
export PYTHONDONTWRITEBYTECODE=1
if [ -z "${GPUAD_COMMIT:-}" ]; then
    GPUAD_COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
fi
export GPUAD_COMMIT

{
    echo "# gpuad GPU check, $STAMP"
    echo "commit: $GPUAD_COMMIT"
    echo "host: $(uname -srm)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader 2>&1 \
        | sed 's/^/nvidia-smi: /'
    "$PY" - <<'EOF' 2>&1
import sys
print("python:", sys.version.split()[0])
import numpy
print("numpy:", numpy.__version__)
try:
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print("cupy:", cupy.__version__)
    print("card:", name, "| cc", f"{props['major']}.{props['minor']}", "| SMs", props["multiProcessorCount"])
    print("cuda driver:", cupy.cuda.runtime.driverGetVersion(), "| cuda runtime:", cupy.cuda.runtime.runtimeGetVersion())
except Exception as e:
    print("cupy: NOT USABLE:", type(e).__name__, e)
EOF
} > "$RESULT"
cat "$RESULT"

SIZE="${GPUAD_BENCH_SIZE:-1e8}"
echo "## benchmark (benchmarks/gpu_bench.py, $SIZE float32)" | tee -a "$RESULT"
timeout 120 "$PY" benchmarks/gpu_bench.py --size "$SIZE" --repeat 20 --json "$OUT/gpu_bench_$STAMP.json" 2>&1 \
    | tee -a "$RESULT"
BENCH=${PIPESTATUS[0]}
echo "benchmark exit status: $BENCH" | tee -a "$RESULT"
echo "## checkpoint benchmark (benchmarks/checkpoint_bench.py: MLP gradient, batch 4096, memory pool peak)" \
    | tee -a "$RESULT"
timeout 45 "$PY" benchmarks/checkpoint_bench.py 4096 10 2>&1 | tee -a "$RESULT"
echo "checkpoint benchmark exit status: ${PIPESTATUS[0]}" | tee -a "$RESULT"

run_tests() {  # name, time limit, pytest arguments...
    local name="$1" limit="$2"
    shift 2
    local log="$OUT/gpu_check_${STAMP}_$name.log"
    echo "## tests: $name (GPUAD_BACKEND=cupy pytest $*; log: $(basename "$log"))" | tee -a "$RESULT"
    timeout "$limit" "$PY" -m pytest -q -p no:cacheprovider -ra "$@" > "$log" 2>&1
    local status=$?
    grep -E "^(FAILED|ERROR) |^[0-9]+ (passed|failed|error)|^=+ .*(passed|failed|error)" "$log" | tail -n 40 \
        | tee -a "$RESULT"
    echo "pytest exit status ($name): $status (124: timed out)" | tee -a "$RESULT"
    return "$status"
}
run_tests gpu 150 tests/test_kernels.py tests/test_fusion.py
GPU_TESTS=$?
run_tests suite 180 tests/ --ignore=tests/test_kernels.py --ignore=tests/test_fusion.py
TESTS=$?
echo "results: $RESULT"
[ "$GPU_TESTS" -eq 0 ] && [ "$TESTS" -eq 0 ] && [ "$BENCH" -eq 0 ]
