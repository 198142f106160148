"""gpuad.numpy's diagonals and triangles: diagonal, trace, diag, tril and triu.

Compositions of differentiable rows: ``diagonal`` moves the two axes last, slices the offset square and takes
its diagonal with ``einsum('...ii->...i')``; ``trace`` sums it; ``diag`` of a vector scatters it onto a square
matrix; ``tril``/``triu`` keep a triangle with ``where``. With no traced argument, each function is NumPy's (or
CuPy's) own.
"""
from __future__ import annotations


from ..core import aval, raw
from ..ops.linear import SCATTER_ADD
from ._dispatch import module_of, normalize_axes, traceable
from ._elementwise import where
from ._products import einsum
from ._reductions import sum
from ._shapes import moveaxis

__all__ = ["diagonal", "trace", "diag", "tril", "triu"]


# ---- diagonals and triangles ----------------------------------------------------------------------------------

@traceable
def diagonal(a, offset=0, axis1=0, axis2=1):
    """numpy.diagonal: the (offset) diagonal of the axis1/axis2 planes, as a new last axis."""
    ndim = len(aval(a)[0])
    if ndim < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    (axis1,), (axis2,) = normalize_axes(axis1, ndim, "axis1"), normalize_axes(axis2, ndim, "axis2")
    if axis1 == axis2:
        raise ValueError("axis1 and axis2 cannot be the same")
    x = moveaxis(a, (axis1, axis2), (-2, -1))
    rows, cols = aval(x)[0][-2:]
    offset = int(offset)
    start_row, start_col = max(-offset, 0), max(offset, 0)
    k = max(0, min(rows - start_row, cols - start_col))
    x = x[..., start_row:start_row + k, start_col:start_col + k]
    return einsum("...ii->...i", x)


@traceable
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """numpy.trace: the sum along a diagonal."""
    if out is not None:
        raise TypeError("gpuad.numpy.trace: out= is not supported on traced values (gpuad is out-of-place)")
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


@traceable
def diag(v, k=0):
    """numpy.diag: a 1-D array's square matrix with v on diagonal k, or a 2-D array's diagonal k."""
    shape = aval(v)[0]
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    k = int(k)
    n = shape[0] + abs(k)
    xp = module_of((raw(v),))
    index = xp.arange(shape[0])
    rows, cols = (index, index + k) if k >= 0 else (index - k, index)
    return SCATTER_ADD.bind(v, index=(rows, cols), shape=(n, n))


def _triangle(m, k, lower):
    shape = aval(m)[0]
    if not shape:
        raise ValueError(f"{'tril' if lower else 'triu'}: the input must be at least 1-D")
    rows, cols = shape[-2:] if len(shape) >= 2 else (shape[0], shape[0])
    xp = module_of((raw(m),))
    below = xp.tri(rows, cols, k=k if lower else k - 1, dtype=bool)
    return where(below if lower else ~below, m, 0)


@traceable
def tril(m, k=0):
    """numpy.tril: zeros above diagonal k of the last two axes (a 1-D input is taken as each row)."""
    return _triangle(m, int(k), lower=True)


@traceable
def triu(m, k=0):
    """numpy.triu: zeros below diagonal k of the last two axes (a 1-D input is taken as each row)."""
    return _triangle(m, int(k), lower=False)
