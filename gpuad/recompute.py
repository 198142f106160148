"""Rematerialisation: ``checkpoint`` (JAX's ``jax.checkpoint``, PyTorch's ``torch.utils.checkpoint``).

A call of a checkpointed function on traced arguments binds one primitive (a ``CheckpointCall``, see
``gpuad.custom.UserCall`` for the flattening of arguments and the packing of outputs). The tape keeps only its
float inputs; its VJP recomputes the inside with ``gpuad.vjp`` on a fresh tape (so the recomputation records
fused elementwise regions and its backward pass runs them as fused kernels, as any gradient does) and pulls the
cotangent through it. When an outer transform records, the recomputation is traced too, so checkpoints nest
and work at every order. Forward mode runs ``gpuad.jvp`` of the function (nothing is kept).

A ``policy`` names intermediates that may still be saved: the forward pass then runs the function under a
``_Saver`` trace that keeps the outputs of the primitives the policy accepts, and the recomputation runs under
a ``_Replayer`` trace that hands each kept output back in order (as a ``Precomputed`` primitive: the original
primitive's rules with the saved value as its result) instead of computing it again.
"""
from __future__ import annotations

import functools

from .core import Tensor, Trace, aval, bind, is_float_dtype, lower, raw
from .custom import UserCall, _fill_zeros, pull_through
from .rules import Primitive
from .transforms import jvp as _jvp
from . import tree

__all__ = ["checkpoint", "checkpoint_policies", "remat"]


# ---- policies ----------------------------------------------------------------------------------------------

def _names(*names):
    wanted = frozenset(names)

    def policy(prim):
        return prim.name in wanted
    policy.__name__ = f"save_only_these_names{tuple(sorted(wanted))}"
    return policy


class checkpoint_policies:
    """Ready-made policies (after ``jax.checkpoint_policies``): a policy is a callable ``policy(primitive) ->
    bool`` that says whether that primitive's output may be saved in the forward pass."""

    @staticmethod
    def nothing_saveable(prim):
        return False

    @staticmethod
    def everything_saveable(prim):
        return True

    dots_saveable = staticmethod(_names("matmul", "einsum"))

    @staticmethod
    def save_only_these_names(*names):
        """Save the outputs of the primitives with these names (e.g. ``"matmul"``, ``"exp"``)."""
        return _names(*names)


def _policy(policy):
    if policy is None or policy is checkpoint_policies.nothing_saveable:
        return None
    if isinstance(policy, str):
        return _names(policy)
    if isinstance(policy, (tuple, list, set, frozenset)):
        if not all(isinstance(n, str) for n in policy):
            raise TypeError(f"checkpoint: a policy list must hold primitive names (str), got {policy!r}")
        return _names(*policy)
    if callable(policy):
        return policy
    raise TypeError(f"checkpoint: policy must be None, a primitive name, a list of names or a callable "
                    f"policy(primitive) -> bool, got {policy!r}")


# ---- saving and replaying intermediates ---------------------------------------------------------------------

class _PolicyBox(Tensor):
    __slots__ = ()


class _Saver(Trace):
    """Runs the function once, keeping the raw outputs of the primitives the policy accepts, in order."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy
        self.kept = []

    def process(self, prim, args, params):
        out = bind(prim, [lower(a, self) for a in args], params)
        if self.policy(prim):
            self.kept.append(raw(out))
        dtype = aval(out)[1]
        return _PolicyBox(self, out) if is_float_dtype(dtype) else out


class Precomputed(Primitive):
    """``prim`` with a known result: its rules, but ``impl`` returns the value saved in the forward pass."""

    def __init__(self, prim, value):
        super().__init__(prim.name)
        self.prim, self.value = prim, value
        self.nondiff = prim.nondiff
        self.save = prim.save

    def impl(self, *args, **params):
        return self.value

    def jvp(self, primals, tangents, out, params):
        return self.prim.jvp(primals, tangents, out, params)

    def vjp(self, ct, saved, params, avals, needed, fast):
        return self.prim.vjp(ct, saved, params, avals, needed, fast)

    def format(self, args, params):
        return self.prim.format(args, params)

    def format_adjoint(self, k, ct_name, args, out_name, params, dtype=None):
        return self.prim.format_adjoint(k, ct_name, args, out_name, params, dtype)


class _Replayer(_Saver):
    """Runs the function again, handing back the kept outputs instead of recomputing them."""

    def __init__(self, policy, kept):
        super().__init__(policy)
        self.kept = kept
        self.pos = 0
        self.reused = 0

    def process(self, prim, args, params):
        lowered = [lower(a, self) for a in args]
        if self.pos < len(self.kept) and self.policy(prim):
            value = self.kept[self.pos]
            self.pos += 1
            if value is not None and hasattr(value, "shape"):
                self.reused += 1
                prim = Precomputed(prim, value)
        out = bind(prim, lowered, params)
        dtype = aval(out)[1]
        return _PolicyBox(self, out) if is_float_dtype(dtype) else out


def _run_under(trace, fun, args_of, dyn):
    """``fun(*args_of(boxed dyn))`` with ``trace`` recording, its output seen below ``trace``."""
    trace.start()
    try:
        out = fun(*args_of([_PolicyBox(trace, v) for v in dyn]))
    finally:
        trace.stop()
    leaves, treedef = tree.flatten(out)
    return tree.unflatten(treedef, [lower(v, trace) for v in leaves])


# ---- the primitive ------------------------------------------------------------------------------------------

# Statistics for tests and benchmarks: primitives outputs reused from the forward pass by the policy.
stats = {"recomputations": 0, "reused": 0}


class CheckpointCall(UserCall):
    def __init__(self, fun, args, policy):
        super().__init__("checkpoint", fun, args, ())
        self.policy = policy
        if policy is None:
            self.forward_and_save = None  # the Tape's plain path: bind (impl runs fun) and save (the inputs)

    def save(self, primals, out):
        return tuple(primals)

    def forward_and_save(self, primals, params):
        saver = _Saver(self.policy)
        out = _run_under(saver, self.fun, self.full_args, primals)
        return self.set_output(out, "the function"), tuple(primals) + tuple(saver.kept)

    def forward_and_jvp(self, primals, tangents, params):
        return _jvp(self.flat_fun, tuple(primals), tuple(_fill_zeros(primals, tangents)))

    def jvp(self, primals, tangents, out, params):
        return self.forward_and_jvp(primals, tangents, params)[1]

    def vjp(self, ct, saved, params, avals, needed, fast):
        n = len(self.dyn)
        inputs, kept = list(saved[:n]), list(saved[n:])
        idx = [k for k, need in enumerate(needed) if need]
        if not idx:
            return [None] * n
        stats["recomputations"] += 1

        def recompute(*ts):
            dyn = list(inputs)
            for k, t in zip(idx, ts):
                dyn[k] = t
            if not kept:
                return self.flat_fun(*dyn)
            replay = _Replayer(self.policy, kept)
            out = _run_under(replay, self.fun, self.full_args, dyn)
            stats["reused"] += replay.reused
            return self.set_output(out, "the function")

        grads = pull_through(recompute, [inputs[k] for k in idx], ct)
        result = [None] * n
        for k, g in zip(idx, grads):
            result[k] = g
        return result


def checkpoint(fun=None, *, policy=None):
    """``fun`` with its inside recomputed in the backward pass instead of stored (usable as a decorator, with or
    without arguments: ``@checkpoint`` or ``@checkpoint(policy=...)``).

    Reverse mode keeps only ``fun``'s float inputs; the backward pass runs ``fun`` again on a fresh tape and
    pulls the cotangent through it: the same gradient, for one more forward evaluation of ``fun``. Nested
    checkpoints, forward mode (``jvp``, which keeps nothing anyway) and higher orders work. ``policy`` names the
    intermediates that may still be saved and are then reused rather than recomputed: a primitive name
    (``"matmul"``), a list of names, or a callable ``policy(primitive) -> bool`` such as
    ``checkpoint_policies.dots_saveable``. Arguments and outputs may be pytrees; float array leaves carry
    derivatives, other leaves are constants. ``fun`` must not close over traced values (pass them as
    arguments): its inside is run again on the inputs alone.
    """
    if fun is None:
        return lambda f: checkpoint(f, policy=policy)
    rule = _policy(policy)

    @functools.wraps(fun)
    def checkpointed(*args, **kwargs):
        if kwargs:
            raise TypeError(f"checkpointed function {getattr(fun, '__name__', 'fun')}: pass arguments positionally")
        return CheckpointCall(fun, args, rule).call()

    return checkpointed


remat = checkpoint
