"""``python -m gpuad``: the reference example f(x1, x2) = x1 x2 + sin(x1), end to end.

Prints the tape (the Wengert list), the adjoint program the backward pass runs, the gradient by reverse mode and
by forward mode, and a central-difference check; on the GPU when CuPy sees one, else on the CPU.
"""
import numpy

import gpuad
import gpuad.numpy as gnp
from gpuad import backend


def main():
    xp = backend.default_module()
    where = "GPU (CuPy)" if xp is not numpy else "CPU (NumPy)"
    print(f"gpuad {gpuad.__version__} on the {where}\n")
    print("f(x1, x2) = x1 * x2 + sin(x1)   at x1 = 2, x2 = 5\n")

    def f(x1, x2):
        return x1 * x2 + gnp.sin(x1)

    x1, x2 = xp.asarray(2.0), xp.asarray(5.0)
    with gpuad.Tape() as tape:
        t1, t2 = tape.watch(x1), tape.watch(x2)
        y = f(t1, t2)
    reverse = tape.gradient(y, [t1, t2])
    print("The tape (forward pass):")
    print(tape)
    print("\nThe adjoint program (backward pass):")
    print(tape.adjoint())

    forward = [gpuad.jvp(f, (x1, x2), seed)[1] for seed in ((xp.asarray(1.0), xp.asarray(0.0)),
                                                             (xp.asarray(0.0), xp.asarray(1.0)))]
    eps = 1e-6
    central = [(f(x1 + eps, x2) - f(x1 - eps, x2)) / (2 * eps), (f(x1, x2 + eps) - f(x1, x2 - eps)) / (2 * eps)]
    exact = [5 + numpy.cos(2.0), 2.0]
    print("\n                    df/dx1               df/dx2")
    for name, (a, b) in (("reverse mode", reverse), ("forward mode", forward), ("central diff.", central),
                         ("by hand", exact)):
        print(f"{name:<15} {float(a):>20.15f} {float(b):>20.15f}")
    ok = all(abs(float(r) - float(c)) < 1e-6 and abs(float(r) - float(v)) < 1e-12
             for r, c, v in zip(reverse, central, forward))
    print("\nreverse = forward, and both match central differences:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
