"""Rule table for the scans: cumulative sum and cumulative product along one axis.

The other reductions (var, std, average, ptp, ...) are compositions in ``gpuad.numpy._reductions`` over the
structural primitives; scans need their own rows because composing them from slices would cost O(n^2) work or
O(n log n) taped values. ``cumsum`` is linear, and its transpose is the same scan run from the other end
(``reverse=True``). ``cumprod`` writes its JVP and VJP with traced ops (so they differentiate again), using
products that skip the first zero of each slice instead of dividing by it, so its first derivative is exact
with zeros in the input. Higher derivatives are exact away from zeros; at an input with zeros, the rule's masks
are constants and the second derivative misses the terms through a zero factor (as for ``prod``).
"""
from __future__ import annotations

from .. import backend
from ..core import raw, traced_numpy as _gnp
from ..rules import Custom, Linear
from .structural import SUM


def _cumsum_impl(xp, x, axis, reverse):
    if not reverse:
        return xp.cumsum(x, axis=axis)
    return xp.flip(xp.cumsum(xp.flip(x, axis), axis=axis), axis)


CUMSUM = Linear(
    "cumsum",
    _cumsum_impl,
    lambda ct, saved, params, avals, k: CUMSUM.bind(ct, axis=params["axis"], reverse=not params["reverse"]),
    format=lambda a, p: f"cumsum({a[0]}, axis={p['axis']}{', reverse=True' if p['reverse'] else ''})",
    adjoint=lambda k, ct, a, p: f"cumsum({ct}, axis={p['axis']}{'' if p['reverse'] else ', reverse=True'})")




def _zero_masks(x, axis):
    """Per slice along ``axis``: (before, first) masks of the positions before the slice's first zero and of
    that first zero itself; None when ``x`` has no zero at all (the common case, which can divide by x)."""
    xr = raw(x)
    xp = backend.array_module(xr)
    is_zero = xr == 0
    if not bool(xp.any(is_zero)):
        return None
    zeros_so_far = xp.cumsum(is_zero, axis=axis)
    return zeros_so_far == 0, is_zero & (zeros_so_far == 1)


def _without_first_zero(x, first, axis):
    """cumprod of ``x`` with the first zero of each slice replaced by 1: from that zero on, it is
    d out_i / d x_zero (the product of every other factor up to i)."""
    return CUMPROD.bind(_gnp().where(first, 1, x), axis=axis)


def _cumprod_jvp(primals, tangents, out, params):
    (x,), (t,), axis = primals, tangents, params["axis"]
    masks = _zero_masks(x, axis)
    if masks is None:  # d out_i = out_i * sum_{j <= i} t_j / x_j
        return out * CUMSUM.bind(t / x, axis=axis, reverse=False)
    gnp = _gnp()
    before, first = masks
    # Before the first zero the quotient form holds; from it on only the zero's own tangent survives
    # (every other term still has that zero as a factor).
    head = out * CUMSUM.bind(t / gnp.where(before, x, 1), axis=axis, reverse=False)
    t_first = SUM.bind(gnp.where(first, t, 0), axis=(axis,), keepdims=True)
    return gnp.where(before, head, t_first * _without_first_zero(x, first, axis))


def _cumprod_vjp(ct, saved, params, avals, needed):
    (x, out), axis = saved, params["axis"]
    # grad_j = sum_{i >= j} ct_i * d out_i / d x_j, a reversed cumsum
    tail = CUMSUM.bind(ct * out, axis=axis, reverse=True)
    masks = _zero_masks(x, axis)
    if masks is None:
        return [tail / x]
    gnp = _gnp()
    before, first = masks
    at_zero = CUMSUM.bind(ct * _without_first_zero(x, first, axis), axis=axis, reverse=True)
    # Past the first zero, every d out_i / d x_j still has that zero as a factor: 0 there.
    return [gnp.where(before, tail / gnp.where(before, x, 1), gnp.where(first, at_zero, 0))]


CUMPROD = Custom(
    "cumprod",
    lambda xp, x, axis: xp.cumprod(x, axis=axis),
    _cumprod_jvp,
    _cumprod_vjp,
    saves=("x", "out"))
