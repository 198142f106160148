"""gpuad.numpy's numerical calculus and signal functions: cross, gradient, interp, convolve, correlate,
trapezoid and polyval.

Each is NumPy's formula written with differentiable gpuad.numpy functions (slices, products, sums, gathers), so
its derivatives of every order follow, in every traced argument: ``interp`` in ``x``, ``xp`` and ``fp``
(piecewise linear: at a knot the derivative in ``x`` is the slope of the interval to its right, outside the
range it is 0); ``gradient`` in ``f`` (spacings are constants); ``convolve``/``correlate`` in both signals (a
gather of the shifted signal times the other, the pairs in range summed). Index bookkeeping is computed from the
values with NumPy (or CuPy) and carries no derivative.

Complex values, as NumPy: ``correlate`` conjugates its second signal; ``interp`` takes complex ``fp`` (``x`` and
``xp`` must be real); the others are linear or bilinear in complex values and need nothing more.
"""
from __future__ import annotations

import numpy as _np

from .. import backend
from ..core import aval, is_float_dtype, map_values, raw, refuse_batched
from ._creation import asarray, asarray_like
from ._dispatch import has_tensor, module_of, normalize_axes, traceable
from ._elementwise import conj_if_complex, is_complex, where
from ._rearranging import diff, take
from ._reductions import sum
from ._shapes import astype, broadcast_arrays, concatenate, moveaxis, reshape, stack

__all__ = ["cross", "gradient", "interp", "convolve", "correlate", "trapezoid", "polyval"]


def _xp(a):
    return module_of((raw(a),))


def _along(axis, index, ndim):
    return tuple(index if i == axis else slice(None) for i in range(ndim))


# ---- cross product -------------------------------------------------------------------------------------------

@traceable
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """numpy.cross of 3-vectors (and 2-vectors, as NumPy: a 2-d cross product is the z component)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = asarray(a), asarray(b)
    a = moveaxis(a, normalize_axes(axisa, len(aval(a)[0]), "axisa")[0], -1)
    b = moveaxis(b, normalize_axes(axisb, len(aval(b)[0]), "axisb")[0], -1)
    na, nb = aval(a)[0][-1], aval(b)[0][-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")
    if na == 2 or nb == 2:
        import warnings
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of 3-dimensional vectors "
                      "instead. (deprecated in NumPy 2.0)", DeprecationWarning, stacklevel=3)
    dtype = _np.result_type(aval(a)[1], aval(b)[1])
    a, b = astype(a, dtype), astype(b, dtype)
    a0, a1, b0, b1 = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
    z = a0 * b1 - a1 * b0
    if na == 2 and nb == 2:
        return z
    if na == 3 and nb == 3:
        a2, b2 = a[..., 2], b[..., 2]
        parts = [a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, z]
    elif na == 2:
        b2 = b[..., 2]
        parts = [a1 * b2, -(a0 * b2), z]
    else:
        a2 = a[..., 2]
        parts = [-(a2 * b1), a2 * b0, z]
    result = stack(broadcast_arrays(*parts), axis=-1)
    return moveaxis(result, -1, normalize_axes(axisc, len(aval(result)[0]), "axisc")[0])


# ---- numerical gradient --------------------------------------------------------------------------------------

def _spacings(varargs, f_shape, axes):
    n = len(varargs)
    if has_tensor(varargs):
        raise TypeError("gpuad.numpy.gradient: traced spacings are not supported (no derivative in the spacing); "
                        "pass them as plain numbers or arrays")
    if n == 0:
        return [1.0] * len(axes)
    if n == 1 and _np.ndim(backend.to_numpy(raw(varargs[0]))) == 0:
        return [float(backend.to_numpy(raw(varargs[0])))] * len(axes)
    if n != len(axes):
        raise TypeError("invalid number of arguments")
    out = []
    for i, distances in enumerate(varargs):
        distances = _np.asarray(backend.to_numpy(raw(distances)))
        if distances.ndim == 0:
            out.append(distances)
            continue
        if distances.ndim != 1:
            raise ValueError("distances must be either scalars or 1d")
        if len(distances) != f_shape[axes[i]]:
            raise ValueError("when 1d, distances must match the length of the corresponding dimension")
        if _np.issubdtype(distances.dtype, _np.integer):
            distances = distances.astype(_np.float64)
        step = _np.diff(distances)
        out.append(step[0] if (step == step[0]).all() else step)
    return out


@traceable
def gradient(f, *varargs, axis=None, edge_order=1):
    """numpy.gradient: central differences inside, one-sided (edge_order 1 or 2) at the ends; differentiable in
    ``f`` (the spacings are constants)."""
    f = asarray(f)
    shape, dtype = aval(f)
    ndim = len(shape)
    axes = tuple(range(ndim)) if axis is None else normalize_axes(axis, ndim)
    spacings = _spacings(varargs, shape, axes)
    if edge_order > 2:
        raise ValueError("'edge_order' greater than 2 not supported")
    if not is_float_dtype(dtype):
        f = astype(f, _np.float64)
    xp = _xp(f)
    outvals = []
    for ax, dx in zip(axes, spacings):
        if shape[ax] < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, at least (edge_order + 1) "
                             "elements are required.")
        at = lambda index: f[_along(ax, index, ndim)]  # noqa: E731
        uniform = _np.ndim(dx) == 0

        def shaped(c):
            return c if _np.ndim(c) == 0 else xp.asarray(c.reshape(tuple(-1 if i == ax else 1 for i in range(ndim))))
        if uniform:
            inside = (at(slice(2, None)) - at(slice(None, -2))) / (2.0 * dx)
        else:
            dx1, dx2 = dx[:-1], dx[1:]
            a = -dx2 / (dx1 * (dx1 + dx2))
            b = (dx2 - dx1) / (dx1 * dx2)
            c = dx1 / (dx2 * (dx1 + dx2))
            inside = shaped(a) * at(slice(None, -2)) + shaped(b) * at(slice(1, -1)) + shaped(c) * at(slice(2, None))
        if edge_order == 1:
            first = (at(slice(1, 2)) - at(slice(0, 1))) / (dx if uniform else dx[0])
            last = (at(slice(-1, None)) - at(slice(-2, -1))) / (dx if uniform else dx[-1])
        else:
            if uniform:
                a, b, c = -1.5 / dx, 2.0 / dx, -0.5 / dx
            else:
                dx1, dx2 = dx[0], dx[1]
                a = -(2.0 * dx1 + dx2) / (dx1 * (dx1 + dx2))
                b = (dx1 + dx2) / (dx1 * dx2)
                c = -dx1 / (dx2 * (dx1 + dx2))
            first = a * at(slice(0, 1)) + b * at(slice(1, 2)) + c * at(slice(2, 3))
            if uniform:
                a, b, c = 0.5 / dx, -2.0 / dx, 1.5 / dx
            else:
                dx1, dx2 = dx[-2], dx[-1]
                a = dx2 / (dx1 * (dx1 + dx2))
                b = -(dx2 + dx1) / (dx1 * dx2)
                c = (2.0 * dx2 + dx1) / (dx2 * (dx1 + dx2))
            last = a * at(slice(-3, -2)) + b * at(slice(-2, -1)) + c * at(slice(-1, None))
        out = concatenate([first, inside, last], axis=ax)
        outvals.append(astype(out, aval(f)[1]))
    return outvals[0] if len(axes) == 1 else tuple(outvals)


# ---- interpolation ------------------------------------------------------------------------------------------

@traceable
def interp(x, xp, fp, left=None, right=None, period=None):
    """numpy.interp: piecewise linear, NumPy's slope formula; left/right (defaults fp[0], fp[-1]) outside. ``x``
    and ``xp`` are real; complex ``fp`` (and then ``left``/``right``) gives a complex result, as in NumPy."""
    refuse_batched("gpuad.numpy.interp (for xp)", xp)  # (batched x, fp, left, right: each example its own)
    x, xp, fp = asarray(x), asarray(xp), asarray(fp)
    values = "complex" if is_complex(fp) else "real"
    for name, v in (("x", x), ("xp", xp)) + (() if is_complex(fp) else (("left", left), ("right", right))):
        if v is not None and is_complex(v):
            raise TypeError(f"gpuad.numpy.interp: {name} must be real (NumPy refuses complex {name} with {values} "
                            f"fp)")
    x, xp = astype(x, _np.float64), astype(xp, _np.float64)
    fp = astype(fp, _np.result_type(aval(fp)[1], _np.float64))
    if len(aval(xp)[0]) != 1 or len(aval(fp)[0]) != 1:
        raise ValueError("object too deep for desired array" if len(aval(xp)[0]) > 1 else
                         "object of too small depth for desired array")
    n = aval(xp)[0][0]
    if aval(fp)[0][0] != n:
        raise ValueError("fp and xp are not of the same length.")
    if n == 0:
        raise ValueError("array of sample points is empty")
    if period is not None:
        if period == 0:
            raise ValueError("period must be a non-zero value")
        period = abs(period)
        left = right = None
        x = x % period
        xp = xp % period
        order = backend.argsort(raw(xp))
        xp, fp = xp[order], fp[order]
        xp = concatenate((xp[-1:] - period, xp, xp[0:1] + period))
        fp = concatenate((fp[-1:], fp, fp[0:1]))
        n += 2
    xpr = raw(xp)
    module = _xp(x)
    # (constants from x's values, elementwise, so that a vmap in progress keeps each example's own)
    if n == 1:  # (zeros of x's shape, not x * 0: NaN x gives fp[0], as NumPy's)
        inner = fp[..., 0] + map_values(lambda v: module.zeros(v.shape, dtype=_np.float64), x)
    else:
        j = map_values(lambda v: module.clip(module.searchsorted(module.asarray(xpr), v, side="right") - 1, 0,
                                             n - 2), x)
        x0, x1, f0, f1 = take(xp, j), take(xp, j + 1), take(fp, j, axis=-1), take(fp, j + 1, axis=-1)
        slope = (f1 - f0) / (x1 - x0)
        inner = slope * (x - x0) + f0
        # NumPy's repairs where that is NaN for a number x (an infinite fp or xp): x on the knot gives fp[j];
        # else the line from the right end, slope * (x - x1) + f1; NaN there too and f0 == f1 gives f0
        from_right = slope * (x - x1) + f1
        flat = map_values(lambda r, a, b: module.isnan(r) & (a == b), from_right, f0, f1, align=True)
        from_right = where(flat, f0, from_right)
        repair = map_values(lambda r, v: module.isnan(r) & ~module.isnan(v), inner, x, align=True)
        on_knot = map_values(lambda v, a: v == a, x, x0, align=True)
        inner = where(repair, where(on_knot, f0, from_right), inner)
        inner = where(map_values(lambda v: v == xpr[-1], x), fp[..., -1], inner)
    low = fp[..., 0] if left is None else asarray_like(left, raw(x))
    high = fp[..., -1] if right is None else asarray_like(right, raw(x))
    result = where(map_values(lambda v: v < xpr[0], x), low, inner)
    return where(map_values(lambda v: v > xpr[-1], x), high, result)


# ---- convolution and correlation ------------------------------------------------------------------------------

def _full_convolution(a, v):
    """sum_k a[k] v[i - k] for every i: a gather of v at i - k times a, only the pairs in range kept (selected
    with ``where``, not multiplied by a zero pad: an infinite or NaN a[k] touches only the outputs it enters, as
    in NumPy), summed over k."""
    n, m = aval(a)[0][0], aval(v)[0][0]
    index = _np.arange(n + m - 1)[:, None] - _np.arange(n)[None, :]
    valid = (index >= 0) & (index < m)
    xp = _xp(a)
    products = v[xp.asarray(_np.clip(index, 0, m - 1))] * a
    return sum(where(xp.asarray(valid), products, 0), axis=-1)


def _mode_slice(full, n, m, mode, reverse_same=False):
    big, small = max(n, m), min(n, m)
    if mode in ("full", 2):
        return full
    if mode in ("same", 1):
        start = (small - 1) // 2
        if reverse_same:
            start = (small - 1) - start
        return full[start:start + big]
    if mode in ("valid", 0):
        return full[small - 1:big]
    raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")


def _signals(a, v):
    a, v = asarray(a), asarray(v)
    a = reshape(a, (-1,)) if len(aval(a)[0]) == 0 else a
    v = reshape(v, (-1,)) if len(aval(v)[0]) == 0 else v
    if len(aval(a)[0]) != 1 or len(aval(v)[0]) != 1:
        raise ValueError("object too deep for desired array")
    if aval(a)[0][0] == 0:
        raise ValueError("a cannot be empty")
    if aval(v)[0][0] == 0:
        raise ValueError("v cannot be empty")
    dtype = _np.result_type(aval(a)[1], aval(v)[1])
    return astype(a, dtype), astype(v, dtype)


@traceable
def convolve(a, v, mode="full"):
    """numpy.convolve of two 1-D signals, modes 'full', 'same', 'valid'."""
    a, v = _signals(a, v)
    n, m = aval(a)[0][0], aval(v)[0][0]
    return _mode_slice(_full_convolution(a, v), n, m, mode)


@traceable
def correlate(a, v, mode="valid"):
    """numpy.correlate of two 1-D signals: c[k] = sum_n a[n + k] conj(v[n]) (complex ``v`` is conjugated, as in
    NumPy), modes 'valid', 'same', 'full'."""
    a, v = _signals(a, v)
    n, m = aval(a)[0][0], aval(v)[0][0]
    return _mode_slice(_full_convolution(a, conj_if_complex(v[::-1])), n, m, mode, reverse_same=n < m)


# ---- integration and polynomials ------------------------------------------------------------------------------

@traceable
def trapezoid(y, x=None, dx=1.0, axis=-1):
    """numpy.trapezoid: sum of d * (y[1:] + y[:-1]) / 2 along ``axis``, differentiable in y, x and dx."""
    y = asarray(y)
    ndim = len(aval(y)[0])
    axis = normalize_axes(axis, ndim)[0]
    if x is None:
        d = dx
    else:
        x = asarray(asarray_like(x, raw(y)))
        if len(aval(x)[0]) == 1:
            d = diff(x)
            d = reshape(d, tuple(aval(d)[0][0] if i == axis else 1 for i in range(ndim)))
        else:
            d = diff(x, axis=axis)
    upper = y[_along(axis, slice(1, None), ndim)]
    lower = y[_along(axis, slice(None, -1), ndim)]
    return sum(d * (upper + lower) / 2.0, axis)


@traceable
def polyval(p, x):
    """numpy.polyval by Horner's rule, as NumPy computes it; differentiable in the coefficients and in x."""
    p = asarray(p)
    x = asarray(x)
    y = _xp(x).zeros_like(x)  # (gpuad.numpy's zeros_like on a Tensor: one example's shape under vmap)
    for k in range(aval(p)[0][0] if aval(p)[0] else 0):
        y = y * x + p[k]
    return y
