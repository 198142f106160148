"""Edges where a derivative is easy to get silently wrong: each gives the right value or a clear error."""
import collections

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads


def _nth(f, n):
    for _ in range(n):
        f = gpuad.grad(f)
    return f


# ---- powers at zero: exact at every order (JAX and PyTorch give these values) -------------------------------

@pytest.mark.parametrize("k,n,expected", [
    (0, 1, 0.0), (0, 2, 0.0), (1, 1, 1.0), (1, 2, 0.0), (1, 3, 0.0), (2, 1, 0.0), (2, 2, 2.0), (2, 3, 0.0),
    (2, 4, 0.0), (3, 3, 6.0), (3, 4, 0.0), (3, 5, 0.0), (4, 4, 24.0), (4, 5, 0.0),
])
def test_derivatives_of_integer_powers_at_zero(k, n, expected):
    assert _nth(lambda x: x ** k, n)(0.0) == expected
    # forward mode, and forward over reverse, agree
    f = lambda x: x ** k  # noqa: E731
    for _ in range(n - 1):
        f = gpuad.grad(f)
    assert gpuad.jvp(f, (0.0,), (1.0,))[1] == expected


@pytest.mark.parametrize("x", [0.0, 1.5, -1.5])
def test_power_derivative_in_the_exponent(x):
    with np.errstate(invalid="ignore"):
        dy = gpuad.grad(lambda y: x ** y)(2.0)
    if x == 0.0:
        assert dy == 0.0
    elif x > 0:
        np.testing.assert_allclose(dy, np.log(x) * x ** 2.0)
    else:  # (-1.5) ** y has no real derivative in y
        assert np.isnan(dy)


def test_power_of_an_array_with_zeros_at_second_order():
    x = np.array([0.0, 0.5, 2.0])
    g2 = gpuad.grad(lambda v: gnp.sum(gpuad.grad(lambda u: gnp.sum(u ** 3))(v)))(x)
    np.testing.assert_allclose(g2, 6 * x)


# ---- arguments the transforms must accept or refuse precisely -------------------------------------------------

Params = collections.namedtuple("Params", "w b")


def test_named_tuples_are_pytrees():
    p = Params(np.array([1.0, 2.0]), np.array(0.5))
    g = gpuad.grad(lambda p, x: gnp.sum(p.w * x + p.b))(p, np.array([3.0, 4.0]))
    assert type(g) is Params
    np.testing.assert_allclose(g.w, [3.0, 4.0])
    np.testing.assert_allclose(g.b, 2.0)
    out, t = gpuad.jvp(lambda p: Params(p.w * 2, p.b * 3), (p,), (Params(np.ones(2), np.array(1.0)),))
    assert type(out) is Params and type(t) is Params
    np.testing.assert_allclose(t.b, 3.0)


def test_numpy_integer_argnums():
    f = lambda x, y: x * y * y  # noqa: E731
    assert gpuad.grad(f, argnums=np.int64(1))(2.0, 3.0) == 12.0
    assert gpuad.grad(f, argnums=(np.int32(0), 1))(2.0, 3.0) == (9.0, 12.0)
    with pytest.raises(TypeError, match="argnums must be an int"):
        gpuad.grad(f, argnums=1.0)(2.0, 3.0)


def test_a_none_tangent_says_what_to_pass():
    with pytest.raises(TypeError, match="tangent 0 is None.*zeros"):
        gpuad.jvp(lambda x: x * 2, (np.ones(2),), (None,))


@pytest.mark.parametrize("value,message", [
    ([np.ones(2), np.ones(2)], "one array or gpuad Tensor, got list"),
    ("abc", "got str"),
    (None, "got NoneType"),
])
def test_watch_refuses_what_is_not_one_array(value, message):
    with gpuad.Tape() as tape:
        with pytest.raises(TypeError, match=message):
            tape.watch(value)


def test_watch_outside_the_block_says_where_to_call_it():
    tape = gpuad.Tape()
    with pytest.raises(RuntimeError, match="inside the tape's block"):
        tape.watch(np.ones(2))


# ---- sources a tape never saw -------------------------------------------------------------------------------

def test_a_source_the_tape_never_watched_raises_naming_watch():
    outside = gpuad.tensor(np.ones(2))
    with gpuad.Tape() as tape:
        x = tape.watch(np.ones(2))
        y = gnp.sum(x * 2.0)
    with pytest.raises(ValueError, match="never watched by this Tape.*tape.watch"):
        tape.gradient(y, outside)
    with pytest.raises(ValueError, match="source 1"):
        tape.gradient(y, [x, np.ones(2)])


def test_a_tensor_of_another_tape_or_an_outer_tensor_is_not_silently_zero():
    with gpuad.Tape() as first:
        leaf = first.watch(np.ones(2))
        a = leaf * 2.0  # a value recorded on the first tape
    with gpuad.Tape(persistent=True) as second:
        b = gnp.sum(a * 3.0)  # a belongs to a finished tape: a constant here
        c = gnp.sum(leaf * 3.0)  # a leaf is watched by every tape that uses it
    with pytest.raises(ValueError, match="never watched"):
        second.gradient(b, a)
    np.testing.assert_allclose(second.gradient(c, leaf), [3.0, 3.0])
    with gpuad.Tape() as outer:
        x = outer.watch(np.ones(2)) * 1.0  # recorded on the outer tape
        with gpuad.Tape() as inner:
            y = gnp.sum(x * x)
        with pytest.raises(ValueError, match="never watched"):
            inner.gradient(y, x)
    np.testing.assert_allclose(outer.gradient(y, x), [2.0, 2.0])


def test_a_tensor_made_before_the_block_is_tracked():
    x = gpuad.tensor(np.array([1.0, 2.0]))
    with gpuad.Tape() as tape:
        y = gnp.sum(x ** 3)
    np.testing.assert_allclose(tape.gradient(y, x), [3.0, 12.0])


# ---- check_grads picks its step and tolerances by dtype -----------------------------------------------------

@pytest.mark.parametrize("f", [
    lambda x: gnp.sum(gnp.tanh(x) * x ** 2),
    lambda x: gnp.sin(x) * gnp.exp(x),
    lambda x: gnp.sum(gnp.log1p(x * x)) / 3,
    lambda x: gnp.outer(x, x) @ x,
])
def test_check_grads_passes_float32_functions_at_order_2(f):
    check_grads(f, (np.linspace(-1, 1, 5).astype(np.float32),), order=2)


def test_check_grads_still_catches_a_wrong_float32_derivative():
    x = np.linspace(-1, 1, 5).astype(np.float32)
    # value sin(x), but derivative cos(x) + 0.05: wrong by a few percent, which float32 tolerances must see
    wrong = lambda x: gnp.sin(x) + 0.05 * (x - gpuad.stop_gradient(x))  # noqa: E731
    for mode in ("fwd", "rev"):
        with pytest.raises(AssertionError):
            check_grads(wrong, (x,), order=1, modes=(mode,))


# ---- results the caller owns ------------------------------------------------------------------------------

def test_gradients_are_writable_arrays_of_their_own():
    x = np.ones((3, 4))
    g = gpuad.grad(lambda x: gnp.sum(x * 2.0))(x)  # a constant partial after a sum: a broadcast view inside
    assert g.flags.writeable and 0 not in g.strides
    g *= 0.5  # an optimizer's in-place update
    np.testing.assert_allclose(g, 1.0)
    ct = np.ones(2)
    _, pull = gpuad.vjp(lambda x, y: x + y, np.ones(2), np.ones(2))
    a, b = pull(ct)
    assert a is not ct and b is not ct and a is not b
    a += 1
    np.testing.assert_allclose(ct, 1.0)
    np.testing.assert_allclose(b, 1.0)


def test_a_custom_rule_returning_one_array_for_two_arguments_is_not_added_into_twice():
    @gpuad.custom_vjp
    def f(x, y):
        return x + y
    f.defvjp(lambda x, y: (f(x, y), None), lambda r, g: ((t := g * 1.0), t))
    weights = np.array([1.0, 2.0, 3.0])
    gx, gy = gpuad.grad(lambda x, y: gnp.sum(x[0:2] * 5.0) + gnp.sum(gnp.sin(x) * 7.0) + gnp.sum(f(x, y) * weights),
                        argnums=(0, 1))(np.arange(3.0), np.arange(3.0) + 10)
    np.testing.assert_allclose(gy, weights)
    np.testing.assert_allclose(gx, weights + [5.0, 5.0, 0.0] + 7.0 * np.cos(np.arange(3.0)))


def test_a_complex_cotangent_for_a_real_output_is_refused():
    _, pull = gpuad.vjp(gnp.sin, np.ones(2))
    with pytest.raises(TypeError, match="imaginary part would be dropped"):
        pull(np.array([1 + 5j, 2j]))


@pytest.mark.parametrize("f", [
    lambda x: gnp.sum(gnp.where(x > 1.5, 7.0, x / 2)),
    lambda x: gnp.sum(gnp.where(x > 1.5, 0.0, gnp.sum(x[None] * np.ones((2, 1)), axis=0) / 2)),
    lambda x: gnp.mean(gnp.where(x < 2.5, x * 3.0, -1.0)),
])
def test_a_folded_unit_seed_keeps_a_boolean_partial_in_the_seeds_dtype(f):
    """where's partial in its branch is 1 - cond (integers in NumPy): with the unit seed folded into the region,
    its cotangent must still be float (it raised a casting error before)."""
    x = np.array([1.0, 2.0, 3.0])
    g = gpuad.grad(f)(x)
    assert g.dtype == np.float64
    check_grads(f, [x], order=2, modes=("fwd", "rev"))
