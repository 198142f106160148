"""Tensor's array methods take ndarray's signatures (positional and keyword), order= included: each call gives
ndarray's value and a correct derivative, or an error that says precisely what is wrong."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

A = np.array([[0.5, -1.2, 2.0], [1.5, 0.3, -0.7]])

# each function is called on the ndarray A (the reference) and on a traced A
CASES = {
    'flatten("F")': lambda a: a.flatten("F"),
    "flatten(order='F')": lambda a: a.flatten(order="F"),
    'flatten("A")': lambda a: a.flatten("A"),
    'flatten("C")': lambda a: a.flatten("C"),
    'T.flatten("A")': lambda a: a.T.flatten("A"),
    'ravel("F")': lambda a: a.ravel("F"),
    'T.ravel("K")': lambda a: a.T.ravel("K"),
    'slice.ravel("K")': lambda a: a[:, ::2].ravel("K"),
    'reshape(3, 2, order="F")': lambda a: a.reshape(3, 2, order="F"),
    'reshape((3, 2), order="F")': lambda a: a.reshape((3, 2), order="F"),
    'reshape((3, 2), order="A")': lambda a: a.reshape((3, 2), order="A"),
    'T.reshape(-1, order="A")': lambda a: a.T.reshape(-1, order="A"),
    "reshape([3, 2])": lambda a: a.reshape([3, 2]),
    "reshape(np.int64(6))": lambda a: a.reshape(np.int64(6)),
    "sum(0, None, None, True)": lambda a: a.sum(0, None, None, True),
    "sum(axis=1, keepdims=True)": lambda a: a.sum(axis=1, keepdims=True),
    "mean(1, keepdims=True)": lambda a: a.mean(1, keepdims=True),
    "mean(None, np.float64)": lambda a: a.mean(None, np.float64),
    "max(0, None, True)": lambda a: a.max(0, None, True),
    "min(axis=1)": lambda a: a.min(axis=1),
    "prod(1)": lambda a: a.prod(1),
    "var(0, None, None, 1)": lambda a: a.var(0, None, None, 1),
    "std(ddof=1)": lambda a: a.std(ddof=1),
    "std(0, None, None, 1, True)": lambda a: a.std(0, None, None, 1, True),
    "cumsum(1)": lambda a: a.cumsum(1),
    "cumsum()": lambda a: a.cumsum(),
    "cumprod(axis=0)": lambda a: a.cumprod(axis=0),
    "clip(0, 1)": lambda a: a.clip(0, 1),
    "clip(min=0)": lambda a: a.clip(min=0),
    "clip(max=1.)": lambda a: a.clip(max=1.),
    "round(1)": lambda a: a.round(1),
    "round(decimals=2)": lambda a: a.round(decimals=2),
    "transpose(1, 0)": lambda a: a.transpose(1, 0),
    "transpose((1, 0))": lambda a: a.transpose((1, 0)),
    "transpose()": lambda a: a.transpose(),
    "swapaxes(0, 1)": lambda a: a.swapaxes(0, 1),
    "diagonal(1)": lambda a: a.diagonal(1),
    "diagonal(offset=-1, axis1=1, axis2=0)": lambda a: a.diagonal(offset=-1, axis1=1, axis2=0),
    "trace(1)": lambda a: a.trace(1),
    "trace(offset=0, dtype=None)": lambda a: a.trace(offset=0, dtype=None),
    "repeat(2, axis=1)": lambda a: a.repeat(2, axis=1),
    "repeat([1, 2], axis=0)": lambda a: a.repeat([1, 2], axis=0),
    "take([0, 2], axis=1)": lambda a: a.take([0, 2], axis=1),
    'take([4, -1], 1, None, "wrap")': lambda a: a.take([4, -1], 1, None, "wrap"),
    "dot(list)": lambda a: a.dot([1., 2., 3.]),
    "squeeze(0)": lambda a: a[None].squeeze(0),
    'copy("F")': lambda a: a.copy("F"),
    "astype(float64, casting='safe')": lambda a: a.astype(np.float64, casting="safe"),
}


def _value(v):
    return np.asarray(v.data if isinstance(v, gpuad.Tensor) else v)


@pytest.mark.parametrize("name", CASES)
def test_method_value_and_gradient(name):
    fn = CASES[name]
    out, _ = gpuad.vjp(fn, A)
    np.testing.assert_allclose(_value(out), fn(A), rtol=1e-12)
    assert _value(out).shape == fn(A).shape
    check_grads(fn, (A,), order=2)


@pytest.mark.parametrize("call, error, words", [
    (lambda t: t.flatten("X"), ValueError, ["order", "'X'"]),
    (lambda t: t.ravel(order="Z"), ValueError, ["order", "'Z'"]),
    (lambda t: t.reshape(6, order="K"), ValueError, ["order", "'K'"]),
    (lambda t: t.sum(out=np.zeros(3)), TypeError, ["out="]),
    (lambda t: t.sum(keepdim=True), TypeError, ["keepdim"]),
    (lambda t: t.mean(0, None, None, False, True), TypeError, []),
    (lambda t: t.astype(np.int32, casting="safe"), TypeError, ["safe", "int32"]),
    (lambda t: t.cumsum(axis=(0, 1)), TypeError, ["axis"]),
    (lambda t: t[:, ::-1].ravel("K"), NotImplementedError, ["order='K'", "'C' or 'F'"]),
    (lambda t: t.fill(0.0), AttributeError, ["in place", "t.data.fill"]),
    (lambda t: t.tobytes(), AttributeError, ["numpy.ndarray.tobytes", "t.data.tobytes"]),
    (lambda t: t.no_such_method(), AttributeError, ["no_such_method"]),
])
def test_method_errors_say_what_is_wrong(call, error, words):
    def f(t):
        with pytest.raises(error) as info:
            call(t)
        for w in words:
            assert w in str(info.value)
        return gnp.sum(t)
    gpuad.grad(f)(A)
