"""Cost of a gradient relative to the function itself, on large arrays (where array work dominates).

For f(x, w) = sum(sin(x) * w + x * x * exp(-w) + tanh(x * w)) (the GPU benchmark's function) and a small MLP
loss, reports the time of f, of value_and_grad (forward + backward) and their ratio. Target from the core issue:
ratio <= 3. Runs on the default backend (GPUAD_BACKEND=numpy|cupy). Usage: python benchmarks/gradient_cost.py [n]
"""
import sys
import timeit

import gpuad
import gpuad.nn
import gpuad.numpy as gnp
from gpuad import backend


def elementwise(x, w):
    return gnp.sum(gnp.sin(x) * w + x * x * gnp.exp(-w) + gnp.tanh(x * w))


def mlp(w1, w2, x):
    h = gnp.tanh(x @ w1)
    return gnp.mean(gpuad.nn.logsumexp(h @ w2, axis=-1))


def timed(fn, sync):
    def run():
        fn()
        sync()
    run()
    return min(timeit.repeat(run, number=3, repeat=5)) / 3


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10**6
    xp = backend.default_module()
    sync = (lambda: xp.cuda.Device().synchronize()) if xp.__name__ == "cupy" else (lambda: None)
    rng = xp.random.default_rng(0) if hasattr(xp.random, "default_rng") else xp.random
    x = rng.random(n, dtype=xp.float32)
    w = rng.random(n, dtype=xp.float32)
    batch = max(n // 1000, 8)
    w1 = rng.random((256, 256), dtype=xp.float32) / 16
    w2 = rng.random((256, 10), dtype=xp.float32)
    xb = rng.random((batch, 256), dtype=xp.float32)
    print(f"backend: {xp.__name__}, n = {n}")
    for name, f, args in (("elementwise f(x, w)", elementwise, (x, w)), (f"MLP loss, batch {batch}", mlp,
                                                                           (w1, w2, xb))):
        vg = gpuad.value_and_grad(f, argnums=tuple(range(len(args) - (name.startswith("MLP")))))
        t_f = timed(lambda: f(*args), sync)
        t_g = timed(lambda: vg(*args), sync)
        print(f"{name:<24} f {t_f * 1e3:8.2f} ms   value_and_grad {t_g * 1e3:8.2f} ms   ratio {t_g / t_f:5.2f}")


if __name__ == "__main__":
    main()
