"""The forward-vs-reverse cost table, measured: the full Jacobian of tanh(W x + b) for (n, m) = (16, 4096) and
(4096, 16) by jacfwd, jacrev and jacobian (auto), and hvp against grad for the Rosenbrock function at 2^20 float64.

Expected: forward mode wins for n << m, reverse mode for m << n, the slower mode's time showing the ratio of the
two sizes' work; jacobian's automatic choice within 10% of the faster mode on both shapes; hvp at most 4x one
gradient. Usage: python benchmarks/jacobian_bench.py [--repeat 5]
"""
import argparse
import time

import numpy as np

import gpuad
import gpuad.numpy as gnp
from gpuad import backend


def best_of(fn, repeat, sync):
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def rosenbrock(x):
    return gnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    xp = backend.default_module()
    sync = (lambda: xp.cuda.Device().synchronize()) if xp.__name__ == "cupy" else (lambda: None)
    rng = np.random.default_rng(0)
    print(f"backend {xp.__name__}, float64")
    print("Jacobian of tanh(W x + b), W: (m, n)")
    for n, m in [(16, 4096), (4096, 16)]:
        w = xp.asarray(rng.standard_normal((m, n)) / np.sqrt(n))
        b = xp.asarray(rng.standard_normal(m))
        x = xp.asarray(rng.standard_normal(n))
        f = lambda x: gnp.tanh(w @ x + b)  # noqa: E731
        times = {}
        for name, jac in [("jacfwd", gpuad.jacfwd(f)), ("jacrev", gpuad.jacrev(f)), ("jacobian", gpuad.jacobian(f))]:
            times[name] = best_of(lambda: jac(x), args.repeat, sync)
        fast = min(times["jacfwd"], times["jacrev"])
        slow_name = "jacfwd" if times["jacfwd"] > times["jacrev"] else "jacrev"
        print(f"  (n, m) = ({n}, {m}): jacfwd {times['jacfwd'] * 1e3:8.2f} ms   jacrev {times['jacrev'] * 1e3:8.2f} ms"
              f"   jacobian(auto) {times['jacobian'] * 1e3:8.2f} ms  (auto / faster = {times['jacobian'] / fast:.2f}; "
              f"{slow_name} / faster = {max(times['jacfwd'], times['jacrev']) / fast:.1f})")
    x = xp.asarray(rng.uniform(-1, 1, 2**20))
    v = xp.asarray(rng.standard_normal(2**20))
    g = gpuad.grad(rosenbrock)
    t_f = best_of(lambda: rosenbrock(x), args.repeat, sync)
    t_g = best_of(lambda: g(x), args.repeat, sync)
    t_h = best_of(lambda: gpuad.hvp(rosenbrock, (x,), (v,)), args.repeat, sync)
    print(f"Rosenbrock at 2^20 float64: f {t_f * 1e3:.1f} ms, grad {t_g * 1e3:.1f} ms, hvp (grad and H v) "
          f"{t_h * 1e3:.1f} ms: hvp / grad = {t_h / t_g:.2f}")


if __name__ == "__main__":
    main()
