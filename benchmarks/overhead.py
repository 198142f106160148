"""Per-op overhead of recording and differentiating on tiny arrays (where Python overhead dominates).

Runs a chain of 3 elementwise ops x 50 steps + a sum on 4-element arrays and reports, per recorded op, the time
of the plain function (gnp on arrays), of grad (forward + backward) and of jvp. Target from the core issue:
grad <= 10 us per op. Usage: python benchmarks/overhead.py
"""
import timeit

import numpy as np

import gpuad
import gpuad.numpy as gnp

STEPS = 50
OPS = 3 * STEPS + 1


def f(x, w):
    y = x
    for _ in range(STEPS):
        y = gnp.sin(y) * w + y
    return gnp.sum(y)


def main():
    x, w = np.random.rand(4), np.random.rand(4)
    grad_f = gpuad.grad(f)
    cases = {
        "plain numpy via gnp": lambda: f(x, w),
        "grad (fwd + bwd)": lambda: grad_f(x, w),
        "jvp": lambda: gpuad.jvp(f, (x, w), (x, w)),
    }
    for name, run in cases.items():
        run()
        best = min(timeit.repeat(run, number=50, repeat=5)) / 50
        print(f"{name:<22} {best / OPS * 1e6:6.2f} us per op")


if __name__ == "__main__":
    main()
