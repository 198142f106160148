"""GPU benchmark of the fused backward pass (issue 4): how close the backward pass gets to the memory bandwidth.

For f(x, w) = sum(sin(x) * w + x * x * exp(-w) + tanh(x * w)) at 10^8 float32 elements (by default), records the
forward pass once on a persistent Tape and times ``tape.gradient`` (the backward pass alone), reporting:

* ``compile_s``: the first gradient's kernel compile, apart (one module per backward pass: ``compiles``; NVRTC
  on a fresh machine, CuPy's disk cache after), and ``first_gradient_s``, the whole first call;
* the headline, ``backward_kernel_ms`` and ``backward_GBps``: CUDA events recorded around gpuad's kernel launches
  (the launcher is wrapped), so the figure times the kernels and not the Python before them (median of
  --repeat calls); ``backward_vs_copy`` compares it with a device-to-device copy of x timed in the same run
  (target: >= 70%); beside it ``backward_pipelined_ms`` (back-to-back calls between one pair of events: the
  throughput, host work overlapped) and ``backward_single_call_ms`` (events around one whole call after a
  synchronize: the host work included);
* the launches gpuad made in one pass (target: one per elementwise region plus one per broadcast reduction;
  the seed's one-element fill is CuPy's and not counted), the bytes the tape keeps with and without fusion, the
  unfused backward time, a check against the closed-form gradient;
* ``half``: the same backward pass in float16 and bfloat16 (--half, default "float16,bfloat16"; bfloat16 when
  ml_dtypes is installed), beside the float32 headline: per dtype its compile, kernel time, bytes moved (half
  of float32's: the kernels load and store two bytes and compute in float), bandwidth against a copy of the same
  dtype, and the error against the closed form (to the dtype's precision);
* ``host``: the host time of one ``tape.gradient`` at 16 elements (f, one region) and for a small MLP (four
  regions), per call, per region and per tape entry.

Bytes moved: x and w read, their cotangents written, each counted once. With --backend numpy (small --size)
the same code paths run on the CPU, timed with perf_counter.

Usage: PYTHONPATH=. python3 benchmarks/gpu_bench.py [--size N] [--repeat R] [--json PATH] [--backend cupy|numpy]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy

import gpuad
import gpuad.nn
import gpuad.numpy as gnp
from gpuad import fusion
from gpuad.tape import set_fusion


def f(x, w):
    return gnp.sum(gnp.sin(x) * w + x * x * gnp.exp(-w) + gnp.tanh(x * w))


class Clock:
    """Times a callable: CUDA events on CuPy (after a synchronize), perf_counter on NumPy. Milliseconds."""

    def __init__(self, xp):
        self.xp = xp
        self.cuda = xp.__name__ == "cupy"

    def sync(self):
        if self.cuda:
            self.xp.cuda.Device().synchronize()

    def time(self, fn, repeat, warmup=2):
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(repeat):
            if self.cuda:
                start, stop = self.xp.cuda.Event(), self.xp.cuda.Event()
                start.record()
                fn()
                stop.record()
                stop.synchronize()
                times.append(self.xp.cuda.get_elapsed_time(start, stop))
            else:
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times)

    def time_pipelined(self, fn, calls):
        """Milliseconds per call for ``calls`` back-to-back calls between one pair of events: the host work of
        one call overlaps the GPU work of the previous one, so this is the throughput the GPU sustains."""
        fn()
        self.sync()
        if not self.cuda:
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            return (time.perf_counter() - t) * 1e3 / calls
        start, stop = self.xp.cuda.Event(), self.xp.cuda.Event()
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        stop.synchronize()
        return self.xp.cuda.get_elapsed_time(start, stop) / calls


class TimedLauncher:
    """Wraps a launcher: records a pair of CUDA events around each kernel launch (``kernel_ms`` sums the last
    call's), so the time is the kernels' alone; on NumPy it times the launch with perf_counter."""

    def __init__(self, inner, xp):
        self.inner, self.xp, self.cuda = inner, xp, xp.__name__ == "cupy"
        self.runs_on = inner.runs_on
        self.events = []

    def ready(self, spec):
        return self.inner.ready(spec)

    def prepare(self, specs):
        self.inner.prepare(specs)

    def launch(self, spec, kinds, values):
        if self.cuda:
            start, stop = self.xp.cuda.Event(), self.xp.cuda.Event()
            start.record()
            self.inner.launch(spec, kinds, values)
            stop.record()
            self.events.append((start, stop))
        else:
            t = time.perf_counter()
            self.inner.launch(spec, kinds, values)
            self.events.append(time.perf_counter() - t)

    def kernel_ms(self):
        """Milliseconds of the launches recorded since the last call (waits for them)."""
        events, self.events = self.events, []
        if not self.cuda:
            return sum(events) * 1e3
        if events:
            events[-1][1].synchronize()
        return sum(self.xp.cuda.get_elapsed_time(a, b) for a, b in events)


def resolve_dtype(name):
    """A dtype by name; "bfloat16" is ml_dtypes' (None when ml_dtypes is not installed)."""
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            return None
        return numpy.dtype(ml_dtypes.bfloat16)
    return numpy.dtype(name)


def draw(xp, n, dtype, seed):
    """Standard normal x and w of ``dtype`` (half types drawn in float32 and rounded)."""
    wide = dtype if dtype.name in ("float32", "float64") else numpy.dtype(numpy.float32)
    if xp is numpy:
        rng = numpy.random.default_rng(seed)
        return tuple(rng.standard_normal(n, dtype=wide).astype(dtype) for _ in range(2))
    xp.random.seed(seed)
    return tuple(xp.random.standard_normal(n, dtype=wide).astype(dtype) for _ in range(2))


def closed_form_error(xp, x, w, gx, gw, k=10**6):
    """The largest error of (gx, gw) against the closed-form gradient on the first k elements, relative to
    1 + |exact|, in float64."""
    k = min(k, x.shape[0])
    xs, ws = x[:k].astype(xp.float64), w[:k].astype(xp.float64)
    t = xp.tanh(xs * ws)
    ex = xp.cos(xs) * ws + 2 * xs * xp.exp(-ws) + (1 - t * t) * ws
    ew = xp.sin(xs) - xs * xs * xp.exp(-ws) + (1 - t * t) * xs
    return max(float(xp.max(xp.abs(gx[:k].astype(xp.float64) - ex) / (1 + xp.abs(ex)))),
               float(xp.max(xp.abs(gw[:k].astype(xp.float64) - ew) / (1 + xp.abs(ew)))))


def half_run(xp, clock, n, dtype, repeat):
    """The fused backward pass in a narrow ``dtype``: compile, kernel time, bytes, bandwidth vs a copy, error."""
    x, w = draw(xp, n, dtype, 0)
    inner = fusion.CUDA if xp is not numpy else fusion.HostLauncher() if fusion.compiler() else None
    timed = TimedLauncher(inner, xp) if inner is not None else None
    tape, y, X, W = record(x, w, fused=True, launcher=timed)
    compiles, compile_s = (inner.compiles, inner.compile_seconds) if inner is not None else (0, 0.0)
    gx, gw = tape.gradient(y, [X, W])
    clock.sync()
    if inner is not None:
        compiles, compile_s = inner.compiles - compiles, inner.compile_seconds - compile_s
    kernel_times = []
    if timed is not None:
        timed.kernel_ms()
        for _ in range(repeat):
            tape.gradient(y, [X, W])
            kernel_times.append(timed.kernel_ms())
    t_kernels = statistics.median(kernel_times) if kernel_times else float("nan")
    t_pipelined = clock.time_pipelined(lambda: tape.gradient(y, [X, W]), repeat)
    if timed is not None:
        timed.kernel_ms()
    moved = int(x.nbytes + w.nbytes + gx.nbytes + gw.nbytes)
    dst = xp.empty_like(x)
    if xp is numpy:
        copy = lambda: numpy.copyto(dst, x)  # noqa: E731
    else:
        copy = lambda: dst.data.copy_from_device_async(x.data, x.nbytes)  # noqa: E731
    t_copy = clock.time(copy, repeat)
    bw_copy = 2 * x.nbytes / (t_copy * 1e-3)
    kernels = [line.split("(")[0].split()[-1] for line in tape.kernels().splitlines()
               if line.startswith('extern "C"')]
    return {"gradient_dtypes": [str(gx.dtype), str(gw.dtype)], "compiles": compiles, "compile_s": round(compile_s, 3),
            "backward_kernel_ms": round(t_kernels, 4), "backward_bytes": moved,
            "backward_GBps": round(moved / (t_kernels * 1e-3) / 1e9, 2),
            "backward_vs_copy": round(moved / (t_kernels * 1e-3) / bw_copy, 4),
            "backward_pipelined_ms": round(t_pipelined, 4), "copy_ms": round(t_copy, 4), "kernels": kernels,
            "max_rel_error_vs_closed_form": closed_form_error(xp, x, w, gx, gw)}


def record(x, w, fused, launcher=None):
    previous = set_fusion(fused)
    try:
        with gpuad.Tape(persistent=True, launcher=launcher) as tape:
            X, W = tape.watch(x), tape.watch(w)
            y = f(X, W)
    finally:
        set_fusion(previous)
    return tape, y, X, W


def mlp(w1, b1, w2, b2, x):
    h = gnp.tanh(x @ w1 + b1)
    h = gnp.tanh(h @ w2 + b2)
    return gnp.mean(gpuad.nn.logsumexp(h, axis=-1))


def host_time(xp, clock, calls=300):
    """Host microseconds of one ``tape.gradient`` on tiny arrays (the GPU, if any, never the bottleneck): f at 16
    elements (one region) and the MLP (four regions), per call, per region run and per tape entry, on the CUDA
    launcher for CuPy, else the Python rendering and (with a C++ compiler) the host launcher."""
    rng = numpy.random.default_rng(0)
    cases = {"f16": (f, [(16,), (16,)]), "mlp": (mlp, [(8, 8), (8,), (8, 8), (8,), (4, 8)])}
    launchers = {"cuda": None} if xp is not numpy else {"python": None}
    if xp is numpy and fusion.compiler():
        launchers["host"] = fusion.HostLauncher()
    out = {}
    for name, (fn, shapes) in cases.items():
        args = [xp.asarray(rng.standard_normal(s).astype(numpy.float32)) for s in shapes]
        for lname, launcher in launchers.items():
            with gpuad.Tape(persistent=True, launcher=launcher) as tape:
                xs = [tape.watch(a) for a in args]
                y = fn(*xs)
            tape.gradient(y, xs)
            clock.sync()
            before = fusion.stats["regions"]
            tape.gradient(y, xs)
            regions = fusion.stats["regions"] - before
            best = float("inf")
            for _ in range(5):
                clock.sync()
                t = time.perf_counter()
                for _ in range(calls // 5):
                    tape.gradient(y, xs)
                best = min(best, (time.perf_counter() - t) / (calls // 5))
            clock.sync()
            us = best * 1e6
            out[f"{name}_{lname}"] = {"us_per_gradient": round(us, 1), "regions": regions,
                                      "entries": len(tape.entries), "us_per_region": round(us / max(regions, 1), 1),
                                      "us_per_entry": round(us / len(tape.entries), 2)}
    return out


def device_info(xp):
    info = {"backend": xp.__name__, "numpy": numpy.__version__, "python": platform.python_version()}
    if xp.__name__ == "cupy":
        props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
        name = props["name"]
        info.update(card=name.decode() if isinstance(name, bytes) else str(name), cupy=xp.__version__,
                    cuda_driver=xp.cuda.runtime.driverGetVersion(), cuda_runtime=xp.cuda.runtime.runtimeGetVersion(),
                    memory_gib=round(props["totalGlobalMem"] / 2**30, 1))
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception as e:  # no nvidia-smi: the CUDA driver version above still says which
            info["driver"] = f"unknown ({type(e).__name__})"
    else:
        info["card"] = f"CPU ({platform.processor() or platform.machine()})"
    return info


def commit():
    if os.environ.get("GPUAD_COMMIT"):
        return os.environ["GPUAD_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=1e8)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--dtype", default="float32", help="float32, float64, float16 or bfloat16")
    parser.add_argument("--backend", choices=["cupy", "numpy"], default=None)
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    parser.add_argument("--half", default="float16,bfloat16",
                        help="narrow dtypes timed beside --dtype (comma-separated; empty for none)")
    parser.add_argument("--skip-unfused", action="store_true", help="skip the unfused tape (saved bytes, time)")
    args = parser.parse_args(argv)
    choice = args.backend or os.environ.get("GPUAD_BACKEND") or "cupy"
    if choice == "cupy":
        import cupy as xp
    else:
        xp = numpy
    n = int(args.size)
    clock = Clock(xp)
    results = {"benchmark": "gradient of sum(sin(x) * w + x * x * exp(-w) + tanh(x * w))", "size": n,
               "dtype": args.dtype, "repeat": args.repeat, "commit": commit(), **device_info(xp)}

    dtype = resolve_dtype(args.dtype)
    if dtype is None:
        parser.error(f"--dtype {args.dtype} needs ml_dtypes")
    x, w = draw(xp, n, dtype, 0)

    # the backward pass alone, on a persistent tape recorded once, its kernels launched through a timed launcher
    inner = fusion.CUDA if xp is not numpy else fusion.HostLauncher() if fusion.compiler() else None
    timed = TimedLauncher(inner, xp) if inner is not None else None
    tape, y, X, W = record(x, w, fused=True, launcher=timed)
    compiles, compile_s = (inner.compiles, inner.compile_seconds) if inner is not None else (0, 0.0)
    clock.sync()
    start = time.perf_counter()
    gx, gw = tape.gradient(y, [X, W])  # compiles the pass's kernels in one module (or loads it from CuPy's cache)
    clock.sync()
    first_s = time.perf_counter() - start
    if inner is not None:
        compiles, compile_s = inner.compiles - compiles, inner.compile_seconds - compile_s
    before = dict(fusion.stats)
    gx, gw = tape.gradient(y, [X, W])
    clock.sync()
    launches = {k: fusion.stats[k] - before[k] for k in fusion.stats}
    kernel_times = []
    if timed is not None:
        timed.kernel_ms()
        for _ in range(args.repeat):
            tape.gradient(y, [X, W])
            kernel_times.append(timed.kernel_ms())
    t_kernels = statistics.median(kernel_times) if kernel_times else float("nan")
    t_backward = clock.time(lambda: tape.gradient(y, [X, W]), args.repeat)
    t_pipelined = clock.time_pipelined(lambda: tape.gradient(y, [X, W]), args.repeat)
    if timed is not None:
        timed.kernel_ms()
    moved = int(x.nbytes + w.nbytes + gx.nbytes + gw.nbytes)

    # a device-to-device copy of x in the same run: the bandwidth to compare with
    dst = xp.empty_like(x)
    if xp is numpy:
        copy = lambda: numpy.copyto(dst, x)  # noqa: E731
    else:
        copy = lambda: dst.data.copy_from_device_async(x.data, x.nbytes)  # noqa: E731 (cudaMemcpyAsync D2D)
    t_copy = clock.time(copy, args.repeat)
    del dst
    bw_kernels = moved / (t_kernels * 1e-3)
    bw_copy = 2 * x.nbytes / (t_copy * 1e-3)

    # correctness against the closed form, on a slice, in float64
    error = closed_form_error(xp, x, w, gx, gw)
    kernels = [line.split("(")[0].split()[-1] for line in tape.kernels().splitlines()
               if line.startswith('extern "C"')]
    fused_saved = tape.saved_bytes(exclude=[x, w])
    del gx, gw, tape, y, X, W

    # forward + backward through gpuad.grad
    grad = gpuad.grad(f, argnums=(0, 1))
    t_grad = clock.time(lambda: grad(x, w), max(3, args.repeat // 3), warmup=1)
    t_forward = clock.time(lambda: f(x, w), max(3, args.repeat // 3), warmup=1)

    results.update({
        "compiles": compiles,
        "compile_s": round(compile_s, 3),
        "first_gradient_s": round(first_s, 3),
        "backward_kernel_ms": round(t_kernels, 4),
        "backward_bytes": moved,
        "backward_GBps": round(bw_kernels / 1e9, 2),
        "backward_vs_copy": round(bw_kernels / bw_copy, 4),
        "backward_pipelined_ms": round(t_pipelined, 4),
        "backward_pipelined_vs_copy": round(moved / (t_pipelined * 1e-3) / bw_copy, 4),
        "backward_single_call_ms": round(t_backward, 4),
        "backward_single_call_vs_copy": round(moved / (t_backward * 1e-3) / bw_copy, 4),
        "copy_ms": round(t_copy, 4),
        "copy_GBps": round(bw_copy / 1e9, 2),
        "target_backward_vs_copy": 0.70,
        "gpuad_launches_per_backward": launches["kernels"] + launches["reductions"] + launches["accumulations"]
                                       + launches["copies"],
        "launch_breakdown": launches,
        "target_launches": "1 (one elementwise region, no broadcast operand)",
        "kernels": kernels,
        "max_rel_error_vs_closed_form": error,
        "forward_ms": round(t_forward, 4),
        "grad_ms": round(t_grad, 4),
        "tape_saved_bytes_fused": fused_saved,
    })

    if not args.skip_unfused:
        tape, y, X, W = record(x, w, fused=False)
        results["tape_saved_bytes_unfused"] = tape.saved_bytes(exclude=[x, w])
        results["backward_unfused_ms"] = round(clock.time(lambda: tape.gradient(y, [X, W]), max(3, args.repeat // 3),
                                                          warmup=1), 4)
        del tape, y, X, W

    half = {}
    for name in filter(None, (s.strip() for s in args.half.split(","))):
        narrow = resolve_dtype(name)
        if name == args.dtype:
            continue
        try:
            half[name] = half_run(xp, clock, n, narrow, args.repeat) if narrow is not None else "ml_dtypes not installed"
        except Exception as e:  # noqa: BLE001 (reported, so the float32 headline above still comes out)
            half[name] = f"failed: {type(e).__name__}: {e}"
    if half:
        results["half"] = half
    results["host"] = host_time(xp, clock)
    results["meets_bandwidth_target"] = results["backward_vs_copy"] >= 0.70
    results["meets_bandwidth_target_pipelined"] = results["backward_pipelined_vs_copy"] >= 0.70
    results["meets_launch_target"] = results["gpuad_launches_per_backward"] <= 1
    lines = [f"{key}: {value}" for key, value in results.items()]
    print("\n".join(lines))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
