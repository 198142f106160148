"""Linear algebra: einsum and its relatives, the products, and numpy.linalg. One table row per case, each checked
by check_grads (fwd and rev, order 2, float64) at well-conditioned inputs, and against NumPy's forward value
(traced evaluation included). Decompositions are checked through functions of their outputs that do not depend
on the sign conventions of the eigen/singular vectors (v * v, rank-one projectors), and cholesky and eigh through
a symmetrised input, the derivative convention they follow."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

R = np.random.default_rng(7)


def a(*shape, low=-2.0, high=2.0):
    return R.uniform(low, high, shape)


def well(*shape):
    """A well-conditioned (stack of) square matrix: random plus n * identity."""
    n = shape[-1]
    return a(*shape, low=-1.0, high=1.0) + n * np.eye(n)


def spd(*shape):
    b = a(*shape, low=-1.0, high=1.0)
    return b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])


def sym(m, x):
    return (x + m.swapaxes(x, -1, -2)) / 2


def projectors(m, u, vh):
    """u[:, k] vh[k, :] for each k: invariant under the sign flip of a singular (or eigen) pair."""
    return m.einsum("...ik,...kj->...kij", u, vh)


def eigen_projectors(m, v):
    return m.einsum("...ik,...jk->...kij", v, v)


# (id, function of the gnp-or-np module, args)
EINSUM = [
    ("einsum_matmul", lambda m, x, y: m.einsum("ij,jk->ik", x, y), [a(3, 4), a(4, 2)]),
    ("einsum_implicit", lambda m, x, y: m.einsum("ij,jk", x, y), [a(3, 4), a(4, 2)]),
    ("einsum_implicit_order", lambda m, x, y: m.einsum("bA,Ac", x, y), [a(3, 4), a(4, 2)]),
    ("einsum_diag", lambda m, x: m.einsum("ii->i", x), [a(3, 3)]),
    ("einsum_trace", lambda m, x: m.einsum("ii", x), [a(3, 3)]),
    ("einsum_repeat_keep", lambda m, x: m.einsum("iij->ji", x), [a(3, 3, 2)]),
    ("einsum_repeat_two_operands", lambda m, x, y: m.einsum("ii,ij->j", x, y), [a(3, 3), a(3, 2)]),
    ("einsum_ellipsis_broadcast", lambda m, x, y: m.einsum("...ij,...jk->...ik", x, y), [a(2, 1, 3, 4), a(3, 4, 2)]),
    ("einsum_ellipsis_middle", lambda m, x: m.einsum("i...i", x), [a(3, 2, 3)]),
    ("einsum_ellipsis_implicit", lambda m, x, y: m.einsum("...i,...i", x, y), [a(2, 3), a(3)]),
    ("einsum_dot", lambda m, x, y: m.einsum("i,i->", x, y), [a(3), a(3)]),
    ("einsum_outer", lambda m, x, y: m.einsum("i,j->ij", x, y), [a(3), a(2)]),
    ("einsum_sum", lambda m, x: m.einsum("ij->", x), [a(3, 2)]),
    ("einsum_permute", lambda m, x: m.einsum("ijk->kij", x), [a(2, 3, 4)]),
    ("einsum_only_in_one", lambda m, x, y: m.einsum("ij,k->jk", x, y), [a(3, 2), a(4)]),
    ("einsum_size1_broadcast", lambda m, x, y: m.einsum("ij,jk->ik", x, y), [a(3, 1), a(4, 2)]),
    ("einsum_three_optimize", lambda m, x, y, z: m.einsum("ij,jk,kl->il", x, y, z, optimize=True),
     [a(2, 3), a(3, 4), a(4, 2)]),
    ("einsum_three_greedy", lambda m, x, y, z: m.einsum("ab,bc,ca->", x, y, z, optimize="greedy"),
     [a(2, 3), a(3, 4), a(4, 2)]),
    ("einsum_sublist", lambda m, x, y: m.einsum(x, [0, 1], y, [1, 2], [0, 2]), [a(3, 4), a(4, 2)]),
    ("einsum_sublist_ellipsis", lambda m, x, y: m.einsum(x, [Ellipsis, 1], y, [1]), [a(2, 3), a(3)]),
    ("einsum_same_operand_twice", lambda m, x: m.einsum("ij,ij->", x, x), [a(3, 2)]),
    ("einsum_scalar_operand", lambda m, s, x: m.einsum(",ij->ij", s, x), [a(), a(3, 2)]),
    ("einsum_spaces", lambda m, x, y: m.einsum("i j , j k -> i k", x, y), [a(3, 4), a(4, 2)]),
]

STRUCTURE = [
    ("kron_2d", lambda m, x, y: m.kron(x, y), [a(2, 3), a(3, 2)]),
    ("kron_1d", lambda m, x, y: m.kron(x, y), [a(2), a(3)]),
    ("kron_mixed_ndim", lambda m, x, y: m.kron(x, y), [a(2, 2), a(3)]),
    ("kron_scalar", lambda m, x, y: m.kron(x, y), [a(), a(2, 2)]),
    ("trace", lambda m, x: m.trace(x), [a(3, 3)]),
    ("trace_offset", lambda m, x: m.trace(x, 1), [a(3, 4)]),
    ("trace_offset_neg", lambda m, x: m.trace(x, -1), [a(3, 4)]),
    ("trace_axes", lambda m, x: m.trace(x, 0, 1, 2), [a(2, 3, 3)]),
    ("trace_method", lambda m, x: x.trace(), [a(3, 3)]),
    ("diag_build", lambda m, x: m.diag(x), [a(3)]),
    ("diag_build_k1", lambda m, x: m.diag(x, 1), [a(3)]),
    ("diag_build_k-2", lambda m, x: m.diag(x, k=-2), [a(2)]),
    ("diag_extract", lambda m, x: m.diag(x), [a(3, 4)]),
    ("diag_extract_k1", lambda m, x: m.diag(x, 1), [a(3, 4)]),
    ("diag_extract_k-1", lambda m, x: m.diag(x, -1), [a(3, 4)]),
    ("diagonal", lambda m, x: m.diagonal(x), [a(3, 4)]),
    ("diagonal_offset_axes", lambda m, x: m.diagonal(x, -1, 0, 2), [a(4, 3, 3)]),
    ("diagonal_method_neg_axes", lambda m, x: x.diagonal(1, -1, -2), [a(2, 3, 4)]),
    ("tril", lambda m, x: m.tril(x), [a(3, 4)]),
    ("tril_k1", lambda m, x: m.tril(x, 1), [a(3, 4)]),
    ("tril_batched_k-1", lambda m, x: m.tril(x, k=-1), [a(2, 3, 3)]),
    ("tril_1d", lambda m, x: m.tril(x), [a(3)]),
    ("triu", lambda m, x: m.triu(x), [a(3, 4)]),
    ("triu_k-1", lambda m, x: m.triu(x, -1), [a(3, 4)]),
    ("triu_batched_k1", lambda m, x: m.triu(x, k=1), [a(2, 3, 3)]),
]

PRODUCTS = [
    ("tensordot_int0", lambda m, x, y: m.tensordot(x, y, 0), [a(2, 3), a(2)]),
    ("tensordot_int1", lambda m, x, y: m.tensordot(x, y, 1), [a(2, 3), a(3, 2)]),
    ("tensordot_int2", lambda m, x, y: m.tensordot(x, y), [a(2, 3, 4), a(3, 4, 2)]),
    ("tensordot_pair_ints", lambda m, x, y: m.tensordot(x, y, axes=(0, 1)), [a(3, 2), a(4, 3)]),
    ("tensordot_pair_seqs", lambda m, x, y: m.tensordot(x, y, axes=([1, 0], [0, 1])), [a(2, 3, 4), a(3, 2)]),
    ("tensordot_negative_axes", lambda m, x, y: m.tensordot(x, y, axes=([-1], [-2])), [a(2, 3), a(3, 4)]),
    ("inner_vv", lambda m, x, y: m.inner(x, y), [a(3), a(3)]),
    ("inner_nd", lambda m, x, y: m.inner(x, y), [a(2, 3), a(4, 3)]),
    ("inner_scalar", lambda m, x, y: m.inner(x, y), [a(), a(2, 3)]),
    ("outer", lambda m, x, y: m.outer(x, y), [a(3), a(2)]),
    ("outer_flattens", lambda m, x, y: m.outer(x, y), [a(2, 2), a(3)]),
    ("vdot", lambda m, x, y: m.vdot(x, y), [a(2, 3), a(2, 3)]),
    ("dot_vv", lambda m, x, y: m.dot(x, y), [a(3), a(3)]),
    ("dot_mv", lambda m, x, y: m.dot(x, y), [a(2, 3), a(3)]),
    ("dot_vm", lambda m, x, y: m.dot(x, y), [a(3), a(3, 2)]),
    ("dot_nd_v", lambda m, x, y: m.dot(x, y), [a(2, 3, 4), a(4)]),
    ("dot_nd_nd", lambda m, x, y: m.dot(x, y), [a(2, 3, 4), a(5, 4, 2)]),
    ("dot_v_nd", lambda m, x, y: m.dot(x, y), [a(3), a(2, 3, 4)]),
    ("dot_scalar", lambda m, x, y: m.dot(x, y), [a(), a(2, 3)]),
    ("matmul_vm", lambda m, x, y: m.matmul(x, y), [a(3), a(3, 2)]),
    ("matmul_mv", lambda m, x, y: m.matmul(x, y), [a(2, 3), a(3)]),
    ("matmul_vv", lambda m, x, y: m.matmul(x, y), [a(3), a(3)]),
    ("matmul_broadcast", lambda m, x, y: m.matmul(x, y), [a(2, 1, 3, 4), a(3, 4, 2)]),
    ("matmul_v_batched", lambda m, x, y: m.matmul(x, y), [a(4), a(2, 4, 3)]),
    ("matmul_batched_v", lambda m, x, y: m.matmul(x, y), [a(2, 3, 4), a(4)]),
]

LINALG = [
    ("inv", lambda m, x: m.linalg.inv(x), [well(3, 3)]),
    ("inv_batched", lambda m, x: m.linalg.inv(x), [well(2, 3, 3)]),
    ("solve_vector", lambda m, x, b: m.linalg.solve(x, b), [well(3, 3), a(3)]),
    ("solve_matrix", lambda m, x, b: m.linalg.solve(x, b), [well(3, 3), a(3, 2)]),
    ("solve_batched", lambda m, x, b: m.linalg.solve(x, b), [well(2, 3, 3), a(2, 3, 2)]),
    ("solve_broadcast_b", lambda m, x, b: m.linalg.solve(x, b), [well(2, 3, 3), a(3, 2)]),
    ("solve_batched_vector", lambda m, x, b: m.linalg.solve(x, b), [well(2, 3, 3), a(3)]),
    ("det", lambda m, x: m.linalg.det(x), [well(3, 3)]),
    ("det_batched", lambda m, x: m.linalg.det(x), [well(2, 3, 3)]),
    ("slogdet_negative", lambda m, x: m.linalg.slogdet(x)[1], [-well(3, 3)]),
    ("slogdet_batched", lambda m, x: m.linalg.slogdet(x).logabsdet, [well(2, 3, 3)]),
    ("pinv_square", lambda m, x: m.linalg.pinv(x), [well(3, 3)]),
    ("pinv_tall", lambda m, x: m.linalg.pinv(x), [a(4, 3)]),
    ("pinv_wide", lambda m, x: m.linalg.pinv(x), [a(3, 4)]),
    ("pinv_batched", lambda m, x: m.linalg.pinv(x), [a(2, 4, 3)]),
    ("cholesky", lambda m, x: m.linalg.cholesky(sym(m, x)), [spd(3, 3)]),
    ("cholesky_batched", lambda m, x: m.linalg.cholesky(sym(m, x)), [spd(2, 3, 3)]),
    ("cholesky_upper", lambda m, x: m.linalg.cholesky(sym(m, x), upper=True), [spd(3, 3)]),
    ("eigh_values", lambda m, x: m.linalg.eigh(sym(m, x)).eigenvalues, [spd(3, 3)]),
    ("eigh_vectors_squared", lambda m, x: m.linalg.eigh(sym(m, x))[1] ** 2, [spd(3, 3)]),
    ("eigh_projectors", lambda m, x: eigen_projectors(m, m.linalg.eigh(sym(m, x))[1]), [a(3, 3)]),
    ("eigh_batched", lambda m, x: eigen_projectors(m, m.linalg.eigh(sym(m, x))[1]), [a(2, 3, 3)]),
    ("eigh_upper", lambda m, x: m.linalg.eigh(sym(m, x), UPLO="U")[0], [a(3, 3)]),
    ("eigvalsh", lambda m, x: m.linalg.eigvalsh(sym(m, x)), [a(2, 3, 3)]),
    ("svd_values", lambda m, x: m.linalg.svd(x, compute_uv=False), [a(3, 3)]),
    ("svd_square", lambda m, x: projectors(m, *m.linalg.svd(x)[::2]), [a(3, 3)]),
    ("svd_tall_u2", lambda m, x: m.linalg.svd(x, full_matrices=False).U ** 2, [a(4, 3)]),
    ("svd_tall_projectors", lambda m, x: projectors(m, *m.linalg.svd(x, full_matrices=False)[::2]), [a(4, 3)]),
    ("svd_wide_projectors", lambda m, x: projectors(m, *m.linalg.svd(x, full_matrices=False)[::2]), [a(3, 4)]),
    ("svd_wide_vh2", lambda m, x: m.linalg.svd(x, full_matrices=False).Vh ** 2, [a(3, 4)]),
    ("svd_batched", lambda m, x: projectors(m, *m.linalg.svd(x, full_matrices=False)[::2]), [a(2, 4, 3)]),
    ("svdvals", lambda m, x: m.linalg.svdvals(x), [a(2, 3, 4)]),
    ("qr_tall_q", lambda m, x: m.linalg.qr(x).Q, [a(4, 3)]),
    ("qr_tall_r", lambda m, x: m.linalg.qr(x)[1], [a(4, 3)]),
    ("qr_square", lambda m, x: m.linalg.qr(x)[0] * 2 + m.linalg.qr(x)[1], [well(3, 3)]),
    ("qr_wide", lambda m, x: m.linalg.qr(x)[0].sum() + m.linalg.qr(x)[1], [a(3, 4)]),
    ("qr_batched", lambda m, x: m.linalg.qr(x).Q, [a(2, 4, 3)]),
    ("qr_mode_r", lambda m, x: m.linalg.qr(x, mode="r"), [a(4, 3)]),
    ("qr_complete_wide", lambda m, x: m.linalg.qr(x, mode="complete")[0], [a(3, 4)]),
]

NORMS = [
    ("norm_default", lambda m, x: m.linalg.norm(x), [a(3, 2)]),
    ("norm_keepdims", lambda m, x: m.linalg.norm(x, keepdims=True), [a(3, 2)]),
    *[(f"norm_vector_{o}", lambda m, x, o=o: m.linalg.norm(x, o), [a(4)])
      for o in (None, 1, 2, np.inf, -np.inf, 3, 0.5, -1)],
    ("norm_vector_0", lambda m, x: m.linalg.norm(x, 0) + x.sum(), [a(4)]),
    *[(f"norm_matrix_{o}", lambda m, x, o=o: m.linalg.norm(x, o), [a(3, 4)])
      for o in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)],
    ("norm_axis_int", lambda m, x: m.linalg.norm(x, axis=1), [a(3, 4)]),
    ("norm_axis_keepdims", lambda m, x: m.linalg.norm(x, 3, axis=-1, keepdims=True), [a(3, 4)]),
    ("norm_axes_matrix", lambda m, x: m.linalg.norm(x, "nuc", axis=(2, 0)), [a(3, 2, 4)]),
    ("norm_axes_1_keepdims", lambda m, x: m.linalg.norm(x, 1, axis=(0, 2), keepdims=True), [a(3, 2, 4)]),
    ("norm_axes_inf", lambda m, x: m.linalg.norm(x, np.inf, axis=(2, 1)), [a(3, 2, 4)]),
    ("vector_norm", lambda m, x: m.linalg.vector_norm(x, axis=(0, 2), ord=3), [a(3, 2, 4)]),
    ("matrix_norm", lambda m, x: m.linalg.matrix_norm(x, ord=2), [a(2, 3, 4)]),
]

HELPERS = [
    ("multi_dot", lambda m, x, y, z: m.linalg.multi_dot([x, y, z]), [a(3), a(3, 4), a(4, 2)]),
    ("linalg_vecdot", lambda m, x, y: m.linalg.vecdot(x, y), [a(2, 3), a(3)]),
    ("linalg_trace", lambda m, x: m.linalg.trace(x, offset=1), [a(2, 3, 4)]),
    ("linalg_diagonal", lambda m, x: m.linalg.diagonal(x), [a(2, 3, 4)]),
    ("linalg_matrix_transpose", lambda m, x: m.linalg.matrix_transpose(x), [a(2, 3, 4)]),
    ("linalg_outer", lambda m, x, y: m.linalg.outer(x, y), [a(3), a(2)]),
    ("linalg_tensordot", lambda m, x, y: m.linalg.tensordot(x, y, axes=1), [a(2, 3), a(3)]),
    *[(f"cond_{p}", lambda m, x, p=p: m.linalg.cond(x, p), [well(3, 3)]) for p in (None, -2, 1, np.inf, "fro")],
    ("cond_wide", lambda m, x: m.linalg.cond(x), [a(2, 3)]),
    ("tensorinv", lambda m, x: m.linalg.tensorinv(x, ind=1), [well(6, 6).reshape(6, 2, 3)]),
    ("tensorsolve_axes", lambda m, x, b: m.linalg.tensorsolve(x, b, axes=(0,)),
     [well(6, 6).reshape(2, 3, 6).transpose(2, 0, 1), a(2, 3)]),
    ("linalg_cross", lambda m, x, y: m.linalg.cross(x, y, axis=0), [a(3, 2), a(3, 2)]),
]

CASES = EINSUM + STRUCTURE + PRODUCTS + LINALG + NORMS + HELPERS


@pytest.mark.parametrize("name,fn,args", CASES, ids=[c[0] for c in CASES])
def test_gradients(name, fn, args):
    check_grads(lambda *xs: fn(gnp, *xs), args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name,fn,args", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_numpy(name, fn, args):
    expected = fn(np, *args)
    np.testing.assert_allclose(fn(gnp, *args), expected, rtol=1e-12, atol=1e-14)
    out, _ = gpuad.vjp(lambda *xs: fn(gnp, *xs), *args)
    np.testing.assert_allclose(out, expected, rtol=1e-11, atol=1e-13)


def test_plain_arrays_pass_through_to_numpy():
    x = well(3, 3)
    assert type(gnp.linalg.inv(x)) is np.ndarray
    assert type(gnp.linalg.eigh(x)).__name__ == "EighResult"
    np.testing.assert_array_equal(gnp.einsum("ij,jk", x, x), np.einsum("ij,jk", x, x))
    np.testing.assert_array_equal(gnp.linalg.norm(x, "nuc"), np.linalg.norm(x, "nuc"))


def test_numpy_functions_on_tensors_reach_gpuad():
    """numpy.linalg.f(t) and numpy.einsum(t) on a traced Tensor are recorded through __array_function__."""
    def with_numpy(x):
        w, v = np.linalg.eigh(sym(np, x))
        return (np.sum(np.linalg.inv(x)) + np.linalg.det(x) + np.linalg.norm(x, "nuc") + np.trace(x)
                + np.einsum("ii", np.linalg.solve(x, x.T)) + np.sum(w) + np.sum(np.linalg.svd(x)[1]))

    def with_gnp(x):
        w, v = gnp.linalg.eigh(sym(gnp, x))
        return (gnp.sum(gnp.linalg.inv(x)) + gnp.linalg.det(x) + gnp.linalg.norm(x, "nuc") + gnp.trace(x)
                + gnp.einsum("ii", gnp.linalg.solve(x, x.T)) + gnp.sum(w) + gnp.sum(gnp.linalg.svd(x)[1]))

    x = well(3, 3)
    np.testing.assert_allclose(gpuad.grad(with_numpy)(x), gpuad.grad(with_gnp)(x))
    check_grads(with_numpy, [x], order=2)


def test_triangle_convention():
    """cholesky and eigh read one triangle, as NumPy does (the lower one; the upper with UPLO='U' / upper=True):
    only that triangle gets a gradient, a perturbation of the other changes nothing, and the derivative is
    exact at non-symmetric input too."""
    x, w = spd(3, 3), a(3, 3)
    lower_fns = (lambda x: gnp.sum(gnp.linalg.cholesky(x) * w), lambda x: gnp.sum(gnp.linalg.eigh(x)[1] ** 2 * w),
                 lambda x: gnp.sum(gnp.linalg.eigvalsh(x) * w[0]))
    upper_fns = (lambda x: gnp.sum(gnp.linalg.cholesky(x, upper=True) * w),
                 lambda x: gnp.sum(gnp.linalg.eigh(x, UPLO="U")[1] ** 2 * w),
                 lambda x: gnp.sum(gnp.linalg.eigvalsh(x, UPLO="U") * w[0]))
    for f in lower_fns:
        g = gpuad.grad(f)(x)
        np.testing.assert_array_equal(np.triu(g, 1), 0)
    for f in upper_fns:
        g = gpuad.grad(f)(x)
        np.testing.assert_array_equal(np.tril(g, -1), 0)
    upper_only = np.triu(a(3, 3), 1)
    _, t = gpuad.jvp(gnp.linalg.cholesky, (x,), (upper_only,))
    np.testing.assert_allclose(t, 0, atol=1e-12)
    _, t = gpuad.jvp(lambda x: gnp.linalg.eigh(x, UPLO="U").eigenvalues, (x,), (upper_only.T,))
    np.testing.assert_allclose(t, 0, atol=1e-12)
    # Non-symmetric input: NumPy's value (from the triangle it reads) and exact derivatives of it.
    skewed = x + np.triu(a(3, 3), 1)
    for uplo in ("L", "U"):
        np.testing.assert_allclose(gnp.linalg.eigh(gpuad.tensor(skewed), UPLO=uplo)[0],
                                   np.linalg.eigh(skewed, UPLO=uplo)[0], rtol=1e-13)
        check_grads(lambda x: gnp.linalg.eigvalsh(x, UPLO=uplo), [skewed], order=2)
    np.testing.assert_allclose(gnp.linalg.cholesky(gpuad.tensor(skewed.T), upper=True),
                               np.linalg.cholesky(skewed.T, upper=True), rtol=1e-13)
    check_grads(lambda x: gnp.linalg.cholesky(x, upper=True), [skewed.T], order=2)


def test_repeated_eigen_and_singular_values_keep_value_gradients_exact():
    """Exactly equal eigenvalues (singular values) add nothing to the derivative: functions of the values alone
    stay exact and finite, to second order."""
    eye = np.eye(3)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(gnp.linalg.eigvalsh(x) ** 2))(2 * eye), 4 * eye)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.linalg.norm(x, "nuc"))(eye), eye)
    nuclear_grad = gpuad.grad(lambda x: gnp.linalg.norm(x, "nuc"))
    assert np.all(np.isfinite(gpuad.jvp(nuclear_grad, (eye,), (a(3, 3),))[1]))


@pytest.mark.parametrize("ord", [None, 2, 3, 1, np.inf, "fro"])
def test_norm_at_zero_has_zero_gradient(ord):
    zero = np.zeros((3, 2)) if ord == "fro" else np.zeros(3)
    g = gpuad.grad(lambda x: gnp.linalg.norm(x, ord))(zero)
    np.testing.assert_array_equal(g, np.zeros_like(zero))
    hvp = gpuad.jvp(gpuad.grad(lambda x: gnp.linalg.norm(x, ord)), (zero,), (np.ones_like(zero),))[1]
    assert np.all(np.isfinite(hvp))


FLOAT32 = [
    ("einsum", lambda x: gnp.einsum("ij,jk->", x, x.T)),
    ("einsum_diag", lambda x: gnp.sum(gnp.einsum("ii->i", x))),
    ("inv", lambda x: gnp.sum(gnp.linalg.inv(x))),
    ("solve", lambda x: gnp.sum(gnp.linalg.solve(x, x[0]))),
    ("det", lambda x: gnp.linalg.det(x)),
    ("slogdet", lambda x: gnp.linalg.slogdet(x)[1]),
    ("pinv", lambda x: gnp.sum(gnp.linalg.pinv(x))),
    ("cholesky", lambda x: gnp.sum(gnp.linalg.cholesky(x @ x.T))),
    ("eigh", lambda x: gnp.sum(gnp.linalg.eigh(sym(gnp, x))[1] ** 2 * x)),
    ("svd", lambda x: gnp.sum(gnp.linalg.svd(x)[0] ** 2 * x)),
    ("qr", lambda x: gnp.sum(gnp.linalg.qr(x)[1])),
    ("norm", lambda x: gnp.linalg.norm(x, 2)),
    ("kron_trace_tril", lambda x: gnp.sum(gnp.kron(gnp.tril(x), gnp.diag(x))) + gnp.trace(x)),
]


@pytest.mark.parametrize("name,f", FLOAT32, ids=[c[0] for c in FLOAT32])
def test_float32_gradients_stay_float32(name, f):
    x = well(3, 3).astype(np.float32)
    g = gpuad.grad(f)(x)
    assert g.dtype == np.float32 and g.shape == (3, 3)
    _, t = gpuad.jvp(f, (x,), (np.ones_like(x),))
    assert t.dtype == np.float32


ERRORS = [
    ("inv_not_square", lambda x: gnp.linalg.inv(x[:2]), np.linalg.LinAlgError, "square"),
    ("inv_1d", lambda x: gnp.linalg.inv(x[0]), np.linalg.LinAlgError, "two-dimensional"),
    ("solve_mismatch", lambda x: gnp.linalg.solve(x, x[0, :2]), ValueError, "M = 3"),
    ("svd_full_matrices", lambda x: gnp.linalg.svd(x[:2]), NotImplementedError, "full_matrices=False"),
    ("qr_complete_tall", lambda x: gnp.linalg.qr(x[:, :2], mode="complete"), NotImplementedError, "reduced"),
    ("qr_bad_mode", lambda x: gnp.linalg.qr(x, mode="full"), ValueError, "mode"),
    ("eigh_uplo", lambda x: gnp.linalg.eigh(x, UPLO="X"), ValueError, "UPLO"),
    ("norm_bad_matrix_ord", lambda x: gnp.linalg.norm(x, 3), ValueError, "Invalid norm order"),
    ("norm_bad_vector_ord", lambda x: gnp.linalg.norm(x[0], "fro"), ValueError, "Invalid norm order"),
    ("norm_three_axes", lambda x: gnp.linalg.norm(x[None], axis=(0, 1, 2)), ValueError, "Improper"),
    ("norm_duplicate_axes", lambda x: gnp.linalg.norm(x, axis=(1, 1)), ValueError, "Duplicate"),
    ("einsum_operand_count", lambda x: gnp.einsum("ij,jk", x), ValueError, "operand"),
    ("einsum_too_many_indices", lambda x: gnp.einsum("ijk", x), ValueError, "dimension"),
    ("einsum_bad_char", lambda x: gnp.einsum("i1", x), ValueError, "letters"),
    ("einsum_unknown_output", lambda x: gnp.einsum("ij->ik", x), ValueError, "never appears"),
    ("einsum_repeated_output", lambda x: gnp.einsum("ij->ii", x), ValueError, "repeat"),
    ("einsum_size_mismatch", lambda x: gnp.einsum("ij,jk", x, x[:2]), ValueError, "broadcast"),
    ("einsum_missing_ellipsis_output", lambda x: gnp.einsum("...i->i", x), ValueError, "'...'"),
    ("einsum_out", lambda x: gnp.einsum("ij", x, out=np.empty((3, 3))), TypeError, "out="),
    ("diagonal_same_axes", lambda x: gnp.diagonal(x, 0, 1, 1), ValueError, "cannot be the same"),
    ("diag_3d", lambda x: gnp.diag(x[None]), ValueError, "1- or 2-d"),
    ("tensordot_mismatch", lambda x: gnp.tensordot(x, x[:2], axes=([1], [0])), ValueError, "shape-mismatch"),
    ("tensordot_axes_count", lambda x: gnp.tensordot(x, x, axes=([0, 1], [0])), ValueError, "as many"),
    ("vdot_lengths", lambda x: gnp.vdot(x, x[0]), ValueError, "different lengths"),
    ("tensorinv_ind", lambda x: gnp.linalg.tensorinv(x, ind=0), ValueError, "ind"),
    ("tensorsolve_shapes", lambda x: gnp.linalg.tensorsolve(x, x), np.linalg.LinAlgError, "prod"),
    ("linalg_cross_size", lambda x: gnp.linalg.cross(x[:, :2], x[:, :2]), ValueError, "3-dimensional"),
]


@pytest.mark.parametrize("name,f,error,words", ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_input_errors(name, f, error, words):
    with pytest.raises(error, match=words):
        gpuad.grad(lambda x: gnp.sum(f(x)))(well(3, 3))
