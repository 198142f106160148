#!/usr/bin/env bash
# GPU check (issue 4): on a machine with an NVIDIA GPU and CuPy, run the GPU benchmark (benchmarks/gpu_bench.py),
# the GPU tests and the test suite on the CuPy backend, and write a results file with the card, driver, CuPy
# version, commit and numbers. Needs python3 with cupy, numpy, pytest and hypothesis (pytest-xdist and
# pytest-timeout are used when installed: the test extra has them); no network; runs from the source tree.
#
#   bash benchmarks/gpu_check.sh                      # results under $OUT, default benchmarks/results/
#   GPUAD_COMMIT=<sha> OUT=/some/dir bash benchmarks/gpu_check.sh   # where the tree has no .git
#
# Budget: under 7 minutes in all on an H100 with no compile cache (GPUAD_CHECK_BUDGET seconds, default 400, for
# the steps together; each step's limit is the smaller of its own cap and what is left of it):
#   1. the benchmark (cap 75 s): compile time (one module) apart from run time; the bandwidth headline timed
#      with CUDA events around the kernel launches;
#   2. the checkpoint benchmark (benchmarks/checkpoint_bench.py, cap 40 s);
#   3. the GPU tests, -m gpu (cap 120 s): their generated kernels (about 270) are compiled first in ONE module
#      per worker process (the compile time is printed apart: NVRTC took 18 s for them on a loaded 2-core CPU,
#      65 ms a kernel), then each runs against NumPy;
#   4. the rest of the suite on the CuPy backend, -m "not gpu and not cpu_build" (the rest of the budget,
#      about 140 s; each backward pass compiles its new kernels in one module).
# Both test steps run in parallel with pytest-xdist when installed (GPUAD_CHECK_WORKERS, default 8: NVRTC
# compiles on the host's cores), each test limited to 60 s with pytest-timeout when installed.
# The CPU-only checks (nvcc, NVRTC and g++ builds of the kernels: marker cpu_build) are CI's and never run here.
# A step that runs out of time is interrupted (SIGINT: pytest still writes its junit XML and summary; SIGKILL 10 s
# later), and every step leaves per-test results: a -v log (one line per test as it finishes) and junit XML.
# Exit status: non-zero when a step failed or timed out.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
START=$(date +%s)
BUDGET="${GPUAD_CHECK_BUDGET:-400}"
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULT="$OUT/gpu_check_$STAMP.txt"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export GPUAD_BACKEND=cupy
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
export GPUAD_COMPILE_LOG="$OUT/gpu_check_${STAMP}_compile.txt"
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
import os, sys
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
    cache = os.environ.get("CUPY_CACHE_DIR", os.path.expanduser("~/.cupy/kernel_cache"))
    files = len(os.listdir(cache)) if os.path.isdir(cache) else 0
    print(f"cupy kernel cache: {cache} ({files} files before this run)")
except Exception as e:
    print("cupy: NOT USABLE:", type(e).__name__, e)
for plugin in ("xdist", "pytest_timeout"):
    try:
        __import__(plugin)
        print(f"{plugin}: yes")
    except ImportError:
        print(f"{plugin}: no")
EOF
} > "$RESULT"
cat "$RESULT"

limit() {  # the seconds a step may take: its cap, or what is left of the budget (less the SIGKILL grace)
    local cap="$1" left=$(( START + BUDGET - $(date +%s) - 12 ))
    [ "$left" -lt "$cap" ] && cap="$left"
    [ "$cap" -lt 5 ] && cap=5
    echo "$cap"
}

SIZE="${GPUAD_BENCH_SIZE:-1e8}"
LIMIT=$(limit 75)
echo "## benchmark (benchmarks/gpu_bench.py, $SIZE float32, then float16 and bfloat16: half, limit ${LIMIT}s)" | tee -a "$RESULT"
T0=$(date +%s)
timeout -s INT -k 10 "$LIMIT" "$PY" benchmarks/gpu_bench.py --size "$SIZE" --repeat 20 \
    --json "$OUT/gpu_bench_$STAMP.json" 2>&1 | tee -a "$RESULT"
BENCH=${PIPESTATUS[0]}
echo "benchmark exit status: $BENCH (124/130: timed out), $(( $(date +%s) - T0 ))s" | tee -a "$RESULT"
LIMIT=$(limit 40)
echo "## checkpoint benchmark (benchmarks/checkpoint_bench.py: MLP gradient, batch 4096, memory pool peak; limit ${LIMIT}s)" \
    | tee -a "$RESULT"
T0=$(date +%s)
timeout -s INT -k 10 "$LIMIT" "$PY" benchmarks/checkpoint_bench.py 4096 10 2>&1 | tee -a "$RESULT"
CHECKPOINT=${PIPESTATUS[0]}
echo "checkpoint benchmark exit status: $CHECKPOINT (124/130: timed out), $(( $(date +%s) - T0 ))s" | tee -a "$RESULT"

XDIST=""
"$PY" -c "import xdist" 2>/dev/null && XDIST="-n ${GPUAD_CHECK_WORKERS:-8}"
PER_TEST=""
"$PY" -c "import pytest_timeout" 2>/dev/null && PER_TEST="--timeout=60"

run_tests() {  # name, cap in seconds, pytest arguments...
    local name="$1" cap="$2"
    shift 2
    local log="$OUT/gpu_check_${STAMP}_$name.log" xml="$OUT/gpu_check_${STAMP}_$name.xml"
    local lim
    lim=$(limit "$cap")
    echo "## tests: $name (GPUAD_BACKEND=cupy pytest $*; limit ${lim}s; log: $(basename "$log"), junit: $(basename "$xml"))" \
        | tee -a "$RESULT"
    local t0
    t0=$(date +%s)
    timeout -s INT -k 10 "$lim" "$PY" -m pytest -v -p no:cacheprovider -ra -o junit_family=xunit2 \
        --junitxml="$xml" "$@" > "$log" 2>&1
    local status=$?
    grep -E "^(FAILED|ERROR) |^[0-9]+ (passed|failed|error)|^=+ .*(passed|failed|error|skipped|deselected)|KeyboardInterrupt|^gpuad: " \
        "$log" | tail -n 40 | tee -a "$RESULT"
    "$PY" - "$xml" "$log" <<'EOF' 2>&1 | tee -a "$RESULT"
import re, sys, xml.etree.ElementTree as ET
try:
    cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
    counts = {}
    for c in cases:
        kind = next((t.tag for t in c if t.tag in ("failure", "error", "skipped")), "passed")
        counts[kind] = counts.get(kind, 0) + 1
    print("junit:", ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no test cases")
except Exception as e:  # killed before pytest wrote it: count the -v log's lines instead
    text = open(sys.argv[2], errors="replace").read()
    counts = {k: len(re.findall(rf" {k}( |$)", text, re.M)) for k in ("PASSED", "FAILED", "ERROR", "SKIPPED")}
    print(f"junit: not written ({type(e).__name__}); from the -v log:", counts)
EOF
    echo "pytest exit status ($name): $status (124/130: timed out), $(( $(date +%s) - t0 ))s" | tee -a "$RESULT"
    return "$status"
}
# shellcheck disable=SC2086
run_tests gpu 120 tests/ -m gpu $XDIST $PER_TEST
GPU_TESTS=$?
[ -f "$GPUAD_COMPILE_LOG" ] && sed 's/^/compile: /' "$GPUAD_COMPILE_LOG" | tee -a "$RESULT"
# shellcheck disable=SC2086
run_tests suite 400 tests/ -m "not gpu and not cpu_build" $XDIST $PER_TEST
TESTS=$?
echo "total: $(( $(date +%s) - START ))s of a ${BUDGET}s budget" | tee -a "$RESULT"
echo "results: $RESULT"
[ "$GPU_TESTS" -eq 0 ] && [ "$TESTS" -eq 0 ] && [ "$BENCH" -eq 0 ] && [ "$CHECKPOINT" -eq 0 ]
