"""gpuad.numpy's order statistics and NaN-aware reductions: median, quantile, percentile, the nan* reductions,
cov and corrcoef.

All are compositions of differentiable functions, so their derivatives of every order follow. An order
statistic (the k-th smallest value along an axis) is the value NumPy's sort puts there, made differentiable as
the average of the elements equal to it: ties share the derivative evenly (the convention of max and min), and
the value is NumPy's to the last bit (the average's rounding is corrected by a constant). quantile and
percentile interpolate between two order statistics with NumPy's own virtual indices, gammas and ``_lerp``
formula, for every ``method`` NumPy offers; the weighted form (``weights=``, method 'inverted_cdf' only, as in
NumPy) picks its elements by NumPy's inverted CDF where the values are (no host read). ``q`` and the weights are
constants (traced ones are refused). Slices holding a NaN give NaN, as in NumPy.

The nan* reductions replace NaNs by the reduction's identity (0 for sums, 1 for products, -inf/+inf for max/min)
so NaN entries get derivative 0; all-NaN slices give NaN (nanmean, nanvar, nanstd, nanmax, nanmin) or the
identity (nansum, nanprod), as NumPy does. cov and corrcoef follow NumPy's formulas (rowvar, bias, ddof,
fweights, aweights, dtype).

Complex values, as NumPy: median orders them lexicographically; quantile and percentile refuse them (a
TypeError); nanvar and nanstd are real; cov conjugates (X X^H) and corrcoef clips the real and imaginary parts.
"""
from __future__ import annotations

import builtins
import math

import numpy as _np

from .. import backend
from ..core import aval, constant, is_float_dtype, map_values, raw, refuse_batched
from ._creation import asarray, asarray_like
from ._dispatch import has_tensor, module_of, no_out, normalize_axes, traceable
from ._elementwise import (abs_squared, by_parts, clip, conj_if_complex, is_complex, maximum, real, sqrt,
                           where as _select)  # `where` is a keyword argument of the reductions
from ._diagonals import diagonal
from ._products import matmul
from ._reductions import _weights_like, average, max as _max, min as _min, prod, sum
from ._shapes import astype, broadcast_to, concatenate, reshape, squeeze, transpose

__all__ = ["median", "quantile", "percentile", "nansum", "nanprod", "nanmean", "nanmax", "nanmin", "nanvar",
           "nanstd", "cov", "corrcoef"]


def _xp(a):
    return module_of((raw(a),))


def _given(**kwargs):
    """The keyword arguments that were given (not None): a plain intermediate goes to NumPy's own function,
    whose defaults are not None."""
    return {k: v for k, v in kwargs.items() if v is not None}


# ---- order statistics ---------------------------------------------------------------------------------------

def _leading(a, axis):
    """``a`` with the reduced axes flattened into one leading axis (NumPy's layout for quantiles), the kept
    shape, and the reduced axes."""
    a = asarray(a)
    shape = aval(a)[0]
    axes = normalize_axes(axis, len(shape))
    kept = [i for i in range(len(shape)) if i not in axes]
    moved = transpose(a, list(axes) + kept) if list(axes) + kept != list(range(len(shape))) else a
    n = math.prod(shape[i] for i in axes)
    return reshape(moved, (n,) + tuple(shape[i] for i in kept)), axes, shape


# The constants below (sorted values, picked statistics, tie weights) are computed by ``map_values`` on the
# backend arrays, which arrive with the batch axes of any vmap in progress in front: so each counts the axes of
# ``a`` (n, *rest) from the end.

def _sorted(a):
    """``a`` (n, *rest) sorted along its first axis, a constant."""
    nd = len(aval(a)[0])
    return map_values(lambda v: backend.sort(v, axis=v.ndim - nd), a)


def _order_statistics(a, sorted_values, index):
    """The order statistics ``sorted_values[index]`` (index: a host int array, shape Q) of ``a`` (n, *rest) as a
    traced array (Q + rest)."""
    nd = len(aval(a)[0])
    picked = map_values(lambda s: _xp(s).take(s, _xp(s).asarray(index), axis=s.ndim - nd), sorted_values)
    return _elements_equal_to(a, picked, index.ndim)


def _elements_equal_to(a, values, q_ndim):
    """``values`` (Q + rest, each one of the elements of its slice of ``a``, which is (n, *rest)) as a traced
    array: the mean of the elements equal to each, with its value corrected to NumPy's."""
    nd = len(aval(a)[0])

    def tie_weights(data, values):
        xp = _xp(data)
        lead = data.ndim - nd
        expanded = data.reshape(data.shape[:lead] + (1,) * q_ndim + data.shape[lead:])
        target = xp.expand_dims(values, values.ndim - nd + 1)
        equal = (expanded == target) | (xp.isnan(expanded) & xp.isnan(target))
        return (equal / xp.sum(equal, axis=lead + q_ndim, keepdims=True)).astype(data.dtype)

    weights = map_values(tie_weights, a, values)
    # (selected before scaled: an infinite element that is not the statistic must not make inf * 0)
    linear = sum(_select(weights > 0, reshape(a, (1,) * q_ndim + aval(a)[0]), 0) * weights, axis=q_ndim)
    # (values - value of linear) is exact and adding it back gives values exactly (the two differ by rounding;
    # 0 where they are equal: inf - inf).
    return linear + map_values(lambda v, s: backend.where(v == s, 0, v - s), values, linear)


def _nan_slices(a, sorted_values):
    """(mask, value): the slices of ``a`` holding a NaN (sorted last) and that NaN, which NumPy returns for them
    (complex: nan+1j stays nan+1j); None for values that cannot be NaN."""
    shape, dtype = aval(a)
    if not (is_float_dtype(dtype) and shape[0]):
        return None
    nd = len(shape)
    last = map_values(lambda s: _xp(s).take(s, -1, axis=s.ndim - nd), sorted_values)
    return map_values(lambda v: _xp(v).isnan(v), last), last


def _finish(result, axes, shape, q_ndim, keepdims, nan_slices):
    if nan_slices is not None:  # always applied: no device value decides a path
        result = _select(*nan_slices, result)
    if keepdims:
        result = reshape(result, aval(result)[0][:q_ndim] + tuple(1 if i in axes else n for i, n in
                                                                   enumerate(shape)))
    return result


def _lerp(a, b, t):
    """NumPy's _lerp: a + (b - a) t, computed from b's side for t >= 0.5."""
    diff = b - a
    low = a + diff * t
    high = b - diff * (1 - t)
    upper = t >= 0.5
    if isinstance(upper, builtins.bool):
        return high if upper else low
    return _select(upper, high, low)


def _quantile(a, q, axis, method, keepdims, weak_q):
    from numpy.lib import _function_base_impl as impl  # NumPy's own index and gamma rules for each method
    a, axes, shape = _leading(a, axis)
    n = aval(a)[0][0]
    if n == 0:
        raise IndexError("quantile of an empty slice is not supported on traced values")
    q = _np.asarray(backend.to_numpy(q))
    try:
        props = impl._QuantileMethods[method]
    except KeyError:
        raise ValueError(f"{method!r} is not a valid method. Use one of: {impl._QuantileMethods.keys()}") from None
    sorted_values = _sorted(a)
    virtual = _np.asanyarray(props["get_virtual_index"](n, q))
    rest_ndim = len(aval(a)[0]) - 1
    if props["fix_gamma"] is None or (method == "linear" and _np.issubdtype(virtual.dtype, _np.integer)):
        result = _order_statistics(a, sorted_values, _np.clip(virtual.astype(_np.intp), -n, n - 1))
    else:
        previous, following = impl._get_indexes(_np.empty(0, dtype=aval(a)[1]), virtual, n)
        gamma = impl._get_gamma(virtual, previous, props)
        gamma = float(gamma) if weak_q else gamma.reshape(virtual.shape + (1,) * rest_ndim)
        if not weak_q:
            gamma = _xp(a).asarray(gamma)
        result = _lerp(_order_statistics(a, sorted_values, previous), _order_statistics(a, sorted_values, following),
                       gamma)
    return _finish(result, axes, shape, q.ndim, keepdims, _nan_slices(a, sorted_values))


def _constant_q(q, name):
    if has_tensor((q,)):
        raise TypeError(f"gpuad.numpy.{name}: a traced q is not supported (its derivative is not implemented); pass "
                        f"q as a plain array or number")


def _check_q(q, high, what):
    values = _np.asarray(backend.to_numpy(raw(q)))
    if not (_np.all(values >= 0) and _np.all(values <= high)):
        raise ValueError(f"{what} must be in the range [0, {high}]")


@traceable
def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *, weights=None,
             interpolation=None):
    """numpy.quantile over one axis, several or all; every ``method``; ties share the derivative evenly."""
    return _quantile_at(a, q, 1, "quantile", "Quantiles", axis, out, method, keepdims, weights, interpolation)


@traceable
def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *, weights=None,
               interpolation=None):
    """numpy.percentile: quantile at q / 100."""
    return _quantile_at(a, q, 100, "percentile", "Percentiles", axis, out, method, keepdims, weights, interpolation)


def _quantile_at(a, q, scale, name, noun, axis, out, method, keepdims, weights, interpolation):
    """quantile (``scale`` 1) and percentile (``scale`` 100): NumPy's checks, then the one implementation."""
    no_out(name, out=out)
    if is_complex(a):
        raise TypeError(f"gpuad.numpy.{name}: a must be an array of real numbers (NumPy defines no quantiles of "
                        f"complex values); take the quantiles of the real and imaginary parts, or of abs(a)")
    refuse_batched(f"gpuad.numpy.{name} (for q or weights)", q, weights)
    if interpolation is not None:
        method = interpolation
    _constant_q(q, name)
    if weights is not None:
        return _weighted(a, q, axis, method, keepdims, weights, scale)
    weak_q = type(q) in (int, float)
    _check_q(q, scale, noun)
    levels = raw(q) if scale == 1 else _np.true_divide(_np.asarray(backend.to_numpy(raw(q))), scale)
    return _quantile(a, levels, axis, method, keepdims, weak_q)


def _weighted(a, q, axis, method, keepdims, weights, scale):
    """The weighted form (method 'inverted_cdf', NumPy's only one), computed where the values are: per slice,
    the first element in sorted order whose share of the total weight reaches q (NumPy's inverted CDF, with its
    cdf rounding and its skipping of leading zero weights), made differentiable in ``a`` as the elements equal
    to it. The weights are constants. NumPy's value checks run where the weights are on the host; on the GPU a
    slice whose weights sum to zero (or hold NaN or inf) gives NaN instead of a stall to raise."""
    name = "quantile" if scale == 1 else "percentile"
    if method != "inverted_cdf":
        raise ValueError(f"Only method 'inverted_cdf' supports weights. Got: {method}.")
    if has_tensor((weights,)):
        raise TypeError(f"gpuad.numpy.{name}: traced weights are not supported (no derivative in the weights); "
                        "pass them as a plain array")
    xp = _xp(a)
    host_q = _host_values(q)
    if host_q is not None and not (_np.all(host_q >= 0) and _np.all(host_q <= scale)):
        raise ValueError(f"{'Quantiles' if scale == 1 else 'Percentiles'} must be in the range [0, {scale}]")
    levels = xp.asarray(raw(q)) if scale == 1 else xp.true_divide(xp.asarray(raw(q)), 100)
    shape = aval(a)[0]
    weights = asarray_like(weights, raw(a))
    host_weights = _host_values(weights)
    if host_weights is not None and _np.any(host_weights < 0):
        raise ValueError("Weights must be non-negative.")
    weights = broadcast_to(_weights_like(weights, shape, axis, normalize_axes(axis, len(shape)), name), shape)
    a, axes, shape = _leading(a, axis)
    n = aval(a)[0][0]
    if n == 0:
        raise IndexError(f"{name} of an empty slice is not supported on traced values")
    weights = raw(_leading(weights, axis)[0])
    nd = len(aval(a)[0])

    def pick(data):
        lead = data.ndim - nd  # (the batch axes of a vmap in progress; the weights are not batched)
        order = backend.argsort(data, axis=lead)
        sorted_values = xp.take_along_axis(data, order, axis=lead)
        cdf = xp.cumsum(xp.take_along_axis(xp.broadcast_to(weights, data.shape), order, axis=lead), axis=lead,
                        dtype=_np.float64)
        cdf /= xp.take(cdf, xp.asarray([-1]), axis=lead)
        invalid = xp.isnan(xp.take(cdf, xp.asarray([-1]), axis=lead))  # weights summing to zero, or NaN or inf
        host_invalid = _host_values(invalid)
        if host_invalid is not None and _np.any(host_invalid):
            raise ValueError("Weights included NaN, inf or were all zero.")
        if levels.dtype.kind == "f":  # NumPy compares in q's precision (0.4 in float32 is not 0.4)
            cdf = cdf.astype(levels.dtype)
        cdf = xp.where(cdf == 0, -1, cdf)  # leading zero weights: q = 0 picks the first element with weight
        # searchsorted(cdf, q, side="left") per slice: the count of cdf entries below q (cdf is non-decreasing),
        # a few levels at a time so that the comparison holds at most about 2^26 booleans
        flat_levels = levels.reshape((-1,) + (1,) * nd)
        cdf = xp.expand_dims(cdf, lead)
        step = builtins.max(1, (1 << 26) // builtins.max(cdf.size, 1))
        index = xp.concatenate([xp.sum(cdf < flat_levels[i:i + step], axis=lead + 1)
                                for i in range(0, len(flat_levels), step)]
                               or [xp.zeros(data.shape[:lead] + (0,) + data.shape[lead + 1:], dtype=_np.intp)],
                               axis=lead)
        picked = xp.take_along_axis(sorted_values, xp.minimum(index, n - 1), axis=lead)
        picked = picked.reshape(data.shape[:lead] + levels.shape + data.shape[lead + 1:])
        if is_float_dtype(picked.dtype):  # (integer data cannot hold NaN: NumPy raises for invalid weights)
            where_invalid = invalid.reshape(invalid.shape[:lead] + (1,) * levels.ndim + invalid.shape[lead + 1:])
            picked = backend.where(where_invalid, xp.nan, picked)
        return picked, sorted_values

    picked, sorted_values = map_values(pick, a)
    result = _elements_equal_to(a, picked, levels.ndim)
    return _finish(result, axes, shape, levels.ndim, keepdims, _nan_slices(a, sorted_values))


@traceable
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """numpy.median: the middle order statistic, or the mean of the two middle ones; ties share evenly."""
    no_out("median", out=out)
    a, axes, shape = _leading(a, axis)
    n = aval(a)[0][0]
    if n == 0:
        raise IndexError("median of an empty slice is not supported on traced values")
    sorted_values = _sorted(a)
    index = _np.array([n // 2]) if n % 2 else _np.array([n // 2 - 1, n // 2])
    middle = _order_statistics(a, sorted_values, index)
    result = sum(middle, axis=0) / len(index)
    return _finish(result, axes, shape, 0, keepdims, _nan_slices(a, sorted_values))


# ---- NaN-aware reductions ---------------------------------------------------------------------------------

def _nan_mask(a):
    value = constant(a)  # (under vmap the mask stays batched)
    return _xp(a).isnan(value) if is_float_dtype(value.dtype) else None


def _replace_nan(a, fill):
    a = asarray(a)
    mask = _nan_mask(a)
    if mask is None:
        return a, mask
    return _select(mask, fill, a), mask  # always applied: looking for a NaN first would read the values back


@traceable
def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    no_out("nansum", out=out)
    a, _ = _replace_nan(a, 0)
    return sum(a, axis, dtype, keepdims=keepdims, **_given(initial=initial, where=where))


@traceable
def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    no_out("nanprod", out=out)
    a, _ = _replace_nan(a, 1)
    return prod(a, axis, dtype, keepdims=keepdims, **_given(initial=initial, where=where))


def _valid_count(a, mask, axis, keepdims, where_mask=None):
    xp = _xp(a)
    valid = xp.ones(aval(a)[0], dtype=bool) if mask is None else ~mask
    if where_mask is not None:
        valid = valid & xp.asarray(raw(where_mask), dtype=bool)
    return xp.sum(valid, axis=normalize_axes(axis, len(aval(a)[0])), keepdims=keepdims, dtype=_np.intp)


def _float_of(a):
    dtype = aval(a)[1]
    return dtype if is_float_dtype(dtype) else _np.dtype(_np.float64)


@traceable
def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    no_out("nanmean", out=out)
    a, mask = _replace_nan(a, 0)
    count = _valid_count(a, mask, axis, keepdims, where)
    total = sum(a, axis, dtype, keepdims=keepdims, **_given(where=where))
    return total / count.astype(_float_of(total))


def _nan_extremum(name, reduce, fill):
    def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        no_out(name, out=out)
        a, mask = _replace_nan(a, fill)
        result = reduce(a, axis, keepdims=keepdims, **_given(initial=initial, where=where))
        if mask is not None and initial is None:
            all_nan = _xp(a).all(mask, axis=normalize_axes(axis, len(aval(a)[0])), keepdims=keepdims)
            result = _select(all_nan, _np.nan, result)
        return result
    fn.__name__ = name
    fn.__doc__ = f"numpy.{name}: NaNs are ignored (derivative 0 there); an all-NaN slice gives NaN."
    return traceable(fn)


nanmax = _nan_extremum("nanmax", _max, -_np.inf)
nanmin = _nan_extremum("nanmin", _min, _np.inf)


@traceable
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    """numpy.nanvar: var of the non-NaN elements (NaNs: derivative 0); real for complex ``a``, as NumPy."""
    no_out("nanvar", out=out)
    if correction is not None:
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    a, mask = _replace_nan(a, 0)
    count = _valid_count(a, mask, axis, True, where)
    if mean is None:
        centre = sum(a, axis, dtype, keepdims=True, **_given(where=where)) / count.astype(_float_of(a))
    else:
        centre = mean
    deviation = a - centre
    if mask is not None:
        deviation = _select(mask, 0, deviation)
    result = sum(abs_squared(deviation), axis, dtype, keepdims=keepdims, **_given(where=where))
    if not keepdims:
        count = _xp(a).squeeze(count, axis=normalize_axes(axis, len(aval(a)[0])))
    dof = count - ddof
    result = result / _xp(a).maximum(dof, 0).astype(_float_of(result))
    return _select(dof <= 0, _np.nan, result)


@traceable
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    """sqrt(nanvar); derivative 0 where the variance is exactly 0 (the convention of std)."""
    variance = nanvar(a, axis, dtype, out, ddof, keepdims, **_given(where=where, mean=mean, correction=correction))
    # branch-free, as std: sqrt(0 + 1) * 0 where the variance is 0
    zero = map_values(lambda v: (v == 0).astype(v.dtype), variance)
    return sqrt(variance + zero) * (1 - zero)


# ---- covariance and correlation -------------------------------------------------------------------------

def _host_values(value):
    """``value`` (weights) as a NumPy array for NumPy's value checks, or None where reading it would be a
    device-to-host transfer (on the GPU the checks are skipped: no stall to validate)."""
    value = raw(value)
    if hasattr(value, "dtype") and not backend.on_host(module_of((value,))):
        return None
    return _np.asarray(value)


def _at_least_2d(x, dtype):
    x = asarray(x)
    if dtype is not None:
        x = astype(x, dtype)
    shape = aval(x)[0]
    if len(shape) > 2:
        raise ValueError("m has more than 2 dimensions")
    return reshape(x, (1,) * (2 - len(shape)) + shape) if len(shape) < 2 else x


@traceable
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    """numpy.cov, NumPy's formula (weights: plain or traced): X X^H / fact, conjugating for complex data."""
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    if dtype is None:
        dtype = _np.result_type(aval(asarray(m))[1], _np.float64)
        if y is not None:
            dtype = _np.result_type(dtype, aval(asarray(y))[1])
    X = _at_least_2d(m, dtype)
    if not rowvar and aval(X)[0][0] != 1:
        X = transpose(X)
    if y is not None:
        Y = _at_least_2d(y, dtype)
        if not rowvar and aval(Y)[0][0] != 1:
            Y = transpose(Y)
        X = concatenate((X, Y), axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    n = aval(X)[0][1]
    w = None
    if fweights is not None:
        f = _host_values(fweights)
        if f is not None and not _np.all(f == _np.around(f)):
            raise TypeError("fweights must be integer")
        if len(_np.shape(raw(fweights))) > 1 or _np.shape(raw(fweights))[0] != n:
            raise RuntimeError("incompatible numbers of samples and fweights")
        if f is not None and _np.any(f < 0):
            raise ValueError("fweights cannot be negative")
        w = astype(asarray(asarray_like(fweights, raw(X))), _np.float64)
    if aweights is not None:
        aw = _host_values(aweights)
        if len(_np.shape(raw(aweights))) > 1 or _np.shape(raw(aweights))[0] != n:
            raise RuntimeError("incompatible numbers of samples and aweights")
        if aw is not None and _np.any(aw < 0):
            raise ValueError("aweights cannot be negative")
        aweights = asarray(asarray_like(aweights, raw(X)))
        w = aweights if w is None else w * aweights
    avg, w_sum = average(X, axis=1, weights=w, returned=True)
    w_sum = w_sum[0]
    if w is None:
        fact = n - ddof
    elif ddof == 0:
        fact = w_sum
    elif aweights is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * sum(w * aweights) / w_sum
    # NumPy's fact <= 0 -> 0, branch-free where fact is an array (it depends on the weights)
    fact = builtins.max(fact, 0.0) if isinstance(fact, (int, float)) else maximum(fact, 0.0)
    X = X - avg[:, None]
    X_T = transpose(X) if w is None else transpose(X * w)
    c = matmul(X, conj_if_complex(X_T))
    c = c * (1 / fact)
    return squeeze(c)


@traceable
def corrcoef(x, y=None, rowvar=True, bias=_np._NoValue, ddof=_np._NoValue, *, dtype=None):
    """numpy.corrcoef: cov scaled by the standard deviations (the square roots of its real diagonal), clipped to
    [-1, 1] (complex: the real and imaginary parts each, as NumPy)."""
    c = cov(x, y, rowvar, dtype=dtype)
    if len(aval(c)[0]) == 0:
        return c / c
    stddev = sqrt(real(diagonal(c)))
    c = c / stddev[:, None]
    c = c / stddev[None, :]
    clip_part = lambda part: clip(part, -1, 1)  # noqa: E731
    return by_parts(clip_part, c) if is_complex(c) else clip_part(c)
