"""Rule table for the nonlinear reductions: max and min (amax, amin) and prod over a tuple of axes.

``sum`` is linear, so it is a row of ``gpuad.ops.linear`` (beside broadcast_to, its transpose). max and min
have hand-written JVP/VJP in traced ops that share the derivative evenly among tied elements (as JAX does);
prod's rules use the product of the others as ``out / x``, exact at every order for inputs without zeros
(``gpuad.numpy.prod`` composes traced floating-point products from multiplies instead, so zeros need no check
of the values: a check would read them back from the GPU). The statistics built from these
(mean, var, std, average, ptp) are compositions in ``gpuad.numpy._reductions``.
"""
from __future__ import annotations

from .. import backend
from ..core import aval, map_values
from ..rules import Custom, Linear
from .linear import SUM, call_format, expand_reduced, shifted


def _extremum(name, reduce):
    """max/min over axes. Ties share the derivative evenly (mean over the arg-max set), as in JAX."""

    def tie_weights(x, out, axis, keepdims):
        ndim = len(aval(x)[0])
        axis = tuple(a - ndim for a in axis)  # from the end: the same axes under vmap's leading batch axes

        def weights(x, out):
            xp = backend.array_module(x)
            full = out if keepdims else xp.expand_dims(out, axis)
            mask = (x == full).astype(x.dtype)
            return mask / xp.sum(mask, axis=axis, keepdims=True)
        return map_values(weights, x, out)

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
AMAX.batch = lambda args, batched, p: AMAX.bind(args[0], axis=shifted(p["axis"]), keepdims=p["keepdims"])
AMIN.batch = lambda args, batched, p: AMIN.bind(args[0], axis=shifted(p["axis"]), keepdims=p["keepdims"])


def _prod_jvp(primals, tangents, out, params):
    (x,), (t,) = primals, tangents
    axis, keepdims = params["axis"], params["keepdims"]
    return SUM.bind(t * expand_reduced(out, axis, keepdims, aval(x)[0]) / x, axis=axis, keepdims=keepdims)


def _prod_vjp(ct, saved, params, avals, needed):
    x, out = saved
    axis, keepdims, shape = params["axis"], params["keepdims"], avals[0][0]
    return [expand_reduced(ct * out, axis, keepdims, shape) / x]


# prod's rules use the product of the others as out / x, exact at every order for inputs without zeros;
# gpuad.numpy.prod records traced floating-point inputs as a tree of multiplies instead (exact with zeros too).
PROD = Custom("prod", lambda xp, x, axis, keepdims: xp.prod(x, axis=axis, keepdims=keepdims),
              _prod_jvp, _prod_vjp, saves=("x", "out"))
PROD.batch = lambda args, batched, p: PROD.bind(args[0], axis=shifted(p["axis"]), keepdims=p["keepdims"])
