"""``gpuad.nn``: the numerically stable activation and loss functions of neural-network code.

``logsumexp``, ``softmax``, ``log_softmax``, ``sigmoid``, ``log_sigmoid``, ``relu``, ``softplus`` and
``softmax_cross_entropy``, composed from ``gpuad.numpy`` ops so that every derivative order comes from the
primitives' rules. They stay finite in the value and in derivatives of every order for logits as large as
``1e4`` or ``-1e4``: the softmax family subtracts the maximum along the reduced axes first (a constant: it is
taken from the values, like ``stop_gradient``, which is exact because the results do not depend on the shift),
and ``sigmoid``/``softplus`` only ever take ``exp`` of ``-|x|`` (at most 1). Each works on plain arrays too.
They take real values only (complex ones raise a TypeError: the shifts and signs need an order).

**The NaN trap of ``where``.** ``gnp.where(x > 0, gnp.log(x), 0)`` has the right value but a NaN gradient at
``x = 0``: the backward pass sends a zero cotangent to the unselected branch and multiplies it by that branch's
derivative there, ``1 / x = inf``, and ``0 * inf`` is NaN (the same happens wherever the unselected branch is
``nan`` or ``inf``). Make the unselected branch harmless before computing it, with a second ``where``::

    safe = gnp.where(x > 0, x, 1)                 # a value where log is fine, wherever the result ignores it
    y = gnp.where(x > 0, gnp.log(safe), 0)        # same value; gradient 1/x where x > 0 and exactly 0 elsewhere

``sigmoid``, ``softplus`` and the probability-label branch of ``softmax_cross_entropy`` below are written that
way.
"""
from __future__ import annotations


import math

import numpy as _np

from . import backend
from . import numpy as gnp
from .core import aval, is_batched, is_complex_dtype, is_real_float_dtype, map_values, raw, Tensor
from .numpy._dispatch import normalize_axes


__all__ = ["logsumexp", "softmax", "log_softmax", "sigmoid", "log_sigmoid", "relu", "softplus",
           "softmax_cross_entropy"]


def _array(x, name):
    """Tensors stay as they are; numbers and lists become arrays (of the backend the values live on). Complex
    values are refused: these functions order their inputs (max shifts, signs), which complex numbers lack."""
    x = gnp.asarray(x)
    if is_complex_dtype(aval(x)[1]):
        raise TypeError(f"gpuad.nn.{name} is defined for real values only, but got {aval(x)[1]}; apply it to the "
                        f"real part, the imaginary part or the absolute value, as the model intends")
    return x


def _shift(x, axis):
    """The maximum of ``x`` along ``axis`` (kept as size-1 axes) as a plain array: a constant to every trace.
    Rows whose maximum is not finite (all -inf) get 0, so that ``x - shift`` stays -inf instead of NaN."""
    shape = aval(x)[0]
    if math.prod(shape) == 0:
        raise ValueError("gpuad.nn: cannot reduce an empty array (it has no maximum to shift by)")
    axes = tuple(a - len(shape) for a in normalize_axes(axis, len(shape), allow_repeated=True))  # vmap: from the end

    def shift(v):
        xp = backend.array_module(v)
        m = xp.max(v, axis=axes, keepdims=True)
        return backend.where(xp.isfinite(m), m, xp.zeros_like(m))
    return map_values(shift, x)


def _reduced_shape(shape, axis):
    axes = normalize_axes(axis, len(shape), allow_repeated=True, sort=True)
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def logsumexp(x, axis=None, *, keepdims=False, b=None):
    """``log(sum(b * exp(x), axis))`` without overflow. ``b`` (optional weights, broadcast against ``x``) must
    give a positive sum; ``keepdims`` keeps the reduced axes with size one. The gradient is ``softmax``.
    (``keepdims`` and ``b`` are keyword-only, as positional order differs between SciPy and other libraries.)"""
    x = _array(x, "logsumexp")
    if b is not None:
        b = _array(b, "logsumexp")
        shape = _np.broadcast_shapes(aval(x)[0], aval(b)[0])
        x = gnp.broadcast_to(x, shape)
    shift = _shift(x, axis)
    terms = gnp.exp(x - shift)
    if b is not None:
        terms = terms * b
    out = gnp.log(gnp.sum(terms, axis=axis, keepdims=True)) + shift
    return out if keepdims else gnp.reshape(out, _reduced_shape(aval(x)[0], axis))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x), axis)``, computed as ``exp(x - max) / sum(exp(x - max))``: entries in [0, 1]."""
    x = _array(x, "softmax")
    e = gnp.exp(x - _shift(x, axis))
    return e / gnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x, axis, keepdims=True)``, finite wherever ``x`` is (no ``log`` of an underflowed 0)."""
    x = _array(x, "log_softmax")
    shifted = x - _shift(x, axis)
    return shifted - gnp.log(gnp.sum(gnp.exp(shifted), axis=axis, keepdims=True))


def _minus_abs(x):
    """``-|x|`` with derivative +1 for x <= 0 and -1 for x > 0: at 0 it follows the x <= 0 side's smooth formula
    (the kink of ``-|x|`` cancels in sigmoid and softplus, whose derivatives at 0 are then exact)."""
    return gnp.where(x > 0, -x, x)


def sigmoid(x):
    """``1 / (1 + exp(-x))``, evaluated as ``1 / (1 + exp(-x))`` for x > 0 and ``exp(x) / (1 + exp(x))`` for
    x <= 0, so ``exp`` never overflows; full relative precision in both tails."""
    x = _array(x, "sigmoid")
    e = gnp.exp(_minus_abs(x))  # in (0, 1]
    return gnp.where(x > 0, 1, e) / (1 + e)


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, finite for every finite x."""
    return -softplus(-_array(x, "log_sigmoid"))


def relu(x):
    """``max(x, 0)``; its derivative at 0 is taken as 0 (the subgradient JAX and PyTorch use)."""
    x = _array(x, "relu")
    return gnp.where(x > 0, x, 0)


def softplus(x):
    """``log(1 + exp(x))``, evaluated as ``relu(x) + log1p(exp(-|x|))``: no overflow, and exact derivatives of
    every order at 0 too (softplus'(0) = 1/2, softplus''(0) = 1/4)."""
    x = _array(x, "softplus")
    return relu(x) + gnp.log1p(gnp.exp(_minus_abs(x)))


_REDUCTIONS = ("mean", "sum", "none")


def softmax_cross_entropy(logits, labels, axis=-1, reduction="mean"):
    """Cross-entropy between ``softmax(logits, axis)`` and ``labels``, one loss per example, then reduced.

    ``labels`` is either an integer array of class indices with the logits' shape less the class ``axis``, or a
    floating-point array of probabilities (one-hot or soft targets) broadcastable to the logits' shape; its dtype
    decides which (constant probabilities are cast to the logits' float dtype, so float32 logits give a float32
    loss). Each example's loss is ``-sum(p * log_softmax(logits))`` (for indices, ``-log_softmax`` at the
    label, computed as ``logsumexp`` minus the logit at the label). ``reduction``: ``"mean"`` (the default: the average over examples), ``"sum"``, or ``"none"`` (the
    per-example losses, shaped like the logits less the class axis). Stable for logits of any finite size; the
    gradient with respect to the logits is ``softmax(logits) - p`` (scaled by the reduction).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"softmax_cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    logits = _array(logits, "softmax_cross_entropy")
    shape = aval(logits)[0]
    if len(shape) == 0:
        raise ValueError("softmax_cross_entropy: logits must have a class axis (at least one dimension)")
    axis = normalize_axes(axis, len(shape), allow_repeated=True, sort=True)
    if len(axis) != 1:
        raise ValueError(f"softmax_cross_entropy: axis must be one axis (the class axis), got {axis}")
    axis = axis[0]
    labels = labels if hasattr(labels, "dtype") else backend.array_module(raw(logits)).asarray(labels)
    kind = aval(labels)[1].kind
    if kind in "iu":
        # logsumexp(logits) - the logit at the label: the same value as -log_softmax at the label, in fewer
        # passes over the logits (max, exp, sum; no log-probabilities of the logits' size, no one-hot mask);
        # the gradient is the softmax from logsumexp's backward, and the gather's transpose subtracts the
        # cotangent at the labels in place (recorded first, it runs last, into the softmax's buffer).
        index = map_values(lambda v: _class_index(v, shape, axis), labels)
        if is_batched(index):  # per-example labels under vmap: gathered by take_along_axis's batched path
            picked = gnp.take_along_axis(logits, index, axis)
        else:
            picked = logits[_gather_index(raw(index), shape, axis)]
        losses = gnp.reshape(logsumexp(logits, axis, keepdims=True) - picked, _reduced_shape(shape, axis))
    elif is_real_float_dtype(aval(labels)[1]):
        lshape = aval(labels)[0]
        try:
            fits = _np.broadcast_shapes(lshape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"softmax_cross_entropy: floating-point labels are probabilities and must broadcast to the logits' "
                f"shape {shape}, but they have shape {lshape}; for class indices pass an integer array "
                f"(labels.astype(int))")
        log_p = log_softmax(logits, axis)
        if not isinstance(labels, Tensor) and is_real_float_dtype(aval(log_p)[1]):
            labels = labels.astype(aval(log_p)[1], copy=False)  # constant targets follow the logits' precision
        # Double where: a zero probability times a -inf log-probability (a masked logit) stays 0, gradients too.
        nonzero = map_values(lambda v: v != 0, labels)
        losses = -gnp.sum(labels * gnp.where(nonzero, log_p, 0), axis=axis)
    else:
        raise TypeError(f"softmax_cross_entropy: labels must be integer class indices or floating-point "
                        f"probabilities, got dtype {aval(labels)[1]}")
    if reduction == "none":
        return losses
    return gnp.sum(losses) if reduction == "sum" else gnp.mean(losses)


def _class_index(labels, shape, axis):
    """The class indices ``labels`` checked and given a size-1 ``axis``: the index ``take_along_axis`` reads
    each example's logit with."""
    xp = backend.array_module(labels)
    expected = shape[:axis] + shape[axis + 1:]
    if tuple(labels.shape[labels.ndim - len(expected):]) != expected:  # (under vmap, the batch axes in front)
        raise ValueError(f"softmax_cross_entropy: integer labels are class indices and must have the logits' shape "
                         f"without the class axis, {expected}, but they have shape {tuple(labels.shape)}; for "
                         f"probabilities pass a floating-point array")
    classes = shape[axis]
    if labels.size and backend.on_host(xp):  # checked where reading the labels costs no device-to-host transfer
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise ValueError(f"softmax_cross_entropy: class indices must lie in [0, {classes}), but they range "
                             f"from {low} to {high}")
    return xp.expand_dims(labels, axis - len(shape))


def _gather_index(index, shape, axis):
    """The advanced index that reads ``x[..., index, ...]`` along ``axis`` (``index`` has size 1 there), as
    ``take_along_axis`` does: one integer array per axis, broadcasting to the logits' shape with size 1 along
    ``axis``."""
    xp = backend.array_module(index)
    return tuple(index if d == axis else xp.arange(n).reshape((1,) * d + (n,) + (1,) * (len(shape) - d - 1))
                 for d, n in enumerate(shape))
