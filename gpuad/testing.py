"""Numerical gradient checks: ``check_grads`` and its two halves, ``check_jvp`` and ``check_vjp``.

Forward mode is checked against central differences (J v ~ (f(x + eps v) - f(x - eps v)) / 2 eps); reverse mode
by the inner-product identity <u, J v> = <J^T u, v>, with J v again from central differences, so each mode is
checked against numbers, not against the other mode. ``order=2`` repeats the checks on the derivative functions
themselves (forward and reverse over both), which covers second derivatives.

Complex arguments and outputs are checked the same way: random directions have random real and imaginary parts
(so both directions of each complex input are covered), and the inner product is JAX's real pairing
<a, b> = Re(sum(a * b)), under which reverse mode is the transpose of forward mode.
"""
from __future__ import annotations

import numpy as _np

from . import backend, tree
from .transforms import jvp, vjp


def _widest(dtype):
    return _np.complex128 if _np.dtype(dtype).kind == "c" else _np.float64


def _leaves(value):
    return [backend.to_numpy(v).astype(_widest(v.dtype)) if hasattr(v, "shape") else _np.asarray(v)[()]
            for v in tree.flatten(value)[0]]


def _random_like(value, rng):
    leaves, treedef = tree.flatten(value)
    out = []
    for v in leaves:
        module = backend.array_module(v)
        shape, dtype = getattr(v, "shape", ()), getattr(v, "dtype", _np.float64)
        draw = rng.standard_normal(shape)
        if _np.dtype(dtype).kind == "c":
            draw = draw + 1j * rng.standard_normal(shape)
        out.append(module.asarray(draw, dtype=dtype))
    return tree.unflatten(treedef, out)


def _axpy(a, x, y):
    """y + a * x over matching trees, in y's dtype (bfloat16 times a Python float would be float64 in NumPy)."""
    xl, _ = tree.flatten(x)
    yl, treedef = tree.flatten(y)
    out = []
    for xi, yi in zip(xl, yl):
        r = yi + a * xi
        dtype = getattr(yi, "dtype", None)
        out.append(r.astype(dtype) if dtype is not None and getattr(r, "dtype", dtype) != dtype else r)
    return tree.unflatten(treedef, out)


def _vdot(a, b):
    """<a, b> = Re(sum(a * b)): the pairing under which reverse mode transposes forward mode (real or complex)."""
    return float(sum(_np.real(_np.sum(_np.multiply(x, y))) for x, y in zip(_leaves(a), _leaves(b))))


def _norm(a):
    return float(_np.sqrt(sum(_np.sum(_np.abs(x) ** 2) for x in _leaves(a))))


def _numerical_jvp(fun, args, tangents, eps):
    plus = fun(*_axpy(eps, tangents, args))
    minus = fun(*_axpy(-eps, tangents, args))
    lp, treedef = tree.flatten(plus)
    lm, _ = tree.flatten(minus)
    return tree.unflatten(treedef, [(backend.to_numpy(p) - backend.to_numpy(m)) / (2 * eps)
                                    for p, m in zip(lp, lm)])


def _assert_close(actual, expected, atol, rtol, what):
    for i, (a, b) in enumerate(zip(_leaves(actual), _leaves(expected))):
        if _np.shape(a) != _np.shape(b):
            raise AssertionError(f"{what}: leaf {i} has shape {_np.shape(a)}, expected {_np.shape(b)}")
        if not _np.allclose(a, b, atol=atol, rtol=rtol):
            err = _np.max(_np.abs(a - b))
            raise AssertionError(f"{what}: leaf {i} differs by up to {err:.3g}\n  AD:        {a}\n  numerical: {b}")


# Central-difference step and tolerances per floating dtype (the least precise argument decides): the step
# balances truncation error (eps^2) against rounding error (machine epsilon / eps).
# float16 (eps 2^-10) and bfloat16 (2^-7): the function is evaluated in the narrow type, so the tolerance is the
# dtype's rounding over the step. bfloat16's step is 1/16, not larger: the perturbed inputs are rounded to
# bfloat16 too, and a larger step meets more curvature (measured over 300 random checks of order 1: no false
# failure at these settings; order 2 in bfloat16 is noise, float16 passes it).
_DEFAULTS = {"float64": (1e-6, 1e-6, 1e-6), "float32": (1e-3, 1e-2, 1e-2), "float16": (1e-1, 1e-1, 1e-1),
             "bfloat16": (6.25e-2, 3e-1, 3e-1)}


_COMPLEX_PARTS = {"complex64": "float32", "complex128": "float64"}


def defaults_for(args):
    """(eps, atol, rtol) for checking derivatives at ``args``: float64's unless an argument is less precise."""
    worst = "float64"
    for v in tree.flatten(tuple(args))[0]:
        name = getattr(getattr(v, "dtype", None), "name", "float64")
        name = _COMPLEX_PARTS.get(name, name)  # complex: the precision of its parts
        if name in _DEFAULTS and _DEFAULTS[name][0] > _DEFAULTS[worst][0]:
            worst = name
    return _DEFAULTS[worst]


def _fill(args, eps, atol, rtol):
    d_eps, d_atol, d_rtol = defaults_for(args)
    return (d_eps if eps is None else eps, d_atol if atol is None else atol, d_rtol if rtol is None else rtol)


def check_jvp(fun, args, atol=None, rtol=None, eps=None, rng=None):
    """Forward mode against central differences along a random direction (step and tolerances default to the
    arguments' dtype: see ``defaults_for``)."""
    eps, atol, rtol = _fill(args, eps, atol, rtol)
    rng = rng or _np.random.default_rng(0)
    tangents = _random_like(tuple(args), rng)
    _, ad = jvp(fun, tuple(args), tangents)
    numeric = _numerical_jvp(fun, tuple(args), tangents, eps)
    _assert_close(ad, numeric, atol, rtol, "jvp vs central differences")


def check_vjp(fun, args, atol=None, rtol=None, eps=None, rng=None):
    """Reverse mode by <u, J v> = <J^T u, v> for random u and v, J v by central differences."""
    eps, atol, rtol = _fill(args, eps, atol, rtol)
    rng = rng or _np.random.default_rng(1)
    out, vjp_fn = vjp(fun, *args)
    u = _random_like(out, rng)
    v = _random_like(tuple(args), rng)
    jt_u = vjp_fn(u)
    jv = _numerical_jvp(fun, tuple(args), v, eps)
    lhs = _vdot(u, jv)
    rhs = _vdot(jt_u, v)
    # Scale by the sizes of the factors, not of the (possibly cancelling) inner product itself.
    scale = min(_norm(u) * _norm(jv), _norm(jt_u) * _norm(v))
    if not abs(lhs - rhs) <= atol + rtol * scale:
        raise AssertionError(f"vjp fails the inner-product identity: <u, J v> = {lhs!r} (numerical) but "
                             f"<J^T u, v> = {rhs!r} (reverse mode)")


def check_grads(fun, args, order=2, modes=("fwd", "rev"), atol=None, rtol=None, eps=None, rng=None):
    """Check ``fun``'s derivatives at ``args`` in each mode, recursively up to ``order``.

    Each level checks the JVP and/or VJP numerically; for ``order > 1`` the derivative functions
    ``x -> jvp(fun, x, v)[1]`` and ``x -> vjp(fun, x)[1](u)`` are checked in turn, covering forward-over-forward,
    reverse-over-forward, forward-over-reverse and reverse-over-reverse.
    """
    rng = rng or _np.random.default_rng(0)
    args = tuple(args)
    eps, atol, rtol = _fill(args, eps, atol, rtol)
    for mode in modes:
        if mode == "fwd":
            check_jvp(fun, args, atol, rtol, eps, rng)
            if order > 1:
                v = _random_like(args, rng)
                check_grads(lambda *a: jvp(fun, a, v)[1], args, order - 1, modes, atol, rtol, eps, rng)
        elif mode == "rev":
            check_vjp(fun, args, atol, rtol, eps, rng)
            if order > 1:
                u = _random_like(fun(*args), rng)
                check_grads(lambda *a: vjp(fun, *a)[1](u), args, order - 1, modes, atol, rtol, eps, rng)
        else:
            raise ValueError(f"unknown mode {mode!r}; use 'fwd' and/or 'rev'")


def sample(domain, shape, rng, dtype=_np.float64):
    """Random values for one argument inside a rule row's ``domain`` hint (see ``gpuad.ops.elementwise.Elementwise``):
    None: uniform in (-2, 2); (low, high): uniform in that interval; "nonzero": |value| in (0.5, 2) with either
    sign; "bool": a random boolean mask."""
    if domain == "bool":
        return rng.random(shape) > 0.5
    if domain == "nonzero":
        return (rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)
    low, high = domain if domain is not None else (-2.0, 2.0)
    return _np.asarray(rng.uniform(low, high, shape), dtype=dtype)
