"""Complex differentiation, JAX's convention: the JVP is the R-linear map of each op, the VJP its transpose under
the real pairing <a, b> = Re(sum(a * b)), so grad of a real f(z) is df/dx - i df/dy and grad(holomorphic=True)
is f'(z).

Every elementwise row that NumPy defines on complex values is checked by its row alone (fwd and rev, to second
order, over scalar, vector, matrix and broadcast shapes, complex arguments and mixed real/complex ones); the rows
NumPy refuses on complex values are refused here too. Then JAX's values at the real/complex boundaries, the
holomorphic= switch and its errors."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.ops import elementwise as elementwise_rows
from gpuad.ops.elementwise import Elementwise
from gpuad.testing import check_grads, sample

ROWS = sorted((p for p in vars(elementwise_rows).values() if isinstance(p, Elementwise)), key=lambda p: p.name)

SHAPES = {
    1: [((),), ((3,),), ((3, 2),)],
    2: [((), ()), ((3, 2), (3, 2)), ((3, 2), (1, 2)), ((2, 1), (1, 3))],
    3: [((), (), ()), ((3, 2), (1, 2), ())],
}


def complex_sample(domain, shape, rng):
    """Inside the row's real domain, moved off the real axis by a small imaginary part (which keeps clear of
    the branch cuts, all on the real axis)."""
    if domain == "bool":
        return sample(domain, shape, rng)
    return sample(domain, shape, rng) + 1j * rng.uniform(-0.3, 0.3, shape)


def defined_on_complex(prim):
    """NumPy's own answer: does the row's function accept complex values?"""
    rng = np.random.default_rng(0)
    domains = prim.domain or (None,) * prim.arity
    try:
        getattr(np, prim.name if prim.name != "clip" else "clip")(
            *[complex_sample(d, (2,), rng) for d in domains])
    except (TypeError, np.exceptions.DTypePromotionError if hasattr(np, "exceptions") else TypeError):
        return False
    return True


COMPLEX_ROWS = [p for p in ROWS if defined_on_complex(p)]
REAL_ONLY_ROWS = [p for p in ROWS if p not in COMPLEX_ROWS]


def of_arguments(fn, values, diff):
    """``fn`` as a function of the arguments at positions ``diff`` alone, the others fixed at ``values``."""
    def f(*diff_args):
        args = list(values)
        for k, a in zip(diff, diff_args):
            args[k] = a
        return fn(*args)
    return f


def make_case(prim, shapes, complex_args, seed=0):
    rng = np.random.default_rng(seed)
    domains = prim.domain or (None,) * prim.arity
    values = [complex_sample(d, s, rng) if k in complex_args else sample(d, s, rng)
              for k, (d, s) in enumerate(zip(domains, shapes))]
    diff = [k for k in range(prim.arity) if k not in prim.nondiff and domains[k] != "bool"]
    return of_arguments(getattr(gnp, prim.name), values, diff), [values[k] for k in diff]


def test_the_split_between_complex_and_real_only_rows():
    names = {p.name for p in COMPLEX_ROWS}
    assert {"exp", "log", "sin", "sqrt", "power", "divide", "absolute", "sign", "real", "imag", "conjugate",
            "maximum", "where", "tanh", "arctanh", "reciprocal", "square"} <= names
    assert {"floor", "arctan2", "hypot", "logaddexp", "remainder", "copysign"} <= {p.name for p in REAL_ONLY_ROWS}


@pytest.mark.parametrize("prim", COMPLEX_ROWS, ids=lambda p: p.name)
def test_row_gradients_on_complex_values(prim):
    every = set(range(prim.arity))
    for shapes in SHAPES[prim.arity]:
        f, args = make_case(prim, shapes, every)
        check_grads(f, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("prim", [p for p in COMPLEX_ROWS if p.arity > 1], ids=lambda p: p.name)
def test_row_gradients_with_real_and_complex_arguments(prim):
    """Each argument real in turn, the others complex: the cotangent reaching a real argument is the real part
    of the complex one (real-to-complex promotion transposes to taking the real part)."""
    for real_arg in range(prim.arity):
        for shapes in SHAPES[prim.arity][1:3]:
            f, args = make_case(prim, shapes, set(range(prim.arity)) - {real_arg}, seed=real_arg + 1)
            check_grads(f, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("prim", COMPLEX_ROWS, ids=lambda p: p.name)
def test_row_forward_matches_numpy_on_complex_values(prim):
    f, args = make_case(prim, SHAPES[prim.arity][1], set(range(prim.arity)))
    rng = np.random.default_rng(0)
    domains = prim.domain or (None,) * prim.arity
    values = [complex_sample(d, s, rng) for d, s in zip(domains, SHAPES[prim.arity][1])]
    np.testing.assert_allclose(getattr(gnp, prim.name)(*values), getattr(np, prim.name)(*values), rtol=1e-12)


@pytest.mark.parametrize("prim", REAL_ONLY_ROWS, ids=lambda p: p.name)
def test_rows_numpy_refuses_on_complex_values_are_refused(prim):
    rng = np.random.default_rng(0)
    domains = prim.domain or (None,) * prim.arity
    values = [complex_sample(d, (2,), rng) for d in domains]
    with pytest.raises(TypeError):
        gpuad.grad(lambda z: gnp.sum(gnp.abs(getattr(gnp, prim.name)(z, *values[1:]))))(values[0])


# ---- JAX's values -----------------------------------------------------------------------------------------------

Z = np.complex128(1 + 2j)


@pytest.mark.parametrize("fun, z, expected", [
    (lambda z: (z * z).imag, Z, 4 - 2j),                       # the example
    (lambda z: gnp.abs(z), np.complex128(3 + 4j), 0.6 - 0.8j),  # conj(z) / |z|
    (lambda z: gnp.abs(z) ** 2, Z, 2 - 4j),                    # 2 conj(z)
    (lambda z: gnp.real(z), Z, 1 + 0j),
    (lambda z: gnp.imag(z), Z, -1j),
    (lambda z: gnp.real(gnp.conj(z) * 1j), Z, -1j),            # Re(i conj z) = y: df/dx - i df/dy = -i * 1
    (lambda z: gnp.angle(z), np.complex128(1 + 1j), -0.5 - 0.5j),  # -i conj(z) / |z|^2
    (lambda z: gnp.abs(gnp.sign(z) - 1), np.complex128(0 + 1j), None),
])
def test_gradients_of_real_functions_of_complex_inputs(fun, z, expected):
    g = gpuad.grad(fun)(z)
    if expected is None:  # against central differences along x and y: grad = df/dx - i df/dy
        h = 1e-6
        dx = (fun(z + h) - fun(z - h)) / (2 * h)
        dy = (fun(z + 1j * h) - fun(z - 1j * h)) / (2 * h)
        expected = dx - 1j * dy
    np.testing.assert_allclose(g, expected, rtol=1e-7, atol=1e-9)


def test_real_to_complex_boundaries_are_exact():
    x = np.linspace(-1.0, 2.0, 5)
    g = gpuad.grad(lambda x: gnp.sum(gnp.real(gnp.exp(1j * x)) + 3 * gnp.imag(gnp.exp(1j * x))))(x)
    np.testing.assert_allclose(g, -np.sin(x) + 3 * np.cos(x), rtol=1e-12)
    assert g.dtype == np.float64  # a real input gets a real gradient
    g = gpuad.grad(lambda x: gnp.sum(gnp.abs(x + 2j)))(x)
    np.testing.assert_allclose(g, x / np.abs(x + 2j), rtol=1e-12)
    z = np.array([1 + 1j, 2 - 1j])
    _, tangent = gpuad.jvp(lambda z: gnp.abs(z), (z,), (np.array([1j, 1 + 0j]),))
    assert tangent.dtype == np.float64
    np.testing.assert_allclose(tangent, np.real(np.conj(z) * [1j, 1]) / np.abs(z))


@pytest.mark.parametrize("fun, dfun", [
    (gnp.sin, np.cos), (gnp.exp, np.exp), (lambda z: z ** 3, lambda z: 3 * z ** 2), (gnp.log, lambda z: 1 / z),
    (lambda z: gnp.tanh(z) / z, lambda z: (1 - np.tanh(z) ** 2) / z - np.tanh(z) / z ** 2),
])
def test_holomorphic_grad_is_the_complex_derivative(fun, dfun):
    np.testing.assert_allclose(gpuad.grad(fun, holomorphic=True)(Z), dfun(Z), rtol=1e-12)
    _, tangent = gpuad.jvp(fun, (Z,), (np.complex128(1),))
    np.testing.assert_allclose(tangent, dfun(Z), rtol=1e-12)  # the JVP along 1 is f'(z) too
    np.testing.assert_allclose(gpuad.vjp(fun, Z)[1](np.complex128(1))[0], dfun(Z), rtol=1e-12)


def test_complex_output_needs_holomorphic_and_holomorphic_needs_complex():
    with pytest.raises(TypeError, match="holomorphic=True"):
        gpuad.grad(lambda z: z * z)(Z)
    with pytest.raises(TypeError, match="requires complex inputs"):
        gpuad.grad(lambda x: x * 1j, holomorphic=True)(1.0)
    with pytest.raises(TypeError, match="requires a complex output"):
        gpuad.grad(lambda z: gnp.abs(z), holomorphic=True)(Z)


def test_second_derivatives_of_complex_programs():
    z = np.array([1 + 2j, -0.5 + 0.3j, 2 - 1j])
    w = np.array([0.3 - 1j, 1.5 + 0.5j, -1 + 0j])
    check_grads(lambda z, w: gnp.sum(gnp.abs(gnp.sin(z) * w + gnp.conj(z) * z) ** 2), (z, w), order=2)
    check_grads(lambda z: gnp.exp(1j * gnp.angle(z)) * gnp.abs(z), (z,), order=2)
    check_grads(lambda x: gnp.sum(gnp.real(gnp.exp(1j * x) * w)), (np.array([0.3, 1.0, -2.0]),), order=2)


def test_tape_records_complex_values():
    with gpuad.Tape() as tape:
        z = tape.watch(np.array([1 + 1j, 2 - 1j]))
        loss = gnp.sum(gnp.abs(z * z) + gnp.real(z))
    np.testing.assert_allclose(tape.gradient(loss, z), 2 * np.abs(z) * np.conj(z) / np.abs(z) + 1)


def test_the_printed_adjoint_shows_wirtinger_terms():
    """tape.adjoint() writes a complex argument's term of a non-holomorphic row as ct * A + conj(ct * B)."""
    with gpuad.Tape() as tape:
        z = tape.watch(np.array([1 + 2j, 3 - 1j]))
        y = gnp.sum(gnp.imag(z * z) + gnp.real(gnp.conj(z)))
    tape.gradient(y, z)
    text = tape.adjoint()
    assert "v\u03042 += v\u03043 * (-0.5j) + conj(v\u03043 * 0.5j)" in text  # imag
    assert "v\u03041 += conj(v\u03044)" in text  # conj: A = 0, B = 1
    assert "v\u03044 += v\u03045 * 0.5 + conj(v\u03045 * 0.5)" in text  # real


def test_check_grads_takes_complex64_at_float32_precision():
    z = np.array([1 + 1j, 0.5 - 2j], np.complex64)
    check_grads(gnp.exp, (z,), order=1)
    check_grads(lambda z, x: gnp.sin(z) * x, (z, np.array([0.5, 2.0])), order=1)
    with pytest.raises(AssertionError):  # and still catches a 10% error
        check_grads(_wrong_exp, (z,), order=1, modes=("fwd",))


@gpuad.custom_jvp
def _wrong_exp(z):
    return gnp.exp(z)


_wrong_exp.defjvp(lambda primals, tangents: (gnp.exp(primals[0]), 1.1 * gnp.exp(primals[0]) * tangents[0]))
