"""vmap: a function of one example applied to a whole batch at once, by a batching interpreter (JAX's vmap).

A ``BatchTrace`` boxes each batched value in a ``BatchTensor`` whose primal holds the whole batch with the batch
axis in front; inside the function the box looks like one example (``shape``, ``aval`` hide the batch axis).
Applying a primitive to batched values runs its batching rule one level down: elementwise rows need none beyond
aligning the operands' ranks (NumPy broadcasting does the rest, so the op runs once over the bigger shape);
``Linear`` and ``Custom`` rows carry their own (``Primitive.batch``, set beside each row: axes shifted past the
batch axis, a leading slice in an index, one more einsum index, stacks of matrices for linear algebra). Values
that do not depend on the batch (constants, closed-over arrays, boxes of other traces) take part as they are.

Like every trace, the batch trace has a level, so vmap composes with grad, vjp, jvp, Tape and itself in every
order: ``vmap(grad(f))`` records on the tape values that are batched one level down, ``grad(vmap(f))`` batches
the values that the tape records, and the backward pass of a tape inside a vmap runs its rules through ``bind``,
which batches them.

Python control flow that reads a batched value (``if x > 0:``, ``float(x)``, an index taken from a batched
value) is refused with a clear error: the value differs between examples. Use ``gpuad.numpy.where``.
"""
from __future__ import annotations

import collections
import functools
import operator

from . import backend, tree
from .core import BOX_TYPES, Tensor, Trace, aval, bind, map_values
from .fusion.run import run_region
from .ops.elementwise import Elementwise
from .ops.linear import BROADCAST_TO, RESHAPE, moveaxis

__all__ = ["vmap", "BatchTrace", "BatchTensor"]


class BatchTensor(Tensor):
    """A value of a batching trace: its primal holds the whole batch, with the batch axis in front."""

    __slots__ = ()
    _batch_dims = 1

    # Boolean masks made by comparing batched values are batched too: their logic stays batched.
    def __and__(self, o): return map_values(operator.and_, self, o, align=True)
    def __rand__(self, o): return map_values(operator.and_, o, self, align=True)
    def __or__(self, o): return map_values(operator.or_, self, o, align=True)
    def __ror__(self, o): return map_values(operator.or_, o, self, align=True)
    def __xor__(self, o): return map_values(operator.xor, self, o, align=True)
    def __rxor__(self, o): return map_values(operator.xor, o, self, align=True)
    def __invert__(self): return map_values(operator.invert, self)


class BatchTrace(Trace):
    """One vmap in progress, over a batch of ``size`` examples."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def box(self, value):
        return BatchTensor(self, value)

    def run_region(self, entries, members, cts, reaches, wanted):
        """The tape's backward pass under this vmap: a fused elementwise region over the whole batch."""
        return _run_region(self, entries, members, cts, reaches, wanted)

    def process(self, prim, args, params):
        values, batched = [], []
        for a in args:
            mine = isinstance(a, Tensor) and a._trace is self
            values.append(a._primal if mine else a)
            batched.append(mine)
        if prim.batch is not None:
            return BatchTensor(self, prim.batch(values, tuple(batched), params))
        if isinstance(prim, Elementwise):
            return BatchTensor(self, _batch_elementwise(prim, values, batched, params))
        raise NotImplementedError(
            f"vmap has no batching rule for primitive {prim.name!r}: give its row a batch rule (Primitive.batch, "
            f"see gpuad.batching), or apply the function to each example in a loop")


class _Shadow:
    """A tape entry seen with the batch axis in front (what ``fusion.run.run_region`` reads)."""

    __slots__ = ("prim", "parents", "saved", "out_aval")

    def __init__(self, prim, parents, saved, out_aval):
        self.prim, self.parents, self.saved, self.out_aval = prim, parents, saved, out_aval


class _Entries:
    def __init__(self, entries, shadows):
        self.entries, self.shadows = entries, shadows

    def __getitem__(self, i):
        shadow = self.shadows.get(i)
        return shadow if shadow is not None else self.entries[i]


def _run_region(trace, entries, members, cts, reaches, wanted):
    """``vmap(grad(f))``: one elementwise region of the tape run backwards as ONE fused program over the whole
    batch (the same program as a plain grad's, over a shape with the batch axis in front), instead of op by op.
    Every value the region reads gets the batch axis (length 1 when it is not batched) and the region's rank;
    the cotangents it gives are batched. Returns False (the caller runs the region op by op) when a value is
    boxed by another trace."""
    size, (shape, dtype) = trace.size, entries[members[0]].out_aval
    rank = len(shape)

    def lifted(v):
        if v is None or type(v) in backend.PYTHON_SCALARS:
            return v
        if type(v) is BatchTensor and v._trace is trace and type(v._primal) not in BOX_TYPES:
            value, lead = v._primal, (size,)
        elif type(v) not in BOX_TYPES:
            value, lead = v, (1,)
        else:
            raise LookupError
        vshape = aval(v)[0]
        return value.reshape(lead + (1,) * (rank - len(vshape)) + vshape)

    def target(node):
        tshape, tdtype = entries[node].out_aval
        return (size,) + (1,) * (rank - len(tshape)) + tshape, tdtype

    try:
        shadows = {m: _Shadow(entries[m].prim, entries[m].parents, tuple(lifted(v) for v in entries[m].saved),
                              ((size,) + shape, dtype)) for m in members}
        seeds = {m: lifted(cts[m]) for m in members if cts[m] is not None}
    except LookupError:
        return False
    inputs = {p for m in members for p in entries[m].parents if p is not None and p not in shadows}
    for p in inputs:
        shadows[p] = _Shadow(entries[p].prim, (), (), target(p))
    local = {}
    for m, g in seeds.items():
        local[m] = backend.array_module(g).broadcast_to(g, (size,) + shape) if g.shape[0] != size else g
        if m not in wanted:
            cts[m] = None
    local_cts = collections.defaultdict(lambda: None, local)
    run_region(_Entries(entries, shadows), members, local_cts, collections.defaultdict(int), reaches, wanted)
    for node in [*inputs, *(m for m in members if m in wanted)]:
        c = local_cts[node]
        if c is not None:
            c = BatchTensor(trace, c.reshape((size,) + entries[node].out_aval[0]))
            cts[node] = c if cts[node] is None else cts[node] + c
    return True


def _batch_elementwise(prim, args, batched, params):
    """Batched operands of lower rank than the others get length-1 axes after the batch axis, so that NumPy's
    broadcasting (aligned from the right) keeps every batch axis in front; then the row runs once."""
    rank = max(len(aval(a)[0]) - b for a, b in zip(args, batched))
    aligned = []
    for a, b in zip(args, batched):
        shape = aval(a)[0]
        if b and len(shape) - 1 < rank:
            a = RESHAPE.bind(a, shape=shape[:1] + (1,) * (rank - len(shape) + 1) + shape[1:])
        aligned.append(a)
    return bind(prim, aligned, params)


# ---------------------------------------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------------------------------------

def _axis_leaves(axes, value, what):
    """One axis (int or None) per leaf of ``value``: ``axes`` is an int, None, or a pytree prefix of ``value``."""
    if axes is None or isinstance(axes, int) or hasattr(axes, "__index__"):
        leaves, _ = tree.flatten(value)
        return [axes if axes is None else operator.index(axes)] * len(leaves)
    if isinstance(axes, (tuple, list)) and isinstance(value, (tuple, list)) and len(axes) == len(value):
        return [a for x, v in zip(axes, value) for a in _axis_leaves(x, v, what)]
    if isinstance(axes, dict) and isinstance(value, dict) and sorted(axes) == sorted(value):
        return [a for k in sorted(value) for a in _axis_leaves(axes[k], value[k], what)]
    raise ValueError(f"vmap: {what} {axes!r} does not match the structure {tree.describe(tree.flatten(value)[1])}; "
                     f"give an int, None, or a tuple/list/dict with one entry per element")


def vmap(fun, in_axes=0, out_axes=0):
    """``fun`` mapped over an axis of its arguments: ``vmap(f)(xs)[i] == f(xs[i])``, computed for the whole batch
    at once (one batched op per op of ``f``, no Python loop).

    ``in_axes``: the mapped axis of each positional argument, an int, None (not mapped: the same for every
    example) or a pytree of them (a prefix of the arguments' structure, e.g. ``(None, 0, 0)``); keyword arguments
    are mapped over axis 0. ``out_axes``: where the batch axis goes in each output (an int, None for an output
    that does not depend on the batch, or a pytree prefix of the outputs). Every mapped axis must have the same
    length. vmap nests and composes with grad, vjp, jvp, Tape and the Jacobian transforms in any order.
    """
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    @functools.wraps(fun)
    def vmapped(*args, **kwargs):
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap: in_axes has {len(in_axes)} entries but the function was called with "
                             f"{len(args)} positional argument(s); give one entry per argument (None: not mapped)")
        leaves, treedef = tree.flatten((args, kwargs))
        axes = _axis_leaves(in_axes, args, "in_axes") + [0] * (len(leaves) - len(tree.flatten(args)[0]))
        sizes = []
        for i, (v, a) in enumerate(zip(leaves, axes)):
            if a is None:
                continue
            shape = aval(v)[0]
            if not -len(shape) <= a < len(shape):
                raise ValueError(f"vmap: in_axes {a} is out of range for an argument of shape {shape} (leaf {i} of "
                                 f"the arguments); an argument mapped by vmap needs an axis to map over")
            axes[i] = a % len(shape)
            sizes.append((shape[axes[i]], i, shape))
        if not sizes:
            raise ValueError("vmap: no argument is mapped (every in_axes is None); map at least one argument")
        size = sizes[0][0]
        if any(n != size for n, _, _ in sizes):
            detail = ", ".join(f"leaf {i} of shape {s} has {n}" for n, i, s in sizes)
            raise ValueError(f"vmap got inconsistent sizes for the mapped axes (the batch size): {detail}; every "
                             f"mapped axis must have the same length")
        trace = BatchTrace(size)
        boxed = []
        for v, a in zip(leaves, axes):
            if a is not None:
                if not isinstance(v, Tensor):
                    v = backend.array_module(v).asarray(v) if not hasattr(v, "shape") else v
                v = trace.box(moveaxis(v, a, 0))
            boxed.append(v)
        call_args, call_kwargs = tree.unflatten(treedef, boxed)
        trace.start()
        try:
            out = fun(*call_args, **call_kwargs)
        finally:
            trace.stop()
        out_leaves, out_def = tree.flatten(out)
        oaxes = _axis_leaves(tuple(out_axes) if isinstance(out_axes, list) else out_axes, out, "out_axes")
        results = []
        for v, a in zip(out_leaves, oaxes):
            mine = isinstance(v, Tensor) and v._trace is trace
            if a is None:
                if mine:
                    raise ValueError("vmap: out_axes None was given for an output that depends on the batch; "
                                     "give it an axis")
                results.append(v)
                continue
            if mine:
                v = v._primal
            else:
                if not hasattr(v, "shape"):
                    v = backend.array_module().asarray(v) if not isinstance(v, Tensor) else v
                v = BROADCAST_TO.bind(v, shape=(size,) + aval(v)[0])
            ndim = len(aval(v)[0])
            if not -ndim <= a < ndim:
                raise ValueError(f"vmap: out_axes {a} is out of range for an output of {ndim - 1} dimension(s)")
            results.append(moveaxis(v, 0, a % ndim))
        return tree.unflatten(out_def, results)

    return vmapped
