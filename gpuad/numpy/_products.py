"""gpuad.numpy's products: matmul, dot, tensordot, inner, outer, vdot, vecdot, einsum and kron.

matmul binds the ``MATMUL`` row of ``gpuad.ops.linear``; dot, tensordot, inner, outer, vdot and vecdot are
compositions of it (transposes and reshapes around one matrix product) or of multiply and sum (on complex values
only vdot and vecdot conjugate, their first argument, as in NumPy; the others are bilinear). ``einsum`` parses
NumPy's subscripts (implicit and explicit output, ellipsis, repeated indices, the sublist form) into one
canonical letters-only form and binds the single multilinear ``EINSUM`` row of ``gpuad.ops.linalg``; size-1
axes that broadcast against a longer axis of the same index are reshaped away first, so the row's transpose
never has to undo a broadcast. ``kron`` is a broadcast product reshaped block by block. With no traced
argument, each function is NumPy's (or CuPy's) own.
"""
from __future__ import annotations

import math
import string

import numpy as _np

from ..core import aval, Tensor
from ..ops.linalg import EINSUM
from ..ops.linear import MATMUL
from ._creation import asarray
from ._dispatch import no_out, traceable
from ._elementwise import conj_if_complex, multiply
from ._reductions import sum
from ._shapes import astype, ravel, reshape, size, transpose

__all__ = ["matmul", "tensordot", "dot", "vdot", "inner", "outer", "vecdot", "einsum", "kron"]


# ---- matrix products ------------------------------------------------------------------------------------------

@traceable
def matmul(x1, x2, out=None):
    no_out("matmul", out=out)
    if len(aval(x1)[0]) == 0 or len(aval(x2)[0]) == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions (use multiply for scalars)")
    return MATMUL.bind(x1, x2)


@traceable
def tensordot(a, b, axes=2):
    sa, sb = aval(a)[0], aval(b)[0]
    if isinstance(axes, int):
        ax_a = list(range(len(sa) - axes, len(sa)))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, int) else list(ax_b)
    if isinstance(axes, int) and not 0 <= axes <= min(len(sa), len(sb)):
        raise ValueError(f"tensordot: axes={axes} must be between 0 and the smaller operand's ndim")
    if len(ax_a) != len(ax_b):
        raise ValueError(f"tensordot: axes pair {len(ax_a)} axes of a with {len(ax_b)} of b; "
                         f"give as many of each")
    ax_a = [x % len(sa) for x in ax_a]
    ax_b = [x % len(sb) for x in ax_b]
    for i, j in zip(ax_a, ax_b):
        if sa[i] != sb[j]:
            raise ValueError(f"shape-mismatch for sum: tensordot contracts axis {i} of a (length {sa[i]}) with "
                             f"axis {j} of b (length {sb[j]})")
    free_a = [i for i in range(len(sa)) if i not in ax_a]
    free_b = [i for i in range(len(sb)) if i not in ax_b]
    k = math.prod(sa[i] for i in ax_a)
    a2 = reshape(transpose(a, free_a + ax_a), (math.prod(sa[i] for i in free_a), k))
    b2 = reshape(transpose(b, ax_b + free_b), (k, math.prod(sb[i] for i in free_b)))
    return reshape(matmul(a2, b2), tuple(sa[i] for i in free_a) + tuple(sb[i] for i in free_b))


@traceable
def dot(a, b, out=None):
    no_out("dot", out=out)
    na, nb = len(aval(a)[0]), len(aval(b)[0])
    if na == 0 or nb == 0:
        return multiply(a, b)
    if nb <= 2 and na <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([-1], [0 if nb == 1 else -2]))


@traceable
def vdot(a, b):
    """numpy.vdot: sum(conj(a) * b) over the flattened arrays (the first argument is conjugated)."""
    if size(a) != size(b):
        raise ValueError(f"vdot: vectors have different lengths ({size(a)} and {size(b)} elements)")
    return sum(ravel(conj_if_complex(a)) * ravel(b))


@traceable
def inner(a, b):
    if len(aval(a)[0]) == 0 or len(aval(b)[0]) == 0:
        return multiply(a, b)
    return tensordot(a, b, axes=([-1], [-1]))


@traceable
def outer(a, b, out=None):
    no_out("outer", out=out)
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


@traceable
def vecdot(x1, x2, axis=-1):
    """numpy.vecdot: sum(conj(x1) * x2) along ``axis`` (the first argument is conjugated)."""
    return sum(conj_if_complex(x1) * x2, axis=axis)


# ---- einsum ---------------------------------------------------------------------------------------------------

# NumPy's sublist form numbers indices 0-51 as A-Z then a-z.
_SUBLIST_LETTERS = string.ascii_uppercase + string.ascii_lowercase


def _sublist_text(sublist):
    out = []
    for item in sublist:
        if item is Ellipsis:
            out.append("...")
        elif isinstance(item, (int, _np.integer)) and 0 <= item < 52:
            out.append(_SUBLIST_LETTERS[item])
        else:
            raise ValueError(f"einsum: subscript {item!r} in a sublist must be an int in [0, 52) or Ellipsis")
    return "".join(out)


def _split_operands(operands):
    """(subscripts string, arrays) from either calling form."""
    if not operands:
        raise ValueError("einsum: no subscripts given")
    if isinstance(operands[0], str):
        return operands[0], list(operands[1:])
    arrays, sublists = list(operands[0::2]), list(operands[1::2])
    output = None
    if len(arrays) > len(sublists):  # an odd count: the last item is the output sublist
        output = arrays.pop()
    text = ",".join(_sublist_text(s) for s in sublists)
    if output is not None:
        text += "->" + _sublist_text(output)
    return text, arrays


def _parse_einsum(subscripts, shapes):
    """Canonical (input subscripts, output subscript) with every ellipsis replaced by explicit letters."""
    subscripts = subscripts.replace(" ", "")
    if subscripts.count("->") > 1:
        raise ValueError("einsum: the subscripts contain '->' more than once")
    explicit = "->" in subscripts
    inputs_text, output = subscripts.split("->") if explicit else (subscripts, None)
    inputs = inputs_text.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: the subscripts name {len(inputs)} operand(s) but {len(shapes)} were given")
    for text in inputs + ([output] if explicit else []):
        stray = set(text.replace("...", "")) - set(string.ascii_letters)
        if stray or text.count("...") > 1:
            raise ValueError(f"einsum: invalid subscripts {text!r}: use letters and at most one '...' per operand")
    used = set(subscripts)
    spare = [c for c in string.ascii_letters if c not in used]
    ellipsis_dims = []
    for text, shape in zip(inputs, shapes):
        letters = len(text.replace("...", ""))
        extra = len(shape) - letters
        if extra < 0 or (extra > 0 and "..." not in text):
            raise ValueError(f"einsum: operand subscripts {text!r} do not match an operand of {len(shape)} "
                             f"dimension(s)")
        ellipsis_dims.append(extra)
    n_ellipsis = max(ellipsis_dims, default=0)
    if n_ellipsis > len(spare):
        raise ValueError("einsum: too many dimensions under '...' (52 index letters in all)")
    ellipsis_letters = "".join(spare[:n_ellipsis])
    inputs = [t.replace("...", ellipsis_letters[n_ellipsis - d:]) for t, d in zip(inputs, ellipsis_dims)]
    if explicit:
        if "..." in output:
            output = output.replace("...", ellipsis_letters)
        elif n_ellipsis and any(ellipsis_dims):
            raise ValueError("einsum: the output has no '...' but the operands have dimensions under '...'; "
                             "add '...' to the output subscripts")
        if len(set(output)) != len(output):
            raise ValueError(f"einsum: output subscripts {output!r} repeat an index")
        missing = set(output) - set("".join(inputs))
        if missing:
            raise ValueError(f"einsum: output index {sorted(missing)[0]!r} never appears in an input")
    else:
        counts = {}
        for text in inputs:
            for c in text:
                counts[c] = counts.get(c, 0) + 1
        output = ellipsis_letters + "".join(sorted(c for c, n in counts.items()
                                                   if n == 1 and c not in ellipsis_letters))
    return inputs, output


def _drop_broadcast_axes(inputs, arrays):
    """Reshape away size-1 axes whose index is longer elsewhere (NumPy broadcasts them)."""
    sizes = {}
    for text, a in zip(inputs, arrays):
        for c, n in zip(text, aval(a)[0]):
            if n != 1:
                if sizes.get(c, n) != n:
                    raise ValueError(f"einsum: index {c!r} has sizes {sizes[c]} and {n}, which do not broadcast")
                sizes[c] = n
    new_inputs, new_arrays = [], []
    for text, a in zip(inputs, arrays):
        shape = aval(a)[0]
        keep = [i for i, (c, n) in enumerate(zip(text, shape))
                if not (n == 1 and sizes.get(c, 1) > 1 and text.count(c) == 1)]
        if len(keep) != len(text):
            a = reshape(a, tuple(shape[i] for i in keep))
            text = "".join(text[i] for i in keep)
        for c in set(text):  # a repeated index must have one length within its operand
            lengths = {n for t, n in zip(text, aval(a)[0]) if t == c}
            if len(lengths) > 1:
                raise ValueError(f"einsum: repeated index {c!r} has different lengths {sorted(lengths)} in one "
                                 f"operand")
        new_inputs.append(text)
        new_arrays.append(a)
    return new_inputs, new_arrays


@traceable
def einsum(*operands, out=None, optimize=False, dtype=None, order="K", casting="safe"):
    """numpy.einsum, differentiable in every operand (all subscript forms; ``optimize`` is passed on)."""
    if out is not None:
        raise TypeError("gpuad.numpy.einsum: out= is not supported on traced values (gpuad is out-of-place); "
                        "use the returned array instead")
    subscripts, arrays = _split_operands(operands)
    arrays = [a if isinstance(a, Tensor) or hasattr(a, "shape") else asarray(a) for a in arrays]
    if dtype is not None:
        arrays = [astype(a, dtype) for a in arrays]
    inputs, output = _parse_einsum(subscripts, [aval(a)[0] for a in arrays])
    inputs, arrays = _drop_broadcast_axes(inputs, arrays)
    if isinstance(optimize, str) and optimize not in ("greedy", "optimal"):
        raise ValueError(f"einsum: optimize={optimize!r} is not one of False, True, 'greedy', 'optimal'")
    optimize = optimize if isinstance(optimize, (bool, str)) else bool(optimize)
    return EINSUM.bind(*arrays, subscripts=",".join(inputs) + "->" + output, optimize=optimize)


# ---- kron -----------------------------------------------------------------------------------------------------

@traceable
def kron(a, b):
    """numpy.kron: every product a[i] * b[j], laid out block by block."""
    a, b = asarray(a), asarray(b)
    sa, sb = aval(a)[0], aval(b)[0]
    if not sa or not sb:
        return multiply(a, b)
    nd = max(len(sa), len(sb))
    sa, sb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    # a as (a0, 1, a1, 1, ...) times b as (1, b0, 1, b1, ...), then each pair of axes merged.
    a2 = reshape(a, tuple(x for n in sa for x in (n, 1)))
    b2 = reshape(b, tuple(x for n in sb for x in (1, n)))
    return reshape(a2 * b2, tuple(p * q for p, q in zip(sa, sb)))
