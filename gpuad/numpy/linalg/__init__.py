"""``gpuad.numpy.linalg``: numpy.linalg, differentiable in both modes and to any order.

inv, solve, det, slogdet, pinv, cholesky, eigh, svd and qr bind the rows of ``gpuad.ops.linalg`` (the backend's
own ``linalg`` evaluates them; their derivative rules are written with gpuad.numpy functions). The
decompositions return NumPy's named tuples (``EighResult``, ``SVDResult``, ``QRResult``, ``SlogdetResult``);
norm and the array-API helpers are compositions. ``numpy.linalg.f(t)`` on a traced Tensor reaches ``f`` here
through ``__array_function__``; on plain arrays every function is NumPy's (or CuPy's) own.

Where the derivative exists only under conditions, these are the rules (see gpuad/ops/linalg.py):
cholesky and eigh read one triangle, as NumPy does (the lower by default; ``UPLO='U'`` or ``upper=True`` the
upper): they bind their rows on the Hermitian (real: symmetric) matrix that triangle defines, so only that
triangle gets a derivative, at Hermitian and non-Hermitian input alike (and, as LAPACK ignores them, the
imaginary parts of the diagonal get none). eig and eigvals give complex results unless the input is real with a
real spectrum (NumPy 2's rule) and differentiate where the eigenvalues are distinct; matrix_power is NumPy's
chain of matmuls, lstsq is pinv(a) @ b with NumPy's cutoff. eigh's eigenvector derivatives need distinct
eigenvalues, svd's vector derivatives distinct, nonzero singular values: exactly equal values contribute zero
(so functions of the values alone, like eigvalsh sums or the nuclear norm, stay correct) but nearly equal ones
make the vector derivatives blow up, as the mathematics says. svd with full_matrices=True is differentiable
only for square matrices (the extra singular vectors are not unique); qr differentiates mode 'reduced' (and
'r', and 'complete' when m <= n) for full-rank input; pinv differentiates at locally constant rank; det and
slogdet need an invertible matrix. Vector and Frobenius norms have derivative 0 at the zero vector.

Complex input follows JAX's convention (the JVP is the R-linear map, the VJP its transpose under
Re(sum(a * b))) in every function here. Results are NumPy's, dtypes included: eigvalsh/eigh eigenvalues,
singular values, log|det| and norms are real; slogdet's sign is det / |det|, complex and differentiable (for
real input a plain array); vecdot conjugates its first argument. The phases of complex eigen- and singular
vectors are NumPy's convention, which has no derivative: differentiate functions invariant under them (|v|^2,
projectors v v^H, U S V^H), which are exact.
"""
from __future__ import annotations

import builtins
import math
import operator
from typing import NamedTuple

import numpy as _np

from ... import backend
from ...core import aval, constant, is_float_dtype, map_values, raw
from ...ops.linalg import CHOLESKY, DET, EIG, EIGH, INV, PINV, QR, SLOGDET, SOLVE, SVD, svd_shapes, unpack
from .. import _calculus, _diagonals, _products  # their matmul, cross, ... share names with ours
from .._creation import asarray
from .._dispatch import module_of, traceable
from .._elementwise import abs, abs_squared, conj_if_complex, imag, is_complex, real, real_if_complex, sqrt, where
from .._reductions import max, min, sum
from .._shapes import astype, broadcast_to, concatenate, moveaxis, ravel, reshape, swapaxes, transpose


LinAlgError = _np.linalg.LinAlgError

__all__ = ["LinAlgError", "EighResult", "SVDResult", "QRResult", "SlogdetResult", "inv", "solve", "det",
           "slogdet", "pinv", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr", "norm", "vector_norm",
           "matrix_norm", "multi_dot", "matrix_power", "lstsq", "eig", "eigvals", "EigResult", "cond", "matrix_rank", "tensorinv", "tensorsolve",
           "cross", "matmul", "tensordot", "outer", "vecdot", "matrix_transpose", "diagonal",
           "trace"]


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class EigResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class SVDResult(NamedTuple):
    U: object
    S: object
    Vh: object


class QRResult(NamedTuple):
    Q: object
    R: object


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object


def _linalg_function(fn=None, *, named=None):
    """``traceable`` for numpy.linalg's functions: plain arguments go to the backend module's ``linalg``;
    ``named`` (a named tuple class) names the parts of a decomposition the backend returns as a plain tuple."""
    if fn is None:
        return lambda fn: _linalg_function(fn, named=named)
    result = None if named is None else (
        lambda out, *args, **kwargs: named(*out) if isinstance(out, tuple) and len(out) == len(named._fields)
        and kwargs.get("mode", args[1] if len(args) > 1 else None) != "raw" else out)  # (qr's raw: (h, tau))
    return traceable(fn, submodule="linalg", result=result)


def _matrices(a, name):
    """``a`` as an array, checked to be a stack of matrices (NumPy's LinAlgError otherwise)."""
    a = asarray(a)
    ndim = len(aval(a)[0])
    if ndim < 2:
        raise LinAlgError(f"{name}: {ndim}-dimensional array given. Array must be at least two-dimensional")
    return a


def _square(a, name):
    a = _matrices(a, name)
    m, n = aval(a)[0][-2:]
    if m != n:
        raise LinAlgError(f"{name}: last 2 dimensions of the array must be square, got {m}x{n}")
    return a


def _floating(a):
    dtype = aval(a)[1]
    return a if is_float_dtype(dtype) else astype(a, _np.float64)


# ---- inverse, solve, determinants ------------------------------------------------------------------------------

@_linalg_function
def inv(a):
    return INV.bind(_floating(_square(a, "inv")))


@_linalg_function
def solve(a, b):
    """numpy.linalg.solve (NumPy 2 rules: b is a vector only when 1-D; batch axes broadcast)."""
    a, b = _floating(_square(a, "solve")), asarray(b)
    dtype = _np.result_type(aval(a)[1], aval(b)[1] or _np.float64)
    a, b = astype(a, dtype), astype(b, dtype)
    shape_a, vector = aval(a)[0], len(aval(b)[0]) == 1
    if vector:
        b = reshape(b, aval(b)[0] + (1,))
    shape_b = aval(b)[0]
    if len(shape_b) < 2 or shape_b[-2] != shape_a[-1]:
        raise ValueError(f"solve: b of shape {aval(b)[0] if not vector else shape_b[:-1]} does not match a of "
                         f"shape {shape_a}: b must be (M,) or (..., M, K) with M = {shape_a[-1]}")
    batch = _np.broadcast_shapes(shape_a[:-2], shape_b[:-2])
    x = SOLVE.bind(broadcast_to(a, batch + shape_a[-2:]), broadcast_to(b, batch + shape_b[-2:]))
    return x[..., 0] if vector else x


@_linalg_function
def det(a):
    return DET.bind(_floating(_square(a, "det")))


@_linalg_function(named=SlogdetResult)
def slogdet(a):
    """(sign, log|det|). Real ``a``: the sign is a plain array (piecewise constant: no derivative). Complex ``a``:
    sign = det / |det| is complex and differentiable, log|det| real."""
    packed = SLOGDET.bind(_floating(_square(a, "slogdet")))
    if is_complex(packed):
        return SlogdetResult(packed[..., 0], real(packed[..., 1]))
    return SlogdetResult(constant(packed)[..., 0], packed[..., 1])


@_linalg_function
def pinv(a, rcond=None, hermitian=False, *, rtol=_np._NoValue):
    options = {}
    if rcond is not None:
        options["rcond"] = rcond
    if hermitian:
        options["hermitian"] = hermitian
    if rtol is not _np._NoValue:
        options["rtol"] = rtol
    return PINV.bind(_floating(_matrices(a, "pinv")), **options)


# ---- decompositions ----------------------------------------------------------------------------------------

def _from_triangle(a, lower):
    """The Hermitian (real: symmetric) matrix that the triangle NumPy reads (lower or upper, diagonal included)
    defines: the value is unchanged, and the derivative goes to that triangle only (the other one is never read).
    LAPACK ignores the imaginary parts of the diagonal; so does this (whatever the backend does with them), and
    they get a zero derivative."""
    if lower:
        h = _diagonals.tril(a) + conj_if_complex(swapaxes(_diagonals.tril(a, -1), -1, -2))
    else:
        h = _diagonals.triu(a) + conj_if_complex(swapaxes(_diagonals.triu(a, 1), -1, -2))
    if is_complex(h):
        value = raw(h)
        eye = module_of((value,)).eye(value.shape[-1], dtype=value.real.dtype)
        h = h - imag(h) * eye * 1j
    return h


@_linalg_function
def cholesky(a, /, *, upper=False):
    """numpy.linalg.cholesky: a = L L^H (``upper=True``: a = U^H U), reading the lower triangle (the upper one
    with ``upper=True``), as NumPy does; only that triangle gets a derivative."""
    a = _floating(_square(a, "cholesky"))
    lower = CHOLESKY.bind(_from_triangle(a, not upper))
    return conj_if_complex(swapaxes(lower, -1, -2)) if upper else lower  # upper: U = L^H, a = U^H U


@_linalg_function(named=EighResult)
def eigh(a, UPLO="L"):
    """numpy.linalg.eigh: reads the triangle ``UPLO`` names, as NumPy does; only that triangle gets a derivative
    (a perturbation of the other triangle changes nothing)."""
    uplo = str(UPLO).upper()
    if uplo not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    a = _floating(_square(a, "eigh"))
    n = aval(a)[0][-1]
    w, v = unpack(EIGH.bind(_from_triangle(a, uplo == "L"), UPLO=uplo), [(n,), (n, n)])
    return EighResult(real_if_complex(w), v)


@_linalg_function
def eigvalsh(a, UPLO="L"):
    return eigh(a, UPLO).eigenvalues


@_linalg_function(named=EigResult)
def eig(a):
    """numpy.linalg.eig: eigenvalues and unit eigenvectors (complex, unless ``a`` is real with a real spectrum,
    as in NumPy 2), differentiable where the eigenvalues are distinct. The eigenvectors' phases are NumPy's
    convention, not differentiated: use functions invariant under them (|v|^2, v v^H / (v^H v))."""
    a = _floating(_square(a, "eig"))
    n = aval(a)[0][-1]
    return EigResult(*unpack(EIG.bind(a), [(n,), (n, n)]))


@_linalg_function
def eigvals(a):
    """numpy.linalg.eigvals (complex unless ``a`` is real with a real spectrum)."""
    return eig(a).eigenvalues


@_linalg_function
def matrix_power(a, n):
    """numpy.linalg.matrix_power by NumPy's binary decomposition (the same products in the same order)."""
    a = _square(a, "matrix_power")
    n = operator.index(n)
    if n == 0:
        value = raw(a)
        xp = module_of((value,))
        return xp.broadcast_to(xp.eye(value.shape[-1], dtype=value.dtype), value.shape).copy()
    if n < 0:
        a = inv(a)
        n = -n
    mm = _products.matmul
    if n == 1:
        return a
    if n == 2:
        return mm(a, a)
    if n == 3:
        return mm(mm(a, a), a)
    z = result = None
    while n > 0:
        z = a if z is None else mm(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else mm(result, z)
    return result


@_linalg_function
def lstsq(a, b, rcond=None):
    """numpy.linalg.lstsq: (x, residuals, rank, s). x = pinv(a) b with NumPy's cutoff (singular values at most
    rcond * the largest count as zero; rcond defaults to eps * max(M, N)), differentiable where the rank is
    locally constant; rank is the backend's integer (NumPy's int32 scalar, a 0-d array on CuPy), counted where
    the values are. residuals as NumPy gives them: for M > N their shape follows the rank (full column rank:
    one per column of b, else empty), the one place lstsq reads a value on the host (CuPy's lstsq does too).
    Under vmap each example is solved on its own; where some examples have full column rank and others not, the
    others' residuals are NaN (NumPy's would be empty: one batch holds one shape)."""
    a, b = _floating(_matrices(a, "lstsq")), asarray(b)
    dtype = _np.result_type(aval(a)[1], aval(b)[1] or _np.float64)
    a, b = astype(a, dtype), astype(b, dtype)
    if len(aval(a)[0]) != 2:
        raise LinAlgError(f"{len(aval(a)[0])}-dimensional array given. Array must be two-dimensional")
    m, n = aval(a)[0]
    vector = len(aval(b)[0]) == 1
    if aval(b)[0][0] != m:
        raise LinAlgError("Incompatible dimensions")
    eps = _np.finfo(aval(a)[1]).eps  # (finfo of a complex dtype: its real part's)
    if rcond is None:
        rcond = eps * builtins.max(m, n)
    elif not 0 < rcond < 1:  # LAPACK's gelsd (and CuPy's lstsq) take machine precision instead
        rcond = eps
    xp = module_of((raw(a),))
    x = _products.matmul(PINV.bind(a, rcond=rcond), b)
    s = svd(a, compute_uv=False)
    # LAPACK's rule, per example under vmap (0 for an empty matrix)
    rank = map_values(lambda v: xp.sum(v > rcond * v.max(axis=-1, keepdims=True), axis=-1, dtype=_np.int32)
                      if v.shape[-1] else xp.sum(v, axis=-1, dtype=_np.int32), s)
    full = m > n and backend.to_numpy(raw(rank)) == n  # (every example's rank, read on the host)
    if m > n and _np.any(full):
        residuals = sum(abs_squared(b - _products.matmul(a, x)), axis=0)
        if vector:
            residuals = reshape(residuals, (1,))
        if not _np.all(full):  # (vmap: examples without full column rank have no residuals: NaN, one shape)
            residuals = where(map_values(lambda r: r == n, rank), residuals, _np.nan)
    else:
        dtype = _np.finfo(aval(a)[1]).dtype
        residuals = map_values(lambda r: xp.empty(r.shape + (0,), dtype=dtype), rank)
    return x, residuals, rank, s


@_linalg_function(named=SVDResult)
def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """numpy.linalg.svd. ``hermitian`` only selects NumPy's algorithm: traced values use the general SVD."""
    a = _floating(_matrices(a, "svd"))
    m, n = aval(a)[0][-2:]
    if compute_uv and full_matrices and m != n:
        raise NotImplementedError(
            f"svd of a traced {m}x{n} matrix with full_matrices=True: the {builtins.max(m, n) - builtins.min(m, n)}"
            f" extra singular vectors are not unique, so they have no derivative; pass full_matrices=False")
    u, s, vh = unpack(SVD.bind(a), svd_shapes(m, n))
    s = real_if_complex(s)  # complex a: singular values are real
    return SVDResult(u, s, vh) if compute_uv else s


@_linalg_function
def svdvals(x, /):
    return svd(x, compute_uv=False)


@_linalg_function(named=QRResult)
def qr(a, mode="reduced"):
    """numpy.linalg.qr for modes 'reduced', 'r' and (square or wide input) 'complete'."""
    a = _floating(_matrices(a, "qr"))
    m, n = aval(a)[0][-2:]
    if mode not in ("reduced", "complete", "r", "raw"):
        raise ValueError(f"Unrecognized mode '{mode}'")
    if mode == "raw" or (mode == "complete" and m > n):
        raise NotImplementedError(
            f"qr(mode={mode!r}) of a traced {m}x{n} matrix has no derivative (Householder data and the extra "
            f"columns of a complete Q are not unique); use mode='reduced'")
    if m >= n:
        q, r = unpack(QR.bind(a), [(m, n), (n, n)])
    else:  # wide: the QR of the leading square block, and Q^H times the rest (what LAPACK computes too)
        q, r_square = unpack(QR.bind(a[..., :m]), [(m, m), (m, m)])
        r = concatenate([r_square, _products.matmul(conj_if_complex(swapaxes(q, -1, -2)), a[..., m:])], axis=-1)
    return r if mode == "r" else QRResult(q, r)


# ---- norms -------------------------------------------------------------------------------------------------

def _safe_power(total, p):
    """total ** p with value and derivative 0 where total == 0 (the norm's kink at the origin); NaN and inf
    totals pass through (``!= 0``, not ``> 0``: a NaN total is NaN, not 0)."""
    nonzero = constant(total) != 0
    safe = where(nonzero, total, 1)
    return where(nonzero, sqrt(safe) if p == 0.5 else safe ** p, 0)


def _vector_norm(x, ord, axis, keepdims):
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    magnitude = abs(x)
    if ord == _np.inf:
        return max(magnitude, axis=axis, keepdims=keepdims)
    if ord == -_np.inf:
        return min(magnitude, axis=axis, keepdims=keepdims)
    if ord == 0:  # a count: no derivative
        value = raw(x)
        return module_of((value,)).sum(value != 0, axis=axis, keepdims=keepdims).astype(
            value.real.dtype)
    if ord == 1:
        return sum(magnitude, axis=axis, keepdims=keepdims)
    if ord is None or ord == 2:
        return _safe_power(sum(abs_squared(x), axis=axis, keepdims=keepdims), 0.5)
    p = float(ord)
    # |x| ** p, with 0 ** p (0 for p > 0, inf for p < 0: NumPy's, a zero entry makes the norm 0) selected where
    # x == 0 (no derivative through the kink); NaN entries are NaN
    nonzero = constant(magnitude) != 0
    powered = where(nonzero, where(nonzero, magnitude, 1) ** p, 0.0 if p > 0 else _np.inf)
    return _safe_power(sum(powered, axis=axis, keepdims=keepdims), 1.0 / p)


def _singular_values(x, row, col):
    return svd(moveaxis(x, (row, col), (-2, -1)), compute_uv=False)


def _matrix_norm(x, ord, row, col):
    if ord == 2:
        return max(_singular_values(x, row, col), axis=-1)
    if ord == -2:
        return min(_singular_values(x, row, col), axis=-1)
    if ord == "nuc":
        return sum(_singular_values(x, row, col), axis=-1)
    if ord in (None, "fro", "f"):
        return _safe_power(sum(abs_squared(x), axis=(row, col)), 0.5)
    if ord in (1, -1):  # largest / smallest column sum
        reduce = max if ord == 1 else min
        return reduce(sum(abs(x), axis=row), axis=col - (col > row))
    if ord in (_np.inf, -_np.inf):  # largest / smallest row sum
        reduce = max if ord == _np.inf else min
        return reduce(sum(abs(x), axis=col), axis=row - (row > col))
    raise ValueError("Invalid norm order for matrices.")


@_linalg_function
def norm(x, ord=None, axis=None, keepdims=False):
    """numpy.linalg.norm: every vector and matrix ``ord``, over ``axis`` (one or two axes), with keepdims."""
    x = _floating(asarray(x))
    shape = aval(x)[0]
    ndim = len(shape)
    if axis is None:
        if ord is None or (ord in ("f", "fro") and ndim == 2) or (ord == 2 and ndim == 1):
            value = _safe_power(sum(abs_squared(x)), 0.5)
            return reshape(value, (1,) * ndim) if keepdims else value
        axis = tuple(range(ndim))
    elif not isinstance(axis, tuple):
        try:
            axis = (operator.index(axis),)
        except TypeError:
            raise TypeError("'axis' must be None, an integer or a tuple of integers") from None
    axes = [int(a) for a in axis]
    for a in axes:
        if not -ndim <= a < ndim:
            raise _np.exceptions.AxisError(a, ndim)
    axes = [a % ndim for a in axes]
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) != 2:
        raise ValueError("Improper number of dimensions to norm.")
    row, col = axes
    if row == col:
        raise ValueError("Duplicate axes given.")
    value = _matrix_norm(x, ord, row, col)
    if keepdims:
        kept = list(shape)
        kept[row] = kept[col] = 1
        value = reshape(value, tuple(kept))
    return value


@_linalg_function
def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    x = asarray(x)
    shape = aval(x)[0]
    if axis is None:
        value = norm(ravel(x), ord, 0)
        return reshape(value, (1,) * len(shape)) if keepdims else value
    if isinstance(axis, tuple) and len(axis) != 1:  # several axes: flatten them into one, at the end
        axes = [a % len(shape) for a in axis]
        rest = [i for i in range(len(shape)) if i not in axes]
        moved = transpose(x, rest + axes)
        flat = reshape(moved, tuple(shape[i] for i in rest) + (-1,))
        value = norm(flat, ord, -1)
        if keepdims:
            value = reshape(value, tuple(1 if i in axes else n for i, n in enumerate(shape)))
        return value
    return norm(x, ord, axis, keepdims)


@_linalg_function
def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return norm(x, ord, (-2, -1), keepdims)


# ---- condition number, rank, tensor inverse and solve -----------------------------------------------------------

@_linalg_function
def cond(x, p=None):
    """numpy.linalg.cond: s_max / s_min (p None or 2; -2: the reciprocal) from the singular values, otherwise
    norm(x, p) * norm(inv(x), p); real for complex x. Differentiable where x is invertible (and, for p = +-2, its
    extreme singular values are simple); a traced singular x raises LinAlgError (NumPy's value would be inf)."""
    x = _floating(asarray(x))
    if p is None or p in (2, -2):
        s = svd(x, compute_uv=False)
        return s[..., -1] / s[..., 0] if p == -2 else s[..., 0] / s[..., -1]
    x = _square(x, "cond")
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


@_linalg_function
def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """numpy.linalg.matrix_rank: an integer count, so a plain array (no derivative), by NumPy's algorithm on the
    backend's arrays (CuPy's own lacks ``hermitian`` and ``rtol``)."""
    a, tol, rtol = (None if v is None else raw(v) for v in (A, tol, rtol))
    xp = module_of((a,))
    a = xp.asarray(a)
    if a.ndim < 2:
        return int(not bool(xp.all(a == 0)))
    s = xp.abs(xp.linalg.eigvalsh(a)) if hermitian else xp.linalg.svd(a, compute_uv=False)
    if tol is None:
        if rtol is None:
            rtol = builtins.max(a.shape[-2:]) * _np.finfo(s.dtype).eps
        else:
            rtol = xp.asarray(rtol)[..., None]
        tol = s.max(axis=-1, keepdims=True) * rtol
    else:
        tol = xp.asarray(tol)[..., None]
    return xp.count_nonzero(s > tol, axis=-1)


@_linalg_function
def tensorinv(a, ind=2):
    """numpy.linalg.tensorinv: inv of a reshaped to a square matrix (first ``ind`` axes against the rest)."""
    a = asarray(a)
    shape = aval(a)[0]
    if ind <= 0:
        raise ValueError("Invalid ind argument.")
    rows = 1
    for k in shape[ind:]:
        rows *= k
    return reshape(inv(reshape(a, (rows, -1))), shape[ind:] + shape[:ind])


@_linalg_function
def tensorsolve(a, b, axes=None):
    """numpy.linalg.tensorsolve: x with tensordot(a, x, x.ndim) == b, by solve on reshaped a and b."""
    a, b = asarray(a), asarray(b)
    ndim = len(aval(a)[0])
    if axes is not None:
        order = list(range(ndim))
        for k in axes:
            order.remove(k)
            order.insert(ndim, k)
        a = transpose(a, order)
    shape = aval(a)[0]
    unknown = shape[-(ndim - len(aval(b)[0])):]
    size = 1
    for k in unknown:
        size *= k
    if math.prod(shape) != size ** 2:
        raise LinAlgError("Input arrays must satisfy the requirement prod(a.shape[b.ndim:]) == "
                          "prod(a.shape[:b.ndim])")
    return reshape(solve(reshape(a, (size, size)), ravel(b)), unknown)


@_linalg_function
def cross(x1, x2, /, *, axis=-1):
    """numpy.linalg.cross: the cross product of 3-vectors along ``axis``."""
    x1, x2 = asarray(x1), asarray(x2)
    if aval(x1)[0][axis] != 3 or aval(x2)[0][axis] != 3:
        raise ValueError(f"Both input arrays must be (arrays of) 3-dimensional vectors, but they are "
                         f"{aval(x1)[0][axis]} and {aval(x2)[0][axis]} dimensional instead.")
    return _calculus.cross(x1, x2, axis=axis)


# ---- products and the array-API helpers ----------------------------------------------------------------------

@_linalg_function
def multi_dot(arrays, *, out=None):
    """numpy.linalg.multi_dot, multiplied left to right (the same value NumPy's chosen order gives)."""
    if out is not None:
        raise TypeError("gpuad.numpy.linalg.multi_dot: out= is not supported on traced values")
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    result = arrays[0]
    for a in arrays[1:]:
        result = _products.matmul(result, a)
    return result


@_linalg_function
def matmul(x1, x2, /):
    return _products.matmul(x1, x2)


@_linalg_function
def tensordot(x1, x2, /, *, axes=2):
    return _products.tensordot(x1, x2, axes)


@_linalg_function
def outer(x1, x2, /):
    if len(aval(x1)[0]) != 1 or len(aval(x2)[0]) != 1:
        raise ValueError("Input arrays must be one-dimensional")
    return _products.outer(x1, x2)


@_linalg_function
def vecdot(x1, x2, /, *, axis=-1):
    """numpy.linalg.vecdot: sum(conj(x1) * x2) over ``axis`` (NumPy 2 conjugates the first argument)."""
    return _products.vecdot(x1, x2, axis=axis)


@_linalg_function
def matrix_transpose(x, /):
    return swapaxes(_matrices(x, "matrix_transpose"), -1, -2)


@_linalg_function
def diagonal(x, /, *, offset=0):
    return _diagonals.diagonal(x, offset, axis1=-2, axis2=-1)


@_linalg_function
def trace(x, /, *, offset=0, dtype=None):
    return _diagonals.trace(x, offset, axis1=-2, axis2=-1, dtype=dtype)


def __dir__():
    return __all__
