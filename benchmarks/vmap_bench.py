"""Per-example gradients of an MLP loss: ``vmap(grad(loss), in_axes=(None, 0, 0))`` against a Python loop of
``grad`` calls (and ``torch.func.vmap(torch.func.grad(...))`` when PyTorch is installed), with peak memory.

The model is the issue's: 784 -> 1024 -> 1024 -> 10 with tanh and softmax cross-entropy, float32. Per-example
gradients hold one copy of the parameters (1.86 M numbers) per example, so a batch of 4096 needs 30 GB for the
result alone; the default batch is therefore 128 (set --batch). The loop is timed on --loop examples and
reported per example and extrapolated to the batch. Peak memory: tracemalloc's peak of the backend allocations
(NumPy reports its arrays to tracemalloc), over the inputs already allocated. The floor line times writing the
per-example weight gradients alone (the outer products, nothing else): on a CPU that write, not Python
overhead, bounds the gain over the loop (about 4.5x on a 2-core VM, where the loop's grad is 5 ms an example).

Usage: python benchmarks/vmap_bench.py [--batch 128] [--loop 32] [--repeat 3]
"""
import argparse
import time
import tracemalloc

import numpy as np

import gpuad
import gpuad.nn as nn
import gpuad.numpy as gnp
from gpuad import backend

SIZES = (784, 1024, 1024, 10)


def loss(params, x, y):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = gnp.tanh(h)
    return nn.softmax_cross_entropy(h, y)


def init(xp, rng, dtype):
    return [(xp.asarray(rng.standard_normal((m, n)) / np.sqrt(m), dtype=dtype), xp.zeros(n, dtype=dtype))
            for m, n in zip(SIZES[:-1], SIZES[1:])]


def measure(fn, repeat, sync):
    """(best time of ``repeat`` runs, peak traced memory of one more run): tracemalloc slows allocation-heavy
    code, so the timed runs are not traced."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - t0)
        del out
    tracemalloc.start()
    out = fn()
    sync()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del out
    return best, peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--loop", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    xp = backend.default_module()
    sync = (lambda: xp.cuda.Device().synchronize()) if xp.__name__ == "cupy" else (lambda: None)
    rng = np.random.default_rng(0)
    dtype = np.float32
    params = init(xp, rng, dtype)
    x = xp.asarray(rng.standard_normal((args.batch, SIZES[0])), dtype=dtype)
    y = xp.asarray(rng.integers(0, SIZES[-1], args.batch))
    per_example = gpuad.vmap(gpuad.grad(loss), in_axes=(None, 0, 0))
    grad = gpuad.grad(loss)

    check = per_example(params, x[:4], y[:4])
    for i in range(4):
        ref = grad(params, x[i], y[i])
        for (gw, gb), (rw, rb) in zip(check, ref):
            assert np.allclose(backend.to_numpy(gw[i]), backend.to_numpy(rw), atol=1e-5)
            assert np.allclose(backend.to_numpy(gb[i]), backend.to_numpy(rb), atol=1e-5)

    t_vmap, m_vmap = measure(lambda: per_example(params, x, y), args.repeat, sync)
    n = min(args.loop, args.batch)
    t_loop, m_loop = measure(lambda: [grad(params, x[i], y[i]) for i in range(n)], args.repeat, sync)
    t_loop_batch = t_loop / n * args.batch
    print(f"backend {xp.__name__}, float32, MLP {' -> '.join(map(str, SIZES))}, batch {args.batch}")
    print(f"  vmap(grad(loss)):       {t_vmap * 1e3:9.1f} ms   ({t_vmap / args.batch * 1e6:8.1f} us/example)   "
          f"peak {m_vmap / 2**20:8.1f} MiB")
    print(f"  loop of grad (x{n}):     {t_loop * 1e3:9.1f} ms   ({t_loop / n * 1e6:8.1f} us/example)   "
          f"peak {m_loop / 2**20:8.1f} MiB   -> {t_loop_batch * 1e3:.0f} ms for the batch")
    print(f"  speed-up of vmap over the loop: {t_loop_batch / t_vmap:.1f}x")
    t_floor, size = write_floor(xp, rng, args, dtype, measure, sync)
    print(f"  floor: the per-example weight gradients alone ({size / 2**20:.0f} MiB), each one outer product "
          f"written by the array module: {t_floor * 1e3:.1f} ms, so no per-example method beats the loop by more "
          f"than {t_loop_batch / t_floor:.1f}x here (vmap is at {t_vmap / t_floor:.2f}x the floor)")
    elementwise(args, xp, rng, measure, sync)
    try:
        import torch
        from torch.func import grad as tgrad, vmap as tvmap
    except ImportError:
        print("  torch.func.vmap(torch.func.grad(...)): PyTorch is not installed; not compared")
        return
    tparams = [(torch.tensor(backend.to_numpy(w)), torch.tensor(backend.to_numpy(b))) for w, b in params]
    tx, ty = torch.tensor(backend.to_numpy(x)), torch.tensor(backend.to_numpy(y))

    def tloss(p, x, y):
        h = x
        for i, (w, b) in enumerate(p):
            h = h @ w + b
            if i < len(p) - 1:
                h = torch.tanh(h)
        return torch.nn.functional.cross_entropy(h[None], y[None])

    t_torch, m_torch = measure(lambda: tvmap(tgrad(tloss), in_dims=(None, 0, 0))(tparams, tx, ty), args.repeat,
                               lambda: None)
    print(f"  torch.func.vmap(grad):  {t_torch * 1e3:9.1f} ms   (gpuad / torch = {t_vmap / t_torch:.2f}); "
          f"torch's CPU allocations are not traced by tracemalloc")


def write_floor(xp, rng, args, dtype, measure, sync):
    """The time to write the result's weight gradients and nothing else: per layer, the batch of outer products
    (batch, m) x (batch, n) -> (batch, m, n) into new memory, as any per-example method must. The loop's own work
    per example is a few passes over the same parameters, which bounds what batching can gain on a machine
    whose memory bandwidth, not its Python overhead, sets the loop's time."""
    factors = [(xp.asarray(rng.standard_normal((args.batch, m)), dtype=dtype),
                xp.asarray(rng.standard_normal((args.batch, n)), dtype=dtype)) for m, n in zip(SIZES[:-1], SIZES[1:])]
    t, _ = measure(lambda: [a[:, :, None] * d[:, None, :] for a, d in factors], args.repeat, sync)
    return t, sum(a.shape[0] * a.shape[1] * d.shape[1] * a.itemsize for a, d in factors)


def elementwise(args, xp, rng, measure, sync):
    """Per-example gradients of an elementwise loss at batch 4096 (small per-example gradients): the backward
    pass of vmap(grad) runs each elementwise region as one fused program over the whole batch."""
    batch, n = 4096, 256
    x = xp.asarray(rng.standard_normal((batch, n)))
    w = xp.asarray(rng.standard_normal(n))

    def f(x, w):
        return gnp.sum(gnp.sin(x) * w + x * x * gnp.exp(-w) + gnp.tanh(x * w))

    per_example = gpuad.vmap(gpuad.grad(f), in_axes=(0, None))
    grad = gpuad.grad(f)
    t_vmap, m_vmap = measure(lambda: per_example(x, w), args.repeat, sync)
    count = min(args.loop * 8, batch)
    t_loop, m_loop = measure(lambda: [grad(x[i], w) for i in range(count)], args.repeat, sync)
    print(f"elementwise loss sum(sin(x) w + x^2 exp(-w) + tanh(x w)), x: {n} float64 per example, batch {batch}")
    print(f"  vmap(grad(f)):          {t_vmap * 1e3:9.1f} ms   peak {m_vmap / 2**20:8.1f} MiB")
    print(f"  loop of grad (x{count}):    {t_loop * 1e3:9.1f} ms   -> {t_loop / count * batch * 1e3:.0f} ms for the "
          f"batch: {t_loop / count * batch / t_vmap:.1f}x")


if __name__ == "__main__":
    main()
