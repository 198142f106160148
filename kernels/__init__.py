"""CUDA kernel templates, shipped inside the installed package as ``gpuad.kernels``."""
