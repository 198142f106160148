"""The emulated CuPy tier: gpuad's CuPy code path end to end on the CPU (see ``emulated_cupy``).

Every call gpuad makes on a CuPy array is bound against the real CuPy's signature, arrays are NumPy's memory
under an emulated ``cupy.ndarray``, the backward pass's generated kernels run their host build through the
launcher interface, and device-to-host transfers are counted (forbidden in ``no_host_sync`` blocks). It checks:

* the emulation itself fails on a wrong CuPy call, as the GPU would;
* the known NumPy/CuPy mismatches (partition, sort, full_like, the linalg functions CuPy lacks or spells
  differently) run, traced and on plain CuPy arrays, and agree with NumPy;
* where CuPy's kernels take fewer dtypes or order differently (no bfloat16 in where or the sorts, no complex
  clip, NaN in a long partition, quantile's methods, the scatters' atomics), gpuad's results equal NumPy's;
* ``.at[index].set`` with repeated indices is deterministic (the last write wins, value and gradient);
* no traced function reads device values to choose a path: recording and backward passes of the main
  workloads make no device-to-host transfer;
* a broad part of the table-driven tests (elementwise rows, reductions, scans, shapes, linalg) run here too:
  forward values against NumPy, derivatives against central differences.

The tier skips, with the reason shown, where the ``cupy`` package does not import (it is installed by the
``test`` extra on Linux x86_64).
"""
import contextlib

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import backend, tape
from gpuad.testing import check_grads

import emulated_cupy as ec

# cpu_build: the tier compiles the kernels' CUDA text with the host compiler (the GPU check deselects it: the GPU
# runs the real thing)
pytestmark = [pytest.mark.skipif(not ec.AVAILABLE, reason=f"emulated CuPy tier: {ec.REASON}"), pytest.mark.cpu_build]


@pytest.fixture(autouse=True)
def cp():
    """Every test here runs as on a GPU machine: the emulated CuPy is the default backend."""
    with ec.emulated() as module:
        yield module


def dev(x, dtype=None):
    return ec.asarray(x, dtype)


def host(x):
    if isinstance(x, (list, tuple)):
        return type(x)(host(v) for v in x) if not hasattr(x, "_fields") else [host(v) for v in x]
    return np.asarray(x.view(np.ndarray) if isinstance(x, ec.ndarray) else x)


def assert_on_device(x):
    for v in x if isinstance(x, (list, tuple)) else (x,):
        assert isinstance(v, ec.ndarray), f"expected an (emulated) CuPy array, got {type(v).__name__}"


def on_numpy(fn, *args):
    """``fn`` evaluated on NumPy (the default backend too, for its constants)."""
    previous = backend.set_default_module(np)
    try:
        return fn(*args)
    finally:
        backend.set_default_module(previous)


def record_and_backprop(fn, *args, allow_sync=False):
    """Record ``fn`` and run its backward pass with no device-to-host transfer allowed; the value and grads."""
    with contextlib.nullcontext() if allow_sync else ec.no_host_sync():
        out, pullback = gpuad.vjp(fn, *args)
        leaves = out if isinstance(out, (list, tuple)) else [out]
        seed = [gnp.ones_like(v) for v in leaves]
        grads = pullback(type(out)(seed) if isinstance(out, (list, tuple)) else seed[0])
    return out, grads


RNG = np.random.default_rng(3)


# ---- the emulation enforces CuPy -----------------------------------------------------------------------------

def test_emulated_arrays_take_the_cupy_path(cp):
    x = dev([1.0, 2.0])
    assert backend.array_module(x) is cp and backend.default_module() is cp
    assert_on_device(gnp.zeros(3))
    assert_on_device(cp.sum(x))  # reductions give 0-d arrays, as CuPy's do
    with pytest.raises(TypeError, match="cannot mix"):
        gnp.add(x, np.ones(2))


@pytest.mark.parametrize("call,error", [
    (lambda cp, x: cp.argpartition(x, 1, kind="introselect"), TypeError),
    (lambda cp, x: cp.argsort(x, stable=True), TypeError),
    (lambda cp, x: cp.full_like(x, 1.0, subok=True), TypeError),
    (lambda cp, x: cp.linalg.svdvals(x), AttributeError),
    (lambda cp, x: cp.linalg.cholesky(x, upper=True), TypeError),
    (lambda cp, x: cp.linalg.pinv(x, hermitian=True), TypeError),
    (lambda cp, x: cp.add(x, x, where=x > 0), TypeError),
    (lambda cp, x: cp.sum(x, where=x > 0), TypeError),
    (lambda cp, x: x.sum(where=x > 0), TypeError),
    (lambda cp, x: x.std(correction=1), TypeError),
    (lambda cp, x: x.ctypes, AttributeError),
    (lambda cp, x: x + np.ones(x.shape), TypeError),
    (lambda cp, x: range(cp.asarray(3)), TypeError),
], ids=["argpartition-kind", "argsort-stable", "full_like-subok", "linalg.svdvals", "cholesky-upper",
        "pinv-hermitian", "ufunc-where", "sum-where", "method-sum-where", "method-std-correction", "ndarray.ctypes",
        "numpy-operand", "no-__index__"])
def test_a_call_cupy_rejects_fails_here(cp, call, error):
    with pytest.raises(error):
        call(cp, dev(np.eye(3) * 2.0))


def test_a_deliberately_wrong_cupy_call_in_gpuad_fails(monkeypatch):
    """The tier catches a regression: partition passing NumPy's kind= to cupy.argpartition again."""
    from gpuad.numpy import _rearranging
    monkeypatch.setattr(_rearranging, "supported_options", lambda function, **options: options)
    with pytest.raises(TypeError, match="argpartition.*kind"):
        gpuad.grad(lambda x: gnp.sum(gnp.partition(x, 1)))(dev([3.0, 1.0, 2.0]))


def test_host_transfers_are_detected():
    x = dev([1.0, 0.0])
    ec.HOST_SYNCS.clear()
    assert bool(x.any()) and float(x[0]) == 1.0
    assert ec.HOST_SYNCS == ["bool() of an array", "float() of an array"]
    with ec.no_host_sync(), pytest.raises(ec.HostSyncError, match="item"):
        x[0].item()


def test_kernels_run_through_the_cuda_launcher_as_host_builds():
    x = dev(RNG.uniform(-1, 1, (3, 4)))
    before = len(ec.LAUNCHES)
    f = lambda x: gnp.sum(gnp.tanh(x * 2.0 + 1.0) * gnp.exp(x) / (1.0 + x * x))  # noqa: E731
    _, (g,) = record_and_backprop(f, x)
    assert len(ec.LAUNCHES) > before, "the fused region did not run as a generated kernel"
    assert ec.LAUNCHES[-1][2] == gpuad.fusion.CudaLauncher.BLOCK
    assert_on_device(g)
    expected = gpuad.grad(f)(host(x))  # NumPy: the Python rendering of the same program
    np.testing.assert_allclose(host(g), expected, rtol=1e-13)


def test_grid_stride_loop_covers_arrays_larger_than_the_grid():
    """More elements than the capped grid has threads (2 SMs emulated: 64 blocks of 256): each thread strides."""
    x = RNG.uniform(-1, 1, (50, 401))
    f = lambda x: gnp.sum(gnp.sin(x) * gnp.exp(x * 0.5) + x * x)  # noqa: E731
    before = len(ec.LAUNCHES)
    _, (g,) = record_and_backprop(f, dev(x))
    launched = ec.LAUNCHES[before:]
    assert launched and all(grid == 32 * 2 for _, grid, _ in launched)
    np.testing.assert_allclose(host(g), gpuad.grad(f)(x), rtol=1e-12, atol=1e-15)


def test_a_kernel_argument_cupy_would_reject_fails_here(monkeypatch):
    """The launcher must pass device arrays and NumPy scalars of a C type: a Python int (no definite C type)
    fails here as on the GPU. Simulated by a launcher that forgets to convert its scalars."""
    launcher = gpuad.fusion.CudaLauncher(cupy=ec.cupy)
    monkeypatch.setattr(launcher, "_SCALARS", {k: (lambda v: v) for k in launcher._SCALARS})
    x = dev(RNG.uniform(-1, 1, (3, 4)))
    with pytest.raises(TypeError, match="cannot be passed to a CUDA kernel"):
        with gpuad.Tape(launcher=launcher) as t:
            xs = t.watch(x)
            y = gnp.sum(gnp.tanh(xs) * xs)
        t.gradient(y, xs)


# ---- the known mismatches ------------------------------------------------------------------------------------

MISMATCHES = [
    ("partition", lambda m, x: m.partition(x, 2, axis=-1)),
    ("partition-axis0", lambda m, x: m.partition(x, (0, 2), axis=0)),
    ("sort-stable", lambda m, x: m.sort(x, stable=True)),
    ("sort-kind-stable", lambda m, x: m.sort(x, axis=0, kind="stable")),
    ("full_like", lambda m, x: m.full_like(x, 2.5) * x),
    ("full_like-dtype", lambda m, x: m.full_like(x, 2, dtype=np.float32).astype(np.float64) + x),
    ("svdvals", lambda m, x: m.linalg.svdvals(x)),
    ("vector_norm", lambda m, x: m.linalg.vector_norm(x, ord=3, axis=1)),
    ("matrix_norm", lambda m, x: m.linalg.matrix_norm(x, ord="nuc")),
    ("multi_dot", lambda m, x: m.linalg.multi_dot([x, x.T, x])),
    ("linalg.tensordot", lambda m, x: m.linalg.tensordot(x, x, axes=2)),
    ("linalg.outer", lambda m, x: m.linalg.outer(x[0], x[1])),
    ("linalg.vecdot", lambda m, x: m.linalg.vecdot(x, x)),
    ("linalg.diagonal", lambda m, x: m.linalg.diagonal(x, offset=1)),
    ("linalg.trace", lambda m, x: m.linalg.trace(x)),
    ("cholesky-upper", lambda m, x: m.linalg.cholesky(x @ x.T + 4 * m.eye(4), upper=True)),
    ("pinv-hermitian", lambda m, x: m.linalg.pinv(x + x.T, hermitian=True)),
    ("pinv-rtol", lambda m, x: m.linalg.pinv(x, rtol=1e-10)),
    ("pinv-rtol-None", lambda m, x: m.linalg.pinv(x, rtol=None)),
    ("pinv-rcond", lambda m, x: m.linalg.pinv(x, rcond=1e-12)),
    ("vecdot", lambda m, x: m.vecdot(x, x[::-1])),
    ("take-wrap", lambda m, x: m.take(x, [1, 17, -9], mode="wrap")),
    ("take-clip", lambda m, x: m.take(x, [[1, 17], [-9, 3]], axis=1, mode="clip")),
    ("std-correction", lambda m, x: m.std(x, axis=0, correction=1)),
    ("var-correction", lambda m, x: m.var(x, correction=1, keepdims=True)),
    ("reshape-shape", lambda m, x: m.reshape(x, shape=(2, 8))),
    ("flip-m", lambda m, x: m.flip(m=x, axis=0)),
    ("take_along_axis-arr", lambda m, x: m.take_along_axis(arr=x, indices=m.argsort(x, axis=1), axis=1)),
]


@pytest.mark.parametrize("name,fn", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_mismatches_traced_and_plain(name, fn):
    x = RNG.uniform(-1, 1, (4, 4)) + 3 * np.eye(4)
    expected = fn(np, x)
    plain = fn(gnp, dev(x))  # plain CuPy arrays work wherever plain NumPy arrays do
    assert_on_device(plain)
    np.testing.assert_allclose(host(plain), expected, rtol=1e-10, atol=1e-12)
    out, _ = record_and_backprop(lambda x: fn(gnp, x), dev(x))
    np.testing.assert_allclose(host(out), expected, rtol=1e-10, atol=1e-12)
    check_grads(lambda x: fn(gnp, x), [dev(x)], order=1)


def test_numpy_index_arrays_go_with_plain_cupy_data():
    x = RNG.uniform(-1, 1, (3, 4))
    for got, want in ((gnp.take(dev(x), np.array([5, 0])), np.take(x, [5, 0])),
                      (gnp.take(dev(x), indices=np.array([1]), axis=1), np.take(x, [1], axis=1)),
                      (gnp.take_along_axis(dev(x), np.argsort(x, axis=1), 1), np.sort(x, axis=1))):
        assert_on_device(got)
        np.testing.assert_array_equal(host(got), want)


def test_decompositions_of_plain_cupy_arrays_are_named_tuples():
    x = RNG.uniform(-1, 1, (4, 4)) + 3 * np.eye(4)
    spd = x @ x.T
    for got, want in ((gnp.linalg.eigh(dev(spd)).eigenvalues, np.linalg.eigh(spd).eigenvalues),
                      (gnp.linalg.svd(dev(x)).S, np.linalg.svd(x).S), (gnp.linalg.qr(dev(x)).R, np.linalg.qr(x).R),
                      (gnp.linalg.slogdet(dev(x)).logabsdet, np.linalg.slogdet(x).logabsdet),
                      (gnp.linalg.eig(dev(spd)).eigenvalues, np.linalg.eig(spd).eigenvalues)):
        assert_on_device(got)
        np.testing.assert_allclose(np.sort(np.atleast_1d(host(got).real)), np.sort(np.atleast_1d(want)), rtol=1e-12)
    assert gnp.linalg.eig(dev(spd)).eigenvalues.dtype == np.complex128  # CuPy's convention, read from no value


# ---- CuPy's kernels' dtypes and orderings, where they differ from NumPy's ----------------------------------------
# (NaN and infinities take part: NumPy's RuntimeWarnings are expected)

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - the test extra installs it
    BF16 = None
needs_bf16 = pytest.mark.skipif(BF16 is None, reason="ml_dtypes is not installed")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@needs_bf16
def test_the_emulation_has_cupys_dtype_rules(cp):
    """What the emulated CuPy takes from the real CuPy's tables and code (see emulated_cupy): each fails or
    differs from NumPy as on the GPU."""
    bf = dev([1.5, -2.0, np.nan, np.inf], BF16)
    assert cp.where(bf > 0, bf, bf).dtype == np.float32  # _where_ufunc: no bfloat16 loop
    assert (bf * 0.5).dtype == (np.ones(1, BF16) * 0.5).dtype  # ufunc loops: the real table's choice
    with pytest.raises(TypeError, match="cupy_clip"):
        cp.clip(dev([1 + 1j]), 0.0, 1.0)  # _clip: no complex loop
    with pytest.raises(TypeError, match="logical_not"):
        cp.logical_not(dev([1j]))
    np.testing.assert_array_equal(host(cp.nan_to_num(bf)).astype(float), [1.5, -2.0, 0.0, 0.0])
    with pytest.raises(NotImplementedError, match="bfloat16"):
        cp.sort(bf)  # Thrust
    with pytest.raises(NotImplementedError, match="bfloat16"):
        cp.argpartition(bf, 1)  # a short axis sorts fully
    with pytest.raises(ValueError, match="hazen"):
        cp.quantile(dev([1.0, 2.0]), 0.5, method="hazen")
    assert float(cp.quantile(dev([1.0, np.nan, 3.0]), 0.25)) == 2.0  # NaN not propagated (sorted last)
    long = np.linspace(0.0, 1.0, 400)
    long[[3, 50]] = np.nan
    part = host(cp.take_along_axis(dev(long), cp.argpartition(dev(long), 5), axis=0))
    assert np.isnan(part[:6]).any()  # the selection kernel does not move NaN last (NumPy's does)
    with pytest.raises(ValueError, match="multidimensional b"):
        cp.linalg.solve(dev(np.eye(3) * np.ones((2, 1, 1))), dev(np.ones((3, 2))))  # no broadcasting of b
    assert cp.var(bf).dtype == np.float64 and bf.std(axis=0).dtype == np.float64  # NumPy: bfloat16
    with pytest.raises(NotImplementedError, match="C-contiguous"):
        cp.interp(dev(np.ones((2, 3))).T, dev([0.0, 1.0]), dev([1.0, 2.0]))
    assert float(cp.interp(dev([-1.0]), dev([0.0, 1.0]), dev([1, 2]), left=0.5)[0]) == 0.0  # left cast to int64


def _both(fn, x, **close):
    """``fn`` of ``x`` on NumPy and on the emulated GPU, traced (value and gradient) and plain: the device's
    results equal NumPy's (traced: gpuad's on NumPy), with no host read while tracing, in the same dtypes."""
    want, pullback = on_numpy(gpuad.vjp, fn, x)
    (want_grad,) = on_numpy(pullback, np.ones_like(want))
    got, (grad,) = record_and_backprop(fn, dev(x))
    plain = fn(dev(x))
    for g, w in ((got, want), (plain, on_numpy(fn, x)), (grad, want_grad)):
        assert_on_device(g)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        np.testing.assert_allclose(host(g).astype(np.complex128), w.astype(np.complex128), equal_nan=True, **close)


def _with_nan(dtype, n=9, shape=(3,)):
    x = np.sin(np.arange(np.prod(shape) * n) * 1.7).reshape(shape + (n,)) * 2
    x[0, 2] = np.nan
    x[-1, -1] = np.inf
    x[1, 3] = -np.inf
    if np.dtype(dtype).kind == "c":
        x = x + 1j * np.cos(np.arange(x.size)).reshape(x.shape)
    return x.astype(dtype)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@needs_bf16
@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
@pytest.mark.parametrize("name,fn", [
    ("sort", lambda x: gnp.sort(x, axis=1)),
    ("median", lambda x: gnp.median(x, axis=1)),
    ("quantile", lambda x: gnp.quantile(x, [0.2, 0.7], axis=1, method="weibull")),
    ("percentile", lambda x: gnp.percentile(x, 35.0, axis=1)),
    ("vmap-sort", lambda x: gpuad.vmap(gnp.sort)(x)),
])
def test_sorts_of_every_float_dtype_match_numpy(name, fn, dtype):
    """CuPy's sorts (Thrust) take no bfloat16; NumPy's compare bfloat16 NaN as unordered: gpuad sorts bfloat16 as
    float32 on every backend, so NaN is last as NumPy documents it (the reference: the float32 sort, cast back)."""
    x = _with_nan(BF16 if dtype == "bfloat16" else dtype)
    if dtype != "bfloat16":
        return _both(fn, x)
    want = on_numpy(lambda x: gpuad.vjp(fn, x)[0], x)  # traced on NumPy (NumPy's own bfloat16 sort is unordered)
    for got in (record_and_backprop(fn, dev(x))[0], fn(dev(x))):
        assert_on_device(got)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(host(got).astype(np.float64), want.astype(np.float64))
    wide = on_numpy(fn, x.astype(np.float32))  # NaN where float32's has it, the rest within bfloat16's rounding
    np.testing.assert_allclose(want.astype(np.float64), wide, rtol=2e-2, atol=2e-2)
    if name == "sort":
        np.testing.assert_array_equal(want.astype(np.float32), wide.astype(BF16).astype(np.float32))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float64", "float16", "complex128"])
def test_partition_of_a_long_axis_puts_nan_last(dtype):
    """CuPy's selection kernel (a long axis, a small kth) compares with < and >, so it leaves NaN where it falls:
    gpuad selects by integer keys (complex: a full sort), NaN last, as NumPy's."""
    x = np.sin(np.arange(2 * 400) * 1.3).reshape(2, 400)
    x[0, [5, 70, 399]] = np.nan
    x = (x + 1j * x[::-1] if dtype == "complex128" else x).astype(dtype)
    for kth in (3, 10):
        want = on_numpy(lambda x: gnp.partition(x, kth, axis=1), x)
        got, _ = record_and_backprop(lambda x: gnp.partition(x, kth, axis=1), dev(x))
        plain = gnp.partition(dev(x), kth, axis=1)
        for g in (got, plain):
            np.testing.assert_array_equal(np.sort(host(g)[:, :kth + 1], axis=1), np.sort(want[:, :kth + 1], axis=1))
            np.testing.assert_array_equal(host(g)[:, kth], want[:, kth])
        order = gnp.argpartition(dev(x), kth, axis=1)
        np.testing.assert_array_equal(np.take_along_axis(x, host(order), axis=1)[:, kth], want[:, kth])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method", ["linear", "hazen", "inverted_cdf", "nearest"])
def test_plain_quantiles_are_numpys(method):
    """CuPy's quantile knows five methods, takes a q of one dimension and interpolates NaN as a number: on plain
    CuPy arrays gpuad runs its own composition, NumPy's results."""
    x = _with_nan("float64")
    for q in (0.3, [[0.1, 0.5], [0.9, 1.0]]):
        np.testing.assert_array_equal(host(gnp.quantile(dev(x), q, axis=1, method=method)),
                                      np.quantile(x, q, axis=1, method=method))
    np.testing.assert_array_equal(host(gnp.percentile(dev(x[1:]), 40.0, method=method)),
                                  np.percentile(x[1:], 40.0, method=method))


def test_plain_solve_broadcasts_as_numpy():
    """CuPy's solve needs b's batch axes to be a's (cupy/linalg/_solve.py): plain arrays with a broadcast b take
    gpuad's composition (which broadcasts), NumPy's results; matching ones CuPy's own solve."""
    a = RNG.uniform(-1, 1, (2, 3, 3)) + 3 * np.eye(3)
    for b in (RNG.uniform(-1, 1, (3, 2)), RNG.uniform(-1, 1, (2, 3, 2)), RNG.uniform(-1, 1, 3),
              RNG.uniform(-1, 1, (4, 1, 3, 2))):
        got = gnp.linalg.solve(dev(a), dev(b))
        assert_on_device(got)
        np.testing.assert_allclose(host(got), np.linalg.solve(a, b), rtol=1e-12)
    np.testing.assert_allclose(host(gnp.linalg.solve(dev(a[0]), dev(np.ones((5, 3, 2))))),
                               np.linalg.solve(a[0], np.ones((5, 3, 2))), rtol=1e-12)


def test_plain_interp_is_numpys():
    """CuPy's interp needs x as a C-contiguous array and casts left/right to fp's dtype: those calls take gpuad's
    composition (NumPy's float64 result); the others CuPy's own interp."""
    xp, fp = np.array([0.0, 1.0, 2.5]), np.array([1.0, -2.0, 0.5])
    x = np.linspace(-1.0, 3.0, 12).reshape(3, 4)
    cases = [(x.T, xp, fp, {}), (x, xp, fp.astype(np.float32), {"left": 0.1, "right": -0.3}),
             (x, xp, np.array([1, 4, 2]), {"left": 0.5}), (x, xp, fp, {"left": 0.1}), (x, xp, fp, {"period": 2.0})]
    for xv, xpv, fpv, kwargs in cases:
        got = gnp.interp(dev(xv), dev(xpv), dev(fpv), **kwargs)
        assert_on_device(got)
        np.testing.assert_allclose(host(got), np.interp(xv, xpv, fpv, **kwargs), rtol=1e-15)
    np.testing.assert_allclose(host(gnp.interp(0.25, dev(xp), dev(fp))), np.interp(0.25, xp, fp), rtol=1e-15)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_clip_of_complex_values(dtype):
    """CuPy's clip kernel has no complex loop: the clip row is NumPy's minimum(maximum(x, lo), hi)."""
    x = _with_nan(dtype)
    _both(lambda x: gnp.clip(x, -0.5 + 0.2j, 1.0 + 0.1j), x)
    _both(lambda x: gnp.clip(x, -0.5, None), x)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@needs_bf16
@pytest.mark.parametrize("name,fn", [
    ("where", lambda x: gnp.where(x > 0, x, x * x)),
    ("where-scalar", lambda x: gnp.where(x > 0, x, 0)),
    ("where-float", lambda x: gnp.where(x > 0, x, 0.25)),
    ("heaviside", lambda x: gnp.heaviside(x, x)),
    ("logaddexp", lambda x: gnp.logaddexp(x, x[::-1])),
    ("maximum", lambda x: gnp.maximum(x, x[::-1])),
    ("nanmax", lambda x: gnp.nanmax(x, axis=1)),
    ("nanvar", lambda x: gnp.nanvar(x, axis=1)),
    ("logsumexp", lambda x: gpuad.nn.logsumexp(x, axis=1)),
])
def test_where_keeps_numpys_bfloat16_dtypes(name, fn, unfused):
    """CuPy's where kernel has no bfloat16 loop (float32 out): the rows' expressions and gpuad's own selections
    go through backend.where, which selects bfloat16 bit patterns; results equal NumPy's, dtype and value."""
    x = np.sin(np.arange(27.0) * 1.3).reshape(3, 9).astype(BF16)
    x[0, 1] = x[0, 2] = x[2, 5]  # ties
    _both(fn, x, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@needs_bf16
def test_plain_variance_of_bfloat16_is_numpys():
    """CuPy's var and std reduce bfloat16 with their float64 kernel and return float64: plain bfloat16 arrays take
    gpuad's composition (bfloat16, as NumPy's)."""
    x = np.sin(np.arange(24.0)).reshape(4, 6).astype(BF16)
    for fn in (lambda m, x: m.var(x), lambda m, x: m.std(x, axis=1, ddof=1), lambda m, x: m.var(x, 0, None, None, 1)):
        want, got = on_numpy(fn, gnp, x), fn(gnp, dev(x))
        assert_on_device(got)
        assert got.dtype == want.dtype == BF16
        np.testing.assert_allclose(host(got).astype(float), want.astype(float), rtol=1e-2)


@needs_bf16
def test_nan_to_num_of_bfloat16_is_numpys():
    """NumPy leaves bfloat16 (not an inexact type to it) as it is; CuPy's nan_to_num would zero its NaN and
    infinities."""
    x = _with_nan(BF16)
    _both(gnp.nan_to_num, x, rtol=0, atol=0)
    assert np.isnan(host(gnp.nan_to_num(dev(x)))[0, 2].astype(float))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_kernel_sign_of_nan_is_nan():
    """abs's derivative is sign(x): NaN at NaN, in the generated kernel as in NumPy."""
    x = np.array([[np.nan, np.inf, -np.inf, -1.0], [2.0, 0.0, -0.0, 3.0]])
    before = len(ec.LAUNCHES)
    _both(lambda x: gnp.abs(x) * 2.0, x)
    assert len(ec.LAUNCHES) > before


# ---- the backend's scatters: NumPy's ufunc.at on every dtype, where CuPy's atomics cover fewer -----------------

def _scatter_operands(dtype):
    target = np.array([0.5, -1.0, 2.0, np.nan, 3.0, 1.0 + 1e-12, -0.0, 7.0])
    values = np.array([1.0 + 1e-12, 0.25, -3.0, 2.0, 1.0, 5.0, 1.0 + 2e-12, 3.0])
    if np.dtype(dtype).kind == "c":
        target = target + 1j * np.array([1.0, 2.0, -1.0, 0.0, 3.0, 0.5, 1.0, 0.0])
        values = values + 1j * np.array([2.0, 2.0, 1.0, 1.0, -3.0, 0.5, 4.0, 0.0])
        values[4] = 0.5 + 9j  # ties with the target's real part at position 0 (the imaginary part decides)
    if np.dtype(dtype).kind in "iub":
        target, values = np.nan_to_num(target) * 3, values * 3
    return target.astype(dtype), values.astype(dtype)


SCATTER_INDICES = [np.array([0, 2, 0, 5, 3, 0, 5, 1]), (np.array([4, 4, 4, 7, 6, 6, 1, 1]),),
                   np.array([[0, 0, 2, 2], [5, 5, 6, 6]])]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "complex128", "complex64", "int64", "int32",
                                   "int8", "uint16", "bool"])
@pytest.mark.parametrize("how", ["add", "max", "min"])
@pytest.mark.parametrize("k", range(len(SCATTER_INDICES)))
def test_backend_scatters_are_numpys_ufunc_at(dtype, how, k):
    target, values = _scatter_operands(dtype)
    index = SCATTER_INDICES[k]
    values = values[:np.broadcast_to(np.zeros(8), target.shape)[index].size].reshape(np.zeros(8)[index].shape)
    want = target.copy()
    with np.errstate(invalid="ignore"):  # (NaN compared)
        {"add": np.add, "max": np.maximum, "min": np.minimum}[how].at(want, index, values)
    got = dev(target)
    with ec.no_host_sync():
        getattr(backend, "scatter_" + how)(got, tuple(dev(i) for i in index) if isinstance(index, tuple)
                                           else dev(index), dev(values))
    np.testing.assert_array_equal(host(got), want)
    assert host(got).dtype == want.dtype


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "complex128"])
@pytest.mark.parametrize("method,ufunc", [("max", np.maximum), ("min", np.minimum), ("add", np.add)])
def test_at_updates_of_every_dtype_match_numpy_without_a_host_read(dtype, method, ufunc):
    x, v = (_scatter_operands(dtype)[0][:6].reshape(2, 3), _scatter_operands(dtype)[1][:6].reshape(2, 3))
    x = np.nan_to_num(x)
    index = np.array([1, 0, 1])
    want = x.copy()
    ufunc.at(want, (slice(None), index), v)
    with ec.no_host_sync():
        got = getattr(gpuad.tensor(dev(x)).at[:, dev(index)], method)(dev(v))
    np.testing.assert_array_equal(host(got.data), want)


def test_clip_with_a_nan_bound_and_partitions_with_numpy_integer_kth_are_numpys():
    x = np.array([0.5, 2.0, -1.0])
    for lo, hi in ((np.nan, 1.0), (0.0, np.nan), (np.array([0.0, np.nan, 0.0]), 1.0)):
        want = np.clip(x, lo, hi)
        np.testing.assert_array_equal(host(gnp.clip(dev(x), lo if np.ndim(lo) == 0 else dev(lo), hi)), want)
        with ec.no_host_sync():
            traced = gpuad.vjp(lambda u: gnp.clip(u, lo if np.ndim(lo) == 0 else dev(lo), hi), dev(x))[0]
        np.testing.assert_array_equal(host(traced), want)
    y = RNG.standard_normal(40)
    y[7] = np.nan
    for kth in (np.int64(3), [np.int64(0), 39]):
        order = host(gnp.argpartition(dev(y), kth))
        for k in np.atleast_1d(kth):
            np.testing.assert_array_equal(y[order][k], np.sort(y)[k])  # (NaN last, as NumPy's)


# ---- .at[index].set with repeated indices --------------------------------------------------------------------

AT_CASES = [
    ("1d-repeats", (8,), lambda: np.array([1, 3, 1, 5, 3, 1]), (6,)),
    ("rows-repeats", (5, 3), lambda: np.array([4, 0, 4, 2, 0]), (5, 3)),
    ("pairs-repeats", (4, 4), lambda: (np.array([0, 2, 0, 3, 2]), np.array([1, 1, 1, 0, 1])), (5,)),
    ("slice-and-array", (3, 6), lambda: (slice(None), np.array([5, 0, 5, 5])), (3, 4)),
    ("broadcast-value", (6,), lambda: np.array([2, 2, 4]), ()),
]


@pytest.mark.parametrize("on_device", [False, True], ids=["numpy", "cupy"])
@pytest.mark.parametrize("name,shape,index,vshape", AT_CASES, ids=[c[0] for c in AT_CASES])
def test_at_set_with_repeats_is_numpys_last_write(name, shape, index, vshape, on_device):
    a = RNG.uniform(-1, 1, shape)
    v = RNG.uniform(2, 3, vshape)
    idx = index()
    expected = a.copy()
    expected[idx] = v  # NumPy: the last write wins
    move = dev if on_device else np.asarray
    didx = tuple(move(i) if isinstance(i, np.ndarray) else i for i in idx) if isinstance(idx, tuple) else move(idx)
    f = lambda a, v: a.at[didx].set(v)  # noqa: E731
    if on_device:
        out, (ga, gv) = record_and_backprop(f, move(a), move(v))
    else:
        out, pullback = gpuad.vjp(f, a, v)
        ga, gv = pullback(np.ones_like(expected))
    np.testing.assert_array_equal(host(out), expected)
    # gradient: the overwritten elements of a get none; of v, only the writes that won
    written = np.zeros(shape, bool)
    written[idx] = True
    np.testing.assert_array_equal(host(ga), (~written).astype(float))
    order = np.arange(np.broadcast_to(v, np.zeros(shape)[idx].shape).size).reshape(np.zeros(shape)[idx].shape)
    winner = np.full(shape, -1)
    winner[idx] = order  # NumPy's own rule, on the CPU
    wins = (winner[idx] == order).astype(float)
    np.testing.assert_array_equal(host(gv), wins.sum() if vshape == () else wins.reshape(vshape))


@pytest.mark.parametrize("on_device", [False, True], ids=["numpy", "cupy"])
def test_at_multiply_with_repeats_and_zeros(on_device):
    a = RNG.uniform(-2, 2, (5, 3))
    v = RNG.uniform(-2, 2, (6, 3))
    v[1, 0] = v[4, 2] = 0.0
    idx = np.array([3, 1, 3, 0, 3, 1])
    expected = a.copy()
    np.multiply.at(expected, idx, v)
    move = dev if on_device else np.asarray

    def f(a, v):
        if isinstance(a, gpuad.Tensor):
            return a.at[move(idx)].multiply(v)
        out = host(a).copy()  # plain values (the numerical derivatives): NumPy's own multiply.at
        np.multiply.at(out, idx, host(v))
        return move(out)
    out, _ = record_and_backprop(f, move(a), move(v), allow_sync=not on_device)
    np.testing.assert_allclose(host(out), expected, rtol=1e-14)
    check_grads(f, [move(a), move(v)], order=2)


# ---- no host synchronisation in traced code ------------------------------------------------------------------

def _mlp_loss(w1, w2, x, labels):
    h = gnp.tanh(x @ w1)
    return gnp.mean(gpuad.nn.softmax_cross_entropy(h @ w2, labels))


WORKLOADS = [
    ("elementwise-chain", lambda x: gnp.sum(gnp.sin(x) * gnp.exp(-x * x) / (1.0 + gnp.abs(x)) ** 2), [(3, 4)]),
    ("prod", lambda x: gnp.prod(x, axis=1), [(3, 4)]),
    ("prod-with-zero", lambda x: gnp.prod(x * gnp.asarray([1.0, 0.0, 1.0, 1.0])), [(3, 4)]),
    ("cumprod", lambda x: gnp.cumprod(x, axis=0), [(3, 4)]),
    ("cumprod-with-zero", lambda x: gnp.cumprod(x * gnp.asarray([1.0, 0.0, 1.0, 1.0]), axis=1), [(3, 4)]),
    ("std", lambda x: gnp.std(x, axis=0), [(3, 4)]),
    ("std-constant-slice", lambda x: gnp.std(x * gnp.asarray([[1.0], [0.0], [1.0]]), axis=1), [(3, 4)]),
    ("at-set", lambda x: x.at[gnp.asarray([0, 2, 0])].set(x[1] * 3.0), [(3, 4)]),
    ("at-multiply", lambda x: x.at[gnp.asarray([1, 1, 2, 1])].multiply(x[:4] + 2.0).sum()
     + x.at[1:, gnp.asarray([0, 0])].multiply(x[0, 2:] * 0.0 + x[0, :2]), [(4, 3)]),
    ("at-add", lambda x: x.at[gnp.asarray([0, 2, 0])].add(x[1] * 3.0), [(3, 4)]),
    ("at-max-min", lambda x: x.at[gnp.asarray([0, 0])].max(x[1:]) + x.at[gnp.asarray([2, 1, 2])].min(x * 0.5)
     + gnp.sum(gpuad.vmap(lambda r: r.at[gnp.asarray([1, 1])].max(r[2:]))(x)), [(3, 4)]),
    ("reductions", lambda x: gnp.sum(x) + gnp.mean(x, axis=0) + gnp.max(x, axis=1).sum() + gnp.min(x)
     + gnp.var(x, ddof=1) + gnp.ptp(x, axis=0) + gnp.average(x, axis=0, weights=gnp.asarray([1.0, 2.0, 3.0])),
     [(3, 4)]),
    ("scans-sort", lambda x: gnp.cumsum(gnp.sort(x, axis=1), axis=0) + gnp.partition(x, 1, axis=1), [(3, 4)]),
    ("indexing", lambda x: gnp.take_along_axis(x, gnp.asarray([[0, 1], [2, 3], [1, 1]]), axis=1).sum()
     + x[gnp.asarray([2, 0]), 1:3].sum() + gnp.take(x, gnp.asarray([5, 1])).sum(), [(3, 4)]),
    ("shapes", lambda x: gnp.pad(gnp.concatenate([x, x[::-1]], axis=0), 1).reshape(-1)[3:20]
     + gnp.stack([x, x]).transpose(1, 2, 0).reshape(-1)[:17], [(3, 4)]),
    ("linalg", lambda a: gnp.linalg.solve(a @ a.T + 4 * gnp.eye(4), a[:, 0]).sum() + gnp.linalg.det(a)
     + gnp.linalg.slogdet(a + 4 * gnp.eye(4))[1] + gnp.linalg.inv(a + 4 * gnp.eye(4)).sum()
     + gnp.linalg.norm(a) + gnp.linalg.eigh(a + a.T)[0].sum() + gnp.linalg.svd(a)[1].sum()
     + gnp.linalg.qr(a)[1].sum() + gnp.linalg.cholesky(a @ a.T + gnp.eye(4)).sum(), [(4, 4)]),
    ("einsum-matmul", lambda a, b: gnp.einsum("ij,jk->ik", a, b) @ b.T, [(3, 4), (4, 5)]),
    ("nn", lambda x: gpuad.nn.logsumexp(x, axis=1, b=gnp.asarray([1.0, 2.0, 0.5, 1.0])).sum()
     + gpuad.nn.softmax(x).sum() + gpuad.nn.log_softmax(x, axis=0).sum() + gpuad.nn.sigmoid(x).sum()
     + gpuad.nn.log_sigmoid(x).sum() + gpuad.nn.relu(x).sum() + gpuad.nn.softplus(x).sum()
     + gpuad.nn.softmax_cross_entropy(x, gpuad.nn.softmax(x * 2.0).data, reduction="sum"), [(3, 4)]),
    ("selection", lambda x: gnp.clip(x, -0.5, 0.5) + gnp.where(x > 0, x, x * x) + gnp.maximum(x, 0.1)
     + gnp.abs(x) + gnp.roll(x, 1, axis=1) + gnp.tril(gnp.tile(x, (1, 1))[:, :3], 0).sum(), [(3, 4)]),
    ("structure", lambda x: gnp.kron(x[:2, :2], x[1:, 2:]).sum() + gnp.diag(x[:, :3]).sum()
     + gnp.repeat(x, 2, axis=0).sum() + sum(p.sum() for p in gnp.split(x, 2, axis=1))
     + gnp.trace(x) + gnp.diff(x, axis=1).sum() + gnp.flip(x).sum(), [(3, 4)]),
    ("nan-reductions", lambda x: gnp.nansum(x, axis=0) + gnp.nanmean(x, axis=0) + gnp.nanmax(x, axis=0)
     + gnp.nanmin(x, axis=0) + gnp.nanvar(x, axis=0) + gnp.nanstd(x, axis=0) + gnp.nanprod(x, axis=0),
     [(3, 4)]),
    ("statistics", lambda x: gnp.median(x, axis=1).sum() + gnp.quantile(x, 0.3) + gnp.percentile(x, [10.0, 70.0],
                                                                                                   axis=0).sum()
     + gnp.cov(x).sum() + gnp.cov(x, aweights=gnp.asarray([1.0, 2.0, 1.0, 0.5])).sum() + gnp.corrcoef(x).sum(),
     [(3, 4)]),
    ("quantile-weights", lambda x: gnp.quantile(x, 0.5, axis=1, method="inverted_cdf",
                                                weights=gnp.asarray([0.0, 2.0, 1.0, 3.0])).sum()
     + gnp.percentile(x, gnp.asarray([0.0, 40.0, 100.0]), axis=(0, 1), method="inverted_cdf",
                      weights=gnp.asarray(np.arange(12.0).reshape(3, 4).tolist())).sum(), [(3, 4)]),
    ("calculus", lambda x: gnp.gradient(x, axis=1).sum() + gnp.trapezoid(x, dx=0.5, axis=0).sum()
     + gnp.convolve(x[0], x[1]).sum() + gnp.correlate(x[0], x[2], "same").sum()
     + gnp.cross(x[:, :3], x[::-1, 1:]).sum() + gnp.polyval(x[0], x[1]).sum()
     + gnp.interp(gnp.asarray([0.25, 1.5, 2.75]), gnp.asarray([0.0, 1.0, 2.0, 3.0]), x[1]).sum(), [(3, 4)]),
    ("pad-modes", lambda x: gnp.pad(x, 2, mode="linear_ramp").sum() + gnp.pad(x, 1, mode="mean").sum()
     + gnp.pad(x, (1, 2), mode="maximum").sum() + gnp.pad(x, 1, mode="reflect").sum(), [(3, 4)]),
    ("lstsq-square-wide", lambda a: gnp.linalg.lstsq(a + 3 * gnp.eye(4), a[:, :2], rcond=None)[0].sum()
     + gnp.linalg.lstsq(a[:2], a[:2, 0])[0].sum() + gnp.linalg.lstsq(a, a[:, 1])[2], [(4, 4)]),
    ("matrix_power", lambda a: gnp.linalg.matrix_power(a + 2 * gnp.eye(4), 3).sum(), [(4, 4)]),
    ("vmap", lambda x: gnp.sum(gpuad.vmap(lambda r: gnp.sum(gnp.tanh(r) * gnp.cumprod(r) / (1.0 + r * r))
                                            + gnp.std(r) + gnp.sort(r)[0])(x))
     + gnp.sum(gpuad.vmap(gpuad.grad(lambda r: gnp.sum(gnp.sin(r) * r)))(x)), [(3, 4)]),
    ("vmap-order-statistics", lambda x: gnp.sum(gpuad.vmap(lambda r: gnp.median(r) + gnp.quantile(r, [0.2, 0.9]).sum()
                                                     + gnp.percentile(r, 30.0, method="inverted_cdf",
                                                                      weights=gnp.asarray([1.0, 0.0, 2.0, 1.0]))
                                                     + gnp.partition(r, 2)[2] + gnp.sort(r)[1]
                                                     + gnp.interp(r, gnp.asarray([-0.5, 0.0, 0.5]), r[:3]).sum()
                                                     + r[gnp.argmax(r)])(x))
     + gnp.sum(gpuad.vmap(lambda r: r.at[gnp.argmin(r)].add(r[0]) + r.at[gnp.argmax(r)].set(1.5)
                          + r.at[gnp.argmin(r)].multiply(r[1]) + r.at[gnp.argmax(r)].min(r[2]))(x))
     + gnp.sum(x.at[gnp.asarray([1, 1])].multiply(x[2:] + 1.0)), [(3, 4)]),
    ("checkpoint-hessian", lambda x: gnp.sum(gpuad.checkpoint(lambda r: gnp.tanh(r) * gnp.exp(r * 0.5))(x))
     + gnp.sum(gpuad.hvp(lambda r: gnp.sum(gnp.sin(r) * r * r), (x,), (x,))[1]), [(3, 4)]),
    ("mlp-loss", lambda w1, w2: _mlp_loss(w1, w2, gnp.asarray(np.linspace(-1, 1, 24).reshape(6, 4).tolist()),
                                          gnp.asarray([0, 1, 2, 1, 0, 2])), [(4, 5), (5, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", WORKLOADS, ids=[w[0] for w in WORKLOADS])
def test_no_host_sync_while_recording_and_backward(name, fn, shapes):
    args = [dev(RNG.uniform(-1, 1, s)) for s in shapes]
    out, grads = record_and_backprop(fn, *args)
    assert_on_device(out)
    assert_on_device(grads)
    # forward mode and reverse over reverse too (unfused: the second-order regions would each compile a host
    # build, and the fused kernels are checked above)
    previous = tape.set_fusion(False)
    try:
        with ec.no_host_sync():
            gpuad.jvp(fn, tuple(args), tuple(gnp.ones_like(a) for a in args))
            gpuad.grad(lambda *a: gnp.sum(gpuad.grad(lambda *b: gnp.sum(fn(*b)))(*a)))(*args)
    finally:
        tape.set_fusion(previous)
    expected = on_numpy(lambda *a: gpuad.vjp(fn, *a)[0], *[host(a) for a in args])
    np.testing.assert_allclose(host(out), expected, rtol=1e-12, atol=1e-12)


# Host reads that remain (each an xfail: when one is designed away, its strict xfail fails and it moves up):
# lstsq of a tall matrix returns residuals whose shape follows the rank, as in NumPy (CuPy's lstsq reads it too).
KNOWN_SYNCS = [
    ("lstsq-tall-rank", lambda a: gnp.linalg.lstsq(a[:, :3] + 3 * gnp.eye(4)[:, :3], a[:, :2])[0].sum(),
     [(4, 4)]),
]


@pytest.mark.parametrize("name,fn,shapes", KNOWN_SYNCS, ids=[w[0] for w in KNOWN_SYNCS])
@pytest.mark.xfail(raises=ec.HostSyncError, strict=True, reason="a known host read (see KNOWN_SYNCS)")
def test_known_host_syncs(name, fn, shapes):
    record_and_backprop(fn, *[dev(RNG.uniform(-1, 1, s)) for s in shapes])


def test_products_with_zeros_stay_exact_to_second_order():
    for x in (np.array([2.0, 0.0, 3.0, -1.5]), np.array([0.0, 0.0, 3.0, 1.25]), np.array([1.5, -2.0, 0.5, 3.0])):
        check_grads(lambda x: gnp.prod(x), [dev(x)], order=2)
        check_grads(lambda x: gnp.cumprod(x), [dev(x)], order=2)


# ---- the table-driven tests, on the emulated CuPy ------------------------------------------------------------

import test_elementwise  # noqa: E402
import test_complex_linalg  # noqa: E402
import test_linalg  # noqa: E402
import test_reductions  # noqa: E402
import test_shapes  # noqa: E402


def _tier_check(fn, args, order=1):
    """Forward value against NumPy's, recording and backward with no host transfer, derivatives numerically."""
    expected = fn(np, *args)
    out, _ = record_and_backprop(lambda *a: fn(gnp, *a), *[dev(a) for a in args])
    if isinstance(expected, (list, tuple)):
        for o, e in zip(out, expected):
            np.testing.assert_allclose(host(o), e, rtol=1e-10, atol=1e-12)
    else:
        assert_on_device(out)
        np.testing.assert_allclose(host(out), expected, rtol=1e-10, atol=1e-12)
    check_grads(lambda *a: fn(gnp, *a), [dev(a) for a in args], order=order)


@pytest.mark.parametrize("prim", test_elementwise.ROWS, ids=lambda p: p.name)
def test_elementwise_rows(prim, cp):
    # one broadcasting case per row (each case compiles its own kernels' host build)
    shapes = test_elementwise.SHAPES[prim.arity][{1: 2, 2: 3, 3: 2}[prim.arity]]
    f, args = test_elementwise.make_case(prim, shapes, xp=cp)
    if args:
        with ec.no_host_sync():
            out, pullback = gpuad.vjp(f, *args)
            pullback(gnp.ones_like(out))
        check_grads(f, args, order=1)


REDUCTION_CASES = [c for c in test_reductions.CASES
                   if c[2] == (2, 3, 4) and c[3] in (None, 1, (0, 2), -1) and c[4] == (c[3] == 1)
                   and c[0] != "average_weights"]  # its weights are NumPy arrays (the workloads weigh on device)
SCAN_CASES = [c for c in test_reductions.SCAN_CASES if c[2] == (3, 4)]


@pytest.mark.parametrize("case", REDUCTION_CASES + SCAN_CASES,
                         ids=[test_reductions.case_id(c) for c in REDUCTION_CASES + SCAN_CASES])
def test_reductions_and_scans(case):
    name, call, shape, axis = case[:4]
    keepdims = case[4] if len(case) > 4 else None
    fn = (lambda m, x: call(m, x, axis, keepdims)) if len(case) > 4 else (lambda m, x: call(m, x, axis))
    _tier_check(fn, [test_reductions.data(shape)])


# The cases whose functions hold NumPy arrays as constants (index arrays, repeat counts, ...): CuPy rejects those
# beside its own arrays, so they stay in the NumPy tier (gpuad moves such constants itself where NumPy does).
NUMPY_CONSTANTS = {"repeat-size1-array", "diff-prepend-append", "take_along_axis-sorting", "take_along_axis-axis0",
                   "take_along_axis-negative", "take_along_axis-none", "take_along_axis-broadcast", "select",
                   "select-broadcast", "select-lists", "tile-0d-array-reps"}
SHAPE_CASES = [c for c in test_shapes.CASES if c[0] not in NUMPY_CONSTANTS]


@pytest.mark.parametrize("case", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shapes_table(case):
    _, fn, args = case
    expected = fn(np, *args)
    out, _ = record_and_backprop(lambda *a: fn(gnp, *a), *[dev(a) for a in args])
    for o, e in zip(out if isinstance(expected, (list, tuple)) else [out],
                    expected if isinstance(expected, (list, tuple)) else [expected]):
        assert_on_device(o)
        np.testing.assert_array_equal(host(o), e)
    check_grads(lambda *a: fn(gnp, *a), [dev(a) for a in args], order=1)


@pytest.mark.parametrize("name,fn,args", test_linalg.CASES, ids=[c[0] for c in test_linalg.CASES])
def test_linalg_table(name, fn, args):
    _tier_check(fn, args)


# lstsq of a tall matrix reads its rank on the host (see KNOWN_SYNCS)
COMPLEX_LINALG_SYNCS = {"lstsq_x", "lstsq_residuals", "lstsq_real_a"}


@pytest.mark.parametrize("name,fn,args", test_complex_linalg.CASES, ids=[c[0] for c in test_complex_linalg.CASES])
def test_complex_linalg_table(name, fn, args):
    if name in COMPLEX_LINALG_SYNCS:
        expected = fn(np, *args)
        out, _ = record_and_backprop(lambda *a: fn(gnp, *a), *[dev(a) for a in args], allow_sync=True)
        np.testing.assert_allclose(host(out), expected, rtol=1e-10, atol=1e-12)
        check_grads(lambda *a: fn(gnp, *a), [dev(a) for a in args], order=1)
        return
    _tier_check(fn, args)
import test_fusion  # noqa: E402

COMPLEX_PROGRAMS = sorted(name for name in test_fusion.PROGRAMS if name.startswith("complex"))


@pytest.mark.parametrize("name", COMPLEX_PROGRAMS)
def test_complex_programs_run_as_kernels(name):
    """Complex regions, and real ones reading complex values, as generated kernels on the emulated GPU (the CUDA
    text's host build: std::complex standing in for thrust::complex), without a host read: the fused gradients
    equal the per-op rules' on the same device and the NumPy rendering's, in the arguments' dtypes."""
    fn, shapes, dtype = test_fusion.PROGRAMS[name]
    args = test_fusion.make_args(shapes, dtype)
    before = len(ec.LAUNCHES)
    with ec.no_host_sync():
        fused, _ = test_fusion.tape_gradient(fn, [dev(a) for a in args])
    launched = {launch[0] for launch in ec.LAUNCHES[before:]}
    assert any("_bwd_c64_" in n or "_bwd_c128_" in n for n in launched), launched  # complex kernels ran
    assert_on_device(fused)
    unfused, _ = test_fusion.tape_gradient(fn, [dev(a) for a in args], fused=False)
    expected, _ = on_numpy(test_fusion.tape_gradient, fn, args)
    for other, what in ((unfused, "per-op rules"), (expected, "NumPy rendering")):
        test_fusion.assert_grads_close([host(g) for g in fused], [host(g) for g in other], dtype,
                                       f"{name}: emulated GPU kernels vs {what}")


# ---- random programs: the generated kernels (host build) against NumPy's Python rendering ----------------------

import test_random_programs  # noqa: E402
from hypothesis import given, settings  # noqa: E402


@settings(max_examples=15, deadline=None, derandomize=True)  # fixed examples: their kernels' builds are cached
@given(test_random_programs.programs(), test_random_programs.shapes, test_random_programs.shapes)
def test_random_programs_match_numpy_without_host_sync(program, xs, ws):
    try:
        np.broadcast_shapes(xs, ws)
    except ValueError:
        return
    rng = np.random.default_rng(len(program))
    x, w = rng.uniform(-1.5, 1.5, xs), rng.uniform(-1.5, 1.5, ws)
    f = lambda x, w: test_random_programs.run(program, x, w)  # noqa: E731
    with ec.emulated():
        out, grads = record_and_backprop(f, dev(x), dev(w))
    expected, pullback = gpuad.vjp(f, x, w)
    np.testing.assert_allclose(host(out), expected, rtol=1e-12, atol=1e-12)
    for g, e in zip(grads, pullback(np.ones_like(expected))):
        np.testing.assert_allclose(host(g), e, rtol=1e-11, atol=1e-12)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(test_random_programs.programs(), test_random_programs.shapes, test_random_programs.shapes)
def test_random_programs_under_vmap_match_numpy_without_host_sync(program, xs, ws):
    """The batched programs (gathers, sorts, medians, comparisons, .at[].max) under vmap(grad) on the emulated
    GPU: NumPy's values, and no device-to-host transfer while recording and differentiating."""
    try:
        np.broadcast_shapes(xs, ws)
    except ValueError:
        return
    rng = np.random.default_rng(len(program))
    x, w = rng.uniform(-1.5, 1.5, (3,) + xs), rng.uniform(-1.5, 1.5, ws)
    f = lambda x, w: gnp.sum(gnp.sin(test_random_programs.run_batched(  # noqa: E731
        program, x if isinstance(x, gpuad.Tensor) else gpuad.tensor(x), w)))
    with ec.emulated(), ec.no_host_sync():
        got = gpuad.vmap(gpuad.grad(f), in_axes=(0, None))(dev(x), dev(w))
    assert_on_device(got)
    np.testing.assert_allclose(host(got), gpuad.vmap(gpuad.grad(f), in_axes=(0, None))(x, w), rtol=1e-11,
                               atol=1e-12)


def test_tape_api_on_the_emulated_gpu():
    """The explicit Tape (watch, persistent gradients, a leaf tensor, the kernels it would run) on CuPy arrays."""
    x, w = dev(RNG.uniform(-1, 1, (4, 3))), dev(RNG.uniform(-1, 1, (3, 2)))
    leaf = gpuad.tensor(w)
    assert_on_device(leaf.data)
    with ec.no_host_sync():
        with gpuad.Tape(persistent=True) as tape:
            xs = tape.watch(x)
            y = gnp.sum(gnp.tanh(xs @ leaf) ** 2 + gnp.exp(-xs).sum(axis=1, keepdims=True))
        gx, gw = tape.gradient(y, [xs, leaf])
        again = tape.gradient(y, xs)
    assert_on_device([gx, gw, again])
    np.testing.assert_array_equal(host(again), host(gx))
    expected = gpuad.grad(lambda x, w: gnp.sum(gnp.tanh(x @ w) ** 2 + gnp.exp(-x).sum(axis=1, keepdims=True)),
                          (0, 1))(host(x), host(w))
    np.testing.assert_allclose(host(gx), expected[0], rtol=1e-12)
    np.testing.assert_allclose(host(gw), expected[1], rtol=1e-12)
    assert "__global__" in tape.kernels()


# ---- the NumPy functions added later (statistics, calculus, pad modes, ...), on the emulated CuPy ---------------

import warnings  # noqa: E402

import test_more_numpy  # noqa: E402

# Cases whose functions hold NumPy arrays as constants (where= masks, weights, coordinates, interp's knots, ...):
# CuPy rejects those beside its own arrays, so they stay in the NumPy tier.
MORE_NUMPY_CONSTANTS = {c[0] for c in test_more_numpy.CASES
                        if "-where-" in c[0] or c[0].startswith(("interp", "cov-", "gradient-coordinates",
                                                                  "quantile-weights", "percentile-weights"))} | {
    "copysign-broadcast", "heaviside", "logspace-array-base"}
# Cases that read values on the host by design (lstsq's residuals take their shape from the rank, as in NumPy):
# checked here with the transfers allowed.
MORE_HOST_READS = {c[0] for c in test_more_numpy.CASES  # lstsq of a tall matrix (see KNOWN_SYNCS)
                   if c[0].startswith("lstsq") and c[0] not in ("lstsq-wide", "lstsq-square")}
MORE_CASES = [c for c in test_more_numpy.CASES if c[0] not in MORE_NUMPY_CONSTANTS]


@pytest.fixture
def unfused():
    """Backward passes op by op (CuPy's functions for every rule), no fused kernels: the table is broad, and each
    new fused region would compile its own host build; the kernels are covered by the tests above."""
    previous = tape.set_fusion(False)
    yield
    tape.set_fusion(previous)


@pytest.mark.parametrize("case", MORE_CASES, ids=[c[0] for c in MORE_CASES])
def test_more_numpy_table(case, unfused):
    name, call, args = case[:3]
    check = case[3] if len(case) > 3 else True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        want = on_numpy(call, np, *args)
        out, _ = record_and_backprop(lambda *a: call(gnp, *a), *[dev(a) for a in args],
                                     allow_sync=name in MORE_HOST_READS)
        rtol = next((v for k, v in test_more_numpy.RTOL.items() if name.startswith(k)), 1e-13)
        for g, w in zip(out if isinstance(out, (tuple, list)) else (out,),
                        want if isinstance(want, (tuple, list)) else (want,)):
            np.testing.assert_allclose(host(g), w, rtol=max(rtol, 1e-12), atol=1e-12, equal_nan=True)
        if check and test_more_numpy._all_finite(want):
            check_grads(lambda *a: call(gnp, *a), [dev(a) for a in args], order=1)
