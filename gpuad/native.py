"""The CPU build of the generated kernels: compiled by the host C++ compiler, loaded with ctypes, run on NumPy.

``codegen.kernel_source(spec, "cpu")`` wraps the very text of a GPU kernel (its per-element and per-index
functions) in a plain loop instead of a grid-stride loop. ``HostKernels`` compiles such sources into shared
libraries, many kernels per compiler run, and launches them with the argument list the CUDA launcher gets, so
that with ``gpuad.fusion.host_kernels = HostKernels()`` the whole kernel path of the backward pass (layouts,
strides, in-place accumulation, broadcast reductions) runs on the CPU. The tests use it to check the generated
code against the NumPy rendering without a GPU.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import codegen

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
            sources.append(codegen.kernel_source(spec, "cpu"))
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


class HostKernels:
    """Runs generated kernels on the CPU: from libraries built ahead (``preload``), else compiled one by one."""

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
