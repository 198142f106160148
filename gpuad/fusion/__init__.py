"""Fused elementwise regions of the backward pass, in their own package: ``regions`` groups elementwise tape
entries into regions while a tape records and hands them to its backward pass; ``program`` composes a region's
rows into one adjoint program; ``render_cpp`` and ``render_python`` print that program as a CUDA/CPU kernel and
as Python over NumPy; ``layout`` plans a kernel launch over the arrays' layouts; ``launchers`` runs kernels
(CUDA through CuPy, or the CPU build through ctypes); ``run`` evaluates one region and holds ``accumulate``, the
backward pass's one accumulation rule. The tape imports this package; this package never imports the tape.
"""
from .launchers import CUDA, CudaLauncher, HostLauncher, compiler, default_launcher
from .layout import layout, plan, reduction_layout
from .program import KernelSpec, Program, Region, program
from .regions import MAX_REGION, RegionBuilder, rule_inputs
from .render_cpp import C_TYPES, KERNEL_DTYPES, kernel_body, kernel_param_kinds, kernel_source, load_template
from .render_python import python_function, python_source
from .run import accumulate, run_region, spec_of, stats

__all__ = ["CUDA", "CudaLauncher", "HostLauncher", "compiler", "default_launcher", "layout", "plan",
           "reduction_layout", "KernelSpec", "Program", "Region", "program", "MAX_REGION", "RegionBuilder",
           "rule_inputs", "C_TYPES", "KERNEL_DTYPES", "kernel_body", "kernel_param_kinds", "kernel_source",
           "load_template", "python_function", "python_source", "accumulate", "run_region", "spec_of", "stats"]
