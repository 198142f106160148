"""gpuad.nn: forward values against plain NumPy formulas, derivatives to second order in both modes, numerical
stability (no overflow, no NaN) for logits of +-1e4 in the value and in first and second derivatives, the
conventions at 0, cross-entropy's two label forms and reductions, bad input, and the NaN trap of ``where``."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import nn
from gpuad.testing import check_grads

RNG = np.random.default_rng(0)
V = RNG.standard_normal(5)
M = RNG.standard_normal((3, 4))
T = RNG.standard_normal((2, 3, 4))
B = RNG.uniform(0.5, 2.0, (3, 4))
LABELS = np.array([2, 0, 3])
PROBS = RNG.dirichlet(np.ones(4), size=3)


def np_logsumexp(x, axis=None, keepdims=False, b=1.0):
    return np.log(np.sum(b * np.exp(x), axis=axis, keepdims=keepdims))


def np_softmax(x, axis=-1):
    return np.exp(x) / np.sum(np.exp(x), axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis, keepdims=True)


# (id, gpuad function, NumPy reference written naively (fine for these moderate inputs), arguments)
CASES = [
    ("logsumexp-vector", lambda x: nn.logsumexp(x), np_logsumexp, [V]),
    ("logsumexp-scalar", lambda x: nn.logsumexp(x), np_logsumexp, [V[0]]),
    ("logsumexp-axis0", lambda x: nn.logsumexp(x, 0), lambda x: np_logsumexp(x, 0), [M]),
    ("logsumexp-axis1-keepdims", lambda x: nn.logsumexp(x, 1, keepdims=True),
     lambda x: np_logsumexp(x, 1, keepdims=True), [M]),
    ("logsumexp-axes", lambda x: nn.logsumexp(x, (0, 2)), lambda x: np_logsumexp(x, (0, 2)), [T]),
    ("logsumexp-none-keepdims", lambda x: nn.logsumexp(x, keepdims=True),
     lambda x: np_logsumexp(x, keepdims=True), [T]),
    ("logsumexp-b", lambda x, b: nn.logsumexp(x, 1, b=b), lambda x, b: np_logsumexp(x, 1, b=b), [M, B]),
    ("logsumexp-b-broadcast", lambda x, b: nn.logsumexp(x, -1, b=b), lambda x, b: np_logsumexp(x * np.ones((3, 1)),
                                                                                             -1, b=b), [V[:4], B]),
    ("softmax-vector", nn.softmax, np_softmax, [V]),
    ("softmax-axis0", lambda x: nn.softmax(x, 0), lambda x: np_softmax(x, 0), [M]),
    ("softmax-3d", nn.softmax, np_softmax, [T]),
    ("softmax-axes", lambda x: nn.softmax(x, (1, 2)), lambda x: np_softmax(x, (1, 2)), [T]),
    ("log_softmax-vector", nn.log_softmax, np_log_softmax, [V]),
    ("log_softmax-axis0", lambda x: nn.log_softmax(x, 0), lambda x: np_log_softmax(x, 0), [M]),
    ("sigmoid-scalar", nn.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [V[1]]),
    ("sigmoid-matrix", nn.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [M]),
    ("log_sigmoid", nn.log_sigmoid, lambda x: np.log(1 / (1 + np.exp(-x))), [M]),
    ("relu", nn.relu, lambda x: np.maximum(x, 0), [M]),
    ("softplus", nn.softplus, lambda x: np.log1p(np.exp(x)), [T]),
    ("xent-int", lambda x: nn.softmax_cross_entropy(x, LABELS),
     lambda x: -np.mean(np_log_softmax(x)[np.arange(3), LABELS]), [M]),
    ("xent-int-sum", lambda x: nn.softmax_cross_entropy(x, LABELS, reduction="sum"),
     lambda x: -np.sum(np_log_softmax(x)[np.arange(3), LABELS]), [M]),
    ("xent-int-none-axis0", lambda x: nn.softmax_cross_entropy(x.T, LABELS, axis=0, reduction="none"),
     lambda x: -np_log_softmax(x)[np.arange(3), LABELS], [M]),
    ("xent-int-3d", lambda x: nn.softmax_cross_entropy(x, np.array([[0, 1, 3], [2, 2, 0]])),
     lambda x: -np.mean(np.take_along_axis(np_log_softmax(x), np.array([[0, 1, 3], [2, 2, 0]])[..., None], -1)),
     [T]),
    ("xent-int-1d", lambda x: nn.softmax_cross_entropy(x, 3), lambda x: -np_log_softmax(x)[3], [V]),
    ("xent-probs", lambda x: nn.softmax_cross_entropy(x, PROBS),
     lambda x: -np.mean(np.sum(PROBS * np_log_softmax(x), -1)), [M]),
    ("xent-probs-traced", lambda x, p: nn.softmax_cross_entropy(x, p, reduction="none"),
     lambda x, p: -np.sum(p * np_log_softmax(x), -1), [M, PROBS]),
    ("xent-probs-broadcast", lambda x: nn.softmax_cross_entropy(x, PROBS[0], reduction="sum"),
     lambda x: -np.sum(PROBS[0] * np_log_softmax(x)), [M]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy(case):
    _, fn, reference, args = case
    expected = reference(*args)
    traced = gpuad.vjp(fn, *args)[0]
    np.testing.assert_allclose(traced, expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(fn(*args), expected, rtol=1e-13, atol=1e-15)  # plain arrays in, plain out
    assert np.shape(traced) == np.shape(expected)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients(case):
    _, fn, _, args = case
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32(case):
    _, fn, _, args = case
    args32 = [np.asarray(a, np.float32) for a in args]
    out = gpuad.vjp(fn, *args32)[0]
    grads = gpuad.grad(lambda *a: gnp.sum(fn(*a)), argnums=tuple(range(len(args))))(*args32)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)


# ---- stability: huge logits, values and derivatives to second order, forward and reverse ----------------------

HUGE = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4 + 1, -1e4], [1e4, 1e4, 1e4 - 2, -1e4]])
STABLE = [
    ("logsumexp", lambda x: nn.logsumexp(x, axis=1)),
    ("logsumexp-all", lambda x: nn.logsumexp(x)),
    ("softmax", nn.softmax),
    ("log_softmax", nn.log_softmax),
    ("sigmoid", nn.sigmoid),
    ("log_sigmoid", nn.log_sigmoid),
    ("softplus", nn.softplus),
    ("relu", lambda x: nn.relu(x + 0.5)),  # away from the kink at 0, where central differences disagree
    ("xent-int", lambda x: nn.softmax_cross_entropy(x, np.array([1, 2, 3]))),
    ("xent-probs", lambda x: nn.softmax_cross_entropy(x, np.array([[0, .5, .5, 0], [1, 0, 0, 0], [0, 0, 0, 1.]]))),
]


@pytest.mark.parametrize("case", STABLE, ids=[c[0] for c in STABLE])
def test_huge_logits_are_stable_to_second_order(case):
    _, fn = case
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # any overflow or NaN raises
        out, vjp_fn = gpuad.vjp(fn, HUGE)
        (g,) = vjp_fn(np.ones_like(out))
        hvp = gpuad.jvp(lambda x: gpuad.vjp(fn, x)[1](np.ones_like(out))[0], (HUGE,), (np.ones_like(HUGE),))[1]
        check_grads(fn, (HUGE,), order=2, modes=("fwd", "rev"))
    for value in (out, g, hvp):
        assert np.all(np.isfinite(value))


def test_huge_logits_exact_values():
    x = np.array([1e4, -1e4, 0.0])
    assert nn.logsumexp(x) == 1e4 and nn.logsumexp(-x) == 1e4
    np.testing.assert_array_equal(gpuad.grad(nn.logsumexp)(x), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(nn.log_softmax(x), [0.0, -2e4, -1e4])
    np.testing.assert_array_equal(nn.sigmoid(np.array([1e4, -1e4])), [1.0, 0.0])
    np.testing.assert_array_equal(nn.softplus(np.array([1e4, -1e4])), [1e4, 0.0])
    assert nn.sigmoid(-700.0) == pytest.approx(np.exp(-700.0), rel=1e-14)  # full precision in the tail
    np.testing.assert_allclose(gpuad.grad(lambda t: nn.softmax_cross_entropy(t, 1))(x), [1.0, -1.0, 0.0])


def test_masked_minus_inf_logits():
    x = np.array([[0.5, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]])
    with np.errstate(invalid="raise"):
        p = nn.softmax(x)
        loss, g = gpuad.value_and_grad(lambda t: nn.softmax_cross_entropy(t, np.array([2, 1])))(x)
        gp = gpuad.grad(lambda t: nn.softmax_cross_entropy(t, np.array([[0.5, 0, 0.5], [0, 1.0, 0]])))(x)
    np.testing.assert_allclose(p, [[1 / (1 + np.e ** 0.5), 0, np.e ** 0.5 / (1 + np.e ** 0.5)], [0, 1, 0]])
    assert np.isfinite(loss) and np.all(np.isfinite(g)) and np.all(np.isfinite(gp))
    np.testing.assert_allclose(g, (p - np.array([[0, 0, 1], [0, 1, 0]])) / 2)


# ---- conventions ------------------------------------------------------------------------------------------------

def second(f):
    return gpuad.grad(gpuad.grad(f))


def test_derivatives_at_zero():
    assert gpuad.grad(nn.relu)(0.0) == 0.0
    assert gpuad.grad(nn.relu)(2.0) == 1.0
    assert gpuad.grad(nn.sigmoid)(0.0) == 0.25 and second(nn.sigmoid)(0.0) == 0.0
    assert gpuad.grad(nn.softplus)(0.0) == 0.5 and second(nn.softplus)(0.0) == 0.25
    assert gpuad.grad(nn.log_sigmoid)(0.0) == 0.5
    assert gpuad.jvp(nn.softplus, (0.0,), (1.0,))[1] == 0.5


def test_cross_entropy_gradient_is_softmax_minus_target():
    g = gpuad.grad(lambda t: nn.softmax_cross_entropy(t, LABELS))(M)
    np.testing.assert_allclose(g, (np_softmax(M) - np.eye(4)[LABELS]) / 3, rtol=1e-12)
    g = gpuad.grad(lambda t: nn.softmax_cross_entropy(t, PROBS, reduction="sum"))(M)
    np.testing.assert_allclose(g, np_softmax(M) - PROBS, rtol=1e-12, atol=1e-15)
    # integer labels and their one-hot probabilities give the same loss
    assert nn.softmax_cross_entropy(M, LABELS) == pytest.approx(nn.softmax_cross_entropy(M, np.eye(4)[LABELS]))


def test_nn_is_exported():
    assert gpuad.nn is nn and "softmax" in nn.__all__


# ---- bad input --------------------------------------------------------------------------------------------------

ERRORS = [
    ("reduction", lambda: nn.softmax_cross_entropy(M, LABELS, reduction="avg"), ValueError, "reduction"),
    ("label-shape", lambda: nn.softmax_cross_entropy(M, np.array([0, 1])), ValueError, r"shape.*\(3,\)"),
    ("label-range", lambda: nn.softmax_cross_entropy(M, np.array([0, 4, 1])), ValueError, r"\[0, 4\)"),
    ("label-negative", lambda: nn.softmax_cross_entropy(M, np.array([0, -1, 1])), ValueError, "range"),
    ("float-indices", lambda: nn.softmax_cross_entropy(M, LABELS.astype(float)), ValueError, "astype\\(int\\)"),
    ("bool-labels", lambda: nn.softmax_cross_entropy(M, M > 0), TypeError, "integer class indices"),
    ("0d-logits", lambda: nn.softmax_cross_entropy(1.0, 0), ValueError, "class axis"),
    ("two-axes", lambda: nn.softmax_cross_entropy(M, LABELS, axis=(0, 1)), ValueError, "one axis"),
    ("bad-axis", lambda: nn.softmax(M, axis=2), np.exceptions.AxisError, "out of bounds"),
    ("empty", lambda: nn.logsumexp(np.zeros((0, 3))), ValueError, "empty"),
    ("positional-b", lambda: nn.logsumexp(M, 1, B), TypeError, "positional"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_input_raises(case):
    _, call, error, match = case
    with pytest.raises(error, match=match):
        call()


# ---- the NaN trap of where (see gpuad.nn's docstring) -----------------------------------------------------------

def test_where_nan_trap_and_the_double_where_fix():
    x = np.array([-1.0, 0.0, 2.0])

    def naive(t):
        return gnp.sum(gnp.where(t > 0, gnp.log(t), 0))

    def double_where(t):
        safe = gnp.where(t > 0, t, 1)
        return gnp.sum(gnp.where(t > 0, gnp.log(safe), 0))

    with np.errstate(divide="ignore", invalid="ignore"):
        assert naive(x) == double_where(x) == np.log(2.0)  # same value...
        g_naive = gpuad.grad(naive)(x)
    assert np.isnan(g_naive[1])  # ...but 0 * (1 / 0) = NaN in the naive gradient at x = 0
    with np.errstate(divide="raise", invalid="raise"):
        g = gpuad.grad(double_where)(x)
        h = gpuad.jvp(gpuad.grad(double_where), (x,), (np.ones(3),))[1]
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.5])
    np.testing.assert_array_equal(h, [0.0, 0.0, -0.25])
