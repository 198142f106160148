"""Memory and time of the MLP loss gradient with and without checkpointing each layer.

MLP 784 -> 1024 -> 1024 -> 10, tanh, softmax cross-entropy, float32, batch 4096 (by default). For each variant
reports the time of ``value_and_grad`` (best of a few runs), the bytes its tape keeps after the forward pass
(``Tape.saved_bytes``, the inputs and parameters left out) and the peak memory of the whole gradient: on NumPy
the tracemalloc peak (NumPy reports its allocations to tracemalloc) above what was allocated before, on CuPy the
growth of the memory pool's high-water mark (the pool is emptied before each run).

Usage: python benchmarks/checkpoint_bench.py [batch] [reps]   (GPUAD_BACKEND=cupy for the GPU)
"""
import sys
import time
import tracemalloc

import numpy as np

import gpuad
import gpuad.nn
import gpuad.numpy as gnp
from gpuad import backend


def layer(w, b, h):
    return gnp.tanh(h @ w + b)


def linear(w, b, h):
    return h @ w + b


def make_loss(mode, policy=None):
    """mode: "none", "layer" (checkpoint each layer) or "whole" (checkpoint the three layers as one block)."""
    wrap = (lambda f: gpuad.checkpoint(f, policy=policy)) if mode == "layer" else (lambda f: f)
    hidden, last = wrap(layer), wrap(linear)

    def logits(params, x):
        (w1, b1), (w2, b2), (w3, b3) = params
        return last(w3, b3, hidden(w2, b2, hidden(w1, b1, x)))

    body = gpuad.checkpoint(logits, policy=policy) if mode == "whole" else logits

    def loss(params, x, labels):
        return gpuad.nn.softmax_cross_entropy(body(params, x), labels)

    return loss


def main():
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    xp = backend.default_module()
    gpu = xp.__name__ == "cupy"
    sync = (lambda: xp.cuda.Device().synchronize()) if gpu else (lambda: None)
    rng = np.random.default_rng(0)
    sizes = [784, 1024, 1024, 10]
    params = [(xp.asarray(rng.standard_normal((m, n)) / np.sqrt(m), dtype=xp.float32),
               xp.zeros(n, dtype=xp.float32)) for m, n in zip(sizes[:-1], sizes[1:])]
    x = xp.asarray(rng.standard_normal((batch, 784)), dtype=xp.float32)
    labels = xp.asarray(rng.integers(0, 10, batch))
    print(f"backend: {xp.__name__}, MLP 784-1024-1024-10 tanh, softmax cross-entropy, float32, batch {batch}")
    variants = (("no checkpoint", "none", None), ("checkpoint each layer", "layer", None),
                ("each layer, matmuls saved", "layer", "matmul"), ("checkpoint the whole MLP", "whole", None))
    fns = {name: gpuad.value_and_grad(make_loss(mode, policy)) for name, mode, policy in variants}
    kept, peak, best, grads = {}, {}, {}, {}
    for name, mode, policy in variants:
        # what the tape keeps after the forward pass
        leaves = [gpuad.tensor(v) for pair in params for v in pair]
        with gpuad.Tape() as tape:
            make_loss(mode, policy)([(leaves[0], leaves[1]), (leaves[2], leaves[3]), (leaves[4], leaves[5])], x,
                                    labels)
        kept[name] = tape.saved_bytes(exclude=[x] + leaves)
        del tape, leaves
        # the peak of the whole gradient
        if gpu:
            pool = xp.get_default_memory_pool()
            pool.free_all_blocks()
            base = pool.total_bytes()
            value, g = fns[name](params, x, labels)
            sync()
            peak[name] = pool.total_bytes() - base
        else:
            tracemalloc.start()
            value, g = fns[name](params, x, labels)
            peak[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        grads[name] = [backend.to_numpy(v) for pair in g for v in pair]
        del value, g
    for _ in range(reps):  # the variants take turns, so a busy machine slows them alike
        for name in fns:
            t0 = time.perf_counter()
            fns[name](params, x, labels)
            sync()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    reference = grads[variants[0][0]]
    for name in fns:
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(grads[name], reference))
        print(f"{name:<27} time {best[name] * 1e3:8.1f} ms   tape keeps {kept[name] / 2**20:7.1f} MiB   "
              f"peak {peak[name] / 2**20:7.1f} MiB   max |grad diff| {diff:.1e}")


if __name__ == "__main__":
    main()
