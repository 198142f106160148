"""On a GPU: the real CuPy behaves as tests/emulated_cupy.py says it does (the rules the emulated tier enforces
without a GPU), and gpuad's results there are NumPy's. Skipped, with the reason shown, where there is no GPU."""
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

pytestmark = pytest.mark.gpu

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - the test extra installs it
    BF16 = None


@pytest.fixture
def cp():
    import cupy
    return cupy


def _long_with_nan():
    x = np.linspace(0.0, 1.0, 400)
    x[[3, 50]] = np.nan
    return x


@pytest.mark.skipif(BF16 is None, reason="ml_dtypes is not installed")
def test_gpu_cupy_has_the_emulated_rules(cp):
    bf = cp.asarray(np.array([1.5, -2.0, np.nan, np.inf], BF16))
    assert cp.where(bf > 0, bf, bf).dtype == np.float32
    with pytest.raises(TypeError):
        cp.clip(cp.asarray([1 + 1j]), 0.0, 1.0)
    np.testing.assert_array_equal(cp.asnumpy(cp.nan_to_num(bf)).astype(float), [1.5, -2.0, 0.0, 0.0])
    with pytest.raises(NotImplementedError):
        cp.sort(bf)
    with pytest.raises(ValueError):
        cp.quantile(cp.asarray([1.0, 2.0]), 0.5, method="hazen")
    assert float(cp.quantile(cp.asarray([1.0, np.nan, 3.0]), 0.25)) == 2.0
    with pytest.raises(ValueError):
        cp.linalg.solve(cp.asarray(np.eye(3) * np.ones((2, 1, 1))), cp.ones((3, 2)))
    x = cp.asarray(_long_with_nan())
    assert cp.isnan(cp.take_along_axis(x, cp.argpartition(x, 5), axis=0)[:6]).any()


@pytest.mark.skipif(BF16 is None, reason="ml_dtypes is not installed")
def test_gpu_gpuad_results_are_numpys(cp):
    x = _long_with_nan()
    for kth in (3, 10):
        got = cp.asnumpy(gnp.partition(gpuad.tensor(cp.asarray(x)), kth).data)
        assert got[kth] == np.partition(x, kth)[kth]
    b = np.sin(np.arange(9.0)).astype(BF16)
    b[2] = np.nan
    assert np.isnan(cp.asnumpy(gnp.sort(cp.asarray(b)))[-1].astype(float))
    w = gnp.where(cp.asarray(b) > 0, cp.asarray(b), 0)
    assert w.dtype == BF16
    z = np.array([2 + 1j, -1 - 3j, 0.2 + 0.5j])
    np.testing.assert_array_equal(cp.asnumpy(gnp.clip(cp.asarray(z), -0.5, 1.0 + 0.1j)), np.clip(z, -0.5, 1.0 + 0.1j))
    q = np.array([1.0, np.nan, 3.0, 4.0])
    np.testing.assert_array_equal(cp.asnumpy(gnp.quantile(cp.asarray(q), 0.25, method="hazen")),
                                  np.quantile(q, 0.25, method="hazen"))
