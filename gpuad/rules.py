"""Primitive kinds: how one rule-table row becomes a forward evaluation, a JVP and a VJP.

``Primitive`` is what a trace records and ``bind`` dispatches. Three kinds cover every op:

* ``Elementwise`` rows (in ``gpuad.ops.elementwise``, with the kind itself, since its rules need the broadcast
  primitives of ``gpuad.ops.linear``) give a forward expression and one partial derivative per argument.
* ``Linear`` rows are ops linear in their differentiable arguments (reshape, sum, indexing, concatenate) or
  multilinear (matmul): the JVP applies the op to the tangents, the VJP is a transpose rule.
* ``Custom`` rows (max reduction, prod, the linear-algebra decompositions) write their JVP and VJP with
  primitives.

Rules are written with ``bind`` on primitives, so they are differentiable themselves: higher-order derivatives
come from running the same rules on traced values.
"""
from __future__ import annotations

from . import backend
from .core import aval, bind, raw

ARG_NAMES = ("x", "y", "z")


class Primitive:
    """An op the tape can record. ``saves`` names what the backward pass keeps (inputs by name, or "out")."""

    saves: tuple[str, ...] = ()
    nondiff: tuple[int, ...] = ()  # argument positions that never carry a derivative
    # vmap's rule: batch(args, batched, params) -> the result with the batch axis in front, where ``args`` are
    # seen one level below the batch and ``batched[k]`` says whether args[k] has the batch axis in front
    # (``gpuad.batching``; elementwise rows need none, Linear and Custom rows set theirs beside the row).
    batch = None
    # Hooks for primitives that run user code (gpuad.custom, gpuad.recompute); None for every rule-table row.
    # ``forward_and_save(primals, params) -> (out, saved)``: the Tape computes the output and what it keeps in
    # one call (custom_vjp runs ``fwd`` and keeps its residuals) instead of ``bind`` + ``save``.
    # ``forward_and_jvp(primals, tangents, params) -> (out, tangent)``: forward mode computes both in one call
    # (custom_jvp runs its rule, checkpoint runs ``jvp`` of its function) instead of ``bind`` + ``jvp``.
    forward_and_save = None
    forward_and_jvp = None
    # ``transpose_into(buffer, ct, params)``: adds the transpose of ``ct`` into ``buffer`` (the cotangent of
    # argument 0) in place; the raw backward pass uses it instead of ``vjp`` where it exists (getitem: a slice's
    # cotangent is added into its slice of the buffer, not scattered into zeros of the whole and then added).
    transpose_into = None

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

    def format_adjoint(self, k, ct_name, args, out_name, params, dtype=None) -> str:
        """Argument k's adjoint term as text (``dtype``: the argument's; None when the term is zero)."""
        return f"{self.name}_vjp[{k}]({ct_name})"

    def __repr__(self):
        return f"<primitive {self.name}>"


def _short(v):
    text = repr(v)
    return text if len(text) < 40 else text[:37] + "..."


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
        filled = [t if t is not None else backend.float_zeros_like(raw(p), aval(p)[0])
                  for p, t in zip(primals, tangents)]
        return self.bind(*filled, **params)

    def save(self, primals, out):
        return tuple(primals) if self.multilinear else ()

    def vjp(self, ct, saved, params, avals, needed, fast):
        return [self._transpose(ct, saved, params, avals, k) if needed[k] else None for k in range(len(avals))]

    def format(self, args, params):
        return self._format(args, params) if self._format else super().format(args, params)

    def format_adjoint(self, k, ct_name, args, out_name, params, dtype=None):
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
