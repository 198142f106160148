"""checkpoint: the forward pass keeps only the inputs, the backward pass recomputes; same gradients, nested, at
higher order, with policies that keep some intermediates, fused regions in the recomputation."""
import sys
import tracemalloc

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import fusion
from gpuad.ops.linear import MATMUL
from gpuad.testing import check_grads

recompute = sys.modules["gpuad.recompute"]
RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape)


def block(x, w, steps=20):
    for _ in range(steps):
        x = gnp.tanh(x @ w)
    return x


def _grads(fn, x, w):
    return gpuad.value_and_grad(lambda x, w: gnp.sum(fn(x, w) ** 2), (0, 1))(x, w)


@pytest.fixture
def count_matmuls(monkeypatch):
    counter = {"n": 0}
    impl = MATMUL._impl

    def counting(*args, **kwargs):
        counter["n"] += 1
        return impl(*args, **kwargs)

    monkeypatch.setattr(MATMUL, "_impl", counting)
    return counter


def test_gradient_identical_and_saved_bytes_drop_5x():
    x, w = _x(64, 32), _x(32, 32) / 6
    tapes = {}
    for name, fn in [("plain", block), ("checkpoint", gpuad.checkpoint(block))]:
        xt, wt = gpuad.tensor(x), gpuad.tensor(w)
        with gpuad.Tape() as tape:
            y = gnp.sum(fn(xt, wt) ** 2)
        tapes[name] = (tape.saved_bytes(), tape.gradient(y, [xt, wt]), y.data)
    plain, ckpt = tapes["plain"], tapes["checkpoint"]
    assert ckpt[0] == x.nbytes + w.nbytes + 64 * 32 * 8  # the inputs, and the output kept by the square
    assert plain[0] >= 5 * ckpt[0], (plain[0], ckpt[0])
    assert plain[2] == ckpt[2]
    for a, b in zip(plain[1], ckpt[1]):
        np.testing.assert_array_equal(a, b)  # the same operations in the same order: identical


def test_derivatives_of_every_order():
    fn = gpuad.checkpoint(lambda x, w: block(x, w, 3))
    x, w = _x(2, 3), _x(3, 3) / 2
    check_grads(fn, (x, w), order=2)
    hvp_plain = gpuad.jvp(gpuad.grad(lambda w: gnp.sum(block(x, w, 3))), (w,), (np.ones((3, 3)),))[1]
    hvp_ckpt = gpuad.jvp(gpuad.grad(lambda w: gnp.sum(fn(x, w))), (w,), (np.ones((3, 3)),))[1]
    np.testing.assert_allclose(hvp_ckpt, hvp_plain, rtol=1e-12)
    gg_plain = gpuad.grad(lambda w: gnp.sum(gpuad.grad(lambda w: gnp.sum(block(x, w, 3)))(w) ** 2))(w)
    gg_ckpt = gpuad.grad(lambda w: gnp.sum(gpuad.grad(lambda w: gnp.sum(fn(x, w)))(w) ** 2))(w)
    np.testing.assert_allclose(gg_ckpt, gg_plain, rtol=1e-12)


def test_nested_checkpoints():
    inner = gpuad.checkpoint(lambda x, w: block(x, w, 4))

    @gpuad.checkpoint
    def outer(x, w):
        return inner(inner(x, w), w) * 2

    x, w = _x(8, 4), _x(4, 4) / 3
    (v1, g1), (v2, g2) = _grads(lambda x, w: block(block(x, w, 4), w, 4) * 2, x, w), _grads(outer, x, w)
    np.testing.assert_allclose(v1, v2)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    check_grads(outer, (x[:2], w), order=2, modes=("rev",))
    xt, wt = gpuad.tensor(x), gpuad.tensor(w)
    with gpuad.Tape() as tape:
        gnp.sum(outer(xt, wt))
    assert tape.saved_bytes() == x.nbytes + w.nbytes


def test_forward_mode_and_its_memory_stays_flat():
    fn = gpuad.checkpoint(lambda x, w: block(x, w, 5))
    x, w, v = _x(4, 3), _x(3, 3) / 2, _x(3, 3)
    y1, t1 = gpuad.jvp(lambda w: block(x, w, 5), (w,), (v,))
    y2, t2 = gpuad.jvp(lambda w: fn(x, w), (w,), (v,))
    np.testing.assert_allclose(y2, y1)
    np.testing.assert_allclose(t2, t1, rtol=1e-12)

    xb, wb, vb = _x(256, 128), _x(128, 128) / 12, _x(128, 128)

    def peak(steps, ckpt):
        f = (lambda w: gpuad.checkpoint(lambda x, w: block(x, w, steps))(xb, w)) if ckpt else \
            (lambda w: block(xb, w, steps))
        tracemalloc.start()
        gpuad.jvp(f, (wb,), (vb,))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    for ckpt in (False, True):
        short, long = peak(5, ckpt), peak(40, ckpt)
        assert long < 1.5 * short, (ckpt, short, long)


def test_fused_regions_run_in_the_recomputation():
    def elementwise(x):
        for _ in range(6):
            x = gnp.sin(x) * gnp.exp(-x * x) + x
        return x

    x = _x(1000)
    before = dict(fusion.stats)
    g_plain = gpuad.grad(lambda x: gnp.sum(elementwise(x)))(x)
    plain_regions = fusion.stats["regions"] - before["regions"]
    before = dict(fusion.stats)
    g_ckpt = gpuad.grad(lambda x: gnp.sum(gpuad.checkpoint(elementwise)(x)))(x)
    ckpt_regions = fusion.stats["regions"] - before["regions"]
    np.testing.assert_array_equal(g_ckpt, g_plain)
    assert plain_regions >= 1
    assert ckpt_regions == plain_regions  # the recomputation's backward pass runs the same fused regions


def test_policy_saves_matmuls_and_reuses_them(count_matmuls):
    x, w = _x(64, 32), _x(32, 32) / 6
    counts, saved = {}, {}
    for name, fn in [("plain", block), ("none", gpuad.checkpoint(block)),
                     ("matmul", gpuad.checkpoint(block, policy="matmul")),
                     ("dots", gpuad.checkpoint(policy=gpuad.checkpoint_policies.dots_saveable)(block))]:
        xt, wt = gpuad.tensor(x), gpuad.tensor(w)
        reused = recompute.stats["reused"]
        with gpuad.Tape() as tape:
            y = gnp.sum(fn(xt, wt))
        saved[name] = tape.saved_bytes(exclude=(x, w))
        count_matmuls["n"] = 0  # the backward pass's matmuls
        g = tape.gradient(y, [xt, wt])
        counts[name] = count_matmuls["n"]
        if name in ("matmul", "dots"):
            assert recompute.stats["reused"] - reused == 20
        if name == "plain":
            reference = g
        for a, b in zip(g, reference):
            np.testing.assert_array_equal(a, b)
    # 40 transposes, and the 20 forward matmuls again when they are recomputed rather than saved
    assert counts == {"plain": 40, "none": 60, "matmul": 40, "dots": 40}
    assert saved["none"] == 0 < saved["matmul"] == 20 * 64 * 32 * 8 < saved["plain"]


def test_policy_forms_and_higher_order():
    x, w = _x(3, 3), _x(3, 3) / 2
    names = gpuad.checkpoint(lambda x, w: block(x, w, 3), policy=["matmul", "tanh"])
    everything = gpuad.checkpoint(lambda x, w: block(x, w, 3), policy=gpuad.checkpoint_policies.everything_saveable)
    custom = gpuad.checkpoint(lambda x, w: block(x, w, 3), policy=lambda prim: prim.name == "tanh")
    for fn in (names, everything, custom):
        check_grads(fn, (x, w), order=2)
    with pytest.raises(TypeError, match="policy"):
        gpuad.checkpoint(block, policy=3)


def test_pytrees_static_leaves_and_closures():
    @gpuad.checkpoint
    def layer(params, x, activation):
        h = activation(x @ params["w"] + params["b"])
        return {"h": h, "norm": gnp.sum(h * h)}, 3

    params = {"w": _x(4, 4), "b": _x(4)}
    x = _x(2, 4)

    def loss(params, x, fn):
        out, three = fn(params, x, gnp.tanh)
        assert three == 3
        return gnp.sum(out["h"]) + out["norm"]

    want = gpuad.grad(loss, (0, 1))(params, x, layer.__wrapped__)
    got = gpuad.grad(loss, (0, 1))(params, x, layer)
    np.testing.assert_allclose(got[0]["w"], want[0]["w"], rtol=1e-12)
    np.testing.assert_allclose(got[0]["b"], want[0]["b"], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)

    def closes_over(w):
        return gnp.sum(gpuad.checkpoint(lambda x: x @ w)(gpuad.tensor(x)))

    with pytest.raises(TypeError, match="closes over"):
        gpuad.grad(closes_over)(params["w"])


def test_no_traced_argument_just_runs():
    x, w = _x(3, 3), _x(3, 3)
    np.testing.assert_array_equal(gpuad.checkpoint(block)(x, w), block(x, w))


def test_the_backward_pass_frees_what_it_has_used():
    # A non-persistent tape drops each entry's saved arrays once its rule has run: when the first op's rule runs,
    # the residual of the second is gone already (a persistent tape keeps it for the next gradient call).
    import weakref
    seen = {}

    @gpuad.custom_vjp
    def first(x):
        return x * 2

    def first_bwd(res, g):
        seen["alive"] = seen["second"]() is not None
        return (2 * g,)

    first.defvjp(lambda x: (first(x), None), first_bwd)

    @gpuad.custom_vjp
    def second(x):
        return gnp.sin(x)

    def second_fwd(x):
        r = gnp.cos(x)
        seen["second"] = weakref.ref(r)
        return second(x), r

    second.defvjp(second_fwd, lambda r, g: (r * g,))
    x = _x(8)
    for persistent, alive in ((False, False), (True, True)):
        seen.clear()
        xt = gpuad.tensor(x)
        with gpuad.Tape(persistent=persistent) as tape:
            y = gnp.sum(second(first(xt)))
        np.testing.assert_allclose(tape.gradient(y, xt), 2 * np.cos(2 * x))
        assert seen["alive"] is alive


def test_gradient_taken_inside_no_grad():
    fn = gpuad.checkpoint(lambda x, w: block(x, w, 3))
    x, w = _x(4, 3), _x(3, 3)
    wt = gpuad.tensor(w)
    with gpuad.Tape() as tape:
        y = gnp.sum(fn(x, wt))
    with gpuad.no_grad():
        g = tape.gradient(y, wt)
    np.testing.assert_allclose(g, gpuad.grad(lambda w: gnp.sum(block(x, w, 3)))(w), rtol=1e-12)
