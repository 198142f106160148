"""Shape, selection and indexing functions of gpuad.numpy: each case is run traced against NumPy's own function
(forward values), checked to second order in both modes (float64), and bad input is checked to raise NumPy's
error (or a clear one where gpuad differs)."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

RNG = np.random.default_rng(0)
S = RNG.standard_normal(())          # scalar
V = RNG.standard_normal(7)           # vector
M = RNG.standard_normal((4, 6))      # matrix
T = RNG.standard_normal((2, 3, 4))   # 3-d
W = RNG.standard_normal(6)           # a second vector (joins)
N = RNG.standard_normal((4, 6))      # a second matrix

# (id, function of (xp, *arrays) run with xp=numpy for the reference and xp=gpuad.numpy traced, arrays)
CASES = [
    ("atleast_1d-scalar", lambda xp, x: xp.atleast_1d(x), [S]),
    ("atleast_1d-vector", lambda xp, x: xp.atleast_1d(x), [V]),
    ("atleast_2d-scalar", lambda xp, x: xp.atleast_2d(x), [S]),
    ("atleast_2d-vector", lambda xp, x: xp.atleast_2d(x), [V]),
    ("atleast_2d-two", lambda xp, x, y: xp.atleast_2d(x, y), [V, M]),
    ("atleast_3d-scalar", lambda xp, x: xp.atleast_3d(x), [S]),
    ("atleast_3d-vector", lambda xp, x: xp.atleast_3d(x), [V]),
    ("atleast_3d-matrix", lambda xp, x: xp.atleast_3d(x), [M]),
    ("split-sections", lambda xp, x: xp.split(x, 2), [M]),
    ("split-indices-axis1", lambda xp, x: xp.split(x, [1, 4, 9], axis=1), [M]),
    ("split-negative-axis", lambda xp, x: xp.split(x, 3, axis=-1), [M]),
    ("array_split-uneven", lambda xp, x: xp.array_split(x, 3), [V]),
    ("array_split-more-than-n", lambda xp, x: xp.array_split(x, 9), [V]),
    ("hsplit-matrix", lambda xp, x: xp.hsplit(x, 3), [M]),
    ("hsplit-vector", lambda xp, x: xp.hsplit(x, [2, 5]), [V]),
    ("vsplit", lambda xp, x: xp.vsplit(x, [1]), [M]),
    ("dsplit", lambda xp, x: xp.dsplit(x, 2), [T]),
    ("vstack-vectors", lambda xp, x, y: xp.vstack([x, y]), [W, W[::-1].copy()]),
    ("vstack-mixed", lambda xp, x, y: xp.vstack((x, y)), [W, M]),
    ("hstack-vectors", lambda xp, x, y: xp.hstack([x, y]), [V, W]),
    ("hstack-matrices", lambda xp, x, y: xp.hstack([x, y]), [M, N]),
    ("hstack-scalars", lambda xp, x, y: xp.hstack([x, y]), [S, S + 1]),
    ("dstack", lambda xp, x, y: xp.dstack([x, y]), [M, N]),
    ("dstack-vectors", lambda xp, x, y: xp.dstack([x, y]), [W, W + 1]),
    ("column_stack", lambda xp, x, y: xp.column_stack([x, y]), [M[:, 0].copy(), N]),
    ("append-flat", lambda xp, x, y: xp.append(x, y), [M, V]),
    ("append-axis0", lambda xp, x, y: xp.append(x, y, axis=0), [M, N]),
    ("tile-int", lambda xp, x: xp.tile(x, 3), [V]),
    ("tile-tuple", lambda xp, x: xp.tile(x, (2, 1, 3)), [M]),
    ("tile-short-reps", lambda xp, x: xp.tile(x, 2), [M]),
    ("tile-scalar", lambda xp, x: xp.tile(x, (2, 2)), [S]),
    ("tile-zero", lambda xp, x: xp.tile(x, (0, 2)), [M]),
    ("repeat-flat", lambda xp, x: xp.repeat(x, 2), [M]),
    ("repeat-axis1", lambda xp, x: xp.repeat(x, 3, axis=1), [M]),
    ("repeat-per-element", lambda xp, x: xp.repeat(x, [1, 0, 2, 3], axis=0), [M]),
    ("repeat-per-element-flat", lambda xp, x: xp.repeat(x, [2, 0, 1, 1, 3, 1, 1]), [V]),
    ("repeat-size1-array", lambda xp, x: xp.repeat(x, np.array([2]), axis=-1), [T]),
    ("repeat-scalar", lambda xp, x: xp.repeat(x, 4), [S]),
    ("flip-all", lambda xp, x: xp.flip(x), [T]),
    ("flip-axis", lambda xp, x: xp.flip(x, 1), [T]),
    ("flip-axes", lambda xp, x: xp.flip(x, (0, -1)), [T]),
    ("flip-scalar", lambda xp, x: xp.flip(x), [S]),
    ("fliplr", lambda xp, x: xp.fliplr(x), [M]),
    ("flipud", lambda xp, x: xp.flipud(x), [V]),
    ("roll-vector", lambda xp, x: xp.roll(x, 3), [V]),
    ("roll-negative-large", lambda xp, x: xp.roll(x, -15), [V]),
    ("roll-flat-matrix", lambda xp, x: xp.roll(x, 5), [M]),
    ("roll-axis", lambda xp, x: xp.roll(x, 2, axis=1), [M]),
    ("roll-axes", lambda xp, x: xp.roll(x, (1, -1, 2), axis=(0, 2, 0)), [T]),
    ("roll-zero", lambda xp, x: xp.roll(x, 6, axis=1), [M]),
    ("rot90", lambda xp, x: xp.rot90(x), [M]),
    ("rot90-k2", lambda xp, x: xp.rot90(x, 2), [M]),
    ("rot90-k3", lambda xp, x: xp.rot90(x, 3), [M]),
    ("rot90-negative", lambda xp, x: xp.rot90(x, -1, axes=(1, 0)), [M]),
    ("rot90-3d", lambda xp, x: xp.rot90(x, 1, axes=(0, 2)), [T]),
    ("pad-constant", lambda xp, x: xp.pad(x, 2), [V]),
    ("pad-constant-pairs", lambda xp, x: xp.pad(x, ((1, 2), (0, 3)), constant_values=1.5), [M]),
    ("pad-constant-per-axis", lambda xp, x: xp.pad(x, (1, 2), constant_values=((1, 2), (3, 4))), [M]),
    ("pad-edge", lambda xp, x: xp.pad(x, ((2, 1), (3, 0)), mode="edge"), [M]),
    ("pad-reflect", lambda xp, x: xp.pad(x, (2, 3), mode="reflect"), [M]),
    ("pad-reflect-wide", lambda xp, x: xp.pad(x, 9, mode="reflect"), [V]),
    ("pad-symmetric", lambda xp, x: xp.pad(x, 5, mode="symmetric"), [V]),
    ("pad-wrap", lambda xp, x: xp.pad(x, ((1, 1), (0, 7)), mode="wrap"), [M]),
    ("pad-3d", lambda xp, x: xp.pad(x, ((0, 0), (1, 1), (2, 0)), mode="edge"), [T]),
    ("diff", lambda xp, x: xp.diff(x), [V]),
    ("diff-n2-axis0", lambda xp, x: xp.diff(x, 2, axis=0), [M]),
    ("diff-n0", lambda xp, x: xp.diff(x, 0), [M]),
    ("diff-prepend-append", lambda xp, x: xp.diff(x, prepend=0.5, append=np.ones((4, 2))), [M]),
    ("diff-traced-prepend", lambda xp, x, y: xp.diff(x, axis=0, prepend=y), [M, N[:1].copy()]),
    ("sort-vector", lambda xp, x: xp.sort(x), [V]),
    ("sort-axis0", lambda xp, x: xp.sort(x, axis=0), [M]),
    ("sort-none", lambda xp, x: xp.sort(x, axis=None), [T]),
    ("sort-stable", lambda xp, x: xp.sort(x, kind="stable"), [M]),
    ("partition", lambda xp, x: xp.partition(x, 3)[3], [V]),
    ("partition-axis0", lambda xp, x: xp.partition(x, (0, 3), axis=0)[[0, 3]], [M]),
    ("take-flat", lambda xp, x: xp.take(x, [0, 5, 5, -1]), [M]),
    ("take-axis", lambda xp, x: xp.take(x, [[2, 0], [1, 1]], axis=1), [M]),
    ("take-scalar-index", lambda xp, x: xp.take(x, 3, axis=-1), [T]),
    ("take-wrap", lambda xp, x: xp.take(x, [7, -9, 2], mode="wrap"), [V]),
    ("take-clip", lambda xp, x: xp.take(x, [7, -9, 2], axis=1, mode="clip"), [M]),
    ("take_along_axis-sorting", lambda xp, x: xp.take_along_axis(x, np.argsort(M, axis=1), axis=1), [M]),
    ("take_along_axis-axis0", lambda xp, x: xp.take_along_axis(x, np.array([[0, 3, 3, 1, 2, 0]]), 0), [M]),
    ("take_along_axis-negative", lambda xp, x: xp.take_along_axis(x, np.array([[-1], [0], [-6], [2]]), 1), [M]),
    ("take_along_axis-none", lambda xp, x: xp.take_along_axis(x, np.array([5, 0, 23]), None), [M]),
    ("take_along_axis-broadcast", lambda xp, x: xp.take_along_axis(x, np.array([[[1]], [[3]]]), 2), [T]),
    ("select", lambda xp, x, y: xp.select([M > 0.5, M < -0.5], [x, y], 0.25), [M, N]),
    ("select-broadcast", lambda xp, x, y: xp.select([V > 0], [x], y), [V, S]),
    ("select-lists", lambda xp, x: xp.select([[True, False, True], M[0, :3] > 0], [x, [1.0, 2.0, 3.0]]), [V[:3]]),
    ("tile-0d-array-reps", lambda xp, x: xp.tile(x, np.array(2)), [M]),
    ("full_like-traced-fill", lambda xp, x, y: xp.full_like(x, y) * x, [M, S]),
    ("ravel", lambda xp, x: xp.ravel(x), [T]),
    ("swapaxes", lambda xp, x: xp.swapaxes(x, 0, -1), [T]),
    ("moveaxis", lambda xp, x: xp.moveaxis(x, 0, -1), [T]),
    ("moveaxis-many", lambda xp, x: xp.moveaxis(x, (0, 1), (2, 0)), [T]),
    ("expand_dims", lambda xp, x: xp.expand_dims(x, (0, -1)), [M]),
    ("expand_dims-middle", lambda xp, x: xp.expand_dims(x, 1), [V]),
    ("squeeze", lambda xp, x: xp.squeeze(x), [M[None, :, None, :1].copy()]),
    ("squeeze-axis", lambda xp, x: xp.squeeze(x, (0, 2)), [M[None, :, None, :1].copy()]),
]
IDS = [c[0] for c in CASES]


def traced_value(fn, args):
    return gpuad.vjp(lambda *a: fn(gnp, *a), *args)[0]


def assert_same(actual, expected):
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same(a, e)
        return
    assert not isinstance(actual, gpuad.Tensor)
    assert np.shape(actual) == np.shape(expected) and np.asarray(actual).dtype == np.asarray(expected).dtype
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy(case):
    _, fn, args = case
    assert_same(traced_value(fn, args), fn(np, *args))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients(case):
    _, fn, args = case
    check_grads(lambda *a: fn(gnp, *a), args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("case", [c for c in CASES if not c[0].startswith("full_like")],
                         ids=[i for i in IDS if not i.startswith("full_like")])
def test_float32_gradients_stay_float32(case):
    _, fn, args = case
    args32 = [a.astype(np.float32) for a in args]
    grads = gpuad.grad(lambda *a: sum(gnp.sum(o) for o in _leaves(fn(gnp, *a))),
                       argnums=tuple(range(len(args))))(*args32)
    for g, a in zip(grads, args32):
        assert g.dtype == np.float32 and g.shape == a.shape


def _leaves(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def test_mixed_dtype_join_keeps_each_gradient_dtype():
    g32, g64 = gpuad.grad(lambda a, b: gnp.sum(gnp.hstack([a, b]) ** 2), argnums=(0, 1))(
        np.ones(3, np.float32), np.ones(2))
    assert g32.dtype == np.float32 and g64.dtype == np.float64


def test_astype():
    x32 = RNG.standard_normal(5).astype(np.float32)
    out, vjp_fn = gpuad.vjp(lambda t: gnp.astype(t, np.float64), x32)
    assert out.dtype == np.float64 and np.array_equal(out, x32.astype(np.float64))
    (g,) = vjp_fn(np.arange(5.0))
    assert g.dtype == np.float32 and np.array_equal(g, np.arange(5.0, dtype=np.float32))
    assert gpuad.grad(lambda t: gnp.astype(t, np.float64))(np.float32(1.5)).dtype == np.float32
    # through an integer the value is piecewise constant: zero derivative
    np.testing.assert_array_equal(gpuad.grad(lambda t: gnp.sum(gnp.astype(gnp.astype(t, int), float) * t))(
        np.array([1.5, -2.5])), [1.0, -2.0])
    check_grads(lambda t: gnp.astype(t, np.float64) * gnp.astype(t * 2, np.float64), [V])


def test_sort_gradient_follows_the_permutation():
    x = np.array([3.0, 1.0, 2.0])
    g = gpuad.grad(lambda t: gnp.sum(gnp.sort(t) * np.array([1.0, 10.0, 100.0])))(x)
    np.testing.assert_array_equal(g, [100.0, 1.0, 10.0])


def test_repeat_and_tile_gradients_count_copies():
    np.testing.assert_array_equal(gpuad.grad(lambda t: gnp.sum(gnp.repeat(t, [3, 0, 1])))(np.ones(3)), [3, 0, 1])
    np.testing.assert_array_equal(gpuad.grad(lambda t: gnp.sum(gnp.tile(t, (2, 3))))(np.ones(2)), [6, 6])
    np.testing.assert_array_equal(gpuad.grad(lambda t: gnp.sum(gnp.pad(t, 2, mode="edge")))(np.ones(3)), [3, 1, 3])


def test_pad_traced_constant_values():
    x, c = RNG.standard_normal((2, 3)), np.float64(0.7)
    out = traced_value(lambda xp, a, b: xp.pad(a, 1, constant_values=b), [x, c])
    np.testing.assert_array_equal(out, np.pad(x, 1, constant_values=c))
    assert gpuad.grad(lambda b: gnp.sum(gnp.pad(x, 1, constant_values=b)))(c) == 4 * 5 - 6
    check_grads(lambda a, b: gnp.pad(a, ((0, 1), (2, 0)), constant_values=b), [x, c])


# ---- indexing ---------------------------------------------------------------------------------------------------

X = RNG.standard_normal((3, 4, 5))
INDEX_CASES = [
    ("int", 1), ("negative", -1), ("negative-tuple", (-1, 2, -3)), ("slice-step", (slice(None, None, -2), 1)),
    ("ellipsis", (Ellipsis, 2)), ("none", (None, 1, Ellipsis, None)), ("empty-tuple", ()),
    ("mask-3d", X > 0), ("mask-2d", X[:, :, 0] > 0), ("mask-middle", (slice(None), X[0, :, 0] > 0)),
    ("mask-with-slices", (slice(1, None), X[0, :, 0] > 0, slice(None, None, 2))),
    ("list-columns", (slice(None), [0, 2])), ("repeats", [0, 0, 1]), ("repeats-negative", [-1, 2, -1, -1]),
    ("separated-advanced", ([0, 2], slice(None), [1, 3])), ("adjacent-advanced", (slice(None), [0, 3], [4, 4])),
    ("broadcast-advanced", (np.array([[0], [2]]), slice(None), np.array([1, 1, 3]))),
    ("advanced-ellipsis", (Ellipsis, [0, 0, 4])), ("int-array-0d", np.array(2)), ("numpy-int", np.int64(1)),
    ("bool-scalar", True), ("advanced-and-int", (np.array([1, 1]), 2)),
]


@pytest.mark.parametrize("index", [c[1] for c in INDEX_CASES], ids=[c[0] for c in INDEX_CASES])
def test_indexing(index):
    np.testing.assert_array_equal(gpuad.vjp(lambda t: t[index], X)[0], X[index])
    check_grads(lambda t: t[index], (X,), order=2, modes=("fwd", "rev"))


def test_indexing_with_a_traced_integer_index_and_repeats_accumulate():
    idx = gpuad.tensor(np.array([1, 1, 0]))
    g = gpuad.grad(lambda t: gnp.sum(t[idx]))(np.zeros(3))
    np.testing.assert_array_equal(g, [1.0, 2.0, 0.0])


def at(t):
    """``t.at`` for traced arrays and plain ones alike (check_grads also calls the function on plain arrays)."""
    return (t if isinstance(t, gpuad.Tensor) else gpuad.tensor(t)).at


AT_CASES = [
    ("set-rows", lambda t, v: at(t)[[0, 2]].set(v), (3, 4), (2, 4)),
    ("set-broadcast", lambda t, v: at(t)[:, 1].set(v), (3, 4), ()),
    ("set-repeated-last-wins", lambda t, v: at(t)[[0, 2, 0]].set(v), (3, 4), (3, 4)),
    ("set-mask", lambda t, v: at(t)[M[:3, :4] > 0].set(v), (3, 4), ()),
    ("add-repeated-accumulates", lambda t, v: at(t)[[0, 0, 1]].add(v), (3, 4), (3, 4)),
    ("add-slices", lambda t, v: at(t)[1:, ::2].add(v), (3, 4), (2,)),
    ("get", lambda t, v: at(t)[[2, 2]].get() * v, (3, 4), ()),
]


@pytest.mark.parametrize("case", AT_CASES, ids=[c[0] for c in AT_CASES])
def test_at_updates(case):
    _, fn, xshape, vshape = case
    x, v = RNG.standard_normal(xshape), RNG.standard_normal(vshape)
    check_grads(fn, (x, v), order=2, modes=("fwd", "rev"))


def test_at_matches_numpy_assignment():
    x, v = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    expected = x.copy()
    expected[[0, 2, 0]] = v
    np.testing.assert_array_equal(gpuad.vjp(lambda t, w: t.at[[0, 2, 0]].set(w), x, v)[0], expected)
    expected = x.copy()
    np.add.at(expected, [0, 0, 1], v)
    np.testing.assert_allclose(gpuad.vjp(lambda t, w: t.at[[0, 0, 1]].add(w), x, v)[0], expected, rtol=1e-15)
    # repeated index, last write wins: only the last row of v reaches the output
    gv = gpuad.grad(lambda w: gnp.sum(gpuad.tensor(x).at[[0, 2, 0]].set(w)))(v)
    np.testing.assert_array_equal(gv, np.array([[0.0] * 4, [1.0] * 4, [1.0] * 4]))
    gx = gpuad.grad(lambda t: gnp.sum(t.at[[0, 2, 0]].set(v)))(x)
    np.testing.assert_array_equal(gx, np.array([[0.0] * 4, [1.0] * 4, [0.0] * 4]))


def test_at_keeps_the_array_dtype_and_handles_inf():
    x = np.ones((2, 3), np.float32)
    out, vjp_fn = gpuad.vjp(lambda t: t.at[0].set(np.arange(3.0)), x)
    assert out.dtype == np.float32 and vjp_fn(np.ones((2, 3), np.float32))[0].dtype == np.float32
    y = np.array([np.inf, 1.0])
    assert np.array_equal(gpuad.vjp(lambda t: t.at[0].set(2.0), y)[0], [2.0, 1.0])


def test_assigning_into_a_traced_array_names_the_alternatives():
    def f(t):
        t[0] = 1.0
        return gnp.sum(t)
    with pytest.raises(TypeError, match=r"t\.at\[i\]\.set\(v\).*t\.at\[i\]\.add\(v\)|where"):
        gpuad.grad(f)(np.ones(3))
    with pytest.raises(TypeError) as info:
        gpuad.grad(f)(np.ones(3))
    assert "t.at[i].set(v)" in str(info.value) and "where" in str(info.value)


# ---- bad input --------------------------------------------------------------------------------------------------

def traced(a):
    return gpuad.tensor(np.asarray(a, dtype=float))


ERRORS = [
    ("split-unequal", lambda: gnp.split(traced(V), 2), ValueError, "equal division"),
    ("array_split-zero", lambda: gnp.array_split(traced(V), 0), ValueError, "larger than 0"),
    ("hsplit-0d", lambda: gnp.hsplit(traced(S), 2), ValueError, "1 or more dimensions"),
    ("vsplit-1d", lambda: gnp.vsplit(traced(V), 1), ValueError, "2 or more dimensions"),
    ("dsplit-2d", lambda: gnp.dsplit(traced(M), 1), ValueError, "3 or more dimensions"),
    ("split-axis", lambda: gnp.split(traced(M), 2, axis=2), np.exceptions.AxisError, "out of bounds"),
    ("append-ndim", lambda: gnp.append(traced(M), V, axis=0), ValueError, "same number of dimensions"),
    ("tile-negative", lambda: gnp.tile(traced(V), -1), ValueError, "negative dimensions"),
    ("repeat-negative", lambda: gnp.repeat(traced(V), -1), ValueError, "negative dimensions"),
    ("repeat-negative-counts", lambda: gnp.repeat(traced(M), [1, -1, 0, 2], axis=0), ValueError, "negative"),
    ("repeat-length", lambda: gnp.repeat(traced(M), [1, 2], axis=0), ValueError, "could not be broadcast"),
    ("repeat-float", lambda: gnp.repeat(traced(V), 2.5), TypeError, "safe"),
    ("flip-repeated-axis", lambda: gnp.flip(traced(M), (0, 0)), ValueError, "repeated axis"),
    ("fliplr-1d", lambda: gnp.fliplr(traced(V)), ValueError, ">= 2-d"),
    ("flipud-0d", lambda: gnp.flipud(traced(S)), ValueError, ">= 1-d"),
    ("roll-axis", lambda: gnp.roll(traced(M), 1, axis=2), np.exceptions.AxisError, "out of bounds"),
    ("roll-2d-shift", lambda: gnp.roll(traced(M), [[1, 1]], axis=[0, 1]), ValueError, "1D sequences"),
    ("rot90-same-axes", lambda: gnp.rot90(traced(M), 1, (0, 0)), ValueError, "must be different"),
    ("rot90-axes-len", lambda: gnp.rot90(traced(M), 1, (0,)), ValueError, "len\\(axes\\) must be 2"),
    ("rot90-axes-range", lambda: gnp.rot90(traced(M), 1, (0, 5)), ValueError, "out of range"),
    ("pad-negative", lambda: gnp.pad(traced(M), -1), ValueError, "negative"),
    ("pad-float-width", lambda: gnp.pad(traced(M), 1.5), TypeError, "integral"),
    ("pad-width-shape", lambda: gnp.pad(traced(M), ((1, 2), (1, 2), (1, 1))), ValueError, "broadcast"),
    ("pad-unknown-mode", lambda: gnp.pad(traced(M), 1, mode="bogus"), ValueError, "not supported"),
    ("pad-empty-mode", lambda: gnp.pad(traced(M), 1, mode="empty"), NotImplementedError, "linear_ramp"),
    ("pad-bad-keyword", lambda: gnp.pad(traced(M), 1, mode="edge", constant_values=3), ValueError, "unsupported"),
    ("pad-odd", lambda: gnp.pad(traced(M), 1, mode="reflect", reflect_type="odd"), NotImplementedError, "even"),
    ("pad-empty-axis", lambda: gnp.pad(traced(np.zeros((0, 3))), 1, mode="reflect"), ValueError, "empty axis"),
    ("diff-0d", lambda: gnp.diff(traced(S)), ValueError, "at least one dimensional"),
    ("diff-negative", lambda: gnp.diff(traced(V), -1), ValueError, "non-negative"),
    ("sort-order", lambda: gnp.sort(traced(V), order="x"), NotImplementedError, "order"),
    ("sort-0d", lambda: gnp.sort(traced(S)), np.exceptions.AxisError, "out of bounds"),
    ("partition-kth", lambda: gnp.partition(traced(V), 9), ValueError, "out of bounds"),
    ("take-out-of-range", lambda: gnp.take(traced(M), [0, 5], axis=0), IndexError, "out of bounds"),
    ("take-float-index", lambda: gnp.take(traced(V), [1.5]), TypeError, "safe"),
    ("take-mode", lambda: gnp.take(traced(V), [1], mode="bogus"), ValueError, "clipmode"),
    ("take-out", lambda: gnp.take(traced(V), [1], out=np.zeros(1)), TypeError, "out="),
    ("take_along-float", lambda: gnp.take_along_axis(traced(M), np.zeros((4, 1)), 1), IndexError, "integer"),
    ("take_along-ndim", lambda: gnp.take_along_axis(traced(M), np.zeros(3, int), 1), ValueError, "dimensions"),
    ("take_along-none", lambda: gnp.take_along_axis(traced(M), np.zeros((3, 2), int), None), ValueError,
     "single dimension"),
    ("take_along-range", lambda: gnp.take_along_axis(traced(M), np.full((4, 1), 6), 1), IndexError,
     "out of bounds"),
    ("take_along-range-negative", lambda: gnp.take_along_axis(traced(M), np.full((1, 1), -5), 0), IndexError,
     "out of bounds"),
    ("select-lengths", lambda: gnp.select([M > 0], [traced(M), M]), ValueError, "same length"),
    ("select-empty", lambda: gnp.select([], [], default=traced(S)), ValueError, "empty condition list"),
    ("select-not-bool", lambda: gnp.select([M], [traced(M)]), TypeError, "invalid entry 0"),
    ("transpose-axes", lambda: gnp.transpose(traced(M), (0, 5)), np.exceptions.AxisError, "out of bounds"),
    ("transpose-repeated", lambda: gnp.transpose(traced(M), (0, 0)), ValueError, "repeated axis"),
    ("swapaxes-axis", lambda: gnp.swapaxes(traced(M), 0, 3), np.exceptions.AxisError, "out of bounds"),
    ("moveaxis-lengths", lambda: gnp.moveaxis(traced(M), 0, (0, 1)), ValueError, "same number of elements"),
    ("moveaxis-repeated", lambda: gnp.moveaxis(traced(M), (0, 0), (0, 1)), ValueError, "repeated axis"),
    ("moveaxis-range", lambda: gnp.moveaxis(traced(M), 3, 0), np.exceptions.AxisError, "out of bounds"),
    ("expand_dims-repeated", lambda: gnp.expand_dims(traced(M), (0, 0)), ValueError, "repeated axis"),
    ("expand_dims-range", lambda: gnp.expand_dims(traced(M), 4), np.exceptions.AxisError, "out of bounds"),
    ("squeeze-size", lambda: gnp.squeeze(traced(M), 0), ValueError, "size not equal to one"),
    ("reshape-size", lambda: gnp.reshape(traced(M), (5, 5)), ValueError, "cannot reshape"),
    ("index-out-of-range", lambda: traced(M)[4], IndexError, "out of bounds"),
    ("index-mask-shape", lambda: traced(M)[np.ones(3, bool)], IndexError, "boolean index"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_input_raises(case):
    _, call, error, match = case
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("case", [c for c in CASES if not c[0].startswith("full_like")],
                         ids=[i for i in IDS if not i.startswith("full_like")])
def test_numpy_functions_on_traced_values_dispatch_here(case):
    """``numpy.f(traced)`` reaches ``gpuad.numpy.f`` through ``__array_function__``: same values, same
    derivatives. (``numpy.full_like`` does not dispatch on its fill value: use ``gpuad.numpy.full_like``.)"""
    _, fn, args = case
    assert_same(gpuad.vjp(lambda *a: fn(np, *a), *args)[0], fn(np, *args))
    check_grads(lambda *a: fn(np, *a), args, order=1, modes=("rev",))
