"""How a region's kernel indexes its operands: memory layouts, broadcast reductions, and the plan of one launch.

``plan(region, shape, inputs, seeds, targets)`` turns a region and the arrays of one backward pass into a
``program.KernelSpec`` (the layout kind of each operand: full, scalar or strided), the collapsed dimensions, the
element strides of each strided operand, and, per written output broadcast from a smaller operand, the kept and
reduced sizes of its temporary (the reduced axes last, so CuPy's reduction runs over contiguous trailing axes).
It allocates nothing, and works on arrays or on ``Layout`` records of them (what ``Tape.kernel_specs`` plans
after the arrays are gone).
"""
from __future__ import annotations

import math

import numpy  # dtype bookkeeping only

from .program import KernelSpec, program
from .render_cpp import C_TYPES

_dtype_names: dict = {}
_FLOAT64 = numpy.dtype("float64")


def dtype_name(dtype):
    """``dtype.name``, memoised (NumPy computes it in Python, and the backward pass asks often)."""
    name = _dtype_names.get(dtype)
    if name is None:
        name = _dtype_names[dtype] = dtype.name
    return name


def value_dtype_name(v):
    """The dtype name of an array, or "float64" for a Python float."""
    return "float64" if type(v) is float else dtype_name(v.dtype)


class Layout:
    """An array's shape and strides without the array (for planning a kernel after the arrays are gone)."""

    __slots__ = ("shape", "strides", "itemsize", "size", "dtype")

    def __init__(self, a):
        if not hasattr(a, "strides"):  # a Python float: a 0-d float64
            self.shape, self.strides, self.itemsize, self.size, self.dtype = (), (), 8, 1, _FLOAT64
        else:
            self.shape, self.strides, self.itemsize, self.size, self.dtype = (a.shape, a.strides, a.itemsize,
                                                                               a.size, a.dtype)


def _c_contiguous(shape, strides, itemsize):
    expected = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def layout(a, shape):
    """How a kernel indexes array ``a`` over the broadcast ``shape``: ("full", None), ("scalar", None) or
    ("strided", element strides per axis of ``shape``, 0 along broadcast axes)."""
    ashape = a.shape
    if ashape == shape and _c_contiguous(ashape, a.strides, a.itemsize):
        return "full", None
    if a.size == 1:
        return "scalar", None
    lead = len(shape) - len(ashape)
    strides = [0 if k < lead or ashape[k - lead] == 1 else a.strides[k - lead] // a.itemsize
               for k in range(len(shape))]
    if not any(s for s, n in zip(strides, shape) if n != 1):
        return "scalar", None
    return "strided", strides


def reduction_layout(shape, tshape):
    """The kernel's temporary for the cotangent of an operand of ``tshape`` broadcast to ``shape``: the kept
    axes first and the broadcast axes last, C-contiguous, so the reduction is over contiguous trailing axes.
    Returns (kind, strides over ``shape`` or None, kept size, reduced size)."""
    lead = len(shape) - len(tshape)
    kept = [k for k in range(len(shape)) if shape[k] == 1 or (k >= lead and tshape[k - lead] != 1)]
    reduced = [k for k in range(len(shape)) if k not in kept]
    order = kept + reduced
    strides = [0] * len(shape)
    step = 1
    for k in reversed(order):
        strides[k] = step
        step *= shape[k]
    kept_size = math.prod(shape[k] for k in kept)
    if order == list(range(len(shape))):
        return "full", None, kept_size, step // kept_size
    return "strided", strides, kept_size, step // kept_size


def _collapse(shape, stride_lists):
    """Merge adjacent axes that every strided operand walks contiguously; drop axes of extent 1."""
    dims, merged = [], [[] for _ in stride_lists]
    for k, n in enumerate(shape):
        if n == 1:
            continue
        if dims and all(m[-1] == s[k] * n for m, s in zip(merged, stride_lists)):
            dims[-1] *= n
            for m, s in zip(merged, stride_lists):
                m[-1] = s[k]
            continue
        dims.append(n)
        for m, s in zip(merged, stride_lists):
            m.append(s[k])
    if not dims:
        return [1], [[0] for _ in stride_lists]
    return dims, merged


def plan(region, shape, inputs, seeds, targets):
    """(KernelSpec, collapsed dims, per-operand strides or None, per-output reduction info or None) for the
    region's kernel over these arrays; allocates nothing."""
    prog = program(region)
    kinds, strides, reductions = [], [], []
    for j in prog.used_inputs:
        a = inputs[j]
        kind, st = layout(a, shape) if hasattr(a, "strides") else ("scalar", None)
        kinds.append((C_TYPES[value_dtype_name(a)], kind))
        strides.append(st)
    for i in prog.live_seeds:
        kind, st = layout(seeds[i], shape)
        kinds.append((C_TYPES[dtype_name(seeds[i].dtype)], kind))
        strides.append(st)
    for o in prog.written:
        tshape, tdtype = targets[o]
        if tshape == shape:
            kinds.append((C_TYPES[dtype_name(tdtype)], "full"))
            strides.append(None)
            reductions.append(None)
        else:
            kind, st, kept, red = reduction_layout(shape, tshape)
            kinds.append((C_TYPES[region.dtype], kind))
            strides.append(st)
            reductions.append((kept, red))
    strided = [s for s in strides if s is not None]
    dims, merged = _collapse(shape, strided) if strided else ([], [])
    it = iter(merged)
    strides = [next(it) if s is not None else None for s in strides]
    spec = KernelSpec(region, tuple(kinds), len(dims))
    return spec, dims, strides, reductions
