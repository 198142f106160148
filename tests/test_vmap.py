"""vmap against a Python loop over the examples: every elementwise row (from the rule table, inside its domain),
a table of uses covering every Linear and Custom row (a row without a batching rule or without a case here
fails), in_axes/out_axes variants, float64 and float32; vmap composed with grad, vjp, jvp, Tape and itself in
every order; the errors (mismatched sizes, a batched value in `if`, a primitive without a rule)."""
import numpy as np
import pytest

import gpuad
import gpuad.nn as nn
import gpuad.numpy as gnp
from gpuad import grad, jvp, vjp, vmap
from gpuad.ops.elementwise import Elementwise
from gpuad.ops import elementwise as elementwise_rows
from gpuad.ops.linear import FINITE_PART
from gpuad.rules import Custom, Primitive
from gpuad.testing import sample

B = 3


def _recurrence(a, b, axis, reverse):
    from gpuad.ops.scans import RECURRENCE  # cumprod's rules: h_i = a_i + b_i h_(i-1)
    return RECURRENCE.bind(a, b, axis=axis, reverse=reverse)
ELEMENTWISE = sorted((p for p in vars(elementwise_rows).values() if isinstance(p, Elementwise)), key=lambda p: p.name)


def loop(f, in_axes, *args):
    """The reference: f applied to each example, results stacked along axis 0."""
    size = next(np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None)
    def example(a, ax, i):
        a = a if ax is None else np.take(a, i, axis=ax)
        return gpuad.tensor(a) if np.asarray(a).dtype.kind == "f" else a  # (t.at[...] needs a Tensor)
    outs = [f(*[example(a, ax, i) for a, ax in zip(args, in_axes)]) for i in range(size)]
    return np.stack([np.asarray(gpuad.stop_gradient(o)) for o in outs])


def close(a, b, dtype=np.float64):
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=tol, atol=tol)


# ---- every elementwise row --------------------------------------------------------------------------------------

ELEMENTWISE_LAYOUTS = {  # per argument: (shape of one example, mapped axis or None)
    1: [[((2,), 0)], [((2, 2), 1)], [((), 0)]],
    2: [[((2,), 0), ((2,), 0)], [((2, 1), 0), ((3,), None)], [((), None), ((2,), 1)], [((3,), 0), ((2, 3), 0)]],
    3: [[((2,), 0), ((2,), 0), ((2,), 0)], [((2,), None), ((), 0), ((2, 2), 0)]],
}


def _batched_values(prim, layout, rng, dtype):
    domains = prim.domain or (None,) * prim.arity
    values, axes = [], []
    for d, (shape, ax) in zip(domains, layout):
        if ax is None:
            values.append(sample(d, shape, rng, dtype))
        else:
            full = shape[:ax] + (B,) + shape[ax:]
            values.append(sample(d, full, rng, dtype))
        axes.append(ax)
    return values, tuple(axes)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("prim", ELEMENTWISE, ids=lambda p: p.name)
def test_elementwise_row_matches_loop(prim, dtype):
    fn = getattr(gnp, prim.name)
    rng = np.random.default_rng(0)
    for layout in ELEMENTWISE_LAYOUTS[prim.arity]:
        values, axes = _batched_values(prim, layout, rng, dtype)
        out = vmap(fn, in_axes=axes)(*values)
        close(out, loop(fn, axes, *values), dtype)
        assert out.dtype == loop(fn, axes, *values).dtype
        diff = [k for k in range(prim.arity) if k not in prim.nondiff and values[k].dtype.kind == "f"]
        if not diff or dtype != np.float64:
            continue
        loss = lambda *a: gnp.sum(fn(*a) * 1.5)  # noqa: E731
        g = grad(loss, argnums=tuple(diff))
        got = vmap(g, in_axes=axes)(*values)
        want = [loop(lambda *a: g(*a)[i], axes, *values) for i in range(len(diff))]
        for a, b in zip(got, want):
            close(a, np.broadcast_to(b, np.shape(a)))


# ---- every Linear and Custom row: a table of uses ---------------------------------------------------------------

def _spd(rng, n):
    a = rng.standard_normal((B, n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _w(rng):
    return rng.standard_normal((3, 4))


CASES = [  # (primitive names covered, function, make args (rng) -> (values, in_axes))
    ({"reshape"}, lambda x: gnp.reshape(x, (3, 2)), lambda r: ([r.standard_normal((B, 2, 3))], (0,))),
    ({"transpose"}, lambda x: gnp.transpose(x, (2, 0, 1)), lambda r: ([r.standard_normal((2, B, 3, 4))], (1,))),
    ({"broadcast_to"}, lambda x: gnp.broadcast_to(x, (2, 3)), lambda r: ([r.standard_normal((B, 3))], (0,))),
    ({"convert"}, lambda x: gnp.sin(x.astype(np.float32)), lambda r: ([r.standard_normal((B, 3))], (0,))),
    ({"sum"}, lambda x: gnp.sum(x, axis=0) + gnp.sum(x, axis=(0, 1), keepdims=True),
     lambda r: ([r.standard_normal((B, 2, 3))], (0,))),
    ({"getitem"}, lambda x: x[1:, ::2] + x[0, 1::2], lambda r: ([r.standard_normal((B, 3, 4))], (0,))),
    ({"getitem"}, lambda x: x[np.array([0, 2, 2]), :, np.array([1, 0, 1])] * 2.0,
     lambda r: ([r.standard_normal((B, 3, 2, 2))], (0,))),
    ({"getitem"}, lambda x: x[:, np.array([[0, 1], [2, 2]])], lambda r: ([r.standard_normal((3, B, 4))], (1,))),
    ({"getitem"}, lambda x: x[x[:, 0] > 0, 0] * 0 + gnp.sum(x[..., None, 1]),
     lambda r: ([r.standard_normal((4, 2))], None)),  # (not batched: a boolean mask needs a fixed shape)
    ({"scatter_add"}, lambda x: x.at[np.array([0, 0, 2])].add(x[1]) + x.at[1:].set(2.0),
     lambda r: ([r.standard_normal((B, 4, 2))], (0,))),
    ({"scatter_add"}, lambda x: x.at[np.array([0, 1]), :, np.array([1, 1])].add(1.5 * x[0, :, 0]),
     lambda r: ([r.standard_normal((B, 2, 3, 2))], (0,))),
    ({"concatenate"}, lambda x, y: gnp.concatenate([x, y, x], axis=-1),
     lambda r: ([r.standard_normal((B, 2, 3)), r.standard_normal((2, 1))], (0, None))),
    ({"matmul"}, lambda x, y: x @ y, lambda r: ([r.standard_normal((B, 3)), _w(r)], (0, None))),
    ({"matmul"}, lambda x, y: x @ y, lambda r: ([r.standard_normal((2, 3)), r.standard_normal((3, B))], (None, 1))),
    ({"matmul"}, lambda x, y: x @ y, lambda r: ([r.standard_normal((B, 4)), r.standard_normal((B, 4))], (0, 0))),
    ({"matmul"}, lambda x, y: x @ y,
     lambda r: ([r.standard_normal((B, 2, 3)), r.standard_normal((5, 3, 2))], (0, None))),
    ({"matmul"}, lambda x, y: y @ x,
     lambda r: ([r.standard_normal((B, 3)), r.standard_normal((5, 2, 3))], (0, None))),
    ({"matmul"}, lambda x, y: x @ y,
     lambda r: ([r.standard_normal((B, 4, 2, 3)), r.standard_normal((B, 3))], (0, 0))),
    ({"amax", "amin"}, lambda x: gnp.max(x, axis=1)[:, None] - gnp.min(x, axis=0, keepdims=True),
     lambda r: ([r.standard_normal((B, 3, 4))], (0,))),
    ({"prod"}, lambda x: gnp.prod(x, axis=-1), lambda r: ([r.uniform(0.5, 2, (B, 2, 3))], (0,))),
    ({"finite_part"}, lambda x: FINITE_PART.bind(x * 2.0) + x, lambda r: ([r.standard_normal((B, 2, 3))], (0,))),
    ({"cumsum", "cumprod"}, lambda x: gnp.cumsum(x, axis=0) + gnp.cumprod(x, axis=1),
     lambda r: ([r.uniform(0.5, 2, (2, B, 3))], (1,))),
    ({"recurrence"}, lambda a, b: _recurrence(a, b, axis=1, reverse=False) + _recurrence(a, b, axis=0, reverse=True),
     lambda r: ([r.standard_normal((B, 2, 3)), r.uniform(-1.5, 1.5, (2, 3))], (0, None))),
    ({"einsum"}, lambda x, y: gnp.einsum("ij,jk->ik", x, y) + gnp.einsum("ii->i", x)[:, None],
     lambda r: ([r.standard_normal((B, 3, 3)), r.standard_normal((3, 2))], (0, None))),
    ({"einsum"}, lambda x, y: gnp.einsum("...j,j->...", x, y),
     lambda r: ([r.standard_normal((2, 3)), r.standard_normal((B, 3))], (None, 0))),
    ({"inv", "det", "slogdet"},
     lambda a: gnp.linalg.inv(a) * gnp.linalg.det(a) + gnp.linalg.slogdet(a)[1],
     lambda r: ([_spd(r, 3)], (0,))),
    ({"solve"}, lambda a, b: gnp.linalg.solve(a, b),
     lambda r: ([_spd(r, 3), r.standard_normal((3, 2))], (0, None))),
    ({"solve"}, lambda a, b: gnp.linalg.solve(a, b),
     lambda r: ([_spd(r, 3)[0], r.standard_normal((B, 3))], (None, 0))),
    ({"cholesky", "eigh"}, lambda a: gnp.linalg.cholesky(a) + gnp.sum(gnp.linalg.eigh(a)[0]),
     lambda r: ([_spd(r, 3)], (0,))),
    ({"eig"}, lambda a: gnp.linalg.eig(a)[0] + gnp.sum(gnp.linalg.eig(a)[1] ** 2, axis=0),
     lambda r: ([np.triu(r.standard_normal((B, 3, 3))) + np.diag([0.0, 3.0, 6.0]) + _spd(r, 3) * 0.01], (0,))),
    ({"svd", "qr", "pinv"},
     lambda a: gnp.sum(gnp.linalg.svd(a, full_matrices=False)[1]) + gnp.linalg.qr(a)[0] + gnp.linalg.pinv(a).T,
     lambda r: ([r.standard_normal((B, 4, 3))], (0,))),
]


def _table_rows():
    """Every primitive of the rule tables (the modules of gpuad.ops; tests may register others)."""
    import importlib
    import pkgutil

    import gpuad.ops
    rows = {}
    for info in pkgutil.iter_modules(gpuad.ops.__path__):
        module = importlib.import_module(f"gpuad.ops.{info.name}")
        rows.update({v.name: v for v in vars(module).values() if isinstance(v, Primitive)})
    return rows.values()


def test_every_primitive_has_a_batching_rule_and_a_case():
    covered = set().union(*(names for names, _, _ in CASES))
    for prim in _table_rows():
        if isinstance(prim, Elementwise):
            continue
        assert prim.batch is not None, f"{prim.name} has no batching rule"
        assert prim.name in covered, f"{prim.name} has no vmap case in tests/test_vmap.py"


def _check_case(fun, values, axes, dtype):
    values = [v.astype(dtype) for v in values]
    if axes is None:  # the case is about an unbatched use inside a vmapped function
        values.append(np.arange(B, dtype=dtype))
        f = lambda *a: fun(*a[:-1]) * a[-1]  # noqa: E731
        axes = (None,) * (len(values) - 1) + (0,)
    else:
        f = fun
    close(vmap(f, in_axes=axes)(*values), loop(f, axes, *values), dtype)
    # out_axes: the batch axis last
    out = vmap(f, in_axes=axes, out_axes=-1)(*values)
    close(np.moveaxis(np.asarray(out), -1, 0), loop(f, axes, *values), dtype)
    if dtype == np.float64:
        diff = tuple(k for k, ax in enumerate(axes) if ax is not None)
        g = grad(lambda *a: gnp.sum(gnp.sin(f(*a))), argnums=diff)
        got = vmap(g, in_axes=axes)(*values)
        for i, a in enumerate(got):
            close(a, loop(lambda *v: g(*v)[i], axes, *values))
        # forward mode inside vmap (the Custom rows' JVPs on batched values), and vmap inside jvp
        tangents = [np.cos(v) if k in diff else None for k, v in enumerate(values)]

        def directional(*a):
            consts = list(a)

            def h(*d):
                for k, v in zip(diff, d):
                    consts[k] = v
                return f(*consts)
            return jvp(h, tuple(a[k] for k in diff), tuple(gnp.cos(a[k]) for k in diff))[1]
        close(vmap(directional, in_axes=axes)(*values), loop(directional, axes, *values))
        outer = jvp(lambda *d: vmap(f, in_axes=axes)(*[d[diff.index(k)] if k in diff else v
                                                          for k, v in enumerate(values)]),
                    tuple(values[k] for k in diff), tuple(tangents[k] for k in diff))[1]
        close(outer, loop(directional, axes, *values))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=lambda i: "+".join(sorted(CASES[i][0])) + f"-{i}")
def test_linear_and_custom_rows_match_loop(case, dtype):
    _, fun, make = CASES[case]
    values, axes = make(np.random.default_rng(case))
    _check_case(fun, values, axes, dtype)


# ---- in_axes / out_axes ---------------------------------------------------------------------------------------

def test_in_axes_pytrees_negative_axes_and_kwargs():
    rng = np.random.default_rng(1)
    p = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    xs = rng.standard_normal((3, B))

    def f(params, x, scale=1.0):
        return gnp.tanh(x @ params["w"] + params["b"]) * scale

    got = vmap(f, in_axes=({"w": None, "b": None}, -1))(p, xs)
    close(got, np.stack([f(p, xs[:, i]) for i in range(B)]))
    got = vmap(f, in_axes=[None, 1])(p, xs, scale=np.arange(B, dtype=float))  # keyword arguments: mapped over 0
    close(got, np.stack([f(p, xs[:, i], scale=float(i)) for i in range(B)]))
    # several outputs, out_axes per output, an output that does not depend on the batch
    out = vmap(lambda x: (x * 2, gnp.sum(x), 7.0), out_axes=(1, 0, None))(xs)
    close(out[0], (xs * 2).T)
    close(out[1], xs.sum(axis=1))
    assert out[2] == 7.0
    out = vmap(lambda x: {"a": 1.0 + 0 * gnp.sum(p["b"])}, in_axes=0)(xs.T)  # unbatched output: broadcast
    close(out["a"], np.ones(B))


def test_errors():
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match="inconsistent sizes"):
        vmap(lambda a, b: a + b)(x, np.ones((4, 2)))
    with pytest.raises(ValueError, match="out of range"):
        vmap(lambda a: a, in_axes=2)(x)
    with pytest.raises(ValueError, match="no argument is mapped"):
        vmap(lambda a: a, in_axes=None)(x)
    with pytest.raises(ValueError, match="in_axes has 2 entries"):
        vmap(lambda a: a, in_axes=(0, 0))(x)
    with pytest.raises(TypeError, match="batched value cannot be used as a Python bool"):
        vmap(lambda a: a if gnp.sum(a) > 0 else -a)(x)
    with pytest.raises(TypeError, match="batched value cannot be used"):
        vmap(lambda a: float(a[0]))(x)
    with pytest.raises(TypeError, match="batched value cannot be used as a Python int"):
        vmap(lambda a, i: a[int(i)])(x, np.array([0, 1, 1]))
    with pytest.raises(TypeError, match="batched value cannot be used as an index"):
        vmap(lambda a, i: [1.0, 2.0, 3.0][i])(x, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="out_axes None"):
        vmap(lambda a: a, out_axes=None)(x)
    with pytest.raises(NotImplementedError, match="nonzero"):
        vmap(lambda a: gnp.nonzero(a))(x)
    # control flow that does not read batched values works
    f = lambda a, n: sum(a * k for k in range(n)) if n > 1 else a  # noqa: E731
    close(vmap(f, in_axes=(0, None))(x, 3), 3 * x)


def test_a_primitive_without_a_rule_is_named():
    prim = Custom("vmap_test_op", lambda xp, x: x * 2, None, None)
    with pytest.raises(NotImplementedError, match="vmap has no batching rule for primitive 'vmap_test_op'"):
        vmap(lambda a: prim.bind(a))(np.ones((2, 3)))
    np.testing.assert_allclose(prim.bind(np.ones(2)), 2.0)  # outside vmap it is unaffected
    assert isinstance(prim, Primitive)


def test_nondifferentiable_functions_stay_batched():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, 4, 2))
    for f in [lambda a: gnp.argmax(a), lambda a: gnp.argmax(a, axis=0), lambda a: a.argmin(axis=-1),
              lambda a: (a > 0).any(axis=1), lambda a: gnp.isfinite(a) & (a < 1), lambda a: gnp.argsort(a, 0),
              lambda a: gnp.count_nonzero(a > 0), lambda a: gnp.isclose(a, a[0], atol=0.1), lambda a: len(a) + 0 * a]:
        np.testing.assert_array_equal(vmap(f)(x), np.stack([f(v) for v in x]))
    # softmax cross-entropy with integer labels and probabilities, per example
    w = rng.standard_normal((2, 3))
    labels = rng.integers(0, 3, (B, 4))
    loss = lambda w, x, y: nn.softmax_cross_entropy(x @ w, y)  # noqa: E731
    close(vmap(grad(loss), in_axes=(None, 0, 0))(w, x, labels), loop(grad(loss), (None, 0, 0), w, x, labels))
    probs = rng.random((B, 4, 3))
    close(vmap(grad(loss), in_axes=(None, 0, 0))(w, x, probs), loop(grad(loss), (None, 0, 0), w, x, probs))
    sm = lambda a: nn.softmax(a, axis=0) + nn.logsumexp(a, axis=1)[:, None]  # noqa: E731
    close(vmap(sm)(x), loop(sm, (0,), x))
    std = lambda a: gnp.std(a, axis=0)  # noqa: E731
    close(vmap(std)(np.concatenate([x, np.ones((1, 4, 2))])), loop(std, (0,), np.concatenate([x, np.ones((1, 4, 2))])))


# ---- composition ------------------------------------------------------------------------------------------------

def _model(w, x):
    return gnp.sum(gnp.tanh(x @ w) ** 2) + gnp.max(x) * gnp.sum(w)


W = np.random.default_rng(3).standard_normal((3, 2))
X = np.random.default_rng(4).standard_normal((5, 3))


def test_vmap_of_grad_is_per_example_gradients():
    close(vmap(grad(_model), in_axes=(None, 0))(W, X), loop(grad(_model), (None, 0), W, X))
    g = vmap(grad(_model, argnums=(0, 1)), in_axes=(None, 0))(W, X)
    close(g[1], loop(lambda w, x: grad(_model, argnums=1)(w, x), (None, 0), W, X))


def test_grad_of_vmap():
    total = lambda w: gnp.sum(vmap(_model, in_axes=(None, 0))(w, X))  # noqa: E731
    close(grad(total)(W), sum(grad(_model)(W, x) for x in X))
    total_x = lambda xs: gnp.sum(vmap(_model, in_axes=(None, 0))(W, xs) ** 2)  # noqa: E731
    close(grad(total_x)(X), np.stack([2 * _model(W, x) * grad(_model, argnums=1)(W, x) for x in X]))


def test_jvp_of_vmap_and_vmap_of_jvp():
    V = np.random.default_rng(5).standard_normal(X.shape)
    f = lambda x: gnp.sin(x) @ W  # noqa: E731
    out, tan = jvp(vmap(f), (X,), (V,))
    close(out, loop(f, (0,), X))
    close(tan, np.stack([jvp(f, (x,), (v,))[1] for x, v in zip(X, V)]))
    out, tan = vmap(lambda x, v: jvp(f, (x,), (v,)))(X, V)
    close(tan, np.stack([jvp(f, (x,), (v,))[1] for x, v in zip(X, V)]))


def test_vjp_under_vmap_both_ways():
    f = lambda x: gnp.exp(x) @ W  # noqa: E731
    U = np.random.default_rng(6).standard_normal((5, 2))
    per = vmap(lambda x, u: vjp(f, x)[1](u)[0])(X, U)
    close(per, np.stack([vjp(f, x)[1](u)[0] for x, u in zip(X, U)]))
    out, pull = vjp(vmap(f), X)
    close(pull(U)[0], per)
    _, pull = vjp(f, X[0])  # one recording, many cotangents pulled at once
    close(vmap(lambda u: pull(u)[0])(U), np.stack([pull(u)[0] for u in U]))


def test_nested_vmap_both_orders_and_with_grad():
    Y = np.random.default_rng(7).standard_normal((2, 5, 3))
    close(vmap(vmap(_model, in_axes=(None, 0)), in_axes=(None, 0))(W, Y),
          np.stack([[_model(W, x) for x in y] for y in Y]))
    close(vmap(vmap(_model, in_axes=(None, 0)), in_axes=(None, 1), out_axes=1)(W, Y),
          np.stack([[_model(W, x) for x in y] for y in Y]))
    g = vmap(vmap(grad(_model), in_axes=(None, 0)), in_axes=(None, 0))(W, Y)
    close(g, np.stack([[grad(_model)(W, x) for x in y] for y in Y]))
    h = vmap(grad(lambda w, xs: gnp.sum(vmap(_model, in_axes=(None, 0))(w, xs))), in_axes=(None, 0))(W, Y)
    close(h, np.stack([sum(grad(_model)(W, x) for x in y) for y in Y]))


def test_tape_inside_and_outside_vmap():
    def per_example(x):
        with gpuad.Tape() as tape:
            w = tape.watch(gpuad.tensor(W))
            y = _model(w, x)
        return tape.gradient(y, w)
    close(vmap(per_example)(X), loop(grad(_model), (None, 0), W, X))
    with gpuad.Tape() as tape:
        w = gpuad.tensor(W)
        y = gnp.sum(vmap(_model, in_axes=(None, 0))(w, X))
    close(tape.gradient(y, w), sum(grad(_model)(W, x) for x in X))


def test_second_order_through_vmap():
    f = lambda x: gnp.sum(gnp.sin(x) ** 3)  # noqa: E731
    gg = vmap(grad(lambda x: gnp.sum(grad(f)(x))))(X)
    close(gg, np.stack([grad(lambda x: gnp.sum(grad(f)(x)))(x) for x in X]))


def test_creation_like_norms_and_slogdet_inside_vmap():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((B, 3, 3))
    fns = [lambda a: a + gnp.zeros_like(a) + gnp.ones_like(a) * gnp.full_like(a, 2.0),
           lambda a: gnp.linalg.norm(a) + gnp.linalg.norm(a[0], ord=3),
           lambda a: gnp.linalg.slogdet(a)[0] * gnp.linalg.slogdet(a)[1]]
    for f in fns:
        close(vmap(f)(x), loop(f, (0,), x))
        g = grad(lambda a: gnp.sum(f(a)))
        close(vmap(g)(x), loop(g, (0,), x))


def test_stop_gradient_and_tensor_of_batched_values():
    f = lambda x: gnp.sum(gpuad.stop_gradient(x) * x)  # noqa: E731
    close(vmap(grad(f))(X), X)

    def per_example(x):
        with gpuad.Tape() as tape:
            t = gpuad.tensor(x)
            y = gnp.sum(gnp.sin(t) * t)
        return tape.gradient(y, t)
    close(vmap(per_example)(X), np.cos(X) * X + np.sin(X))


NUMPY_USES = {  # gpuad.numpy functions inside vmap and vmap(grad), against the loop
    "mean": lambda a: gnp.mean(a, axis=0), "var": lambda a: gnp.var(a, axis=1), "std": lambda a: gnp.std(a),
    "stack": lambda a: gnp.stack([a, a * 2], axis=1), "split": lambda a: gnp.split(a, 2, axis=1)[1],
    "dot": lambda a: gnp.dot(a, a[0]), "outer": lambda a: gnp.outer(a[0], a[1]),
    "tensordot": lambda a: gnp.tensordot(a, a, axes=1), "take": lambda a: gnp.take(a, [0, 2], axis=1),
    "pad": lambda a: gnp.pad(a, 1), "roll": lambda a: gnp.roll(a, 1, axis=0), "diff": lambda a: gnp.diff(a, axis=0),
    "norm": lambda a: gnp.linalg.norm(a, axis=1), "relu": nn.relu, "sigmoid": nn.sigmoid, "softplus": nn.softplus,
    "T": lambda a: a.T, "reshape": lambda a: a.reshape(-1), "moveaxis": lambda a: gnp.moveaxis(a, 0, 1),
    "trace": lambda a: gnp.trace(a), "diag": lambda a: gnp.diag(a), "tril": lambda a: gnp.tril(a),
    "kron": lambda a: gnp.kron(a[:2, :2], a[2:, 2:]),
    "average": lambda a: gnp.average(a, axis=0, weights=np.arange(1., 5.)),
    "cumsum": lambda a: gnp.cumsum(a), "repeat": lambda a: gnp.repeat(a, 2, axis=0),
    "tile": lambda a: gnp.tile(a, (2, 1)),
    "ptp": lambda a: gnp.ptp(a, axis=0), "concatenate": lambda a: gnp.concatenate([a, a], axis=None),
    "einsum": lambda a: gnp.einsum("ij,jk", a, a), "eigvalsh": lambda a: gnp.linalg.eigvalsh(a + a.T),
    "multi_dot": lambda a: gnp.linalg.multi_dot([a, a, a]),
    "select": lambda a: gnp.select([a > 0.5, a < -0.5], [a, 2 * a]),
    "nan_to_num": lambda a: gnp.nan_to_num(a, nan=1.0), "rot90": lambda a: gnp.rot90(a),
    "broadcast_arrays": lambda a: gnp.broadcast_arrays(a, a[0])[1], "meshgrid": lambda a: gnp.meshgrid(a[0], a[1])[0],
    "nansum": lambda a: gnp.nansum(gnp.where(a > 1.0, np.nan, a), axis=0),
    "nanmean": lambda a: gnp.nanmean(gnp.where(a > 1.0, np.nan, a), axis=1),
    "nanprod": lambda a: gnp.nanprod(gnp.where(a > 1.0, np.nan, a), axis=1),
    "polyval": lambda a: gnp.polyval(a[0], a[1]), "cov": lambda a: gnp.cov(a), "corrcoef": lambda a: gnp.corrcoef(a),
    "cross": lambda a: gnp.cross(a[:, :3], a[:, 1:]), "gradient": lambda a: gnp.gradient(a, axis=0),
    "convolve": lambda a: gnp.convolve(a[0], a[1]), "trapezoid": lambda a: gnp.trapezoid(a, axis=0),
    "matrix_power": lambda a: gnp.linalg.matrix_power(a, 3), "copysign": lambda a: gnp.copysign(a, a[0]),
    "linspace": lambda a: gnp.linspace(a[0, 0], a[0, 1], 5), "r_": lambda a: gnp.r_[a[0], a[1]],
}


@pytest.mark.parametrize("name", sorted(NUMPY_USES))
def test_numpy_functions_inside_vmap(name):
    f = NUMPY_USES[name]
    x = np.random.default_rng(9).standard_normal((B, 4, 4))
    close(vmap(f)(x), loop(f, (0,), x))
    g = grad(lambda a: gnp.sum(gnp.sin(f(a))))
    close(vmap(g)(x), loop(g, (0,), x))


BATCHED_INDEX_USES = [  # (function, in_axes): indices that differ between examples
    (lambda x, i: x[i], (0, 0)),
    (lambda x, i: x[:, i] * 2, (0, 0)),
    (lambda x, i: x[i, 1:], (0, 0)),
    (lambda x, i: x[..., i], (0, 0)),
    (lambda t, i: gnp.take(t, i, axis=0), (None, 0)),
    (lambda t, i: gnp.take(t, i, axis=1), (None, 0)),
    (lambda x, i: gnp.take_along_axis(x, gnp.argsort(x, axis=1), axis=1), (0, None)),
    (lambda x, i: gnp.sort(x, axis=0) + gnp.sort(x[0]), (0, None)),
    (lambda x, i: gnp.take_along_axis(x, gnp.argmax(x, axis=0, keepdims=True), axis=0), (0, None)),
]


@pytest.mark.parametrize("case", range(len(BATCHED_INDEX_USES)))
def test_batched_indices_gather(case):
    f, axes = BATCHED_INDEX_USES[case]
    rng = np.random.default_rng(10)
    x = rng.standard_normal((B, 4, 4)) if axes[0] == 0 else rng.standard_normal((4, 4))
    i = np.array([[1, -1], [3, 0], [2, 2]])
    close(vmap(f, in_axes=axes)(x, i), loop(f, axes, x, i))
    g = grad(lambda x, i: gnp.sum(gnp.sin(f(x, i))))
    if axes[0] == 0:
        close(vmap(g, in_axes=axes)(x, i), loop(g, axes, x, i))
    else:  # the table is shared: its gradient sums over the batch when taken outside the vmap
        total = grad(lambda t: gnp.sum(gnp.sin(vmap(f, in_axes=axes)(t, i))))
        close(total(x), loop(g, axes, x, i).sum(axis=0))


def test_batched_index_errors():
    with pytest.raises(NotImplementedError, match="one batched integer index"):
        vmap(lambda a, i: a[1, i], in_axes=(None, 0))(gpuad.tensor(np.ones((3, 3))), np.array([0, 1]))
    with pytest.raises(IndexError, match="out of bounds"):
        vmap(lambda a, i: a[i])(np.ones((2, 3)), np.array([0, 3]))


ORDER_STATISTICS = [
    lambda a: gnp.median(a), lambda a: gnp.median(a, axis=0, keepdims=True), lambda a: gnp.quantile(a, 0.3),
    lambda a: gnp.quantile(a, [0.1, 0.9], axis=1, method="midpoint"), lambda a: gnp.percentile(a, [[5, 50]], axis=0),
    lambda a: gnp.quantile(a, [0.25, 1.0], axis=1, method="inverted_cdf", weights=[0.0, 2.0, 1.0]),
    lambda a: gnp.percentile(a, 40, method="inverted_cdf", weights=np.arange(9.0).reshape(3, 3)),
    lambda a: gnp.nanmax(a, axis=0) + gnp.nanmin(a, axis=1) + gnp.nanvar(a, axis=0) + gnp.nanstd(a, axis=1)
    + gnp.nanmean(a, axis=0),
    lambda a: gnp.interp(a * 2.0, np.array([-1.0, 0.0, 0.5, 2.0]), np.array([1.0, -1.0, 2.0, 0.5])),
    lambda a: gnp.interp(np.array([-2.0, 0.9, 3.0]), np.array([-1.0, 0.5, 2.0]), a[0] * a[1, 0] + 1.0)
    + gnp.interp(a[2], np.arange(3.0), a[0], left=a[1, 1], right=-1.0),
    lambda a: gnp.interp(a, np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.5, -1.0]), period=2.5),
    lambda a: gnp.partition(a, 1)[..., 1] + gnp.partition(a, (0, 2), axis=0)[2] + gnp.partition(a, 4, axis=None)[4],
]


@pytest.mark.parametrize("k", range(len(ORDER_STATISTICS)))
def test_order_statistics_under_vmap_match_a_loop(k):
    f = ORDER_STATISTICS[k]
    rng = np.random.default_rng(k)
    a = rng.standard_normal((B, 3, 3))
    a[1, 0, :2] = a[1, 1, 0]  # ties
    a[2, 2, 1] = np.nan
    np.testing.assert_array_equal(vmap(f)(a), np.stack([f(a[b]) for b in range(B)]))
    g = lambda x: gnp.sum(f(x) * gnp.arange(1.0, 1.0 + np.size(f(a[0]))).reshape(np.shape(f(a[0]))))  # noqa: E731
    finite = a.copy()
    finite[2, 2, 1] = 0.5
    batched = vmap(gpuad.grad(g))(finite)
    for b in range(B):
        np.testing.assert_allclose(batched[b], gpuad.grad(g)(finite[b]), rtol=1e-14)
    nested = vmap(vmap(f), in_axes=1)(np.stack([finite, finite * 2.0], axis=1))
    np.testing.assert_allclose(nested[1], vmap(f)(finite * 2.0), rtol=1e-14)


@pytest.mark.parametrize("f", [lambda a: gnp.interp(np.arange(3.0), a[0], np.arange(3.0)),
                               lambda a: gnp.quantile(np.ones(3), a[0, 0] * 0 + 0.5)])
def test_functions_not_written_for_batches_refuse_them(f):
    with pytest.raises(NotImplementedError, match="does not support batched values"):
        vmap(f)(np.random.default_rng(0).standard_normal((B, 3, 3)))


def test_vmap_of_grad_runs_each_elementwise_region_fused_over_the_batch():
    from gpuad.fusion import run
    rng = np.random.default_rng(11)
    w, c = rng.standard_normal(6), rng.standard_normal((2, 6))

    def f(x, s, w):  # one region (x, w, s broadcast against each other) feeding a matmul, then another region
        h = gnp.sin(x) * w + x * x * gnp.exp(-w) * s + gnp.tanh(x * s) * c
        return gnp.sum(gnp.cos(h @ w) * s)

    xs, ss = rng.standard_normal((B, 2, 6)), rng.standard_normal(B)
    before = run.stats["regions"]
    got = vmap(grad(f, argnums=(0, 1, 2)), in_axes=(0, 0, None))(xs, ss, w)
    assert run.stats["regions"] - before >= 2  # the regions ran fused, once each for the whole batch
    for k in range(3):
        close(got[k], loop(lambda *a: grad(f, argnums=(0, 1, 2))(*a)[k], (0, 0, None), xs, ss, w))


def test_jacrev_pulls_all_cotangents_through_fused_regions():
    from gpuad.fusion import run
    x = np.random.default_rng(12).standard_normal(5)
    f = lambda x: gnp.tanh(x) * gnp.sin(x[::-1]) + x * x  # noqa: E731
    before = run.stats["regions"]
    J = gpuad.jacrev(f)(x)
    assert run.stats["regions"] > before
    close(J, gpuad.jacfwd(f)(x))


GATHERS = [
    (lambda a, i: a[i], lambda a, i: a[i]),
    (lambda a, i: a[:, i % 3], lambda a, i: a[:, i % 3]),
    (lambda a, i: a[i[0], 1:], lambda a, i: a[i[0], 1:]),
    (lambda a, i: gnp.take(a, i, axis=0), lambda a, i: np.take(a, i, axis=0)),
    (lambda a, i: gnp.sort(a, axis=0) + gnp.sort(a, axis=1), lambda a, i: np.sort(a, axis=0) + np.sort(a, axis=1)),
    (lambda a, i: gnp.take_along_axis(a, gnp.argsort(a, axis=0), axis=0),
     lambda a, i: np.take_along_axis(a, np.argsort(a, axis=0), axis=0)),
]


@pytest.mark.parametrize("k", range(len(GATHERS)))
def test_batched_gathers_are_exact_next_to_infinities_and_nans(k):
    """A batched index gathers through a one-hot contraction; an inf or NaN elsewhere in the array must not
    reach the gathered values (0 * inf is NaN), and a selected one must come through as it is."""
    f, reference = GATHERS[k]
    rng = np.random.default_rng(k)
    a = rng.standard_normal((B, 5, 3))
    a[0, 2, 1], a[1, 4, 0], a[2, 0, 2] = np.inf, np.nan, -np.inf
    i = rng.integers(-5, 5, (B, 2))
    i[0] = [2, 2]  # selects the row with the inf
    np.testing.assert_array_equal(vmap(f)(a, i), np.stack([reference(a[b], i[b]) for b in range(B)]))
    finite = np.nan_to_num(a, posinf=7.0, neginf=-7.0)
    g = lambda a, i: gnp.sum(f(a, i) * f(a, i))  # noqa: E731
    batched = vmap(gpuad.grad(g))(finite, i)
    for b in range(B):
        np.testing.assert_allclose(batched[b], gpuad.grad(g)(finite[b], i[b]), rtol=1e-14)


def test_a_numpy_array_indexed_by_a_batched_value_says_to_use_take():
    with pytest.raises(TypeError, match="gnp.take"):
        vmap(lambda i: np.ones((5, 3))[i])(np.array([0, 1]))


def test_batched_gathers_keep_the_derivative_of_a_selected_infinity_and_the_dtype():
    x = np.array([[3.0, np.inf, 1.0], [2.0, 1.0, 0.0]])
    f = lambda a: gnp.sum(gnp.sort(a) * gnp.array([1.0, 2.0, 3.0]))  # noqa: E731
    np.testing.assert_array_equal(vmap(grad(f))(x), [[2.0, 3.0, 1.0], [3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(vmap(grad(lambda a, i: a[i]))(x, np.array([1, 0])), [[0, 1, 0], [1, 0, 0]])
    _, tangent = jvp(lambda a: vmap(lambda a, i: gnp.take_along_axis(a, i, 0))(a, np.array([[1], [0]])), (x,),
                     (np.ones_like(x),))
    np.testing.assert_array_equal(tangent, [[1.0], [1.0]])
    assert vmap(lambda a, i: a[i])(np.array([[True, False]]), np.array([0])).dtype == np.bool_
    small = np.array([[3, -1, 2], [0, 5, 1]], dtype=np.int8)
    assert vmap(lambda a: gnp.sort(a))(small).dtype == np.int8


def test_batched_comparisons_keep_their_operand_order():
    a = np.array([[0.5, 2.0], [1.5, -1.0]])
    np.testing.assert_array_equal(vmap(lambda r: gnp.greater(1.0, r))(a), 1.0 > a)
    np.testing.assert_array_equal(vmap(lambda r: gnp.less_equal(1.5, r))(a), 1.5 <= a)
    np.testing.assert_array_equal(vmap(lambda r: gnp.isclose(0.5, r))(a), np.isclose(0.5, a))


def test_interp_with_one_sample_point_gives_it_for_nan_x():
    x = np.array([np.nan, 0.0, 3.0])
    np.testing.assert_array_equal(gnp.interp(gpuad.tensor(x), [1.0], [2.0]), np.interp(x, [1.0], [2.0]))
    np.testing.assert_array_equal(vmap(lambda v: gnp.interp(v, [1.0], [2.0]))(x[:, None]),
                                  np.interp(x, [1.0], [2.0])[:, None])


def _ufunc_at(method):
    def update(a, i, v):
        out = a.copy()
        if method == "set":
            out[i] = v
        else:
            {"add": np.add, "min": np.minimum, "max": np.maximum, "multiply": np.multiply}[method].at(out, i, v)
        return out
    return update


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # (NumPy's minimum.at of a NaN warns too)
@pytest.mark.parametrize("method", ["add", "set", "min", "max", "multiply"])
@pytest.mark.parametrize("axes", [(0, 0, 0), (None, 0, 0), (0, 0, None), (None, 0, None)])
def test_at_updates_with_a_batched_index_match_a_loop(method, axes):
    rng = np.random.default_rng(5)
    a, i, v = rng.standard_normal((B, 5, 3)), rng.integers(-5, 5, (B, 4)), rng.standard_normal((B, 4, 3))
    i[0] = [1, 1, 3, 1]  # repeated positions: add.at accumulates, set's last write wins
    v[1, 0, 0], v[2, 1, 1] = np.inf, np.nan
    args = [x if ax == 0 else x[0] for x, ax in zip((a, i, v), axes)]
    f = lambda a, i, v: getattr(gpuad.tensor(a).at[i], method)(v)  # noqa: E731
    want = np.stack([_ufunc_at(method)(*[x[b] if ax == 0 else x for x, ax in zip(args, axes)]) for b in range(B)])
    if method == "multiply":  # (a run's product, then the element: rounded once more than the sequence)
        np.testing.assert_allclose(vmap(f, in_axes=axes)(*args), want, rtol=1e-14, atol=0, equal_nan=True)
    else:
        np.testing.assert_array_equal(vmap(f, in_axes=axes)(*args), want)
    finite = [np.nan_to_num(x, nan=0.5, posinf=3.0, neginf=-3.0) for x in args]
    g = lambda a, v, i: gnp.sum(gnp.sin(getattr(a.at[i], method)(v * 2.0)) * gnp.arange(15.0).reshape(5, 3))  # noqa
    got = vmap(grad(g, argnums=(0, 1)), in_axes=(axes[0], axes[2], axes[1]))(finite[0], finite[2], finite[1])
    for b in range(B):
        one = [x[b] if ax == 0 else x for x, ax in zip(finite, axes)]
        for gb, gl, ax in zip(got, grad(g, argnums=(0, 1))(one[0], one[2], one[1]), (axes[0], axes[2])):
            np.testing.assert_allclose(gb[b], gl, rtol=1e-13, atol=1e-14)


def test_at_with_a_batched_index_gets_along_a_later_axis_and_refuses_other_index_forms():
    rng = np.random.default_rng(6)
    a, i = rng.standard_normal((B, 3, 4)), rng.integers(0, 4, B)
    np.testing.assert_array_equal(vmap(lambda a, i: gpuad.tensor(a).at[:, i].get())(a, i),
                                  np.stack([a[b][:, i[b]] for b in range(B)]))
    np.testing.assert_array_equal(vmap(lambda a, i: gpuad.tensor(a).at[:, i].add(1.0))(a, i),
                                  np.stack([_ufunc_at("add")(a[b], (slice(None), i[b]), 1.0) for b in range(B)]))
    with pytest.raises(NotImplementedError, match="after full slices"):
        vmap(lambda a, i: gpuad.tensor(a).at[0, i].add(1.0))(a, i)


@pytest.mark.parametrize("shape", [(5, 3), (3, 3), (2, 3)])
def test_lstsq_under_vmap_solves_each_example(shape):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((B,) + shape), rng.standard_normal((B, shape[0], 2))
    got = vmap(gnp.linalg.lstsq)(a, b)
    for k in range(B):
        for g, w in zip(got, np.linalg.lstsq(a[k], b[k])):
            np.testing.assert_allclose(np.asarray(g)[k], w, rtol=1e-10, atol=1e-12)
    f = lambda a, b: gnp.sum(gnp.linalg.lstsq(a, b)[0] ** 2) + gnp.sum(gnp.linalg.lstsq(a, b)[1])  # noqa: E731
    batched = vmap(grad(f))(a, b)
    for k in range(B):
        np.testing.assert_allclose(batched[k], grad(f)(a[k], b[k]), rtol=1e-10, atol=1e-12)


def test_lstsq_under_vmap_gives_nan_residuals_where_numpy_gives_none():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((B, 5, 3)), rng.standard_normal((B, 5))
    a[1] = np.outer(a[1][:, 0], [1.0, 2.0, 3.0])  # rank 1: no residuals for this example
    x, residuals, rank, s = vmap(gnp.linalg.lstsq)(a, b)
    for k in range(B):
        want = np.linalg.lstsq(a[k], b[k])
        np.testing.assert_allclose(x[k], want[0], rtol=1e-10, atol=1e-12)
        assert rank[k] == want[2]
        np.testing.assert_allclose(residuals[k], want[1] if want[1].size else [np.nan], rtol=1e-10)


def test_batched_updates_and_gathers_are_exact_after_cancellation_and_take_narrow_or_empty_indices():
    a, i, v = np.array([[0.1, 0.0]] * 2), np.array([[0, 0, 0]] * 2), np.array([[1e16, -1e16, 3.3e-17]] * 2)
    want = a[0].copy()
    np.add.at(want, i[0], v[0])
    np.testing.assert_array_equal(vmap(lambda a, i, v: gpuad.tensor(a).at[i].add(v))(a, i, v)[0], want)
    np.testing.assert_array_equal(vmap(lambda a, i: gpuad.tensor(a).at[i].set(1.0))(np.zeros((2, 5)),
                                                                                   np.zeros((2, 0), int)),
                                  np.zeros((2, 5)))
    table, index = np.random.default_rng(9).standard_normal((2, 300)), np.array([[255, 5], [250, 0]], np.uint8)
    np.testing.assert_array_equal(vmap(lambda t, i: t[i])(table, index), np.stack([table[b][index[b]]
                                                                                    for b in range(2)]))
    assert np.signbit(vmap(lambda t, i: t[i])(np.array([[-0.0, 1.0]]), np.array([0])))[0]


def test_per_example_gradients_of_an_mlp_with_softmax_cross_entropy_match_a_loop():
    """W9's function at a small size: the batched backward regions hold where's boolean partial (a regression:
    a folded unit seed left it boolean, and `-` of a boolean array raised)."""
    from distributed_worker import mlp_loss as loss  # (tests/ is on the path: one MLP loss for the tests)
    rng = np.random.default_rng(12)
    params = [(rng.standard_normal((6, 5)) / 3, np.zeros(5)), (rng.standard_normal((5, 3)) / 3, np.zeros(3))]
    x, y = rng.standard_normal((B, 6)), rng.integers(0, 3, B)
    batched = vmap(grad(loss), in_axes=(None, 0, 0))(params, x, y)
    for k in range(B):
        one = grad(loss)(params, x[k], y[k])
        for (gw, gb), (w1, b1) in zip(batched, one):
            np.testing.assert_allclose(gw[k], w1, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(gb[k], b1, rtol=1e-12, atol=1e-14)
