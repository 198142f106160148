"""gpuad: exact derivatives of NumPy-style array programs, on the GPU (CuPy) or the CPU (NumPy).

Reverse mode records an array-level tape and walks it backwards (``grad``, ``value_and_grad``, ``vjp``,
``Tape``); forward mode pushes dual numbers through the program with no tape (``jvp``); ``vmap`` maps a function
over a batch, and ``jacfwd``/``jacrev``/``jacobian``/``hessian``/``hvp`` build on them. Write the program with
``gpuad.numpy`` (or plain ``numpy`` functions applied to gpuad values).
"""
from .core import Tensor, no_grad, stop_gradient
from .tape import Tape, tensor
from .transforms import grad, jvp, value_and_grad, vjp
from .batching import vmap
from .jacobians import hessian, hvp, jacfwd, jacobian, jacrev
from .custom import custom_jvp, custom_vjp
from .recompute import checkpoint, checkpoint_policies, remat
from . import custom_batching  # noqa: F401  (attaches vmap rules to the user-code primitives)
from . import numpy, testing  # noqa: F401  (numpy here is gpuad.numpy)
from . import nn  # noqa: F401

__all__ = ["Tensor", "Tape", "grad", "value_and_grad", "vjp", "jvp", "vmap", "jacfwd", "jacrev", "jacobian",
           "hessian", "hvp", "tensor", "stop_gradient", "no_grad", "custom_vjp", "custom_jvp", "checkpoint",
           "checkpoint_policies", "remat", "numpy", "nn", "testing"]
__version__ = "0.1.0"
