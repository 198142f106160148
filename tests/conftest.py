"""Shared test settings: GPU tests carry the ``gpu`` marker and are skipped, with the reason shown, without one."""
import pytest


def _gpu_reason():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return None
        return "CuPy sees no GPU"
    except Exception as e:  # no CuPy or no driver
        return f"no CuPy/GPU here ({type(e).__name__})"


def pytest_collection_modifyitems(config, items):
    reason = None
    for item in items:
        if "gpu" in item.keywords:
            reason = reason or _gpu_reason() or ""
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"GPU test: {reason}"))
