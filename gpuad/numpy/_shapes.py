"""gpuad.numpy's basic shape functions: each binds one structural primitive (or a few) after NumPy's checks.

reshape, ravel, transpose, swapaxes, moveaxis, matrix_transpose, broadcast_to, broadcast_arrays, meshgrid,
expand_dims, squeeze, concatenate, stack and astype normalise NumPy's arguments (shapes with -1, axes, dtypes)
and bind the reshape, transpose, broadcast_to, concatenate and convert rows of ``gpuad.ops.linear``; the
queries shape, ndim, size and isscalar read the value under any boxes. The other shape functions (split, tile,
pad, sort, ...) are compositions of these, in ``_rearranging``.
"""
from __future__ import annotations

import math

import numpy as _np

from ..core import aval, raw
from ..ops.linear import BROADCAST_TO, CONCATENATE, CONVERT, RESHAPE, TRANSPOSE
from ._dispatch import no_out, normalize_axes, plain_values, traceable

__all__ = ["reshape", "ravel", "transpose", "swapaxes", "moveaxis", "matrix_transpose", "broadcast_to",
           "broadcast_arrays", "meshgrid", "expand_dims", "squeeze", "concatenate", "stack", "astype", "shape",
           "ndim", "size", "isscalar"]


def _resolve_shape(shape, size):
    shape = (shape,) if isinstance(shape, int) or hasattr(shape, "__index__") else tuple(int(n) for n in shape)
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        if shape.count(-1) > 1 or known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        shape = tuple(size // known if n == -1 else n for n in shape)
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


def memory_order(a, order, name):
    """NumPy's ``order`` argument of reshape and ravel as 'C' or 'F' for ``a``: 'A' reads Fortran order when
    the value under ``a`` is Fortran-contiguous (and not C-contiguous), 'K' (ravel only) reads the order of its
    memory layout."""
    if order is None and name == "ravel":
        order = "C"
    if order in ("C", "F"):
        return order
    flags = getattr(raw(a), "flags", None)
    fortran = flags is not None and flags.f_contiguous and not flags.c_contiguous
    if order == "A":
        return "F" if fortran else "C"
    if order == "K" and name == "ravel":
        if flags is None or flags.c_contiguous or fortran:
            return "F" if fortran else "C"
        strides = [st for st, n in zip(raw(a).strides, raw(a).shape) if n > 1]
        if all(st > 0 for st in strides) and strides in (sorted(strides, reverse=True), sorted(strides)):
            return "C" if strides == sorted(strides, reverse=True) else "F"
        raise NotImplementedError("gpuad.numpy.ravel: order='K' reads the elements in memory order, and the memory "
                                  "of the value under this traced array is laid out neither in C nor in Fortran "
                                  "order; use order='C' or 'F'")
    orders = "'C', 'F', 'A'" + (", 'K'" if name == "ravel" else "")
    raise ValueError(f"{name}: order must be one of {orders} (got {order!r})")


@traceable
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    order = memory_order(a, order, "reshape")
    shape = newshape if shape is None else shape
    if shape is None:
        raise TypeError("reshape() missing required argument 'shape'")
    old = aval(a)[0]
    new = _resolve_shape(shape, math.prod(old))
    if order == "F":  # Fortran order: the C-order reshape of the reversed axes, reversed back
        return transpose(reshape(transpose(a), new[::-1]))
    return a if new == old else RESHAPE.bind(a, shape=new)


@traceable
def ravel(a, order="C"):
    return reshape(a, (-1,), memory_order(a, order, "ravel"))


@traceable
def transpose(a, axes=None):
    ndim = len(aval(a)[0])
    if axes is None:
        axes = tuple(range(ndim))[::-1]
    else:
        axes = tuple(axes)
        if len(axes) != ndim:
            raise ValueError("axes don't match array")
        axes = normalize_axes(axes, ndim)
    return a if axes == tuple(range(ndim)) else TRANSPOSE.bind(a, axes=axes)


@traceable
def swapaxes(a, axis1, axis2):
    ndim = len(aval(a)[0])
    (axis1,), (axis2,) = normalize_axes(axis1, ndim, "axis1"), normalize_axes(axis2, ndim, "axis2")
    axes = list(range(ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(a, axes)


@traceable
def moveaxis(a, source, destination):
    ndim = len(aval(a)[0])
    src, dst = normalize_axes(source, ndim, "source"), normalize_axes(destination, ndim, "destination")
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number of elements")
    order = [n for n in range(ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


@traceable
def matrix_transpose(x):
    return swapaxes(x, -1, -2)


@traceable
def broadcast_to(array, shape, subok=False):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    old = aval(array)[0]
    if old == shape:
        return array
    _np.broadcast_shapes(old, shape)  # NumPy's own error for incompatible shapes
    return BROADCAST_TO.bind(array, shape=shape)


@traceable
def broadcast_arrays(*args, subok=False):
    shape = _np.broadcast_shapes(*(aval(a)[0] for a in args))
    return tuple(broadcast_to(a, shape) for a in args)


@traceable
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    n = len(xi)
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    shapes = [[1] * n for _ in xi]
    for i, x in enumerate(xi):
        axis = (1 - i if i < 2 else i) if indexing == "xy" and n > 1 else i
        shapes[i][axis] = -1
    grids = [reshape(x, tuple(s)) for x, s in zip(xi, shapes)]
    return tuple(grids) if sparse else broadcast_arrays(*grids)


@traceable
def expand_dims(a, axis):
    shape = list(aval(a)[0])
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for ax in normalize_axes(axes, len(shape) + len(axes), sort=True):
        shape.insert(ax, 1)
    return reshape(a, tuple(shape))


@traceable
def squeeze(a, axis=None):
    shape = aval(a)[0]
    if axis is None:
        axes = [i for i, n in enumerate(shape) if n == 1]
    else:
        axes = normalize_axes(axis, len(shape), allow_repeated=True, sort=True)
        for ax in axes:
            if shape[ax] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return reshape(a, tuple(n for i, n in enumerate(shape) if i not in axes))


@traceable
def concatenate(arrays, axis=0, out=None, dtype=None):
    no_out("concatenate", out=out)
    arrays = [astype(x, dtype) if dtype is not None else x for x in arrays]
    if axis is None:
        arrays = [ravel(x) for x in arrays]
        axis = 0
    ndim = len(aval(arrays[0])[0])
    if ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    return CONCATENATE.bind(*arrays, axis=normalize_axes(axis, ndim, "axis")[0])


@traceable
def stack(arrays, axis=0, out=None, dtype=None):
    no_out("stack", out=out)
    arrays = list(arrays)
    if not arrays:
        raise ValueError("need at least one array to stack")
    shapes = {aval(x)[0] for x in arrays}
    if len(shapes) != 1:
        raise ValueError("all input arrays must have the same shape")
    ndim = len(aval(arrays[0])[0]) + 1
    axis = normalize_axes(axis, ndim, "axis")[0]
    return concatenate([expand_dims(x, axis) for x in arrays], axis, dtype=dtype)


@traceable
def astype(x, dtype, copy=True):
    dtype = _np.dtype(dtype)
    return x if aval(x)[1] == dtype else CONVERT.bind(x, dtype=dtype)


def shape(a):
    if type(a) in (list, tuple):  # NumPy's reading of a (nested) list; traced values inside give their shapes
        return _np.shape(plain_values(a))
    return aval(a)[0]


def ndim(a):
    return len(shape(a))


def size(a):
    return math.prod(shape(a))


def isscalar(a):
    return _np.isscalar(raw(a))
