"""The Jacobian family: jacfwd, jacrev, jacobian (automatic choice of mode), hessian and hvp.

The full Jacobian of f: R^n -> R^m costs n forward passes (one JVP per input direction) or m reverse passes
(one VJP per output direction):

| mode | one pass gives | passes for the full Jacobian | wins when |
| --- | --- | --- | --- |
| forward (``jacfwd``) | one column, J v | n (inputs) | n << m (few inputs, many outputs) |
| reverse (``jacrev``) | one row, u^T J | m (outputs) | m << n (many inputs, few outputs: gradients) |

Neither loops in Python over the basis vectors: ``jacfwd`` is ``vmap`` of ``jvp`` over the standard basis of
the inputs (one batched forward pass carrying all n tangents), ``jacrev`` is ``vmap`` of the ``vjp`` function
over the standard basis of the outputs (one recorded forward pass, then all m cotangents pulled back at once).
``jacobian(mode="auto")`` picks forward mode when the inputs have fewer elements than the outputs, else reverse.
``hessian`` is forward over reverse (``jacfwd(jacrev(f))``); ``hvp`` is the gradient of the directional derivative
(reverse over forward): H v without forming H, at a small constant multiple of one gradient's cost.

Complex values follow JAX's rules (``holomorphic=``): without it, ``jacfwd`` takes real inputs (its outputs may
be complex) and ``jacrev`` real outputs (its inputs may be complex: each row is then the gradient df/dx - i df/dy
of a real output); with ``holomorphic=True`` inputs and outputs must be complex and the Jacobian is f'(z), by
either mode. ``jacobian(mode="auto")`` takes the cheaper of the modes legal for the dtypes (and says why when
neither is); ``hessian`` is ``jacfwd(jacrev(f, holomorphic), holomorphic)``.

Results have JAX's layout: for each output leaf and each differentiated input leaf, an array of shape
``out.shape + in.shape``; the outputs' pytree holds, in place of each leaf, the inputs' structure (the argument,
or a tuple of arguments when ``argnums`` is a tuple).
"""
from __future__ import annotations

import functools
import math

from . import backend, tree
from .batching import vmap
from .core import aval, is_complex_dtype, raw
from .ops.linear import GETITEM, RESHAPE
from .tape import as_array
from .transforms import _argnums, _check_differentiable, check_output_dtype, grad, jvp, vjp

__all__ = ["jacfwd", "jacrev", "jacobian", "hessian", "hvp"]


class _Inputs:
    """The differentiated arguments of one call, flattened: ``leaves``, and ``call(leaves)`` runs ``fun`` with
    them in place (the other arguments as given)."""

    def __init__(self, fun, args, argnums, transform, holomorphic):
        self.nums = _argnums(argnums, len(args), transform)
        self.single = not isinstance(argnums, (tuple, list))
        self.args = list(args)
        leaves, self.treedef = tree.flatten(tuple(self.args[n] for n in self.nums))
        self.leaves = [as_array(v) for v in leaves]
        _check_differentiable(self.leaves, transform, "a differentiated argument", holomorphic)
        self.complex = not holomorphic and any(is_complex_dtype(aval(v)[1]) for v in self.leaves)
        self.shapes = [aval(v)[0] for v in self.leaves]
        self.size = sum(math.prod(s) for s in self.shapes)
        self.fun = fun

    def call(self, *leaves):
        args = list(self.args)
        for n, v in zip(self.nums, tree.unflatten(self.treedef, list(leaves))):
            args[n] = v
        return self.fun(*args)

    def structure(self, parts):
        """One result per input leaf, in the differentiated arguments' structure."""
        rebuilt = tree.unflatten(self.treedef, parts)
        return rebuilt[0] if self.single else rebuilt


def _basis(shapes, dtypes, like):
    """The standard basis of the flattened leaves: per leaf, an array (total size,) + leaf shape."""
    xp = backend.array_module(raw(like))
    total = sum(math.prod(s) for s in shapes)
    parts, start = [], 0
    for shape, dtype in zip(shapes, dtypes):
        size = math.prod(shape)
        eye = xp.eye(total, size, k=-start, dtype=dtype)  # ones at (start + j, j): one array written once
        parts.append(eye.reshape((total,) + tuple(shape)))
        start += size
    return parts


def _split(block, axis_first, shapes, keep):
    """Pieces of ``block`` along its flattened basis axis (first or last), one per leaf of ``shapes``, each
    reshaped to ``keep + shape`` (basis last) or ``shape + keep`` (basis first)."""
    pieces, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        index = (slice(start, start + size),) if axis_first else (Ellipsis, slice(start, start + size))
        piece = GETITEM.bind(block, index=index)
        pieces.append(RESHAPE.bind(piece, shape=(tuple(shape) + keep) if axis_first else (keep + tuple(shape))))
        start += size
    return pieces


def _refuse_complex_inputs(inputs):
    """Forward mode without ``holomorphic``: a complex input's Jacobian is not one complex matrix (the map is only
    R-linear), so it is refused, as JAX does."""
    if inputs.complex:
        dtype = next(aval(v)[1] for v in inputs.leaves if is_complex_dtype(aval(v)[1]))
        raise TypeError(f"jacfwd requires real-valued inputs, but got {dtype}: for a holomorphic function pass "
                        f"holomorphic=True; for a non-holomorphic one use jacrev (real outputs) or gpuad.jvp")


def jacfwd(fun, argnums=0, holomorphic=False):
    """The Jacobian of ``fun`` with respect to ``args[argnums]`` by forward mode: ``vmap`` of ``jvp`` over the
    standard basis of the inputs, one batched forward pass for all n input directions. Each result leaf has
    shape ``out.shape + in.shape``. Real inputs (complex outputs allowed), or with ``holomorphic=True`` complex
    inputs and outputs (the Jacobian is then f'(z))."""

    @functools.wraps(fun)
    def jac_fun(*args):
        inputs = _Inputs(fun, args, argnums, "jacfwd", holomorphic)
        _refuse_complex_inputs(inputs)
        basis = _basis(inputs.shapes, [aval(v)[1] for v in inputs.leaves], inputs.leaves[0])

        def push(*tangents):
            return jvp(inputs.call, inputs.leaves, list(tangents))[1]

        columns = vmap(push, out_axes=-1)(*basis)
        col_leaves, out_def = tree.flatten(columns)
        for c in col_leaves if holomorphic else ():
            check_output_dtype("jacfwd", aval(c)[1], True)
        result = [inputs.structure(_split(c, False, inputs.shapes, aval(c)[0][:-1])) for c in col_leaves]
        return tree.unflatten(out_def, result)

    return jac_fun


def jacrev(fun, argnums=0, holomorphic=False):
    """The Jacobian of ``fun`` with respect to ``args[argnums]`` by reverse mode: one recorded forward pass, then
    ``vmap`` of its ``vjp`` function over the standard basis of the outputs (all m cotangents pulled back at
    once). Each result leaf has shape ``out.shape + in.shape``. Real outputs (of real or complex inputs: a row
    is then the gradient df/dx - i df/dy), or with ``holomorphic=True`` complex inputs and outputs (f'(z))."""

    @functools.wraps(fun)
    def jac_fun(*args):
        inputs = _Inputs(fun, args, argnums, "jacrev", holomorphic)
        out, pullback = vjp(inputs.call, *inputs.leaves)
        return _rows(inputs, out, pullback, holomorphic)

    return jac_fun


def _rows(inputs, out, pullback, holomorphic):
    out_leaves, out_def = tree.flatten(out)
    out_shapes = [aval(o)[0] for o in out_leaves]
    _check_differentiable(out_leaves, "jacrev", "an output")
    for o in out_leaves:
        check_output_dtype("jacrev", aval(o)[1], holomorphic)
    basis = _basis(out_shapes, [aval(o)[1] for o in out_leaves], out_leaves[0])

    def pull(*cotangents):
        return pullback(tree.unflatten(out_def, list(cotangents)))

    rows = vmap(pull)(*basis)  # per input leaf: (total output size,) + in.shape
    per_input = [_split(r, True, out_shapes, tuple(s)) for r, s in zip(rows, inputs.shapes)]
    result = [inputs.structure([per_input[j][i] for j in range(len(inputs.leaves))]) for i in range(len(out_leaves))]
    return tree.unflatten(out_def, result)


def jacobian(fun, argnums=0, mode="auto", holomorphic=False):
    """The Jacobian of ``fun`` with respect to ``args[argnums]`` (each leaf ``out.shape + in.shape``).

    ``mode="fwd"`` runs ``jacfwd`` (n forward passes' work, n = the inputs' total size), ``"rev"`` runs ``jacrev``
    (m reverse passes' work, m = the outputs' total size). ``"auto"`` (the default) follows the cost table: it
    records one forward pass to learn m, then takes forward mode when n < m (fewer inputs than outputs) and
    reverse mode otherwise, continuing from the recorded pass (so reverse mode costs nothing extra). The choice
    is remembered for inputs of the same shapes and dtypes, so later calls in forward mode skip that pass (both
    modes give the same Jacobian; only the cost depends on the choice). Without ``holomorphic``, complex inputs
    rule forward mode out and complex outputs reverse mode (see the module docstring): "auto" takes the legal
    one, and raises a TypeError when there is none."""
    if mode not in ("auto", "fwd", "rev"):
        raise ValueError(f"jacobian: mode must be 'auto', 'fwd' or 'rev', got {mode!r}")
    if mode == "fwd":
        return jacfwd(fun, argnums, holomorphic)
    if mode == "rev":
        return jacrev(fun, argnums, holomorphic)
    forward = jacfwd(fun, argnums, holomorphic)
    chosen = {}  # the mode chosen for inputs of given shapes and dtypes

    @functools.wraps(fun)
    def jac_fun(*args):
        inputs = _Inputs(fun, args, argnums, "jacobian", holomorphic)
        key = (inputs.treedef, tuple(aval(v) for v in inputs.leaves))
        if chosen.get(key) == "fwd":
            return forward(*args)
        out, pullback = vjp(inputs.call, *inputs.leaves)
        out_leaves = tree.flatten(out)[0]
        outputs = sum(math.prod(aval(o)[0]) for o in out_leaves)
        complex_out = not holomorphic and any(is_complex_dtype(aval(o)[1]) for o in out_leaves)
        if inputs.complex and complex_out:
            raise TypeError("jacobian: complex inputs and complex outputs, without holomorphic=True: neither mode "
                            "gives this Jacobian (it is only R-linear); pass holomorphic=True for a holomorphic "
                            "function, or differentiate the real and imaginary parts with gpuad.jvp / gpuad.vjp")
        chosen[key] = "fwd" if complex_out or (not inputs.complex and inputs.size < outputs) else "rev"
        if chosen[key] == "fwd":
            del out, pullback  # the recorded pass only told the outputs' size
            return forward(*args)
        return _rows(inputs, out, pullback, holomorphic)

    return jac_fun


def hessian(fun, argnums=0, holomorphic=False):
    """The Hessian of scalar ``fun``: forward over reverse, ``jacfwd(jacrev(fun, holomorphic), holomorphic)``;
    shape ``in.shape * 2``. Real inputs, or complex ones with ``holomorphic=True`` (then f''(z)), as in JAX."""
    return jacfwd(jacrev(fun, argnums, holomorphic), argnums, holomorphic)


def hvp(fun, primals, tangents):
    """``(gradient, H v)`` of scalar ``fun`` at ``primals`` along ``tangents`` (tuples with one entry per
    argument), without forming H, at a small constant multiple of one gradient's cost. H v is the gradient of
    the directional derivative, ``grad(x -> jvp(fun, x, v))`` (reverse over forward; H is symmetric): its tape
    holds the forward pass with its tangents, which run as fused elementwise regions backwards, where forward
    over reverse would run the backward pass op by op on dual numbers. With one primal the two results are
    arrays (pytrees), with several they are tuples."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("hvp takes primals and tangents as tuples (or lists) of arguments, e.g. hvp(f, (x,), (v,))")
    primals, tangents = tuple(primals), tuple(tangents)
    nums = 0 if len(primals) == 1 else tuple(range(len(primals)))
    gradient = grad(fun, argnums=nums)(*primals)
    directional = grad(lambda *p: jvp(fun, p, tangents)[1], argnums=nums)
    return gradient, directional(*primals)
