"""The public API: the reference example, transforms and their nesting, the Tape, pytrees, memory, and every
documented bad-input error."""
import gc
import weakref

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import backend
from gpuad.rules import Primitive


def f_ref(x1, x2):
    return x1 * x2 + gnp.sin(x1)


REFERENCE_TAPE = """\
v1 = x1          (input)
v2 = x2          (input)
v3 = v1 * v2     (multiply)
v4 = sin(v1)     (sin)
v5 = v3 + v4     (add)       <- output f"""


def test_reference_example_tape_and_gradients():
    with gpuad.Tape() as tape:
        x1, x2 = gpuad.tensor(2.0), gpuad.tensor(5.0)
        f = f_ref(x1, x2)
    g1, g2 = tape.gradient(f, [x1, x2])
    assert str(tape) == REFERENCE_TAPE
    adjoint = tape.adjoint().splitlines()
    assert adjoint[0].startswith("v\u03045 = 1")
    assert "v\u03041 += v\u03044 * cos(v1)" in adjoint
    assert "v\u03042 += v\u03043 * v1" in adjoint
    assert g1 == pytest.approx(5 + np.cos(2.0), abs=1e-15) and g2 == pytest.approx(2.0)
    assert gpuad.grad(f_ref, (0, 1))(2.0, 5.0) == pytest.approx((5 + np.cos(2.0), 2.0))
    assert gpuad.jvp(f_ref, (2.0, 5.0), (1.0, 0.0))[1] == pytest.approx(5 + np.cos(2.0))
    assert gpuad.jvp(f_ref, (2.0, 5.0), (0.0, 1.0))[1] == pytest.approx(2.0)


def test_printed_tape_shows_shapes_and_constants():
    with gpuad.Tape() as tape:
        x = tape.watch(np.ones((3, 2)))
        y = gnp.sum(x * 2.0)
    tape.gradient(y, x)
    text = str(tape)
    assert "v2 = v1 * 2.0" in text and "float64[3,2]" in text and "<- output f" in text


# ---- nesting ------------------------------------------------------------------------------------------------

def test_perturbation_confusion_reverse_and_forward():
    # d/dx [x * d/dy (x + y)] = 1, not 2
    assert gpuad.grad(lambda x: x * gpuad.grad(lambda y: x + y)(1.0))(2.0) == 1.0
    inner = lambda x: gpuad.jvp(lambda y: x + y, (1.0,), (1.0,))[1]  # noqa: E731
    assert gpuad.jvp(lambda x: x * inner(x), (2.0,), (1.0,))[1] == 1.0
    assert gpuad.grad(lambda x: x * inner(x))(2.0) == 1.0


def test_higher_order_any_depth():
    f = lambda x: gnp.sin(x) * gnp.exp(x)  # noqa: E731
    x = 0.7
    d1 = np.exp(x) * (np.sin(x) + np.cos(x))
    d2 = 2 * np.exp(x) * np.cos(x)
    d3 = 2 * np.exp(x) * (np.cos(x) - np.sin(x))
    assert gpuad.grad(f)(x) == pytest.approx(d1)
    assert gpuad.grad(gpuad.grad(f))(x) == pytest.approx(d2)
    assert gpuad.grad(gpuad.grad(gpuad.grad(f)))(x) == pytest.approx(d3)
    # forward over reverse, reverse over forward, forward over forward
    assert gpuad.jvp(gpuad.grad(f), (x,), (1.0,))[1] == pytest.approx(d2)
    assert gpuad.grad(lambda x: gpuad.jvp(f, (x,), (1.0,))[1])(x) == pytest.approx(d2)
    assert gpuad.jvp(lambda x: gpuad.jvp(f, (x,), (1.0,))[1], (x,), (1.0,))[1] == pytest.approx(d2)
    # vjp of jvp
    _, pullback = gpuad.vjp(lambda x: gpuad.jvp(f, (x,), (1.0,))[1], x)
    assert pullback(1.0)[0] == pytest.approx(d2)


def test_hessian_vector_product_matches_dense_hessian():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    f = lambda x: gnp.sum(gnp.tanh(A @ x) ** 2)  # noqa: E731
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    hvp = gpuad.jvp(gpuad.grad(f), (x,), (v,))[1]
    H = np.stack([gpuad.jvp(gpuad.grad(f), (x,), (e,))[1] for e in np.eye(4)])
    np.testing.assert_allclose(hvp, H @ v, rtol=1e-12)
    np.testing.assert_allclose(H, H.T, atol=1e-12)


# ---- transforms, pytrees ----------------------------------------------------------------------------------

def test_pytrees_argnums_has_aux_value_and_grad():
    params = {"w": np.array([1.0, 2.0]), "b": (np.array(0.5), [np.array(1.0)])}

    def loss(p, x):
        y = gnp.sum(p["w"] * x) + p["b"][0] * p["b"][1][0]
        return y ** 2, {"y": y}

    (value, aux), g = gpuad.value_and_grad(loss, has_aux=True)(params, np.array([3.0, 4.0]))
    y = 11.0 + 0.5
    assert value == pytest.approx(y * y) and aux["y"] == pytest.approx(y)
    assert type(aux["y"]) is not gpuad.Tensor
    np.testing.assert_allclose(g["w"], 2 * y * np.array([3.0, 4.0]))
    assert g["b"][0] == pytest.approx(2 * y * 1.0) and g["b"][1][0] == pytest.approx(2 * y * 0.5)
    gx, gp = gpuad.grad(lambda p, x: loss(p, x)[0], argnums=(1, 0))(params, np.array([3.0, 4.0]))
    np.testing.assert_allclose(gx, 2 * y * params["w"])
    assert set(gp) == {"w", "b"}


def test_vjp_and_jvp_with_structures():
    def f(x, y):
        return {"s": x * y, "t": (gnp.sin(x), y)}
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    out, pullback = gpuad.vjp(f, x, y)
    gx, gy = pullback({"s": np.ones(2), "t": (np.ones(2), np.zeros(2))})
    np.testing.assert_allclose(gx, y + np.cos(x))
    np.testing.assert_allclose(gy, x)
    np.testing.assert_allclose(pullback({"s": np.ones(2), "t": (np.ones(2), np.zeros(2))})[0], gx)  # reusable
    out2, tangents = gpuad.jvp(f, (x, y), (np.ones(2), np.zeros(2)))
    np.testing.assert_allclose(tangents["s"], y)
    np.testing.assert_allclose(tangents["t"][1], 0.0)


def test_unconnected_target_gives_zeros():
    assert gpuad.grad(lambda x, y: gnp.sum(x * 2.0), argnums=1)(np.ones(2), np.ones(3)).tolist() == [0, 0, 0]
    with gpuad.Tape() as tape:
        x, y = tape.watch(np.ones(2)), tape.watch(np.ones(3))
        z = gnp.sum(x)
    np.testing.assert_array_equal(tape.gradient(z, y), np.zeros(3))
    assert gpuad.grad(lambda x: 3.0)(1.0) == 0.0


def test_python_control_flow_and_comparisons():
    def f(x):
        return gnp.sin(x) if x > 0 else gnp.cos(x)
    assert gpuad.grad(f)(1.0) == pytest.approx(np.cos(1.0))
    assert gpuad.grad(f)(-1.0) == pytest.approx(np.sin(1.0))
    with gpuad.Tape():
        t = gpuad.tensor(np.array([1.0, -1.0]))
        assert type(t > 0) is np.ndarray


def test_stop_gradient_and_no_grad():
    assert gpuad.grad(lambda x: x * gpuad.stop_gradient(x))(3.0) == 3.0

    def f(x):
        with gpuad.no_grad():
            c = x * x
        assert type(c) is not gpuad.Tensor
        return x * c
    assert gpuad.grad(f)(3.0) == 9.0
    # forward mode is not paused by no_grad (it records nothing anyway)
    assert gpuad.jvp(lambda x: gpuad.no_grad()(lambda: x * x)(), (3.0,), (1.0,))[1] == 6.0


# ---- the Tape API ----------------------------------------------------------------------------------------------

def test_tape_persistent_and_output_gradients():
    with gpuad.Tape(persistent=True) as tape:
        x = tape.watch(np.array([1.0, 2.0]))
        y = x * x
    np.testing.assert_allclose(tape.gradient(y, x), [2.0, 4.0])
    np.testing.assert_allclose(tape.gradient(y, x, output_gradients=np.array([1.0, -1.0])), [2.0, -4.0])


def test_nested_tapes_give_second_derivatives():
    x = gpuad.tensor(3.0)
    with gpuad.Tape() as outer:
        outer.watch(x)
        with gpuad.Tape() as inner:
            inner.watch(x)
            y = x ** 3
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x)
    assert float(dy) == pytest.approx(27.0) and d2y == pytest.approx(18.0)


def test_tensors_made_inside_tapes_are_watched_and_behave_like_arrays():
    with gpuad.Tape() as tape:
        x = gpuad.tensor([[1.0, 2.0], [3.0, 4.0]])
        assert x.shape == (2, 2) and x.ndim == 2 and x.size == 4 and len(x) == 2 and x.dtype == np.float64
        y = (x.T @ x).sum() + x.mean(axis=0).max() + x.reshape(4)[1] + x.reshape(-1, 1).min()
    g = tape.gradient(y, x)
    num = np.zeros((2, 2))
    base = np.array([[1.0, 2.0], [3.0, 4.0]])
    f = lambda a: (a.T @ a).sum() + a.mean(axis=0).max() + a.reshape(4)[1] + a.reshape(-1, 1).min()  # noqa
    for i in np.ndindex(2, 2):
        e = np.zeros((2, 2))
        e[i] = 1e-6
        num[i] = (f(base + e) - f(base - e)) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-7)


# ---- memory -------------------------------------------------------------------------------------------------

def _program_with_intermediate(x, refs):
    h = gnp.exp(x)
    refs.append(weakref.ref(h.data))
    return h @ x  # matmul saves h for the backward pass (an elementwise use would fuse and recompute it)


def test_non_persistent_tape_frees_saved_arrays_after_gradient():
    gc.disable()
    try:
        for persistent in (False, True):
            refs = []
            with gpuad.Tape(persistent=persistent) as tape:
                x = tape.watch(np.ones(1000))
                y = _program_with_intermediate(x, refs)
            assert refs[0]() is not None  # alive on the tape until the backward pass
            tape.gradient(y, x)
            assert (refs[0]() is None) == (not persistent)
    finally:
        gc.enable()


def test_forward_mode_keeps_no_tape():
    refs = []

    def f(x):
        for _ in range(3):
            h = gnp.exp(x)
            refs.append(weakref.ref(h.data))
            x = gnp.sin(h)
            del h
        assert all(r() is None for r in refs)  # nothing holds the intermediates: no tape
        return x
    gc.disable()
    try:
        gpuad.jvp(f, (np.ones(100),), (np.ones(100),))
    finally:
        gc.enable()


# ---- bad input ----------------------------------------------------------------------------------------------

def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError, match=r"scalar-output.*\(3,\).*vjp"):
        gpuad.grad(lambda x: x * 2.0)(np.ones(3))


@pytest.mark.parametrize("value", [np.array([1, 2]), 3, np.array([True])])
def test_integer_and_boolean_inputs(value):
    with pytest.raises(TypeError, match="floating-point inputs.*(int|bool)"):
        gpuad.grad(lambda x: gnp.sum(x * 1.0))(value)
    with pytest.raises(TypeError, match="floating-point inputs"):
        gpuad.jvp(lambda x: x, (value,), (value,))


def test_tangent_mismatches():
    x = np.ones(3)
    with pytest.raises(TypeError, match="structure"):
        gpuad.jvp(lambda x: x, (x,), (x, x))
    with pytest.raises(ValueError, match=r"shape \(2,\).*\(3,\)"):
        gpuad.jvp(lambda x: x, (x,), (np.ones(2),))
    with pytest.raises(TypeError, match="dtype float32.*float64"):
        gpuad.jvp(lambda x: x, (x,), (np.ones(3, np.float32),))
    with pytest.raises(TypeError, match="tuples"):
        gpuad.jvp(lambda x: x, x, x)


def test_cotangent_of_wrong_shape_or_structure():
    _, pullback = gpuad.vjp(lambda x: x * 2.0, np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(3,\)"):
        pullback(np.ones(2))
    with pytest.raises(TypeError, match="structure"):
        pullback((np.ones(3), np.ones(3)))


def test_second_gradient_on_non_persistent_tape():
    with gpuad.Tape() as tape:
        x = tape.watch(np.ones(2))
        y = gnp.sum(x * x)
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="persistent=True"):
        tape.gradient(y, x)


def test_op_without_rule_names_op_and_mode():
    class Opaque(Primitive):
        def impl(self, x):
            return x * 1.0
    opaque = Opaque("opaque_test_op")
    with pytest.raises(NotImplementedError, match="opaque_test_op.*reverse-mode"):
        gpuad.grad(lambda x: gnp.sum(opaque.bind(x)))(np.ones(2))
    with pytest.raises(NotImplementedError, match="opaque_test_op.*forward-mode"):
        gpuad.jvp(lambda x: opaque.bind(x), (np.ones(2),), (np.ones(2),))


def test_assignment_into_traced_array_is_refused_clearly():
    def f(x):
        x[0] = 1.0
        return gnp.sum(x)
    with pytest.raises(TypeError, match=r"at\[i\]\.set"):
        gpuad.grad(f)(np.ones(3))


def test_mixing_numpy_and_cupy_arrays_names_both(monkeypatch):
    class FakeCupyArray:
        pass
    fake_cupy = type("module", (), {"__name__": "cupy"})
    monkeypatch.setitem(backend._module_by_type, FakeCupyArray, fake_cupy)
    with pytest.raises(TypeError, match="numpy.*cupy"):
        backend.array_module(np.ones(2), FakeCupyArray())


def test_bad_backend_choice(monkeypatch):
    monkeypatch.setattr(backend, "_default", None)
    monkeypatch.setenv("GPUAD_BACKEND", "tpu")
    with pytest.raises(ValueError, match="numpy.*cupy"):
        backend.default_module()
    monkeypatch.setenv("GPUAD_BACKEND", "numpy")
    assert backend.default_module() is np


@pytest.mark.parametrize("result", [None, "list", "str"])
def test_grad_of_non_array_output(result):
    def f(x):
        return {"list": [gnp.sum(x), gnp.sum(x)], "str": "loss", None: None}[result]
    with pytest.raises(TypeError, match="one scalar array.*returned"):
        gpuad.grad(f)(np.ones(2))


def test_tensor_methods_match_gnp_functions():
    x = np.array([[1.0, 5.0], [3.0, 2.0]])
    methods = lambda t: (t.cumprod(0).sum() + t.ptp() + t.repeat(2).sum() + t.take([0, 3]).sum()  # noqa: E731
                         + t.real.sum() + t.clip(min=1.5, max=4).sum() + t.reshape(shape=(4,)).sum()
                         + divmod(t, 2.0)[1].sum() + t[t.argmax(axis=1, keepdims=True)].sum())
    functions = lambda t: (gnp.sum(gnp.cumprod(t, 0)) + gnp.ptp(t) + gnp.sum(gnp.repeat(t, 2))  # noqa: E731
                           + gnp.sum(gnp.take(t, [0, 3])) + gnp.sum(t) + gnp.sum(gnp.clip(t, 1.5, 4))
                           + gnp.sum(t) + gnp.sum(gnp.mod(t, 2.0)) + gnp.sum(t[np.argmax(x, 1)[:, None]]))
    np.testing.assert_allclose(gpuad.grad(methods)(x), gpuad.grad(functions)(x))
    check_grads = gpuad.testing.check_grads
    check_grads(functions, [x + 0.1], order=2)
    t = gpuad.tensor(x)
    assert t.all() and not (t > 4).all() and t.argsort().shape == (2, 2) and len(t.nonzero()) == 2


def test_non_differentiable_functions_return_plain_arrays():
    x = np.array([[1.0, 5.0], [3.0, np.nan]])

    def f(t):
        for value in (np.greater(t, 2), np.isfinite(t), np.argmax(np.nan_to_num(t), axis=1), gnp.isnan(t),
                      gnp.argsort(t), gnp.count_nonzero(t), np.any(t > 4), gnp.unique(t)):
            assert not isinstance(value, gpuad.Tensor)
        return gnp.sum(gnp.where(np.isfinite(t), t, 0.0))
    np.testing.assert_array_equal(gpuad.grad(f)(x), [[1, 1], [1, 0]])


@pytest.mark.parametrize("call", [lambda x: gnp.concatenate([x, x], axis=2),
                                  lambda x: gnp.concatenate([x, x], axis=-3),
                                  lambda x: gnp.stack([x, x], axis=3)])
def test_axis_out_of_range_is_numpys_axis_error(call):
    with pytest.raises(np.exceptions.AxisError):
        gpuad.grad(lambda x: gnp.sum(call(x)))(np.ones((2, 2)))
    with pytest.raises(np.exceptions.AxisError):
        call(np.ones((2, 2)))


def test_public_namespace_is_numpy_names_only():
    names = set(dir(gnp))
    assert not names & {"aval", "raw", "bind", "traceable", "SUM", "builtins", "Tensor", "backend"}
    assert {"sum", "sin", "linalg", "einsum", "argmax", "greater", "meshgrid", "float32", "pi"} <= names


def test_division_by_a_python_zero_gives_inf_like_numpy():
    with np.errstate(divide="ignore"):
        out, tangent = gpuad.jvp(lambda x: x / 0.0, (np.ones(2),), (np.ones(2),))
        assert np.isinf(out).all() and np.isinf(tangent).all()
        assert np.isinf(gpuad.grad(lambda x: gnp.sum(x / 0.0))(np.ones(2))).all()
        g32 = gpuad.grad(lambda x: gnp.sum(x / 2.0 + 1 / x))(np.ones(2, np.float32))
    assert g32.dtype == np.float32


def test_numpy_scalars_go_with_the_other_operands_backend(monkeypatch):
    class FakeCupyArray:
        pass
    fake_cupy = type("module", (), {"__name__": "cupy"})
    monkeypatch.setitem(backend._module_by_type, FakeCupyArray, fake_cupy)
    assert backend.array_module(FakeCupyArray(), np.float32(2.0), 3.0) is fake_cupy
    assert backend.array_module(np.float64(1.0)) is np


def test_gradient_inside_the_tape_block_takes_the_fused_path():
    from gpuad import fusion
    before = fusion.stats["regions"]
    x, w = np.random.rand(5), np.random.rand(5)
    with gpuad.Tape() as tape:
        a, b = tape.watch(x), tape.watch(w)
        y = gnp.sum(gnp.sin(a) * b + a * a * gnp.exp(-b))
        ga, gb = tape.gradient(y, [a, b])
    assert fusion.stats["regions"] > before
    np.testing.assert_allclose(ga, np.cos(x) * w + 2 * x * np.exp(-w))
    np.testing.assert_allclose(gb, np.sin(x) - x * x * np.exp(-w))
