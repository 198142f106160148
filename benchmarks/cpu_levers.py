"""What W1's gradient could cost on the CPU (NumPy, one thread): the measurements behind the suite's note.

Times, at 2^22 float32 (interleaved, medians): NumPy's forward pass; gpuad's value_and_grad and its recorded
forward pass alone; the same gradient with the regions run by the host C++ build of their kernels
(``fusion.HostLauncher``: g++, one thread, scalar libm; compiled before timing); the single ufunc passes (a
transcendental against an arithmetic pass, with and without a fresh output array); the array passes of gpuad's
rendered backward (from its Python source); and a hand-written NumPy forward + backward that keeps the forward
pass's transcendentals, folds the seed (1) and works in reused buffers (11 forward and 14 backward passes, one
transcendental among them: the floor of a NumPy rendering).
Usage: python benchmarks/cpu_levers.py [n]
"""
import os
import statistics
import sys
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

import gpuad  # noqa: E402
import gpuad.numpy as gnp  # noqa: E402


def f_np(x, w):
    return np.sum(np.sin(x) * w + x * x * np.exp(-w) + np.tanh(x * w))


def f_g(x, w):
    return gnp.sum(gnp.sin(x) * w + x * x * gnp.exp(-w) + gnp.tanh(x * w))


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 2**22
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    o = np.empty_like(x)
    vg = gpuad.value_and_grad(f_g, argnums=(0, 1))

    def record_only():
        with gpuad.Tape():
            return f_g(gpuad.tensor(x), gpuad.tensor(w))

    host = gpuad.fusion.HostLauncher() if gpuad.fusion.compiler() else None

    def host_build():  # the same gradient, its region run by the CPU build of the generated kernel
        with gpuad.Tape(launcher=host) as tape:
            xt, wt = tape.watch(x), tape.watch(w)
            y = f_g(xt, wt)
        return tape.gradient(y, [xt, wt])

    def kept():  # forward keeps sin(x), exp(-w), tanh(x w); backward in two reused buffers, seed folded (1)
        s, e = np.sin(x), np.exp(np.negative(w))
        t = np.tanh(x * w)
        y = s * w
        xx = x * x
        xxe = xx * e
        y += xxe
        y += t
        y.sum()
        np.multiply(t, t, out=t)
        np.subtract(1, t, out=t)          # 1 - tanh^2
        gx = np.cos(x)
        gx *= w
        np.multiply(x, e, out=e)          # x exp(-w)
        e *= 2
        gx += e
        np.multiply(t, w, out=y)
        gx += y
        gw = s
        gw -= xxe
        np.multiply(t, x, out=t)
        gw += t
        return gx, gw

    ref = vg(x, w)[1]
    got = kept()
    err = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(got, ref))
    assert err < 1e-5, err
    if host is not None:
        err = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(host_build(), ref))
        assert err < 1e-5, err
    cases = {
        "NumPy forward f": lambda: f_np(x, w),
        "gpuad value_and_grad": lambda: vg(x, w),
        "gpuad recorded forward alone": record_only,
        "NumPy: forward keeping sin/exp/tanh + backward in reused buffers": kept,
        **({"gpuad gradient, host C++ build of the region (HostLauncher)": host_build} if host else {}),
        "one pass: sin(x, out=)": lambda: np.sin(x, out=o),
        "one pass: cos(x, out=)": lambda: np.cos(x, out=o),
        "one pass: exp(x, out=)": lambda: np.exp(x, out=o),
        "one pass: tanh(x, out=)": lambda: np.tanh(x, out=o),
        "one pass: multiply(x, w, out=)": lambda: np.multiply(x, w, out=o),
        "one pass: x * w (fresh array)": lambda: x * w,
    }
    samples = {k: [] for k in cases}
    for fn in cases.values():
        fn()
    for _ in range(7):
        for k, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - t0)
    base = statistics.median(samples["NumPy forward f"])
    from gpuad.fusion import render_python
    seen = []
    original = render_python.python_function

    def spy(region, namespace):
        seen.append(render_python.python_source(region)[0])
        return original(region, namespace)
    render_python.python_function = spy
    import gpuad.fusion.run as run_module
    run_module.python_function = spy
    gpuad.value_and_grad(f_g, argnums=(0, 1))(x[:100].copy(), w[:100].copy())
    run_module.python_function = render_python.python_function = original
    for src in seen[:1]:
        body = [ln.strip() for ln in src.splitlines()[1:] if not ln.strip().startswith(("return", "del"))]
        passes = [ln for ln in body if any(op in ln for op in ("(", " * ", " + ", " - ", "+=", "-="))]
        trans = [ln for ln in passes if any(t + "(" in ln for t in ("sin", "cos", "exp", "tanh"))]
        print(f"gpuad's rendered backward of W1: {len(passes)} array passes, {len(trans)} transcendental "
              f"({', '.join(ln.split('=')[-1].strip() for ln in trans)}); the forward pass has 11 + the sum")
    print(f"n = {n}, float32, one thread; load average {os.getloadavg()[0]:.2f}")
    for k, v in samples.items():
        m = statistics.median(v)
        print(f"{k:<66} {m * 1e3:8.2f} ms  {m / base:5.2f}x f")


def per_op():
    """W7's per-op cost split into recording (the forward pass under a tape) and the backward pass, against
    plain NumPy and eager PyTorch (when installed), in microseconds per op (102 ops)."""
    from workloads import Overhead
    x = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    ns_g = type("ns", (), {"sin": staticmethod(gnp.sin), "sum": staticmethod(gnp.sum)})
    ns_n = type("ns", (), {"sin": staticmethod(np.sin), "sum": staticmethod(np.sum)})
    f = Overhead.f
    g = gpuad.value_and_grad(lambda v: f(ns_g, v))

    def record():
        with gpuad.Tape():
            return f(ns_g, gpuad.tensor(x))
    tape_box = {}

    def record_persistent():
        with gpuad.Tape(persistent=True) as tape:
            t = gpuad.tensor(x)
            y = f(ns_g, t)
        tape_box["v"] = (tape, y, t)
    record_persistent()

    def backward():
        tape, y, t = tape_box["v"]
        return tape.gradient(y, t)
    cases = {"NumPy forward": lambda: f(ns_n, x), "gpuad.numpy on arrays (no tape)": lambda: f(ns_g, x),
             "gpuad recording (forward under a Tape)": record, "gpuad backward (persistent tape)": backward,
             "gpuad value_and_grad": lambda: g(x)}
    try:
        import torch
        torch.set_num_threads(1)
        tx = torch.from_numpy(x)
        ns_t = type("ns", (), {"sin": staticmethod(torch.sin), "sum": staticmethod(torch.sum)})

        def torch_fwd():
            xl = tx.detach().requires_grad_(True)
            return f(ns_t, xl)

        def torch_grad():
            xl = tx.detach().requires_grad_(True)
            return torch.autograd.grad(f(ns_t, xl), xl)
        cases.update({"torch forward recording (requires_grad)": torch_fwd, "torch value and grad": torch_grad})
    except ImportError:
        pass
    samples = {k: [] for k in cases}
    for _ in range(7):
        for k, fn in cases.items():
            fn()
            t0 = time.perf_counter()
            for _ in range(20):
                fn()
            samples[k].append((time.perf_counter() - t0) / 20)
    print(f"W7 per op ({Overhead.OPS} ops on 16 float32), load average {os.getloadavg()[0]:.2f}")
    for k, v in samples.items():
        print(f"{k:<66} {statistics.median(v) / Overhead.OPS * 1e6:8.2f} us/op")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
    per_op()
