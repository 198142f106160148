"""The NumPy functions people reach for, table-driven: each case runs traced against NumPy's own function
(forward value and shape), on plain arrays (gpuad.numpy gives NumPy's result), and is checked by check_grads
(forward and reverse, order 2, float64) inside its domain. Then the conventions (ties, NaNs, UPLO) and errors."""
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

RNG = np.random.default_rng(0)
S = RNG.uniform(-2, 2, ())
V = RNG.uniform(-2, 2, 7)
V5 = RNG.uniform(-2, 2, 5)
M = RNG.uniform(-2, 2, (3, 4))
T = RNG.uniform(-2, 2, (2, 3, 5))
P = RNG.uniform(0.5, 2, (3, 4))        # positive
TIES = M.copy()
TIES[0, 1] = TIES[0, 2] = TIES[2, 2]
NANS = M.copy()
NANS[1, 2] = NANS[0, 0] = np.nan
MASK = M > -1.2
V3 = RNG.uniform(-2, 2, (4, 3))
W3 = RNG.uniform(-2, 2, (4, 3))
SQ = RNG.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)
SPD = SQ @ SQ.T
REAL_SPECTRUM = np.array([[4.0, 1.0, 0.5], [0.3, 2.0, 0.2], [0.1, 0.4, -1.0]])
XP = np.array([-1.5, -0.5, 0.2, 0.9, 1.7])
FP = RNG.uniform(-2, 2, 5)
X_IN = np.array([-1.9, -1.2, -0.3, 0.45, 1.1, 1.6, 2.3])   # inside and outside XP's range, never on a knot

QUANTILE_METHODS = ["linear", "lower", "higher", "nearest", "midpoint", "hazen", "weibull", "median_unbiased",
                    "normal_unbiased", "interpolated_inverted_cdf", "inverted_cdf", "averaged_inverted_cdf",
                    "closest_observation"]

# (id, function of (xp, *arrays), arrays[, check derivatives])
CASES = [
    # ---- order statistics
    *[(f"median-axis{ax}-keep{k}", lambda xp, x, ax=ax, k=k: xp.median(x, axis=ax, keepdims=k), [M])
      for ax in (None, 0, 1, -1, (0, 1)) for k in (False, True)],
    ("median-3d-axes", lambda xp, x: xp.median(x, axis=(0, 2)), [T]),
    ("median-vector-odd", lambda xp, x: xp.median(x), [V]),
    ("median-ties-value", lambda xp, x: xp.median(x, axis=1), [TIES], False),
    *[(f"quantile-{m}", lambda xp, x, m=m: xp.quantile(x, [0.1, 0.5, 0.77], axis=1, method=m), [M])
      for m in QUANTILE_METHODS],
    *[(f"quantile-scalar-q-{m}", lambda xp, x, m=m: xp.quantile(x, 0.3, method=m), [T]) for m in QUANTILE_METHODS],
    ("quantile-keepdims-2d-q", lambda xp, x: xp.quantile(x, [[0.2, 0.4], [0.6, 1.0]], axis=(0, 2), keepdims=True),
     [T]),
    ("quantile-weights", lambda xp, x: xp.quantile(x, [0.2, 0.5, 0.9], axis=1, method="inverted_cdf",
                                                   weights=P[0]), [M]),
    ("quantile-weights-all", lambda xp, x: xp.quantile(x, 0.4, method="inverted_cdf", weights=P), [M]),
    ("percentile-weights-keepdims", lambda xp, x: xp.percentile(x, [30, 70], axis=0, method="inverted_cdf",
                                                               weights=P, keepdims=True), [M]),
    ("percentile", lambda xp, x: xp.percentile(x, [[10.0, 50.0], [90, 100]], axis=0, keepdims=True), [M]),
    ("percentile-scalar", lambda xp, x: xp.percentile(x, 25), [M]),
    ("percentile-nearest", lambda xp, x: xp.percentile(x, [33, 66], axis=-1, method="nearest"), [T]),
    # ---- NaN-aware reductions
    *[(f"{name}-axis{ax}{'-nans' if data is NANS else ''}", lambda xp, x, name=name, ax=ax: getattr(xp, name)(
        x, axis=ax), [data]) for name in ("nansum", "nanmean", "nanmax", "nanmin", "nanprod", "nanvar", "nanstd")
      for ax in (None, 0, 1) for data in (M, NANS)],
    ("nanvar-ddof-keepdims", lambda xp, x: xp.nanvar(x, axis=1, ddof=1, keepdims=True), [NANS]),
    ("nanstd-ddof", lambda xp, x: xp.nanstd(x, axis=0, ddof=1), [NANS]),
    ("nansum-keepdims", lambda xp, x: xp.nansum(x, axis=(0, 2), keepdims=True), [T]),
    # ---- where= and initial= on reductions
    *[(f"{name}-where-axis{ax}", lambda xp, x, name=name, ax=ax, kw=kw: getattr(xp, name)(x, axis=ax, **kw), [M])
      for name, kw in (("sum", dict(where=MASK, initial=0.5)), ("mean", dict(where=MASK)),
                       ("max", dict(where=MASK, initial=-1.5)), ("min", dict(where=MASK, initial=1.9)),
                       ("prod", dict(where=MASK, initial=2.0)), ("var", dict(where=MASK, ddof=1)),
                       ("std", dict(where=MASK)), ("nansum", dict(where=MASK)), ("nanmean", dict(where=MASK)))
      for ax in (None, 0, 1)],
    ("max-initial", lambda xp, x: xp.max(x, axis=1, initial=0.0), [M]),
    ("min-initial-keepdims", lambda xp, x: xp.min(x, axis=0, initial=-0.3, keepdims=True), [M]),
    ("sum-initial", lambda xp, x: xp.sum(x, initial=3.0), [T]),
    ("prod-initial", lambda xp, x: xp.prod(x, axis=-1, initial=-2.0), [T]),
    # ---- covariance and correlation
    ("cov", lambda xp, x: xp.cov(x), [M]),
    ("cov-rowvar-bias", lambda xp, x: xp.cov(x, rowvar=False, bias=True), [M]),
    ("cov-x-y", lambda xp, x, y: xp.cov(x, y), [M[0], M[1]]),
    ("cov-vector", lambda xp, x: xp.cov(x), [V]),
    ("cov-ddof", lambda xp, x: xp.cov(x, ddof=0), [M]),
    ("cov-aweights", lambda xp, x: xp.cov(x, aweights=np.array([1.0, 2.0, 0.5, 1.5])), [M]),
    ("cov-fweights", lambda xp, x: xp.cov(x, fweights=np.array([1, 2, 1, 3]), ddof=2), [M]),
    ("cov-both-weights", lambda xp, x: xp.cov(x, fweights=np.array([1, 2, 1, 3]),
                                              aweights=np.array([1.0, 2.0, 0.5, 1.5])), [M]),
    ("cov-traced-aweights", lambda xp, x, w: xp.cov(x, aweights=w), [M, P[0]]),
    ("corrcoef", lambda xp, x: xp.corrcoef(x), [M]),
    ("corrcoef-vector", lambda xp, x: xp.corrcoef(x), [V]),
    ("corrcoef-x-y", lambda xp, x, y: xp.corrcoef(x, y, rowvar=False), [M, T[0, :, :3].T.copy()]),
    # ---- calculus and signals
    ("cross-3", lambda xp, a, b: xp.cross(a, b), [V3, W3]),
    ("cross-broadcast", lambda xp, a, b: xp.cross(a, b), [V3, W3[0]]),
    ("cross-axes", lambda xp, a, b: xp.cross(a, b, axisa=0, axisb=0, axisc=0), [V3[:3], W3[:3]]),
    ("cross-axis", lambda xp, a, b: xp.cross(a, b, axis=0), [V3[:3], W3[:3]]),
    ("cross-2-3", lambda xp, a, b: xp.cross(a, b), [V3[:, :2], W3]),
    ("cross-3-2", lambda xp, a, b: xp.cross(a, b), [V3, W3[:, :2]]),
    ("gradient-vector", lambda xp, f: xp.gradient(f), [V]),
    ("gradient-spacing", lambda xp, f: xp.gradient(f, 0.3), [V]),
    ("gradient-edge2", lambda xp, f: xp.gradient(f, edge_order=2), [V]),
    ("gradient-matrix", lambda xp, f: xp.gradient(f), [M]),
    ("gradient-axis", lambda xp, f: xp.gradient(f, 2.0, axis=-1), [T]),
    ("gradient-coordinates", lambda xp, f: xp.gradient(f, np.array([0.0, 0.5, 1.5, 1.7]), axis=1), [M]),
    ("gradient-coordinates-edge2", lambda xp, f: xp.gradient(f, [0.0, 0.4, 1.0], np.array([0.0, 0.5, 1.5, 1.7]),
                                                               edge_order=2), [M]),
    ("interp", lambda xp, x, xp_, fp: xp.interp(x, xp_, fp), [X_IN, XP, FP]),
    ("interp-left-right", lambda xp, x, fp: xp.interp(x, XP, fp, left=-3.0, right=4.0), [X_IN, FP]),
    ("interp-matrix-x", lambda xp, x: xp.interp(x, XP, FP), [M * 0.9]),
    ("interp-scalar-x", lambda xp, x: xp.interp(x, XP, FP), [np.float64(0.3)]),
    ("interp-period", lambda xp, x, fp: xp.interp(x, np.array([0.1, 2.0, 1.0, 3.3]), fp, period=3.5),
     [X_IN * 2.5, FP[:4]]),
    ("interp-at-knots", lambda xp, fp: xp.interp(XP, XP, fp), [FP]),
    *[(f"convolve-{n}-{m}-{mode}", lambda xp, a, v, mode=mode: xp.convolve(a, v, mode), [V[:n], V5[:m]])
      for n, m in ((7, 3), (3, 5), (4, 4), (1, 5)) for mode in ("full", "same", "valid")],
    *[(f"correlate-{n}-{m}-{mode}", lambda xp, a, v, mode=mode: xp.correlate(a, v, mode), [V[:n], V5[:m]])
      for n, m in ((7, 3), (2, 5), (4, 4)) for mode in ("full", "same", "valid")],
    ("correlate-default", lambda xp, a, v: xp.correlate(a, v), [V, V5]),
    ("trapezoid", lambda xp, y: xp.trapezoid(y), [V]),
    ("trapezoid-dx-axis", lambda xp, y: xp.trapezoid(y, dx=0.3, axis=0), [M]),
    ("trapezoid-x", lambda xp, y, x: xp.trapezoid(y, x), [M, np.array([0.0, 0.4, 1.1, 1.5])]),
    ("trapezoid-x-nd", lambda xp, y, x: xp.trapezoid(y, x, axis=1), [T, np.cumsum(P[:2, :3], axis=1)[..., None]
                                                                     * np.ones(5)]),
    ("polyval", lambda xp, p, x: xp.polyval(p, x), [V5, M]),
    ("polyval-scalar", lambda xp, p, x: xp.polyval(p, x), [V5, S]),
    ("polyval-constant", lambda xp, p, x: xp.polyval(p, x), [V5[:1], V]),
    # ---- linear algebra
    *[(f"matrix_power-{n}", lambda xp, x, n=n: xp.linalg.matrix_power(x, n), [SQ]) for n in (0, 1, 2, 3, 5, 6, -1, -3)],
    ("matrix_power-batched", lambda xp, x: xp.linalg.matrix_power(x, 4), [np.stack([SQ, SQ.T]) / 2]),
    ("lstsq-tall", lambda xp, a, b: xp.linalg.lstsq(a, b)[0], [V3, W3[:, :2]]),
    ("lstsq-tall-vector", lambda xp, a, b: xp.linalg.lstsq(a, b)[0], [V3, W3[:, 0]]),
    ("lstsq-residuals", lambda xp, a, b: xp.linalg.lstsq(a, b)[1], [V3, W3[:, :2]]),
    ("lstsq-residuals-vector", lambda xp, a, b: xp.linalg.lstsq(a, b)[1], [V3, W3[:, 0]]),
    ("lstsq-singular-values", lambda xp, a, b: xp.linalg.lstsq(a, b)[3], [V3, W3]),
    ("lstsq-wide", lambda xp, a, b: xp.linalg.lstsq(a, b, rcond=None)[0], [V3.T, W3[:3, :2]]),
    ("lstsq-square", lambda xp, a, b: xp.linalg.lstsq(a, b)[0], [SQ, W3[:3]]),
    ("eigvals", lambda xp, x: xp.linalg.eigvals(x), [REAL_SPECTRUM]),
    ("eig-values", lambda xp, x: xp.linalg.eig(x).eigenvalues, [REAL_SPECTRUM]),
    ("eig-vectors", lambda xp, x: xp.linalg.eig(x).eigenvectors, [REAL_SPECTRUM]),
    ("eig-batched", lambda xp, x: xp.linalg.eig(x)[1], [np.stack([REAL_SPECTRUM, REAL_SPECTRUM.T + np.eye(3)])]),
    ("eig-symmetric", lambda xp, x: xp.linalg.eig(x)[0], [SPD]),
    # ---- r_ and c_
    ("r_-arrays", lambda xp, a, b: xp.r_[a, b], [V, V5]),
    ("r_-mixed", lambda xp, a, b: xp.r_[a, 0.5, 1:4, b, -2], [V, V5]),
    ("r_-scalar-tensor", lambda xp, a, b: xp.r_[a, b], [S, V5]),
    ("r_-linspace-slice", lambda xp, a: xp.r_[0:1:5j, a], [V]),
    ("r_-axis-directive", lambda xp, a, b: xp.r_["1", a, b], [M, P]),
    ("r_-ndmin-directive", lambda xp, a, b: xp.r_["0,2", a, b], [V5, V5 * 2]),
    ("r_-trans1d-directive", lambda xp, a, b: xp.r_["0,2,0", a, b], [V5, V5 * 2]),
    ("r_-trans1d-negative", lambda xp, a, b: xp.r_["1,3,-1", a, b], [M, P]),
    ("c_-vectors", lambda xp, a, b: xp.c_[a, b], [V5, V5 * 2]),
    ("c_-matrix-vector", lambda xp, a, b: xp.c_[a, b], [M, M[:, 0].copy()]),
    ("c_-scalars", lambda xp, a: xp.c_[a, 1.5], [S]),
    # ---- pad's statistic and ramp modes
    *[(f"pad-{mode}-{k}", lambda xp, a, mode=mode, w=w, kw=kw: xp.pad(a, w, mode=mode, **kw), [x])
      for mode in ("maximum", "minimum", "mean", "median")
      for k, (x, w, kw) in enumerate([(V, 2, {}), (M, ((1, 2), (0, 3)), {}), (M, (2, 1), dict(stat_length=2)),
                                      (T, 1, dict(stat_length=((1, 2), (2, 1), (3, 3)))), (V, (3, 0), {})])],
    *[(f"pad-linear_ramp-{k}", lambda xp, a, w=w, kw=kw: xp.pad(a, w, mode="linear_ramp", **kw), [x])
      for k, (x, w, kw) in enumerate([(V, 2, {}), (M, ((1, 2), (0, 3)), dict(end_values=1.5)),
                                      (M, (2, 1), dict(end_values=((1, 2), (-3, 4)))), (T, 1, {}),
                                      (V, (0, 3), dict(end_values=(5, -5)))])],
    # ---- elementwise and small helpers
    ("copysign", lambda xp, a, b: xp.copysign(a, b), [M, -P]),
    ("copysign-broadcast", lambda xp, a: xp.copysign(a, np.array([1.0, -1.0, -0.0, 0.0])), [M]),
    ("heaviside", lambda xp, b: xp.heaviside(np.array([-1.0, 0.0, 2.0, 0.0]), b), [np.array([0.3, 0.5, 0.7, 0.9])]),
    ("heaviside-x", lambda xp, a: xp.heaviside(a, 0.5) * a, [M]),
    ("angle", lambda xp, a: xp.angle(a) + a, [np.array([-1.0, 0.5, 2.0, -0.3])]),
    ("angle-deg", lambda xp, a: xp.angle(a, deg=True) * a, [M]),
    ("real_if_close", lambda xp, a: xp.real_if_close(a), [M]),
    ("isin-mask", lambda xp, a: xp.where(xp.isin(xp.round(a), [0.0, 1.0]), a, -a), [M]),
    ("row_stack", lambda xp, a, b: xp.vstack([a, b]) if xp is np else xp.row_stack([a, b]), [V5, V5 * 2]),
    ("rollaxis", lambda xp, a: xp.rollaxis(a, 2), [T]),
    ("rollaxis-start", lambda xp, a: xp.rollaxis(a, 0, 3), [T]),
    ("rollaxis-negative", lambda xp, a: xp.rollaxis(a, -1, 1), [T]),
    ("astype-function", lambda xp, a: xp.astype(a, np.float32).astype(np.float64) * 2 if xp is not np
     else np.astype(a, np.float32).astype(np.float64) * 2, [M], False),
    ("linspace-traced", lambda xp, a, b: xp.linspace(a, b, 7), [V5, P[0, :1]]),
    ("linspace-axis-noendpoint", lambda xp, a, b: xp.linspace(a, b, 4, endpoint=False, axis=-1), [V5, V5 + 1]),
    ("linspace-retstep", lambda xp, a, b: xp.linspace(a, b, 5, retstep=True)[0], [S, S + 2]),
    ("logspace", lambda xp, a, b: xp.logspace(a, b, 5), [S, S + 1]),
    ("logspace-base", lambda xp, a, b: xp.logspace(a, b, 4, base=2.0, axis=1), [V5, V5 * 2]),
    ("logspace-array-base", lambda xp, a, b: xp.logspace(a, b, 3, base=np.array([2.0, 3.0])), [S, S + 1]),
    ("geomspace", lambda xp, a, b: xp.geomspace(a, b, 6), [P[0], P[1] * 3]),
    ("geomspace-negative-axis", lambda xp, a, b: xp.geomspace(a, b, 4, axis=-1, endpoint=False), [-P[0], -P[1]]),
]

RTOL = {"lstsq": 1e-10, "eig": 1e-12}


def _all_finite(value):
    return all(np.all(np.isfinite(v)) for v in (value if isinstance(value, tuple) else (value,)))


def _compare(got, want, rtol=1e-13):
    for g, w in zip(got if isinstance(got, (tuple, list)) else (got,), want if isinstance(want, (tuple, list))
                    else (want,)):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol / 100, equal_nan=True)
        assert np.shape(g) == np.shape(w)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_case(case):
    name, call, args = case[:3]
    check = case[3] if len(case) > 3 else True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own all-NaN and degrees-of-freedom warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # cross of 2-vectors, deprecated in NumPy 2
        want = call(np, *args)
        f = lambda *xs: call(gnp, *xs)  # noqa: E731
        rtol = next((v for k, v in RTOL.items() if name.startswith(k)), 1e-13)
        _compare(gpuad.vjp(f, *args)[0], want, rtol)
        _compare(f(*args), want)  # plain arrays: NumPy's own result
        if check and _all_finite(want):
            check_grads(f, args, order=2, modes=("fwd", "rev"))


# ---- conventions and the parts a table cannot say ---------------------------------------------------------------

def test_namespace_has_numpy_constants_and_dtypes():
    for name in ("pi", "e", "inf", "euler_gamma"):
        assert getattr(gnp, name) == getattr(np, name)
    assert np.isnan(gnp.nan) and gnp.newaxis is None
    assert gnp.dtype is np.dtype and gnp.finfo is np.finfo and gnp.iinfo is np.iinfo
    for name in ("bool", "bool_", "int8", "uint64", "intp", "float16", "float32", "float64", "complex128",
                 "longdouble", "generic", "number", "integer", "floating", "inexact", "object_", "str_"):
        assert getattr(gnp, name) is getattr(np, name), name
    assert gnp.finfo(gnp.float32).eps == np.finfo(np.float32).eps


def test_plain_arrays_give_numpy_results():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # row_stack: no deprecation warning
        np.testing.assert_array_equal(gnp.row_stack([V5, V5]), np.vstack([V5, V5]))
    assert type(gnp.median(M)) is type(np.median(M))
    np.testing.assert_array_equal(gnp.isin(M, M[0]), np.isin(M, M[0]))
    np.testing.assert_array_equal(gnp.r_[V5, 1:3], np.r_[V5, 1:3])
    np.testing.assert_array_equal(gnp.c_[V5, V5], np.c_[V5, V5])
    np.testing.assert_array_equal(gnp.linspace(0, 1, 5), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(gnp.geomspace(1, 1000, 4), np.geomspace(1, 1000, 4))


def test_weighted_quantiles_pick_numpys_elements():
    """Random data with ties, zero weights (leading ones too), q at 0 and 1 and in float32, one axis, several
    and all, NaN data: the values equal NumPy's weighted inverted CDF; the derivative goes to the picked ones."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        shape = ((5,), (4, 6), (3, 4, 5))[trial % 3]
        x = rng.integers(-3, 4, shape).astype(float) if trial % 4 == 0 else rng.standard_normal(shape)
        if trial % 7 == 3:
            x.flat[rng.integers(x.size)] = np.nan
        axis = (None, -1, 0, (0, len(shape) - 1) if len(shape) > 1 else 0)[trial % 4]
        w = rng.integers(0, 3, shape).astype(float)
        w.reshape(shape[0], -1)[0] = 0.0  # leading zero weights
        w.reshape(-1)[-1] = 1.0 + (trial % 2)  # (every slice has weight: along any axis the last element)
        w = np.where(w.sum(axis=axis, keepdims=True) > 0, w, 1.0)
        q = ([0.0, 0.3, 0.5, 1.0], 0.25, np.float32(0.4), np.array([[0.1], [0.9]]))[trial % 4]
        for fn, scale in ((gnp.quantile, 1), (gnp.percentile, 100)):
            want = getattr(np, fn.__name__)(x, np.multiply(q, scale), axis=axis, method="inverted_cdf", weights=w)
            got = gpuad.vjp(lambda x: fn(x, np.multiply(q, scale), axis=axis, method="inverted_cdf", weights=w),
                            x)[0]
            np.testing.assert_array_equal(got, want, err_msg=f"{fn.__name__} trial {trial}")
    x = rng.standard_normal((3, 4))
    check_grads(lambda x: gnp.quantile(x, [0.2, 0.7], axis=1, method="inverted_cdf", weights=[1.0, 0.0, 2.0, 1.0]),
                [x], order=2, modes=("fwd", "rev"))


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # (NumPy's division by a zero total warns too)
@pytest.mark.parametrize("weights,message", [([1.0, -1.0, 2.0], "non-negative"), ([0.0, 0.0, 0.0], "all zero"),
                                             ([1.0, np.nan, 1.0], "NaN"), ([1.0, 2.0], "not consistent")])
def test_weighted_quantile_errors_are_numpys(weights, message):
    x = gpuad.tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=message):
        gnp.quantile(x, 0.5, axis=1, method="inverted_cdf", weights=weights)
    with pytest.raises(ValueError, match="inverted_cdf"):
        gnp.quantile(x, 0.5, axis=1, method="linear", weights=[1.0, 1.0, 1.0])


def test_order_statistics_share_ties_evenly():
    x = np.array([3.0, 1.0, 3.0, 2.0, 3.0])  # the median is 3, held by three elements
    np.testing.assert_allclose(gpuad.grad(gnp.median)(x), [1 / 3, 0, 1 / 3, 0, 1 / 3])
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.quantile(x, 0.9, method="higher"))(x), [1 / 3, 0, 1 / 3, 0,
                                                                                                 1 / 3])
    y = np.array([1.0, 2.0, 2.0, 5.0])  # median: mean of the two middle values, both 2 (a tie)
    np.testing.assert_allclose(gpuad.grad(gnp.median)(y), [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(gpuad.jvp(gnp.median, (y,), (np.array([0.0, 1.0, 0.0, 0.0]),))[1], 0.5)


def test_nan_reductions_give_nan_entries_no_derivative():
    g = gpuad.grad(gnp.nanmean)(NANS)
    assert g[1, 2] == 0 and g[0, 0] == 0
    np.testing.assert_allclose(g[~np.isnan(NANS)], 1 / 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        all_nan = np.full((2, 3), np.nan)
        for name in ("nanmax", "nanmin", "nanmean", "nanvar", "nanstd"):
            np.testing.assert_array_equal(getattr(gnp, name)(gpuad.tensor(all_nan), axis=0),
                                          getattr(np, name)(all_nan, axis=0))
        np.testing.assert_array_equal(gnp.nansum(gpuad.tensor(all_nan), axis=0), 0)


def test_heaviside_derivative_in_its_value_at_zero():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(gpuad.grad(lambda h: gnp.sum(gnp.heaviside(x, h)))(np.full(3, 0.5)), [0, 1, 0])
    np.testing.assert_array_equal(gpuad.grad(lambda a: gnp.sum(gnp.copysign(a, -1.0)))(np.array([2.0, -1.0, 0.0])),
                                  [-1, 1, 0])


def test_reductions_where_needs_initial_for_max():
    with pytest.raises(ValueError, match="initial"):
        gnp.max(gpuad.tensor(M), where=MASK)
    np.testing.assert_array_equal(gnp.max(gpuad.tensor(np.zeros((0, 3))), axis=0, initial=1.0),
                                  np.max(np.zeros((0, 3)), axis=0, initial=1.0))


def test_eig_of_a_real_matrix_with_a_complex_spectrum_is_complex():
    """NumPy 2's rule: complex eigenvalues and vectors; their derivatives reach the real input as real parts
    (more complex cases: tests/test_complex_linalg.py)."""
    rotation = np.array([[0.0, 1.0], [-1.0, 0.0]]) + np.diag([0.1, 0.3])
    w, v = gpuad.vjp(gnp.linalg.eig, rotation)[0]
    expected = np.linalg.eig(rotation)
    assert w.dtype == np.complex128 and v.dtype == np.complex128
    np.testing.assert_allclose(w, expected.eigenvalues, rtol=1e-13)
    np.testing.assert_allclose(v, expected.eigenvectors, rtol=1e-13)
    check_grads(gnp.linalg.eigvals, [rotation], order=2)
    assert gpuad.grad(lambda x: gnp.real(gnp.sum(gnp.linalg.eigvals(x) ** 2)))(rotation).dtype == np.float64


def test_lstsq_rank_and_shapes_match_numpy():
    x, residuals, rank, s = gnp.linalg.lstsq(gpuad.tensor(V3), W3)
    want = np.linalg.lstsq(V3, W3)
    assert rank == want[2] and np.shape(residuals) == want[1].shape and np.shape(s) == want[3].shape
    low_rank = np.outer(V3[:, 0], [1.0, 2.0, 3.0])
    got = gnp.linalg.lstsq(gpuad.tensor(low_rank), W3[:, 0])
    want = np.linalg.lstsq(low_rank, W3[:, 0])
    assert got[2] == want[2] == 1 and np.shape(got[1]) == (0,)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10)


@pytest.mark.parametrize("rcond", [-1, 0, 0.5, 1, 10, None])
def test_lstsq_rcond_outside_0_1_means_machine_precision(rcond):
    low_rank = np.outer(V3[:, 0], [1.0, 2.0, 3.0])
    for a in (V3, low_rank):
        got, want = gnp.linalg.lstsq(gpuad.tensor(a), W3, rcond=rcond), np.linalg.lstsq(a, W3, rcond=rcond)
        assert got[2] == want[2] and np.shape(got[1]) == want[1].shape
        np.testing.assert_allclose(got[0], want[0], rtol=1e-9, atol=1e-12)


AT_CASES = [((np.array([0, 2, 0]),), RNG.uniform(-2, 2, (3, 3))), ((slice(None), 1), np.array(0.5)),
            ((np.array([1, 1, 1]), np.array([0, 0, 2])), RNG.uniform(-2, 2, 3))]


@pytest.mark.parametrize("method,ufunc", [("multiply", np.multiply), ("min", np.minimum), ("max", np.maximum)])
@pytest.mark.parametrize("k", range(len(AT_CASES)))
def test_at_multiply_min_max(method, ufunc, k):
    index, values = AT_CASES[k]
    x = RNG.uniform(-2, 2, (4, 3))

    def f(x, v):
        if isinstance(x, gpuad.Tensor):
            return getattr(x.at[index], method)(v)
        out = x.copy()
        ufunc.at(out, index, v)
        return out
    np.testing.assert_allclose(gpuad.vjp(f, x, values)[0], f(x, values), rtol=1e-14)
    check_grads(f, [x, values], order=2, modes=("fwd", "rev"))


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_at_multiply_with_infinite_values_is_numpys():
    """An infinite value in one position's run must not reach the next run (0 * inf in the recurrence)."""
    for x, index, values in ((np.array([2.0, 3.0]), np.array([0, 0, 1]), np.array([np.inf, 2.0, 4.0])),
                             (np.array([2.0, -1.0, 0.5]), np.array([2, 0, 0, 1, 2]),
                              np.array([-np.inf, np.nan, 3.0, -np.inf, 0.25])),
                             (np.array([0.0, 1.0]), np.array([0, 1]), np.array([np.inf, -2.0]))):
        want = x.copy()
        np.multiply.at(want, index, values)
        np.testing.assert_array_equal(gpuad.vjp(lambda a: a.at[index].multiply(values), x)[0], want)


def _with(x, **at):
    """``x`` with the values of ``at`` (position -> value) set: inf, -inf and NaN placed in finite data."""
    out = np.array(x, dtype=np.result_type(x, np.float64)).ravel()
    for position, value in at.items():
        out[int(position[1:])] = value
    return out.reshape(np.shape(x))


INF, NAN = np.inf, np.nan
# (id, function of (xp, *arrays), arrays holding inf, -inf or NaN): NumPy's value where it is meaningful
NONFINITE_CASES = [
    ("convolve-inf", lambda xp, a, v: xp.convolve(a, v), [_with(V, p3=INF), V5[:3]]),
    ("convolve-nan-same", lambda xp, a, v: xp.convolve(a, v, "same"), [_with(V, p0=NAN), V5[:3]]),
    ("convolve-inf-in-short", lambda xp, a, v: xp.convolve(a, v, "valid"), [V, _with(V5[:3], p1=-INF)]),
    ("convolve-complex-inf", lambda xp, a, v: xp.convolve(a, v), [_with(V[:4], p1=INF) * (1 + 2j), V5[:3] + 0j]),
    ("correlate-inf-nan", lambda xp, a, v: xp.correlate(a, v, "full"), [_with(V, p0=INF, p6=NAN), V5]),
    ("interp-infinite-fp", lambda xp, x, fp: xp.interp(x, XP, fp), [X_IN, _with(FP, p0=INF, p2=-INF, p4=INF)]),
    ("interp-infinite-fp-on-knots", lambda xp, fp: xp.interp(XP, XP, fp), [_with(FP, p1=INF, p3=NAN)]),
    ("interp-infinite-end-knot", lambda xp, x, xp_: xp.interp(x, xp_, FP), [X_IN, _with(XP, p0=-INF)]),
    ("interp-nan-x", lambda xp, x: xp.interp(x, XP, np.array([1.0, 1.0, 2.0, 2.0, 3.0])), [_with(X_IN, p2=NAN)]),
    *[(f"norm-{o}-{k}", lambda xp, x, o=o: xp.linalg.norm(x, o, axis=-1), [x], np.all(x != 0))
      for o in (None, 2, 3, 0.5, -1, -2.5) for k, x in enumerate([_with(M, p1=NAN), _with(M, p5=INF, p6=NAN),
                                                                   _with(M, p0=-INF, p9=0.0), _with(M, p3=0.0)])],
    ("norm-fro-nan", lambda xp, x: xp.linalg.norm(x), [_with(M, p4=NAN)]),
    ("norm-fro-axes-nan", lambda xp, x: xp.linalg.norm(x, "fro", axis=(0, 2)), [_with(T, p4=NAN)]),
    ("vector_norm-nan", lambda xp, x: xp.linalg.vector_norm(x, ord=3), [_with(T, p7=NAN)]),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", NONFINITE_CASES, ids=[c[0] for c in NONFINITE_CASES])
def test_nonfinite_inputs_give_numpys_values(case):
    """inf, -inf and NaN in the data reach only the outputs NumPy's arithmetic puts them in (never a 0 * inf or
    inf - inf of gpuad's own making), and derivatives stay exact on finite inputs."""
    _, call, args = case[:3]
    want = call(np, *args)
    got = gpuad.vjp(lambda *xs: call(gnp, *xs), *args)[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15, equal_nan=True)
    if len(case) > 3 and not case[3]:  # (at a kink: a zero entry of a norm)
        return
    finite = [np.where(np.isfinite(a), a, 0.5) for a in args]
    check_grads(lambda *xs: call(gnp, *xs), finite, order=2, modes=("fwd", "rev"))


def test_at_max_min_ties_share_evenly_and_infinities_stay_exact():
    # x[0] ties with both values written there: each of the three gets a third (JAX's convention for ties)
    g_x, g_v = gpuad.grad(lambda x, v: gnp.sum(x.at[np.array([0, 0])].max(v)), argnums=(0, 1))(
        np.array([2.0, 1.0]), np.array([2.0, 2.0]))
    np.testing.assert_allclose(g_x, [1 / 3, 1.0])
    np.testing.assert_allclose(g_v, [1 / 3, 1 / 3])
    x = np.array([np.inf, -1.0, 3.0])
    f = lambda x: x.at[np.array([0, 2, 0])].min(np.array([1.0, np.inf, 2.0]))  # noqa: E731
    value, pullback = gpuad.vjp(f, x)
    np.testing.assert_array_equal(value, [1.0, -1.0, 3.0])
    np.testing.assert_array_equal(pullback(np.ones(3))[0], [0.0, 1.0, 1.0])  # no inf * 0


@pytest.mark.parametrize("method", ["min", "max"])
def test_at_max_min_under_vmap_match_a_loop(method):
    x, v = RNG.uniform(-2, 2, (5, 4, 3)), RNG.uniform(-2, 2, (5, 3, 3))
    index = np.array([0, 3, 0])
    f = lambda x, v: gnp.sum(gnp.sin(getattr(x.at[index], method)(v * 2.0)))  # noqa: E731
    batched = gpuad.vmap(gpuad.grad(f, argnums=(0, 1)))(x, v)
    for b in range(5):
        for got, want in zip(batched, gpuad.grad(f, argnums=(0, 1))(x[b], v[b])):
            np.testing.assert_allclose(got[b], want, rtol=1e-14)
    one_value = gpuad.vmap(f, in_axes=(0, None))(x, v[0])  # the values not batched
    np.testing.assert_allclose(one_value, [gpuad.vjp(f, x[b], v[0])[0] for b in range(5)], rtol=1e-14)


def test_tensor_sort_in_place_nbytes_itemsize():
    x = M.copy()

    def f(x):
        y = x * np.arange(1.0, 5.0)
        assert y.sort(axis=0) is None
        return y * 2
    np.testing.assert_allclose(gpuad.vjp(f, x)[0], np.sort(x * np.arange(1.0, 5.0), axis=0) * 2)
    check_grads(f, [x], order=2, modes=("fwd", "rev"))
    with pytest.raises(TypeError, match="gpuad.numpy.sort"):
        gpuad.grad(lambda x: gnp.sum(x.sort()))(x)
    t = gpuad.tensor(M.astype(np.float32))
    assert t.nbytes == 48 and t.itemsize == 4


def test_leaf_tensors_outside_a_transform_give_numpy_values():
    """A gpuad.tensor used outside any transform computes plain intermediates; the compositions must not pass
    None for NumPy's keyword defaults (numpy.sum(x, where=None) is 0)."""
    t = gpuad.tensor(M)
    for name, extra in (("var", ()), ("std", ()), ("nanvar", ()), ("nanstd", ()), ("nanmean", ()), ("nansum", ()),
                        ("nanmax", ()), ("median", ()), ("quantile", (0.3,)), ("cov", ()), ("corrcoef", ()),
                        ("trapezoid", ()), ("gradient", ())):
        np.testing.assert_allclose(getattr(gnp, name)(t, *extra), getattr(np, name)(M, *extra), rtol=1e-13,
                                   err_msg=name)


def test_numpy_functions_on_traced_values_reach_gpuad():
    f = lambda x: np.median(x) + np.nanmean(x) + np.trapezoid(x[0]) + np.sum(np.linalg.eigvals(x[:, :3]))  # noqa
    check_grads(f, [M], order=2, modes=("fwd", "rev"))
    np.testing.assert_allclose(gpuad.vjp(f, M)[0], f(M), rtol=1e-12)


def test_constants_that_carry_no_derivative_refuse_tensors():
    t = gpuad.tensor(np.array(0.5))
    with gpuad.Tape():
        with pytest.raises(TypeError, match="traced q"):
            gnp.quantile(gpuad.tensor(M), t)
        with pytest.raises(TypeError, match="spacing"):
            gnp.gradient(gpuad.tensor(M), t, 1.0)
        with pytest.raises(TypeError, match="end_values"):
            gnp.pad(gpuad.tensor(M), 1, mode="linear_ramp", end_values=t)


@pytest.mark.parametrize("name,call", [
    ("median", lambda m, x: m.median(x, axis=0)), ("quantile", lambda m, x: m.quantile(x, 0.3, axis=1)),
    ("nanmean", lambda m, x: m.nanmean(x, axis=0)), ("nanstd", lambda m, x: m.nanstd(x)),
    ("trapezoid", lambda m, x: m.trapezoid(x)), ("interp", lambda m, x: m.interp(x, XP, FP)),
    ("gradient", lambda m, x: m.gradient(x, axis=1)), ("cov", lambda m, x: m.cov(x)),
])
def test_float32_values_and_gradients(name, call):
    x = M.astype(np.float32)
    out, vjp_fn = gpuad.vjp(lambda x: call(gnp, x), x)
    want = call(np, x)
    assert out.dtype == want.dtype
    np.testing.assert_allclose(out, want, rtol=1e-5)
    (g,) = vjp_fn(np.ones_like(want))
    assert g.dtype == np.float32
