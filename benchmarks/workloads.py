"""The workloads of the benchmark suite (W1 .. W9), each written once against a small namespace of array
functions (``ns``) that every system provides: ``ns.sin``, ``ns.exp``, ``ns.tanh``, ``ns.sum`` and
``ns.ce(logits, labels)`` (softmax cross-entropy, the mean over the rows; a 1-D ``logits`` with a 0-d label is one
example). The same ``f`` then runs on NumPy, gpuad.numpy, torch, jax.numpy and autograd.numpy.

A workload knows its sizes (per device; ``quick`` gives small ones for a smoke run), makes its inputs as NumPy
arrays, and says what to differentiate:

- ``kind = "grad"``: value and gradient of the scalar ``f`` with respect to the arguments ``argnums``;
- ``"hvp"``: the Hessian-vector product of ``f`` at ``args[0]`` along ``tangent``;
- ``"jac"``: the Jacobian of the vector-valued ``f`` with respect to ``args[argnums]`` (variants jacfwd, jacrev,
  jacobian);
- ``"per_example"``: per-example gradients, ``vmap(grad(f), in_axes=(None, 0, 0))`` over the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Inputs:
    args: tuple            # positional arguments of f (NumPy arrays, or tuples of them)
    tangent: object = None  # the direction of a Hessian-vector product
    label: str = ""         # the size, as shown in the tables
    n: int = 0              # the number of elements the size sweep plots against


@dataclass
class Workload:
    key: str
    title: str
    kind: str = "grad"
    argnums: object = 0
    variants: tuple = ("grad",)
    dtype: str = "float32"
    sizes_cpu: list = field(default_factory=list)
    sizes_gpu: list = field(default_factory=list)
    sizes_quick: list = field(default_factory=list)
    note: str = ""

    def sizes(self, device, quick):
        return self.sizes_quick if quick else (self.sizes_gpu if device == "gpu" else self.sizes_cpu)

    # subclasses define f(ns, *args) and make(size, rng)


def _rng_normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


class Elementwise(Workload):
    """W1 (and the W8 sweep): f(x, w) = sum(sin(x) * w + x * x * exp(-w) + tanh(x * w))."""

    @staticmethod
    def f(ns, x, w):
        return ns.sum(ns.sin(x) * w + x * x * ns.exp(-w) + ns.tanh(x * w))

    def make(self, n, rng):
        n = int(n)
        return Inputs((_rng_normal(rng, n, self.dtype), _rng_normal(rng, n, self.dtype)), label=f"n={n:.0e}"
                      if n >= 10**5 and math.log10(n).is_integer() else f"n={n}", n=n)


MLP_SIZES = (784, 1024, 1024, 10)


def mlp_loss(ns, weights, x, labels):
    """W2's loss: tanh layers without biases, softmax cross-entropy (the mean over the rows). With one row
    (``x`` of shape (784,), a 0-d label) it is one example's loss: W9's function."""
    h = x
    for i, w in enumerate(weights):
        h = h @ w
        if i < len(weights) - 1:
            h = ns.tanh(h)
    return ns.ce(h, labels)


def mlp_inputs(batch, rng, dtype):
    weights = tuple(_rng_normal(rng, (a, b), dtype, 1 / np.sqrt(a)) for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:]))
    x = _rng_normal(rng, (batch, MLP_SIZES[0]), dtype)
    labels = rng.integers(0, MLP_SIZES[-1], batch)
    return weights, x, labels


class MLP(Workload):
    f = staticmethod(mlp_loss)

    def make(self, batch, rng):
        return Inputs(mlp_inputs(batch, rng, self.dtype), label=f"batch {batch}", n=batch)


class SoftmaxCE(Workload):
    @staticmethod
    def f(ns, logits, labels):
        return ns.ce(logits, labels)

    def make(self, shape, rng):
        rows, classes = shape
        return Inputs((_rng_normal(rng, (rows, classes), self.dtype, 3.0), rng.integers(0, classes, rows)),
                      label=f"{rows} x {classes}", n=rows * classes)


class Rosenbrock(Workload):
    @staticmethod
    def f(ns, x):
        return ns.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def make(self, n, rng):
        x = (1.0 + 0.5 * rng.standard_normal(n)).astype(self.dtype)
        v = rng.standard_normal(n).astype(self.dtype)
        return Inputs((x,), tangent=v, label=f"n=2^{int(math.log2(n))}" if n & (n - 1) == 0 else f"n={n}", n=n)


class Dense(Workload):
    """W6: tanh(W x + b), W of shape (m, n); the Jacobian with respect to x is (m, n)."""
    @staticmethod
    def f(ns, w, b, x):
        return ns.tanh(w @ x + b)

    def make(self, shape, rng):
        n, m = shape
        return Inputs((_rng_normal(rng, (m, n), self.dtype, 1 / np.sqrt(n)), _rng_normal(rng, m, self.dtype),
                       _rng_normal(rng, n, self.dtype)), label=f"(n, m) = ({n}, {m})", n=n * m)


class Overhead(Workload):
    """W7: 25 x (x = sin(x) * 1.01 + x * 0.5) on 16 elements, then sum(x * x): 102 recorded ops."""
    OPS = 25 * 4 + 2

    @staticmethod
    def f(ns, x):
        for _ in range(25):
            x = ns.sin(x) * 1.01 + x * 0.5
        return ns.sum(x * x)

    def make(self, n, rng):
        return Inputs((_rng_normal(rng, n, self.dtype),), label=f"n={n}, {self.OPS} ops", n=n)


class PerExample(Workload):
    f = staticmethod(mlp_loss)  # the forward alone: the batch's mean loss

    def make(self, batch, rng):
        return Inputs(mlp_inputs(batch, rng, self.dtype), label=f"batch {batch}", n=batch)


SWEEP_CPU = [10**k for k in range(2, 8)]
SWEEP_GPU = [10**k for k in range(2, 9)]

WORKLOADS = {w.key: w for w in [
    Elementwise("W1", "elementwise chain sum(sin(x) w + x x exp(-w) + tanh(x w)), gradient in x and w",
                argnums=(0, 1), sizes_cpu=[2**22], sizes_gpu=[10**8], sizes_quick=[2**12]),
    MLP("W2", "MLP loss 784-1024-1024-10 (tanh, softmax cross-entropy), gradient in the weights",
        argnums=0, sizes_cpu=[4096], sizes_gpu=[4096], sizes_quick=[32]),
    SoftmaxCE("W3", "softmax cross-entropy of the logits, gradient in the logits",
              argnums=0, sizes_cpu=[(8192, 1000)], sizes_gpu=[(8192, 1000)], sizes_quick=[(64, 100)]),
    Rosenbrock("W4", "Rosenbrock sum(100 (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2), float64, gradient",
               argnums=0, dtype="float64", sizes_cpu=[2**20], sizes_gpu=[2**20], sizes_quick=[2**10]),
    Rosenbrock("W5", "Rosenbrock's Hessian-vector product (float64)", kind="hvp", variants=("hvp",),
               dtype="float64", sizes_cpu=[2**20], sizes_gpu=[2**20], sizes_quick=[2**10]),
    Dense("W6", "full Jacobian of tanh(W x + b) in x", kind="jac", argnums=2,
          variants=("jacfwd", "jacrev", "jacobian"), sizes_cpu=[(16, 4096), (4096, 16)],
          sizes_gpu=[(16, 4096), (4096, 16)], sizes_quick=[(8, 64), (64, 8)]),
    Overhead("W7", "per-op overhead: 25 x (x = sin(x) * 1.01 + x * 0.5) on 16 elements, then sum(x * x)",
             argnums=0, sizes_cpu=[16], sizes_gpu=[16], sizes_quick=[16]),
    Elementwise("W8", "size sweep of W1", argnums=(0, 1), sizes_cpu=SWEEP_CPU, sizes_gpu=SWEEP_GPU,
                sizes_quick=[10**2, 10**3, 10**4]),
    PerExample("W9", "per-example gradients of W2's loss, vmap(grad(loss), in_axes=(None, 0, 0))",
               kind="per_example", variants=("vmap(grad)",), argnums=0, sizes_cpu=[64], sizes_gpu=[1024],
               sizes_quick=[8],
               note="at batch 64 on the CPU and 1024 on the GPU: at batch 4096 the per-example gradients alone "
                    "are 4096 x 1.86 M float32 = 30 GB per system (more than this machine's memory; on the GPU "
                    "the memory pools of the systems timed in turn hold theirs at once)"),
]}
