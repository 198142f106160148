"""float16 and bfloat16 (through ml_dtypes, when installed): gradients in the input's dtype, within the dtype's
precision of the float32 result; sums and means accumulate in float32; check_grads' per-dtype defaults."""
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.core import is_float_dtype, is_real_float_dtype
from gpuad.ops.elementwise import _rows
from gpuad.testing import check_grads, sample

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    BF16 = None

HALF = [np.dtype(np.float16)] + ([BF16] if BF16 is not None else [])
RTOL = {"float16": 1e-2, "bfloat16": 5e-2}


def w1(x, w):
    return gnp.sum(gnp.sin(x) * w + x * x * gnp.exp(-w) + gnp.tanh(x * w))


def _args(dtype, n=1000):
    x = np.linspace(-1.5, 1.5, n).astype(dtype)
    w = np.linspace(0.3, 1.7, n)[::-1].copy().astype(dtype)
    return x, w


def test_bfloat16_is_floating():
    if BF16 is None:
        pytest.skip("ml_dtypes is not installed")
    from gpuad import backend, core
    assert BF16.kind == "V" and is_real_float_dtype(BF16) and is_float_dtype(BF16)
    assert not is_real_float_dtype(np.dtype([("a", np.float32)])) and not is_real_float_dtype(np.dtype(np.int16))
    assert backend.EXTENSION_FLOATS == core.EXTENSION_FLOATS


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_zero_gradients_keep_the_dtype(dtype):
    x, w = _args(dtype, 4)
    gx, gw = gpuad.grad(lambda x, w: gnp.sum(x * x), argnums=(0, 1))(x, w)
    assert gx.dtype == dtype and gw.dtype == dtype and not np.any(gw.astype(np.float32))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-op"])
@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_w1_gradient_matches_float32(dtype, fused, monkeypatch):
    from gpuad import tape as tape_module
    monkeypatch.setattr(tape_module, "_fusion", fused)
    x, w = _args(dtype)
    gx, gw = gpuad.grad(w1, argnums=(0, 1))(x, w)
    rx, rw = gpuad.grad(w1, argnums=(0, 1))(x.astype(np.float32), w.astype(np.float32))
    rtol = RTOL[dtype.name]
    for g, r in ((gx, rx), (gw, rw)):
        assert g.dtype == dtype and g.shape == r.shape
        np.testing.assert_allclose(g.astype(np.float32), r, rtol=rtol, atol=rtol * float(np.max(np.abs(r))))


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_w1_host_kernel_matches_float32(dtype):
    from gpuad.fusion import HostLauncher, compiler
    if compiler() is None:
        pytest.skip("no C++ compiler")
    x, w = _args(dtype)
    launcher = HostLauncher()
    with gpuad.Tape(launcher=launcher) as tape:
        X, W = gpuad.tensor(x), gpuad.tensor(w)
        y = w1(X, W)
    gx, gw = tape.gradient(y, [X, W])
    assert launcher.compiles == 1
    rx, rw = gpuad.grad(w1, argnums=(0, 1))(x.astype(np.float32), w.astype(np.float32))
    rtol = RTOL[dtype.name]
    for g, r in ((gx, rx), (gw, rw)):
        assert g.dtype == dtype
        np.testing.assert_allclose(g.astype(np.float32), r, rtol=rtol, atol=rtol * float(np.max(np.abs(r))))


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_jvp_and_vjp_keep_the_dtype(dtype):
    x, w = _args(dtype, 16)
    out, tangent = gpuad.jvp(lambda x: w1(x, w), (x,), (np.ones_like(x),))
    assert out.dtype == dtype and tangent.dtype == dtype
    out, pull = gpuad.vjp(lambda x: gnp.tanh(x) * w, x)
    (g,) = pull(np.ones_like(x))
    assert out.dtype == dtype and g.dtype == dtype


ROWS = sorted((p for p in _rows.values() if len(p.nondiff) < p.arity and p.name not in ("real", "imag", "conjugate")),
              key=lambda p: p.name)


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_rows_in_half(prim, dtype):
    """Each row's gradient in float16 (bfloat16) is float16 (bfloat16) and within the dtype's precision of the
    float64 gradient at the same (rounded) inputs."""
    rng = np.random.default_rng(3)
    domains = prim.domain or (None,) * prim.arity
    args = [sample(d, (64,), rng, dtype) for d in domains]
    rtol = 2e-2 if dtype == np.float16 else 5e-2
    diff = [k for k in range(prim.arity) if k not in prim.nondiff]

    def f(*xs, args=args):
        a = list(args)
        for k, v in zip(diff, xs):
            a[k] = v
        return gnp.sum(prim.bind(*a) * np.linspace(0.5, 1.5, 64).astype(xs[0].dtype))

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        half = gpuad.grad(f, argnums=tuple(range(len(diff))))(*[args[k] for k in diff])
        wide_args = [a.astype(np.float64) if a.dtype == dtype else a for a in args]
        wide = gpuad.grad(lambda *xs: f(*xs, args=wide_args), argnums=tuple(range(len(diff))))(
            *[wide_args[k] for k in diff])
    for h, r in zip(half, wide):
        assert h.dtype == dtype
        scale = max(1.0, float(np.max(np.abs(r))))
        np.testing.assert_allclose(h.astype(np.float64), r, rtol=rtol, atol=rtol * scale, err_msg=prim.name)


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_sums_accumulate_in_float32(dtype):
    ones = np.ones(3000, dtype)
    total = 3000 if dtype == np.float16 else 3008  # 3000 rounded once to the dtype
    # NumPy's own sum along axis 0 adds in the narrow type: it stops counting at 2048 (float16), 256 (bfloat16)
    assert float(np.sum(np.ones((3000, 2), dtype), axis=0)[0]) < 3000
    assert float(gnp.sum(ones)) == total and (gnp.sum(np.ones((3000, 2), dtype), axis=0) == total).all()
    grid = np.ones((3000, 2), dtype)
    value = gpuad.value_and_grad(lambda g: gnp.sum(gnp.sum(g, axis=0) * np.ones(2, dtype)))(grid)[0]
    assert float(value) == float(np.asarray(2 * total, np.float32).astype(dtype))
    assert float(gnp.mean(np.ones(10 ** 5, dtype))) == 1.0  # the float16 sum would overflow
    value, g = gpuad.value_and_grad(lambda x: gnp.sum(x))(ones)
    assert value.dtype == dtype and float(value) == float(gnp.sum(ones)) and g.dtype == dtype
    value, g = gpuad.value_and_grad(lambda x: gnp.mean(x * x))(np.ones(10 ** 5, dtype))
    assert float(value) == 1.0 and g.dtype == dtype
    np.testing.assert_allclose(g.astype(np.float32), 2e-5, rtol=1e-2)
    # the broadcast operand's cotangent (a reduction in the backward pass) too
    b = np.ones((), dtype)
    g = gpuad.grad(lambda b: gnp.sum(ones * b))(b)
    assert g.dtype == dtype and float(g) == float(gnp.sum(ones))


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_matmul_in_half(dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 5)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)
    f = lambda a, b: gnp.sum(gnp.tanh(a @ b))
    ga, gb = gpuad.grad(f, argnums=(0, 1))(a, b)
    ra, rb = gpuad.grad(f, argnums=(0, 1))(a.astype(np.float32), b.astype(np.float32))
    rtol = RTOL[dtype.name]
    for g, r in ((ga, ra), (gb, rb)):
        assert g.dtype == dtype
        np.testing.assert_allclose(g.astype(np.float32), r, rtol=3 * rtol, atol=3 * rtol * float(np.max(np.abs(r))))


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_check_grads_in_half(dtype):
    x, w = (a.astype(dtype) for a in (np.linspace(-1, 1, 6), np.linspace(0.5, 1.5, 6)))
    order = 2 if dtype == np.float16 else 1  # bfloat16's second differences are noise
    check_grads(w1, (x, w), order=order)
    check_grads(lambda x: gnp.sum(gnp.exp(x) * x), (x,), order=order)
    check_grads(lambda x: gnp.tanh(x) * 2, (x,), order=order)
    for seed in range(20):  # no false failure at the dtype's defaults
        check_grads(w1, (x, w), order=1, rng=np.random.default_rng(seed))

    wrong = gpuad.custom_jvp(lambda x: gnp.sin(x))
    wrong.defjvp(lambda primals, tangents: (gnp.sin(primals[0]), 2 * gnp.cos(primals[0]) * tangents[0]))
    with pytest.raises(AssertionError):
        check_grads(lambda x: gnp.sum(wrong(x)), (x,), order=1)


def test_gpu_bench_runs_the_half_dtypes_on_the_cpu(tmp_path):
    """benchmarks/gpu_bench.py's float16/bfloat16 path, on NumPy (the GPU run is gpu_check.sh's)."""
    import importlib.util
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    clock = bench.Clock(np)
    for dtype in HALF:
        result = bench.half_run(np, clock, 2000, dtype, 2)
        assert result["gradient_dtypes"] == [dtype.name] * 2
        assert result["backward_bytes"] == 4 * 2 * 2000  # x, w, and their cotangents, two bytes each
        assert result["max_rel_error_vs_closed_form"] < (1e-3 if dtype == np.float16 else 8e-3)


@pytest.mark.parametrize("dtype", [np.dtype(np.float32)] + HALF, ids=lambda d: d.name)
def test_forward_mode_and_hessians_keep_the_dtype(dtype):
    """A partial over a boolean argument (where's 1 - x is an integer array) does not widen a tangent."""
    x = np.linspace(0.5, 1.0, 4).astype(dtype)
    t = np.ones(4, dtype)
    assert gpuad.jvp(lambda x: gnp.where(x > 0.7, 0, x * x), (x,), (t,))[1].dtype == dtype
    assert gpuad.hessian(lambda x: gnp.sum(x ** 3 + gnp.where(x > 0.7, 0, gnp.sin(x))))(x).dtype == dtype
    h = gpuad.hessian(lambda x: gnp.sum(gnp.sin(x) ** 3))(x)
    r = gpuad.hessian(lambda x: gnp.sum(gnp.sin(x) ** 3))(x.astype(np.float64))
    assert h.dtype == dtype
    np.testing.assert_allclose(h.astype(np.float64), r, atol=5e-2 * float(np.max(np.abs(r))))


@pytest.mark.skipif(BF16 is None, reason="ml_dtypes is not installed")
def test_bfloat16_sorts_agree_with_each_other_and_put_nan_last():
    x = np.array([3.0, np.nan, 1.0, -2.0, 0.5]).astype(BF16)
    order = gnp.argsort(x)
    np.testing.assert_array_equal(x[order].astype(np.float32), [-2.0, 0.5, 1.0, 3.0, np.nan])
    np.testing.assert_array_equal(gnp.sort(x).astype(np.float32), x[order].astype(np.float32))
    np.testing.assert_array_equal(gnp.argsort(a=x), order)
    traced = gpuad.vjp(lambda t: gnp.sort(t), x)[0]
    np.testing.assert_array_equal(traced.astype(np.float32), x[order].astype(np.float32))
    assert gnp.argpartition(x, np.int64(4))[4] == 1  # (the NaN, last)


def test_clip_keeps_numpys_sign_of_zero_and_dtype():
    for x, lo, hi in ((np.array([-0.0, 0.5]), 0.0, 1.0), (np.array([0.0, 2.0]), -0.0, 1.0)):
        value, tangent = gpuad.jvp(lambda u: gnp.clip(u, lo, hi), (x,), (np.ones_like(x),))
        np.testing.assert_array_equal(np.signbit(value), np.signbit(np.clip(x, lo, hi)))
    if BF16 is not None:
        x = np.array([0.5, 3.0]).astype(BF16)
        assert gpuad.vjp(lambda u: gnp.clip(u, 1, 2), x)[0].dtype == np.clip(x, 1, 2).dtype
