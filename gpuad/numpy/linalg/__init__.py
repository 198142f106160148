"""``gpuad.numpy.linalg``: numpy.linalg, differentiable."""
