"""Rule table for linear algebra: einsum and the numpy.linalg decompositions and solvers.

``EINSUM`` is one multilinear row: its JVP is einsum on the tangents, and the transpose for operand k is another
einsum that contracts the output's cotangent with the other operands back onto operand k's indices (constant
identity matrices put values back on the diagonals of repeated indices; ones vectors broadcast over indices only
operand k had). The linalg rows are ``Custom``: NumPy's (or CuPy's) ``linalg`` evaluates them, and their JVPs and
VJPs are written with ``gpuad.numpy`` functions (solve, matmul, swapaxes, where), so they are differentiable in
turn and second derivatives come for free. A primitive has one output, so the decompositions with several
(eigh, svd, qr, slogdet) return their parts packed side by side along a last axis; ``gpuad.numpy.linalg``
unpacks them with ``unpack`` (reshapes and slices, themselves differentiable).

Conventions: cholesky and eigh read a Hermitian (real: symmetric) matrix, so their derivatives treat the input
perturbation as Hermitian ((dA + dA^H) / 2) whichever triangle the backend reads (gpuad.numpy.linalg binds them
on the Hermitian matrix built from the triangle NumPy reads). eig follows NumPy's unit-norm eigenvectors. eigh and
svd derivatives divide by gaps between eigenvalues (singular values); a gap that is exactly zero contributes
nothing (so functions of the values alone stay exact), while near-equal values give large, ill-conditioned
vector derivatives.

Complex values, JAX's convention: each JVP is the op's R-linear map and each VJP its transpose under the real
pairing <a, b> = Re(sum(a * b)), so a C-linear piece transposes plainly (X dA Y -> X^T ct Y^T, no conjugation)
and conjugation enters only where the op itself is not holomorphic: the Hermitian parts (dA^H, V^H, U^H, Q^H), the
real eigenvalues, singular values and log|det|, and the phase conventions. One rule serves real and complex
values: ``_conj``, ``_re`` and ``_real_diagonal`` return real arrays unchanged (no op is recorded), so the real
path is the one it was. The phases of complex eigen- and singular vectors are a gauge (NumPy's convention, not
differentiable): eigh's JVP takes the tangent with V^H dV zero on the diagonal, eig's the one with
Re(v^H dv) = 0 (the unit norm) and no phase term, svd's puts the phase tangent that keeps U S V^H exact on U
(V^H dV zero on the diagonal). Functions invariant under those phases (|v|^2, projectors v v^H, U S V^H) get exact
derivatives; functions of the phase convention itself do not. qr needs no gauge: LAPACK's R has a real diagonal,
which fixes Q and R up to signs.
"""
from __future__ import annotations

import math
import string

import numpy

from .. import backend
from ..core import aval, map_values, raw
from ..rules import Custom, Linear
from .elementwise import IMAG, MULTIPLY, REAL, WHERE, conj_if_complex, is_complex, real_if_complex
from .linear import CONCATENATE, MATMUL, RESHAPE, SUM, TRANSPOSE, batch_all, batch_size, sum_to

# ---- small traced helpers (batched over leading axes), written with primitives so the rules differentiate -------


def _mT(x):
    n = len(aval(x)[0])
    return TRANSPOSE.bind(x, axes=tuple(range(n - 2)) + (n - 1, n - 2))


def _mm(x, y):
    return MATMUL.bind(x, y)


def _mH(x):
    """The conjugate transpose of the last two axes (the transpose for real x)."""
    return conj_if_complex(_mT(x))


def _herm(x):
    """The Hermitian (real: symmetric) part (x + x^H) / 2."""
    return (x + _mH(x)) * 0.5


def _real_diagonal(x):
    """x with the imaginary parts of its diagonal removed (real x itself)."""
    if not is_complex(x):
        return x
    return x - _diag_embed(IMAG.bind(_diag_part(x))) * 1j


def _solve(a, b):
    """a^-1 b for square a and matrix b with the same batch axes (what the rules pass)."""
    return SOLVE.bind(a, b)


def _inv(a):
    return INV.bind(a)


def _right_solve(x, a):
    """x @ inv(a), as a solve: (a^T \\ x^T)^T."""
    return _mT(_solve(_mT(a), _mT(x)))


def _expand_last(v, count):
    """``v`` with ``count`` new axes of length 1 at the end."""
    return RESHAPE.bind(v, shape=aval(v)[0] + (1,) * count)


def _diag_part(x):
    batch = string.ascii_lowercase[:len(aval(x)[0]) - 2]
    return EINSUM.bind(x, subscripts=f"{batch}zz->{batch}z", optimize=False)


def _trace_last(x):
    d = _diag_part(x)
    return SUM.bind(d, axis=(len(aval(d)[0]) - 1,), keepdims=False)


def _constant(like, make):
    """A constant array built by ``make(module, dtype)`` on ``like``'s backend and in its dtype."""
    value = raw(like)
    return make(backend.array_module(value), aval(value)[1])


def _diag_embed(v):
    """(..., n) -> (..., n, n) with v on the diagonal."""
    n = aval(v)[0][-1]
    return _expand_last(v, 1) * _constant(v, lambda xp, dt: xp.eye(n, dtype=dt))


def _safe_reciprocal(v):
    """1 / v elementwise, with 0 where v is exactly zero (a zero gap between eigenvalues or singular values, the
    diagonal of a gap matrix, a zero singular value): such a term contributes nothing."""
    zero = map_values(lambda v: v == 0, v)
    return WHERE.bind(zero, 0.0, 1.0 / WHERE.bind(zero, 1.0, v))


def _per_column(v):
    """(..., n) -> (..., 1, n): multiplying a matrix by it scales column j by v[j] (X @ diag(v))."""
    shape = aval(v)[0]
    return RESHAPE.bind(v, shape=shape[:-1] + (1, shape[-1]))


def _per_row(v):
    """(..., n) -> (..., n, 1): multiplying a matrix by it scales row i by v[i] (diag(v) @ X)."""
    return _expand_last(v, 1)


# ---- packing several outputs into one array --------------------------------------------------------------------

def pack_impl(xp, parts, batch):
    return xp.concatenate([xp.reshape(p, batch + (-1,)) for p in parts], axis=-1)


def pack(parts, batch):
    flat = [RESHAPE.bind(p, shape=batch + (math.prod(aval(p)[0][len(batch):]),)) for p in parts]
    return CONCATENATE.bind(*flat, axis=len(batch))


def unpack(packed, shapes):
    """Split a packed array into parts of trailing ``shapes`` (the leading batch axes are kept)."""
    batch = aval(packed)[0][:-1]
    parts, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        parts.append(RESHAPE.bind(packed[..., start:start + size], shape=batch + tuple(shape)))
        start += size
    return parts


# ---- einsum -----------------------------------------------------------------------------------------------------

def stacked(prim):
    """vmap's rule of an op on stacks of matrices (NumPy's linalg broadcasts over leading axes)."""
    return lambda args, batched, params: prim.bind(*batch_all(args, batched), **params)


def split_subscripts(subscripts):
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


def _einsum_transpose(ct, saved, params, avals, k):
    """Operand k's cotangent: einsum of the output cotangent with the other operands onto k's indices."""
    inputs, output = split_subscripts(params["subscripts"])
    sizes = {}
    for subs, (shape, _) in zip(inputs, avals):
        sizes.update(zip(subs, shape))
    fresh = iter(c for c in string.ascii_letters if c not in params["subscripts"])
    others = [j for j in range(len(inputs)) if j != k]
    operands = [ct] + [saved[j] for j in others]
    subs = [output] + [inputs[j] for j in others]
    available = set(output).union(*(inputs[j] for j in others))
    result, seen = [], set()
    for c in inputs[k]:
        if c in seen:  # a repeated index: operand k's diagonal, put back by a constant identity
            f = next(fresh)
            operands.append(_constant(ct, lambda xp, dt, n=sizes[c]: xp.eye(n, dtype=dt)))
            subs.append(c + f)
            available.add(c)
            result.append(f)
        else:
            seen.add(c)
            result.append(c)
    for c in dict.fromkeys(inputs[k]):
        if c not in available:  # summed only inside operand k: its cotangent is broadcast along c
            operands.append(_constant(ct, lambda xp, dt, n=sizes[c]: xp.ones(n, dtype=dt)))
            subs.append(c)
    g = EINSUM.bind(*operands, subscripts=",".join(subs) + "->" + "".join(result), optimize=params["optimize"])
    return sum_to(g, *avals[k])


EINSUM = Linear(
    "einsum",
    lambda xp, *xs, subscripts, optimize: xp.einsum(subscripts, *xs, optimize=optimize),
    _einsum_transpose,
    multilinear=True,
    format=lambda a, p: f"einsum('{p['subscripts']}', {', '.join(a)})",
    adjoint=lambda k, ct, a, p: f"einsum_transpose[{k}]('{p['subscripts']}', {ct})")


def _batch_einsum(args, batched, params):
    """One more index, in front of the batched operands and of the output."""
    inputs, output = split_subscripts(params["subscripts"])
    b = next(c for c in string.ascii_letters if c not in params["subscripts"])
    subs = ",".join(b + s if x else s for s, x in zip(inputs, batched))
    return EINSUM.bind(*args, subscripts=f"{subs}->{b}{output}", optimize=params["optimize"])


EINSUM.batch = _batch_einsum


def _batch_matmul(args, batched, params):
    """Vectors as one-row (one-column) matrices, batched operands padded to a common rank, then one matmul. Two
    shapes get a faster form: a batched left operand times one matrix folds the batch into the rows (one
    matrix product, not a stack of small ones), and a product over a length-1 axis (the outer products of
    per-example weight gradients) is a broadcast multiply."""
    (x, y), (bx, by) = args, batched
    size = batch_size(args, batched)
    xs, ys = aval(x)[0][bx:], aval(y)[0][by:]
    if bx and not by and len(ys) <= 2:
        rows = RESHAPE.bind(x, shape=(math.prod((size,) + xs[:-1]), xs[-1]))
        return RESHAPE.bind(MATMUL.bind(rows, y), shape=(size,) + xs[:-1] + ys[1:])
    row, col = len(xs) == 1, len(ys) == 1
    rank = max(len(xs) + row, len(ys) + col)
    xs2 = (1,) * (rank - len(xs) - row if bx else 0) + xs[:-1] + (1,) * row + xs[-1:]
    ys2 = (1,) * (rank - len(ys) - col if by else 0) + ys + (1,) * col
    x = RESHAPE.bind(x, shape=(size,) * bx + xs2) if xs2 != xs else x
    y = RESHAPE.bind(y, shape=(size,) * by + ys2) if ys2 != ys else y
    if bx and by and xs2[-1] == 1:
        out = MULTIPLY.bind(x, y)
    else:
        out = MATMUL.bind(x, y)
    if row or col:
        shape = aval(out)[0]
        out = RESHAPE.bind(out, shape=shape[:-2] + shape[-2:-1] * (not row) + shape[-1:] * (not col))
    return out


MATMUL.batch = _batch_matmul


# ---- inverse, solve, determinants ---------------------------------------------------------------------------------

def _inv_jvp(primals, tangents, out, params):
    return -_mm(_mm(out, tangents[0]), out)


def _inv_vjp(ct, saved, params, avals, needed):
    (out,) = saved
    t = _mT(out)
    return [-_mm(_mm(t, ct), t)]


INV = Custom("inv", lambda xp, a: xp.linalg.inv(a), _inv_jvp, _inv_vjp, saves=("out",))
INV.batch = stacked(INV)


def _solve_jvp(primals, tangents, out, params):
    a, _ = primals
    da, db = tangents
    rhs = db if da is None else (-_mm(da, out) if db is None else db - _mm(da, out))
    return _solve(a, rhs)


def _solve_vjp(ct, saved, params, avals, needed):
    a, out = saved
    gb = _solve(_mT(a), ct)
    return [-_mm(gb, _mT(out)) if needed[0] else None, gb if needed[1] else None]


# a (..., M, M) and b (..., M, K) with equal batch axes: gpuad.numpy.linalg.solve broadcasts and reshapes.
SOLVE = Custom("solve", lambda xp, a, b: xp.linalg.solve(a, b), _solve_jvp, _solve_vjp, saves=("x", "out"))
SOLVE.batch = stacked(SOLVE)


def _det_jvp(primals, tangents, out, params):
    return out * _trace_last(_solve(primals[0], tangents[0]))


def _det_vjp(ct, saved, params, avals, needed):
    a, out = saved
    return [_expand_last(ct * out, 2) * _mT(_inv(a))]


DET = Custom("det", lambda xp, a: xp.linalg.det(a), _det_jvp, _det_vjp, saves=("x", "out"))
DET.batch = stacked(DET)


def _slogdet_impl(xp, a):
    sign, logabsdet = xp.linalg.slogdet(a)
    return xp.stack([sign, logabsdet], axis=-1)


def _slogdet_jvp(primals, tangents, out, params):
    # t = tr(A^-1 dA) = d log det: log|det|' = Re t, and sign = det / |det| turns by i Im t (0 for real A).
    t = _trace_last(_solve(primals[0], tangents[0]))
    axis = len(aval(t)[0])
    if not is_complex(t):
        return CONCATENATE.bind(_expand_last(t * 0.0, 1), _expand_last(t, 1), axis=axis)
    d_sign = out[..., 0] * (t - REAL.bind(t))
    return CONCATENATE.bind(_expand_last(d_sign, 1), _expand_last(REAL.bind(t), 1), axis=axis)


def _slogdet_vjp(ct, saved, params, avals, needed):
    a, out = saved
    t_bar = ct[..., 1]
    if is_complex(t_bar):  # the transposes of Re t and of sign * i Im t
        t_bar = REAL.bind(t_bar) + IMAG.bind(out[..., 0] * ct[..., 0]) * 1j
    return [_expand_last(t_bar, 2) * _mT(_inv(a))]


# Packed output (..., 2): [sign, log|det|] (complex a: both complex, log|det| with a zero imaginary part).
SLOGDET = Custom("slogdet", _slogdet_impl, _slogdet_jvp, _slogdet_vjp, saves=("x", "out"))
SLOGDET.batch = stacked(SLOGDET)


def _pinv_impl(xp, a, **options):
    pinv = xp.linalg.pinv
    if backend.accepts(pinv, (a,), options):
        return pinv(a, **options)
    # CuPy's pinv(a, rcond): hermitian only chooses NumPy's algorithm, rtol is rcond's Array API spelling
    # (None: max(M, N) * eps), and NumPy's default cutoff is rcond=1e-15.
    rcond = options.get("rcond")
    if rcond is None and "rtol" in options:
        rcond = options["rtol"] if options["rtol"] is not None else max(a.shape[-2:]) * numpy.finfo(a.dtype).eps
    return pinv(a, rcond=1e-15 if rcond is None else rcond)


def _pinv_jvp(primals, tangents, out, params):
    # d(A+) for A+ of locally constant rank (Golub & Pereyra): three terms, the last two vanish for square
    # invertible A.
    a, da, x = primals[0], tangents[0], out
    m, n = aval(a)[0][-2:]
    eye_m = _constant(x, lambda xp, dt: xp.eye(m, dtype=dt))
    eye_n = _constant(x, lambda xp, dt: xp.eye(n, dtype=dt))
    da_h, x_h = _mH(da), _mH(x)
    return (-_mm(_mm(x, da), x) + _mm(_mm(_mm(x, x_h), da_h), eye_m - _mm(a, x))
            + _mm(_mm(eye_n - _mm(x, a), da_h), _mm(x_h, x)))


def _pinv_vjp(ct, saved, params, avals, needed):
    # -X dA X transposes plainly; P dA^H Q transposes to conj(Q ct^T P).
    a, x = saved
    m, n = avals[0][0][-2:]
    eye_m = _constant(x, lambda xp, dt: xp.eye(m, dtype=dt))
    eye_n = _constant(x, lambda xp, dt: xp.eye(n, dtype=dt))
    x_t, ct_t, x_h = _mT(x), _mT(ct), _mH(x)
    return [-_mm(_mm(x_t, ct), x_t) + conj_if_complex(_mm(_mm(eye_m - _mm(a, x), ct_t), _mm(x, x_h))
                                            + _mm(_mm(_mm(x_h, x), ct_t), eye_n - _mm(x, a)))]


PINV = Custom("pinv", _pinv_impl, _pinv_jvp, _pinv_vjp, saves=("x", "out"))
PINV.batch = stacked(PINV)


# ---- cholesky -----------------------------------------------------------------------------------------------------

def _lower_half_diag(x):
    """Phi(X): the lower triangle of X with its diagonal halved."""
    n = aval(x)[0][-1]
    return x * _constant(x, lambda xp, dt: xp.tri(n, dtype=dt) - 0.5 * xp.eye(n, dtype=dt))


def _cholesky_jvp(primals, tangents, out, params):
    # A = L L^H: L^-1 dA L^-H = X + X^H with X = L^-1 dL lower triangular (a real diagonal), so dL = L Phi(...).
    lower = out
    da = _herm(tangents[0])
    inner = _mT(_solve(conj_if_complex(lower), _mT(_solve(lower, da))))  # L^-1 dA L^-H
    return _mm(lower, _lower_half_diag(inner))


def _cholesky_vjp(ct, saved, params, avals, needed):
    # The transpose of S -> L^-1 S L^-H is P -> L^-T P conj(L)^-1; the Hermitian part is its own transpose.
    (lower,) = saved
    p = _lower_half_diag(_mm(_mT(lower), ct))
    s = _mT(_solve(_mH(lower), _mT(_solve(_mT(lower), p))))  # L^-T P conj(L)^-1
    return [_herm(s)]


CHOLESKY = Custom("cholesky", lambda xp, a: xp.linalg.cholesky(a), _cholesky_jvp, _cholesky_vjp, saves=("out",))
CHOLESKY.batch = stacked(CHOLESKY)


# ---- eigh ------------------------------------------------------------------------------------------------------

def _eigh_impl(xp, a, UPLO):
    w, v = xp.linalg.eigh(a, UPLO=UPLO)
    return pack_impl(xp, (w, v), a.shape[:-2])


def _eigh_parts(packed):
    n = (math.isqrt(4 * aval(packed)[0][-1] + 1) - 1) // 2  # the packed length is n + n * n
    return unpack(packed, [(n,), (n, n)])


def _eigen_gaps(w):
    """F[..., i, j] = 1 / (w_j - w_i) off the diagonal, 0 on it and where w_i == w_j exactly."""
    return _safe_reciprocal(_per_column(w) - _per_row(w))


def _eigh_jvp(primals, tangents, out, params):
    # X = V^H dA V (Hermitian): dw = Re diag X, dV = V (F o X) (zero diagonal of V^H dV: the phase gauge).
    w, v = _eigh_parts(out)
    x = _mm(_mm(_mH(v), _herm(tangents[0])), v)
    return pack([real_if_complex(_diag_part(x)), _mm(v, _eigen_gaps(real_if_complex(w)) * x)], aval(w)[0][:-1])


def _eigh_vjp(ct, saved, params, avals, needed):
    # The transpose of the JVP: X_bar = diag(Re w_bar) + F o (V^T v_bar), then S_bar = conj(V) X_bar V^T.
    w, v = _eigh_parts(saved[0])
    w_bar, v_bar = _eigh_parts(ct)
    middle = _diag_embed(real_if_complex(w_bar)) + _eigen_gaps(real_if_complex(w)) * _mm(_mT(v), v_bar)
    return [_herm(_mm(_mm(conj_if_complex(v), middle), _mT(v)))]


# Packed output (..., n + n*n): [eigenvalues, eigenvectors] (complex a: the eigenvalues with zero imaginary parts).
EIGH = Custom("eigh", _eigh_impl, _eigh_jvp, _eigh_vjp, saves=("out",))
EIGH.batch = stacked(EIGH)


# ---- eig (complex results; on NumPy real ones for a real input with a real spectrum) ------------------------

def _eig_impl(xp, a):
    eig = getattr(xp.linalg, "eig", None)
    if eig is None:  # a backend without a general eigensolver: LAPACK on the host
        w, v = (xp.asarray(p) for p in numpy.linalg.eig(backend.to_numpy(a)))
    else:
        w, v = eig(a)
    # The backend's dtypes (nothing read back to decide them): NumPy's are real for a real matrix with a real
    # spectrum, CuPy's (cuSOLVER's geev) always complex.
    return pack_impl(xp, (w, v), a.shape[:-2])


def _eig_parts(packed):
    n = (math.isqrt(4 * aval(packed)[0][-1] + 1) - 1) // 2
    return unpack(packed, [(n,), (n, n)])


def _column_dots(v, g):
    """(..., 1, n): sum_i conj(v_ij) g_ij per column j, real part (v^T g's diagonal for real v)."""
    return real_if_complex(SUM.bind(conj_if_complex(v) * g, axis=(len(aval(v)[0]) - 2,), keepdims=True))


def _eig_jvp(primals, tangents, out, params):
    # Holomorphic but for NumPy's unit norm: X = V^-1 dA V, dw = diag X, dV = V (F o X) less v Re(v^H dv).
    w, v = _eig_parts(out)
    x = _solve(v, _mm(tangents[0], v))  # V^-1 dA V
    dv = _mm(v, _eigen_gaps(w) * x)
    dv = dv - v * _column_dots(v, dv)  # NumPy's eigenvectors have unit norm: Re(v^H dv) = 0 for each
    return pack([_diag_part(x), dv], aval(w)[0][:-1])


def _eig_vjp(ct, saved, params, avals, needed):
    w, v = _eig_parts(saved[0])
    w_bar, v_bar = _eig_parts(ct)
    v_bar = v_bar - conj_if_complex(v) * real_if_complex(SUM.bind(v * v_bar, axis=(len(aval(v)[0]) - 2,),
                                                                  keepdims=True))
    middle = _diag_embed(w_bar) + _eigen_gaps(w) * _mm(_mT(v), v_bar)
    # V^-T middle V^T; real a with a complex spectrum keeps the real part (sum_to casts)
    return [sum_to(_solve(_mT(v), _mm(middle, _mT(v))), *avals[0])]


# Packed output (..., n + n*n): [eigenvalues, unit eigenvectors] (complex unless a is real with a real spectrum);
# the eigenvalues must be distinct for the vector derivatives (a zero gap contributes nothing, as in eigh).
EIG = Custom("eig", _eig_impl, _eig_jvp, _eig_vjp, saves=("out",))
EIG.batch = stacked(EIG)


# ---- svd (reduced) ---------------------------------------------------------------------------------------------

def svd_shapes(m, n):
    k = min(m, n)
    return [(m, k), (k,), (k, n)]


def _svd_impl(xp, a):
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    return pack_impl(xp, (u, s, vh), a.shape[:-2])


def _svd_parts(packed, m, n):
    return unpack(packed, svd_shapes(m, n))


def _singular_gaps(s):
    """F[..., i, j] = 1 / (s_j^2 - s_i^2), 0 where the singular values are exactly equal."""
    return _safe_reciprocal((_per_column(s) - _per_row(s)) * (_per_column(s) + _per_row(s)))


def _svd_jvp(primals, tangents, out, params):
    # dP = U^H dA V: ds = Re diag dP, dU = U (F o (dP S + S dP^H) + i Im(diag dP) / S), dV = V (F o (S dP + dP^H S))
    # (the phase tangent i Im(diag dP) / S goes to U, which keeps U S V^H exact), plus, for a rectangular A,
    # the parts of dA V (dA^H U) outside U's (V's) span.
    a, da = primals[0], tangents[0]
    m, n = aval(a)[0][-2:]
    k = min(m, n)
    u, s, vh = _svd_parts(out, m, n)
    s = real_if_complex(s)
    v = _mH(vh)
    dp = _mm(_mm(_mH(u), da), v)  # U^H dA V
    gaps = _singular_gaps(s)
    dp_s = dp * _per_column(s)  # dP S
    s_dp = _per_row(s) * dp  # S dP
    s_inv = _safe_reciprocal(s)
    du = _mm(u, gaps * (dp_s + _mH(dp_s)))
    dv = _mm(v, gaps * (s_dp + _mH(s_dp)))
    if is_complex(dp):
        du = du + u * _per_column(IMAG.bind(_diag_part(dp)) * s_inv) * 1j
    if m > k:  # the part of dA V outside U's span
        du = du + (_mm(da, v) - _mm(u, dp)) * _per_column(s_inv)
    if n > k:
        dv = dv + (_mm(_mH(da), u) - _mm(v, _mH(dp))) * _per_column(s_inv)
    return pack([du, real_if_complex(_diag_part(dp)), _mH(dv)], aval(s)[0][:-1])


def _svd_vjp(ct, saved, params, avals, needed):
    # The transpose of the JVP: P_bar = diag(Re s_bar) + (g + g^H) S + S (h + h^H) (+ i Im(diag U^T u_bar) / S),
    # with g = F o (U^T u_bar), h = F o (V^T v_bar), v_bar = vh_bar^H; then A_bar = conj(U) P_bar V^T.
    m, n = avals[0][0][-2:]
    k = min(m, n)
    u, s, vh = _svd_parts(saved[0], m, n)
    u_bar, s_bar, vh_bar = _svd_parts(ct, m, n)
    s = real_if_complex(s)
    v_t, v_bar = conj_if_complex(vh), _mH(vh_bar)  # V^T, the cotangent of V
    gaps = _singular_gaps(s)
    ut_ubar = _mm(_mT(u), u_bar)
    g = gaps * ut_ubar
    h = gaps * _mm(v_t, v_bar)
    p_bar = _diag_embed(real_if_complex(s_bar)) + (g + _mH(g)) * _per_column(s) + _per_row(s) * (h + _mH(h))
    s_inv = _safe_reciprocal(s)
    if is_complex(p_bar):
        p_bar = p_bar + _diag_embed(IMAG.bind(_diag_part(ut_ubar)) * s_inv) * 1j
    u_c = conj_if_complex(u)
    a_bar = _mm(_mm(u_c, p_bar), v_t)
    if m > k:
        a_bar = a_bar + _mm((u_bar - _mm(u_c, ut_ubar)) * _per_column(s_inv), v_t)
    if n > k:
        a_bar = a_bar + _mm(u_c, _per_row(s_inv) * (vh_bar - _mm(_mm(vh_bar, _mT(vh)), v_t)))
    return [a_bar]


# Packed output (..., m*k + k + k*n), k = min(m, n): [U, S, Vh] of the reduced SVD.
SVD = Custom("svd", _svd_impl, _svd_jvp, _svd_vjp, saves=("out",))
SVD.batch = stacked(SVD)


# ---- qr (reduced, m >= n; gpuad.numpy.linalg.qr reduces wide matrices to this) -------------------------------------

def _qr_impl(xp, a):
    q, r = xp.linalg.qr(a, mode="reduced")
    return pack_impl(xp, (q, r), a.shape[:-2])


def _qr_parts(packed, m, n):
    return unpack(packed, [(m, n), (n, n)])


def _lower(x, k=0):
    """tril(x, k) on the last two axes (square), as a product with a constant mask."""
    n = aval(x)[0][-1]
    return x * _constant(x, lambda xp, dt: xp.tri(n, k=k, dtype=dt))


def _qr_jvp(primals, tangents, out, params):
    # C = Q^H dA R^-1 = Q^H dQ + dR R^-1: an anti-Hermitian part (the strict lower triangle, and the imaginary
    # diagonal, since LAPACK's R has a real diagonal) plus an upper triangular one with a real diagonal.
    a, da = primals[0], tangents[0]
    m, n = aval(a)[0][-2:]
    q, r = _qr_parts(out, m, n)
    da_rinv = _right_solve(da, r)  # dA R^-1
    c = _mm(_mH(q), da_rinv)
    lower = _lower(c, -1)
    upper = _real_diagonal(c - lower + _mH(lower))  # dR R^-1
    return pack([da_rinv - _mm(q, upper), _mm(upper, r)], aval(a)[0][:-2])


def _qr_vjp(ct, saved, params, avals, needed):
    # The transpose of the JVP: C_bar is Hermitian with a real diagonal, from the lower triangle of
    # M^H, M = R_bar R^T - Q^T Q_bar; A_bar = (Q_bar + conj(Q) C_bar) R^-T.
    m, n = avals[0][0][-2:]
    q, r = _qr_parts(saved[0], m, n)
    q_bar, r_bar = _qr_parts(ct, m, n)
    mid = _mm(conj_if_complex(r), _mH(r_bar)) - _mm(_mH(q_bar), conj_if_complex(q))  # M^H
    mid_herm = _real_diagonal(_lower(mid) + _mH(_lower(mid, -1)))
    return [_right_solve(q_bar + _mm(conj_if_complex(q), mid_herm), _mT(r))]


# Packed output (..., m*n + n*n): [Q, R] for m >= n.
QR = Custom("qr", _qr_impl, _qr_jvp, _qr_vjp, saves=("out",))
QR.batch = stacked(QR)
