"""Random programs (hypothesis): chains of elementwise, broadcasting, reduction and structural ops over random
shapes, checked by check_grads in both modes to second order, and reverse mode against forward mode."""
import numpy as np
from hypothesis import given, settings, strategies as st

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

UNARY = [gnp.sin, gnp.cos, gnp.tanh, gnp.arctan, gnp.negative, lambda v: gnp.exp(gnp.tanh(v)), gnp.square,
         lambda v: v * 0.5, lambda v: gnp.sqrt(v * v + 1.0)]
BINARY = [gnp.add, gnp.subtract, gnp.multiply, lambda a, b: a / (b * b + 1.0), lambda a, b: a @ gnp.transpose(b)
          if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[1] else a * b]
REDUCE = [lambda v: gnp.sum(v, axis=0), lambda v: gnp.mean(v, axis=-1, keepdims=True), lambda v: v.T,
          lambda v: gnp.max(v, axis=0), lambda v: v[::-1], lambda v: gnp.reshape(v, (-1,))]

shapes = st.sampled_from([(), (3,), (2, 3), (1, 3), (2, 1)])


@st.composite
def programs(draw):
    steps = draw(st.lists(st.tuples(st.sampled_from(["unary", "binary", "reduce"]), st.integers(0, 99),
                                    st.integers(0, 99)), min_size=1, max_size=6))
    return steps


def _broadcastable(a, b):
    try:
        np.broadcast_shapes(np.shape(a), np.shape(b))
        return True
    except ValueError:
        return False


def run(program, x, w, unary=UNARY):
    values = [x, w]
    for kind, i, j in program:
        a, b = values[i % len(values)], values[j % len(values)]
        if kind == "unary":
            out = unary[j % len(unary)](a)
        elif kind == "binary" and _broadcastable(a, b):
            out = BINARY[i % len(BINARY)](a, b)
        elif kind == "reduce" and a.ndim >= 1:
            out = REDUCE[j % len(REDUCE)](a)
        else:
            out = a * 1.5
        values.append(out)
    return values[-1] + gnp.sum(values[-2])


@settings(max_examples=60, deadline=None)
@given(programs(), shapes, shapes, st.integers(0, 2**31))
def test_random_programs(program, xs, ws, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.uniform(-1.5, 1.5, xs), rng.uniform(-1.5, 1.5, ws)
    try:
        np.broadcast_shapes(xs, ws)
    except ValueError:
        return
    f = lambda x, w: run(program, x, w)  # noqa: E731
    out = f(x, w)
    check_grads(f, [x, w], order=2, modes=("fwd", "rev"))
    # reverse mode = forward mode, column by column
    if np.ndim(out) == 0:
        g = gpuad.grad(f, (0, 1))(x, w)
        for k, arg in enumerate((x, w)):
            for idx in np.ndindex(np.shape(arg)):
                e = np.zeros(np.shape(arg))
                e[idx] = 1.0
                tangents = (e, np.zeros(np.shape(w))) if k == 0 else (np.zeros(np.shape(x)), e)
                np.testing.assert_allclose(gpuad.jvp(f, (x, w), tangents)[1], g[k][idx], rtol=1e-10, atol=1e-12)


# ---- vmap: random programs batched against a loop over the examples -------------------------------------------

BATCH_UNARY = UNARY + [
    lambda v: gnp.sort(v, axis=-1) if v.ndim else v, lambda v: gnp.where(gnp.greater(0.25, v), v * v, -v),
    lambda v: gnp.take(_boxed(v), np.array([0, -1, 0]), axis=0) if v.ndim else v,
    lambda v: gnp.take_along_axis(v, gnp.argsort(v, axis=0), axis=0) if v.ndim else v,
    lambda v: gnp.clip(v, -0.5, 0.75), lambda v: gnp.maximum(0.1, v), lambda v: gnp.median(v, axis=0) if v.ndim
    else v, lambda v: gnp.cumsum(v, axis=0) if v.ndim else v, lambda v: _boxed(v).at[np.array([0, 0])].max(v[0] * 2.0)
    if v.ndim and v.shape[0] else v]


def _boxed(v):
    return v if isinstance(v, gpuad.Tensor) else gpuad.tensor(v)  # (t.at needs a Tensor)


def run_batched(program, x, w):
    return run(program, x, w, BATCH_UNARY)


@settings(max_examples=60, deadline=None)
@given(programs(), shapes, shapes, st.integers(0, 2**31), st.booleans())
def test_random_programs_under_vmap_match_a_loop(program, xs, ws, seed, nonfinite):
    """vmap(f) against f per example (values, NaN and inf included), and vmap(grad) against grad per example."""
    rng = np.random.default_rng(seed)
    batch = 3
    x, w = rng.uniform(-1.5, 1.5, (batch,) + xs), rng.uniform(-1.5, 1.5, ws)
    try:
        np.broadcast_shapes(xs, ws)
    except ValueError:
        return
    f = lambda x, w: run_batched(program, gpuad.tensor(x) if np.ndim(x) == 0 else x, w)  # noqa: E731
    g = gpuad.grad(lambda x, w: gnp.sum(gnp.sin(f(x, w))))
    batched = gpuad.vmap(g, in_axes=(0, None))(x, w)
    for b in range(batch):
        np.testing.assert_allclose(batched[b], g(x[b], w), rtol=1e-10, atol=1e-12)
    if nonfinite and x[0].size:
        x = x.copy()
        x[0].flat[0], x[-1].flat[-1] = np.inf, np.nan
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(gpuad.vmap(f, in_axes=(0, None))(x, w),
                                   np.stack([np.asarray(gpuad.vjp(f, x[b], w)[0]) for b in range(batch)]),
                                   rtol=1e-10, atol=1e-12, equal_nan=True)
