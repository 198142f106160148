"""Rule table for the scans: cumulative sum, cumulative product and the first-order linear recurrence, along one
axis.

Scans need their own rows (the reductions are in ``reductions``) because composing them from slices would
cost O(n^2) work or O(n log n) taped values. ``cumsum`` is linear, and its transpose is the same scan run from
the other end (``reverse=True``). ``recurrence`` is h_i = a_i + b_i h_(i-1) (``reverse``: h_(i+1)), linear in
``a``; its JVP and VJP are recurrences again (the transpose runs the other way), with multiplies and shifts, no
division. ``cumprod`` is y_i = x_i y_(i-1): its JVP and VJP are recurrences too, so every derivative of every order
is exact with zeros in the input, and no value is looked at to choose a path (a look would stall the GPU).
"""
from __future__ import annotations

from .. import backend
from ..core import aval, raw
from ..rules import Custom, Linear
from .linear import GETITEM, SCATTER_ADD, batch_all


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
CUMSUM.batch = lambda args, batched, p: CUMSUM.bind(args[0], axis=p["axis"] + 1, reverse=p["reverse"])


# ---- the linear recurrence h_i = a_i + b_i h_(i-1) ---------------------------------------------------------

def _recurrence_impl(xp, a, b, axis, reverse):
    """Hillis-Steele over the affine maps h -> A + B h: after the step with shift s, (A_i, B_i) compose the 2s
    maps ending at i. log2(n) vector steps of the backend (no host loop over elements, no value read back)."""
    if reverse:
        return xp.flip(_recurrence_impl(xp, xp.flip(a, axis), xp.flip(b, axis), axis, False), axis)
    n = a.shape[axis]
    head = (slice(None),) * axis
    shift = 1
    while shift < n:
        now, before = head + (slice(shift, n),), head + (slice(0, n - shift),)
        a_next = xp.concatenate([a[head + (slice(0, shift),)], a[now] + b[now] * a[before]], axis=axis)
        if shift * 2 < n:
            b = xp.concatenate([b[head + (slice(0, shift),)], b[now] * b[before]], axis=axis)
        a = a_next
        shift *= 2
    return a


def shift(v, axis, reverse=False):
    """``v`` moved one step along ``axis`` (forward: v_(i-1) at i; reverse: v_(i+1)), zero-filled: two linear rows."""
    shape = aval(v)[0]
    n = shape[axis]
    if n == 0:
        return v
    head = (slice(None),) * axis
    src, dst = (slice(0, n - 1), slice(1, n)) if not reverse else (slice(1, n), slice(0, n - 1))
    return SCATTER_ADD.bind(GETITEM.bind(v, index=head + (src,)), index=head + (dst,), shape=shape)


def _recurrence_jvp(primals, tangents, out, params):
    (_, b), (ta, tb) = primals, tangents
    axis, reverse = params["axis"], params["reverse"]
    source = ta
    if tb is not None:
        term = tb * shift(out, axis, reverse)  # d h_i = d a_i + d b_i h_(i-1) + b_i d h_(i-1)
        source = term if source is None else source + term
    if source is None:
        return None
    return RECURRENCE.bind(source, b, axis=axis, reverse=reverse)


def _recurrence_vjp(ct, saved, params, avals, needed):
    b, out = saved
    axis, reverse = params["axis"], params["reverse"]
    # the transpose: u_j = ct_j + b_(j+1) u_(j+1) (the recurrence run the other way); grad b_j = u_j h_(j-1)
    u = RECURRENCE.bind(ct, shift(b, axis, not reverse), axis=axis, reverse=not reverse)
    return [u if needed[0] else None, u * shift(out, axis, reverse) if needed[1] else None]


RECURRENCE = Custom("recurrence", _recurrence_impl, _recurrence_jvp, _recurrence_vjp, saves=("y", "out"))


def _batch_recurrence(args, batched, params):
    a, b = batch_all(args, batched)  # (vmap: both operands with the batch axis in front)
    return RECURRENCE.bind(a, b, axis=params["axis"] + 1, reverse=params["reverse"])


RECURRENCE.batch = _batch_recurrence


# ---- cumprod ------------------------------------------------------------------------------------------------

def _exclusive(out, axis):
    """y_(i-1), with the empty product 1 at i = 0: the product of the elements before each."""
    shape = aval(out)[0]
    first = (slice(None),) * axis + (slice(0, 1),)
    one_hot = _constant_first(raw(out), shape, axis, first)
    return shift(out, axis) + one_hot


def _constant_first(value, shape, axis, first):
    xp = backend.array_module(value)
    e = xp.zeros(shape, dtype=value.dtype)
    e[first] = 1
    return e


def _cumprod_jvp(primals, tangents, out, params):
    (x,), (t,), axis = primals, tangents, params["axis"]
    # y_i = x_i y_(i-1): d y_i = d x_i y_(i-1) + x_i d y_(i-1), a recurrence (no division, exact with zeros)
    return RECURRENCE.bind(t * _exclusive(out, axis), x, axis=axis, reverse=False)


def _cumprod_vjp(ct, saved, params, avals, needed):
    (x, out), axis = saved, params["axis"]
    # grad x_j = y_(j-1) u_j with u_j = ct_j + x_(j+1) u_(j+1): the transposed recurrence
    u = RECURRENCE.bind(ct, shift(x, axis, True), axis=axis, reverse=True)
    return [u * _exclusive(out, axis)]


CUMPROD = Custom(
    "cumprod",
    lambda xp, x, axis: xp.cumprod(x, axis=axis),
    _cumprod_jvp,
    _cumprod_vjp,
    saves=("x", "out"))
CUMPROD.batch = lambda args, batched, p: CUMPROD.bind(args[0], axis=p["axis"] + 1)
