"""Every elementwise rule row, checked by its row alone: fwd and rev, to second order, over scalar, vector,
matrix and broadcast shapes, inside the row's domain."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.rules import Elementwise, registry
from gpuad.testing import check_grads, sample

ROWS = sorted((p for p in registry().values() if isinstance(p, Elementwise)), key=lambda p: p.name)

SHAPES = {
    1: [((),), ((3,),), ((3, 2),)],
    2: [((), ()), ((3,), (3,)), ((3, 2), (3, 2)), ((3, 2), (1, 2)), ((3, 2), ()), ((), (3, 2)), ((2, 1), (1, 3))],
    3: [((), (), ()), ((3, 2), (3, 2), (3, 2)), ((3, 2), (1, 2), ()), ((2, 1), (1, 3), (2, 3))],
}


def public_function(prim):
    return getattr(gnp, prim.name)


def make_case(prim, shapes, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    domains = prim.domain or (None,) * prim.arity
    values = [sample(d, s, rng, dtype) for d, s in zip(domains, shapes)]
    diff = [k for k in range(prim.arity) if k not in prim.nondiff]
    fn = public_function(prim)

    def f(*diff_args):
        args = list(values)
        for k, a in zip(diff, diff_args):
            args[k] = a
        return fn(*args)
    return f, [values[k] for k in diff]


@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_row_gradients(prim):
    for shapes in SHAPES[prim.arity]:
        f, args = make_case(prim, shapes)
        check_grads(f, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_row_matches_numpy_forward(prim):
    shapes = SHAPES[prim.arity][3 if prim.arity > 1 else 2]
    f, args = make_case(prim, shapes)
    np_fn = getattr(np, prim.name)
    rng = np.random.default_rng(0)
    domains = prim.domain or (None,) * prim.arity
    values = [sample(d, s, rng) for d, s in zip(domains, shapes)]
    np.testing.assert_allclose(public_function(prim)(*values), np_fn(*values), rtol=1e-13)


@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_row_float32_gradients_stay_float32(prim):
    f, args = make_case(prim, SHAPES[prim.arity][-1], dtype=np.float32)
    if not args:
        pytest.skip("no differentiable argument")
    grads = gpuad.grad(lambda *a: gnp.sum(f(*a)), argnums=tuple(range(len(args))))(*args)
    for g, a in zip(grads, args):
        assert g.dtype == np.float32 and g.shape == a.shape


def test_kink_conventions():
    assert gpuad.grad(gnp.abs)(0.0) == 0.0
    assert gpuad.grad(lambda x: gnp.maximum(x, x))(1.5) == 1.0  # both halves of the tie: 0.5 + 0.5
    assert gpuad.grad(lambda x: gnp.maximum(x, 1.5))(1.5) == 0.5
    assert gpuad.grad(lambda x: gnp.minimum(x, 1.5), )(1.5) == 0.5
