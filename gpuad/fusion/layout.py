"""How a region's kernel indexes its operands: memory layouts, broadcast reductions, and the plan of one launch.

``plan(region, shape, inputs, seeds, targets)`` turns a region and the arrays of one backward pass into a
``program.KernelSpec`` (the layout kind of each operand: full, scalar or strided), the collapsed dimensions, the
element strides of each strided operand, and, per written output broadcast from a smaller operand, how to reduce
its temporary. That temporary is a full-shape, C-contiguous array the kernel writes at index i like any full
operand (coalesced writes); the reduction then sums it over the broadcast axes, with the runs of adjacent kept
or reduced axes merged (``reduction_layout``), so the array module reduces a 2-D or 3-D view.
It allocates nothing, and works on arrays or on ``Layout`` records of them (what ``Tape.kernel_specs`` plans
after the arrays are gone).
"""
from __future__ import annotations

import numpy  # dtype bookkeeping only

from .program import KernelSpec, intern, program
from .render_cpp import C_TYPES, temporary_dtype

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

    @classmethod
    def full(cls, shape, dtype):
        """The layout of a new C-contiguous array of ``shape`` and ``dtype`` (what a predicted cotangent has)."""
        self = cls.__new__(cls)
        dtype = numpy.dtype(dtype)
        self.shape, self.itemsize, self.dtype = tuple(shape), dtype.itemsize, dtype
        strides, step = [], dtype.itemsize
        for n in reversed(self.shape):
            strides.append(step)
            step *= n
        self.strides, self.size = tuple(reversed(strides)), step // dtype.itemsize
        return self

    @classmethod
    def of(cls, shape, strides, dtype):
        """The layout of a view of ``shape`` with byte ``strides``."""
        self = cls.__new__(cls)
        dtype = numpy.dtype(dtype)
        self.shape, self.strides, self.itemsize, self.dtype = tuple(shape), tuple(strides), dtype.itemsize, dtype
        size = 1
        for n in self.shape:
            size *= n
        self.size = size
        return self

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
    """How to sum the full-shape, C-contiguous temporary over ``shape`` back to an operand of ``tshape`` that
    was broadcast: (the temporary's shape with adjacent kept axes merged and adjacent reduced axes merged, the
    positions of the reduced ones in it). E.g. (4, 5) to (5,): ((4, 5), (0,)); (2, 3, 4) to (3, 1):
    ((2, 3, 4), (0, 2)); (8, 16, 5) to (5,): ((128, 5), (0,))."""
    lead = len(shape) - len(tshape)
    groups, axes, last = [], [], None
    for k, n in enumerate(shape):
        if n == 1:
            continue
        reduced = k < lead or tshape[k - lead] == 1
        if reduced == last:
            groups[-1] *= n
        else:
            if reduced:
                axes.append(len(groups))
            groups.append(n)
            last = reduced
    return tuple(groups), tuple(axes)


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
            # a full-shape temporary, written at index i
            kinds.append((C_TYPES[temporary_dtype(region, dtype_name(tdtype))], "full"))
            strides.append(None)
            reductions.append(reduction_layout(shape, tshape))
    strided = [s for s in strides if s is not None]
    dims, merged = _collapse(shape, strided) if strided else ([], [])
    it = iter(merged)
    strides = [next(it) if s is not None else None for s in strides]
    spec = intern(KernelSpec(region, tuple(kinds), len(dims)))
    return spec, dims, strides, reductions
