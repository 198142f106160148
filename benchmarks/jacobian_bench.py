"""The forward-vs-reverse cost table, measured: the full Jacobian of tanh(W x + b) for (n, m) = (16, 4096) and
(4096, 16) by jacfwd, jacrev and jacobian (auto), and hvp against grad for the Rosenbrock function at 2^20 float64.

Expected: forward mode wins for n << m, reverse mode for m << n, the slower mode's time showing the ratio of the
two sizes' work; jacobian's automatic choice within 10% of the faster mode on both shapes; hvp at most 4x one
gradient (best of --repeat runs each). Usage: python benchmarks/jacobian_bench.py [--repeat 20]
"""
import argparse
import time

import numpy as np

import gpuad
import gpuad.numpy as gnp
from gpuad import backend


def best_of(fns, repeat, sync):
    """The best time of each function, measured in turns (one run of each per round, in a rotating order) so
    that the load of a shared machine, which drifts, and the caches another function has just churned weigh on
    all of them alike."""
    best = {name: float("inf") for name in fns}
    for name, fn in fns.items():
        fn()
    sync()
    names = list(fns)
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:  # each in turn after each other one
            fn = fns[name]
            t0 = time.perf_counter()
            fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def rosenbrock(x):
    return gnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_square(x):  # the same with square: its partial is 2 x, where power's handles every exponent
    return gnp.sum(100.0 * gnp.square(x[1:] - gnp.square(x[:-1])) + gnp.square(1.0 - x[:-1]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
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
        jacs = {"jacfwd": gpuad.jacfwd(f), "jacrev": gpuad.jacrev(f), "jacobian": gpuad.jacobian(f)}
        times = best_of({name: (lambda jac=jac: jac(x)) for name, jac in jacs.items()}, args.repeat, sync)
        fast = min(times["jacfwd"], times["jacrev"])
        slow_name = "jacfwd" if times["jacfwd"] > times["jacrev"] else "jacrev"
        print(f"  (n, m) = ({n}, {m}): jacfwd {times['jacfwd'] * 1e3:8.2f} ms   jacrev {times['jacrev'] * 1e3:8.2f} ms"
              f"   jacobian(auto) {times['jacobian'] * 1e3:8.2f} ms  (auto / faster = {times['jacobian'] / fast:.2f}; "
              f"{slow_name} / faster = {max(times['jacfwd'], times['jacrev']) / fast:.1f})")
    x = xp.asarray(rng.uniform(-1, 1, 2**20))
    v = xp.asarray(rng.standard_normal(2**20))
    for name, fn in [("x ** 2", rosenbrock), ("square(x)", rosenbrock_square)]:
        g = gpuad.grad(fn)
        times = best_of({"f": lambda: fn(x), "grad": lambda: g(x), "hvp": lambda: gpuad.hvp(fn, (x,), (v,))},
                        args.repeat, sync)
        print(f"Rosenbrock ({name}) at 2^20 float64: f {times['f'] * 1e3:.1f} ms, grad {times['grad'] * 1e3:.1f} ms, "
              f"hvp (grad and H v) {times['hvp'] * 1e3:.1f} ms: hvp / grad = {times['hvp'] / times['grad']:.2f}")


if __name__ == "__main__":
    main()
