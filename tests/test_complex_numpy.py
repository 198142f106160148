"""gpuad.numpy beyond the elementwise rows on complex values (tests/test_complex.py has the rows), JAX's convention.

One table of functions with complex arguments (and real ones beside them where NumPy mixes them): the traced value
equals NumPy's (dtype kind included: var of complex values is real), and the derivatives pass ``check_grads`` to
second order in forward and reverse mode. Then the functions that refuse complex values (where NumPy does, or
where no meaning fits), the Jacobian family's ``holomorphic=`` rules, custom rules, checkpoints and vmap."""
import numpy as np
import pytest

import gpuad
import gpuad.nn as nn
import gpuad.numpy as gnp
from gpuad.testing import check_grads

RNG = np.random.default_rng(7)


def c(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def r(*shape):
    return RNG.standard_normal(shape)


A, B, M, V, W, S = c(3, 4), c(4, 2), c(3, 3), c(4), c(4), c(5)
MASK = np.array([True, False, True, False])

AT_INDEX = (np.array([0, 2, 0]), slice(1, 3))
AT_UFUNCS = {"add": np.add, "multiply": np.multiply, "min": np.minimum, "max": np.maximum}


def at_update(a, method, v):
    """``a.at[AT_INDEX].method(v)`` on a traced array; NumPy's assignment or ``ufunc.at`` on a plain one (the
    reference, and what the numerical derivatives evaluate)."""
    if isinstance(a, gpuad.Tensor):
        return getattr(a.at[AT_INDEX], method)(v)
    out = np.array(a)
    if method == "set":
        out[AT_INDEX] = v
    else:
        AT_UFUNCS[method].at(out, AT_INDEX, v)
    return out


# (name, fn(namespace, *args), args): fn runs on numpy with plain arrays and on gpuad.numpy with traced ones.
CASES = [
    # reductions
    ("sum", lambda m, a: m.sum(a, axis=0), (A,)),
    ("mean", lambda m, a: m.mean(a, axis=1), (A,)),
    ("mean_where", lambda m, a: m.mean(a, where=MASK), (A,)),
    ("var", lambda m, a: m.var(a, axis=1), (A,)),
    ("var_all_ddof", lambda m, a: m.var(a, ddof=1), (A,)),
    ("var_where", lambda m, a: m.var(a, axis=1, where=MASK), (A,)),
    ("std", lambda m, a: m.std(a, axis=0, keepdims=True), (A,)),
    ("prod", lambda m, a: m.prod(a, axis=1), (A,)),
    ("cumsum", lambda m, a: m.cumsum(a, axis=1), (A,)),
    ("cumprod", lambda m, a: m.cumprod(a, axis=1), (A,)),
    ("max", lambda m, a: m.max(a, axis=1), (A,)),
    ("min", lambda m, a: m.min(a), (A,)),
    ("ptp", lambda m, a: m.ptp(a, axis=1), (A,)),
    ("average", lambda m, a, w: m.average(a, axis=1, weights=w), (A, c(4))),
    ("average_real_weights", lambda m, a, w: m.average(a, axis=0, weights=w), (A, r(3) ** 2 + 0.5)),
    ("nansum", lambda m, a: m.nansum(a, axis=1), (A,)),
    ("nanmean", lambda m, a: m.nanmean(a, axis=0), (A,)),
    ("nanvar", lambda m, a: m.nanvar(a, axis=0), (A,)),
    ("nanstd", lambda m, a: m.nanstd(a), (A,)),
    ("nanprod", lambda m, a: m.nanprod(a, axis=0), (A,)),
    ("nanmax", lambda m, a: m.nanmax(a, axis=0), (A,)),
    ("median", lambda m, a: m.median(a, axis=1), (A,)),
    ("cov", lambda m, a: m.cov(a), (A,)),
    ("cov_aweights", lambda m, a: m.cov(a, aweights=np.array([1.0, 2.0, 0.5, 1.5])), (A,)),
    ("cov_y", lambda m, a, y: m.cov(a, y), (V, W)),
    ("corrcoef", lambda m, a: m.corrcoef(a), (A,)),
    # products
    ("vdot", lambda m, a, b: m.vdot(a, b), (V, W)),
    ("vdot_matrices", lambda m, a, b: m.vdot(a, b), (A, c(3, 4))),
    ("vdot_real_first", lambda m, a, b: m.vdot(a, b), (r(4), W)),
    ("vecdot", lambda m, a, b: m.vecdot(a, b), (A, c(3, 4))),
    ("dot", lambda m, a, b: m.dot(a, b), (A, B)),
    ("dot_vectors", lambda m, a, b: m.dot(a, b), (V, W)),
    ("inner", lambda m, a, b: m.inner(a, b), (A, c(2, 4))),
    ("outer", lambda m, a, b: m.outer(a, b), (V, W)),
    ("tensordot", lambda m, a, b: m.tensordot(a, b, 1), (A, B)),
    ("einsum", lambda m, a, b: m.einsum("ij,jk->ik", a, b), (A, B)),
    ("einsum_trace", lambda m, a: m.einsum("ii", a), (M,)),
    ("matmul", lambda m, a, b: m.matmul(a, b), (A, B)),
    ("matmul_real_right", lambda m, a, b: a @ b, (A, r(4, 2))),
    ("matmul_real_left", lambda m, a, b: m.matmul(a, b), (r(3, 4), B)),
    ("einsum_mixed", lambda m, a, b, d: m.einsum("ij,j,jk->ik", a, b, d), (r(3, 4), V, B)),
    ("outer_tensordot_mixed", lambda m, a, b: m.outer(a, b) + m.tensordot(a, b, 0), (r(3), V)),
    ("kron", lambda m, a, b: m.kron(a, b), (M, c(2, 2))),
    ("kron_mixed", lambda m, a, b: m.kron(a, b), (r(2, 2), c(2, 1))),
    ("cross_mixed", lambda m, a, b: m.cross(a, b), (r(3), c(3))),
    ("convolve_mixed", lambda m, a, b: m.convolve(a, b, "same"), (r(5), c(3))),
    ("cross", lambda m, a, b: m.cross(a, b), (c(2, 3), c(2, 3))),
    ("trace", lambda m, a: m.trace(a), (M,)),
    # calculus and signals
    ("trapezoid", lambda m, a: m.trapezoid(a), (S,)),
    ("trapezoid_x", lambda m, a, x: m.trapezoid(a, x=x), (S, np.sort(r(5)))),
    ("gradient", lambda m, a: m.gradient(a), (S,)),
    ("diff", lambda m, a: m.diff(a, 2), (S,)),
    ("interp", lambda m, x, xp, fp: m.interp(x, xp, fp), (np.array([0.5, 1.7, 3.2]), np.arange(5.0), S)),
    ("interp_right", lambda m, x, fp: m.interp(x, np.arange(5.0), fp, right=2 - 1j), (np.array([0.5, 6.0]), S)),
    ("convolve", lambda m, a, b: m.convolve(a, b), (S, c(3))),
    ("correlate", lambda m, a, b: m.correlate(a, b), (S, c(3))),
    ("correlate_full", lambda m, a, b: m.correlate(a, b, "full"), (S, c(3))),
    ("correlate_real_v", lambda m, a, b: m.correlate(a, b, "same"), (S, r(3))),
    ("polyval", lambda m, p, x: m.polyval(p, x), (c(3), c(4))),
    ("linspace", lambda m, a, b: m.linspace(a, b, 5), (c(), c())),
    # elementwise functions with parameters
    ("angle", lambda m, a: m.angle(a, deg=True), (V,)),
    ("abs", lambda m, a: m.abs(a), (V,)),
    ("nan_to_num", lambda m, a: m.nan_to_num(a, nan=1.0), (V,)),
    ("clip", lambda m, a: m.clip(a, -0.5, 0.5), (V,)),
    ("where", lambda m, a, b: m.where(MASK, a, b), (V, W)),
    ("select", lambda m, a, b: m.select([MASK], [a], b), (V, W)),
    ("real_if_close", lambda m, a: m.real_if_close(a + 0j), (r(3),)),
    ("real_if_close_stays", lambda m, a: m.real_if_close(a), (V,)),
    ("float_power", lambda m, a: m.float_power(a, 2), (V,)),
    # shapes, rearranging, indexing and methods
    ("reshape", lambda m, a: m.reshape(a, (4, 3)), (A,)),
    ("concatenate_real", lambda m, a, b: m.concatenate([a, b]), (A, r(2, 4))),
    ("stack", lambda m, a, b: m.stack([a, b]), (V, W)),
    ("pad", lambda m, a: m.pad(a, 1), (A,)),
    ("roll_flip", lambda m, a: m.flip(m.roll(a, 1, axis=1), 0), (A,)),
    ("tile_repeat", lambda m, a: m.repeat(m.tile(a, 2), 2), (V,)),
    ("take", lambda m, a: m.take(a, [0, 2, 2]), (A,)),
    ("take_along_axis", lambda m, a: m.take_along_axis(a, np.array([[0, 3], [1, 1], [2, 0]]), 1), (A,)),
    ("sort", lambda m, a: m.sort(a, axis=1), (A,)),
    ("partition", lambda m, a: m.partition(a, 2, axis=1), (A,)),
    ("diag_tril", lambda m, a: m.diag(m.tril(a)), (M,)),
    ("split", lambda m, a: m.split(a, 2, axis=1)[1], (A,)),
    ("append_stacks", lambda m, a, b: m.hstack([m.append(a, b), m.vstack([a, b])[0], m.column_stack([a, b])[:, 1],
                                                m.dstack([a, b])[0, :, 0]]), (V, W)),
    ("atleast_broadcast", lambda m, a, b: m.atleast_2d(a) * m.broadcast_arrays(a, b[:, None])[0], (V, W)),
    ("axes", lambda m, a: m.moveaxis(m.expand_dims(a, 0), 0, 2).squeeze()
     + m.swapaxes(m.rollaxis(a[None], 2), 1, 2)[:, :, 0].T + m.transpose(a) * m.matrix_transpose(a)
     + m.rot90(a.T.T.T, 2).T, (M,)),
    ("ravel_diagonal_triu", lambda m, a: m.ravel(m.triu(a)) * m.diagonal(a, 1).sum(), (M,)),
    ("array_split", lambda m, a: m.array_split(a, 3, axis=1)[1] * m.vsplit(a, 3)[0][:, :2], (A,)),
    ("meshgrid", lambda m, a, b: m.meshgrid(a, b)[0] * m.meshgrid(a, b)[1], (V, W[:3])),
    ("geomspace", lambda m, a, b: m.geomspace(a, b, 4), (np.complex128(1 + 1j), np.complex128(2 + 0.5j))),
    ("logspace", lambda m, a, b: m.logspace(a, b, 4), (c(), c())),
    ("round", lambda m, a: m.round(a, 1) + a, (V,)),
    ("nanmin", lambda m, a: m.nanmin(a, axis=1), (A,)),
    ("diff_prepend", lambda m, a, b: m.diff(a, prepend=b), (V, W[:1])),
    ("copy_array", lambda m, a: m.copy(a) * m.asarray(a) + m.array(a, copy=True), (V,)),
    *[(f"pad_{mode}", lambda m, a, mode=mode: m.pad(a, (1, 2), mode=mode), (V,))
      for mode in ("edge", "reflect", "symmetric", "wrap", "mean", "median", "maximum", "minimum")],
    ("pad_linear_ramp", lambda m, a: m.pad(a, (2, 1), mode="linear_ramp", end_values=(1j, 2)), (V,)),
    ("pad_constant", lambda m, a: m.pad(a, 1, constant_values=1 + 1j), (V,)),
    ("getitem", lambda m, a: a[1:, ::2] + a[[0, 2], [1, 1]][:, None], (A,)),
    ("T_conj", lambda m, a: a.T.conj(), (A,)),
    *[(f"at_{method}", lambda m, a, v, method=method: at_update(a, method, v), (A, c(3, 2)))
      for method in ("set", "add", "multiply", "min", "max")],
    ("at_add_real_values", lambda m, a, v: at_update(a, "add", v), (A, r(2))),
    ("real_imag", lambda m, a: a.real * 2 + a.imag, (A,)),
    ("astype_real", lambda m, a: m.real(a).astype(np.float64) if m is np else a.astype(np.float64), (A,)),
    ("astype_complex", lambda m, a: m.astype(a, np.complex128), (r(3),)),
    ("zeros_like", lambda m, a: m.zeros_like(a) + a * m.ones_like(a) - m.full_like(a, 2), (A,)),
    ("array_of_traced", lambda m, a, b: m.array([a, b, 1j]), (c(), c())),
    ("sum_real_method", lambda m, a: a.sum(axis=0).real, (A,)),
    ("abs_operator", lambda m, a: abs(a) ** 2 + a ** 2, (V,)),
    ("scalar_times_i", lambda m, x: 1j * m.sin(x) - 2j, (np.float64(0.7),)),
]

IDS = [name for name, _, _ in CASES]


def _traced_value(fn, args):
    return gpuad.vjp(lambda *a: fn(gnp, *a), *args)[0]


@pytest.mark.parametrize("name, fn, args", CASES, ids=IDS)
def test_value_matches_numpy(name, fn, args):
    expected = np.asarray(fn(np, *args))
    got = np.asarray(_traced_value(fn, args))
    assert got.dtype.kind == expected.dtype.kind, (got.dtype, expected.dtype)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6 if got.dtype == np.complex64 else 1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")  # NumPy's astype of plain complex arrays
@pytest.mark.parametrize("name, fn, args", CASES, ids=IDS)
def test_derivatives(name, fn, args):
    f = lambda *a: fn(gnp, *a)  # noqa: E731
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    # the real pairing cannot see an imaginary part leaking into a real input's gradient: check the dtypes
    out, pullback = gpuad.vjp(f, *args)
    grads = pullback(np.ones_like(out))
    assert [np.asarray(g).dtype for g in grads] == [np.asarray(a).dtype for a in args]
    _, tangent = gpuad.jvp(f, args, tuple(np.ones_like(a) for a in args))
    assert np.asarray(tangent).dtype == np.asarray(out).dtype


SINGLE = (c(3, 4) * 0.5).astype(np.complex64)


@pytest.mark.parametrize("fn", [
    lambda m, a: m.var(a, axis=1), lambda m, a: m.var(a, axis=1, where=MASK), lambda m, a: m.std(a),
    lambda m, a: m.mean(a, where=MASK), lambda m, a: m.nanvar(a, axis=0), lambda m, a: m.nanmean(a, axis=0),
    lambda m, a: m.vdot(a, a), lambda m, a: m.median(a, axis=0), lambda m, a: m.correlate(a[0], a[1]),
    lambda m, a: m.abs(a), lambda m, a: m.angle(a), lambda m, a: m.real(a) * m.imag(a),
])
def test_complex64_keeps_numpys_dtype(fn):
    expected = np.asarray(fn(np, SINGLE))
    got = np.asarray(_traced_value(fn, (SINGLE,)))
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5)


NOT_BATCHED = {"median", "interp", "interp_right", "partition", "pad_median"}  # vmap refuses these (real too)


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
@pytest.mark.parametrize("name, fn, args", [c for c in CASES if c[0] not in NOT_BATCHED],
                         ids=[n for n in IDS if n not in NOT_BATCHED])
def test_vmap_matches_numpy_per_example(name, fn, args):
    """vmap of each case, and of the gradient of |case|^2, over two examples equals the examples one by one."""
    batch = [np.stack([a, a * (1.1 - 0.2j) if np.iscomplexobj(a) else a * 1.1]) for a in args]
    examples = [[b[i] for b in batch] for i in range(2)]
    got = gpuad.vmap(lambda *a: fn(gnp, *a))(*batch)
    expected = np.stack([np.asarray(fn(np, *e)) for e in examples])
    assert np.asarray(got).dtype == expected.dtype and np.shape(got) == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    loss = gpuad.grad(lambda *a: gnp.sum(gnp.abs(fn(gnp, *a)) ** 2), argnums=tuple(range(len(args))))
    for got, expected in zip(gpuad.vmap(loss)(*batch), zip(*[loss(*e) for e in examples])):
        np.testing.assert_allclose(got, np.stack(expected), rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_slices_give_numpys_complex_nan():
    a = np.array([[1 + 2j, 1 - 1j, 0.5 + 3j], [2 + 0j, -1 + 1j, np.nan + 1j]])
    for fn in (lambda m, a: m.median(a, axis=1), lambda m, a: m.nanmax(a, axis=1), lambda m, a: m.max(a, axis=1),
               lambda m, a: m.nanmean(a, axis=1), lambda m, a: m.nan_to_num(a)):
        got, expected = _traced_value(fn, (a,)), fn(np, a)
        for part in (np.real, np.imag):  # (a NaN's other part, which assert_array_equal does not compare)
            np.testing.assert_array_equal(part(got), part(expected))


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_at_multiply_with_infinite_complex_values_stays_infinite():
    """An infinite complex value multiplies its own element (it once entered the recurrence as 1 and was lost:
    a finite result); which part of a complex infinity is NaN depends on the order of the products."""
    x = np.array([1 + 2j, 3 - 1j, 0.5j, -2 + 0j])
    for index, values in ((np.array([0, 0, 1, 2]), np.array([np.inf + 0j, 2 + 1j, 1 - 1j, 3 + 0j])),
                          (np.array([2, 1, 2, 3, 2]), np.array([1 + 1j, complex(0, -np.inf), 2 + 0j,
                                                                complex(np.nan, 1), 0.5 - 1j]))):
        want = x.copy()
        np.multiply.at(want, index, values)
        got = np.asarray(_traced_value(lambda m, a: a.at[index].multiply(values) if m is gnp else None, (x,)))
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
        np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-13)


def test_known_values():
    """JAX's values: the gradient of a real function of z is df/dx - i df/dy."""
    z = np.array([1 + 2j, -0.5 + 0.3j, 2 - 1j])
    d = z - z.mean()
    np.testing.assert_allclose(gpuad.grad(gnp.var)(z), 2 * np.conj(d) / 3, rtol=1e-12)
    w = np.array([0.3 - 1j, 1.5 + 0.5j, -1 + 0j])
    # Re(vdot(a, w)) = x Re(w) + y Im(w) (vdot conjugates a): the gradient is conj(w); without the conjugate
    # (dot) it is w
    np.testing.assert_allclose(gpuad.grad(lambda a: gnp.real(gnp.vdot(a, w)))(z), np.conj(w), rtol=1e-12)
    np.testing.assert_allclose(gpuad.grad(lambda a: gnp.real(gnp.vdot(a, a)))(z), 2 * np.conj(z), rtol=1e-12)
    np.testing.assert_allclose(gpuad.grad(lambda a: gnp.real(gnp.dot(a, w)))(z), w, rtol=1e-12)
    # holomorphic: d/dz prod(z) = prod / z, d/dz cumsum-sum is the count
    np.testing.assert_allclose(gpuad.grad(gnp.prod, holomorphic=True)(z), np.prod(z) / z, rtol=1e-12)
    np.testing.assert_allclose(gpuad.grad(lambda z: gnp.sum(gnp.cumsum(z)), holomorphic=True)(z), [3, 2, 1])


Z4, X4 = c(4), r(4)

# (name, fn(namespace, complex array)): refused by gpuad on complex values; the ones with a NumPy function (the
# first group) are refused by NumPy too.
NUMPY_REFUSES = [
    ("quantile", lambda m, t: m.quantile(t, 0.3)),
    ("percentile", lambda m, t: m.percentile(t, 30)),
    ("fabs", lambda m, t: m.fabs(t)),
    ("fix", lambda m, t: m.fix(t)),
    ("floor", lambda m, t: m.floor(t)),
    ("interp_x", lambda m, t: m.interp(t, np.arange(4.0), X4)),
    ("interp_xp", lambda m, t: m.interp(X4, t, X4)),
    ("interp_complex_right_real_fp", lambda m, t: m.interp(m.real(t), np.arange(4.0), X4, right=1j)),
]
NOT_MEANINGFUL = [
    ("logsumexp", lambda m, t: nn.logsumexp(t)),
    ("softmax", lambda m, t: nn.softmax(t)),
    ("log_softmax", lambda m, t: nn.log_softmax(t)),
    ("sigmoid", lambda m, t: nn.sigmoid(t)),
    ("log_sigmoid", lambda m, t: nn.log_sigmoid(t)),
    ("relu", lambda m, t: nn.relu(t)),
    ("softplus", lambda m, t: nn.softplus(t)),
    ("cross_entropy_logits", lambda m, t: nn.softmax_cross_entropy(t, np.array([0.1, 0.2, 0.3, 0.4]))),
    ("cross_entropy_labels", lambda m, t: nn.softmax_cross_entropy(m.real(t), Z4)),
]


@pytest.mark.parametrize("name, fn", NUMPY_REFUSES + NOT_MEANINGFUL, ids=[n for n, _ in NUMPY_REFUSES + NOT_MEANINGFUL])
def test_refused_on_complex(name, fn):
    with pytest.raises(TypeError):
        gpuad.grad(lambda t: gnp.sum(gnp.abs(fn(gnp, t))))(Z4)
    if (name, fn) in NUMPY_REFUSES:
        with pytest.raises(TypeError):
            fn(np, Z4)


def test_predicates():
    z = np.array([1 + 2j, 3 + 0j])
    t = gpuad.tensor(z)
    np.testing.assert_array_equal(gnp.iscomplex(t), [True, False])
    np.testing.assert_array_equal(gnp.isreal(t), [False, True])
    assert gnp.iscomplexobj(t) and not gnp.isrealobj(t)
    np.testing.assert_array_equal(gpuad.vmap(gnp.iscomplex)(np.stack([z, z])), [[True, False]] * 2)


# ---- the Jacobian family's holomorphic= ------------------------------------------------------------------------

Z = np.array([1 + 2j, -0.5 + 0.3j])
X = np.array([0.3, 1.2])


def holo(z):
    return gnp.sin(z) * z[::-1]


def real_of_complex(z):
    return gnp.abs(z) ** 2 + gnp.real(z)


def complex_of_real(x):
    return gnp.exp(1j * x)


def test_holomorphic_jacobians_agree_with_differences():
    eps = 1e-7
    numeric = np.stack([(holo(Z + eps * e) - holo(Z - eps * e)) / (2 * eps) for e in np.eye(2)], -1)
    for jac in (gpuad.jacfwd(holo, holomorphic=True), gpuad.jacrev(holo, holomorphic=True),
                gpuad.jacobian(holo, holomorphic=True)):
        np.testing.assert_allclose(jac(Z), numeric, rtol=1e-6)
    np.testing.assert_allclose(gpuad.hessian(lambda z: gnp.sum(z ** 3), holomorphic=True)(Z), np.diag(6 * Z))


def test_jacobians_of_mixed_real_and_complex_functions():
    expected = np.diag(2 * np.conj(Z) + 1)  # each row: the gradient df/dx - i df/dy
    np.testing.assert_allclose(gpuad.jacrev(real_of_complex)(Z), expected)
    np.testing.assert_allclose(gpuad.jacobian(real_of_complex)(Z), expected)  # auto: reverse is the legal mode
    expected = np.diag(1j * np.exp(1j * X))
    np.testing.assert_allclose(gpuad.jacfwd(complex_of_real)(X), expected)
    np.testing.assert_allclose(gpuad.jacobian(complex_of_real)(np.array([0.3])), expected[:1, :1])  # auto: fwd


@pytest.mark.parametrize("call, match", [
    (lambda: gpuad.jacfwd(real_of_complex)(Z), "real-valued inputs"),
    (lambda: gpuad.jacrev(complex_of_real)(X), "real-valued output"),
    (lambda: gpuad.jacobian(holo)(Z), "neither mode"),
    (lambda: gpuad.jacobian(holo, mode="rev")(Z), "real-valued output"),
    (lambda: gpuad.jacfwd(holo, holomorphic=True)(X), "requires complex inputs"),
    (lambda: gpuad.jacrev(real_of_complex, holomorphic=True)(Z), "requires a complex output"),
    (lambda: gpuad.jacfwd(real_of_complex, holomorphic=True)(Z), "requires a complex output"),
    (lambda: gpuad.hessian(lambda z: gnp.sum(gnp.abs(z)))(Z), "real-valued inputs"),
])
def test_jacobian_dtype_rules(call, match):
    with pytest.raises(TypeError, match=match):
        call()


# ---- custom rules, checkpoints and vmap ------------------------------------------------------------------------

@gpuad.custom_vjp
def custom_sin(z):
    return gnp.sin(z)


custom_sin.defvjp(lambda z: (gnp.sin(z), (z,)), lambda res, ct: (ct * gnp.cos(res[0]),))


@gpuad.custom_jvp
def custom_exp(z):
    return gnp.exp(z)


custom_exp.defjvp(lambda p, t: (gnp.exp(p[0]), gnp.exp(p[0]) * t[0]))


@gpuad.custom_vjp
def abs_and_double(z):
    return gnp.abs(z), 2 * z


abs_and_double.defvjp(lambda z: (abs_and_double(z), (z,)),
                      lambda res, ct: (ct[0] * gnp.conj(res[0]) / gnp.abs(res[0]) + 2 * ct[1],))


def test_custom_rules_carry_complex_leaves():
    check_grads(custom_sin, (Z,), order=2, modes=("rev",))
    np.testing.assert_allclose(gpuad.grad(lambda z: gnp.sum(gnp.abs(custom_sin(z)) ** 2))(Z),
                               gpuad.grad(lambda z: gnp.sum(gnp.abs(gnp.sin(z)) ** 2))(Z), rtol=1e-12)
    check_grads(lambda z, x: custom_exp(z * x), (Z, X), order=2)
    check_grads(abs_and_double, (Z,), order=1, modes=("rev",))  # a real and a complex output, packed together
    np.testing.assert_allclose(gpuad.grad(lambda z: gnp.sum(abs_and_double(z)[0]))(Z), np.conj(Z) / np.abs(Z))


@pytest.mark.parametrize("policy", [None, "exp", gpuad.checkpoint_policies.everything_saveable])
def test_checkpoint_of_complex_functions(policy):
    fn = gpuad.checkpoint(lambda z: gnp.sum(gnp.abs(gnp.sin(z * 2) * gnp.exp(z)) ** 2), policy=policy)
    check_grads(fn, (Z,), order=2)


def test_vmap_of_complex_functions():
    zs = np.stack([Z, Z[::-1] * 1j, Z + 0.5])
    f = lambda z: gnp.sum(gnp.abs(gnp.sin(z)) ** 2) + gnp.var(z)  # noqa: E731
    np.testing.assert_allclose(gpuad.vmap(gpuad.grad(f))(zs), np.stack([gpuad.grad(f)(z) for z in zs]))
    np.testing.assert_allclose(gpuad.vmap(lambda z: gnp.vdot(z, 1j * z))(zs), [np.vdot(z, 1j * z) for z in zs])
    np.testing.assert_allclose(gpuad.vmap(gpuad.grad(lambda z: gnp.sum(gnp.sin(z)), holomorphic=True))(zs),
                               np.cos(zs))
    check_grads(gpuad.vmap(lambda z: gnp.exp(z) * gnp.conj(z)), (zs,), order=2)
