"""custom_vjp and custom_jvp: the user's rule is what runs, pytrees, nondiff_argnums, checked rule outputs, and
derivatives of every order (JAX's semantics)."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape)


# ---- custom_vjp --------------------------------------------------------------------------------------------

def _sin_times():
    calls = {"fun": 0, "fwd": 0, "bwd": 0}

    @gpuad.custom_vjp
    def f(x, y):
        calls["fun"] += 1
        return gnp.sin(x) * y

    def f_fwd(x, y):
        calls["fwd"] += 1
        return f(x, y), (gnp.cos(x), gnp.sin(x), y)

    def f_bwd(res, g):
        calls["bwd"] += 1
        c, s, y = res
        return c * y * g, s * g

    f.defvjp(f_fwd, f_bwd)
    return f, calls


def test_custom_vjp_value_and_gradient():
    f, calls = _sin_times()
    x, y = _x(5), _x(5)
    np.testing.assert_allclose(f(x, y), np.sin(x) * y)
    assert calls == {"fun": 1, "fwd": 0, "bwd": 0}  # no traced argument: just the function
    gx, gy = gpuad.grad(lambda x, y: gnp.sum(f(x, y)), (0, 1))(x, y)
    np.testing.assert_allclose(gx, np.cos(x) * y)
    np.testing.assert_allclose(gy, np.sin(x))
    assert calls["fwd"] == 1 and calls["bwd"] == 1
    assert calls["fun"] == 2  # once plainly above, once inside fwd (on raw values)


def test_custom_vjp_rule_is_what_runs():
    @gpuad.custom_vjp
    def f(x):
        return gnp.sin(x)

    f.defvjp(lambda x: (f(x), None), lambda res, g: (3.0 * g,))
    x = _x(4)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(f(x)))(x), 3.0 * np.ones(4))
    _, pull = gpuad.vjp(f, x)
    np.testing.assert_allclose(pull(np.arange(4.0))[0], 3.0 * np.arange(4.0))


def test_custom_vjp_second_order_through_bwd():
    f, _ = _sin_times()
    x, y = _x(3), _x(3)
    check_grads(f, (x, y), order=2, modes=("rev",))
    hess_diag = gpuad.grad(lambda x: gnp.sum(gpuad.grad(lambda x: gnp.sum(f(x, y)))(x)))(x)
    np.testing.assert_allclose(hess_diag, -np.sin(x) * y)


def test_custom_vjp_forward_mode_is_an_error():
    f, _ = _sin_times()
    with pytest.raises(TypeError, match="custom_vjp"):
        gpuad.jvp(lambda x: f(x, x), (_x(3),), (_x(3),))


def test_custom_vjp_pytrees_in_and_out():
    @gpuad.custom_vjp
    def f(params, x):
        return {"lin": params["w"] * x + params["b"], "sq": (x * x, gnp.sum(x))}

    def fwd(params, x):
        return f(params, x), (params["w"], x)

    def bwd(res, g):
        w, x = res
        gl, (gsq, gs) = g["lin"], g["sq"]
        return {"w": g["lin"] * x, "b": gl}, gl * w + 2 * x * gsq + gs

    f.defvjp(fwd, bwd)
    params, x = {"w": _x(4), "b": _x(4)}, _x(4)

    def ref(params, x):
        return {"lin": params["w"] * x + params["b"], "sq": (x * x, gnp.sum(x))}

    def loss(fn):
        def l(params, x):
            out = fn(params, x)
            return gnp.sum(out["lin"] ** 2) + gnp.sum(gnp.sin(out["sq"][0])) + 3 * out["sq"][1]
        return l

    got = gpuad.grad(loss(f), (0, 1))(params, x)
    want = gpuad.grad(loss(ref), (0, 1))(params, x)
    for a, b in zip([got[0]["w"], got[0]["b"], got[1]], [want[0]["w"], want[0]["b"], want[1]]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    check_grads(f, (params, x), order=2, modes=("rev",))


def test_custom_vjp_mixed_dtypes_and_integer_outputs():
    @gpuad.custom_vjp
    def f(x):
        return x.astype(np.float32) * 2, x * 3, np.argmax(raw(x))

    def raw(v):
        return v.data if isinstance(v, gpuad.Tensor) else v

    f.defvjp(lambda x: (f(x), None), lambda res, g: (2 * g[0].astype(np.float64) + 3 * g[1],))
    x = _x(3)
    a, b, i = f(x)
    assert a.dtype == np.float32 and b.dtype == np.float64 and int(i) == int(np.argmax(x))
    out = gpuad.grad(lambda x: gnp.sum(f(x)[0]) + gnp.sum(f(x)[1]))(x)
    np.testing.assert_allclose(out, 5 * np.ones(3))
    _, pull = gpuad.vjp(lambda x: f(x)[:2], x)
    g = pull((np.ones(3, np.float32), np.ones(3)))[0]
    np.testing.assert_allclose(g, 5 * np.ones(3))


def test_custom_vjp_nondiff_argnums():
    @gpuad.custom_vjp
    def apply(fn, x, n):
        return fn(x) * n

    def fwd(fn, x, n):
        return apply(fn, x, n), x

    def bwd(fn, n, x, g):  # nondiff arguments first, in order
        _, pull = gpuad.vjp(fn, x)
        return (pull(g * n)[0],)

    apply = gpuad.custom_vjp(apply.fun, nondiff_argnums=(0, 2))
    apply.defvjp(fwd, bwd)
    x = _x(4)
    g = gpuad.grad(lambda x: gnp.sum(apply(gnp.tanh, x, 3)))(x)
    np.testing.assert_allclose(g, 3 * (1 - np.tanh(x) ** 2))


def test_custom_vjp_checks_what_bwd_returns():
    def make(bwd):
        @gpuad.custom_vjp
        def f(x, y):
            return x * y
        f.defvjp(lambda x, y: (f(x, y), (x, y)), bwd)
        return lambda x, y: gnp.sum(f(x, y))

    x, y = _x(3), _x(3)
    with pytest.raises(TypeError, match="one cotangent per differentiable argument"):
        gpuad.grad(make(lambda res, g: g))(x, y)
    with pytest.raises(TypeError, match=r"one cotangent per differentiable argument \(2"):
        gpuad.grad(make(lambda res, g: (g,)))(x, y)
    with pytest.raises(ValueError, match=r"shape \(2,\) for an input leaf of shape \(3,\)"):
        gpuad.grad(make(lambda res, g: (g[:2], g)))(x, y)
    with pytest.raises(TypeError, match="structure"):
        gpuad.grad(make(lambda res, g: ((g, g), g)))(x, y)
    # None stands for a zero cotangent
    g = gpuad.grad(make(lambda res, g: (None, g * res[0])), (0, 1))(x, y)
    np.testing.assert_allclose(g[0], np.zeros(3))
    np.testing.assert_allclose(g[1], x)
    with pytest.raises(TypeError, match="pair"):
        @gpuad.custom_vjp
        def h(x):
            return x
        h.defvjp(lambda x: x, lambda r, g: (g,))
        gpuad.grad(lambda x: gnp.sum(h(x)))(x)


def test_custom_vjp_without_rule_and_with_closure():
    @gpuad.custom_vjp
    def f(x):
        return x
    with pytest.raises(AttributeError, match="defvjp"):
        f(_x(2))

    def outer(w):
        @gpuad.custom_vjp
        def g(x):
            return x * w  # closes over a traced value
        g.defvjp(lambda x: (g(x), None), lambda r, ct: (ct,))
        return gnp.sum(g(gpuad.tensor(_x(2))))

    with pytest.raises(TypeError, match="closes over"):
        gpuad.grad(outer)(_x(2))


def test_custom_vjp_on_a_tape_keeps_the_residuals_only():
    @gpuad.custom_vjp
    def f(x):
        y = x
        for _ in range(10):
            y = gnp.sin(y) @ np.eye(len(x))
        return y

    f.defvjp(lambda x: (f(x), x), lambda x, g: (2 * g,))
    x = gpuad.tensor(_x(64))
    with gpuad.Tape() as tape:
        y = gnp.sum(f(x))
    assert tape.saved_bytes() == x.data.nbytes  # only the residual (x itself)
    np.testing.assert_allclose(tape.gradient(y, x), 2 * np.ones(64))


def test_custom_vjp_returned_cotangent_is_never_added_into():
    # bwd hands back its cotangent and a residual as they are; the raw backward pass must not add into them
    @gpuad.custom_vjp
    def f(x):
        return x * 1.0

    keep = np.ones(3)
    f.defvjp(lambda x: (f(x), keep), lambda res, g: (res,))
    x = gpuad.tensor(_x(3))
    with gpuad.Tape(persistent=True) as tape:
        y = gnp.sum(f(x)) + gnp.sum(f(x)) + gnp.sum(x)
    for _ in range(2):
        np.testing.assert_allclose(tape.gradient(y, x), 3 * np.ones(3))
    np.testing.assert_allclose(keep, np.ones(3))


# ---- custom_jvp --------------------------------------------------------------------------------------------

def _softplus():
    calls = {"rule": 0}

    @gpuad.custom_jvp
    def softplus(x):
        return gnp.log1p(gnp.exp(x))

    @softplus.defjvp
    def softplus_jvp(primals, tangents):
        calls["rule"] += 1
        (x,), (t,) = primals, tangents
        return softplus(x), t / (1 + gnp.exp(-x))

    return softplus, calls


def test_custom_jvp_every_mode_and_order():
    f, calls = _softplus()
    x = _x(4)
    check_grads(f, (x,), order=2)
    assert calls["rule"] > 0
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(f(x)))(x), 1 / (1 + np.exp(-x)))
    # third order in reverse: sigmoid'' = s (1 - s) (1 - 2 s)
    s = 1 / (1 + np.exp(-x))
    d = lambda fn: (lambda x: gpuad.grad(lambda x: gnp.sum(fn(x)))(x))  # noqa: E731
    np.testing.assert_allclose(d(d(d(f)))(x), s * (1 - s) * (1 - 2 * s), rtol=1e-10)


def test_custom_jvp_rule_is_what_runs_in_both_modes():
    @gpuad.custom_jvp
    def f(x):
        return gnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return gnp.sin(x), 5.0 * t  # deliberately not cos(x)

    x, v = _x(3), _x(3)
    np.testing.assert_allclose(gpuad.jvp(f, (x,), (v,))[1], 5.0 * v)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(f(x)))(x), 5.0 * np.ones(3))
    calls = []

    @gpuad.custom_jvp
    def h(x):
        calls.append("fun")
        return gnp.sin(x)

    @h.defjvp
    def h_jvp(primals, tangents):
        calls.append("rule")
        (x,), (t,) = primals, tangents
        return gnp.cos(x) * 0 + 7.0, t  # the rule's primal output is what forward mode returns

    y, ty = gpuad.jvp(h, (x,), (v,))
    np.testing.assert_allclose(y, 7.0 * np.ones(3))
    assert calls == ["rule"]


def test_custom_jvp_pytrees_and_nondiff_argnums():
    def fun(scale, xs):
        a, b = xs["a"], xs["b"]
        return (a * b * scale, gnp.sum(a))

    f = gpuad.custom_jvp(fun, nondiff_argnums=(0,))

    @f.defjvp
    def f_jvp(scale, primals, tangents):
        (xs,), (ts,) = primals, tangents
        a, b = xs["a"], xs["b"]
        ta, tb = ts["a"], ts["b"]
        return f(scale, xs), ((ta * b + a * tb) * scale, gnp.sum(ta))

    xs = {"a": _x(3), "b": _x(3)}
    check_grads(lambda xs: f(2.5, xs), (xs,), order=2)
    want = gpuad.grad(lambda xs: gnp.sum(fun(2.5, xs)[0] ** 2) + fun(2.5, xs)[1])(xs)
    got = gpuad.grad(lambda xs: gnp.sum(f(2.5, xs)[0] ** 2) + f(2.5, xs)[1])(xs)
    for k in "ab":
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12)


def test_custom_jvp_checks_the_rule():
    @gpuad.custom_jvp
    def f(x):
        return gnp.sin(x)

    @f.defjvp
    def bad(primals, tangents):
        return gnp.sin(primals[0]), tangents[0][:1]

    with pytest.raises(ValueError, match="tangent of shape"):
        gpuad.jvp(f, (_x(3),), (_x(3),))
    with pytest.raises(ValueError, match="tangent of shape"):
        gpuad.grad(lambda x: gnp.sum(f(x)))(_x(3))

    @gpuad.custom_jvp
    def g(x):
        return gnp.sin(x)

    @g.defjvp
    def structure(primals, tangents):
        return gnp.sin(primals[0]), (tangents[0], tangents[0])

    with pytest.raises(TypeError, match="structure"):
        gpuad.jvp(g, (_x(3),), (_x(3),))


def test_custom_jvp_reverse_mode_keeps_the_inputs_only():
    @gpuad.custom_jvp
    def f(x):
        for _ in range(10):
            x = gnp.sin(x) @ np.eye(x.shape[0])
        return x

    @f.defjvp
    def f_jvp(primals, tangents):
        return f(primals[0]), 2 * tangents[0]

    x = gpuad.tensor(_x(32))
    with gpuad.Tape() as tape:
        y = gnp.sum(f(x))
    assert tape.saved_bytes() == x.data.nbytes
    np.testing.assert_allclose(tape.gradient(y, x), 2 * np.ones(32))
