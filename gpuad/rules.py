"""Primitive kinds: how one rule-table row becomes a forward evaluation, a JVP and a VJP.

Three kinds cover every op:

* ``Elementwise`` rows give a forward expression and one partial-derivative expression per argument (in the
  language of ``gpuad.expr``). The JVP sums partial times tangent, the VJP multiplies the cotangent by each
  partial and sums over broadcast axes. The same rows, composed over a region of elementwise tape entries,
  drive the fused backward pass (``gpuad.fusion``: generated CUDA kernels, and their NumPy rendering), for
  which the tape saves a region's external arguments only; the per-op VJP runs when the backward pass is
  traced (higher order) or fusion is off, and then reads exactly what ``saves`` names.
* ``Linear`` rows are ops linear in their differentiable arguments (reshape, sum, indexing, concatenate) or
  multilinear (matmul): the JVP applies the op to the tangents, the VJP is a transpose rule.
* ``Custom`` rows (max reduction, prod) write their JVP and VJP with traced ops.

Rules that are not elementwise are written with ``bind`` on primitives, so they are differentiable themselves:
higher-order derivatives come from running the same rules on traced values.
"""
from __future__ import annotations

from . import backend, expr
from .core import Tensor, aval, bind, is_float_dtype, raw, traced_numpy as _gnp

ARG_NAMES = ("x", "y", "z")


class Primitive:
    """An op the tape can record. ``saves`` names what the backward pass keeps (inputs by name, or "out")."""

    saves: tuple[str, ...] = ()
    nondiff: tuple[int, ...] = ()  # argument positions that never carry a derivative

    def __init__(self, name):
        self.name = name

    def bind(self, *args, **params):
        return bind(self, args, params)

    def impl(self, *args, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, primals, out):
        """Values kept on the tape for the backward pass."""
        return tuple(out if s == "out" else primals[ARG_NAMES.index(s)] for s in self.saves)

    def _fast_save(self):
        """``save`` specialised to this primitive's ``saves`` (it runs once per recorded op)."""
        where = tuple(-1 if s == "out" else ARG_NAMES.index(s) for s in self.saves)
        if not where:
            return lambda primals, out: ()
        if where == (0,):
            return lambda primals, out: (primals[0],)
        if where == (-1,):
            return lambda primals, out: (out,)
        return lambda primals, out: tuple(out if i < 0 else primals[i] for i in where)

    def jvp(self, primals, tangents, out, params):
        raise NotImplementedError(f"{self.name} has no forward-mode (jvp) rule")

    def vjp(self, ct, saved, params, avals, needed, fast):
        raise NotImplementedError(f"{self.name} has no reverse-mode (vjp) rule")

    # ---- printing the tape
    def format(self, args: list[str], params) -> str:
        extra = [f"{k}={_short(v)}" for k, v in params.items() if v is not None]
        return f"{self.name}({', '.join(args + extra)})"

    def format_adjoint(self, k, ct_name, args, out_name, params) -> str:
        return f"{self.name}_vjp[{k}]({ct_name})"

    def __repr__(self):
        return f"<primitive {self.name}>"


def _short(v):
    text = repr(v)
    return text if len(text) < 40 else text[:37] + "..."


# ---------------------------------------------------------------------------------------------------------
# Elementwise: one row of expressions
# ---------------------------------------------------------------------------------------------------------

class Elementwise(Primitive):
    """An elementwise op from its row. ``partials[k]`` is d out / d arg_k as an expression over the argument
    names (x, y, z) and ``out``; None marks an argument that carries no derivative (a condition, an integer
    result). ``domain`` tells the tests where the op is differentiable: one (low, high) interval per argument,
    or "nonzero" for |value| in (0.5, 2) with either sign. The tape groups these entries into fused regions
    (see ``gpuad.fusion.regions``); ``vjp`` is the per-op rule the traced backward pass uses.
    """

    def __init__(self, name, forward, partials, domain=None, symbol=None):
        super().__init__(name)
        self.arity = len(partials)
        self.args = ARG_NAMES[: self.arity]
        self.forward = expr.parse(forward)
        self.partials = tuple(None if p is None else expr.parse(p) for p in partials)
        self.nondiff = tuple(k for k, p in enumerate(self.partials) if p is None)
        self.domain = domain
        self.symbol = symbol  # infix operator for printing, e.g. "*"
        # Each partial as a constant (0, 1, -1: no multiply needed) or None when it is an expression.
        self.partial_constants = tuple(0 if p is None else p.constant for p in self.partials)
        used = {n for p in self.partials if p is not None for n in p.names}
        self.saves = tuple(n for n in (*self.args, "out") if n in used)
        self.save = self._fast_save()
        for e in (self.forward, *filter(None, self.partials)):
            stray = set(e.names) - {*self.args, "out"}
            if stray:
                raise expr.ExprError(f"{name}: expression {e.source!r} reads unknown names {sorted(stray)}")
        self._compiled: dict[tuple[int, object], object] = {}

    def function(self, which, namespace):
        """Expression ``which`` (-1: forward, k: partial k) compiled against a NumPy-like namespace."""
        key = (which, namespace)
        fn = self._compiled.get(key)
        if fn is None:
            e = self.forward if which < 0 else self.partials[which]
            names = self.args if which < 0 else self.saves
            fn = self._compiled[key] = e.compile(names, namespace)
        return fn

    def impl(self, *args):
        return self.function(-1, backend.array_module(*args))(*args)

    def jvp(self, primals, tangents, out, params):
        saved = _scalars_as_arrays(self.save(primals, out), out)
        fast = not any(type(v) is Tensor for v in (*saved, *tangents))
        namespace = backend.array_module(*saved, *tangents) if fast else _gnp()
        total = None
        for k, t in enumerate(tangents):
            c = self.partial_constants[k]
            if t is None or c == 0:
                continue
            term = t if c == 1 else -t if c == -1 else t * self.function(k, namespace)(*saved)
            total = term if total is None else total + term
        if total is not None and aval(total)[0] != aval(out)[0]:
            total = _gnp().broadcast_to(total, aval(out)[0])
        return total

    def vjp(self, ct, saved, params, avals, needed, fast):
        namespace = backend.array_module(ct) if fast else _gnp()
        saved = _scalars_as_arrays(saved, ct)
        result = []
        for k in range(self.arity):
            c = self.partial_constants[k]
            if not needed[k] or c == 0:
                result.append(None)
                continue
            contrib = ct if c == 1 else -ct if c == -1 else ct * self.function(k, namespace)(*saved)
            result.append(sum_to(contrib, *avals[k]))
        return result

    def format(self, args, params):
        if self.symbol and self.arity == 2:
            return f"{args[0]} {self.symbol} {args[1]}"
        if self.symbol and self.arity == 1:
            return f"{self.symbol}{args[0]}"
        return f"{self.name}({', '.join(args)})"

    def format_adjoint(self, k, ct_name, args, out_name, params):
        p = self.partials[k]
        if p.constant == 1:
            return ct_name
        if p.constant == -1:
            return f"-{ct_name}"
        text = p.show(dict(zip(self.args, args), out=out_name))
        return f"{ct_name} * {text if p.tree.__class__.__name__ in ('Name', 'Call', 'Constant') else f'({text})'}"


def _scalars_as_arrays(saved, like):
    """Python-scalar arguments as 0-d arrays of ``like``'s dtype (the dtype they took part in), so a partial
    such as ``1 / y`` gives inf at y = 0, as NumPy does, instead of raising ZeroDivisionError."""
    if not any(type(v) in backend.PYTHON_SCALARS for v in saved):
        return saved
    value = raw(like)
    module = backend.array_module(value)
    return tuple(module.asarray(v, dtype=value.dtype) if type(v) in backend.PYTHON_SCALARS else v for v in saved)


def sum_to(value, shape, dtype):
    """``value`` summed over the axes along which an operand of ``shape`` was broadcast, cast to ``dtype``."""
    vshape, vdtype = aval(value)
    if vshape == shape and (vdtype == dtype or dtype is None or vdtype is None):
        return value
    from .ops.structural import CONVERT, RESHAPE, SUM
    if vshape != shape:
        lead = len(vshape) - len(shape)
        axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and vshape[i + lead] != 1)
        if axes:
            value = SUM.bind(value, axis=axes, keepdims=False)
        if aval(value)[0] != shape:
            value = RESHAPE.bind(value, shape=shape)
    vdtype = aval(value)[1]
    if dtype is not None and vdtype is not None and vdtype != dtype:
        value = CONVERT.bind(value, dtype=dtype)
    return value


# ---------------------------------------------------------------------------------------------------------
# Linear and multilinear ops: JVP = the op on tangents, VJP = a transpose rule
# ---------------------------------------------------------------------------------------------------------

class Linear(Primitive):
    """An op linear in its arguments jointly (``multilinear=False``: concatenate) or in each separately
    (``multilinear=True``: matmul). ``transpose(ct, primals_or_avals, params, k)`` gives argument k's cotangent;
    multilinear ops save their inputs (the other factor), linear ones save nothing but shapes.
    """

    def __init__(self, name, impl, transpose, multilinear=False, format=None, adjoint=None):
        super().__init__(name)
        self._impl = impl
        self._transpose = transpose
        self.multilinear = multilinear
        self._format = format
        self._adjoint = adjoint
        self.saves = ("x", "y") if multilinear else ()

    def impl(self, *args, **params):
        return self._impl(backend.array_module(*args), *args, **params)

    def jvp(self, primals, tangents, out, params):
        if self.multilinear:
            total = None
            for k, t in enumerate(tangents):
                if t is None:
                    continue
                args = list(primals)
                args[k] = t
                term = self.bind(*args, **params)
                total = term if total is None else total + term
            return total
        if all(t is None for t in tangents):
            return None
        filled = [t if t is not None else _zeros_like(p) for p, t in zip(primals, tangents)]
        return self.bind(*filled, **params)

    def save(self, primals, out):
        return tuple(primals) if self.multilinear else ()

    def vjp(self, ct, saved, params, avals, needed, fast):
        return [self._transpose(ct, saved, params, avals, k) if needed[k] else None for k in range(len(avals))]

    def format(self, args, params):
        return self._format(args, params) if self._format else super().format(args, params)

    def format_adjoint(self, k, ct_name, args, out_name, params):
        return self._adjoint(k, ct_name, args, params) if self._adjoint else super().format_adjoint(
            k, ct_name, args, out_name, params)


class Custom(Primitive):
    """An op whose JVP and VJP are written by hand with traced ops (bind), for ops neither elementwise nor
    linear. ``saves`` names what ``vjp`` receives."""

    def __init__(self, name, impl, jvp, vjp, saves=("x", "out"), nondiff=()):
        super().__init__(name)
        self._impl, self._jvp, self._vjp = impl, jvp, vjp
        self.saves = saves
        self.nondiff = nondiff

    def impl(self, *args, **params):
        return self._impl(backend.array_module(*args), *args, **params)

    def jvp(self, primals, tangents, out, params):
        return self._jvp(primals, tangents, out, params)

    def vjp(self, ct, saved, params, avals, needed, fast):
        return self._vjp(ct, saved, params, avals, needed)


def _zeros_like(p):
    v = raw(p)
    module = backend.array_module(v)
    return module.zeros(aval(v)[0], dtype=aval(v)[1] or module.float64)
