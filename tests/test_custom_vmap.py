"""vmap of checkpoint, custom_jvp and custom_vjp (their batching rules are in gpuad.custom_batching)."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from gpuad.batching import vmap
RNG = np.random.default_rng(0)


def block(x, w):
    for _ in range(3):
        x = gnp.tanh(x @ w)
    return x


def test_vmap_of_checkpoint_in_every_order():
    c = gpuad.checkpoint(block)
    xs, w = RNG.standard_normal((5, 2, 3)), RNG.standard_normal((3, 3))
    np.testing.assert_array_equal(vmap(c, in_axes=(0, None))(xs, w), vmap(block, in_axes=(0, None))(xs, w))
    g1 = gpuad.grad(lambda w: gnp.sum(vmap(c, in_axes=(0, None))(xs, w)))(w)
    g2 = gpuad.grad(lambda w: gnp.sum(vmap(block, in_axes=(0, None))(xs, w)))(w)
    np.testing.assert_allclose(g1, g2, rtol=1e-12)
    g3 = vmap(gpuad.grad(lambda x, w: gnp.sum(c(x, w)), 1), in_axes=(0, None))(xs, w)
    g4 = vmap(gpuad.grad(lambda x, w: gnp.sum(block(x, w)), 1), in_axes=(0, None))(xs, w)
    np.testing.assert_allclose(g3, g4, rtol=1e-12)
    wt = gpuad.tensor(w)
    with gpuad.Tape() as tape:
        gnp.sum(vmap(c, in_axes=(0, None))(xs, wt))
    assert tape.saved_bytes(exclude=(wt,)) == xs.nbytes  # the batched call is still a checkpoint


def test_vmap_of_custom_jvp_and_custom_vjp():
    @gpuad.custom_jvp
    def sp(x):
        return gnp.log1p(gnp.exp(x))

    @sp.defjvp
    def sp_jvp(p, t):
        return sp(p[0]), t[0] / (1 + gnp.exp(-p[0]))

    x = RNG.standard_normal((4, 3))
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(vmap(lambda x: gpuad.jvp(sp, (x,), (gnp.ones_like(x),))[1])(x), s)
    np.testing.assert_allclose(gpuad.jvp(vmap(sp), (x,), (np.ones_like(x),))[1], s)
    np.testing.assert_allclose(gpuad.grad(lambda x: gnp.sum(vmap(sp)(x)))(x), s)

    @gpuad.custom_vjp
    def f(x, y):
        return gnp.sin(x) * y

    f.defvjp(lambda x, y: (f(x, y), (gnp.cos(x), gnp.sin(x), y)), lambda r, g: (r[0] * r[2] * g, r[1] * g))
    y = RNG.standard_normal(3)
    gx, gy = gpuad.grad(lambda x, y: gnp.sum(vmap(f, in_axes=(0, None))(x, y)), (0, 1))(x, y)
    np.testing.assert_allclose(gx, np.cos(x) * y)
    np.testing.assert_allclose(gy, np.sin(x).sum(0))
    gx = vmap(gpuad.grad(lambda x, y: gnp.sum(f(x, y))), in_axes=(0, None))(x, y)
    np.testing.assert_allclose(gx, np.cos(x) * y)
