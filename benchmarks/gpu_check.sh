#!/usr/bin/env bash
# GPU check (issue 4): on a machine with an NVIDIA GPU and CuPy, run the test suite on the CuPy backend and the
# GPU benchmark (benchmarks/gpu_bench.py), and write a results file with the card, driver, CuPy version, commit
# and numbers. Needs python3 with cupy, numpy, pytest and hypothesis; no network; runs from the source tree.
#
#   bash benchmarks/gpu_check.sh                      # results under $OUT, default benchmarks/results/
#   GPUAD_COMMIT=<sha> OUT=/some/dir bash benchmarks/gpu_check.sh   # where the tree has no .git
#
# Budget: the benchmark first (at most 3 minutes), then the tests (at most 4.5): under 8 minutes in all. Exit status: non-zero
# when the tests or the benchmark failed; the results file says which.
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

echo "## benchmark (benchmarks/gpu_bench.py, 1e8 float32)" | tee -a "$RESULT"
timeout 180 "$PY" benchmarks/gpu_bench.py --size 1e8 --repeat 20 --json "$OUT/gpu_bench_$STAMP.json" 2>&1 \
    | tee -a "$RESULT"
BENCH=${PIPESTATUS[0]}
echo "benchmark exit status: $BENCH" | tee -a "$RESULT"

echo "## tests (GPUAD_BACKEND=cupy python3 -m pytest tests/; log: gpu_check_${STAMP}_pytest.log)" | tee -a "$RESULT"
timeout 270 "$PY" -m pytest -q -p no:cacheprovider -ra tests/ > "$OUT/gpu_check_${STAMP}_pytest.log" 2>&1
TESTS=$?
grep -E "^(FAILED|ERROR) |^[0-9]+ (passed|failed|error)|^=+ .*(passed|failed|error)" "$OUT/gpu_check_${STAMP}_pytest.log" | tail -n 60 | tee -a "$RESULT"
grep -E "^SKIPPED.*GPU" "$OUT/gpu_check_${STAMP}_pytest.log" | head -n 5 | tee -a "$RESULT"
echo "pytest exit status: $TESTS (124: timed out)" | tee -a "$RESULT"
echo "results: $RESULT"
[ "$TESTS" -eq 0 ] && [ "$BENCH" -eq 0 ]
