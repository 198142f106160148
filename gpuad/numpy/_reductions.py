"""gpuad.numpy functions: statistics, scans, and the elementwise functions that take non-array parameters.

Everything here is a composition: var, std, average and ptp are written with the core reductions (sum, mean,
max, min) and elementwise rows, so their derivatives of every order follow; cumsum and cumprod bind the scan
rows of ``gpuad.ops.reductions``; round and nan_to_num turn their parameters into calls of the rint and
nan_to_num rows. Plain (untraced) arguments go straight to NumPy's (or CuPy's) function of the same name, and
traced ones follow NumPy's signatures, axis rules and dtype promotion.

Conventions: ``std`` where the variance is exactly 0 (a constant slice) has derivative 0, a subgradient of the
kink, instead of the 0/0 = nan that sqrt's rule would give; ties in max, min and ptp split the derivative evenly
among the tied elements; round, around, fix and floor_divide have derivative 0.
"""
from __future__ import annotations

import builtins
import math
import operator

import numpy as _np

from .. import numpy as gnp
from ..core import aval, raw
from ..ops.elementwise import NAN_TO_NUM
from ..ops.reductions import CUMPROD, CUMSUM

from . import _asarray_like, _axes, _module_of, _no_out, traceable

__all__ = ["var", "std", "cumsum", "cumprod", "average", "ptp", "round", "around", "fix", "nan_to_num", "mod",
           "degrees", "radians", "conj"]

# NumPy's other names for elementwise rows (same semantics, so they are the same functions).
mod = gnp.remainder
degrees = gnp.rad2deg
radians = gnp.deg2rad
conj = gnp.conjugate
fix = gnp.trunc  # rounds toward zero, as numpy.fix does


# ---- variance and standard deviation ----------------------------------------------------------------------

def _count(shape, axes):
    return math.prod(shape[i] for i in axes)


def _ddof(ddof, correction):
    if correction is None:
        return ddof
    if ddof != 0:
        raise ValueError("ddof and correction can't be provided simultaneously; pass only one of them")
    return correction


@traceable
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    _no_out("var", out=out, where=where)
    ddof = _ddof(ddof, correction)
    if dtype is not None:
        a = gnp.astype(a, dtype)
    shape = aval(a)[0]
    axes = _axes(axis, len(shape))
    count = _count(shape, axes)
    # NumPy's steps: mean with kept dims, squared deviations, their sum over max(count - ddof, 0).
    centre = gnp.sum(a, axes, keepdims=True) / count if mean is None else mean
    deviation = a - centre
    # An array divisor: with count - ddof <= 0 NumPy gives inf/nan (with a warning), not ZeroDivisionError.
    divisor = _module_of((raw(a),)).asarray(builtins.max(count - ddof, 0), dtype=aval(deviation)[1])
    return gnp.sum(deviation * deviation, axes, keepdims=keepdims) / divisor


@traceable
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    variance = var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean, correction=correction)
    zero = raw(variance) == 0
    if not bool(_module_of((zero,)).any(zero)):
        return gnp.sqrt(variance)
    # A constant slice: sqrt's derivative 0.5 / 0 times var's 0 would be nan; take derivative 0 there.
    return gnp.where(zero, 0, gnp.sqrt(gnp.where(zero, 1, variance)))


# ---- scans ------------------------------------------------------------------------------------------------

def _scan_input(name, a, axis, dtype):
    """(array, axis) for a scan: axis=None scans the flattened array; 0-d arrays scan as 1-d, like NumPy."""
    if dtype is not None:
        a = gnp.astype(a, dtype)
    if axis is None or len(aval(a)[0]) == 0:
        a = gnp.ravel(a)
        axis = 0 if axis is None else axis
    if not isinstance(axis, int) and not hasattr(axis, "__index__"):
        raise TypeError(f"gpuad.numpy.{name}: axis must be one integer or None, not {axis!r}; scan one axis at "
                        f"a time (nest the calls to scan several)")
    return a, _axes(operator.index(axis), len(aval(a)[0]))[0]


@traceable
def cumsum(a, axis=None, dtype=None, out=None):
    _no_out("cumsum", out=out)
    a, axis = _scan_input("cumsum", a, axis, dtype)
    return CUMSUM.bind(a, axis=axis, reverse=False)


@traceable
def cumprod(a, axis=None, dtype=None, out=None):
    _no_out("cumprod", out=out)
    a, axis = _scan_input("cumprod", a, axis, dtype)
    if has_zero(a):
        return _scan_product(a, axis)
    return CUMPROD.bind(a, axis=axis)


def has_zero(a) -> bool:
    """Whether ``a`` holds a zero: its products are then composed from multiplies, since the quotient-form rules
    of the prod and cumprod rows would divide by it."""
    values = raw(a)
    return bool(_module_of((values,)).any(values == 0))


def _scan_product(a, axis):
    """cumprod along ``axis`` as a log-depth (Hillis-Steele) scan: after the step with shift s, element i holds
    the product of the 2s elements ending at i. Only multiplies and slices, so derivatives of every order are
    exact, zeros included."""
    n = aval(a)[0][axis]
    head = (slice(None),) * axis
    shift = 1
    while shift < n:
        a = gnp.concatenate([a[head + (slice(0, shift),)],
                             a[head + (slice(shift, n),)] * a[head + (slice(0, n - shift),)]], axis=axis)
        shift *= 2
    return a


def tree_product(a, axes, keepdims):
    """prod over ``axes`` as a tree of multiplies (halves times halves), for inputs holding a zero."""
    shape = aval(a)[0]
    kept = [i for i in range(len(shape)) if i not in axes]
    n = math.prod(shape[i] for i in axes)
    a = gnp.reshape(gnp.transpose(a, kept + list(axes)), tuple(shape[i] for i in kept) + (n,))
    while n > 1:
        if n % 2:
            a = gnp.concatenate([a, gnp.ones_like(a[..., :1])], axis=-1)
            n += 1
        a = a[..., : n // 2] * a[..., n // 2:]
        n //= 2
    a = a[..., 0] if n == 1 else gnp.sum(a, axis=-1) + 1  # n == 0: the empty product
    return gnp.reshape(a, tuple(1 if i in axes else m for i, m in enumerate(shape)) if keepdims
                       else tuple(shape[i] for i in kept))


# ---- weighted mean and range --------------------------------------------------------------------------------

def _weights_like(weights, shape, axis, axes):
    """Weights broadcastable against ``shape``: the same shape, or 1-d / N-d along the reduced axes (NumPy's
    rule for weights whose shape differs from the data's)."""
    wshape = aval(weights)[0]
    if wshape == shape:
        return weights
    if axis is None:
        raise TypeError("average: axis must be specified when shapes of a and weights differ (or give weights "
                        "the shape of a)")
    order = [a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)]
    if wshape != tuple(shape[i] for i in order):
        raise ValueError(f"average: weights of shape {wshape} are not consistent with a of shape {shape} along "
                         f"axis {axis}: expected shape {tuple(shape[i] for i in order)}")
    weights = gnp.transpose(weights, tuple(_np.argsort(order).tolist())) if len(order) > 1 else weights
    return gnp.reshape(weights, tuple(n if i in axes else 1 for i, n in enumerate(shape)))


@traceable
def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    a = gnp.asarray(a)
    shape = aval(a)[0]
    axes = _axes(axis, len(shape))
    if weights is None:
        avg = gnp.mean(a, axes, keepdims=keepdims)
        scale = _count(shape, axes)
    else:
        weights = _asarray_like(weights, a)
        result = _np.result_type(aval(a)[1], aval(weights)[1])
        if result.kind not in "fc":
            result = _np.result_type(result, _np.float64)
        a, weights = gnp.astype(a, result), gnp.astype(weights, result)
        weights = _weights_like(weights, shape, axis, axes)
        scale = gnp.sum(gnp.broadcast_to(weights, shape), axes, keepdims=keepdims)
        if bool(_module_of((raw(scale),)).any(raw(scale) == 0)):
            raise ZeroDivisionError("average: weights sum to zero, can't be normalized")
        avg = gnp.sum(a * weights, axes, keepdims=keepdims) / scale
    if not returned:
        return avg
    avg_shape, avg_dtype = aval(avg)
    if weights is None:  # the count of averaged elements, as an array like avg (NumPy's returned=True)
        return avg, _module_of((raw(avg),)).full(avg_shape, scale, dtype=avg_dtype)
    return avg, scale if aval(scale)[0] == avg_shape else gnp.broadcast_to(scale, avg_shape)


@traceable
def ptp(a, axis=None, out=None, keepdims=False):
    _no_out("ptp", out=out)
    return gnp.max(a, axis, keepdims=keepdims) - gnp.min(a, axis, keepdims=keepdims)


# ---- elementwise functions with parameters ----------------------------------------------------------------

@traceable
def round(a, decimals=0, out=None):  # noqa: A001 (numpy.round)
    """numpy.round: round half to even at ``decimals`` places (negative: to the left of the point), computed as
    NumPy does (scale, rint, unscale). Derivative 0."""
    _no_out("round", out=out)
    decimals = operator.index(decimals)
    if decimals == 0:
        return gnp.rint(a)
    if decimals > 0:
        factor = 10.0 ** decimals
        return gnp.rint(a * factor) / factor
    factor = 10.0 ** -decimals
    return gnp.rint(a / factor) * factor


around = round


@traceable
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """numpy.nan_to_num: nan -> ``nan``, +inf -> ``posinf``, -inf -> ``neginf`` (defaults: 0 and the dtype's
    largest finite values). Derivative 1 where ``x`` is finite, 0 where a value was replaced."""
    out = NAN_TO_NUM.bind(x)
    xr = raw(x)
    # The row applies NumPy's defaults; other replacement values are constants swapped in (derivative 0).
    if nan != 0:
        out = gnp.where(xr != xr, nan, out)
    if posinf is not None:
        out = gnp.where(xr == _np.inf, posinf, out)
    if neginf is not None:
        out = gnp.where(xr == -_np.inf, neginf, out)
    return out
