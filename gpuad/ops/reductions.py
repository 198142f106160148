"""Rule table for the reductions: sum, max and min (amax, amin) and prod over a tuple of axes.

``sum`` is linear: its transpose broadcasts the cotangent back over the input (``expand_reduced``). max and min
have hand-written JVP/VJP in traced ops that share the derivative evenly among tied elements (as JAX does);
prod's rules use the product of the others as ``out / x``, exact at every order for inputs without zeros
(``gpuad.numpy.prod`` composes inputs holding a zero from multiplies instead). The statistics built from these
(mean, var, std, average, ptp) are compositions in ``gpuad.numpy._reductions``.
"""
from __future__ import annotations

from .. import backend
from ..core import aval, raw
from ..rules import Custom, Linear
from .structural import BROADCAST_TO, RESHAPE


def _axis_text(params):
    return ", ".join(f"{k}={v!r}" for k, v in params.items() if v not in (None, False))


def _call(name):
    return lambda args, params: f"{name}({', '.join(args + ([_axis_text(params)] if _axis_text(params) else []))})"


def keepdims_shape(shape, axis):
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


def expand_reduced(value, axis, keepdims, shape):
    """A reduced value (or its cotangent) broadcast back over the input ``shape``."""
    if not keepdims:
        value = RESHAPE.bind(value, shape=keepdims_shape(shape, axis))
    return BROADCAST_TO.bind(value, shape=shape)


SUM = Linear(
    "sum",
    lambda xp, x, axis, keepdims: xp.sum(x, axis=axis, keepdims=keepdims),
    lambda ct, saved, params, avals, k: expand_reduced(ct, params["axis"], params["keepdims"], avals[0][0]),
    format=_call("sum"),
    adjoint=lambda k, ct, a, p: f"broadcast_to({ct}, <shape of {a[0]}>)")


def _extremum(name, reduce):
    """max/min over axes. Ties share the derivative evenly (mean over the arg-max set), as in JAX."""

    def tie_weights(x, out, axis, keepdims):
        x, out = raw(x), raw(out)
        xp = backend.array_module(x)
        full = out if keepdims else xp.reshape(out, keepdims_shape(x.shape, axis))
        mask = (x == full).astype(x.dtype)
        return mask / xp.sum(mask, axis=axis, keepdims=True)

    def jvp(primals, tangents, out, params):
        (x,), (t,) = primals, tangents
        w = tie_weights(x, out, params["axis"], params["keepdims"])
        return SUM.bind(t * w, axis=params["axis"], keepdims=params["keepdims"])

    def vjp(ct, saved, params, avals, needed):
        x, out = saved
        w = tie_weights(x, out, params["axis"], params["keepdims"])
        return [expand_reduced(ct, params["axis"], params["keepdims"], avals[0][0]) * w]

    return Custom(name, lambda xp, x, axis, keepdims: reduce(xp)(x, axis=axis, keepdims=keepdims), jvp, vjp)


AMAX = _extremum("amax", lambda xp: xp.max)
AMIN = _extremum("amin", lambda xp: xp.min)


def _prod_jvp(primals, tangents, out, params):
    (x,), (t,) = primals, tangents
    axis, keepdims = params["axis"], params["keepdims"]
    return SUM.bind(t * expand_reduced(out, axis, keepdims, aval(x)[0]) / x, axis=axis, keepdims=keepdims)


def _prod_vjp(ct, saved, params, avals, needed):
    x, out = saved
    axis, keepdims, shape = params["axis"], params["keepdims"], avals[0][0]
    return [expand_reduced(ct * out, axis, keepdims, shape) / x]


# prod's rules use the product of the others as out / x, exact at every order for inputs without zeros;
# gpuad.numpy.prod records inputs that hold a zero as a tree of multiplies instead (exact there too).
PROD = Custom("prod", lambda xp, x, axis, keepdims: xp.prod(x, axis=axis, keepdims=keepdims),
              _prod_jvp, _prod_vjp, saves=("x", "out"))
