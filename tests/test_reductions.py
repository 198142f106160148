"""Reductions and scans, table-driven: every reduction over shapes (), (4,), (3, 4), (2, 3, 4) with every form of
axis (None, each int, negative ints, tuples, ()) and keepdims, checked by check_grads (fwd and rev, order 2, in
float64) and against NumPy's forward value; prod and cumprod with zeros to second order; float32 stays float32;
ties and constant inputs follow the documented conventions; bad arguments raise clear errors."""
import itertools

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

SHAPES = [(), (4,), (3, 4), (2, 3, 4)]


def axis_forms(ndim):
    """None, every axis as a positive and as a negative int, every tuple of two or more axes, one tuple with
    negative axes out of order, and the empty tuple."""
    forms = [None] + list(range(ndim)) + list(range(-ndim, 0))
    forms += [t for n in range(2, ndim + 1) for t in itertools.combinations(range(ndim), n)]
    if ndim >= 2:
        forms.append((-1, 0))
    return forms + [()]


def count(shape, axis):
    axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


def weights_like(shape):
    return np.random.default_rng(7).uniform(0.5, 2.0, shape)


# (name, call(module, x, axis, keepdims), whether the case exists for this shape and axis)
REDUCTIONS = [
    ("sum", lambda m, x, axis, k: m.sum(x, axis=axis, keepdims=k)),
    ("mean", lambda m, x, axis, k: m.mean(x, axis=axis, keepdims=k)),
    ("max", lambda m, x, axis, k: m.max(x, axis=axis, keepdims=k)),
    ("min", lambda m, x, axis, k: m.min(x, axis=axis, keepdims=k)),
    ("amax", lambda m, x, axis, k: m.amax(x, axis=axis, keepdims=k)),
    ("amin", lambda m, x, axis, k: m.amin(x, axis=axis, keepdims=k)),
    ("prod", lambda m, x, axis, k: m.prod(x, axis=axis, keepdims=k)),
    ("ptp", lambda m, x, axis, k: m.ptp(x, axis=axis, keepdims=k)),
    ("var", lambda m, x, axis, k: m.var(x, axis=axis, keepdims=k)),
    ("var_ddof1", lambda m, x, axis, k: m.var(x, axis=axis, ddof=1, keepdims=k)),
    ("std", lambda m, x, axis, k: m.std(x, axis=axis, keepdims=k)),
    ("std_ddof1", lambda m, x, axis, k: m.std(x, axis=axis, ddof=1, keepdims=k)),
    ("average", lambda m, x, axis, k: m.average(x, axis=axis, keepdims=k)),
    ("average_weights", lambda m, x, axis, k: m.average(x, axis=axis, keepdims=k,
                                                        weights=weights_like(np.shape(x)).astype(x.dtype))),
]

CASES = [(name, call, shape, axis, keepdims)
         for name, call in REDUCTIONS for shape in SHAPES for axis in axis_forms(len(shape))
         for keepdims in (False, True)
         if not (name.endswith("ddof1") and count(shape, axis) < 2)]  # ddof=1 needs two elements

SCANS = [
    ("cumsum", lambda m, x, axis: m.cumsum(x, axis=axis)),
    ("cumprod", lambda m, x, axis: m.cumprod(x, axis=axis)),
    ("cumsum_method", lambda m, x, axis: x.cumsum(axis)),
]
SCAN_CASES = [(name, call, shape, axis) for name, call in SCANS for shape in SHAPES
              for axis in [None] + list(range(len(shape))) + list(range(-len(shape), 0))]


def data(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, shape).astype(dtype)


def case_id(case):
    return f"{case[0]}-{case[2]}-axis{case[3]}" + ("-keep" if len(case) > 4 and case[4] else "")


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_reduction(case):
    name, call, shape, axis, keepdims = case
    x = data(shape)
    f = lambda x: call(gnp, x, axis, keepdims)  # noqa: E731
    out, _ = gpuad.vjp(f, x)
    np.testing.assert_allclose(out, call(np, x, axis, keepdims), rtol=1e-13, atol=1e-15)
    check_grads(f, [x], order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("case", SCAN_CASES, ids=[case_id(c) for c in SCAN_CASES])
def test_scan(case):
    name, call, shape, axis = case
    x = data(shape)
    f = lambda x: call(gnp, x, axis)  # noqa: E731
    out, _ = gpuad.vjp(f, x)
    np.testing.assert_allclose(out, call(np, x, axis), rtol=1e-13, atol=1e-15)
    check_grads(f, [x], order=2, modes=("fwd", "rev"))


# ---- more signatures --------------------------------------------------------------------------------------

SIGNATURES = [
    ("var_dtype", lambda m, x: m.var(x, axis=1, dtype=np.float64), [data((3, 4))]),
    ("var_correction", lambda m, x: m.var(x, axis=0, correction=1), [data((3, 4))]),
    ("var_mean_given", lambda m, x: m.var(x, axis=1, mean=m.mean(x, axis=1, keepdims=True)), [data((3, 4))]),
    ("var_method", lambda m, x: x.var(axis=-1, ddof=1, keepdims=True), [data((3, 4))]),
    ("std_method", lambda m, x: x.std(0), [data((3, 4))]),
    ("std_ddof2_tuple", lambda m, x: m.std(x, axis=(0, 2), ddof=2), [data((2, 3, 4))]),
    ("mean_dtype", lambda m, x: m.mean(x, axis=(0, -1), dtype=np.float64), [data((2, 3, 4))]),
    ("sum_dtype", lambda m, x: m.sum(x, axis=-2, dtype=np.float64, keepdims=True), [data((2, 3, 4))]),
    ("prod_dtype", lambda m, x: m.prod(x, axis=1, dtype=np.float64), [data((3, 4))]),
    ("cumsum_dtype", lambda m, x: m.cumsum(x, axis=1, dtype=np.float64), [data((3, 4))]),
    ("cumprod_dtype", lambda m, x: m.cumprod(x, dtype=np.float64), [data((3, 4))]),
    ("average_weights_and_data", lambda m, x, w: m.average(x, axis=1, weights=w),
     [data((3, 4)), weights_like((3, 4))]),
    ("average_1d_weights", lambda m, x, w: m.average(x, axis=1, weights=w), [data((3, 4)), weights_like(4)]),
    ("average_1d_weights_neg_axis", lambda m, x, w: m.average(x, axis=-3, weights=w, keepdims=True),
     [data((2, 3, 4)), weights_like(2)]),
    ("average_nd_weights_tuple", lambda m, x, w: m.average(x, axis=(2, 0), weights=w),
     [data((2, 3, 4)), weights_like((4, 2))]),
    ("average_returned", lambda m, x, w: m.average(x, axis=0, weights=w, returned=True),
     [data((3, 4)), weights_like((3, 4))]),
    ("average_returned_1d", lambda m, x, w: m.average(x, axis=0, weights=w, returned=True),
     [data((3, 4)), weights_like(3)]),
    ("average_returned_unweighted", lambda m, x: m.average(x, axis=1, returned=True)[0], [data((3, 4))]),
    ("average_list_weights", lambda m, x: m.average(x, axis=0, weights=[1.0, 2.0, 3.0]), [data((3, 4))]),
]


@pytest.mark.parametrize("name,call,args", SIGNATURES, ids=[s[0] for s in SIGNATURES])
def test_signatures(name, call, args):
    f = lambda *xs: call(gnp, *xs)  # noqa: E731
    out, _ = gpuad.vjp(f, *args)
    expected = call(np, *args)
    for got, want in zip(out if isinstance(out, tuple) else (out,), expected if isinstance(out, tuple)
                         else (expected,)):
        np.testing.assert_allclose(got, want, rtol=1e-13)
        assert np.shape(got) == np.shape(want)
    check_grads(f, args, order=2, modes=("fwd", "rev"))


def test_average_returned_count_matches_numpy():
    x = data((3, 4))
    avg, scale = gnp.average(gpuad.tensor(x), axis=1, returned=True)
    want_avg, want_scale = np.average(x, axis=1, returned=True)
    np.testing.assert_allclose(avg, want_avg, rtol=1e-14)
    np.testing.assert_array_equal(scale, want_scale)
    assert scale.dtype == want_scale.dtype


# ---- zeros in products: derivatives of every order exact (no division by zero) ----------------------------

ZERO_CASES = [
    ("one_zero", np.array([1.5, 0.0, -0.7, 2.0])),
    ("two_zeros", np.array([1.5, 0.0, -0.7, 0.0, 2.0])),
    ("zero_first", np.array([0.0, 1.5, -0.7, 2.0])),
    ("zero_last", np.array([1.5, -0.7, 2.0, 0.0])),
    ("all_zero", np.zeros(3)),
    ("matrix_zeros", np.array([[1.5, 0.0, -0.7, 2.0], [0.0, 0.0, 1.2, -1.1], [0.6, 1.3, -0.9, 1.8]])),
]
ZERO_CALLS = [
    ("prod", lambda x: gnp.prod(x)),
    ("prod_axis_last", lambda x: gnp.prod(x, axis=-1, keepdims=True)),
    ("prod_axis_first", lambda x: gnp.prod(x, axis=0)),
    ("cumprod", lambda x: gnp.cumprod(x)),
    ("cumprod_axis_last", lambda x: gnp.cumprod(x, axis=-1)),
    ("cumprod_axis_first", lambda x: gnp.cumprod(x, axis=0)),
]


@pytest.mark.parametrize("fname,fn", ZERO_CALLS, ids=[c[0] for c in ZERO_CALLS])
@pytest.mark.parametrize("xname,x", ZERO_CASES, ids=[c[0] for c in ZERO_CASES])
def test_products_with_zeros(fname, fn, xname, x):
    check_grads(fn, [x], order=2, modes=("fwd", "rev"))


def test_prod_second_derivative_at_a_zero():
    hessian_row = gpuad.jvp(gpuad.grad(gnp.prod), (np.array([2.0, 0.0, 3.0]),), (np.array([1.0, 0.0, 0.0]),))[1]
    np.testing.assert_array_equal(hessian_row, [0.0, 3.0, 0.0])
    np.testing.assert_array_equal(gpuad.grad(lambda x: gpuad.grad(gnp.prod)(x)[1])(np.array([2.0, 0.0, 3.0])),
                                  [3.0, 0.0, 2.0])


def test_cumprod_jacobian_with_zeros():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    expected = np.zeros((5, 5))  # d out_i / d x_j = product of x_0..x_i without x_j, for j <= i
    for i in range(5):
        for j in range(i + 1):
            expected[i, j] = np.prod(np.delete(x[: i + 1], j))
    rows = [gpuad.grad(lambda x, i=i: gnp.cumprod(x)[i])(x) for i in range(5)]
    np.testing.assert_array_equal(np.array(rows), expected)
    cols = [gpuad.jvp(gnp.cumprod, (x,), (np.eye(5)[j],))[1] for j in range(5)]
    np.testing.assert_array_equal(np.array(cols).T, expected)


@pytest.mark.parametrize("fname,fn", ZERO_CALLS, ids=[c[0] for c in ZERO_CALLS])
def test_products_with_zeros_third_order(fname, fn):
    """prod is a tree of multiplies and cumprod's rules are recurrences: exact at every order, zeros included."""
    check_grads(fn, [dict(ZERO_CASES)["matrix_zeros"]], order=3, modes=("fwd", "rev"))


def test_cumprod_second_order_away_from_zeros():
    check_grads(lambda x: gnp.cumprod(x, axis=1), [data((3, 4), seed=5)], order=3, modes=("fwd", "rev"))


# ---- conventions: ties, constant inputs ----------------------------------------------------------------------

def test_max_min_ptp_ties_split_evenly():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(gpuad.grad(lambda x: gnp.max(x))(x), [[0, 0.5, 0.5], [0, 0, 0]])
    np.testing.assert_array_equal(gpuad.grad(lambda x: gnp.sum(gnp.amax(x, axis=1)))(x),
                                  [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_array_equal(gpuad.grad(lambda x: gnp.sum(gnp.min(x, axis=-1, keepdims=True)))(x),
                                  [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_array_equal(gpuad.grad(lambda x: gnp.sum(gnp.ptp(x, axis=1)))(x),
                                  [[-1, 0.5, 0.5], [0, 0, 0]])
    _, tangent = gpuad.jvp(lambda x: gnp.max(x, axis=0), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(tangent, [1, 1, 1])


def test_std_of_a_constant_has_zero_derivative():
    """std is |x - mean| like: at a constant slice we return derivative 0 (not nan); elsewhere the usual one."""
    x = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    g = gpuad.grad(lambda x: gnp.sum(gnp.std(x, axis=1)))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[0], 0.0)
    check_grads(lambda x: gnp.std(x, axis=1)[1], [x], order=2)
    assert gpuad.grad(lambda x: gnp.var(x))(np.full(4, 3.0)).tolist() == [0.0] * 4


# ---- dtypes -----------------------------------------------------------------------------------------------------

FLOAT32_CALLS = [(name, lambda x, call=call: call(gnp, x, 1, False)) for name, call in REDUCTIONS] + [
    (name, lambda x, call=call: call(gnp, x, None, True)) for name, call in REDUCTIONS] + [
    (name, lambda x, call=call: call(gnp, x, -1)) for name, call in SCANS]


@pytest.mark.parametrize("name,fn", FLOAT32_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(FLOAT32_CALLS)])
def test_float32_stays_float32(name, fn):
    x = data((3, 4), dtype=np.float32)
    out, _ = gpuad.vjp(fn, x)
    assert out.dtype == np.float32
    g = gpuad.grad(lambda x: gnp.sum(fn(x)))(x)
    assert g.dtype == np.float32 and g.shape == x.shape
    _, t = gpuad.jvp(fn, (x,), (np.ones_like(x),))
    assert t.dtype == np.float32


def test_plain_arrays_go_to_numpy():
    x = data((3, 4))
    for name in ("var", "std", "cumsum", "cumprod", "ptp", "average"):
        out = getattr(gnp, name)(x, axis=1)
        assert type(out) is np.ndarray
        np.testing.assert_array_equal(out, getattr(np, name)(x, axis=1))


# ---- bad input ----------------------------------------------------------------------------------------------

BAD = [
    ("cumsum_tuple_axis", lambda x: gnp.cumsum(x, axis=(0, 1)), TypeError, "one integer"),
    ("cumprod_axis_out_of_range", lambda x: gnp.cumprod(x, axis=2), np.exceptions.AxisError, "axis 2"),
    ("var_axis_out_of_range", lambda x: gnp.var(x, axis=-3), np.exceptions.AxisError, "axis -3"),
    ("var_ddof_and_correction", lambda x: gnp.var(x, ddof=1, correction=1), ValueError, "only one"),
    ("std_out", lambda x: gnp.std(x, out=np.empty(())), TypeError, "out= is not supported"),
    ("cumsum_out", lambda x: gnp.cumsum(x, out=np.empty(12)), TypeError, "out= is not supported"),
    ("average_weights_sum_zero", lambda x: gnp.average(x, axis=1, weights=np.array([1.0, -1.0, 0.0, 0.0])),
     ZeroDivisionError, "weights sum to zero"),
    ("average_weights_no_axis", lambda x: gnp.average(x, weights=np.ones(4)), TypeError, "axis must be specified"),
    ("average_weights_bad_shape", lambda x: gnp.average(x, axis=1, weights=np.ones(3)), ValueError,
     "not consistent"),
    ("round_float_decimals", lambda x: gnp.round(x, 1.5), TypeError, "integer"),
]


@pytest.mark.parametrize("name,fn,error,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, fn, error, match):
    x = gpuad.tensor(data((3, 4)))
    with pytest.raises(error, match=match):
        fn(x)


# ---- the linear recurrence under cumprod's rules -------------------------------------------------------------

@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 5), 1), ((4, 3), 0), ((1,), 0), ((0, 3), 0)])
def test_recurrence_matches_a_loop_and_differentiates(reverse, shape, axis):
    from gpuad.ops.scans import RECURRENCE
    rng = np.random.default_rng(11)
    a, b = rng.uniform(-1.5, 1.5, shape), rng.uniform(-1.5, 1.5, shape)
    b.flat[::3] = 0.0  # zeros in the multipliers: no division anywhere
    expected = np.zeros(shape)
    order = range(shape[axis])[::-1] if reverse else range(shape[axis])
    previous = np.zeros(shape[:axis] + shape[axis + 1:])
    for i in order:
        index = (slice(None),) * axis + (i,)
        previous = a[index] + b[index] * previous
        expected[index] = previous
    f = lambda a, b: RECURRENCE.bind(a, b, axis=axis, reverse=reverse)  # noqa: E731
    np.testing.assert_allclose(f(a, b), expected, rtol=1e-13, atol=1e-15)
    if a.size:
        check_grads(f, [a, b], order=2, modes=("fwd", "rev"))
