"""Linear algebra on complex values, JAX's convention (the JVP is each op's R-linear map, the VJP its transpose
under <a, b> = Re(sum(a * b))). One table row per case, each checked against NumPy's forward value and dtype and
by check_grads in both modes (order 2 unless the row says otherwise) at well-conditioned complex input. Hermitian
decompositions (cholesky, eigh) read a Hermitian matrix, so their rows pass the input through ``herm`` (or test
the triangle NumPy reads); eigen- and singular vectors are defined up to a phase, so their rows test functions
invariant under it (|v|^2, projectors v v^H, U S V^H). QR with LAPACK's real diagonal of R is unique up to signs,
so Q and R are tested as they are."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

R = np.random.default_rng(11)


def c(*shape):
    return R.uniform(-1.0, 1.0, shape) + 1j * R.uniform(-1.0, 1.0, shape)


def r(*shape):
    return R.uniform(-1.0, 1.0, shape)


def well(*shape):
    """A well-conditioned (stack of) complex square matrix."""
    n = shape[-1]
    return c(*shape) + n * np.eye(n)


def hpd(*shape):
    """Hermitian positive definite."""
    b = c(*shape)
    return b @ np.conj(np.swapaxes(b, -1, -2)) + shape[-1] * np.eye(shape[-1])


def spread(*shape):
    """A complex matrix with well-separated singular values (and eigenvalues): gaps keep vector derivatives
    well conditioned."""
    n = min(shape[-2:])
    d = np.zeros(shape[-2:], complex)
    d[range(n), range(n)] = np.arange(1, n + 1) * 1.5
    return d + 0.3 * c(*shape)


def mH(m, x):
    return m.conj(m.swapaxes(x, -1, -2))


def herm(m, x):
    return (x + mH(m, x)) / 2


def abs2(m, v):
    return m.real(v * m.conj(v))


def eigen_projectors(m, v):
    """v_k v_k^H for each k: invariant under each eigenvector's phase."""
    return m.einsum("...ik,...jk->...kij", v, m.conj(v))


def singular_projectors(m, u, vh):
    """u_k vh_k for each k: invariant under the phase of each singular pair (u_k e^ia, vh_k e^-ia)."""
    return m.einsum("...ik,...kj->...kij", u, vh)


def reconstruct(m, u, s, vh):
    return (u * s[..., None, :]) @ vh


def rotation_like():
    """A real matrix with a complex (distinct) spectrum."""
    return np.array([[0.5, -2.0, 0.3], [1.5, 0.2, -0.4], [0.1, 0.6, 2.0]])


# (id, function of the gnp-or-np module, args[, order])
LINALG = [
    ("inv", lambda m, x: m.linalg.inv(x), [well(3, 3)]),
    ("inv_batched", lambda m, x: m.linalg.inv(x), [well(2, 3, 3)]),
    ("solve_vector", lambda m, x, b: m.linalg.solve(x, b), [well(3, 3), c(3)]),
    ("solve_matrix", lambda m, x, b: m.linalg.solve(x, b), [well(3, 3), c(3, 2)]),
    ("solve_batched_broadcast", lambda m, x, b: m.linalg.solve(x, b), [well(2, 3, 3), c(3, 2)]),
    ("solve_real_a", lambda m, x, b: m.linalg.solve(x, b), [well(3, 3).real, c(3, 2)]),
    ("solve_real_b", lambda m, x, b: m.linalg.solve(x, b), [well(3, 3), r(3)]),
    ("det", lambda m, x: m.linalg.det(x), [well(3, 3)]),
    ("det_batched", lambda m, x: m.linalg.det(x), [well(2, 3, 3)]),
    ("slogdet_sign", lambda m, x: m.linalg.slogdet(x).sign, [well(3, 3)]),
    ("slogdet_logabsdet", lambda m, x: m.linalg.slogdet(x)[1], [well(2, 3, 3)]),
    ("slogdet_both", lambda m, x: m.linalg.slogdet(x)[0] * m.exp(m.linalg.slogdet(x)[1]), [well(3, 3)]),
    ("pinv_square", lambda m, x: m.linalg.pinv(x), [well(3, 3)]),
    ("pinv_tall", lambda m, x: m.linalg.pinv(x), [c(4, 3)]),
    ("pinv_wide", lambda m, x: m.linalg.pinv(x), [c(3, 4)]),
    ("pinv_batched", lambda m, x: m.linalg.pinv(x), [c(2, 4, 3)]),
    ("pinv_hermitian", lambda m, x: m.linalg.pinv(herm(m, x), hermitian=True), [hpd(3, 3)]),
    ("cholesky", lambda m, x: m.linalg.cholesky(herm(m, x)), [hpd(3, 3)]),
    ("cholesky_batched", lambda m, x: m.linalg.cholesky(herm(m, x)), [hpd(2, 3, 3)]),
    ("cholesky_upper", lambda m, x: m.linalg.cholesky(herm(m, x), upper=True), [hpd(3, 3)]),
    ("cholesky_lower_triangle", lambda m, x: m.linalg.cholesky(x), [hpd(3, 3) + np.triu(c(3, 3), 1)]),
    ("eigh_values", lambda m, x: m.linalg.eigh(herm(m, x)).eigenvalues, [c(3, 3)]),
    ("eigh_abs2_vectors", lambda m, x: abs2(m, m.linalg.eigh(herm(m, x))[1]), [spread(3, 3)]),
    ("eigh_projectors", lambda m, x: eigen_projectors(m, m.linalg.eigh(herm(m, x))[1]), [spread(3, 3)]),
    ("eigh_batched", lambda m, x: eigen_projectors(m, m.linalg.eigh(herm(m, x))[1]), [c(2, 3, 3)]),
    ("eigh_upper_weighted", lambda m, x: (lambda w, v: abs2(m, v) * w)(*m.linalg.eigh(x, UPLO="U")),
     [spread(3, 3) + np.tril(c(3, 3), -1)]),
    ("eigvalsh", lambda m, x: m.linalg.eigvalsh(herm(m, x)), [c(2, 3, 3)]),
    ("eig_values", lambda m, x: m.linalg.eigvals(x), [spread(3, 3)]),
    ("eig_abs2_vectors", lambda m, x: abs2(m, m.linalg.eig(x).eigenvectors), [spread(3, 3)]),
    ("eig_real_input_complex_spectrum", lambda m, x: m.linalg.eigvals(x), [rotation_like()]),
    ("eig_real_input_vectors", lambda m, x: abs2(m, m.linalg.eig(x)[1]), [rotation_like()]),
    ("svd_values", lambda m, x: m.linalg.svd(x, compute_uv=False), [c(4, 3)]),
    ("svd_square_reconstruct", lambda m, x: reconstruct(m, *m.linalg.svd(x)), [spread(3, 3)]),
    ("svd_tall_reconstruct", lambda m, x: reconstruct(m, *m.linalg.svd(x, full_matrices=False)), [spread(4, 3)]),
    ("svd_wide_reconstruct", lambda m, x: reconstruct(m, *m.linalg.svd(x, full_matrices=False)), [spread(3, 4)]),
    ("svd_tall_projectors", lambda m, x: singular_projectors(m, *m.linalg.svd(x, full_matrices=False)[::2]),
     [spread(4, 3)]),
    ("svd_wide_projectors", lambda m, x: singular_projectors(m, *m.linalg.svd(x, full_matrices=False)[::2]),
     [spread(3, 4)]),
    ("svd_abs2_u_weighted", lambda m, x: (lambda u, s, vh: abs2(m, u) * s + abs2(m, vh).sum(-1))(
        *m.linalg.svd(x, full_matrices=False)), [spread(4, 3)]),
    ("svd_batched", lambda m, x: singular_projectors(m, *m.linalg.svd(x, full_matrices=False)[::2]),
     [spread(2, 4, 3)]),
    ("svdvals", lambda m, x: m.linalg.svdvals(x), [c(2, 3, 4)]),
    ("qr_tall_q", lambda m, x: m.linalg.qr(x).Q, [c(4, 3)]),
    ("qr_tall_r", lambda m, x: m.linalg.qr(x)[1], [c(4, 3)]),
    ("qr_square", lambda m, x: m.linalg.qr(x)[0] * 2 + m.linalg.qr(x)[1], [well(3, 3)]),
    ("qr_wide", lambda m, x: m.linalg.qr(x)[0].sum() + m.linalg.qr(x)[1], [c(3, 4)]),
    ("qr_batched", lambda m, x: m.linalg.qr(x).Q, [c(2, 4, 3)]),
    ("qr_mode_r", lambda m, x: m.linalg.qr(x, mode="r"), [c(4, 3)]),
    ("qr_complete_wide", lambda m, x: m.linalg.qr(x, mode="complete")[0], [c(3, 4)]),
    ("lstsq_x", lambda m, x, b: m.linalg.lstsq(x, b)[0], [c(4, 3), c(4)]),
    ("lstsq_residuals", lambda m, x, b: m.linalg.lstsq(x, b)[1], [c(4, 2), c(4, 2)]),
    ("lstsq_real_a", lambda m, x, b: m.linalg.lstsq(x, b)[0], [r(4, 3), c(4)]),
    ("lstsq_wide", lambda m, x, b: m.linalg.lstsq(x, b)[0], [c(2, 3), c(2)]),
]

NORMS = [
    ("norm_default", lambda m, x: m.linalg.norm(x), [c(3, 2)]),
    ("norm_keepdims", lambda m, x: m.linalg.norm(x, keepdims=True), [c(3, 2)]),
    *[(f"norm_vector_{o}", lambda m, x, o=o: m.linalg.norm(x, o), [c(4)])
      for o in (None, 1, 2, np.inf, -np.inf, 3, 0.5, -1)],
    ("norm_vector_0", lambda m, x: m.linalg.norm(x, 0) + m.real(x.sum()), [c(4)]),
    *[(f"norm_matrix_{o}", lambda m, x, o=o: m.linalg.norm(x, o), [c(3, 4)])
      for o in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)],
    ("norm_axis_int", lambda m, x: m.linalg.norm(x, axis=1), [c(3, 4)]),
    ("norm_axis_keepdims", lambda m, x: m.linalg.norm(x, 3, axis=-1, keepdims=True), [c(3, 4)]),
    ("norm_axes_matrix", lambda m, x: m.linalg.norm(x, "nuc", axis=(2, 0)), [c(3, 2, 4)]),
    ("norm_axes_fro", lambda m, x: m.linalg.norm(x, "fro", axis=(0, 2), keepdims=True), [c(3, 2, 4)]),
    ("vector_norm", lambda m, x: m.linalg.vector_norm(x, axis=(0, 2), ord=3), [c(3, 2, 4)]),
    ("vector_norm_default", lambda m, x: m.linalg.vector_norm(x), [c(3, 2)]),
    ("matrix_norm", lambda m, x: m.linalg.matrix_norm(x, ord=2), [c(2, 3, 4)]),
    ("matrix_norm_fro", lambda m, x: m.linalg.matrix_norm(x), [c(2, 3, 4)]),
]

HELPERS = [
    ("multi_dot", lambda m, x, y, z: m.linalg.multi_dot([x, y, z]), [c(3), c(3, 4), c(4, 2)]),
    ("matrix_power_3", lambda m, x: m.linalg.matrix_power(x, 3), [c(3, 3)]),
    ("matrix_power_5", lambda m, x: m.linalg.matrix_power(x, 5), [c(2, 2)]),
    ("matrix_power_neg", lambda m, x: m.linalg.matrix_power(x, -2), [well(3, 3)]),
    ("vecdot", lambda m, x, y: m.linalg.vecdot(x, y), [c(2, 3), c(3)]),
    ("vecdot_real_first", lambda m, x, y: m.linalg.vecdot(x, y), [r(3), c(2, 3)]),
    ("vecdot_axis", lambda m, x, y: m.linalg.vecdot(x, y, axis=0), [c(3, 2), c(3, 2)]),
    ("linalg_trace", lambda m, x: m.linalg.trace(x, offset=1), [c(2, 3, 4)]),
    ("linalg_diagonal", lambda m, x: m.linalg.diagonal(x), [c(2, 3, 4)]),
    ("linalg_matrix_transpose", lambda m, x: m.linalg.matrix_transpose(x), [c(2, 3, 4)]),
    ("linalg_outer", lambda m, x, y: m.linalg.outer(x, y), [c(3), c(2)]),
    ("linalg_tensordot", lambda m, x, y: m.linalg.tensordot(x, y, axes=1), [c(2, 3), c(3)]),
    ("linalg_matmul", lambda m, x, y: m.linalg.matmul(x, y), [c(2, 3), c(3, 2)]),
    *[(f"cond_{p}", lambda m, x, p=p: m.linalg.cond(x, p), [well(3, 3)])
      for p in (None, 2, -2, 1, -1, np.inf, -np.inf, "fro", "nuc")],
    ("cond_batched_wide", lambda m, x: m.linalg.cond(x), [spread(2, 2, 3)]),
    ("tensorinv", lambda m, x: m.linalg.tensorinv(x, ind=2), [(well(6, 6)).reshape(2, 3, 6)]),
    ("tensorsolve", lambda m, x, b: m.linalg.tensorsolve(x, b), [well(6, 6).reshape(6, 2, 3), c(6)]),
    ("tensorsolve_axes", lambda m, x, b: m.linalg.tensorsolve(x, b, axes=(0,)),
     [well(6, 6).reshape(2, 3, 6).transpose(2, 0, 1), c(2, 3)]),
    ("linalg_cross", lambda m, x, y: m.linalg.cross(x, y), [c(2, 3), c(3)]),
    # the products outside numpy.linalg: C-linear (no conjugation) except vdot and vecdot, which conjugate x1
    ("vdot", lambda m, x, y: m.vdot(x, y), [c(2, 3), c(2, 3)]),
    ("vecdot_toplevel", lambda m, x, y: m.vecdot(x, y), [c(2, 3), c(3)]),
    ("dot", lambda m, x, y: m.dot(x, y), [c(2, 3), c(3)]),
    ("inner", lambda m, x, y: m.inner(x, y), [c(2, 3), c(4, 3)]),
    ("einsum", lambda m, x, y: m.einsum("ij,jk,kk->ik", x, y, y), [c(2, 3), c(3, 3)]),
    ("kron_trace_tril", lambda m, x: m.kron(m.tril(x), m.diag(x)) + m.trace(x), [c(3, 3)]),
]

CASES = LINALG + NORMS + HELPERS
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize("name,fn,args", CASES, ids=IDS)
def test_forward_matches_numpy(name, fn, args):
    """Plain arrays (NumPy's own functions), and the traced evaluation in reverse and forward mode: NumPy's value
    and dtype (real eigenvalues, singular values, log|det| and norms of complex input)."""
    expected = np.asarray(fn(np, *args))
    plain = np.asarray(fn(gnp, *args))
    traced, _ = gpuad.vjp(lambda *xs: fn(gnp, *xs), *args)
    forward, _ = gpuad.jvp(lambda *xs: fn(gnp, *xs), tuple(args), tuple(np.ones_like(x) for x in args))
    for got in (plain, traced, forward):
        got = np.asarray(got)
        assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name,fn,args", CASES, ids=IDS)
def test_gradients(name, fn, args):
    check_grads(lambda *xs: fn(gnp, *xs), args, order=2, modes=("fwd", "rev"))


def test_jax_convention_in_closed_form():
    """grad of a real f(z) is df/dx - i df/dy: for f = Re h(z) with h holomorphic it is h'(z) (no conjugate),
    for f = |z|^2 it is 2 conj(z); holomorphic=True gives f'(z) of a complex f."""
    a, h = well(3, 3), hpd(3, 3)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.linalg.slogdet(x)[1])(a), np.linalg.inv(a).T, rtol=1e-12)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.linalg.norm(x) ** 2)(a), 2 * np.conj(a), rtol=1e-12)
    np.testing.assert_allclose(gpuad.grad(gnp.linalg.det, holomorphic=True)(a),
                               np.linalg.det(a) * np.linalg.inv(a).T, rtol=1e-12)
    # eig's eigenvalues are holomorphic: sum(w) = tr(A), sum(w^2) = tr(A^2)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(gnp.linalg.eigvals(x)), holomorphic=True)(a),
                               np.eye(3), atol=1e-12)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(gnp.linalg.eigvals(x) ** 2), holomorphic=True)(a),
                               2 * a.T, rtol=1e-12)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.trace(gnp.linalg.inv(x)), holomorphic=True)(a),
                               -(np.linalg.inv(a) @ np.linalg.inv(a)).T, rtol=1e-12)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(gnp.linalg.eigvalsh(herm(gnp, x)) ** 2))(a),
                               2 * np.conj(herm(np, a)), rtol=1e-12)
    # sum of singular values squared is ||A||_F^2, and log det of a Hermitian positive definite matrix from
    # its Cholesky factor is real with gradient conj(A^-1) (the lower triangle, where cholesky reads it)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(gnp.linalg.svdvals(x) ** 2))(a), 2 * np.conj(a),
                               rtol=1e-12)
    logdet = lambda x: 2 * gnp.sum(gnp.log(gnp.real(gnp.diagonal(gnp.linalg.cholesky(x)))))  # noqa: E731
    g = gpuad.grad(logdet)(h)
    expected = np.conj(np.linalg.inv(h))
    np.testing.assert_allclose(np.tril(g, -1), 2 * np.tril(expected, -1), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.diag(g), np.diag(expected).real, rtol=1e-12)


def test_triangle_convention():
    """cholesky and eigh read one triangle of a complex matrix, as NumPy does, and LAPACK ignores the imaginary
    parts of its diagonal: the other triangle and those parts get zero derivative, and a perturbation of them
    changes nothing."""
    x, w = hpd(3, 3), c(3, 3)
    skewed = x + np.triu(c(3, 3), 1) + 1j * np.diag(r(3))  # not Hermitian: NumPy reads the lower triangle
    for upper in (False, True):
        base = skewed.T if upper else skewed
        np.testing.assert_allclose(gnp.linalg.cholesky(gpuad.tensor(base), upper=upper),
                                   np.linalg.cholesky(base, upper=upper), rtol=1e-13)
        f = lambda x: gnp.real(gnp.sum(gnp.linalg.cholesky(x, upper=upper) * w))  # noqa: E731
        g = gpuad.grad(f)(base)
        unread = np.tril(g, -1) if upper else np.triu(g, 1)
        np.testing.assert_array_equal(unread, 0)
        np.testing.assert_allclose(np.diag(g).imag, 0, atol=1e-15)
        other = np.tril(c(3, 3), -1) if upper else np.triu(c(3, 3), 1)
        _, t = gpuad.jvp(lambda x: gnp.linalg.cholesky(x, upper=upper), (base,), (other + 1j * np.eye(3),))
        np.testing.assert_allclose(t, 0, atol=1e-12)
        check_grads(lambda x: gnp.linalg.cholesky(x, upper=upper), [base], order=2)
    for uplo in ("L", "U"):
        base = skewed if uplo == "L" else skewed.T
        np.testing.assert_allclose(gnp.linalg.eigvalsh(gpuad.tensor(base), UPLO=uplo),
                                   np.linalg.eigvalsh(base, UPLO=uplo), rtol=1e-13)
        g = gpuad.grad(lambda x: gnp.sum(gnp.linalg.eigvalsh(x, UPLO=uplo) * w[0].real))(base)
        np.testing.assert_array_equal(np.triu(g, 1) if uplo == "L" else np.tril(g, -1), 0)
        np.testing.assert_allclose(np.diag(g).imag, 0, atol=1e-15)
        check_grads(lambda x: gnp.linalg.eigvalsh(x, UPLO=uplo), [base], order=2)


def test_phase_gauge_of_the_vectors():
    """The eigen- and singular vector tangents are NumPy's vectors' tangents up to a phase rotation: for eigh
    and eig V^H dV has a zero (eig: imaginary) diagonal, for svd the phase goes to U and U S V^H moves exactly
    as A does; the phase-invariant parts match central differences."""
    a, da = spread(3, 3), c(3, 3)
    hermitian = herm(np, a)
    _, (dw, dv) = gpuad.jvp(lambda x: tuple(gnp.linalg.eigh(herm(gnp, x))), (a,), (da,))
    w, v = np.linalg.eigh(hermitian)
    np.testing.assert_allclose(np.diag(v.conj().T @ dv), 0, atol=1e-12)
    assert dw.dtype == np.float64
    _, dv = gpuad.jvp(lambda x: gnp.linalg.eig(x).eigenvectors, (a,), (da,))
    v = np.linalg.eig(a).eigenvectors
    np.testing.assert_allclose(np.diag(v.conj().T @ dv).real, 0, atol=1e-12)
    for shape in ((3, 3), (4, 3), (3, 4)):
        x, dx = spread(*shape), c(*shape)
        _, (du, ds, dvh) = gpuad.jvp(lambda x: tuple(gnp.linalg.svd(x, full_matrices=False)), (x,), (dx,))
        u, s, vh = np.linalg.svd(x, full_matrices=False)
        np.testing.assert_allclose((du * s) @ vh + (u * ds) @ vh + (u * s) @ dvh, dx, atol=1e-12)
        assert ds.dtype == np.float64


def test_repeated_eigen_and_singular_values_keep_value_gradients_exact():
    eye = np.eye(3, dtype=complex)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(gnp.linalg.eigvalsh(x) ** 2))(2 * eye), 4 * eye)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.linalg.norm(x, "nuc"))(1j * eye), -1j * eye, atol=1e-15)


def test_complex64_stays_complex64():
    x = well(3, 3).astype(np.complex64)
    fs = [lambda x: gnp.real(gnp.sum(gnp.linalg.inv(x))), lambda x: gnp.linalg.slogdet(x)[1],
          lambda x: gnp.sum(gnp.linalg.eigvalsh(x)), lambda x: gnp.sum(gnp.linalg.svdvals(x)),
          lambda x: gnp.linalg.norm(x), lambda x: gnp.real(gnp.sum(gnp.linalg.qr(x)[1])),
          lambda x: gnp.real(gnp.sum(gnp.linalg.cholesky(x @ gnp.conj(x.T)))),
          lambda x: gnp.abs(gnp.sum(gnp.linalg.pinv(x))), lambda x: gnp.abs(gnp.linalg.det(x))]
    for f in fs:
        g = gpuad.grad(f)(x)
        assert g.dtype == np.complex64 and g.shape == (3, 3)
        _, t = gpuad.jvp(f, (x,), (np.ones_like(x),))
        assert t.dtype == np.float32


def test_vmap_and_jacobians():
    xs = spread(4, 3, 3)
    expected = np.linalg.svd(xs, compute_uv=False)
    np.testing.assert_allclose(gpuad.vmap(gnp.linalg.svdvals)(xs), expected, rtol=1e-12)
    np.testing.assert_allclose(gpuad.vmap(lambda x: gnp.linalg.eigvalsh(herm(gnp, x)))(xs),
                               np.linalg.eigvalsh(herm(np, xs)), rtol=1e-12)
    f = lambda x: gnp.linalg.slogdet(x)[1]  # noqa: E731
    jac = gpuad.jacrev(f)(xs[0])
    np.testing.assert_allclose(jac, np.linalg.inv(xs[0]).T, rtol=1e-12)
    # the Hessian of a real function of a complex matrix is not one complex array (JAX refuses it too): take it
    # over the real coordinates
    with pytest.raises(TypeError, match="holomorphic"):
        gpuad.hessian(lambda x: gnp.linalg.norm(x, "nuc"))(xs[0])
    h = gpuad.hessian(lambda re: gnp.linalg.norm(re + 1j * xs[0].imag, "nuc"))(xs[0].real)
    assert h.shape == (3, 3, 3, 3) and np.all(np.isfinite(h))
    np.testing.assert_allclose(h, h.transpose(2, 3, 0, 1), rtol=1e-8, atol=1e-10)


def test_matrix_rank_is_a_plain_count():
    x = c(4, 3) @ c(3, 4)
    traced = gpuad.vjp(lambda x: gnp.linalg.matrix_rank(x) * gnp.linalg.norm(x), x)[0]
    np.testing.assert_allclose(traced, np.linalg.matrix_rank(x) * np.linalg.norm(x))
    assert gnp.linalg.matrix_rank(gpuad.tensor(x)) == 3 == np.linalg.matrix_rank(x)
    assert gnp.linalg.matrix_rank(gpuad.tensor(x), rtol=0.9) == np.linalg.matrix_rank(x, rtol=0.9)
