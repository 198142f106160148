"""gpuad.numpy's linear-algebra family outside numpy.linalg: einsum, kron, trace, diag, diagonal, tril, triu.

``einsum`` parses NumPy's subscripts (implicit and explicit output, ellipsis, repeated indices, the sublist
form) into one canonical letters-only form and binds the single multilinear ``EINSUM`` primitive; size-1 axes
that broadcast against a longer axis of the same index are reshaped away first, so the primitive's transpose
never has to undo a broadcast. The others are compositions of differentiable primitives (einsum, getitem,
scatter, where). With no traced argument, each function is NumPy's (or CuPy's) own.
"""
from __future__ import annotations

import builtins
import string

import numpy as _np

from .. import numpy as gnp
from ..core import aval, raw, Tensor
from ..ops.linalg import EINSUM
from ..ops.structural import SCATTER_ADD

from . import _module_of, traceable

__all__ = ["einsum", "kron", "trace", "diag", "diagonal", "tril", "triu"]


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
    n_ellipsis = builtins.max(ellipsis_dims, default=0)
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
            a = gnp.reshape(a, tuple(shape[i] for i in keep))
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
    arrays = [a if isinstance(a, Tensor) or hasattr(a, "shape") else gnp.asarray(a) for a in arrays]
    if dtype is not None:
        arrays = [gnp.astype(a, dtype) for a in arrays]
    inputs, output = _parse_einsum(subscripts, [aval(a)[0] for a in arrays])
    inputs, arrays = _drop_broadcast_axes(inputs, arrays)
    if isinstance(optimize, str) and optimize not in ("greedy", "optimal"):
        raise ValueError(f"einsum: optimize={optimize!r} is not one of False, True, 'greedy', 'optimal'")
    optimize = optimize if isinstance(optimize, (bool, str)) else builtins.bool(optimize)
    return EINSUM.bind(*arrays, subscripts=",".join(inputs) + "->" + output, optimize=optimize)


# ---- kron -----------------------------------------------------------------------------------------------------

@traceable
def kron(a, b):
    """numpy.kron: every product a[i] * b[j], laid out block by block."""
    a, b = gnp.asarray(a), gnp.asarray(b)
    sa, sb = aval(a)[0], aval(b)[0]
    if not sa or not sb:
        return gnp.multiply(a, b)
    nd = builtins.max(len(sa), len(sb))
    sa, sb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    # a as (a0, 1, a1, 1, ...) times b as (1, b0, 1, b1, ...), then each pair of axes merged.
    a2 = gnp.reshape(a, tuple(x for n in sa for x in (n, 1)))
    b2 = gnp.reshape(b, tuple(x for n in sb for x in (1, n)))
    return gnp.reshape(a2 * b2, tuple(p * q for p, q in zip(sa, sb)))


# ---- diagonals and triangles ----------------------------------------------------------------------------------

def _axis(axis, ndim, name):
    if not -ndim <= axis < ndim:
        raise _np.exceptions.AxisError(axis, ndim, msg_prefix=name)
    return axis % ndim


@traceable
def diagonal(a, offset=0, axis1=0, axis2=1):
    """numpy.diagonal: the (offset) diagonal of the axis1/axis2 planes, as a new last axis."""
    ndim = len(aval(a)[0])
    if ndim < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    axis1, axis2 = _axis(axis1, ndim, "axis1"), _axis(axis2, ndim, "axis2")
    if axis1 == axis2:
        raise ValueError("axis1 and axis2 cannot be the same")
    x = gnp.moveaxis(a, (axis1, axis2), (-2, -1))
    rows, cols = aval(x)[0][-2:]
    offset = int(offset)
    start_row, start_col = builtins.max(-offset, 0), builtins.max(offset, 0)
    k = builtins.max(0, builtins.min(rows - start_row, cols - start_col))
    x = x[..., start_row:start_row + k, start_col:start_col + k]
    return einsum("...ii->...i", x)


@traceable
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """numpy.trace: the sum along a diagonal."""
    if out is not None:
        raise TypeError("gpuad.numpy.trace: out= is not supported on traced values (gpuad is out-of-place)")
    return gnp.sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


@traceable
def diag(v, k=0):
    """numpy.diag: a 1-D array's square matrix with v on diagonal k, or a 2-D array's diagonal k."""
    shape = aval(v)[0]
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    k = int(k)
    n = shape[0] + builtins.abs(k)
    xp = _module_of((raw(v),))
    index = xp.arange(shape[0])
    rows, cols = (index, index + k) if k >= 0 else (index - k, index)
    return SCATTER_ADD.bind(v, index=(rows, cols), shape=(n, n))


def _triangle(m, k, lower):
    shape = aval(m)[0]
    if not shape:
        raise ValueError(f"{'tril' if lower else 'triu'}: the input must be at least 1-D")
    rows, cols = shape[-2:] if len(shape) >= 2 else (shape[0], shape[0])
    xp = _module_of((raw(m),))
    below = xp.tri(rows, cols, k=k if lower else k - 1, dtype=bool)
    return gnp.where(below if lower else ~below, m, 0)


@traceable
def tril(m, k=0):
    """numpy.tril: zeros above diagonal k of the last two axes (a 1-D input is taken as each row)."""
    return _triangle(m, int(k), lower=True)


@traceable
def triu(m, k=0):
    """numpy.triu: zeros below diagonal k of the last two axes (a 1-D input is taken as each row)."""
    return _triangle(m, int(k), lower=False)
