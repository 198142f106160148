"""The launchers: what runs a generated kernel (a ``program.KernelSpec``) on arrays, one interface, two devices.

A launcher has ``runs_on`` (the name of the array module whose arrays it runs on: "cupy" or "numpy"),
``ready(spec)`` (its kernel is compiled), ``prepare(specs)`` (compile every spec not yet compiled, all of them in
ONE compiler run: the backward pass hands it the kernels it predicts for the rest of the pass, so a pass compiles
once), ``launch(spec, kinds, values)``, which runs the kernel over ``values[0]`` elements with the argument list
``layout``/``run`` build (``kinds`` from ``render_cpp.kernel_param_kinds``: "ptr" an array, "i64"/"u32"/"f32"/
"f64" a scalar of that C type), and the counters ``compiles`` (compiler runs) and ``compile_seconds``.

* ``CudaLauncher``: the CUDA build, compiled by CuPy (NVRTC) as one ``cupy.RawModule`` per ``prepare`` (the
  kernels' sources concatenated: their names are unique and each lives in its own namespace), whose binary CuPy
  caches on disk (keyed by the whole module's text), launched as a grid-stride kernel. ``CUDA`` is the
  process's one instance, the default for CuPy arrays.
* ``HostLauncher``: the CPU build of the very same generated text, compiled by the host C++ compiler into one
  shared library per ``prepare`` and called through ctypes on NumPy arrays. Nothing uses it unless asked:
  ``gpuad.Tape(launcher=HostLauncher())`` runs that tape's NumPy regions through the whole kernel path (layouts,
  strides, in-place accumulation, broadcast reductions, batched compiles); the tests check the generated code
  against the Python rendering this way, without a GPU.

``default_launcher(module)`` is the choice when the caller passes none: CUDA for CuPy arrays, None for NumPy
(the Python rendering of the same program runs instead).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy

from .render_cpp import kernel_source


def unique(specs):
    """The specs with distinct kernel names, in order."""
    seen, out = set(), []
    for spec in specs:
        if spec.name not in seen:
            seen.add(spec.name)
            out.append(spec)
    return out


def module_source(specs, target="cuda") -> str:
    """One translation unit with the ``target`` build of every distinct spec (the prelude is include-guarded)."""
    return "\n".join(kernel_source(spec, target) for spec in unique(specs))


# What CuPy 14 adds itself for a RawModule (-std=c++17, --device-as-default-execution-space, -ftz=true, the
# architecture) needs nothing from us; these are the options gpuad passes.
NVRTC_OPTIONS = ()


class CudaLauncher:
    """Runs generated kernels on the GPU: each ``prepare`` compiles the kernels not yet compiled as ONE
    ``cupy.RawModule`` (one NVRTC run, cached by CuPy on disk); kernels are fetched from it by name."""

    runs_on = "cupy"
    _SCALARS = {"i64": numpy.int64, "u32": numpy.uint32, "f32": numpy.float32, "f64": numpy.float64}
    BLOCK = 256

    def __init__(self):
        self.kernels: dict[str, object] = {}
        self.compiles = 0
        self.compile_seconds = 0.0
        self._max_blocks = None
        self._converters: dict[str, tuple] = {}

    def ready(self, spec) -> bool:
        return spec.name in self.kernels

    def prepare(self, specs):
        """Compile every spec not compiled yet, all in one module (one NVRTC run, or a CuPy disk-cache hit)."""
        missing = [s for s in unique(specs) if s.name not in self.kernels]
        if not missing:
            return
        import cupy
        start = time.perf_counter()
        module = cupy.RawModule(code=module_source(missing, "cuda"), options=NVRTC_OPTIONS)
        found = {spec.name: module.get_function(spec.name) for spec in missing}  # the first compiles
        self.compile_seconds += time.perf_counter() - start
        self.compiles += 1
        self.kernels.update(found)

    def _blocks(self):
        import cupy
        try:
            sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
        except Exception:
            sms = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["multiProcessorCount"]
        self._max_blocks = 32 * int(sms)  # enough blocks of the grid-stride loop to fill every SM
        return self._max_blocks

    def launch(self, spec, kinds, values):
        name = spec.name
        kernel = self.kernels.get(name)
        if kernel is None:
            self.prepare([spec])
            kernel = self.kernels[name]
        convert = self._converters.get(name)
        if convert is None:
            convert = self._converters[name] = tuple(None if k == "ptr" else self._SCALARS[k] for k in kinds)
        args = tuple(v if c is None else c(v) for c, v in zip(convert, values))
        n = values[0]
        blocks = (n + self.BLOCK - 1) // self.BLOCK
        cap = self._max_blocks or self._blocks()
        kernel((blocks if blocks < cap else cap or 1,), (self.BLOCK,), args)


CUDA = CudaLauncher()


def default_launcher(module):
    """The launcher for ``module``'s arrays when the caller chose none: CUDA for CuPy, None for NumPy."""
    return None if module is numpy else CUDA


_C_ARGS = {"i64": ctypes.c_longlong, "u32": ctypes.c_uint32, "f32": ctypes.c_float, "f64": ctypes.c_double}


def compiler() -> str | None:
    """The host C++ compiler: $CXX, else g++, else clang++ (None when there is none)."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


def build(specs, folder=None) -> ctypes.CDLL:
    """One shared library holding the CPU build of every spec, from one compiler run."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("building the CPU kernels needs a C++ compiler (g++ or clang++), or set $CXX")
    text = module_source(specs, "cpu")
    folder = Path(folder or tempfile.mkdtemp(prefix="gpuad-host-"))
    stem = folder / f"kernels_{hashlib.sha1(text.encode()).hexdigest()[:16]}"
    library = stem.with_suffix(".so")
    if not library.exists():
        stem.with_suffix(".cpp").write_text(text)
        result = subprocess.run([cxx, "-std=c++17", "-O1", "-shared", "-fPIC", str(stem.with_suffix(".cpp")),
                                 "-o", str(library)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"the C++ compiler rejected the generated kernels ({stem}.cpp):\n"
                               f"{result.stderr[-4000:]}")
    return ctypes.CDLL(str(library))


class HostLauncher:
    """Runs generated kernels on the CPU: each ``prepare`` builds the kernels not built yet into one shared
    library (one compiler run); ``preload`` is ``prepare``."""

    runs_on = "numpy"

    def __init__(self, folder=None):
        self.folder = folder
        self.libraries: list[ctypes.CDLL] = []
        self.functions: dict[str, object] = {}
        self.compiled_alone: list[str] = []  # kernels a launch had to compile (no prepare had them)
        self.launched: list[str] = []
        self.compiles = 0
        self.compile_seconds = 0.0
        self._converters: dict[str, tuple] = {}

    def ready(self, spec) -> bool:
        return spec.name in self.functions

    def prepare(self, specs):
        missing = [s for s in unique(specs) if s.name not in self.functions]
        if not missing:
            return
        start = time.perf_counter()
        library = build(missing, self.folder)
        self.compile_seconds += time.perf_counter() - start
        self.compiles += 1
        self.libraries.append(library)
        for spec in missing:
            fn = getattr(library, spec.name)
            fn.restype = None
            self.functions[spec.name] = fn

    preload = prepare

    def function(self, spec):
        fn = self.functions.get(spec.name)
        if fn is None:
            self.compiled_alone.append(spec.name)
            self.prepare([spec])
            fn = self.functions[spec.name]
        return fn

    def launch(self, spec, kinds, values):
        name = spec.name
        convert = self._converters.get(name)
        if convert is None:
            convert = self._converters[name] = tuple(None if k == "ptr" else _C_ARGS[k] for k in kinds)
        args = [ctypes.c_void_p(v.ctypes.data) if c is None else c(v) for c, v in zip(convert, values)]
        self.function(spec)(*args)
        self.launched.append(name)
