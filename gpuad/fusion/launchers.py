"""The launchers: what runs a generated kernel (a ``program.KernelSpec``) on arrays, one interface, two devices.

A launcher has ``runs_on`` (the name of the array module whose arrays it runs on: "cupy" or "numpy") and
``launch(spec, kinds, values)``, which runs the kernel over ``values[0]`` elements with the argument list
``layout``/``run`` build (``kinds`` from ``render_cpp.kernel_param_kinds``: "ptr" an array, "i64"/"u32"/"f32"/
"f64" a scalar of that C type).

* ``CudaLauncher``: the CUDA build, compiled by CuPy (NVRTC; once per process, and CuPy caches the binary on
  disk), launched as a grid-stride kernel. ``CUDA`` is the process's one instance, the default for CuPy arrays.
* ``HostLauncher``: the CPU build of the very same generated text, compiled by the host C++ compiler into shared
  libraries (many kernels per compiler run: ``preload``) and called through ctypes on NumPy arrays. Nothing
  uses it unless asked: ``gpuad.Tape(launcher=HostLauncher())`` runs that tape's NumPy regions through the
  whole kernel path (layouts, strides, in-place accumulation, broadcast reductions); the tests check the
  generated code against the Python rendering this way, without a GPU.

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
from pathlib import Path

import numpy

from .render_cpp import kernel_source


class CudaLauncher:
    """Runs generated kernels on the GPU, as CuPy ``RawKernel`` s (one per kernel name, compiled on first use)."""

    runs_on = "cupy"
    _SCALARS = {"i64": numpy.int64, "u32": numpy.uint32, "f32": numpy.float32, "f64": numpy.float64}
    BLOCK = 256

    def __init__(self):
        self.kernels: dict[str, object] = {}
        self._max_blocks = None

    def launch(self, spec, kinds, values):
        import cupy
        kernel = self.kernels.get(spec.name)
        if kernel is None:
            kernel = self.kernels[spec.name] = cupy.RawKernel(kernel_source(spec, "cuda"), spec.name)
        if self._max_blocks is None:  # enough blocks of the grid-stride loop to fill every SM
            try:
                sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
            except Exception:
                sms = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["multiProcessorCount"]
            self._max_blocks = 32 * int(sms)
        args = tuple(v if kind == "ptr" else self._SCALARS[kind](v) for kind, v in zip(kinds, values))
        n = values[0]
        grid = max(1, min((n + self.BLOCK - 1) // self.BLOCK, self._max_blocks))
        kernel((grid,), (self.BLOCK,), args)


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
    sources, seen = [], set()
    for spec in specs:
        if spec.name not in seen:
            seen.add(spec.name)
            sources.append(kernel_source(spec, "cpu"))
    text = "\n".join(sources)
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
    """Runs generated kernels on the CPU: from libraries built ahead (``preload``), else compiled one by one."""

    runs_on = "numpy"

    def __init__(self, folder=None):
        self.folder = folder
        self.libraries: list[ctypes.CDLL] = []
        self.functions: dict[str, object] = {}
        self.compiled_alone: list[str] = []  # kernels that missed the preloaded libraries
        self.launched: list[str] = []

    def preload(self, specs):
        self.libraries.append(build(specs, self.folder))

    def function(self, spec):
        fn = self.functions.get(spec.name)
        if fn is None:
            for library in self.libraries:
                fn = getattr(library, spec.name, None)
                if fn is not None:
                    break
            else:
                self.compiled_alone.append(spec.name)
                self.libraries.append(build([spec], self.folder))
                fn = getattr(self.libraries[-1], spec.name)
            fn.restype = None
            self.functions[spec.name] = fn
        return fn

    def launch(self, spec, kinds, values):
        args = [ctypes.c_void_p(v.ctypes.data) if kind == "ptr" else _C_ARGS[kind](v)
                for kind, v in zip(kinds, values)]
        self.function(spec)(*args)
        self.launched.append(spec.name)
