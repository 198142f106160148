"""One adapter per system compared by the suite.

Each adapter turns a workload's NumPy inputs into its own arrays (``put``), builds a zero-argument callable for
the function alone (``forward``) and for the workload's derivative (``derivative``: value and gradient, HVP,
Jacobian or per-example gradients), waits for a result (``sync``), brings a result back as NumPy arrays
(``to_numpy``) and reads the peak memory of one call where it can (``peak_memory``). ``Skip`` says why a system
cannot run a workload (a missing package, a feature not on main yet); the runner prints that line.

Systems: ``gpuad`` (NumPy backend on the CPU, CuPy on the GPU), ``numpy`` (the forward pass alone: the cost of
f; CuPy on the GPU), ``torch`` (eager), ``torch.func`` (W5, W6, W9), ``torch.compile`` (GPU only), ``jax`` (jit)
and ``autograd`` (HIPS, CPU only).
"""
from __future__ import annotations

import time
import tracemalloc
from types import SimpleNamespace

import numpy as np


class Skip(Exception):
    """This system does not run this workload (the message says why)."""


class Quiet(Skip):
    """Not this system's job (torch.func for plain gradients: eager torch has them): skipped without a line."""


def tree_map(fn, tree):
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(fn, t) for t in tree)
    return fn(tree)


def flatten(tree):
    if isinstance(tree, (tuple, list)):
        return [leaf for t in tree for leaf in flatten(t)]
    return [tree]


def numpy_ce(xp):
    """Stable softmax cross-entropy (mean over rows) in plain array code, for NumPy and CuPy."""
    def ce(logits, labels):
        z = logits - logits.max(axis=-1, keepdims=True)
        logp = z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
        picked = xp.take_along_axis(logp, xp.asarray(labels)[..., None], axis=-1)
        return -xp.mean(picked)
    return ce


class System:
    name = "?"
    devices = ("cpu", "gpu")
    forward_only = False

    def __init__(self, device):
        self.device = device
        self.notes = {}

    def load(self):
        """Import the package; raise Skip (with the reason) when it is missing or cannot run on the device."""

    def version(self):
        return ""

    def put(self, tree):
        return tree

    def sync(self, out):
        pass

    def to_numpy(self, out):
        return tree_map(lambda a: np.asarray(a), out)

    def forward(self, wl, args):
        ns = self.ns
        return lambda: wl.f(ns, *args)

    def derivative(self, wl, variant, args, tangent):
        raise Skip(f"{self.name} has no {variant}")

    def clock(self):
        """A timer for ``number`` calls of fn: returns seconds per call (perf_counter around the calls, then a
        sync on the last result)."""
        def run(fn, number):
            t0 = time.perf_counter()
            for _ in range(number):
                out = fn()
            self.sync(out)
            return (time.perf_counter() - t0) / number
        return run

    def peak_memory(self, fn):
        """Bytes allocated on top of the inputs during one call (None where this system's memory cannot be
        read). NumPy allocations are traced by tracemalloc (a separate call: tracing slows Python down)."""
        return None


def _tracemalloc_peak(fn, sync):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = fn()
        sync(out)
        del out
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class GpuadSystem(System):
    name = "gpuad"

    def load(self):
        import gpuad
        import gpuad.nn
        import gpuad.numpy as gnp
        self.gpuad, self.gnp = gpuad, gnp
        if self.device == "gpu":
            try:
                import cupy
            except ImportError as e:
                raise Skip(f"gpuad on the GPU needs CuPy ({e})")
            self.cupy = cupy
        self.ns = SimpleNamespace(sin=gnp.sin, exp=gnp.exp, tanh=gnp.tanh, sum=gnp.sum,
                                  ce=gpuad.nn.softmax_cross_entropy)

    def version(self):
        return self.gpuad.__version__

    def put(self, tree):
        if self.device == "gpu":
            return tree_map(self.cupy.asarray, tree)
        return tree

    def sync(self, out):
        if self.device == "gpu":
            self.cupy.cuda.Device().synchronize()

    def to_numpy(self, out):
        if self.device == "gpu":
            return tree_map(self.cupy.asnumpy, out)
        return tree_map(np.asarray, out)

    def clock(self):
        if self.device != "gpu":
            return super().clock()
        cupy = self.cupy

        def run(fn, number):  # CUDA events around the calls
            cupy.cuda.Device().synchronize()
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            for _ in range(number):
                fn()
            end.record()
            end.synchronize()
            return cupy.cuda.get_elapsed_time(start, end) / 1e3 / number
        return run

    def derivative(self, wl, variant, args, tangent):
        g, ns = self.gpuad, self.ns

        def f(*a):
            return wl.f(ns, *a)
        if wl.kind == "grad":
            vg = g.value_and_grad(f, argnums=wl.argnums)
            return lambda: vg(*args)[1]
        if wl.kind == "hvp":
            if hasattr(g, "hvp"):
                return lambda: g.hvp(f, args, (tangent,))[1]
            self.notes[wl.key] = "gpuad.hvp is not on main: jvp of grad (forward over reverse)"
            gf = g.grad(f)
            return lambda: g.jvp(gf, args, (tangent,))[1]
        if wl.kind == "jac":
            if not hasattr(g, variant):
                raise Skip(f"gpuad.{variant} is not on main yet")
            jf = getattr(g, variant)(f, argnums=wl.argnums)
            return lambda: jf(*args)
        if wl.kind == "per_example":
            if not hasattr(g, "vmap"):
                raise Skip("gpuad.vmap is not on main yet")
            pe = g.vmap(g.grad(f), in_axes=(None, 0, 0))
            return lambda: pe(*args)
        raise Skip(f"unknown kind {wl.kind}")

    def peak_memory(self, fn):
        if self.device == "gpu":
            pool = self.cupy.get_default_memory_pool()
            self.cupy.cuda.Device().synchronize()
            pool.free_all_blocks()
            before = pool.total_bytes()
            out = fn()
            self.sync(out)
            return pool.total_bytes() - before  # the pool's high-water mark (it keeps freed blocks)
        return _tracemalloc_peak(fn, self.sync)


class NumpySystem(GpuadSystem):
    """The forward pass alone, in plain NumPy (CuPy on the GPU): the cost of f."""
    name = "numpy"
    forward_only = True

    def load(self):
        if self.device == "gpu":
            try:
                import cupy
            except ImportError as e:
                raise Skip(f"the CuPy forward needs CuPy ({e})")
            self.cupy, xp = cupy, cupy
        else:
            xp = np
        self.xp = xp
        self.ns = SimpleNamespace(sin=xp.sin, exp=xp.exp, tanh=xp.tanh, sum=xp.sum, ce=numpy_ce(xp))

    def version(self):
        return self.xp.__version__

    def derivative(self, wl, variant, args, tangent):
        raise Skip("forward only")


class TorchSystem(System):
    name = "torch"

    def load(self):
        try:
            import torch
            import torch.nn.functional as F
        except ImportError as e:
            raise Skip(f"PyTorch is not installed ({e}); pip install '.[bench]' or torch")
        if self.device == "gpu" and not torch.cuda.is_available():
            raise Skip("PyTorch sees no CUDA device")
        self.torch = torch
        self.dev = "cuda" if self.device == "gpu" else "cpu"
        self.ns = SimpleNamespace(sin=torch.sin, exp=torch.exp, tanh=torch.tanh, sum=torch.sum,
                                  ce=lambda logits, labels: F.cross_entropy(logits, labels))

    def version(self):
        return self.torch.__version__ + (f" ({self.torch.get_num_threads()} threads)" if self.device == "cpu"
                                         else "")

    def put(self, tree):
        def one(a):
            a = np.asarray(a)
            t = self.torch.from_numpy(np.ascontiguousarray(a)).to(self.dev)
            return t
        return tree_map(one, tree)

    def sync(self, out):
        if self.device == "gpu":
            self.torch.cuda.synchronize()

    def to_numpy(self, out):
        return tree_map(lambda t: t.detach().cpu().numpy(), out)

    def clock(self):
        if self.device != "gpu":
            return super().clock()
        torch = self.torch

        def run(fn, number):
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(number):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / number
        return run

    def forward(self, wl, args):
        torch, ns = self.torch, self.ns

        def run():
            with torch.no_grad():
                return wl.f(ns, *args)
        return run

    def _leaves(self, args, argnums):
        """Fresh leaves that require grad for the differentiated arguments (flat list) and the argument tuple."""
        nums = argnums if isinstance(argnums, tuple) else (argnums,)
        args = list(args)
        leaves = []
        for i in nums:
            args[i] = tree_map(lambda t: t.detach().requires_grad_(True), args[i])
            leaves += flatten(args[i])
        return leaves, args

    def derivative(self, wl, variant, args, tangent):
        torch, ns = self.torch, self.ns
        if wl.kind == "grad":
            leaves, targs = self._leaves(args, wl.argnums)
            fn = self._compiled(wl) if self.name == "torch.compile" else (lambda *a: wl.f(ns, *a))

            def run():
                loss = fn(*targs)
                grads = torch.autograd.grad(loss, leaves)
                return list(grads)
            return run
        if wl.kind == "hvp":
            (x,) = args
            xl = x.detach().requires_grad_(True)

            def run():  # reverse over reverse (double backward), what eager PyTorch offers
                loss = wl.f(ns, xl)
                (g,) = torch.autograd.grad(loss, xl, create_graph=True)
                (hv,) = torch.autograd.grad(g, xl, tangent)
                return hv
            return run
        if wl.kind == "jac":
            if variant != "jacobian":
                raise Skip(f"eager PyTorch has no {variant} (torch.func has)")
            w, b, x = args

            def run():
                return torch.autograd.functional.jacobian(lambda x_: wl.f(ns, w, b, x_), x, vectorize=True)
            return run
        raise Skip("per-example gradients need torch.func (vmap)")

    def _compiled(self, wl):
        raise NotImplementedError

    def peak_memory(self, fn):
        if self.device != "gpu":
            return None
        torch = self.torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = fn()
        torch.cuda.synchronize()
        del out
        return torch.cuda.max_memory_allocated() - before


class TorchFuncSystem(TorchSystem):
    """torch.func's JAX-like transforms, where eager autograd has no counterpart: W5 (jvp of grad), W6 (jacfwd,
    jacrev) and W9 (vmap of grad)."""
    name = "torch.func"

    def load(self):
        super().load()
        import torch.func
        self.func = torch.func

    def forward(self, wl, args):
        raise Skip("same forward as torch")

    def derivative(self, wl, variant, args, tangent):
        func, ns = self.func, self.ns

        def f(*a):
            return wl.f(ns, *a)
        if wl.kind == "hvp":
            gf = func.grad(f)
            return lambda: func.jvp(gf, args, (tangent,))[1]
        if wl.kind == "jac":
            maker = {"jacfwd": func.jacfwd, "jacrev": func.jacrev, "jacobian": func.jacrev}[variant]
            jf = maker(f, argnums=wl.argnums)
            return lambda: jf(*args)
        if wl.kind == "per_example":
            pe = func.vmap(func.grad(f), in_dims=(None, 0, 0))
            return lambda: list(pe(*args))
        raise Quiet("eager torch covers plain gradients")


class TorchCompileSystem(TorchSystem):
    """torch.compile of the forward pass (AOTAutograd compiles its backward), on the GPU."""
    name = "torch.compile"
    devices = ("gpu",)

    def forward(self, wl, args):
        torch = self.torch
        fn = self._compiled(wl)

        def run():
            with torch.no_grad():
                return fn(*args)
        return run

    def _compiled(self, wl):
        ns = self.ns
        return self.torch.compile(lambda *a: wl.f(ns, *a))

    def derivative(self, wl, variant, args, tangent):
        if wl.kind != "grad":
            raise Skip("compiled here for plain gradients only")
        return super().derivative(wl, variant, args, tangent)


class JaxSystem(System):
    name = "jax"

    def load(self):
        try:
            import jax
            import jax.numpy as jnp
        except ImportError as e:
            raise Skip(f"JAX is not installed ({e}); pip install '.[bench]' or 'jax[cpu]'")
        jax.config.update("jax_enable_x64", True)  # W4/W5 are float64; float32 inputs stay float32
        platform = "gpu" if self.device == "gpu" else "cpu"
        try:
            self.dev = jax.devices(platform)[0]
        except RuntimeError as e:
            raise Skip(f"JAX has no {platform} device ({e})")
        self.jax, self.jnp = jax, jnp

        def ce(logits, labels):
            logp = jax.nn.log_softmax(logits, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))
        self.ns = SimpleNamespace(sin=jnp.sin, exp=jnp.exp, tanh=jnp.tanh, sum=jnp.sum, ce=ce)

    def version(self):
        return f"{self.jax.__version__} (jit, {self.dev.platform})"

    def put(self, tree):
        return tree_map(lambda a: self.jax.device_put(np.asarray(a), self.dev), tree)

    def sync(self, out):
        self.jax.block_until_ready(out)

    def forward(self, wl, args):
        ns = self.ns
        jf = self.jax.jit(lambda *a: wl.f(ns, *a))
        return lambda: jf(*args)

    def derivative(self, wl, variant, args, tangent):
        jax, ns = self.jax, self.ns

        def f(*a):
            return wl.f(ns, *a)
        if wl.kind == "grad":
            jf = jax.jit(jax.value_and_grad(f, argnums=wl.argnums))
            return lambda: jf(*args)[1]
        if wl.kind == "hvp":
            jf = jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])
            return lambda: jf(*args, tangent)
        if wl.kind == "jac":
            jf = jax.jit(getattr(jax, variant)(f, argnums=wl.argnums))
            return lambda: jf(*args)
        if wl.kind == "per_example":
            jf = jax.jit(jax.vmap(jax.grad(f), in_axes=(None, 0, 0)))
            return lambda: jf(*args)
        raise Skip(f"unknown kind {wl.kind}")

    def peak_memory(self, fn):
        stats = self.dev.memory_stats() if self.device == "gpu" else None
        return None if not stats else stats.get("peak_bytes_in_use")  # since start: not resettable


class AutogradSystem(System):
    name = "autograd"
    devices = ("cpu",)

    def load(self):
        try:
            import autograd
            import autograd.numpy as anp
        except ImportError as e:
            raise Skip(f"HIPS autograd is not installed ({e}); pip install '.[bench]' or autograd")
        self.autograd, self.anp = autograd, anp

        def ce(logits, labels):  # one-hot (a constant) picks the label's log-probability
            labels = np.asarray(labels)
            onehot = labels[..., None] == np.arange(logits.shape[-1])
            z = logits - np.max(autograd.tracer.getval(logits), axis=-1, keepdims=True)
            logp = z - anp.log(anp.sum(anp.exp(z), axis=-1, keepdims=True))
            return -anp.sum(logp * onehot) / max(labels.size, 1)
        self.ns = SimpleNamespace(sin=anp.sin, exp=anp.exp, tanh=anp.tanh, sum=anp.sum, ce=ce)

    def version(self):
        import importlib.metadata
        return importlib.metadata.version("autograd")

    def derivative(self, wl, variant, args, tangent):
        ag, ns = self.autograd, self.ns

        def f(*a):
            return wl.f(ns, *a)
        if wl.kind == "grad":
            vg = ag.value_and_grad(f, argnum=wl.argnums)  # a tuple of argnums gives a tuple of grads
            return lambda: vg(*args)[1]
        if wl.kind == "hvp":
            hvp = ag.hessian_vector_product(f)
            return lambda: hvp(*args, tangent)
        if wl.kind == "jac":
            if variant != "jacobian":
                raise Skip(f"autograd has no {variant} (its jacobian is reverse mode, one pass per output)")
            jf = ag.jacobian(f, argnum=wl.argnums)
            return lambda: jf(*args)
        raise Skip("autograd has no vmap")

    def peak_memory(self, fn):
        return _tracemalloc_peak(fn, self.sync)


SYSTEMS = {s.name: s for s in [GpuadSystem, NumpySystem, TorchSystem, TorchFuncSystem, TorchCompileSystem,
                               JaxSystem, AutogradSystem]}
