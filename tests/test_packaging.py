"""The package as users install it: a plain (non-editable) wheel carries the CUDA kernel templates as
``gpuad.kernels``, and the subpackages pyproject lists are all the ones the source tree has."""
import pathlib
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_pyproject_lists_every_subpackage():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gpuad").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_wheel_ships_kernel_templates(tmp_path):
    try:  # the build backend the test environment has ("test" extra: setuptools with bdist_wheel)
        import setuptools.command.bdist_wheel  # noqa: F401
    except ImportError:
        pytest.importorskip("wheel", reason="no wheel builder offline (pip install -e '.[test]' brings one)")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("gpuad-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    templates = sorted(p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cu", ".cuh", ".cpp", ".h"))
    for name in ["__init__.py", *templates]:
        assert f"gpuad/kernels/{name}" in names, f"{name} is missing from the wheel"
    assert "gpuad/numpy/linalg/__init__.py" in names
