"""Forward mode: dual numbers (value, tangent) pushed through each primitive's JVP rule, with no tape.

A ``ForwardTrace`` boxes each value with its tangent in a ``DualTensor``; applying a primitive computes the
primal one level down and the output tangent from the primitive's JVP rule, then drops the inputs. Nothing is
recorded, so the extra memory is the tangents of the values alive at the moment, whatever the length of the
program. A missing tangent is a symbolic zero (None): it is never materialised as an array of zeros.
"""
from __future__ import annotations

from .core import Tensor, Trace, aval, bind, is_real_float_dtype


class DualTensor(Tensor):
    """A value of a forward-mode trace: its primal and its tangent (None: a symbolic zero)."""

    __slots__ = ("_tangent",)

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self._primal = primal
        self._tangent = tangent


class ForwardTrace(Trace):
    def box(self, primal, tangent):
        return DualTensor(self, primal, tangent)

    def tangent_of(self, value):
        """The tangent of ``value`` at this trace's level (None when it does not depend on the inputs)."""
        return value._tangent if isinstance(value, DualTensor) and value._trace is self else None

    def process(self, prim, args, params):
        primals, tangents = [], []
        any_tangent = False
        for a in args:
            if type(a) is DualTensor and a._trace is self:
                primals.append(a._primal)
                tangents.append(a._tangent)
                any_tangent = any_tangent or a._tangent is not None
            else:
                primals.append(a)
                tangents.append(None)
        hook = prim.forward_and_jvp  # gpuad.custom / gpuad.recompute: output and tangent in one call
        if hook is not None and any_tangent:
            for k in prim.nondiff:
                tangents[k] = None
            out, tangent = hook(primals, tangents, params)
            return out if tangent is None else DualTensor(self, out, tangent)
        out = bind(prim, primals, params)
        if not any_tangent:
            return out
        dtype = aval(out)[1]
        if dtype is None or (dtype.kind != "f" and dtype.kind != "c" and not is_real_float_dtype(dtype)):
            return out  # integer and boolean results carry no derivative
        for k in prim.nondiff:
            tangents[k] = None
        tangent = prim.jvp(primals, tangents, out, params)
        if tangent is None:
            return out
        return DualTensor(self, out, tangent)
