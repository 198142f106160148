"""gpuad.numpy's elementwise functions: one per row of ``gpuad.ops.elementwise``, plus those with parameters.

Each row of the elementwise rule table becomes the NumPy function of its name (sin, add, maximum, ...), which
binds the row. ``where`` and ``clip`` add NumPy's optional arguments around their rows; NumPy's other names for
rows (abs, true_divide, mod, degrees, ...) are the same functions; float_power, round, around and nan_to_num
turn their parameters into calls of rows. Plain (untraced) arguments with keywords go to the
backend's own function.

Conventions: round, around, fix and floor_divide have derivative 0; nan_to_num has derivative 1 where its input
is finite and 0 where a value was replaced.

Complex values: the rows carry them (JAX's convention, see ``gpuad.ops.elementwise``) and refuse them where NumPy
does; nan_to_num treats the real and imaginary parts apart, as NumPy; float_power computes in complex128 when
an argument is complex. The helpers ``is_complex``, ``conj_if_complex``, ``abs_squared`` and ``by_parts`` are
the other families' one way to conjugate, square a magnitude or act part by part.
"""
from __future__ import annotations

import operator

import numpy as _np

from .. import backend
from ..core import aval, bind, constant, raw
from ..ops import elementwise as _rows
from ..ops.elementwise import Elementwise, conj_if_complex, is_complex, real_if_complex  # noqa: F401 (re-exported)
from ._dispatch import array_from, has_tensor, module_of, no_out, traceable
from ._shapes import astype


def _elementwise(prim: Elementwise, name: str):
    arity = prim.arity

    def fn(*args, **kwargs):
        if kwargs or len(args) != arity:
            if len(args) != arity:
                raise TypeError(f"gpuad.numpy.{name} takes {arity} array argument(s), got {len(args)}")
            if has_tensor(args):
                raise TypeError(f"gpuad.numpy.{name}: keyword arguments {sorted(kwargs)} are not supported on "
                                f"traced values (gpuad is out-of-place; cast with astype instead of dtype=)")
            return getattr(module_of(args), prim.name)(*args, **kwargs)
        for a in args:  # (the operators call this too: one pass, no new list unless an argument is a list)
            if type(a) is list or type(a) is tuple:
                return bind(prim, [array_from(v) for v in args], {})
        return bind(prim, args, {})

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"numpy.{name}, differentiable. Forward: {prim.forward.source}; partial derivatives: "
                  + ", ".join(f"d/d{a} = {p.source if p else 'none'}" for a, p in zip(prim.args, prim.partials)))
    return fn


_ROW_FUNCTIONS = {prim.name: _elementwise(prim, prim.name) for prim in vars(_rows).values()
                  if isinstance(prim, Elementwise) and prim.name not in ("where", "clip", "nan_to_num")}
globals().update(_ROW_FUNCTIONS)

# NumPy's other names for rows (same semantics, so they are the same functions).
abs = absolute  # noqa: F821 (generated above)
def fabs(x):
    """numpy.fabs: abs of real values (NumPy refuses complex input; so does this)."""
    if aval(x)[1] is not None and aval(x)[1].kind == "c":
        raise TypeError("fabs is not defined for complex values (as in NumPy); use gpuad.numpy.abs")
    return absolute(x)  # noqa: F821 (row)
true_divide = divide  # noqa: F821
mod = remainder  # noqa: F821
degrees = rad2deg  # noqa: F821
radians = deg2rad  # noqa: F821
conj = conjugate  # noqa: F821
fix = trunc  # noqa: F821 (rounds toward zero, as numpy.fix does)

_where3 = _elementwise(_rows.WHERE, "where")
_clip3 = _elementwise(_rows.CLIP, "clip")


def where(condition, x=None, y=None):
    if x is None and y is None:
        return module_of((condition,)).nonzero(raw(condition))
    condition = constant(condition)
    dtype = getattr(condition, "dtype", None)
    if dtype is not None and dtype != _np.bool_:
        condition = condition != 0  # its truth, as NumPy takes it: the row's partials read the condition as 0/1
    return _where3(condition, x, y)


def clip(a, a_min=None, a_max=None, **kwargs):
    module = module_of((a, a_min, a_max))
    if not has_tensor((a, a_min, a_max)) and (kwargs or backend.matches_numpy(module, "clip", (a, a_min, a_max))):
        return module.clip(a, a_min, a_max, **kwargs)
    no_out("clip", **kwargs)
    if a_min is None and a_max is None:
        raise ValueError("clip: one of a_min and a_max must be given")
    if a_min is None:
        return minimum(a, a_max)  # noqa: F821
    if a_max is None:
        return maximum(a, a_min)  # noqa: F821
    return _clip3(a, a_min, a_max)


@traceable
def float_power(x1, x2):
    """numpy.float_power: power in float64, or complex128 where an argument is complex (as NumPy)."""
    widest = _np.complex128 if is_complex(x1) or is_complex(x2) else _np.float64
    return power(astype(x1, widest), astype(x2, widest) if aval(x2)[1] is not None else x2)  # noqa: F821 (row)


@traceable
def round(a, decimals=0, out=None):  # noqa: A001 (numpy.round)
    """numpy.round: round half to even at ``decimals`` places (negative: to the left of the point), computed as
    NumPy does (scale, rint, unscale). Derivative 0."""
    no_out("round", out=out)
    decimals = operator.index(decimals)
    if decimals == 0:
        return rint(a)  # noqa: F821
    if decimals > 0:
        factor = 10.0 ** decimals
        return rint(a * factor) / factor  # noqa: F821
    factor = 10.0 ** -decimals
    return rint(a / factor) * factor  # noqa: F821


around = round


@traceable
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """numpy.nan_to_num: nan -> ``nan``, +inf -> ``posinf``, -inf -> ``neginf`` (defaults: 0 and the dtype's
    largest finite values). Derivative 1 where ``x`` is finite, 0 where a value was replaced. Complex ``x``: the
    real and imaginary parts each, as NumPy does."""
    if is_complex(x):
        return by_parts(lambda part: nan_to_num(part, copy, nan, posinf, neginf), x)
    if aval(x)[1] is not None and aval(x)[1].name in backend.EXTENSION_FLOATS:
        return x  # NumPy leaves bfloat16 (not an inexact type to it) as it is, on every backend
    out = _rows.NAN_TO_NUM.bind(x)
    xr = constant(x)
    # The row applies NumPy's defaults; other replacement values are constants swapped in (derivative 0).
    if nan != 0:
        out = where(xr != xr, nan, out)
    if posinf is not None:
        out = where(xr == _np.inf, posinf, out)
    if neginf is not None:
        out = where(xr == -_np.inf, neginf, out)
    return out


# ---- complex helpers of the other families -------------------------------------------------------------------

def abs_squared(x):
    """|x|^2 as NumPy's var computes it: x * x, or Re(x * conj(x)), a real array, for complex ``x``."""
    return real(x * conjugate(x)) if is_complex(x) else x * x  # noqa: F821 (rows)


def by_parts(fn, z):
    """``fn`` applied to the real and the imaginary part of complex ``z`` separately (NumPy's way for nan_to_num
    and corrcoef's clip), put back together as fn(Re z) + i fn(Im z)."""
    return fn(real(z)) + 1j * fn(imag(z))  # noqa: F821 (rows)


@traceable
def angle(z, deg=False):
    """numpy.angle: arctan2(imag, real) for complex ``z`` (derivative Im(conj(z) z') / |z|^2); of real input 0
    for x >= +0 and pi (180) for x < 0 and -0.0, piecewise constant, so a plain array (no derivative)."""
    value = raw(z)
    if value.dtype.kind != "c":
        return module_of((value,)).angle(value, deg=deg)
    result = arctan2(imag(z), real(z))  # noqa: F821 (rows)
    return result * (180 / _np.pi) if deg else result


@traceable
def real_if_close(a, tol=100):
    """numpy.real_if_close: the real part when every imaginary part is within ``tol`` machine epsilons of zero
    (a decision on values, so it reads them), else ``a`` itself."""
    value = raw(a)
    if value.dtype.kind != "c":
        return a
    if module_of((value,)).real_if_close(value, tol=tol).dtype.kind == "c":
        return a
    return real(a)  # noqa: F821 (row)


__all__ = [*_ROW_FUNCTIONS, "angle", "real_if_close", "abs", "fabs", "true_divide", "mod", "degrees", "radians", "conj", "fix", "where",
           "clip", "float_power", "round", "around", "nan_to_num"]
