"""vmap's batching rules for the user-code primitives of ``gpuad.custom`` and ``gpuad.recompute``.

Each rule applies vmap to the call's flat function (float leaves in, packed output out) and binds the same kind
of primitive again one level down, so the batched call keeps its meaning: a checkpoint stays a checkpoint (with
its policy), a custom_jvp keeps its rule, and a custom_vjp keeps ``fwd`` and ``bwd`` (vmapped: residuals carry
the batch axis in front; the cotangent of an argument that is not batched is summed over the batch).

The rules are attached to the primitive classes (``Primitive.batch``) when this module is imported (by
``gpuad/__init__.py``).
"""
from __future__ import annotations

from . import backend
from . import numpy as gnp
from .core import raw
from .custom import CustomJVPCall, CustomVJPCall, custom_jvp, custom_vjp
from .recompute import CheckpointCall, checkpoint

from .batching import vmap


def _axes(batched):
    return tuple(0 if b else None for b in batched)


def _batch_checkpoint(self, values, batched, params):
    return checkpoint(vmap(self.flat_fun, in_axes=_axes(batched)), policy=self.policy)(*values)


def _batch_custom_jvp(self, values, batched, params):
    axes = _axes(batched)

    def rule(primals, tangents):
        return vmap(lambda p, t: self.run_rule(list(p), list(t)), in_axes=(axes, axes))(tuple(primals),
                                                                                           tuple(tangents))

    f = custom_jvp(vmap(self.flat_fun, in_axes=axes))
    f.defjvp(rule)
    return f(*values)


def _batch_custom_vjp(self, values, batched, params):
    axes = _axes(batched)
    n = len(values)

    def fwd(*dyn):
        return vmap(lambda *d: self.forward_and_save(list(d), {}), in_axes=axes)(*dyn)

    def bwd(res, g):
        def one(res, g):
            grads = self.vjp(g, tuple(res), {}, None, [True] * n, False)
            return tuple(backend.array_module(raw(g)).zeros(*a) if c is None else c
                         for c, a in zip(grads, self.dyn_avals))
        grads = vmap(one, in_axes=(0, 0))(tuple(res), g)
        return tuple(c if b else gnp.sum(c, axis=0) for c, b in zip(grads, batched))

    f = custom_vjp(vmap(self.flat_fun, in_axes=axes))
    f.defvjp(fwd, bwd)
    return f(*values)


# The user-code primitives are made per call, so their rules are set on their classes here, beside vmap.
CheckpointCall.batch = _batch_checkpoint
CustomJVPCall.batch = _batch_custom_jvp
CustomVJPCall.batch = _batch_custom_vjp
