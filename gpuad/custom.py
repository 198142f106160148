"""User-defined derivative rules: ``custom_vjp`` and ``custom_jvp``, with JAX's semantics.

Each call of a decorated function on traced arguments binds ONE primitive, made for that call (a ``UserCall``):
its arguments are the floating-point array leaves of the differentiable arguments (the other leaves, and the
``nondiff_argnums`` arguments, are static: closed into the call), and its one output is the function's
floating-point output leaves *packed* into one array (a single leaf is passed as it is; several are raveled,
cast to their common dtype and concatenated). The decorated function unpacks the result with differentiable
slices, reshapes and casts, so the traces see one ordinary primitive; non-float output leaves (integers, ...)
are returned as computed, with no derivative.

* ``impl`` runs the user's function on raw arrays.
* ``custom_vjp``: under a Tape, the ``forward_and_save`` hook runs ``fwd`` (one level down, so outer transforms
  differentiate it) and the tape keeps its residuals; the backward pass calls ``bwd(residuals, cotangent)``,
  whose result is checked (structure, shapes) before it is used. Forward mode over it is an error, as in JAX.
* ``custom_jvp``: forward mode runs the rule (``forward_and_jvp`` hook); reverse mode keeps the inputs and
  transposes the rule's tangent map (linear in the tangents) with gpuad's own ``vjp``, traced when an outer
  transform records, so every order works.

Rules written with ``gpuad.numpy`` are differentiable in turn (second order through ``bwd``, or through the JVP
rule, is exact). A decorated function must not close over traced values: pass them as arguments.

Complex leaves carry derivatives too, in gpuad's (JAX's) convention: a JVP rule gives the R-linear tangent map
(for holomorphic f, f'(z) t), and ``bwd`` its transpose under the real pairing <a, b> = Re(sum(a * b)) (for
holomorphic f, ct * f'(z), no conjugate; for real f of complex z, ct * (df/dx - i df/dy)). A complex cotangent
returned for a real input keeps its real part. Real and complex output leaves are packed together as complex
(the real ones come back out as real parts).
"""
from __future__ import annotations

import functools
import operator

import numpy as _np

from . import backend, tree
from . import numpy as gnp
from .core import Tensor, aval, bind, is_complex_dtype, is_float_dtype, raw, recording_traces
from .rules import Primitive
from .tape import Tape, TapeTensor, as_array

__all__ = ["custom_vjp", "custom_jvp"]


def _is_float_leaf(v) -> bool:
    """A differentiable leaf: a gpuad Tensor or a backend array (NumPy scalar) of floating or complex dtype."""
    if isinstance(v, Tensor):
        return is_float_dtype(aval(v)[1])
    dtype = getattr(v, "dtype", None)
    return hasattr(v, "shape") and is_float_dtype(dtype)


def _nondiff(nondiff_argnums):
    try:
        nums = tuple(operator.index(n) for n in nondiff_argnums)
    except TypeError:
        raise TypeError(f"nondiff_argnums must be a tuple of ints, got {nondiff_argnums!r}") from None
    return nums


class UserCall(Primitive):
    """One call of a user-ruled function, as a primitive: the flattened arguments and the packed output.

    ``dynamic`` are the float leaves bound as the primitive's arguments; everything else is kept here. The output
    description (structure, which leaves are packed, their shapes and dtypes) is filled in when the function (or
    ``fwd``, or the JVP rule) has run. Batching (vmap) needs only ``flat_fun``: a function of the dynamic
    leaves returning the packed output, which a batching rule can vmap."""

    def __init__(self, kind, fun, args, nondiff_argnums):
        super().__init__(f"{kind}[{getattr(fun, '__name__', 'fun')}]")
        self.fun = fun
        nargs = len(args)
        nums = []
        for n in nondiff_argnums:
            if not -nargs <= n < nargs:
                raise ValueError(f"{self.name}: nondiff_argnums {tuple(nondiff_argnums)} does not fit a call with "
                                 f"{nargs} positional argument(s)")
            nums.append(n % nargs)
        self.nondiff_argnums = tuple(sorted(set(nums)))
        self.nargs = nargs
        self.static_args = tuple(args[i] for i in self.nondiff_argnums)
        diff_args = tuple(a for i, a in enumerate(args) if i not in self.nondiff_argnums)
        self.leaves, self.in_def = tree.flatten(diff_args)
        self.dyn = [k for k, v in enumerate(self.leaves) if _is_float_leaf(v)]
        self.dyn_avals = [aval(self.leaves[k]) for k in self.dyn]
        self.out_def = None

    # ---- arguments
    def dynamic_args(self):
        return [self.leaves[k] for k in self.dyn]

    def diff_args(self, dyn):
        """The differentiable arguments (a tuple) with ``dyn`` in place of the float leaves."""
        leaves = list(self.leaves)
        for k, v in zip(self.dyn, dyn):
            leaves[k] = v
        return tree.unflatten(self.in_def, leaves)

    def full_args(self, dyn):
        """All positional arguments, in the caller's order, with ``dyn`` in place of the float leaves."""
        diff = iter(self.diff_args(dyn))
        static = iter(self.static_args)
        return tuple(next(static) if i in self.nondiff_argnums else next(diff) for i in range(self.nargs))

    # ---- the packed output
    def set_output(self, out, where):
        """Record ``out``'s description (checking it against an earlier one) and return its packed array."""
        leaves, out_def = tree.flatten(out)
        packed = [k for k, v in enumerate(leaves) if _is_float_leaf(v)]
        avals = [aval(leaves[k]) for k in packed]
        if self.out_def is not None and (out_def != self.out_def or avals != self.out_avals):
            raise TypeError(f"{self.name}: {where} returns an output of structure {tree.describe(out_def)} with "
                            f"float leaves {_avals_text(avals)}, but the function returns "
                            f"{tree.describe(self.out_def)} with {_avals_text(self.out_avals)}")
        if not packed:
            raise TypeError(f"{self.name}: the function has no floating-point output, so it has no derivative "
                            f"to customise; call it without the decorator")
        self.out_def, self.out_pos, self.out_avals = out_def, packed, avals
        self.side = [None if k in packed else v for k, v in enumerate(leaves)]
        self.pack_dtype = _np.result_type(*[d for _, d in avals])
        return self.pack([leaves[k] for k in packed])

    def pack(self, parts):
        """The float output leaves (or their tangents) as one array."""
        if len(parts) == 1:
            return parts[0]
        flat = []
        for v, (shape, dtype) in zip(parts, self.out_avals):
            flat.append(_cast(gnp.reshape(v, (-1,)), self.pack_dtype))
        return gnp.concatenate(flat)

    def unpack(self, packed):
        """The float output leaves out of the packed array (differentiable slices, reshapes and casts)."""
        if len(self.out_avals) == 1:
            return [packed]
        parts, start = [], 0
        for shape, dtype in self.out_avals:
            size = int(_np.prod(shape, dtype=_np.int64))
            parts.append(_cast(gnp.reshape(packed[start:start + size], shape), dtype))
            start += size
        return parts

    def output(self, packed):
        """The function's output pytree from the packed array."""
        leaves = list(self.side)
        for k, v in zip(self.out_pos, self.unpack(packed)):
            leaves[k] = v
        return tree.unflatten(self.out_def, leaves)

    def cotangent_tree(self, ct):
        """The cotangent of the output pytree (None for its non-float leaves)."""
        leaves = [None] * len(self.side)
        for k, v in zip(self.out_pos, self.unpack(ct)):
            leaves[k] = v
        return tree.unflatten(self.out_def, leaves)

    # ---- the primitive
    def flat_fun(self, *dyn):
        """The function of the float input leaves, returning the packed output (what vmap's rules batch)."""
        return self.set_output(self.fun(*self.full_args(dyn)), "the function")

    def impl(self, *dyn):
        return self.set_output(_check_raw(self.fun(*self.full_args(dyn)), self.name), "the function")

    def call(self):
        """Bind this call's primitive (or just run the function when no argument is traced)."""
        dyn = self.dynamic_args()
        if not any(isinstance(v, Tensor) for v in dyn):
            return self.fun(*self.full_args(dyn))
        self.xp = backend.array_module(raw(dyn[0]))
        for k in self.dyn:  # the tape keeps this primitive: it must not keep the arguments alive too
            self.leaves[k] = None
        return self.output(bind(self, dyn, {}))

    def format(self, args, params):
        return f"{self.name}({', '.join(args)})"


def _avals_text(avals):
    return "[" + ", ".join(f"{d}{list(s)}" for s, d in avals) + "]"


def _check_raw(out, name):
    for v in tree.flatten(out)[0]:
        if isinstance(v, Tensor):
            raise TypeError(f"{name}: the function's output depends on a traced value it closes over; pass every "
                            f"value to differentiate as an argument of the decorated function instead")
    return out


def _fill_zeros(values, tangents):
    """Tangents with zeros (of each primal's shape and dtype) in place of symbolic zeros (None)."""
    return [backend.float_zeros_like(raw(p)) if t is None else t for p, t in zip(values, tangents)]


def _cast(value, dtype):
    """``value`` as ``dtype``; complex to real keeps the real part (the transpose of real to complex), without
    NumPy's warning for plain arrays."""
    if aval(value)[1] == dtype:
        return value
    if is_complex_dtype(aval(value)[1]) and not is_complex_dtype(dtype):
        value = gnp.real(value)
    return gnp.astype(value, dtype)


def pull_through(fn, inputs, ct):
    """The cotangents of ``inputs`` for ``ct`` on ``fn(*inputs)`` (one array out): ``fn`` is recorded on a fresh
    non-persistent Tape, its output value dropped before the backward pass (only its tape node is needed), and
    the cotangent pulled (raw and fused when nothing else records, traced otherwise)."""
    tape = Tape()
    stack = recording_traces()
    paused = stack.no_grad
    if paused and not stack:  # a gradient taken inside no_grad: nothing else records, so this tape may
        stack.no_grad = 0
    tape.start()
    try:
        boxes = [tape.box_input(as_array(v)) for v in inputs]
        out = fn(*boxes)
    finally:
        tape.stop()
        stack.no_grad = paused
    node = tape._node_of(out)
    if node is None:  # the output does not depend on the inputs
        if stack.no_grad:
            raise RuntimeError("a checkpoint or custom_jvp backward pass cannot recompute inside no_grad while a "
                               "transform records the backward pass; take this gradient outside no_grad")
        return [backend.float_zeros_like(raw(v)) for v in inputs]
    target = TapeTensor(tape, None, node)
    del out  # frees the recomputed output (the tape keeps what its backward pass reads)
    return tape.pull([target], [ct], boxes)


def _pull_linear(call, tangent_map, ct, needed):
    """The transpose of a linear map of the dynamic leaves' tangents (``tangent_map(list) -> packed``), applied
    to ``ct``, for the ``needed`` leaves only (the others get None): gpuad's own vjp, exact for a linear map,
    traced when an outer transform records."""
    idx = [k for k, n in enumerate(needed) if n]
    if not idx:
        return [None] * len(needed)

    def restricted(*ts):
        full = [None] * len(needed)
        for k, t in zip(idx, ts):
            full[k] = t
        for k, (shape, dtype) in enumerate(call.dyn_avals):
            if full[k] is None:
                full[k] = backend.array_module(raw(ct)).zeros(shape, dtype=dtype)
        return tangent_map(full)

    xp = backend.array_module(raw(ct))
    zeros = [xp.zeros(call.dyn_avals[k][0], dtype=call.dyn_avals[k][1]) for k in idx]
    grads = pull_through(restricted, zeros, ct)
    out = [None] * len(needed)
    for k, g in zip(idx, grads):
        out[k] = g
    return out


# ---------------------------------------------------------------------------------------------------------
# custom_vjp
# ---------------------------------------------------------------------------------------------------------

class CustomVJPCall(UserCall):
    def __init__(self, owner, args):
        super().__init__("custom_vjp", owner.fun, args, owner.nondiff_argnums)
        self.owner = owner
        self.res_def = None

    def forward_and_save(self, primals, params):
        result = self.owner.fwd(*self.full_args(primals))
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"{self.name}: the fwd rule must return a pair (output, residuals), got "
                            f"{type(result).__name__}")
        out, res = result
        packed = self.set_output(out, "the fwd rule")
        res_leaves, self.res_def = tree.flatten(res)
        return packed, tuple(res_leaves)

    def forward_and_jvp(self, primals, tangents, params):
        raise TypeError(f"{self.name}: cannot apply forward-mode differentiation (jvp) to a custom_vjp function; "
                        f"define it with gpuad.custom_jvp instead (JAX has the same rule)")

    def jvp(self, primals, tangents, out, params):
        return self.forward_and_jvp(primals, tangents, params)

    def vjp(self, ct, saved, params, avals, needed, fast):
        res = tree.unflatten(self.res_def, list(saved))
        result = self.owner.bwd(*self.static_args, res, self.cotangent_tree(ct))
        grads = self._check_bwd(result)
        if fast:  # the raw backward pass may add into a returned array in place: never into an input of bwd
            inputs = {id(v) for v in saved} | {id(ct)}
            grads = [g.copy() if g is not None and id(g) in inputs else g for g in grads]
        return [g if n else None for g, n in zip(grads, needed)]

    def _check_bwd(self, result):
        """bwd's cotangents, one per dynamic leaf (None for zero), after checking structure, shapes, dtypes."""
        diff_defs = self.in_def[1]  # the differentiable arguments form a tuple
        count = len(diff_defs)
        what = f"{self.name}: the bwd rule"
        if not isinstance(result, (tuple, list)):
            raise TypeError(f"{what} must return a tuple with one cotangent per differentiable argument ({count}), "
                            f"got {type(result).__name__}")
        if len(result) != count:
            raise TypeError(f"{what} must return a tuple with one cotangent per differentiable argument ({count}: the "
                            f"arguments other than nondiff_argnums), got {len(result)}")
        leaves = []
        for i, (r, d) in enumerate(zip(result, diff_defs)):
            if r is None:
                leaves.extend([None] * _count(d))
                continue
            r_leaves, r_def = tree.flatten(r)
            if r_def != d and not _matches_with_none(r, d):
                raise TypeError(f"{what} returned a cotangent of structure {tree.describe(r_def)} for argument {i}, "
                                f"whose structure is {tree.describe(d)}; a cotangent must have its argument's "
                                f"structure (None stands for zeros)")
            leaves.extend(_leaves_with_none(r, d))
        grads = []
        for j, (k, (shape, dtype)) in enumerate(zip(self.dyn, self.dyn_avals)):
            g = leaves[k]
            if g is None:
                grads.append(None)
                continue
            if isinstance(g, (int, float, complex)) and not isinstance(g, bool):
                g = self.xp.asarray(g, dtype=dtype)
            g_shape = aval(g)[0]
            if tuple(g_shape) != tuple(shape):
                raise ValueError(f"{what} returned a cotangent of shape {tuple(g_shape)} for an input leaf of shape "
                                 f"{tuple(shape)} (leaf {k} of the differentiable arguments); a cotangent must have "
                                 f"its input's shape")
            g_dtype = aval(g)[1]
            if not is_float_dtype(g_dtype):
                raise TypeError(f"{what} returned a cotangent of dtype {g_dtype} for a {dtype} input leaf")
            grads.append(_cast(g, dtype))
        return grads


def _count(treedef):
    if treedef is None:
        return 1
    children = treedef[2] if treedef[0] is dict else treedef[1]
    return sum(_count(c) for c in children)


def _matches_with_none(value, treedef):
    """``value`` has ``treedef``'s structure where None may stand for any subtree."""
    if value is None:
        return True
    if treedef is None:
        return not isinstance(value, (tuple, list, dict))
    if treedef[0] is dict:
        return isinstance(value, dict) and sorted(value) == list(treedef[1]) and all(
            _matches_with_none(value[k], c) for k, c in zip(treedef[1], treedef[2]))
    return (isinstance(value, (tuple, list)) and len(value) == len(treedef[1])
            and all(_matches_with_none(v, c) for v, c in zip(value, treedef[1])))


def _leaves_with_none(value, treedef):
    if treedef is None:
        return [value]
    if value is None:
        return [None] * _count(treedef)
    if treedef[0] is dict:
        return [x for k, c in zip(treedef[1], treedef[2]) for x in _leaves_with_none(value[k], c)]
    return [x for v, c in zip(value, treedef[1]) for x in _leaves_with_none(v, c)]


class _CustomFunction:
    """What custom_vjp and custom_jvp share: the wrapped function, its static arguments, and the call that
    checks a rule is defined before binding one primitive (``_call_class``) over the arguments."""

    _call_class = None
    _how_to_define = ""

    def __init__(self, fun, nondiff_argnums=()):
        self.fun = fun
        self.nondiff_argnums = _nondiff(nondiff_argnums)
        functools.update_wrapper(self, fun)

    def _has_rule(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        kind = type(self).__name__
        if kwargs:
            raise TypeError(f"{kind} function {self.__name__}: pass arguments positionally (keyword arguments "
                            f"are not supported, as in JAX)")
        if not self._has_rule():
            raise AttributeError(f"{kind} function {self.__name__} has no rule: "
                                 + self._how_to_define.format(name=self.__name__))
        return self._call_class(self, args).call()


class custom_vjp(_CustomFunction):
    """A function with a user-defined reverse-mode rule (JAX's ``jax.custom_vjp``)::

        @gpuad.custom_vjp
        def f(x, y): ...
        def f_fwd(x, y): return f(x, y), residuals     # same signature as f
        def f_bwd(residuals, g): return (gx, gy)       # one cotangent per argument (None: zeros)
        f.defvjp(f_fwd, f_bwd)

    Under reverse mode ``fwd`` runs in the forward pass and the tape keeps only its residuals; ``bwd`` runs in the
    backward pass (its result is checked: structure and shapes must match the arguments'). With
    ``nondiff_argnums``, those arguments are passed to ``f`` and ``fwd`` in place and to ``bwd`` first, and get
    no cotangent. Rules written with ``gpuad.numpy`` are differentiable (reverse over reverse). Forward mode is an
    error, as in JAX. Arguments and outputs may be pytrees (tuples, lists, dicts); the float array leaves carry
    derivatives, other leaves are constants.
    """

    _call_class = CustomVJPCall
    _how_to_define = "call {name}.defvjp(fwd, bwd) first"
    fwd = bwd = None

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd
        return self

    def _has_rule(self):
        return self.fwd is not None


# ---------------------------------------------------------------------------------------------------------
# custom_jvp
# ---------------------------------------------------------------------------------------------------------

class CustomJVPCall(UserCall):
    def __init__(self, owner, args):
        super().__init__("custom_jvp", owner.fun, args, owner.nondiff_argnums)
        self.owner = owner

    def run_rule(self, primals, tangents):
        """(packed output, packed tangent) from the user's rule; ``tangents`` has no None."""
        result = self.owner.rule(*self.static_args, self.diff_args(primals), self.diff_args(tangents))
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"{self.name}: the jvp rule must return a pair (primal_out, tangent_out), got "
                            f"{type(result).__name__}")
        out, t_out = result
        packed = self.set_output(out, "the jvp rule")
        t_leaves, t_def = tree.flatten(t_out)
        if t_def != self.out_def:
            raise TypeError(f"{self.name}: the jvp rule's tangent output has structure {tree.describe(t_def)}, but "
                            f"its primal output has {tree.describe(self.out_def)}")
        parts = []
        for k, (shape, dtype) in zip(self.out_pos, self.out_avals):
            t = t_leaves[k]
            if t is None or isinstance(t, (int, float, complex)):
                t = self.xp.full(shape, t or 0, dtype=dtype)
            if tuple(aval(t)[0]) != tuple(shape):
                raise ValueError(f"{self.name}: the jvp rule returned a tangent of shape {tuple(aval(t)[0])} for an "
                                 f"output of shape {tuple(shape)}; a tangent must have its output's shape")
            parts.append(_cast(t, dtype))
        return packed, self.pack(parts)

    def forward_and_jvp(self, primals, tangents, params):
        return self.run_rule(primals, _fill_zeros(primals, tangents))

    def jvp(self, primals, tangents, out, params):
        return self.forward_and_jvp(primals, tangents, params)[1]

    def save(self, primals, out):
        return tuple(primals)

    def vjp(self, ct, saved, params, avals, needed, fast):
        return _pull_linear(self, lambda ts: self.run_rule(list(saved), ts)[1], ct, needed)


class custom_jvp(_CustomFunction):
    """A function with a user-defined forward-mode rule (JAX's ``jax.custom_jvp``)::

        @gpuad.custom_jvp
        def f(x, y): ...
        @f.defjvp
        def f_jvp(primals, tangents):       # tuples of the (differentiable) arguments and their tangents
            x, y = primals; tx, ty = tangents
            return f(x, y), tangent_out     # tangent_out must be linear in the tangents

    Forward mode runs the rule. Reverse mode keeps the inputs only and, in the backward pass, transposes the
    rule's tangent map (gpuad's own ``vjp`` of the linear map ``t -> rule(primals, t)[1]``), as JAX linearises
    and transposes; the backward pass so runs the rule once more, its primal part included (a cost in time, not
    in memory). With ``nondiff_argnums`` the rule is called as ``rule(*nondiff_args, primals, tangents)``.
    A rule written with ``gpuad.numpy`` (and calling ``f`` itself if it likes) gives derivatives of every order.
    """

    _call_class = CustomJVPCall
    _how_to_define = "decorate one with @{name}.defjvp first"
    rule = None

    def defjvp(self, rule):
        self.rule = rule
        return rule

    def _has_rule(self):
        return self.rule is not None
