"""Profile gpuad's derivative of one suite workload (where it misses a target): pyinstrument's call tree when it is
installed, else cProfile's top functions by own time.

    python benchmarks/profile_gpuad.py W1            # the suite's CPU size
    python benchmarks/profile_gpuad.py W7 --calls 200 --cprofile
"""
import argparse
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workload")
    p.add_argument("--calls", type=int, default=5, help="derivative calls profiled (after one warm-up)")
    p.add_argument("--size", help="override the size (a number; W3/W6 take a pair as 8192x1000)")
    p.add_argument("--cprofile", action="store_true", help="cProfile even when pyinstrument is installed")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    import numpy as np

    from systems import GpuadSystem
    from workloads import WORKLOADS
    wl = WORKLOADS[a.workload.upper()]
    size = wl.sizes_cpu[0]
    if a.size:
        size = tuple(int(float(v)) for v in a.size.split("x")) if "x" in a.size else int(float(a.size))
    inp = wl.make(size, np.random.default_rng(0))
    g = GpuadSystem("cpu")
    g.load()
    fn = g.derivative(wl, wl.variants[0], inp.args, inp.tangent)
    fn()

    def work():
        for _ in range(a.calls):
            fn()
    try:
        if a.cprofile:
            raise ImportError
        from pyinstrument import Profiler
    except ImportError:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(work)
        pstats.Stats(prof).sort_stats("tottime").print_stats(a.top)
        return
    prof = Profiler(interval=0.0005)
    prof.start()
    work()
    prof.stop()
    print(prof.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
