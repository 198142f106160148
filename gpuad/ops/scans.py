"""Rule table for the scans: cumulative sum and cumulative product along one axis.

Scans need their own rows (the reductions are in ``reductions``) because composing them from slices would
cost O(n^2) work or O(n log n) taped values. ``cumsum`` is linear, and its transpose is the same scan run from the other end
(``reverse=True``). ``cumprod``'s JVP and VJP are written with traced ops (so they differentiate again) in the
quotient form, for inputs without zeros; ``gpuad.numpy.cumprod`` composes inputs that hold a zero from
multiplies instead, so every order is exact with zeros too.
"""
from __future__ import annotations

from ..rules import Custom, Linear


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


def _cumprod_jvp(primals, tangents, out, params):
    (x,), (t,), axis = primals, tangents, params["axis"]
    return out * CUMSUM.bind(t / x, axis=axis, reverse=False)  # d out_i = out_i * sum_{j <= i} t_j / x_j


def _cumprod_vjp(ct, saved, params, avals, needed):
    (x, out), axis = saved, params["axis"]
    return [CUMSUM.bind(ct * out, axis=axis, reverse=True) / x]  # grad_j = sum_{i >= j} ct_i out_i / x_j


# The quotient rules above are exact at every order for inputs without zeros; gpuad.numpy.cumprod records an
# input holding a zero as a log-depth scan of multiplies instead, whose derivatives are exact there too.
CUMPROD = Custom(
    "cumprod",
    lambda xp, x, axis: xp.cumprod(x, axis=axis),
    _cumprod_jvp,
    _cumprod_vjp,
    saves=("x", "out"))
CUMPROD.batch = lambda args, batched, p: CUMPROD.bind(args[0], axis=p["axis"] + 1)
