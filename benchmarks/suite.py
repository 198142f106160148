"""gpuad side by side with NumPy, PyTorch, JAX and HIPS autograd: one command, W1 .. W9 (benchmarks/workloads.py)
on every system (benchmarks/systems.py).

    python benchmarks/suite.py                      # everything on the CPU (make bench)
    python benchmarks/suite.py --quick              # small sizes: a smoke run in well under a minute
    python benchmarks/suite.py --workloads W1,W2 --systems gpuad,numpy,torch --device cpu|gpu
    python benchmarks/suite.py --readme             # also put the tables and plots into README.md

For each workload, size and system: the function alone and the derivative, each warmed up (twice) and then
timed until it has ``--min-reps`` samples and ``--min-time`` seconds (at most ``--max-reps``); tiny calls are
repeated within one sample. Medians are reported (quartiles in the JSON). On the GPU: CUDA events (CuPy, torch),
``block_until_ready`` (JAX). Before timing, every system's derivative is compared with gpuad's (gpuad's own with
central differences in float64 at a small size); a mismatch is reported and not timed. Peak memory (bytes
allocated during one call on top of the inputs) comes from tracemalloc for NumPy-based systems on the CPU and
from the allocators on the GPU; other cells show "-".

Writes ``benchmarks/results/suite_<device>_<machine>_<date>.md`` and ``.json``, and the plots
``w8_sweep_<device>.png`` (W8: time against size) and ``cost_ratio_<device>.png`` (derivative / function, per
system). A system or workload that cannot run prints one line saying why and is skipped.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
ORDER = ["gpuad", "numpy", "torch", "torch.func", "torch.compile", "jax", "autograd"]
COLORS = dict(zip(ORDER, ["tab:blue", "tab:gray", "tab:orange", "tab:brown", "tab:pink", "tab:red", "tab:purple"]))


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions (a smoke run)")
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7,W8,W9", help="comma-separated, e.g. W1,W7")
    p.add_argument("--systems", default=",".join(ORDER), help="comma-separated, from " + ", ".join(ORDER))
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for the results (default %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for BLAS, OpenMP, torch and XLA on the CPU (default 1: one core per system, as "
                        "NumPy's elementwise functions use; 0: each library's own default)")
    p.add_argument("--min-time", type=float, help="seconds of samples per measurement (default 1, quick 0.02)")
    p.add_argument("--min-reps", type=int, help="samples per measurement at least (default 5, quick 2)")
    p.add_argument("--max-reps", type=int, help="samples per measurement at most (default 25, quick 3)")
    p.add_argument("--readme", action="store_true", help="write the tables and plots into README.md")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--report", metavar="JSON", help="no run: rewrite the Markdown and plots of an earlier run's JSON")
    a = p.parse_args(argv)
    a.min_time = a.min_time if a.min_time is not None else (0.02 if a.quick else 1.0)
    a.min_reps = a.min_reps or (2 if a.quick else 5)
    a.max_reps = a.max_reps or (3 if a.quick else 25)
    a.warmup = 1 if a.quick else 2
    return a


def set_threads(n):
    """Before NumPy, torch or JAX load: one thread count for all of them."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(n)
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false")


# --------------------------------------------------------------------------------------------------- timing

def measure_together(timed, args):
    """Median seconds per call of each (system, clock, fn, record) in ``timed``, already warmed up. The calls are
    sampled in turn, one sample of each per round, so that the load of a shared machine falls on all of them
    alike; tiny calls are repeated within one sample (>= 5 ms). Rounds go on until ``min_reps`` rounds and
    ``min_time`` seconds per call have passed, or ``max_reps`` rounds."""
    numbers = []
    for s, clock, fn, r in timed:
        one = clock(fn, 1)
        numbers.append(1 if one >= 5e-3 else min(10**5, max(1, int(5e-3 / max(one, 1e-7)))))
    samples = [[] for _ in timed]
    t_end = time.perf_counter() + args.min_time * len(timed)
    rounds = 0
    while timed and rounds < args.max_reps and (rounds < args.min_reps or time.perf_counter() < t_end):
        for (s, clock, fn, r), number, got in zip(timed, numbers, samples):
            got.append(clock(fn, number))
        rounds += 1
    out = []
    for got, number in zip(samples, numbers):
        q = statistics.quantiles(got, n=4) if len(got) > 1 else [got[0]] * 3
        out.append({"median_s": statistics.median(got), "min_s": min(got), "q1_s": q[0], "q3_s": q[2],
                    "reps": len(got), "number": number})
    return out


def say_bar(bar, lines, text):
    bar.write(text)
    lines.append(text)


def shrink(tree):
    """A huge batched result (W9's per-example gradients on the GPU) is checked on its first 64 rows only, so
    that the reference fits in host memory."""
    from systems import tree_map

    def one(a):
        shape = tuple(getattr(a, "shape", ()))
        return a[:64] if len(shape) > 1 and shape[0] > 64 and _prod(shape) > 2**26 else a
    return tree_map(one, tree)


def _prod(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def compare(got, ref, dtype):
    """Relative L2 distance of two lists of arrays (None when they do not have the same shapes)."""
    import numpy as np
    if len(got) != len(ref):
        return None
    num = den = 0.0
    for a, b in zip(got, ref):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return None
        num += float(np.sum((a - b) ** 2))
        den += float(np.sum(b ** 2))
    return (num / max(den, 1e-300)) ** 0.5


def tolerance(dtype):
    return 1e-7 if dtype == "float64" else 2e-3


def fd_check(wl, gpuad_system):
    """gpuad's derivative (float64, the quick size) against central differences of the NumPy forward pass:
    <grad f, v> for gradients, grad f's change along v for the Hessian-vector product. Returns (ok, text)."""
    import numpy as np

    from systems import NumpySystem, flatten, tree_map
    rng = np.random.default_rng(7)
    inp = wl.make(wl.sizes_quick[0], rng)
    to64 = (lambda a: a.astype(np.float64) if a.dtype.kind == "f" else a)
    args = tree_map(to64, inp.args)
    npf = NumpySystem("cpu")
    npf.load()
    f = (lambda *a: wl.f(npf.ns, *a))
    h = 1e-6
    if wl.kind == "grad":
        nums = wl.argnums if isinstance(wl.argnums, tuple) else (wl.argnums,)
        dirs = {i: tree_map(lambda a: rng.standard_normal(a.shape), args[i]) for i in nums}

        def add(x, d, s):
            return tuple(add(a, b, s) for a, b in zip(x, d)) if isinstance(x, tuple) else x + s * d

        def shifted(s):
            return [add(x, dirs[i], s) if i in nums else x for i, x in enumerate(args)]
        fd = (f(*shifted(h)) - f(*shifted(-h))) / (2 * h)
        g = gpuad_system.derivative(wl, "grad", args, None)()
        g = g if isinstance(wl.argnums, tuple) else (g,)
        ad = sum(float(np.sum(np.asarray(gl) * dl)) for gi, i in zip(g, nums)
                 for gl, dl in zip(flatten(gi), flatten(dirs[i])))
        err = abs(ad - fd) / max(abs(fd), 1e-12)
        return err < 1e-5, f"<grad, v> {ad:.10g} vs central difference {fd:.10g} (rel. error {err:.1e})"
    if wl.kind == "hvp":
        v = to64(inp.tangent)
        x = args[0]
        import gpuad
        gf = gpuad.grad(lambda x_: wl.f(gpuad_system.ns, x_))
        fd = (np.asarray(gf(x + h * v)) - np.asarray(gf(x - h * v))) / (2 * h)
        hv = np.asarray(gpuad_system.derivative(wl, "hvp", (x,), v)())
        err = float(np.linalg.norm(hv - fd) / np.linalg.norm(fd))
        return err < 1e-5, f"H v against central differences of the gradient: rel. error {err:.1e}"
    return True, "checked against the other systems only"


# --------------------------------------------------------------------------------------------------- running

def machine_info(args):
    info = {"host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "device": args.device, "quick": args.quick,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "threads": (args.threads or "each library's default") if args.device == "cpu" else "-"}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "gpuad", "kernels"],
                               capture_output=True, text=True).stdout.strip()
        info["commit"] += " (gpuad/ modified)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = os.environ.get("GPUAD_COMMIT", "unknown")
    return info


class Progress:
    """tqdm when it is installed, else one line per step."""

    def __init__(self, total):
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="case", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            self.bar = None
        self.total, self.done = total, 0

    def step(self, text):
        self.done += 1
        if self.bar is not None:
            self.bar.set_description(text[:50])
            self.bar.update(1)
        else:
            print(f"[{self.done}/{self.total}] {text}", file=sys.stderr, flush=True)

    def write(self, text):
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run(args):
    import numpy as np

    from systems import SYSTEMS, Quiet, Skip, flatten
    from workloads import WORKLOADS
    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown systems {unknown}; choose from {ORDER}")
    keys = [k.strip().upper() for k in args.workloads.split(",") if k.strip()]
    if [k for k in keys if k not in WORKLOADS]:
        raise SystemExit(f"unknown workloads {[k for k in keys if k not in WORKLOADS]}; W1 .. W9")
    workloads = [WORKLOADS[k] for k in keys]
    info = machine_info(args)
    info["load_before"] = os.getloadavg()
    lines, systems, versions = [], [], {"numpy": np.__version__}

    def say(text):
        lines.append(text)
        print(text, flush=True)

    for name in [n for n in ORDER if n in wanted]:
        cls = SYSTEMS[name]
        if args.device not in cls.devices:
            say(f"skip {name}: runs on {' and '.join(cls.devices)} only (this run: {args.device})")
            continue
        s = cls(args.device)
        try:
            s.load()
        except Skip as e:
            say(f"skip {name}: {e}")
            continue
        versions[name] = s.version()
        systems.append(s)
    if args.threads and args.device == "cpu":
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    info["versions"] = versions
    results, checks, loads = [], {}, []
    if "gpuad" in [s.name for s in systems]:
        g = next(s for s in systems if s.name == "gpuad")
        for wl in workloads:
            if wl.kind in ("grad", "hvp") and args.device == "cpu":
                try:
                    ok, text = fd_check(wl, g)
                except Skip as e:
                    ok, text = True, f"skipped ({e})"
                checks[wl.key] = (ok, text)
                if not ok:
                    say(f"MISMATCH {wl.key} gpuad against central differences: {text}")
    cases = [(wl, size) for wl in workloads for size in wl.sizes(args.device, args.quick)]
    bar = Progress(len(cases) * (len(systems) + 1))
    for wl, size in cases:
        inp = wl.make(size, np.random.default_rng(0))
        refs = {}  # variant -> (system, flat numpy arrays)
        timed = []  # (system, clock, fn, result record) measured together, sample by sample in turn
        for s in systems:
            base = {"workload": wl.key, "size": inp.label, "n": inp.n, "system": s.name}
            bar.step(f"{wl.key} {inp.label} {s.name}")
            try:
                a = s.put(inp.args)
                t = s.put(inp.tangent) if inp.tangent is not None else None
            except Exception as e:  # noqa: BLE001  (a system that cannot take the inputs)
                say_bar(bar, lines, f"skip {wl.key} {s.name}: inputs: {type(e).__name__}: {e}")
                continue
            clock = s.clock()
            try:
                fwd = s.forward(wl, a)
                for _ in range(args.warmup):
                    s.sync(fwd())
                timed.append((s, clock, fwd, dict(base, mode="f", variant="f")))
            except Skip:
                pass
            except Exception as e:  # noqa: BLE001
                say_bar(bar, lines, f"error {wl.key} {inp.label} {s.name} function: {type(e).__name__}: {e}")
            if s.forward_only:
                continue
            for variant in wl.variants:
                try:
                    fn = s.derivative(wl, variant, a, t)
                    out = fn()
                    s.sync(out)
                except Quiet:
                    continue
                except Skip as e:
                    msg = f"skip {wl.key} {variant} on {s.name}: {e}"
                    if msg not in lines:
                        say_bar(bar, lines, msg)
                    continue
                except Exception as e:  # noqa: BLE001  (reported, not timed)
                    say_bar(bar, lines, f"error {wl.key} {inp.label} {variant} on {s.name}: {type(e).__name__}: {e}")
                    continue
                flat = flatten(s.to_numpy(shrink(out)))
                del out
                if variant not in refs:
                    refs[variant] = (s.name, flat)
                    check = "reference"
                else:
                    err = compare(flat, refs[variant][1], wl.dtype)
                    if err is None or not err <= tolerance(wl.dtype):
                        what = "shapes differ" if err is None else f"relative error {err:.1e}"
                        say_bar(bar, lines, f"MISMATCH {wl.key} {inp.label} {variant}: {s.name} against "
                                            f"{refs[variant][0]}: {what}; not timed")
                        results.append(dict(base, mode="d", variant=variant, check=f"mismatch ({what})"))
                        continue
                    check = f"{err:.0e} vs {refs[variant][0]}"
                del flat
                try:
                    for _ in range(max(0, args.warmup - 1)):
                        s.sync(fn())
                except Exception as e:  # noqa: BLE001
                    say_bar(bar, lines, f"error {wl.key} {inp.label} {variant} on {s.name}: {type(e).__name__}: {e}")
                    continue
                r = dict(base, mode="d", variant=variant, check=check)
                if s.notes.get(wl.key):
                    r["note"] = s.notes[wl.key]
                timed.append((s, clock, fn, r))
        refs.clear()
        bar.step(f"{wl.key} {inp.label} timing {len(timed)} calls in turn")
        for (s, clock, fn, r), stats in zip(timed, measure_together(timed, args)):
            r.update(stats)
            try:
                r["peak_bytes"] = s.peak_memory(fn)
            except Exception:  # noqa: BLE001  (no peak then)
                r["peak_bytes"] = None
            results.append(r)
        del timed
        loads.append(os.getloadavg()[0])
    info["load_after"] = os.getloadavg()
    info["load_1min_during"] = {"mean": round(statistics.mean(loads), 2), "max": max(loads)} if loads else None
    notes = {wl.key: wl.note for wl in workloads if wl.note}
    return {"machine": info, "results": results, "lines": lines, "fd_checks": {k: list(v) for k, v in checks.items()},
            "notes": notes, "workloads": {wl.key: wl.title for wl in workloads},
            "systems": [s.name for s in systems]}


# --------------------------------------------------------------------------------------------------- report

def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def index(data):
    """{(workload, size, variant): {system: result}} for derivatives, and {(workload, size): {system: result}}
    for the function alone."""
    d, f = {}, {}
    for r in data["results"]:
        if r["mode"] == "f":
            f.setdefault((r["workload"], r["size"]), {})[r["system"]] = r
        else:
            d.setdefault((r["workload"], r["size"], r["variant"]), {})[r["system"]] = r
    return d, f


NO_F_TARGET = ("jacfwd", "jacrev", "jacobian", "vmap(grad)")  # a Jacobian or a batch of gradients: many passes


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def targets(data):
    """gpuad's CPU targets: (rows of the table, met count, missed count)."""
    d, f = index(data)
    rows = []
    for (wk, size, variant), by in d.items():
        g = by.get("gpuad", {}).get("median_s")
        if g is None:
            continue
        npf = f.get((wk, size), {}).get("numpy", {}).get("median_s")
        torch = by.get("torch", by.get("torch.func", {})).get("median_s")
        ag = by.get("autograd", {}).get("median_s")
        lim = {"numpy": 3.0, "torch": 1.05 if wk == "W2" else 1.0, "autograd": 0.5}
        cells, verdicts = [], []
        for key, ref in (("numpy", npf), ("torch", torch), ("autograd", ag)):
            r = ratio(g, ref)
            if r is None:
                cells.append("-")
            elif key == "numpy" and variant in NO_F_TARGET:
                cells.append(f"{r:.2f} (no target: n or m passes)")
            else:
                ok = r <= lim[key]
                verdicts.append(ok)
                cells.append(f"{r:.2f} {'met' if ok else '**missed**'} (<= {lim[key]:g})")
        rows.append((wk, size, variant, fmt_time(g), *cells))
    # W7: per-op overhead against eager PyTorch's
    w7 = [(k, by) for k, by in d.items() if k[0] == "W7"]
    per_op = []
    for (wk, size, variant), by in w7:
        g, t = by.get("gpuad", {}).get("median_s"), by.get("torch", {}).get("median_s")
        from workloads import Overhead
        if g is not None:
            r = ratio(g, t)
            per_op.append((f"{g / Overhead.OPS * 1e6:.2f} us", f"{t / Overhead.OPS * 1e6:.2f} us" if t else "-",
                           "-" if r is None else f"{r:.2f} {'met' if r <= 0.7 else '**missed**'} (<= 0.7)"))
    return rows, per_op


def markdown(data, plots):
    m = data["machine"]
    d, f = index(data)
    systems = [s for s in ORDER if s in data["systems"]]
    dsys = [s for s in systems if s != "numpy"]
    out = [f"# gpuad benchmark suite ({m['device']}{', quick' if m['quick'] else ''})", ""]
    out += [f"- machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, {m['platform']}; host {m['host']}",
            f"- date: {m['date']}; commit {m['commit']}; Python {m['python']}; threads: {m['threads']}",
            "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
            f"- load average (1, 5, 15 min) before {fmt_load(m['load_before'])}, after {fmt_load(m['load_after'])}"
            + (f"; 1-min load during the run: mean {m['load_1min_during']['mean']}, max "
               f"{m['load_1min_during']['max']:.2f}" if m.get("load_1min_during") else ""),
            "- medians after warm-up; the cell under `numpy` is the forward pass alone (the cost of f)", ""]
    out += ["## Derivative (value and gradient, HVP, Jacobian or per-example gradients): median time", ""]
    out += ["| workload | size | derivative | " + " | ".join(s if s != "numpy" else "numpy (f alone)"
                                                          for s in systems) + " |"]
    out += ["| --- | --- | --- |" + " --- |" * len(systems)]
    for (wk, size, variant), by in d.items():
        cells = []
        for s in systems:
            if s == "numpy":
                cells.append(fmt_time(f.get((wk, size), {}).get("numpy", {}).get("median_s")))
            else:
                r = by.get(s)
                cells.append("-" if r is None else ("mismatch" if "median_s" not in r else fmt_time(r["median_s"])))
        out.append(f"| {wk} | {size} | {variant} | " + " | ".join(cells) + " |")
    out += ["", "## The function alone: median time", ""]
    fsys = [s for s in systems if any(s in by for by in f.values())]
    out += ["| workload | size | " + " | ".join(fsys) + " |", "| --- | --- |" + " --- |" * len(fsys)]
    for (wk, size), by in f.items():
        out.append(f"| {wk} | {size} | " + " | ".join(fmt_time(by.get(s, {}).get("median_s")) for s in fsys) + " |")
    out += ["", "## Cost ratio: derivative / the same system's function", ""]
    out += ["| workload | size | derivative | " + " | ".join(dsys) + " |", "| --- | --- | --- |" + " --- |" * len(dsys)]
    for (wk, size, variant), by in d.items():
        fb = f.get((wk, size), {})
        cells = []
        for s in dsys:
            own = fb.get("torch" if s in ("torch.func",) else s, {}).get("median_s")
            r = ratio(by.get(s, {}).get("median_s"), own)
            cells.append("-" if r is None else f"{r:.2f}")
        out.append(f"| {wk} | {size} | {variant} | " + " | ".join(cells) + " |")
    rows, per_op = targets(data)
    if m["device"] == "cpu" and rows:
        out += ["", "## gpuad's CPU targets", "",
                "gpuad's derivative time over: NumPy's forward alone (<= 3), PyTorch eager's derivative (<= 1; W2 "
                "<= 1.05; torch.func where eager has none), HIPS autograd's (<= 0.5).", "",
                "| workload | size | derivative | gpuad | / numpy f | / torch | / autograd |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        if per_op:
            out += ["", "| W7 per-op overhead | gpuad | torch eager | gpuad / torch |", "| --- | --- | --- | --- |"]
            out += ["| grad, per recorded op | " + " | ".join(p) + " |" for p in per_op]
    peaks = [(k, by) for k, by in d.items() if any(r.get("peak_bytes") for r in by.values())]
    if peaks:
        out += ["", "## Peak memory of one derivative call (MB allocated on top of the inputs; - where it cannot "
                "be read)", "", "| workload | size | derivative | " + " | ".join(dsys) + " |",
                "| --- | --- | --- |" + " --- |" * len(dsys)]
        for (wk, size, variant), by in peaks:
            cells = [(f"{by[s]['peak_bytes'] / 2**20:.1f}" if by.get(s, {}).get("peak_bytes") is not None else "-")
                     for s in dsys]
            out.append(f"| {wk} | {size} | {variant} | " + " | ".join(cells) + " |")
    out += ["", "## Checks, skips and notes", ""]
    for k, (ok, text) in data["fd_checks"].items():
        out.append(f"- {k}: gpuad against central differences (float64, small size): {'ok' if ok else 'MISMATCH'}; "
                   f"{text}")
    for r in data["results"]:
        if r.get("note"):
            out.append(f"- {r['workload']} {r['system']}: {r['note']}")
    for k, v in data["notes"].items():
        out.append(f"- {k}: {v}")
    out += [f"- {line}" for line in data["lines"]]
    for title, p in plots:
        out += ["", f"![{title}]({p})"]
    return "\n".join(out) + "\n"


def fmt_load(t):
    return ", ".join(f"{x:.2f}" for x in t)


def plot(data, folder, device):
    """W8 (time against n) and the cost ratio per system; returns [(title, file name)]."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("skip plots: matplotlib is not installed (pip install '.[bench]')")
        return []
    d, f = index(data)
    systems = [s for s in ORDER if s in data["systems"]]
    made = []
    sweep = sorted({(r["n"], r["size"]) for r in data["results"] if r["workload"] == "W8"})
    stamp = f"{data['machine']['date']}, {data['machine'].get('cpu', '')[:40]}, load {data['machine']['load_before'][0]:.1f}"
    if sweep:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for s in systems:
            pts = []
            for n, size in sweep:
                r = (f if s == "numpy" else d).get(("W8", size) if s == "numpy" else ("W8", size, "grad"), {}).get(s)
                if r and "median_s" in r:
                    pts.append((n, r["median_s"]))
            if pts:
                ax.loglog(*zip(*pts), "--" if s == "numpy" else "-o", color=COLORS.get(s),
                          label=s + (" (f alone)" if s == "numpy" else " (value and grad)"))
        ax.set_xlabel("n (elements of x and w)")
        ax.set_ylabel("median time (s)")
        ax.set_title(f"W8: gradient of W1 against size ({device})\n{stamp}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"w8_sweep_{device}.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append(("W8 size sweep", name))
    keys = [k for k in d if k[0] != "W8"]
    dsys = [s for s in systems if s != "numpy"]
    if keys and dsys:
        fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(keys) + 2), 4.5))
        width = 0.8 / len(dsys)
        for j, s in enumerate(dsys):
            xs, ys = [], []
            for i, k in enumerate(keys):
                own = f.get(k[:2], {}).get("torch" if s == "torch.func" else s, {}).get("median_s")
                r = ratio(d[k].get(s, {}).get("median_s"), own)
                if r is not None:
                    xs.append(i + (j - (len(dsys) - 1) / 2) * width)
                    ys.append(r)
            if xs:
                ax.bar(xs, ys, width, label=s, color=COLORS.get(s))
        ax.axhline(3, color="k", lw=0.8, ls="--", label="3x")
        ax.set_yscale("log")
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{k[0]} {k[2] if k[2] != 'grad' else ''}\n{k[1].replace('(n, m) = ', '')}" for k in keys],
                           fontsize=7)
        ax.set_ylabel("derivative time / function time")
        ax.set_title(f"Cost of the derivative relative to the same system's function ({device})\n{stamp}",
                     fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        fig.tight_layout()
        name = f"cost_ratio_{device}.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append(("cost ratio per system", name))
    return made


START, END = "<!-- bench-suite:start -->", "<!-- bench-suite:end -->"


def update_readme(md, folder, stem):
    """Put the run's report (headings one level down, plot paths relative to the root) between the markers."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} ... {END} markers: not updated")
        return
    rel = folder.resolve().relative_to(ROOT) if folder.resolve().is_relative_to(ROOT) else folder
    body = []
    for line in md.splitlines()[1:]:
        if line.startswith("## "):
            line = "#" + line
        if line.startswith("![") and "](" in line:
            title, path = line[2:].split("](", 1)
            line = f"![{title}]({rel}/{path}"
        body.append(line)
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    first = f"The latest run (`{rel}/{stem}.md`, written by `benchmarks/suite.py --readme`):\n\n"
    readme.write_text(head + START + "\n" + first + "\n".join(body).strip() + "\n" + END + tail)
    print("README.md updated")


def main(argv=None):
    args = parse(argv)
    if args.threads and args.device == "cpu":
        set_threads(args.threads)
    if args.device == "gpu":  # JAX must not take 75% of the GPU's memory up front: CuPy and torch share it
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    sys.path.insert(0, str(HERE))
    if str(ROOT) not in sys.path:
        sys.path.insert(1, str(ROOT))
    t0 = time.perf_counter()
    if args.report:
        data = json.loads(pathlib.Path(args.report).read_text())
        args.device = data["machine"]["device"]
    else:
        data = run(args)
        data["machine"]["wall_s"] = round(time.perf_counter() - t0, 1)
    folder = pathlib.Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    plots = [] if args.no_plots else plot(data, folder, args.device)
    md = markdown(data, plots)
    stem = (f"suite_{args.device}{'_quick' if args.quick else ''}_{platform.node() or 'host'}_"
            f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M')}")
    if args.report:
        stem = pathlib.Path(args.report).stem
    (folder / f"{stem}.md").write_text(md)
    if not args.report:
        (folder / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str))
    print()
    print(md)
    print(f"written: {folder / stem}.md, .json" + "".join(f", {p}" for _, p in plots)
          + f" ({data['machine']['wall_s']} s)")
    if args.readme:
        update_readme(md, folder, stem)
    mismatches = [r for r in data["results"] if str(r.get("check", "")).startswith("mismatch")]
    bad_fd = [k for k, (ok, _) in data["fd_checks"].items() if not ok]
    return 1 if mismatches or bad_fd else 0


if __name__ == "__main__":
    sys.exit(main())
