"""The function transforms, with JAX's names and semantics: grad, value_and_grad, vjp and jvp.

Each transform opens a fresh trace (a Tape for reverse mode, a ForwardTrace for forward mode), boxes the
chosen arguments' leaves, runs the function, and unboxes the result at its own level only, so transforms nest
to any depth (grad of grad, jvp of grad, vjp of jvp) without confusing their perturbations.
"""
from __future__ import annotations

import functools

import operator

from . import backend, tree
from .core import Tensor, aval, is_float_dtype, lower, raw
from .forward import ForwardTrace
from .tape import Tape, as_array


def _check_differentiable(leaves, transform, where, holomorphic=False):
    for v in leaves:
        dtype = aval(v)[1]
        if holomorphic and (dtype is None or dtype.kind != "c"):
            raise TypeError(f"{transform} with holomorphic=True requires complex inputs, but {where} has dtype "
                            f"{dtype}; pass a complex array (e.g. x.astype(complex)) or drop holomorphic=True")
        if not is_float_dtype(dtype):
            raise TypeError(
                f"{transform} requires floating-point inputs, but {where} has dtype {dtype}; pass a float array "
                f"(e.g. x.astype(float)) or close over integer and boolean values instead of differentiating them")


def check_output_dtype(transform, dtype, holomorphic):
    """JAX's rule for reverse-mode transforms: a complex output needs ``holomorphic=True`` (and then must be
    complex); vjp takes any output."""
    is_complex = dtype is not None and dtype.kind == "c"
    if holomorphic and not is_complex:
        raise TypeError(f"{transform} with holomorphic=True requires a complex output, but it has dtype {dtype}")
    if is_complex and not holomorphic:
        raise TypeError(f"{transform} requires a real-valued output, but it has dtype {dtype}: for a holomorphic "
                        f"function pass holomorphic=True; for a non-holomorphic one with complex output, use "
                        f"gpuad.vjp (or differentiate its real and imaginary parts)")


def _argnums(argnums, nargs, transform):
    try:
        nums = (operator.index(argnums),) if not isinstance(argnums, (tuple, list)) else tuple(argnums)
        nums = tuple(operator.index(n) for n in nums)
    except TypeError:
        raise TypeError(f"{transform}: argnums must be an int or a tuple of ints, got {argnums!r}") from None
    for n in nums:
        if not -nargs <= n < nargs:
            raise ValueError(f"{transform}: argnums {argnums!r} does not fit a call with {nargs} positional "
                             f"argument(s)")
    return tuple(n % nargs for n in nums)


class _Recorded:
    """A function run on a fresh Tape with the leaves of some arguments boxed as its inputs: the reverse-mode
    half that grad, value_and_grad and vjp share."""

    def __init__(self, fun, args, kwargs, argnums, transform, persistent, holomorphic=False):
        self.tape = tape = Tape(persistent=persistent)
        args = list(args)
        self.sources = []  # (treedef, boxes) per differentiated argument
        tape.start()
        try:
            for n in argnums:
                leaves, treedef = tree.flatten(args[n])
                leaves = [as_array(v) for v in leaves]
                _check_differentiable(leaves, transform, f"argument {n}", holomorphic)
                boxes = [tape.box_input(v) for v in leaves]
                self.sources.append((treedef, boxes))
                args[n] = tree.unflatten(treedef, boxes)
            self.result = fun(*args, **kwargs)
        finally:
            tape.stop()

    def lowered(self, value):
        """``value`` (a pytree) as seen outside this tape."""
        leaves, treedef = tree.flatten(value)
        return tree.unflatten(treedef, [lower(v, self.tape) for v in leaves])

    def pull(self, targets, cotangents):
        """One cotangent pytree per differentiated argument (the tape's one entry point does the work)."""
        flat = [b for _, boxes in self.sources for b in boxes]
        grads = self.tape.pull(targets, cotangents, flat)
        out, i = [], 0
        for treedef, boxes in self.sources:
            out.append(tree.unflatten(treedef, grads[i:i + len(boxes)]))
            i += len(boxes)
        return out


def _split_aux(result, has_aux):
    if not has_aux:
        return result, None
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(f"with has_aux=True the function must return a pair (output, aux); got "
                        f"{type(result).__name__}")
    return result


def value_and_grad(fun, argnums=0, has_aux=False, holomorphic=False):
    """A function returning (fun(*args), gradient of fun with respect to args[argnums]).

    ``fun`` must return a real scalar (or ``(scalar, aux)`` with ``has_aux=True``, giving
    ``((value, aux), grad)``). Complex inputs follow JAX's convention: for real f of z = x + iy the gradient is
    df/dx - i df/dy. ``holomorphic=True``: complex inputs and a complex output, and the gradient is f'(z).
    """
    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        nums = _argnums(argnums, len(args), "grad")
        rec = _Recorded(fun, args, kwargs, nums, "grad", persistent=False, holomorphic=holomorphic)
        out, aux = _split_aux(rec.result, has_aux)
        if not (isinstance(out, (Tensor, int, float)) or hasattr(out, "shape")):
            raise TypeError(f"grad requires the function to return one scalar array, but it returned "
                            f"{type(out).__name__}; return e.g. gnp.sum(...) (use has_aux=True to return extra "
                            f"values, or vjp for several outputs)")
        shape, dtype = aval(out)
        if shape != ():
            raise TypeError(
                f"grad requires a scalar-output function, but the output has shape {shape}; use gpuad.vjp for "
                f"vector outputs (or sum the output first)")
        if not is_float_dtype(dtype) and dtype is not None:
            raise TypeError(f"grad requires a floating-point output, but the output has dtype {dtype}")
        check_output_dtype("grad", dtype, holomorphic)
        grads = rec.pull([out], [None])
        value = lower(out, rec.tape)
        if has_aux:
            value = (value, rec.lowered(aux))
        return value, grads[0] if len(nums) == 1 and not isinstance(argnums, (tuple, list)) else tuple(grads)

    return value_and_grad_fun


def grad(fun, argnums=0, has_aux=False, holomorphic=False):
    """The gradient of scalar-valued ``fun`` with respect to positional argument(s) ``argnums`` (complex inputs:
    see ``value_and_grad``)."""
    vg = value_and_grad(fun, argnums, has_aux, holomorphic)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_fun


def vjp(fun, *primals, has_aux=False):
    """(fun(*primals), vjp_fn): ``vjp_fn(cotangent)`` returns one cotangent per primal, as a tuple."""
    rec = _Recorded(fun, primals, {}, range(len(primals)), "vjp", persistent=True)
    out, aux = _split_aux(rec.result, has_aux)
    out_leaves, out_def = tree.flatten(out)
    out_avals = [aval(v) for v in out_leaves]

    def vjp_fn(cotangent):
        ct_leaves, ct_def = tree.flatten(cotangent)
        if ct_def != out_def:
            raise TypeError(f"the cotangent's structure {tree.describe(ct_def)} differs from the output's "
                            f"{tree.describe(out_def)}")
        for i, (ct, (shape, _)) in enumerate(zip(ct_leaves, out_avals)):
            if aval(ct)[0] != shape:
                raise ValueError(f"cotangent leaf {i} has shape {aval(ct)[0]}, but the output it pairs with has "
                                 f"shape {shape}; a cotangent must have the output's shape")
        return tuple(rec.pull(out_leaves, ct_leaves))

    out_value = rec.lowered(out)
    if has_aux:
        return out_value, vjp_fn, rec.lowered(aux)
    return out_value, vjp_fn


def jvp(fun, primals, tangents):
    """(fun(*primals), J(primals) @ tangents) by forward mode: one directional derivative, no tape."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp takes primals and tangents as tuples (or lists) of arguments, e.g. "
                        "jvp(f, (x,), (v,))")
    p_leaves, p_def = tree.flatten(tuple(primals))
    t_leaves, t_def = tree.flatten(tuple(tangents))
    if p_def != t_def:
        raise TypeError(f"the tangents' structure {tree.describe(t_def)} differs from the primals' "
                        f"{tree.describe(p_def)}")
    p_leaves = [as_array(v) for v in p_leaves]
    _check_differentiable(p_leaves, "jvp", "a primal")
    trace = ForwardTrace()
    boxes = []
    for i, (p, t) in enumerate(zip(p_leaves, t_leaves)):
        if t is None:
            raise TypeError(f"tangent {i} is None: jvp needs one tangent array per primal; pass zeros (e.g. "
                            f"numpy.zeros_like(x)) for a primal you do not perturb, or close over it instead")
        (ps, pd), t = aval(p), (as_array(t) if not isinstance(t, (int, float)) else t)
        if isinstance(t, (int, float)):
            t = backend.array_module(raw(p)).asarray(t, dtype=pd)
        ts, td = aval(t)
        if ts != ps:
            raise ValueError(f"tangent {i} has shape {ts}, but its primal has shape {ps}; tangents must match")
        if td != pd:
            raise TypeError(f"tangent {i} has dtype {td}, but its primal has dtype {pd}; cast the tangent to "
                            f"{pd}")
        boxes.append(trace.box(p, t))
    trace.start()
    try:
        out = fun(*tree.unflatten(p_def, boxes))
    finally:
        trace.stop()
    o_leaves, o_def = tree.flatten(out)
    values, tans = [], []
    for o in o_leaves:
        tangent = trace.tangent_of(o)
        values.append(lower(o, trace))
        tans.append(tangent if tangent is not None else backend.float_zeros_like(raw(o), aval(o)[0]))
    return tree.unflatten(o_def, values), tree.unflatten(o_def, tans)
