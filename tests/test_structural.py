"""Linear, structural and reduction functions of the core: one table row per case, each checked by
check_grads (fwd and rev, order 2, float64) and against NumPy's forward value."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import backend
from gpuad.testing import check_grads

R = np.random.default_rng(42)


def a(*shape, low=-2.0, high=2.0):
    return R.uniform(low, high, shape)


# (id, function of gnp-or-np module, args)
CASES = [
    ("sum_all", lambda m, x: m.sum(x), [a(3, 2)]),
    ("sum_axis0", lambda m, x: m.sum(x, axis=0), [a(3, 2)]),
    ("sum_axis-1_keep", lambda m, x: m.sum(x, axis=-1, keepdims=True), [a(3, 2)]),
    ("sum_axes_tuple", lambda m, x: m.sum(x, axis=(0, 2)), [a(2, 3, 2)]),
    ("sum_scalar", lambda m, x: m.sum(x), [a()]),
    ("mean_all", lambda m, x: m.mean(x), [a(3, 2)]),
    ("mean_axis1_keep", lambda m, x: m.mean(x, axis=1, keepdims=True), [a(3, 2)]),
    ("max_all", lambda m, x: m.max(x), [a(3, 2)]),
    ("max_axis0", lambda m, x: m.max(x, axis=0), [a(3, 2)]),
    ("min_axis1_keep", lambda m, x: m.min(x, axis=1, keepdims=True), [a(3, 2)]),
    ("prod_all", lambda m, x: m.prod(x), [a(3, 2, low=0.5)]),
    ("prod_axis0", lambda m, x: m.prod(x, axis=0), [a(3, 2)]),
    ("prod_axis1_keep", lambda m, x: m.prod(x, axis=1, keepdims=True), [a(3, 2)]),
    ("dot_vv", lambda m, x, y: m.dot(x, y), [a(3), a(3)]),
    ("dot_mv", lambda m, x, y: m.dot(x, y), [a(2, 3), a(3)]),
    ("dot_mm", lambda m, x, y: m.dot(x, y), [a(2, 3), a(3, 4)]),
    ("dot_scalar", lambda m, x, y: m.dot(x, y), [a(), a(3)]),
    ("dot_nd", lambda m, x, y: m.dot(x, y), [a(2, 2, 3), a(4, 3, 2)]),
    ("matmul_mm", lambda m, x, y: m.matmul(x, y), [a(2, 3), a(3, 4)]),
    ("matmul_vm", lambda m, x, y: m.matmul(x, y), [a(3), a(3, 4)]),
    ("matmul_mv", lambda m, x, y: x @ y, [a(2, 3), a(3)]),
    ("matmul_vv", lambda m, x, y: x @ y, [a(3), a(3)]),
    ("matmul_batch_broadcast", lambda m, x, y: m.matmul(x, y), [a(2, 1, 2, 3), a(3, 3, 4)]),
    ("transpose", lambda m, x: m.transpose(x), [a(3, 2)]),
    ("transpose_axes", lambda m, x: m.transpose(x, (1, 2, 0)), [a(2, 3, 4)]),
    ("T", lambda m, x: x.T, [a(3, 2)]),
    ("reshape", lambda m, x: m.reshape(x, (2, 3)), [a(3, 2)]),
    ("reshape_minus1", lambda m, x: m.reshape(x, (-1,)), [a(3, 2)]),
    ("method_reshape", lambda m, x: x.reshape(2, 3), [a(3, 2)]),
    ("broadcast_to", lambda m, x: m.broadcast_to(x, (4, 3, 2)), [a(3, 1)]),
    ("expand_dims", lambda m, x: m.expand_dims(x, 1), [a(3, 2)]),
    ("squeeze", lambda m, x: m.squeeze(x), [a(3, 1, 2)]),
    ("squeeze_axis", lambda m, x: m.squeeze(x, axis=1), [a(3, 1, 2)]),
    ("concatenate0", lambda m, x, y: m.concatenate([x, y]), [a(3, 2), a(1, 2)]),
    ("concatenate1", lambda m, x, y: m.concatenate([x, y], axis=1), [a(3, 2), a(3, 4)]),
    ("stack", lambda m, x, y: m.stack([x, y]), [a(3, 2), a(3, 2)]),
    ("stack_axis-1", lambda m, x, y: m.stack([x, y], axis=-1), [a(3, 2), a(3, 2)]),
    ("index_int", lambda m, x: x[1], [a(3, 2)]),
    ("index_slice", lambda m, x: x[1:, ::-1], [a(3, 2)]),
    ("index_none_ellipsis", lambda m, x: x[None, ..., 0], [a(3, 2)]),
    ("index_int_array_repeats", lambda m, x: x[np.array([0, 2, 0, 0])], [a(3, 2)]),
    ("index_mixed", lambda m, x: x[np.array([0, 2]), 1], [a(3, 2)]),
    ("where", lambda m, x, y: m.where(np.array([[True, False]] * 3), x, y), [a(3, 2), a(1, 2)]),
    ("clip", lambda m, x: m.clip(x, -1.0, 1.0), [a(3, 2)]),
    ("clip_none", lambda m, x: m.clip(x, None, 0.5), [a(3, 2)]),
    ("abs_method_ops", lambda m, x, y: abs(x) * 2.0 - y / 3.0 + (-x) ** 2, [a(3, 2, low=0.5), a(2)]),
    ("chain", lambda m, x, w: m.sum(m.tanh(x @ w) ** 2, axis=0), [a(4, 3), a(3, 2)]),
]


@pytest.mark.parametrize("name,fn,args", CASES, ids=[c[0] for c in CASES])
def test_gradients(name, fn, args):
    check_grads(lambda *xs: fn(gnp, *xs), args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name,fn,args", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_numpy(name, fn, args):
    np.testing.assert_allclose(fn(gnp, *args), fn(np, *args), rtol=1e-13)
    # Traced evaluation gives the same value as plain evaluation.
    out, _ = gpuad.vjp(lambda *xs: fn(gnp, *xs), *args)
    np.testing.assert_allclose(out, fn(np, *args), rtol=1e-13)


def test_repeated_indices_accumulate():
    g = gpuad.grad(lambda x: gnp.sum(x[np.array([0, 0, 2])]))(np.ones(3))
    np.testing.assert_array_equal(g, [2.0, 0.0, 1.0])


def test_max_ties_split_evenly():
    g = gpuad.grad(lambda x: gnp.max(x))(np.array([1.0, 3.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5])


def test_prod_with_zeros():
    g = gpuad.grad(gnp.prod)(np.array([2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 6.0, 0.0])
    g = gpuad.grad(gnp.prod)(np.array([0.0, 0.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])


def test_plain_arrays_pass_through_to_numpy():
    x = np.arange(6.0).reshape(3, 2)
    assert type(gnp.sum(x, axis=0)) is np.ndarray
    assert type(gnp.sin(x)) is np.ndarray
    np.testing.assert_array_equal(gnp.add(x, 1, out=np.empty_like(x)), x + 1)
    # Creation functions use the default backend (GPUAD_BACKEND; CuPy when a GPU is present).
    host = backend.to_numpy
    assert type(gnp.zeros((2, 2))) is backend.default_module().ndarray
    assert gnp.zeros((2, 2)).shape == (2, 2) and host(gnp.eye(3))[1, 1] == 1
    np.testing.assert_array_equal(host(gnp.linspace(0, 1, 3)), [0, 0.5, 1])
    np.testing.assert_array_equal(host(gnp.arange(3)), [0, 1, 2])
    np.testing.assert_array_equal(host(gnp.full((2,), 7.0)), [7.0, 7.0])


def test_numpy_functions_on_tensors_are_recorded():
    def f(x):
        return np.sum(np.sin(x) * np.exp(x)) + np.mean(np.tanh(x))
    x = a(3, 2)
    expected = gpuad.grad(lambda x: gnp.sum(gnp.sin(x) * gnp.exp(x)) + gnp.mean(gnp.tanh(x)))(x)
    np.testing.assert_allclose(gpuad.grad(f)(x), expected)
    check_grads(f, [x], order=2)


def test_creation_and_constants_in_traced_code():
    def f(x):
        return gnp.sum(x * gnp.ones_like(x) + gnp.zeros(x.shape) + gnp.asarray([1.0, 2.0]))
    x = backend.default_module().asarray(a(3, 2))  # constants made inside follow the default backend too
    np.testing.assert_allclose(backend.to_numpy(gpuad.grad(f)(x)), np.ones((3, 2)))
