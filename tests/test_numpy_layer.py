"""The layout of the NumPy layer: Tensor's array behaviour comes from gpuad.numpy (core keeps the bare box), the
family modules import their siblings (never the half-loaded package), and the one axis normaliser."""
import ast
import pathlib

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.core import Tensor
from gpuad.numpy._dispatch import has_tensor, normalize_axes

NUMPY_LAYER = pathlib.Path(gnp.__file__).parent


def test_core_tensor_is_a_bare_box_and_gpuad_numpy_gives_it_array_behaviour():
    core_source = ast.parse((NUMPY_LAYER.parent / "core.py").read_text())
    tensor = next(n for n in core_source.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    defined = {n.name for n in tensor.body if isinstance(n, ast.FunctionDef)}
    assert defined <= {"__init__", "__init_subclass__", "data", "shape", "dtype", "ndim", "size", "__repr__"}
    for name in ("__add__", "__rsub__", "__getitem__", "__array_ufunc__", "__array_function__", "sum", "T", "at"):
        assert hasattr(Tensor, name), name


def test_tensor_hashes_by_identity_and_compares_by_value():
    a, b = Tensor(None, np.arange(3.0)), Tensor(None, np.arange(3.0))
    assert hash(a) != hash(b) and len({a, b}) == 2
    assert (a == b).all()


def test_subclasses_of_tensor_get_the_array_behaviour_and_count_as_tensors():
    class Boxed(Tensor):
        __slots__ = ()

    # (each interpreter boxes its values in its own subclass; arithmetic on them needs core's bind to see them)
    x = Boxed(None, np.arange(3.0))
    assert has_tensor([x]) and has_tensor([[1.0, x]])
    for name in ("__mul__", "__array_ufunc__", "sum", "at", "__hash__"):
        assert getattr(Boxed, name) is getattr(Tensor, name)


def test_family_modules_never_import_the_gpuad_numpy_package():
    for path in NUMPY_LAYER.rglob("*.py"):
        if path == NUMPY_LAYER / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module is None:
                names = {a.name for a in node.names}
                assert "numpy" not in names, f"{path.name} imports the half-loaded gpuad.numpy package"
                if path.parent == NUMPY_LAYER and node.level == 1:  # `from . import _sibling`
                    assert all(n.startswith("_") for n in names), path.name


def test_normalize_axes_reads_numpy_axis_arguments():
    assert normalize_axes(None, 3) == (0, 1, 2)
    assert normalize_axes(-1, 3) == (2,)
    assert normalize_axes(np.int64(1), 3) == (1,)
    assert normalize_axes((2, 0), 3) == (2, 0)
    assert normalize_axes((2, 0), 3, sort=True) == (0, 2)
    assert normalize_axes((0, -3), 3, allow_repeated=True) == (0, 0)
    with pytest.raises(np.exceptions.AxisError, match="axis1: axis 3 is out of bounds for array of dimension 2"):
        normalize_axes(3, 2, "axis1")
    with pytest.raises(ValueError, match="repeated axis in `source` argument"):
        normalize_axes((0, -2), 2, "source")
    with pytest.raises(ValueError, match="^repeated axis$"):
        normalize_axes((1, 1), 2)


def test_numpy_protocols_reach_gpuad_numpy_and_its_linalg():
    def f(x):
        return np.sum(np.sin(x)) + np.linalg.det(np.reshape(x, (2, 2)))

    x = np.array([1.0, 2.0, 3.0, 5.0])
    g = gpuad.grad(f)(x)
    expected = np.cos(x) + np.array([5.0, -3.0, -2.0, 1.0])
    np.testing.assert_allclose(g, expected)
