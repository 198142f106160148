"""The function transforms, with JAX's names and semantics: grad, value_and_grad, vjp and jvp.

Each transform opens a fresh trace (a Tape for reverse mode, a ForwardTrace for forward mode), boxes the
chosen arguments' leaves, runs the function, and unboxes the result at its own level only, so transforms nest
to any depth (grad of grad, jvp of grad, vjp of jvp) without confusing their perturbations.
"""
from __future__ import annotations

import functools

from . import backend, tree
from .core import aval, is_float_dtype, lower, raw, Tensor
from .forward import ForwardTrace

from .tape import Tape, backward, _zeros


def _as_array(value):
    if type(value) is Tensor:
        return value
    module = backend.array_module(value)
    return value if isinstance(value, module.ndarray) else module.asarray(value)


def _check_differentiable(leaves, transform, where):
    for v in leaves:
        dtype = aval(v)[1]
        if not is_float_dtype(dtype):
            raise TypeError(
                f"{transform} requires floating-point inputs, but {where} has dtype {dtype}; pass a float array "
                f"(e.g. x.astype(float)) or close over integer and boolean values instead of differentiating them")


def _argnums(argnums, nargs, transform):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(f"{transform}: argnums {argnums!r} does not fit a call with {nargs} positional "
                             f"argument(s)")
    return tuple(n % nargs for n in nums)


def value_and_grad(fun, argnums=0, has_aux=False):
    """A function returning (fun(*args), gradient of fun with respect to args[argnums]).

    ``fun`` must return a scalar (or ``(scalar, aux)`` with ``has_aux=True``, giving ``((value, aux), grad)``).
    """
    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        nums = _argnums(argnums, len(args), "grad")
        tape = Tape()
        args = list(args)
        boxed = {}
        tape.start()
        try:
            for n in nums:
                leaves, treedef = tree.flatten(args[n])
                leaves = [_as_array(v) for v in leaves]
                _check_differentiable(leaves, "grad", f"argument {n}")
                boxes = [tape.box_input(v) for v in leaves]
                boxed[n] = boxes
                args[n] = tree.unflatten(treedef, boxes)
            result = fun(*args, **kwargs)
        finally:
            tape.stop()
        if has_aux:
            if not (isinstance(result, (tuple, list)) and len(result) == 2):
                raise TypeError("with has_aux=True the function must return a pair (output, aux); got "
                                f"{type(result).__name__}")
            out, aux = result
        else:
            out, aux = result, None
        if not (type(out) is Tensor or isinstance(out, (int, float)) or hasattr(out, "shape")):
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
        grads = tape.gradient(out, [boxed[n] for n in nums])
        grads = [tree.unflatten(tree.flatten(args[n])[1], g) for n, g in zip(nums, grads)]
        value = lower(out, tape)
        if has_aux:
            value = (value, tree.unflatten(*_lowered(aux, tape)))
        return value, grads[0] if isinstance(argnums, int) else tuple(grads)

    return value_and_grad_fun


def grad(fun, argnums=0, has_aux=False):
    """The gradient of scalar-valued ``fun`` with respect to positional argument(s) ``argnums``."""
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_fun


def _lowered(value, trace):
    leaves, treedef = tree.flatten(value)
    return treedef, [lower(v, trace) for v in leaves]


def vjp(fun, *primals, has_aux=False):
    """(fun(*primals), vjp_fn): ``vjp_fn(cotangent)`` returns one cotangent per primal, as a tuple."""
    tape = Tape(persistent=True)
    structures, boxed = [], []
    tape.start()
    try:
        args = []
        for n, p in enumerate(primals):
            leaves, treedef = tree.flatten(p)
            leaves = [_as_array(v) for v in leaves]
            _check_differentiable(leaves, "vjp", f"primal {n}")
            boxes = [tape.box_input(v) for v in leaves]
            structures.append(treedef)
            boxed.append(boxes)
            args.append(tree.unflatten(treedef, boxes))
        result = fun(*args)
    finally:
        tape.stop()
    out, aux = (result if has_aux else (result, None))
    out_leaves, out_def = tree.flatten(out)
    out_nodes = [tape._node_of(o, "output", missing_ok=True) for o in out_leaves]
    out_values = [lower(o, tape) for o in out_leaves]
    out_avals = [aval(v) for v in out_values]
    sources = [b._node for boxes in boxed for b in boxes]

    def vjp_fn(cotangent):
        ct_leaves, ct_def = tree.flatten(cotangent)
        if ct_def != out_def:
            raise TypeError(f"the cotangent's structure {tree.describe(ct_def)} differs from the output's "
                            f"{tree.describe(out_def)}")
        seeds = []
        for i, (node, ct, (shape, dtype)) in enumerate(zip(out_nodes, ct_leaves, out_avals)):
            if aval(ct)[0] != shape:
                raise ValueError(f"cotangent leaf {i} has shape {aval(ct)[0]}, but the output it pairs with has "
                                 f"shape {shape}; a cotangent must have the output's shape")
            if node is not None:
                seeds.append((node, _as_array(ct)))
        cts = backward(tape.entries, seeds, sources, regions=tape.regions)
        grads, i = [], 0
        for treedef, boxes in zip(structures, boxed):
            leaf_grads = []
            for b in boxes:
                g = cts.get(b._node)
                leaf_grads.append(g if g is not None else _zeros(b._primal))
            grads.append(tree.unflatten(treedef, leaf_grads))
        return tuple(grads)

    out_value = tree.unflatten(out_def, out_values)
    if has_aux:
        return out_value, vjp_fn, tree.unflatten(*_lowered(aux, tape))
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
    p_leaves = [_as_array(v) for v in p_leaves]
    _check_differentiable(p_leaves, "jvp", "a primal")
    trace = ForwardTrace()
    boxes = []
    for i, (p, t) in enumerate(zip(p_leaves, t_leaves)):
        (ps, pd), t = aval(p), (_as_array(t) if not isinstance(t, (int, float)) else t)
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
        if type(o) is Tensor and o._trace is trace:
            values.append(o._primal)
            tans.append(o._tangent)
        else:
            values.append(o)
            tans.append(_zeros(o))
    return tree.unflatten(o_def, values), tree.unflatten(o_def, tans)
