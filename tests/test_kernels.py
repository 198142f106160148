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
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import fusion
from gpuad.core import bind
from gpuad.testing import sample
from test_complex import COMPLEX_ROWS, complex_sample, of_arguments
from test_fusion import (COMPILE_CASES, PROGRAMS, ROWS, RecordingLauncher, assert_grads_close, bench, make_args,
                         random_args, random_program, tape_gradient)

ROOT = Path(__file__).resolve().parent.parent
RANDOM_SEEDS = range(24)
RANDOM_SEEDS_32 = range(100, 106)
GPU_SKIP = {"integer_and_bool_constants"}  # builds NumPy constants: not for CuPy arrays
# The CPU-only checks (nvcc, NVRTC and g++ builds of the generated kernels): CI runs them; the GPU check
# (benchmarks/gpu_check.sh) deselects them with -m "not cpu_build".
cpu_build = pytest.mark.cpu_build


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
            fn = of_arguments(lambda *args, prim=prim: bind(prim, args, {}), values, diff)
            cases.append((f"{prim.name}-{tag}-{np.dtype(dtype).name}", fn, [values[k] for k in diff], ct))
        else:
            w = xp.asarray(rng.uniform(-1, 1, (3, 4)), dtype=dtype)
            cases.append((f"{prim.name}-{tag}-{np.dtype(dtype).name}", lambda w, values=values: bind(prim, values, {}) * w, [w], ct))
    return cases


try:
    import ml_dtypes
    HALF_DTYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
except ImportError:
    HALF_DTYPES = (np.dtype(np.float16),)


def half_row_cases(dtype):
    """Each differentiable row alone in float16/bfloat16 (the kernels load the narrow type and compute in float)."""
    return [case for prim in ROWS if len(prim.nondiff) < prim.arity for case in row_cases(prim, dtype)]


COMPLEX_DTYPES = (np.dtype(np.complex128), np.dtype(np.complex64))
REAL_OF = {np.dtype(np.complex128): np.dtype(np.float64), np.dtype(np.complex64): np.dtype(np.float32)}


def complex_row_cases(prim, dtype, xp=np):
    """A row that NumPy defines on complex values, on complex arguments of ``dtype`` (complex64 or complex128):
    alone over full-shape arrays and, in complex128, for a row of more than one argument, with its first
    differentiable argument real (a real value in a complex region: its cotangent is the real part). The layouts
    (broadcast, strided, scalar operands) do not depend on the element type: the real rows cover them, and the
    complex programs of test_fusion's table (fewer complex kernels to compile: each costs nvcc about twice a
    real one). The output cotangent has the output's dtype: real for abs, real and imag, whose regions are real
    ones reading a complex input."""
    rng = np.random.default_rng(11)
    dtype = np.dtype(dtype)
    domains = prim.domain or (None,) * prim.arity
    diff = [k for k in range(prim.arity) if k not in prim.nondiff]
    shapes = [(3, 4)] * prim.arity
    variants = [("full", shapes, ())]
    if prim.arity > 1 and diff and dtype == np.complex128:
        variants.append(("mixed", shapes, (diff[0],)))
    cases = []
    for tag, shapes, real_args in variants:
        values = []
        for k, (d, shape) in enumerate(zip(domains, shapes)):
            if d == "bool":
                values.append(sample(d, shape, rng))
            elif k in real_args:
                values.append(sample(d, shape, rng, REAL_OF[dtype]).astype(REAL_OF[dtype]))
            else:
                values.append(complex_sample(d, shape, rng).astype(dtype))
        out_dtype = prim.impl(*values).dtype
        ct = rng.standard_normal((3, 4)) + (1j * rng.standard_normal((3, 4)) if out_dtype.kind == "c" else 0)
        values, ct = [xp.asarray(v) for v in values], xp.asarray(ct, dtype=out_dtype)
        name = f"{prim.name}-{tag}-{dtype.name}"
        if diff:
            fn = of_arguments(lambda *args, prim=prim: bind(prim, args, {}), values, diff)
            cases.append((name, fn, [values[k] for k in diff], ct))
        else:  # row(args) * w, the arguments watched too (zero cotangents), so the kernel computes the row
            w = xp.asarray(rng.uniform(-1, 1, (3, 4)) + 1j * rng.uniform(-1, 1, (3, 4)), dtype=dtype)
            cases.append((name, lambda *a: bind(prim, list(a[:-1]), {}) * a[-1], [*values, w], ct))
    return cases


def program_case(name, xp=np):
    fn, shapes, dtype = PROGRAMS[name]
    return name, fn, [xp.asarray(a) for a in make_args(shapes, dtype)], None


def random_case(seed, dtype, xp=np):
    return f"random-{seed}-{np.dtype(dtype).name}", random_program(seed), [xp.asarray(a) for a in
                                                                            random_args(seed, dtype)], None


RANDOM_COMPLEX_SEEDS = range(6)


def random_complex_case(seed, xp=np):
    """A random program over the complex-capable rows (test_fusion's), complex x and w, a real b."""
    x, w, b = make_args([(3, 4), (3, 4), (4,)], np.complex128, seed=seed + 2000)
    return (f"random-complex-{seed}", random_program(seed, COMPLEX_ROWS),
            [xp.asarray(a) for a in (x, w, b.real.copy())], None)


def all_cases():
    cases = []
    for prim in ROWS:
        for dtype in (np.float64, np.float32):
            cases += row_cases(prim, dtype)
    for dtype in HALF_DTYPES:
        cases += half_row_cases(dtype)
    for prim in COMPLEX_ROWS:
        for dtype in COMPLEX_DTYPES:
            cases += complex_row_cases(prim, dtype)
    cases += [program_case(name) for name in sorted(PROGRAMS)]
    cases += [random_case(s, np.float64) for s in RANDOM_SEEDS] + [random_case(s, np.float32) for s in RANDOM_SEEDS_32]
    cases += [random_complex_case(s) for s in RANDOM_COMPLEX_SEEDS]
    return cases


def run(case, fused=True, launcher=None):
    name, fn, args, ct = case
    with np.errstate(all="ignore"):
        return tape_gradient(fn, args, fused=fused, output_gradients=ct, launcher=launcher)


# ---- one compile of everything ----------------------------------------------------------------------------------

def cupy_include_options():
    """The include folders CuPy's RawModule adds to the NVRTC options of every module (``compile_with_cache``,
    through ``assemble_cupy_compiler_options``): its CCCL and its own headers, where the complex kernels'
    <cupy/complex.cuh> lives, and CUDA's; None where CuPy is not installed."""
    try:
        from cupy._core import core
    except Exception:  # noqa: BLE001 (not installed, or no CUDA libraries to load)
        return None
    try:
        return tuple(o for o in core.assemble_cupy_compiler_options(("-std=c++17",)) if o.startswith("-I"))
    except Exception:  # noqa: BLE001 (no libnvrtc to ask its version: the folders CuPy ships)
        return (*core._get_cccl_include_options(), f"-I{core._get_header_dir_path()}")


def is_complex(spec):
    """The kernel computes with complex values (it needs the complex header)."""
    return fusion.render_cpp.uses_complex(spec.region) or any(c in ("gpuad_c64", "gpuad_c128") for c, _ in spec.layouts)


def buildable(specs):
    """The specs a CUDA build here can compile: all of them with CuPy's headers, else the real ones."""
    if cupy_include_options() is not None:
        return list(specs)
    return [s for s in specs if not is_complex(s)]


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
    text, count = cuda_batch(buildable(specs))
    (folder / "kernels.cu").write_text(text)
    result = subprocess.run([nvcc, "-arch=sm_90", "-cubin", *(cupy_include_options() or ()), "-o",
                             str(folder / "kernels.cubin"), str(folder / "kernels.cu")], capture_output=True, text=True)
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


@cpu_build
def test_nvcc_compiles_every_generated_kernel(compiled):
    if compiled.nvcc is None:
        pytest.skip("no nvcc here")
    assert compiled.nvcc.returncode == 0, f"nvcc -arch=sm_90 rejected {compiled.nvcc.source}:\n" \
                                          f"{compiled.nvcc.stderr[-6000:]}"
    names = {s.name for s in buildable(compiled.specs)}
    assert compiled.nvcc.count == len(names) > 2 * len(ROWS)
    if cupy_include_options() is not None:  # the complex rows' kernels among them (each row, both dtypes: below)
        assert len({s.name for s in compiled.specs if is_complex(s)}) >= 2 * len(COMPLEX_ROWS) > 60


@cpu_build
def test_every_row_has_its_own_kernel(compiled):
    names = {s.name for s in compiled.specs}
    for prim in ROWS:
        if len(prim.nondiff) < prim.arity:
            for suffix in ("f64", "f32"):
                assert any(n.startswith(f"gpuad_{prim.name}_bwd_{suffix}_") for n in names), (prim.name, suffix)
    layouts = {kind for s in compiled.specs for _, kind in s.layouts}
    assert layouts == {"full", "scalar", "strided"}
    complex_specs = [s for s in compiled.specs if is_complex(s)]
    for prim in COMPLEX_ROWS:  # a complex region, or (abs, real, imag) a real one reading a complex input
        for precision in ("float", "double"):
            assert any(prim in [p for p, _ in s.region.nodes] and fusion.render_cpp.REAL_TYPES[s.region.dtype]
                       == precision for s in complex_specs), (prim.name, precision)
    assert {s.region.dtype for s in complex_specs} == {"complex64", "complex128", "float32", "float64"}


@cpu_build
def test_one_source_two_wrappers(compiled):
    spec = next(s for s in compiled.specs if s.name.startswith("gpuad_fused"))
    cuda, cpu = fusion.kernel_source(spec, "cuda"), fusion.kernel_source(spec, "cpu")
    body = fusion.kernel_body(spec)
    assert body in cuda and body in cpu
    for text in (cuda, cpu):  # thin wrappers
        text = text.replace(body, "")
        for prelude in ("prelude.h", "prelude_half.h", "prelude_complex.h"):
            text = text.replace(fusion.load_template(prelude), "")
        assert text.count("\n") < 25


def _check_case(case, compiled, host):
    launched = len(host.launched)
    grads, _ = run(case, launcher=host)
    dtype = case[2][0].dtype
    assert_grads_close(grads, compiled.reference[case[0]], dtype, f"{case[0]}: CPU kernel vs NumPy rendering")
    unfused, _ = run(case, fused=False)
    assert_grads_close(grads, unfused, dtype, f"{case[0]}: CPU kernel vs per-op rules")
    assert not host.compiled_alone, f"kernels missing from the batch: {host.compiled_alone}"
    return len(host.launched) - launched


@cpu_build
@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_row_kernels_match_numpy(prim, compiled, host):
    for dtype in (np.float64, np.float32):
        for case in row_cases(prim, dtype):
            assert _check_case(case, compiled, host) >= 1, f"{case[0]} launched no kernel"


@cpu_build
@pytest.mark.parametrize("prim", COMPLEX_ROWS, ids=lambda p: p.name)
def test_complex_row_kernels_match_numpy(prim, compiled, host):
    """Each complex-capable row's kernels (complex64, complex128; full, broadcast and mixed real/complex
    arguments), host build: the gradients match the NumPy rendering and the per-op rules, in the arguments'
    dtypes (a real argument's cotangent real)."""
    for dtype in COMPLEX_DTYPES:
        for case in complex_row_cases(prim, dtype):
            assert _check_case(case, compiled, host) >= 1, f"{case[0]} launched no kernel"
            grads, _ = run(case, launcher=host)
            assert [g.dtype for g in grads] == [a.dtype for a in case[2]], case[0]


@cpu_build
@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=lambda d: d.name)
def test_half_row_kernels_match_float64(dtype, compiled, host):
    """The CPU build of each row's half kernel: the gradient in the input's dtype, within the dtype's precision
    of the float64 gradient at the same (rounded) inputs."""
    rtol = 1e-2 if dtype == np.float16 else 5e-2
    for name, fn, args, ct in half_row_cases(dtype):
        launched = len(host.launched)
        grads, _ = run((name, fn, args, ct), launcher=host)
        assert len(host.launched) > launched, f"{name} launched no kernel"
        wide, _ = run((name, fn, [a.astype(np.float64) for a in args], ct.astype(np.float64)), fused=False)
        for g, w in zip(grads, wide):
            assert g.dtype == dtype, name
            scale = max(1.0, float(np.max(np.abs(w), initial=0.0)))
            np.testing.assert_allclose(g.astype(np.float64), w, rtol=rtol, atol=rtol * scale, err_msg=name)
    assert not host.compiled_alone, f"kernels missing from the batch: {host.compiled_alone}"


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_kernels_match_numpy(name, compiled, host):
    assert _check_case(program_case(name), compiled, host) >= 1


@cpu_build
def test_random_region_kernels_match_numpy(compiled, host):
    for seed in RANDOM_SEEDS:
        _check_case(random_case(seed, np.float64), compiled, host)
    for seed in RANDOM_SEEDS_32:
        _check_case(random_case(seed, np.float32), compiled, host)


@cpu_build
def test_random_complex_region_kernels_match_numpy(compiled, host):
    for seed in RANDOM_COMPLEX_SEEDS:
        _check_case(random_complex_case(seed), compiled, host)


@cpu_build
@pytest.mark.parametrize("name", ["broadcast_both", "used_by_a_reduction", "mlp"])
def test_host_launcher_compiles_once_per_backward_pass(name, compiled, tmp_path):
    """A fresh host launcher (nothing preloaded): the first backward pass of a multi-region program builds ONE
    library with every kernel it runs, the gradients match the NumPy rendering, and a second pass builds
    nothing."""
    if compiled.host is None:
        pytest.skip("no C++ compiler here")
    fn, shapes, dtype = COMPILE_CASES[name]
    args = make_args(shapes, dtype)
    expected, _ = tape_gradient(fn, args)
    host = fusion.HostLauncher(tmp_path)
    grads, tape = tape_gradient(fn, args, launcher=host)
    assert host.compiles == 1 and not host.compiled_alone
    assert len({s.name for s in tape.kernel_specs()}) == len(host.functions) >= 2
    assert_grads_close(grads, expected, np.dtype(dtype), name)
    tape_gradient(fn, args, launcher=host)
    assert host.compiles == 1 and host.compile_seconds > 0


@cpu_build
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


# What CuPy 14 passes NVRTC for a RawModule on an H100 (cupy/_core/raw.pyx, cupy/cuda/compiler.py): C++17, device
# code by default, flush denormals to zero, a cubin for the card (--pch too, which needs no source of ours).
CUPY_NVRTC_OPTIONS = ("-std=c++17", "--device-as-default-execution-space", "-ftz=true", "-arch=sm_90")


def _nvrtc_compile(lib, text, options):
    """(ok, log or cubin bytes) of NVRTC, through ctypes, compiling ``text``."""
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), text.encode(), b"kernels.cu", 0, None, None) == 0
    opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    if lib.nvrtcCompileProgram(prog, len(options), opts) != 0:
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        return False, log.value.decode()
    size = ctypes.c_size_t()
    lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
    cubin = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetCUBIN(prog, cubin)
    return True, cubin.raw


def _nvrtc():
    path = os.environ.get("GPUAD_NVRTC") or ctypes.util.find_library("nvrtc") or _nvrtc_from_wheel()
    if path is None:
        pytest.skip("no libnvrtc here (the test extra installs nvidia-cuda-nvrtc; or set GPUAD_NVRTC to its path)")
    return ctypes.CDLL(path)


@cpu_build
def test_nvrtc_compiles_every_kernel_as_cupy_would(compiled):
    """NVRTC (what CuPy compiles with) has no host headers: the generated sources must not need any. Every
    kernel of the CPU tests goes into ONE module, as ``CudaLauncher.prepare`` builds it (``module_source``),
    compiled with the options CuPy uses, and every kernel is in the cubin."""
    lib = _nvrtc()
    specs = fusion.launchers.unique(buildable(compiled.specs))
    ok, out = _nvrtc_compile(lib, fusion.launchers.module_source(specs, "cuda"),
                             CUPY_NVRTC_OPTIONS + fusion.launchers.NVRTC_OPTIONS + (cupy_include_options() or ()))
    assert ok, f"NVRTC rejected the {len(specs)} kernels:\n{out[-4000:]}"
    missing = [s.name for s in specs if s.name.encode() not in out]
    assert not missing and len(specs) > 2 * len(ROWS), missing[:5]


@cpu_build
def test_one_module_per_backward_pass_compiles_with_nvrtc():
    """The batch one backward pass of a multi-region program prepares (four regions of the MLP, broadcast
    operands among them) is one module NVRTC compiles, with each kernel in it."""
    lib = _nvrtc()
    recorder = RecordingLauncher()
    fn, shapes, dtype = COMPILE_CASES["mlp"]
    tape_gradient(fn, make_args(shapes, dtype), launcher=recorder)
    specs = [spec for spec, _, _ in recorder.calls]
    assert len(recorder.prepared) == 1 and len(specs) == 4
    ok, out = _nvrtc_compile(lib, fusion.launchers.module_source(specs, "cuda"), CUPY_NVRTC_OPTIONS)
    assert ok, out[-4000:]
    assert all(s.name.encode() in out for s in specs)


@cpu_build
def test_cupy_compiles_the_batch_with_its_own_nvrtc():
    """Where CuPy is installed (no GPU needed): its NVRTC binding compiles the module with CuPy's options, and
    ``cupy.RawModule`` takes ``code``/``options`` and has ``get_function`` (what ``CudaLauncher`` calls; it
    compiles on the first ``get_function``, which needs a GPU)."""
    cupy = pytest.importorskip("cupy")
    from cupy.cuda import nvrtc
    recorder = RecordingLauncher()
    fn, shapes, dtype = COMPILE_CASES["mlp"]
    tape_gradient(fn, make_args(shapes, dtype), launcher=recorder)
    specs = [spec for spec, _, _ in recorder.calls]
    prog = nvrtc.createProgram(fusion.launchers.module_source(specs, "cuda"), "kernels.cu", (), ())
    nvrtc.compileProgram(prog, CUPY_NVRTC_OPTIONS + fusion.launchers.NVRTC_OPTIONS)
    cubin = nvrtc.getCUBIN(prog)
    assert all(s.name.encode() in cubin for s in specs)
    # a complex program's module, with the include folders RawModule adds (CuPy's own assembly of its options)
    recorder = RecordingLauncher()
    fn, shapes, dtype = COMPILE_CASES["complex_nonholomorphic"]
    tape_gradient(fn, make_args(shapes, dtype), launcher=recorder)
    complex_specs = [spec for spec, _, _ in recorder.calls]
    options = cupy._core.core.assemble_cupy_compiler_options(CUPY_NVRTC_OPTIONS + fusion.launchers.NVRTC_OPTIONS)
    prog = nvrtc.createProgram(fusion.launchers.module_source(complex_specs, "cuda"), "kernels.cu", (), ())
    nvrtc.compileProgram(prog, options)
    cubin = nvrtc.getCUBIN(prog)
    assert len(complex_specs) >= 4 and all(s.name.encode() in cubin for s in complex_specs)
    module = cupy.RawModule(code=fusion.launchers.module_source(specs, "cuda"), options=fusion.launchers.NVRTC_OPTIONS)
    assert callable(module.get_function)
    assert "options" in cupy.RawModule.__doc__.splitlines()[0] and "name_expressions" in cupy.RawModule.__doc__


def test_cuda_launcher_compiles_one_module_per_prepare(monkeypatch):
    """``CudaLauncher`` against a stand-in ``cupy`` (records what it is asked): one ``RawModule(code=...,
    options=...)`` per ``prepare`` holding every missing kernel once, each fetched by name; kernels compiled
    before are not compiled again; a launch of a prepared kernel compiles nothing."""
    made = []

    class Kernel:
        def __init__(self, name):
            self.name, self.calls = name, []

        def __call__(self, grid, block, args):
            self.calls.append((grid, block, args))

    class RawModule:
        def __init__(self, code=None, *, options=(), **kwargs):
            self.code, self.options, self.kwargs, self.fetched = code, options, kwargs, []
            made.append(self)

        def get_function(self, name):
            assert f'extern "C" __global__ void {name}(' in self.code
            self.fetched.append(name)
            return Kernel(name)

    device = SimpleNamespace(attributes={"MultiProcessorCount": 132})
    fake = SimpleNamespace(RawModule=RawModule, cuda=SimpleNamespace(Device=lambda: device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    recorder = RecordingLauncher()
    fn, shapes, dtype = COMPILE_CASES["mlp"]
    tape_gradient(fn, make_args(shapes, dtype), launcher=recorder)
    specs = [spec for spec, _, _ in recorder.calls]
    launcher = fusion.CudaLauncher()
    launcher.prepare(specs + specs[:2])
    assert len(made) == 1 and launcher.compiles == 1 and made[0].options == fusion.launchers.NVRTC_OPTIONS
    assert made[0].fetched == [s.name for s in specs] and not made[0].kwargs
    assert made[0].code.count("#define GPUAD_PRELUDE_H") == len(specs) and all(launcher.ready(s) for s in specs)
    launcher.prepare(specs)
    assert len(made) == 1
    spec, kinds, _ = recorder.calls[0]
    values = [10**7] + [0] * (len(kinds) - 1)
    launcher.launch(spec, kinds, values)
    assert len(made) == 1 and launcher.kernels[spec.name].calls[0][:2] == ((132 * 32,), (256,))


@cpu_build
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

@pytest.fixture(scope="session")
def gpu_kernels():
    """Every kernel the GPU tests launch, compiled before them in ONE module (one NVRTC run on a fresh machine,
    a CuPy disk-cache hit after), planned from the same cases run on NumPy; a kernel the plan missed is
    compiled in its backward pass's own batch. The compile time goes to stderr and, when $GPUAD_COMPILE_LOG
    names a file, is appended there (benchmarks/gpu_check.sh reports it)."""
    specs = []
    for case in all_cases():
        specs += run(case)[1].kernel_specs()
    before, start = fusion.CUDA.compiles, time.perf_counter()
    fusion.CUDA.prepare(specs)
    seconds = time.perf_counter() - start
    count = len(fusion.launchers.unique(specs))
    line = (f"gpuad: {count} generated kernels of the GPU tests compiled in {fusion.CUDA.compiles - before} "
            f"module(s), {seconds:.2f} s (CuPy disk cache: {os.environ.get('CUPY_CACHE_DIR', '~/.cupy/kernel_cache')})")
    print("\n" + line, file=sys.__stderr__)
    if os.environ.get("GPUAD_COMPILE_LOG"):
        with open(os.environ["GPUAD_COMPILE_LOG"], "a") as fh:
            fh.write(line + "\n")
    return seconds


@pytest.fixture
def cp(gpu_kernels):
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
@pytest.mark.parametrize("prim", COMPLEX_ROWS, ids=lambda p: p.name)
def test_gpu_complex_row_kernels_match_numpy(prim, cp):
    """thrust::complex (CuPy's header, as NVRTC compiles it) against the NumPy rendering."""
    for dtype in COMPLEX_DTYPES:
        for gpu, cpu in zip(complex_row_cases(prim, dtype, cp), complex_row_cases(prim, dtype)):
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
def test_gpu_random_complex_regions_match_numpy(cp):
    for seed in RANDOM_COMPLEX_SEEDS:
        _gpu_check(random_complex_case(seed, cp), random_complex_case(seed), cp)


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


@pytest.mark.gpu
def test_gpu_one_compile_per_backward_pass(cp):
    """A fresh CUDA launcher: the first backward pass of the MLP (four regions) compiles one module holding
    exactly the kernels it runs; the second compiles nothing. The gradients match NumPy's."""
    fn, shapes, dtype = COMPILE_CASES["mlp"]
    args = make_args(shapes, dtype)
    launcher = fusion.CudaLauncher()
    grads, tape = tape_gradient(fn, [cp.asarray(a) for a in args], launcher=launcher)
    assert launcher.compiles == 1 and len(launcher.kernels) == len({s.name for s in tape.kernel_specs()}) == 4
    expected, _ = tape_gradient(fn, args)
    assert_grads_close([cp.asnumpy(g) for g in grads], expected, np.dtype(dtype), "mlp on the GPU")
    tape_gradient(fn, [cp.asarray(a) for a in args], launcher=launcher)
    assert launcher.compiles == 1
