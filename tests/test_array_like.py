"""array_like operands: lists and tuples (nested, holding numbers, arrays or traced values) mean what NumPy reads
them as, differentiably, wherever NumPy accepts an array_like.

Each case is one function of ``(np_, x)`` run twice: with ``numpy`` on plain data (the reference value) and with
``gpuad.numpy`` on a traced ``x``; the traced value must equal NumPy's, and the derivatives are checked by
``check_grads`` (forward mode against central differences, reverse mode by the transpose identity, to second
order, in float64). Non-array parameters (axes, shapes, reps, pad widths, sections, subscripts) keep their
meaning.
"""
import math

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import backend, tree
from gpuad.testing import check_grads

X = np.array([0.3, -1.2, 2.5])
M = np.array([[1.5, -0.4, 0.7], [0.2, 2.0, -1.1], [0.6, 0.3, 1.8]])

# name -> (function of (np_, x), the point x)
CASES = {
    # ---- products: the lists are matrices and vectors, not scalars
    "dot(x, column)": (lambda np_, x: np_.dot(x, [[1.], [2.], [3.]]), X),
    "dot(matrix, x)": (lambda np_, x: np_.dot([[1., 2., 3.], [0., 1., 0.]], x), X),
    "dot(tuple, x)": (lambda np_, x: np_.dot((1., 2., 3.), x), X),
    "inner(x, list)": (lambda np_, x: np_.inner(x, [1., 2., 3.]), X),
    "inner(traced list, x)": (lambda np_, x: np_.inner([x[0], x[1], 2.], x), X),
    "outer": (lambda np_, x: np_.outer(x, [1., -2.]), X),
    "vdot": (lambda np_, x: np_.vdot([1., 2., 3.], x), X),
    "list @ x": (lambda np_, x: [1., 2., 3.] @ x, X),
    "x @ column": (lambda np_, x: x @ [[1.], [2.], [3.]], X),
    "matrix @ x": (lambda np_, x: [[1., 0., 2.], [0., 3., 1.]] @ x, X),
    "matmul(list, x)": (lambda np_, x: np_.matmul([[1., 2., 3.]], x), X),
    "x.dot(list)": (lambda np_, x: x.dot([1., -1., 2.]), X),
    "tensordot": (lambda np_, x: np_.tensordot(x, [[1., 2.], [3., 4.], [5., 6.]], axes=1), X),
    "tensordot list axes": (lambda np_, x: np_.tensordot(x, x, axes=[[0], [0]]), M),
    "kron": (lambda np_, x: np_.kron(x, [1., -1.]), X),
    "vecdot": (lambda np_, x: np_.vecdot(x, [1., 2., 3.]), X),
    "einsum": (lambda np_, x: np_.einsum("i,i->", x, [1., 2., 3.]), X),
    "einsum traced list": (lambda np_, x: np_.einsum("i,i->", [x[0], x[1]], [1., 2.]), X),
    "kron traced list": (lambda np_, x: np_.kron([x[0], 1.], x), X),
    "einsum sublists": (lambda np_, x: np_.einsum(x, [0, 1], [1., 2., 3.], [1], [0]), M),
    "multi_dot": (lambda np_, x: np_.linalg.multi_dot([[[1., 2., 3.]], x, [[1.], [0.], [2.]]]), M),
    "solve": (lambda np_, x: np_.linalg.solve([[2., 1.], [1., 3.]], [x[0], x[1]]), X),
    "det of traced list": (lambda np_, x: np_.linalg.det([[x[0], 1.], [2., x[1]]]), X),
    "norm of traced list": (lambda np_, x: np_.linalg.norm([x[0], x[1], 2.]), X),
    "inv of traced list": (lambda np_, x: np_.linalg.inv([[x[2], x[0]], [0.5, 3.]]), X),
    # ---- elementwise: operands broadcast as arrays
    "x + list": (lambda np_, x: x + [1., 2., 3.], X),
    "list - x": (lambda np_, x: [1., 2., 3.] - x, X),
    "x * column": (lambda np_, x: x * [[1.], [2.]], X),
    "x / tuple": (lambda np_, x: x / (1., 2., 4.), X),
    "x ** int list": (lambda np_, x: x ** [1, 2, 3], X),
    "list ** x": (lambda np_, x: [2., 3., 4.] ** x, X),
    "x % list": (lambda np_, x: x % [1., 2., 3.], X),
    "add(list, x)": (lambda np_, x: np_.add([1., 2., 3.], x), X),
    "maximum": (lambda np_, x: np_.maximum(x, [0., 0., 2.]), X),
    "power of traced list": (lambda np_, x: np_.power([x[0], x[2]], 2.), X),
    "arctan2 lists": (lambda np_, x: np_.arctan2([x[0], 1.], [2., x[2]]), X),
    "where list branch": (lambda np_, x: np_.where(x > 0, x, [10., 20., 30.]), X),
    "where traced list": (lambda np_, x: np_.where([True, False], [x[0], x[1]], [x[2], 1.]), X),
    "clip list bounds": (lambda np_, x: np_.clip(x, [0., -1., 0.], [1., 1., 2.]), X),
    "sin of traced list": (lambda np_, x: np_.sin([x[0], 2. * x[1], 1.]), X),
    # ---- reductions
    "sum of traced list": (lambda np_, x: np_.sum([x[0], x[1]]), X),
    "mean axis 0": (lambda np_, x: np_.mean([x, 3 * x], axis=0), X),
    "max axis 0": (lambda np_, x: np_.max([x, 2 - x], axis=0), X),
    "prod": (lambda np_, x: np_.prod([x[0], x[1], 2.]), X),
    "var": (lambda np_, x: np_.var([x[0], x[1], x[2], 1.]), X),
    "std axis 1": (lambda np_, x: np_.std([x, x * x], axis=1), X),
    "cumsum": (lambda np_, x: np_.cumsum([x[0], x[1], 1.]), X),
    "average weights list": (lambda np_, x: np_.average(x, weights=[1., 2., 3.]), X),
    "average traced lists": (lambda np_, x: np_.average([x, 2 * x], axis=0, weights=[1., 3.]), X),
    "ptp": (lambda np_, x: np_.ptp([x[0], x[2], 0.]), X),
    "sum axis tuple": (lambda np_, x: np_.sum(x, axis=(0,)), M),
    # ---- shapes
    "reshape traced list": (lambda np_, x: np_.reshape([x[0], x[1], x[2], 1.], (2, 2)), X),
    "reshape list shape": (lambda np_, x: np_.reshape(x, [3, 1]), X),
    "transpose nested": (lambda np_, x: np_.transpose([[x[0], x[1]], [x[2], 1.]]), X),
    "transpose axes list": (lambda np_, x: np_.transpose(x, [1, 0]), M),
    "concatenate with list": (lambda np_, x: np_.concatenate([x, [1., 2.]]), X),
    "stack with list": (lambda np_, x: np_.stack([x, [1., 2., 3.]]), X),
    "vstack": (lambda np_, x: np_.vstack([x, [1., 2., 3.]]), X),
    "hstack tuple": (lambda np_, x: np_.hstack(([1.], x)), X),
    "column_stack": (lambda np_, x: np_.column_stack([x, [1., 2., 3.]]), X),
    "expand_dims": (lambda np_, x: np_.expand_dims([x[0], x[1]], 0), X),
    "squeeze": (lambda np_, x: np_.squeeze([[x[0]], [x[1]]]), X),
    "broadcast_to": (lambda np_, x: np_.broadcast_to([x[0], 1.], (3, 2)), X),
    "atleast_2d": (lambda np_, x: np_.atleast_2d([x[0], x[1]]), X),
    "broadcast_arrays": (lambda np_, x: np_.broadcast_arrays([x[0], x[1]], x[:, None]), X),
    "meshgrid": (lambda np_, x: np_.meshgrid([x[0], x[1]], x), X),
    "swapaxes": (lambda np_, x: np_.swapaxes([[x[0], x[1]]], 0, 1), X),
    "ravel": (lambda np_, x: np_.ravel([[x[0], x[1]], [x[2], 0.]]), X),
    # ---- rearranging
    "tile": (lambda np_, x: np_.tile([x[0], x[1]], 2), X),
    "tile reps tuple": (lambda np_, x: np_.tile(x, (2, 1)), X),
    "repeat": (lambda np_, x: np_.repeat([x[0], x[1]], 2), X),
    "flip": (lambda np_, x: np_.flip([x[0], x[1], 3.]), X),
    "roll": (lambda np_, x: np_.roll([x[0], x[1], 3.], 1), X),
    "rot90": (lambda np_, x: np_.rot90([[x[0], x[1]], [x[2], 1.]]), X),
    "pad": (lambda np_, x: np_.pad([x[0], x[1]], 1), X),
    "pad width list": (lambda np_, x: np_.pad(x, [(1, 2)], mode="edge"), X),
    "diff": (lambda np_, x: np_.diff([x[0], x[1], x[2] ** 2]), X),
    "diff prepend append": (lambda np_, x: np_.diff(x, prepend=[0.], append=[x[0]]), X),
    "sort": (lambda np_, x: np_.sort([x[2], x[0], x[1]]), X),
    "take": (lambda np_, x: np_.take([x[0], x[1], 5.], [2, 0]), X),
    "append": (lambda np_, x: np_.append(x, [x[0], 7.]), X),
    "split sections list": (lambda np_, x: np_.split(x, [1]), X),
    "select": (lambda np_, x: np_.select([x > 0], [[1., 2., 3.]], default=x), X),
    # ---- diagonals
    "diag of traced list": (lambda np_, x: np_.diag([x[0], x[1]]), X),
    "diag of nested list": (lambda np_, x: np_.diag([[x[0], 1.], [2., x[1]]]), X),
    "trace": (lambda np_, x: np_.trace([[x[0], 1.], [2., x[1]]]), X),
    "tril": (lambda np_, x: np_.tril([[x[0], x[1]], [x[2], 1.]]), X),
    "diagonal": (lambda np_, x: np_.diagonal([[x[0], x[1]], [x[2], 1.]]), X),
    # ---- creation
    "array of traced scalars": (lambda np_, x: np_.array([x[0], x[1]]), X),
    "array nested mixed": (lambda np_, x: np_.array([[x[0], 1.], [2., x[2]]]), X),
    "array of arrays": (lambda np_, x: np_.array([x, 2 * x, [1., 2., 3.]]), X),
    "array of ints and traced": (lambda np_, x: np_.array([x[0], 1, 2]), X),
    "asarray tuple": (lambda np_, x: np_.asarray((x, x * x)), X),
    "full traced": (lambda np_, x: np_.full(3, x[0]), X),
    "full shape traced array": (lambda np_, x: np_.full((2, 3), x), X),
    "full traced list": (lambda np_, x: np_.full((2, 2), [x[0], 1.]), X),
    "full_like": (lambda np_, x: np_.full_like(x, x[1]), X),
    "full_like of a traced list": (lambda np_, x: np_.full_like([x[0], x[1]], x[2]), X),
    "zeros_like of a traced list": (lambda np_, x: np_.zeros_like([x[0], x[1]]) + x[:2], X),
    "copy of a traced list": (lambda np_, x: np_.copy([x[0], x[1]]), X),
    "linspace": (lambda np_, x: np_.linspace(x[0], x[2], 5), X),
    "linspace no endpoint": (lambda np_, x: np_.linspace(x[1], x[2], 4, endpoint=False), X),
    "linspace arrays axis 1": (lambda np_, x: np_.linspace([x[0], 0.], [x[2], x[1]], 4, axis=1), X),
    "linspace retstep": (lambda np_, x: np_.linspace(x[0], 2., 3, retstep=True), X),
    "arange traced start": (lambda np_, x: np_.arange(x[0], 3., 0.5), X),
}


def _numpy(value):
    return [np.asarray(backend.to_numpy(gnp.asarray(v).data if isinstance(v, gpuad.Tensor) else v))
            for v in tree.flatten(value)[0]]


@pytest.mark.parametrize("name", CASES)
def test_value_equals_numpy(name):
    fn, x = CASES[name]
    expected = fn(np, x)
    traced, _ = gpuad.vjp(lambda x: fn(gnp, x), x)
    forward, _ = gpuad.jvp(lambda x: fn(gnp, x), (x,), (np.ones_like(x),))
    for got in (traced, forward):
        got_leaves, want_leaves = _numpy(got), _numpy(expected)
        assert len(got_leaves) == len(want_leaves)
        for g, w in zip(got_leaves, want_leaves):
            assert g.shape == w.shape and g.dtype == w.dtype, name
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_gradients(name):
    fn, x = CASES[name]
    check_grads(lambda x: fn(gnp, x), (x,), order=2)


def test_the_issue_examples():
    x = np.array([1., 2., 3.])
    # these read the list as a 0-d value before: wrong value and gradient
    assert gpuad.grad(lambda x: gnp.sum(gnp.dot(x, [[1.], [2.], [3.]])))(x).tolist() == [1., 2., 3.]
    assert gpuad.grad(lambda x: gnp.inner(x, [1., 2., 3.]))(x).tolist() == [1., 2., 3.]
    assert gpuad.grad(lambda x: [1., 2., 3.] @ x)(x).tolist() == [1., 2., 3.]
    assert gpuad.grad(lambda x: gnp.sum(gnp.array([x[0], x[1]])))(x).tolist() == [1., 1., 0.]
    assert gpuad.grad(lambda x: gnp.sum(gnp.full(3, x[2])))(x).tolist() == [0., 0., 3.]


@pytest.mark.parametrize("fn", [
    lambda x: gnp.array([x, x[:2]]),               # ragged
    lambda x: gnp.mean([x, x[:2]], axis=0),
    lambda x: gnp.dot(x, [[1.], [2.]]),            # shapes that do not align
    lambda x: [1., 2.] @ x,
])
def test_numpy_errors_for_lists(fn):
    with pytest.raises(ValueError):
        gpuad.grad(lambda x: gnp.sum(fn(x)))(X)


@pytest.mark.parametrize("build", [
    lambda x: [x[0], 1],
    lambda x: [x[0], True],
    lambda x: [[1, 2], [x[1], x[2]]],
    lambda x: [x[0].astype(np.float32), 1.0],
    lambda x: [x[0].astype(np.float32), x[1].astype(np.float32)],
    lambda x: (x.astype(np.float32), [1, 2, 3]),
])
def test_dtypes_follow_numpy(build):
    def check(x):
        traced = gnp.array(build(x))
        assert traced.dtype == np.array(build(gpuad.stop_gradient(x))).dtype
        return gnp.sum(traced.astype(np.float64))
    assert gpuad.grad(check)(X).shape == X.shape


def test_plain_lists_stay_plain():
    out = gnp.dot([1., 2.], [[1.], [2.]])
    assert isinstance(out, np.ndarray) and out.tolist() == [5.]
    assert gnp.shape([[1, 2, 3]]) == (1, 3) and gnp.size([[1, 2, 3]]) == 3 and gnp.ndim([[1, 2, 3]]) == 2

    def f(x):
        assert gnp.shape([x, x]) == (2, 3) and gnp.ndim([x, x]) == 2
        return gnp.sum(x)
    gpuad.grad(f)(X)


@pytest.mark.parametrize("fn, reference, gradient", [
    (lambda np_, x: np_.split([x[0], x[1], x[2], 1.], 2), lambda x: np.split(np.array([x[0], x[1], x[2], 1.]), 2),
     2 * X),
    (lambda np_, x: np_.take_along_axis([x[0], x[2]], np.array([1, 0]), 0), lambda x: x[[2, 0]],
     [2 * X[0], 0., 2 * X[2]]),
])
def test_lists_where_numpy_wants_an_array(fn, reference, gradient):
    """numpy.split and take_along_axis want an ndarray; gpuad reads a list holding traced values as one."""
    out, _ = gpuad.vjp(lambda x: fn(gnp, x), X)
    for got, want in zip(_numpy(out), _numpy(reference(X))):
        np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(gnp.stack(fn(gnp, x)) ** 2))(X), gradient)


def test_at_set_with_traced_list():
    g = gpuad.grad(lambda x: gnp.sum(x.at[:2].set([x[2], 2 * x[2]]) ** 2))(X)
    np.testing.assert_allclose(g, [0., 0., 12 * X[2]])


def test_tape_with_lists():
    with gpuad.Tape() as tape:
        a, b = gpuad.tensor(2.0), gpuad.tensor(3.0)
        y = gnp.sum(gnp.array([a, b, 1.0]) * [1.0, 10.0, 100.0])
    assert [float(g) for g in tape.gradient(y, [a, b])] == [1.0, 10.0]
    assert math.isclose(float(y), 132.0)


def test_traceable_reads_the_declared_array_parameters_only():
    """A function with other parameter names declares them; other list arguments reach it untouched."""
    from gpuad.numpy._dispatch import traceable

    def weighted(data, pairs, *, scale):
        assert isinstance(pairs, list) and pairs == [(0, 1)]     # not an array parameter: left as given
        assert not isinstance(scale, list)                       # declared: read as an array
        return gnp.sum(data * scale)

    f = traceable(weighted, arrays=("data", "scale"))
    g = gpuad.grad(lambda x: f([x[0], x[1]], [(0, 1)], scale=[1., x[2]]))(X)
    np.testing.assert_allclose(g, [1., X[2], X[1]])
