"""Conversions of traced values to plain Python or NumPy values.

While a value is being differentiated (its box records in this thread, or it is a ``gpuad.tensor`` leaf and a
``Tape`` block is open in this thread), every conversion that would drop its derivative raises the same clear
TypeError as ``numpy.asarray(t)``, pointing to ``.data`` / ``stop_gradient``. A value that no trace records
converts freely (printing a loss stays easy), and formatting never refuses: it formats like NumPy.
"""
import math
import threading

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

CONVERSIONS = {
    "float": float,
    "int": int,
    "complex": complex,
    "math.exp": math.exp,
    "math.sqrt": math.sqrt,
    "item": lambda t: t.item(),
    "item(0)": lambda t: gnp.reshape(t, (1,)).item(0) if isinstance(t, gpuad.Tensor) else t.item(0),
    "tolist": lambda t: t.tolist(),
    "numpy.asarray": np.asarray,
    "numpy.array": np.array,
    "numpy.float64": np.float64,
}

MESSAGE = "cannot be turned into a plain value while it is being differentiated"


def _setitem(t):
    y = np.zeros(3)
    y[0] = t
    return y


def _setslice(t):
    y = np.zeros((2, 3))
    y[0] = t
    return y


ASSIGNMENTS = {"y[0] = scalar": (_setitem, ()), "y[0] = vector": (_setslice, (3,))}


def _raises_clearly(fn, value):
    """fn(value) raises gpuad's error: itself, or as the cause NumPy chains under its own (for y[0] = t)."""
    with pytest.raises((TypeError, ValueError)) as info:
        fn(value)
    error = info.value
    messages = [str(error), str(error.__cause__ or "")]
    assert any(MESSAGE in m and "stop_gradient" in m and ".data" in m for m in messages), messages


# The places where a value is being differentiated: inside grad (reverse), inside jvp (forward), a leaf used in
# an open Tape block, a leaf made in one, and a value computed in one.
def _in_grad(check, shape):
    gpuad.grad(lambda x: (check(x), gnp.sum(x))[1])(np.full(shape, 0.5))


def _in_jvp(check, shape):
    x = np.full(shape, 0.5)
    gpuad.jvp(lambda x: (check(x), gnp.sum(x))[1], (x,), (np.ones_like(x),))


def _leaf_in_tape(check, shape):
    leaf = gpuad.tensor(np.full(shape, 0.5))
    with gpuad.Tape():
        check(leaf)


def _made_in_tape(check, shape):
    with gpuad.Tape():
        check(gpuad.tensor(np.full(shape, 0.5)))


def _computed_in_tape(check, shape):
    with gpuad.Tape():
        x = gpuad.tensor(np.full(shape, 0.5))
        check(gnp.sin(x) * 2)


def _in_grad_of_grad(check, shape):
    def inner(x):
        return gpuad.grad(lambda y: (check(y), gnp.sum(y * x))[1])(x * 1.0)
    gpuad.grad(lambda x: gnp.sum(inner(x)))(np.full(shape, 0.5))


RECORDING = {"grad": _in_grad, "jvp": _in_jvp, "leaf in Tape": _leaf_in_tape, "made in Tape": _made_in_tape,
             "computed in Tape": _computed_in_tape, "grad of grad": _in_grad_of_grad}


@pytest.mark.parametrize("where", RECORDING)
@pytest.mark.parametrize("conversion", CONVERSIONS)
def test_conversions_refused_while_recording(where, conversion):
    seen = []

    def check(t):
        _raises_clearly(CONVERSIONS[conversion], t)
        seen.append(True)
    RECORDING[where](check, ())
    assert seen


@pytest.mark.parametrize("where", RECORDING)
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_into_numpy_array_refused_while_recording(where, assignment):
    fn, shape = ASSIGNMENTS[assignment]
    seen = []

    def check(t):
        _raises_clearly(fn, t)
        seen.append(True)
    RECORDING[where](check, shape)
    assert seen


def _leaf_outside():
    return gpuad.tensor(0.5)


def _result_of_finished_tape():
    with gpuad.Tape():
        x = gpuad.tensor(0.25)
        y = x * 2.0
    return y


def _value_of_vjp():
    out, _ = gpuad.vjp(lambda x: x * 2.0, 0.25)
    return out


def _leaf_under_no_tape_in_grad():
    return gpuad.tensor(0.5)


FREE = {"leaf outside any Tape": _leaf_outside, "box of a finished Tape": _result_of_finished_tape,
        "vjp output": _value_of_vjp}


@pytest.mark.parametrize("source", FREE)
@pytest.mark.parametrize("conversion", CONVERSIONS)
def test_conversions_free_when_not_recording(source, conversion):
    t = FREE[source]()
    assert np.asarray(CONVERSIONS[conversion](t)) == pytest.approx(np.asarray(CONVERSIONS[conversion](
        np.float64(gpuad.stop_gradient(t)))))


@pytest.mark.parametrize("source", FREE)
def test_assignment_free_when_not_recording(source):
    t = FREE[source]()
    assert _setitem(t)[0] == 0.5


def test_box_of_another_thread_converts_freely():
    """A box recorded by another thread's trace is a constant here (its primal), so it converts."""
    boxes, done = [], threading.Event()

    def worker():
        def f(x):
            boxes.append(x)
            done.wait(5)
            return gnp.sum(x)
        gpuad.grad(f)(np.float64(1.5))
    thread = threading.Thread(target=worker)
    thread.start()
    while not boxes:
        pass
    try:
        assert float(boxes[0]) == 1.5
    finally:
        done.set()
        thread.join()


def test_loss_after_grad_and_integer_values_convert():
    value, g = gpuad.value_and_grad(lambda x: gnp.sum(x ** 2))(np.array([1.0, 2.0]))
    assert float(value) == 5.0 and g.tolist() == [2.0, 4.0]

    def f(x):
        assert int(gnp.argmax(x)) == 1                  # index-valued: plain already
        assert int(x.astype(np.int64)[1]) == 2           # integer values carry no derivative
        assert bool(x[0] > 0) and len(x) == 2 and operator_index_ok(x)
        return gnp.sum(x)
    gpuad.grad(f)(np.array([1.0, 2.0]))


def operator_index_ok(x):
    import operator
    return operator.index(x.astype(np.int64)[1]) == 2


def test_round_is_recorded_like_numpy_round():
    def f(x):
        r = round(x * 10.0, 1)
        assert isinstance(r, gpuad.Tensor) and r.data.tolist() == np.round(np.array([12.34, -5.67]), 1).tolist()
        return gnp.sum(r + x)
    assert gpuad.grad(f)(np.array([1.234, -0.567])).tolist() == [1.0, 1.0]


def test_taking_the_value_on_purpose():
    def f(x):
        scale = float(gpuad.stop_gradient(x[0])) + float(x.data[1])
        return gnp.sum(x) * scale
    np.testing.assert_allclose(gpuad.grad(f)(np.array([1.0, 2.0])), [3.0, 3.0])


FORMATS = ["", ".3f", "e", ".2e", "g", "10.4f", "+.1f", "<12"]


@pytest.mark.parametrize("spec", FORMATS)
@pytest.mark.parametrize("value", [0.123456, -2.5, 1e10])
def test_format_like_numpy_while_recording(spec, value):
    seen = []

    def f(x):
        seen.append(format(x, spec))
        seen.append(f"{x:{spec}}")
        return x * 2.0
    gpuad.grad(f)(np.float64(value))
    assert seen == [format(np.array(value), spec)] * 2


@pytest.mark.parametrize("spec", ["", ".2f", "e"])
def test_format_arrays_never_raises(spec):
    a = np.array([[0.5, -1.25], [3.0, 1e-3]])
    seen = []

    def f(x):
        seen.append(f"{x:{spec}}")
        return gnp.sum(x)
    gpuad.grad(f)(a)
    if spec == "":
        assert seen == [str(a)]
    else:
        assert seen == [np.array2string(a, formatter={"all": lambda v: format(v, spec)})]
    assert f"{gpuad.tensor(a):{spec}}" == seen[0]


def test_printing_a_loss_is_easy():
    with gpuad.Tape() as tape:
        x = gpuad.tensor(np.array([1.0, 2.0]))
        loss = gnp.sum(x ** 2)
        text = f"loss {loss:.3f}"
    assert text == "loss 5.000"
    assert float(loss) == 5.0 and f"{tape.gradient(loss, x)}" == str(np.array([2.0, 4.0]))


# ---- inputs mutated after the forward pass (README: "Mutating an input after the forward pass")

def _program(W):
    return lambda x: gnp.sin(W @ x) * x


def _pullback(x, W):
    return gpuad.vjp(_program(W), x)[1](np.ones(2))[0]


MUTATIONS = {
    "x[0] = 5": lambda x, W: x.__setitem__(0, 5.0),
    "x -= 0.1": lambda x, W: x.__isub__(0.1),
    "W[0, 0] = 7": lambda x, W: W.__setitem__((0, 0), 7.0),
    "W *= 2": lambda x, W: W.__imul__(2.0),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_mutation_after_forward_pass_and_the_copy_fix(mutation):
    x, W = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = _pullback(x.copy(), W.copy())
    # the documented trap: the pullback reads the arrays as they are when it runs
    _, pull = gpuad.vjp(_program(W), x)
    MUTATIONS[mutation](x, W)
    assert not np.allclose(pull(np.ones(2))[0], expected)
    # the documented fix: pass (and close over) copies, then mutate the originals freely
    x, W = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    W0 = W.copy()
    _, pull = gpuad.vjp(_program(W0), x.copy())
    MUTATIONS[mutation](x, W)
    np.testing.assert_allclose(pull(np.ones(2))[0], expected)
    # or pull back before mutating
    x, W = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    _, pull = gpuad.vjp(_program(W), x)
    g = pull(np.ones(2))[0]
    MUTATIONS[mutation](x, W)
    np.testing.assert_allclose(g, expected)
