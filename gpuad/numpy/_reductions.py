"""gpuad.numpy's reductions: sums, products, extrema, statistics and the scans cumsum and cumprod.

sum, max/amax, min/amin and prod bind the rows of ``gpuad.ops.reductions`` after NumPy's argument checks, and
cumsum and cumprod those of ``gpuad.ops.scans``; mean, var, std, average and ptp are compositions of them with
elementwise rows, so their derivatives of every order follow. Traced floating-point prods are composed from
multiplies (a tree), and cumprod's rules are linear recurrences (``gpuad.ops.scans``): both exact at every order
with zeros too, where a quotient-form rule would divide by a zero, and without looking for zeros (which would
read device values back to the host). Plain (untraced) arguments go straight to NumPy's (or CuPy's) function of
the same name, and traced ones follow NumPy's signatures, axis rules and dtype promotion.

``where=`` masks elements out (they get derivative 0; max and min need ``initial`` with it, as in NumPy) and
``initial=`` joins the reduction (sum adds it, prod multiplies by it, max/min compare with it: a tie with it
shares the derivative evenly).

Complex values: sums, means, products and scans are those of complex numbers (holomorphic: no conjugation);
max, min, ptp order them lexicographically (real part, then imaginary), as NumPy; var and std are real, the
mean of |a - mean|^2 (NumPy's formula).

Conventions: ``std`` where the variance is exactly 0 (a constant slice) has derivative 0, a subgradient of the
kink, instead of the 0/0 = nan that sqrt's rule would give; ties in max, min and ptp split the derivative evenly
among the tied elements.
"""
from __future__ import annotations

import builtins
import functools
import math
import operator

import numpy as _np

from .. import backend
from ..core import (Tensor, aval, is_complex_dtype, is_float_dtype, is_half_dtype, is_real_float_dtype, map_values,
                    raw)
from ..ops.reductions import AMAX, AMIN, PROD
from ..ops.linear import SUM
from ..ops.scans import CUMPROD, CUMSUM
from ._creation import asarray, asarray_like, ones_like
from ._dispatch import module_of, no_out, normalize_axes, traceable
from ._elementwise import abs_squared, sqrt
from ._elementwise import where as _select  # the name `where` is a keyword argument of NumPy's reductions
from ._shapes import astype, broadcast_to, concatenate, ravel, reshape, transpose

__all__ = ["sum", "mean", "max", "amax", "min", "amin", "prod", "var", "std", "cumsum", "cumprod", "average",
           "ptp"]


def _reduced_axes(axis, ndim):
    """A reduction's axes, sorted (NumPy's own error reports a repeated axis when the row evaluates)."""
    return normalize_axes(axis, ndim, allow_repeated=True, sort=True)


# ---- sums, extrema and products -----------------------------------------------------------------------------

def _given(**kwargs):
    """The keyword arguments that were given (not None): an intermediate that is a plain array goes to NumPy's
    own function, whose defaults are not None (numpy.sum(x, where=None) is 0)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _mask(where, a):
    """A reduction's ``where=`` as a plain boolean array on ``a``'s backend (None when everything counts)."""
    if where is None or where is True:
        return None
    mask = raw(where)
    return module_of((raw(a),)).asarray(mask, dtype=bool)


def _masked_count(a, mask, axes, keepdims, dtype=None):
    """The number of elements ``mask`` selects per reduced slice (NumPy's count for mean/var with where=)."""
    xp = module_of((raw(a),))
    full = xp.broadcast_to(mask, aval(a)[0])
    return xp.sum(full, axis=axes, keepdims=keepdims, dtype=_np.intp)


def _accumulate_half(fn):
    """Plain float16/bfloat16 arrays too are summed (and averaged) in float32 and rounded once, as traced ones
    are (NumPy's float16 sum accumulates in float16): a function's value does not change when it is traced."""
    traced = traceable(fn)

    @functools.wraps(fn)
    def wrapper(a, *args, **kwargs):
        if not isinstance(a, Tensor) and len(args) <= 1 and kwargs.get("dtype") is None \
                and kwargs.get("out") is None and is_half_dtype(getattr(a, "dtype", None)):
            xp = module_of((a,))
            return getattr(xp, fn.__name__)(a, *args, **{**kwargs, "dtype": _np.float32}).astype(a.dtype)
        return traced(a, *args, **kwargs)

    return wrapper


@_accumulate_half
def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """numpy.sum; ``where=`` masks elements out (derivative 0 there), ``initial`` is added."""
    no_out("sum", out=out)
    if dtype is not None:
        a = astype(a, dtype)
    mask = _mask(where, a)
    if mask is not None:
        a = _select(mask, a, 0)
    total = SUM.bind(a, axis=_reduced_axes(axis, len(aval(a)[0])), keepdims=builtins.bool(keepdims))
    return total if initial is None else total + initial


@_accumulate_half
def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    no_out("mean", out=out)
    if dtype is None and is_half_dtype(aval(a)[1]):
        # float16/bfloat16: the sum and the division in float32, one rounding at the end (no overflow of the sum)
        return astype(mean(astype(a, _np.float32), axis, keepdims=keepdims, **_given(where=where)), aval(a)[1])
    shape = aval(a)[0]
    axes = _reduced_axes(axis, len(shape))
    mask = _mask(where, a)
    if mask is not None:
        total = sum(a, axes, dtype, keepdims=keepdims, **_given(where=mask))
        count = _masked_count(a, mask, axes, keepdims)
        return total / count.astype(aval(total)[1])
    count = math.prod(shape[i] for i in axes)
    total = sum(a, axes, dtype, keepdims=keepdims)
    return total / count if count else total * _np.nan


def _extremum(prim, name):
    def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        """numpy.max / numpy.min; ``where=`` needs ``initial`` (as in NumPy); ties with ``initial`` split evenly."""
        no_out(name, out=out)
        shape = aval(a)[0]
        mask = _mask(where, a)
        if mask is not None and initial is None:
            raise ValueError(f"reduction operation '{'maximum' if name == 'max' else 'minimum'}' does not have an "
                             f"identity, so to use a where mask one has to specify 'initial'")
        if initial is None and builtins.any(n == 0 for n in shape):
            raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
        axes = _reduced_axes(axis, len(shape))
        if initial is None:
            return prim.bind(a, axis=axes, keepdims=builtins.bool(keepdims))
        from ._elementwise import maximum, minimum
        combine = maximum if name == "max" else minimum
        dtype = aval(a)[1]
        # Masked-out elements become the identity of the reduction (never a tie with a selected element).
        identity = (-_np.inf if name == "max" else _np.inf) if is_float_dtype(dtype) else (
            _np.iinfo(dtype).min if name == "max" else _np.iinfo(dtype).max) if dtype.kind in "iu" else initial
        if mask is not None:
            a = _select(mask, a, identity)
        if builtins.any(n == 0 for n in shape):  # only the initial value
            out_shape = tuple(1 if i in axes else n for i, n in enumerate(shape)) if keepdims else tuple(
                n for i, n in enumerate(shape) if i not in axes)
            return module_of((raw(a),)).full(out_shape, initial, dtype=dtype)
        return combine(prim.bind(a, axis=axes, keepdims=builtins.bool(keepdims)), initial)
    fn.__name__ = name
    return traceable(fn)


max = amax = _extremum(AMAX, "max")
min = amin = _extremum(AMIN, "min")


@traceable
def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """numpy.prod; ``where=`` masks elements out (they count as 1), ``initial`` multiplies the product."""
    no_out("prod", out=out)
    if dtype is not None:
        a = astype(a, dtype)
    mask = _mask(where, a)
    if mask is not None:
        a = _select(mask, a, 1)
    axes = _reduced_axes(axis, len(aval(a)[0]))
    if _differentiable(a):
        result = tree_product(a, axes, builtins.bool(keepdims))
    else:
        result = PROD.bind(a, axis=axes, keepdims=builtins.bool(keepdims))
    return result if initial is None else result * initial


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
    """numpy.var: the mean of |a - mean|^2 over ``max(count - ddof, 0)``; real for complex ``a`` (as NumPy)."""
    no_out("var", out=out)
    ddof = _ddof(ddof, correction)
    if dtype is not None:
        a = astype(a, dtype)
    shape = aval(a)[0]
    axes = _reduced_axes(axis, len(shape))
    mask = _mask(where, a)
    count = _count(shape, axes) if mask is None else _masked_count(a, mask, axes, True)
    # NumPy's steps: mean with kept dims, squared deviations, their sum over max(count - ddof, 0).
    if mask is not None:
        a_dtype = aval(a)[1]  # the count in the real dtype of a (complex64: float32), else float64
        count = count.astype(a_dtype if is_real_float_dtype(a_dtype) else _np.finfo(a_dtype).dtype
                             if is_complex_dtype(a_dtype) else _np.float64)
    centre = sum(a, axes, keepdims=True, **_given(where=mask)) / count if mean is None else mean
    squared = abs_squared(a - centre)
    xp = module_of((raw(a),))
    if mask is not None:
        count = count if keepdims else xp.squeeze(count, axis=axes)
        divisor = xp.maximum(count - ddof, 0).astype(aval(squared)[1])
    else:
        # An array divisor: with count - ddof <= 0 NumPy gives inf/nan (with a warning), not ZeroDivisionError.
        divisor = xp.asarray(builtins.max(count - ddof, 0), dtype=aval(squared)[1])
    return sum(squared, axes, keepdims=keepdims, **_given(where=mask)) / divisor


@traceable
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    """numpy.std: sqrt(var), real for complex ``a``; derivative 0 where the variance is exactly 0."""
    variance = var(a, axis, dtype, out, ddof, keepdims, **_given(where=where, mean=mean, correction=correction))
    # Branch-free (no device value decides a path): where the variance is 0 (a constant slice), sqrt's derivative
    # 0.5 / 0 times var's 0 would be nan; there the sqrt sees 0 + 1 and its result is multiplied by 0, so the
    # value and every derivative are 0. Elsewhere var + 0 and * 1 are exact.
    constant = map_values(lambda v: (v == 0).astype(v.dtype), variance)
    return sqrt(variance + constant) * (1 - constant)


# ---- scans ------------------------------------------------------------------------------------------------

def _scan_input(name, a, axis, dtype):
    """(array, axis) for a scan: axis=None scans the flattened array; 0-d arrays scan as 1-d, like NumPy."""
    if dtype is not None:
        a = astype(a, dtype)
    if axis is None or len(aval(a)[0]) == 0:
        a = ravel(a)
        axis = 0 if axis is None else axis
    if not isinstance(axis, int) and not hasattr(axis, "__index__"):
        raise TypeError(f"gpuad.numpy.{name}: axis must be one integer or None, not {axis!r}; scan one axis at "
                        f"a time (nest the calls to scan several)")
    return a, normalize_axes(operator.index(axis), len(aval(a)[0]))[0]


@traceable
def cumsum(a, axis=None, dtype=None, out=None):
    no_out("cumsum", out=out)
    a, axis = _scan_input("cumsum", a, axis, dtype)
    return CUMSUM.bind(a, axis=axis, reverse=False)


@traceable
def cumprod(a, axis=None, dtype=None, out=None):
    no_out("cumprod", out=out)
    a, axis = _scan_input("cumprod", a, axis, dtype)
    return CUMPROD.bind(a, axis=axis)  # its rules are recurrences: exact with zeros, no look at the values


def _differentiable(a) -> bool:
    """Whether a traced prod of ``a`` is composed from multiplies (a tree): always for floating-point values,
    since the quotient-form rules of the prod row would divide by a zero, and checking the values for zeros would
    read them back from the device (a stall). Integer values (no derivative) take the row."""
    return aval(a)[1].kind in "fc"


def tree_product(a, axes, keepdims):
    """prod over ``axes`` as a tree of multiplies (halves times halves): exact at every order, zeros included."""
    shape = aval(a)[0]
    kept = [i for i in range(len(shape)) if i not in axes]
    n = math.prod(shape[i] for i in axes)
    a = reshape(transpose(a, kept + list(axes)), tuple(shape[i] for i in kept) + (n,))
    while n > 1:
        if n % 2:
            a = concatenate([a, ones_like(a[..., :1])], axis=-1)
            n += 1
        a = a[..., : n // 2] * a[..., n // 2:]
        n //= 2
    a = a[..., 0] if n == 1 else sum(a, axis=-1) + 1  # n == 0: the empty product
    return reshape(a, tuple(1 if i in axes else m for i, m in enumerate(shape)) if keepdims
                       else tuple(shape[i] for i in kept))


# ---- weighted mean and range --------------------------------------------------------------------------------

def _weights_like(weights, shape, axis, axes, name="average"):
    """Weights broadcastable against ``shape``: the same shape, or 1-d / N-d along the reduced axes (NumPy's
    rule for weights whose shape differs from the data's; ``name`` is the function the errors name)."""
    wshape = aval(weights)[0]
    if wshape == shape:
        return weights
    if axis is None:
        raise TypeError(f"{name}: axis must be specified when shapes of a and weights differ (or give weights "
                        "the shape of a)")
    order = [a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)]
    if wshape != tuple(shape[i] for i in order):
        raise ValueError(f"{name}: weights of shape {wshape} are not consistent with a of shape {shape} along "
                         f"axis {axis}: expected shape {tuple(shape[i] for i in order)}")
    weights = transpose(weights, tuple(_np.argsort(order).tolist())) if len(order) > 1 else weights
    return reshape(weights, tuple(n if i in axes else 1 for i, n in enumerate(shape)))


@traceable
def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    a = asarray(a)
    shape = aval(a)[0]
    axes = _reduced_axes(axis, len(shape))
    if weights is None:
        avg = mean(a, axes, keepdims=keepdims)
        scale = _count(shape, axes)
    else:
        weights = asarray_like(weights, a)
        result = _np.result_type(aval(a)[1], aval(weights)[1])
        if not is_float_dtype(result):
            result = _np.result_type(result, _np.float64)
        a, weights = astype(a, result), astype(weights, result)
        weights = _weights_like(weights, shape, axis, axes)
        scale = sum(broadcast_to(weights, shape), axes, keepdims=keepdims)
        scale_values = raw(scale)
        xp = module_of((scale_values,))
        # NumPy's error for weights summing to zero, where reading them costs no device-to-host transfer (on
        # the GPU the quotient is inf/nan instead: no stall to check it)
        if backend.on_host(xp) and builtins.bool(xp.any(scale_values == 0)):
            raise ZeroDivisionError("average: weights sum to zero, can't be normalized")
        avg = sum(a * weights, axes, keepdims=keepdims) / scale
    if not returned:
        return avg
    avg_shape, avg_dtype = aval(avg)
    if weights is None:  # the count of averaged elements, as an array like avg (NumPy's returned=True)
        return avg, module_of((raw(avg),)).full(avg_shape, scale, dtype=avg_dtype)
    return avg, scale if aval(scale)[0] == avg_shape else broadcast_to(scale, avg_shape)


@traceable
def ptp(a, axis=None, out=None, keepdims=False):
    no_out("ptp", out=out)
    return max(a, axis, keepdims=keepdims) - min(a, axis, keepdims=keepdims)
