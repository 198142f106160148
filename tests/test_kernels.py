"""The generated backward kernels, checked without a GPU, then on one where there is.

Every kernel the CPU tests generate (each rule row alone, over full-shape and over broadcast or strided operands,
in float64 and float32; each program of test_fusion's table; random fused regions) is collected from the
backward passes' kernel logs and compiled twice from its one generated text: by nvcc for sm_90 (all of them in
one nvcc run) and by the host C++ compiler (one run, loaded with ctypes). The CPU build then runs the same
backward passes through the kernel path (layouts, strides, in-place accumulation, broadcast reductions), and its
gradients must match the NumPy rendering and the per-op rules to rounding. The tests marked ``gpu`` run the
same cases on CuPy arrays.
"""
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import fusion
from gpuad.core import bind
from gpuad.testing import sample
from test_fusion import (PROGRAMS, ROWS, assert_grads_close, bench, make_args, random_args, random_program,
                         tape_gradient)

ROOT = Path(__file__).resolve().parent.parent
RANDOM_SEEDS = range(24)
RANDOM_SEEDS_32 = range(100, 106)
GPU_SKIP = {"integer_and_bool_constants"}  # builds NumPy constants: not for CuPy arrays


# ---- the cases: each row alone, the program table, random regions ----------------------------------------------

def row_cases(prim, dtype, xp=np):
    """(name, function, arguments, output cotangent) for a row: the op alone over full-shape arrays, and over
    broadcast (or, for one argument, transposed) operands; a row with no differentiable argument is used as a
    factor, row(...) * w, so its forward expression is compiled too."""
    rng = np.random.default_rng(7)
    domains = prim.domain or (None,) * prim.arity
    layouts = {1: [[(3, 4)], [(4, 3)]], 2: [[(3, 4)] * 2, [(3, 4), (4,)]],
               3: [[(3, 4)] * 3, [(3, 4), (1, 4), ()]]}[prim.arity]
    diff = [k for k in range(prim.arity) if k not in prim.nondiff]
    cases = []
    for tag, shapes in zip(("full", "broadcast"), layouts):
        values = [sample(d, s, rng, dtype) for d, s in zip(domains, shapes)]
        if tag == "broadcast" and prim.arity == 1:
            values = [values[0].T]  # a transposed (strided) view
        values = [xp.asarray(v) for v in values]
        ct = xp.asarray(rng.standard_normal((3, 4)), dtype=dtype)
        if diff:
            def fn(*xs, values=values):
                args = list(values)
                for k, x in zip(diff, xs):
                    args[k] = x
                return bind(prim, args, {})
            cases.append((f"{prim.name}-{tag}-{np.dtype(dtype).name}", fn, [values[k] for k in diff], ct))
        else:
            w = xp.asarray(rng.uniform(-1, 1, (3, 4)), dtype=dtype)
            cases.append((f"{prim.name}-{tag}-{np.dtype(dtype).name}", lambda w, values=values: bind(prim, values, {}) * w, [w], ct))
    return cases


def program_case(name, xp=np):
    fn, shapes, dtype = PROGRAMS[name]
    return name, fn, [xp.asarray(a) for a in make_args(shapes, dtype)], None


def random_case(seed, dtype, xp=np):
    return f"random-{seed}-{np.dtype(dtype).name}", random_program(seed), [xp.asarray(a) for a in
                                                                            random_args(seed, dtype)], None


def all_cases():
    cases = []
    for prim in ROWS:
        for dtype in (np.float64, np.float32):
            cases += row_cases(prim, dtype)
    cases += [program_case(name) for name in sorted(PROGRAMS)]
    cases += [random_case(s, np.float64) for s in RANDOM_SEEDS] + [random_case(s, np.float32) for s in RANDOM_SEEDS_32]
    return cases


def run(case, fused=True, launcher=None):
    name, fn, args, ct = case
    with np.errstate(all="ignore"):
        return tape_gradient(fn, args, fused=fused, output_gradients=ct, launcher=launcher)


# ---- one compile of everything ----------------------------------------------------------------------------------

def cuda_batch(specs):
    """One translation unit with the CUDA build of every distinct kernel."""
    sources, seen = [], set()
    for spec in specs:
        if spec.name not in seen:
            seen.add(spec.name)
            sources.append(fusion.kernel_source(spec, "cuda"))
    return "\n".join(sources), len(sources)


def _nvcc_batch(specs, folder):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    text, count = cuda_batch(specs)
    (folder / "kernels.cu").write_text(text)
    result = subprocess.run([nvcc, "-arch=sm_90", "-cubin", "-o", str(folder / "kernels.cubin"),
                             str(folder / "kernels.cu")], capture_output=True, text=True)
    return SimpleNamespace(returncode=result.returncode, stderr=result.stderr, count=count,
                           source=folder / "kernels.cu")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every case's backward pass on NumPy (the reference), its kernel specs, and both builds of them."""
    folder = tmp_path_factory.mktemp("kernels")
    specs, reference = [], {}
    for case in all_cases():
        grads, tape = run(case)
        reference[case[0]] = grads
        specs += tape.kernel_specs()
    host, host_error = None, None
    if fusion.compiler() is not None:
        host = fusion.HostLauncher(folder)
        try:
            host.preload(specs)
        except RuntimeError as e:
            host_error = str(e)
    return SimpleNamespace(specs=specs, reference=reference, host=host, host_error=host_error,
                           nvcc=_nvcc_batch(specs, folder))


@pytest.fixture
def host(compiled):
    """The host launcher holding the CPU build of every case's kernels (tapes pass it: Tape(launcher=host))."""
    if compiled.host is None:
        pytest.skip("no C++ compiler here (g++ or clang++) for the CPU build of the kernels")
    assert compiled.host_error is None, compiled.host_error
    return compiled.host


def test_nvcc_compiles_every_generated_kernel(compiled):
    if compiled.nvcc is None:
        pytest.skip("no nvcc here")
    assert compiled.nvcc.returncode == 0, f"nvcc -arch=sm_90 rejected {compiled.nvcc.source}:\n" \
                                          f"{compiled.nvcc.stderr[-6000:]}"
    names = {s.name for s in compiled.specs}
    assert compiled.nvcc.count == len(names) > 2 * len(ROWS)


def test_every_row_has_its_own_kernel(compiled):
    names = {s.name for s in compiled.specs}
    for prim in ROWS:
        if len(prim.nondiff) < prim.arity:
            for suffix in ("f64", "f32"):
                assert any(n.startswith(f"gpuad_{prim.name}_bwd_{suffix}_") for n in names), (prim.name, suffix)
    layouts = {kind for s in compiled.specs for _, kind in s.layouts}
    assert layouts == {"full", "scalar", "strided"}


def test_one_source_two_wrappers(compiled):
    spec = next(s for s in compiled.specs if s.name.startswith("gpuad_fused"))
    cuda, cpu = fusion.kernel_source(spec, "cuda"), fusion.kernel_source(spec, "cpu")
    body = fusion.kernel_body(spec)
    assert body in cuda and body in cpu
    assert cuda.replace(body, "").count("\n") < 25 and cpu.replace(body, "").count("\n") < 25  # thin wrappers


def _check_case(case, compiled, host):
    launched = len(host.launched)
    grads, _ = run(case, launcher=host)
    dtype = case[2][0].dtype
    assert_grads_close(grads, compiled.reference[case[0]], dtype, f"{case[0]}: CPU kernel vs NumPy rendering")
    unfused, _ = run(case, fused=False)
    assert_grads_close(grads, unfused, dtype, f"{case[0]}: CPU kernel vs per-op rules")
    assert not host.compiled_alone, f"kernels missing from the batch: {host.compiled_alone}"
    return len(host.launched) - launched


@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_row_kernels_match_numpy(prim, compiled, host):
    for dtype in (np.float64, np.float32):
        for case in row_cases(prim, dtype):
            assert _check_case(case, compiled, host) >= 1, f"{case[0]} launched no kernel"


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_kernels_match_numpy(name, compiled, host):
    assert _check_case(program_case(name), compiled, host) >= 1


def test_random_region_kernels_match_numpy(compiled, host):
    for seed in RANDOM_SEEDS:
        _check_case(random_case(seed, np.float64), compiled, host)
    for seed in RANDOM_SEEDS_32:
        _check_case(random_case(seed, np.float32), compiled, host)


def test_kernel_accumulates_into_owned_buffers(compiled, host):
    """x's cotangent buffer already holds the matmul's contribution when the region runs: the kernel adds into
    it in place (a flag bit, no temporary); a buffer the pass does not own (sum's broadcast view) is copied
    first."""
    x, w = make_args([(3, 3), (3, 3)], np.float64)
    for use, expected, copies in [(lambda x, w: gnp.sum(x @ w), np.ones((3, 3)) @ w.T, 0),
                                  (lambda x, w: gnp.sum(x), np.ones((3, 3)), 1)]:
        case = ("accumulate", lambda x, w, use=use: gnp.sum(gnp.sin(x) * w) + use(x, w), [x, w], None)
        before = dict(fusion.stats)
        grads, _ = run(case, launcher=host)
        np.testing.assert_allclose(grads[0], expected + np.cos(x) * w)
        assert fusion.stats["copies"] - before["copies"] == copies
        assert fusion.stats["accumulations"] == before["accumulations"]


def _nvrtc_from_wheel():
    """libnvrtc from the nvidia-cuda-nvrtc wheel (site-packages/nvidia/cu*/lib), which find_library misses."""
    import glob
    import site
    for base in site.getsitepackages():
        found = sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib", "libnvrtc.so.*[0-9]")))
        if found:
            return found[-1]
    return None


def test_nvrtc_compiles_every_kernel_as_cupy_would(compiled):
    """NVRTC (what CuPy compiles with) has no host headers: the generated sources must not need any."""
    path = os.environ.get("GPUAD_NVRTC") or ctypes.util.find_library("nvrtc") or _nvrtc_from_wheel()
    if path is None:
        pytest.skip("no libnvrtc here (the test extra installs nvidia-cuda-nvrtc; or set GPUAD_NVRTC to its path)")
    lib = ctypes.CDLL(path)
    text, count = cuda_batch(compiled.specs)
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), text.encode(), b"kernels.cu", 0, None, None) == 0
    options = (ctypes.c_char_p * 1)(b"--gpu-architecture=compute_90")
    if lib.nvrtcCompileProgram(prog, 1, options) != 0:
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        pytest.fail(f"NVRTC rejected the {count} kernels:\n{log.value.decode()[-4000:]}")


def test_templates_load_from_an_installed_package(tmp_path):
    """Installed, the templates are package data of gpuad.kernels; from the source tree, ROOT/kernels."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "gpuad", site / "gpuad")
    shutil.copytree(ROOT / "kernels", site / "gpuad" / "kernels")
    script = textwrap.dedent("""
        import gpuad, gpuad.kernels
        from gpuad import fusion
        from pathlib import Path
        for name in ("prelude.h", "elementwise_bwd.cu", "elementwise_bwd.cpp"):
            assert fusion.load_template(name) == (Path(gpuad.kernels.__file__).parent / name).read_text()
        print(Path(gpuad.kernels.__file__).parent)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(site / "gpuad" / "kernels")
    assert fusion.load_template("prelude.h") == (ROOT / "kernels" / "prelude.h").read_text()


# ---- on the GPU -------------------------------------------------------------------------------------------------

@pytest.fixture
def cp():
    import cupy
    return cupy


def _gpu_check(case_gpu, case_cpu, cp):
    grads_gpu, _ = run(case_gpu)
    grads_cpu, _ = run(case_cpu)
    for g in grads_gpu:
        assert isinstance(g, cp.ndarray)
    assert_grads_close([cp.asnumpy(g) for g in grads_gpu], grads_cpu, case_cpu[2][0].dtype, case_cpu[0])


@pytest.mark.gpu
def test_gpu_grad_returns_cupy_arrays(cp):
    x, w = make_args([(1000,), (1000,)], np.float32)
    gx, gw = gpuad.grad(bench, argnums=(0, 1))(cp.asarray(x), cp.asarray(w))
    assert isinstance(gx, cp.ndarray) and isinstance(gw, cp.ndarray) and gx.dtype == cp.float32
    ex, ew = gpuad.grad(bench, argnums=(0, 1))(x, w)
    np.testing.assert_allclose(cp.asnumpy(gx), ex, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cp.asnumpy(gw), ew, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_gpu_row_kernels_match_numpy(prim, cp):
    for dtype in (np.float64, np.float32):
        for gpu, cpu in zip(row_cases(prim, dtype, cp), row_cases(prim, dtype)):
            _gpu_check(gpu, cpu, cp)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(set(PROGRAMS) - GPU_SKIP))
def test_gpu_programs_match_numpy(name, cp):
    _gpu_check(program_case(name, cp), program_case(name), cp)


@pytest.mark.gpu
def test_gpu_random_regions_match_numpy(cp):
    for seed in RANDOM_SEEDS:
        _gpu_check(random_case(seed, np.float64, cp), random_case(seed, np.float64), cp)
    for seed in RANDOM_SEEDS_32:
        _gpu_check(random_case(seed, np.float32, cp), random_case(seed, np.float32), cp)


@pytest.mark.gpu
def test_gpu_launches_one_kernel_per_region_and_one_reduction_per_broadcast(cp):
    x, w = (cp.asarray(a) for a in make_args([(64, 5), (64, 5)], np.float32))
    grad = gpuad.grad(bench, argnums=(0, 1))
    grad(x, w)
    before = dict(fusion.stats)
    grad(x, w)
    assert (fusion.stats["kernels"] - before["kernels"], fusion.stats["reductions"] - before["reductions"]) == (1, 0)
    before = dict(fusion.stats)
    grad(x, w[0])  # w (5,): the region reduces the cotangents of w and of exp(-w); [negative, exp] is a region
    assert (fusion.stats["kernels"] - before["kernels"], fusion.stats["reductions"] - before["reductions"]) == (2, 2)


@pytest.mark.gpu
def test_gpu_second_order_through_a_region(cp):
    x, w = make_args([(6,), (6,)], np.float64)

    def hvp(x, w):
        return gpuad.grad(lambda x: gnp.vdot(gpuad.grad(bench)(x, w), w))(x)
    np.testing.assert_allclose(cp.asnumpy(hvp(cp.asarray(x), cp.asarray(w))), hvp(x, w), rtol=1e-10)


@pytest.mark.gpu
def test_gpu_kernels_are_cached_and_printable(cp):
    x, w = (cp.asarray(a) for a in make_args([(8, 4), (4,)], np.float32))
    with gpuad.Tape(persistent=True) as tape:
        X, W = tape.watch(x), tape.watch(w)
        y = bench(X, W)
    tape.gradient(y, [X, W])
    compiled = len(fusion.CUDA.kernels)
    tape.gradient(y, [X, W])
    assert len(fusion.CUDA.kernels) == compiled
    assert tape.kernels().count("__global__") == 2
