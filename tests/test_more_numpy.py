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
