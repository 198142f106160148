"""jacfwd, jacrev and jacobian agree with each other and with stacked gradients for (n, m) in {(1, 50), (50, 1),
(7, 7)} and with several arguments (argnums tuples, pytrees); jacobian's automatic choice of mode; hessian is
symmetric and equals finite differences of the gradient; hvp equals hessian @ v; nesting in every order."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import grad, hessian, hvp, jacfwd, jacobian, jacrev, jvp, vmap
from gpuad import jacobians


def close(a, b, tol=1e-9):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=tol, atol=tol)


def random_function(n, m, seed):
    rng = np.random.default_rng(seed)
    w1, w2 = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    c = rng.standard_normal(m)

    def f(x):
        return gnp.tanh(w1 @ x + c) * gnp.exp(0.3 * (w2 @ gnp.sin(x))) + gnp.sum(x ** 2) * c
    return f, rng.standard_normal(n)


def stacked_grads(f, x, m):
    return np.stack([grad(lambda v, i=i: f(v)[i])(x) for i in range(m)])


@pytest.mark.parametrize("n,m", [(1, 50), (50, 1), (7, 7)])
def test_modes_agree_with_each_other_and_with_stacked_grads(n, m):
    f, x = random_function(n, m, seed=n * 100 + m)
    expected = stacked_grads(f, x, m)
    for jac in (jacfwd(f), jacrev(f), jacobian(f), jacobian(f, mode="fwd"), jacobian(f, mode="rev")):
        J = jac(x)
        assert J.shape == (m, n)
        close(J, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shapes_are_out_shape_plus_in_shape(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3)).astype(dtype)
    f = lambda x: gnp.sin(x).T @ gnp.cos(x)  # noqa: E731  (3, 3)
    a, b = jacfwd(f)(x), jacrev(f)(x)
    assert a.shape == b.shape == (3, 3, 2, 3) and a.dtype == b.dtype == dtype
    close(a, b, 1e-5 if dtype == np.float32 else 1e-10)
    # a scalar output: jacrev is the gradient
    s = lambda x: gnp.sum(gnp.sin(x) ** 2)  # noqa: E731
    close(jacrev(s)(x), grad(s)(x), 1e-5)
    close(jacfwd(s)(x), grad(s)(x), 1e-5)


def test_argnums_tuples_and_pytrees():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(3), rng.standard_normal((2, 2))

    def f(x, k, y):
        return {"a": gnp.sum(x) * y * k, "b": gnp.sin(x) * gnp.sum(y)}

    for jac in (jacfwd, jacrev, jacobian):
        J = jac(f, argnums=(0, 2))(x, 2.0, y)
        assert set(J) == {"a", "b"} and isinstance(J["a"], tuple)
        assert J["a"][0].shape == (2, 2, 3) and J["a"][1].shape == (2, 2, 2, 2)
        assert J["b"][0].shape == (3, 3) and J["b"][1].shape == (3, 2, 2)
        close(J["b"][0], np.diag(np.cos(x)) * y.sum())
        close(J["a"][0], np.broadcast_to(2.0 * y[:, :, None], (2, 2, 3)))
        close(J["b"][1], np.broadcast_to(np.sin(x)[:, None, None], (3, 2, 2)))
    # a pytree argument
    params = {"w": rng.standard_normal((2, 3)), "b": rng.standard_normal(2)}
    g = lambda p, x: gnp.tanh(p["w"] @ x + p["b"])  # noqa: E731
    Jf, Jr = jacfwd(g)(params, x), jacrev(g)(params, x)
    assert Jf["w"].shape == (2, 2, 3) and Jf["b"].shape == (2, 2)
    close(Jf["w"], Jr["w"])
    close(Jf["b"], Jr["b"])


def test_auto_mode_follows_the_cost_table(monkeypatch):
    calls = []
    real_fwd, real_rows = jacobians.jacfwd, jacobians._rows
    f_wide, x_wide = random_function(2, 9, 0)   # n < m: forward
    f_tall, x_tall = random_function(9, 2, 0)   # n >= m: reverse
    monkeypatch.setattr(jacobians, "_rows", lambda *a: calls.append("rev") or real_rows(*a))
    jac = jacobian(f_wide)
    close(jac(x_wide), real_fwd(f_wide)(x_wide))
    jacobian(f_tall)(x_tall)
    assert calls == ["rev"]  # only the tall one went through the reverse rows
    with pytest.raises(ValueError, match="mode must be"):
        jacobian(f_tall, mode="sideways")


def test_hessian_symmetric_and_matches_finite_differences():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))

    def f(x):
        return gnp.sum(gnp.sin(x) * (a @ x) ** 2) + gnp.prod(gnp.cos(x))

    x = rng.standard_normal(4)
    H = hessian(f)(x)
    assert H.shape == (4, 4)
    close(H, H.T, 1e-10)
    eps = 1e-5
    g = grad(f)
    fd = np.stack([(g(x + eps * e) - g(x - eps * e)) / (2 * eps) for e in np.eye(4)])
    close(H, fd, 1e-6)
    for other in (jacfwd(jacfwd(f)), jacrev(jacrev(f)), jacrev(jacfwd(f))):
        close(other(x), H)
    # several arguments: blocks of the Hessian
    h2 = hessian(lambda x, y: gnp.sum(x ** 2 * y) + gnp.sum(y ** 3), argnums=(0, 1))(x, x + 1)
    close(h2[0][1], np.diag(2 * x))
    close(h2[1][1], np.diag(6 * (x + 1)))


def test_hvp_equals_hessian_times_v_and_returns_the_gradient():
    rng = np.random.default_rng(4)

    def rosenbrock(x):
        return gnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    x, v = rng.standard_normal(6), rng.standard_normal(6)
    g, hv = hvp(rosenbrock, (x,), (v,))
    close(g, grad(rosenbrock)(x))
    close(hv, hessian(rosenbrock)(x) @ v)
    (gx, gy), (hx, hy) = hvp(lambda x, y: gnp.sum(x * y ** 2), (x, x), (v, v))
    close(gx, x ** 2)
    close(hx, 2 * x * v)
    close(hy, 2 * x * v + 2 * v * x)
    with pytest.raises(TypeError, match="tuples"):
        hvp(rosenbrock, x, v)


def test_jacobians_compose_with_vmap_and_jvp():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 3))
    f = lambda x: gnp.tanh(w @ x)  # noqa: E731
    xs = rng.standard_normal((4, 3))
    per = vmap(jacrev(f))(xs)
    close(per, np.stack([jacfwd(f)(x) for x in xs]))
    close(vmap(jacfwd(f))(xs), per)
    # jvp of a Jacobian: the directional derivative of J
    v = rng.standard_normal(3)
    _, dj = jvp(jacrev(f), (xs[0],), (v,))
    eps = 1e-6
    close(dj, (jacrev(f)(xs[0] + eps * v) - jacrev(f)(xs[0] - eps * v)) / (2 * eps), 1e-6)
    # a Jacobian inside grad
    s = lambda x: gnp.sum(jacfwd(f)(x) ** 2)  # noqa: E731
    close(grad(s)(xs[0]), jacrev(s)(xs[0]))


def test_errors():
    with pytest.raises(TypeError, match="floating-point"):
        jacfwd(lambda x: x * 2)(np.arange(3))
    with pytest.raises(ValueError, match="argnums"):
        jacrev(lambda x: x, argnums=3)(np.ones(2))
    assert callable(gpuad.jacobian)
