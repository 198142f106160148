"""Every elementwise rule row, checked by its row alone: fwd and rev, to second order, over scalar, vector,
matrix and broadcast shapes, inside the row's domain; its forward value against NumPy's (also at infinities,
nans and signed zeros); its C++ rendering compiled by g++ and evaluated against NumPy, and compiled by nvcc.
Then the conventions at kinks, NumPy's aliases and parameterised spellings (round(x, decimals), nan_to_num(...)),
and the operators % and //."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import backend
from gpuad import expr, fusion
from gpuad.ops import elementwise as elementwise_rows
from gpuad.ops.elementwise import Elementwise
from gpuad.testing import check_grads, sample
from test_complex import COMPLEX_ROWS, of_arguments

ROWS = sorted((p for p in vars(elementwise_rows).values() if isinstance(p, Elementwise)), key=lambda p: p.name)

SHAPES = {
    1: [((),), ((3,),), ((3, 2),)],
    2: [((), ()), ((3,), (3,)), ((3, 2), (3, 2)), ((3, 2), (1, 2)), ((3, 2), ()), ((), (3, 2)), ((2, 1), (1, 3))],
    3: [((), (), ()), ((3, 2), (3, 2), (3, 2)), ((3, 2), (1, 2), ()), ((2, 1), (1, 3), (2, 3))],
}


def public_function(prim):
    return getattr(gnp, prim.name)


def make_case(prim, shapes, seed=0, dtype=np.float64, xp=np):
    """The row's public function of its differentiable arguments, and values for them inside its domain (on
    ``xp``'s arrays: the gradient tests run on the default backend, so GPUAD_BACKEND=cupy runs them on the GPU)."""
    rng = np.random.default_rng(seed)
    domains = prim.domain or (None,) * prim.arity
    values = [xp.asarray(sample(d, s, rng, dtype)) for d, s in zip(domains, shapes)]
    diff = [k for k in range(prim.arity) if k not in prim.nondiff]
    return of_arguments(public_function(prim), values, diff), [values[k] for k in diff]



@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_row_gradients(prim):
    for shapes in SHAPES[prim.arity]:
        f, args = make_case(prim, shapes, xp=backend.default_module())
        check_grads(f, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_row_matches_numpy_forward(prim):
    shapes = SHAPES[prim.arity][3 if prim.arity > 1 else 2]
    rng = np.random.default_rng(0)
    domains = prim.domain or (None,) * prim.arity
    values = [sample(d, s, rng) for d, s in zip(domains, shapes)]
    expected = getattr(np, prim.name)(*values)
    # The row's expression, evaluated on plain arrays and on traced ones, is NumPy's function.
    np.testing.assert_allclose(public_function(prim)(*values), expected, rtol=1e-13)
    f, args = make_case(prim, shapes)
    if args:
        np.testing.assert_allclose(gpuad.vjp(f, *args)[0], expected, rtol=1e-13)


@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
def test_row_float32_gradients_stay_float32(prim):
    f, args = make_case(prim, SHAPES[prim.arity][-1], dtype=np.float32, xp=backend.default_module())
    if not args:
        pytest.skip("no differentiable argument")
    grads = gpuad.grad(lambda *a: gnp.sum(f(*a)), argnums=tuple(range(len(args))))(*args)
    for g, a in zip(grads, args):
        assert g.dtype == np.float32 and g.shape == a.shape


def test_kink_conventions():
    assert gpuad.grad(gnp.abs)(0.0) == 0.0
    assert gpuad.grad(lambda x: gnp.maximum(x, x))(1.5) == 1.0  # both halves of the tie: 0.5 + 0.5
    assert gpuad.grad(lambda x: gnp.maximum(x, 1.5))(1.5) == 0.5
    assert gpuad.grad(lambda x: gnp.minimum(x, 1.5), )(1.5) == 0.5
    assert gpuad.grad(lambda x: gnp.fmax(x, x))(1.5) == 1.0
    assert gpuad.grad(lambda x: gnp.fmax(x, 1.5))(1.5) == 0.5
    assert gpuad.grad(lambda x: gnp.fmin(x, 1.5))(1.5) == 0.5
    assert gpuad.grad(lambda x: gnp.fmax(x, np.nan))(1.5) == 1.0  # fmax ignores the nan: x is the result
    assert gpuad.grad(lambda y: gnp.fmin(np.nan, y))(1.5) == 1.0
    assert gpuad.grad(lambda x: gnp.logaddexp(x, 0.25))(0.25) == 0.5  # equal arguments share evenly
    assert gpuad.grad(lambda x: gnp.logaddexp2(x, x))(-3.0) == 1.0
    assert gpuad.grad(gnp.sinc)(0.0) == 0.0
    assert gpuad.grad(gpuad.grad(gnp.sinc))(0.0) == pytest.approx(-np.pi ** 2 / 3, rel=1e-15)
    for x0 in (0.0, 1e-3, -0.0999, 0.1001):  # the series near 0 and the quotient beyond it agree
        check_grads(gnp.sinc, [np.array([x0])], order=3)
    for f in (gnp.floor, gnp.ceil, gnp.trunc, gnp.rint, gnp.fix, gnp.round, gnp.around, gnp.sign,
              lambda x: gnp.round(x, 2), lambda x: x // 0.3, lambda x: 0.3 // x):
        np.testing.assert_array_equal(gpuad.grad(lambda x: gnp.sum(f(x)))(np.array([-1.7, -0.5, 0.2, 2.5])), 0.0)
    # nan_to_num: derivative 1 where the input is finite, 0 where it replaced a nan or an inf
    x = np.array([1.5, np.nan, np.inf, -np.inf, -2.0])
    for kwargs in ({}, {"nan": 7.0, "posinf": 1e3, "neginf": -1e3}):
        np.testing.assert_array_equal(gpuad.grad(lambda x: gnp.sum(gnp.nan_to_num(x, **kwargs)))(x),
                                      [1.0, 0.0, 0.0, 0.0, 1.0])


def test_every_language_function_exists_in_gnp():
    """Rules run on traced values call the language's functions on gpuad.numpy: each must be there."""
    missing = [(name, py) for name, (py, _) in expr.FUNCTIONS.items() if not callable(getattr(gnp, py, None))]
    assert not missing, f"expr.FUNCTIONS entries with no gpuad.numpy function: {missing}"


# ---- NumPy's spellings: parameters, aliases, operators, special values --------------------------------------

X = np.array([-2.55, -1.5, -0.45, 0.0, 0.5, 1.25, 2.5, 123.456])


@pytest.mark.parametrize("name,call", [
    ("round", lambda m, x: m.round(x)),
    ("round_2", lambda m, x: m.round(x, 2)),
    ("round_neg1", lambda m, x: m.round(x, decimals=-1)),
    ("around_1", lambda m, x: m.around(x, 1)),
    ("fix", lambda m, x: m.fix(x)),
    ("mod", lambda m, x: m.mod(x, -0.7)),
    ("remainder", lambda m, x: m.remainder(0.7, x[x != 0])),
    ("operator_mod", lambda m, x: x % 0.7),
    ("operator_rmod", lambda m, x: 5.0 % x[x != 0]),
    ("operator_floordiv", lambda m, x: x // -0.7),
    ("fmod", lambda m, x: m.fmod(x, -0.7)),
    ("degrees", lambda m, x: m.degrees(x)),
    ("radians", lambda m, x: m.radians(x)),
    ("conj", lambda m, x: m.conj(x)),
    ("real", lambda m, x: m.real(x)),
    ("imag", lambda m, x: m.imag(x)),
    ("nan_to_num", lambda m, x: m.nan_to_num(x / np.array([1, 0, 1, 0, 1, 1, 0, 1]))),
    ("nan_to_num_args", lambda m, x: m.nan_to_num(x / np.array([1, 0, 1, 0, 1, 1, 0, 1]), nan=-9.0,
                                                 posinf=1e10, neginf=-1e10)),
])
def test_numpy_spellings(name, call):
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = call(np, X)
        value, grad = gpuad.value_and_grad(lambda x: gnp.sum(call(gnp, x)))(X)
        traced, _ = gpuad.vjp(lambda x: call(gnp, x), X)
    np.testing.assert_array_equal(traced, expected)
    assert value == pytest.approx(float(np.sum(expected)))
    assert grad.shape == X.shape


@pytest.mark.parametrize("row,args", [
    ("logaddexp", ([np.inf, -np.inf, np.inf, 1e3, -3.0, -np.inf], [np.inf, -np.inf, -np.inf, 999.0, -3.0, 1.0])),
    ("logaddexp2", ([np.inf, -np.inf, np.inf, 1e3, -3.0, -np.inf], [np.inf, -np.inf, -np.inf, 999.0, -3.0, 1.0])),
    ("fmax", ([np.nan, 1.0, np.nan, -np.inf], [2.0, np.nan, np.nan, 3.0])),
    ("fmin", ([np.nan, 1.0, np.nan, -np.inf], [2.0, np.nan, np.nan, 3.0])),
    ("sinc", ([0.0, 1.0, -2.5, 1e-300],)),
    ("nan_to_num", ([np.nan, np.inf, -np.inf, 1.0],)),
    ("remainder", ([5.0, -5.0, 5.0, -5.0, 0.0, 6.0], [3.0, 3.0, -3.0, -3.0, -2.0, 3.0])),
    ("fmod", ([5.0, -5.0, 5.0, -5.0, 0.0], [3.0, 3.0, -3.0, -3.0, -2.0])),
    ("floor_divide", ([5.0, -5.0, 5.0, -5.0, 0.0], [3.0, 3.0, -3.0, -3.0, -2.0])),
    ("hypot", ([3.0, 0.0, 1e30], [4.0, 0.0, 1e30])),
    ("arctan2", ([0.0, 1.0, -1.0], [-1.0, 0.0, -1.0])),
])
def test_rows_match_numpy_at_special_values(row, args):
    """The row's own forward expression (not NumPy's function) at infinities, nans, zeros and signs."""
    prim = next(p for p in ROWS if p.name == row)
    values = [np.array(a) for a in args]
    for dtype in (np.float64, np.float32):
        typed = [v.astype(dtype) for v in values]
        with np.errstate(all="raise"):  # the row itself must not warn where NumPy does not
            out = prim.impl(*typed)
        np.testing.assert_array_equal(out, getattr(np, row)(*typed))
        assert out.dtype == dtype


def test_logaddexp_is_stable_far_from_zero():
    g = gpuad.grad(lambda x, y: gnp.logaddexp(x, y), argnums=(0, 1))(1000.0, 1001.0)
    np.testing.assert_allclose(g, [1 / (1 + np.e), np.e / (1 + np.e)], rtol=1e-12)  # out's ulp at 1e3
    g = gpuad.grad(lambda x: gnp.logaddexp2(x, -1000.0))(-1001.0)
    np.testing.assert_allclose(g, 1 / 3, rtol=1e-12)


def test_integer_inputs_keep_numpy_semantics():
    i = np.array([7, -7, 2])
    np.testing.assert_array_equal(gnp.reciprocal(i), np.reciprocal(i))
    np.testing.assert_array_equal(gnp.floor_divide(i, 2), np.floor_divide(i, 2))
    np.testing.assert_array_equal(gnp.remainder(i, -3), np.remainder(i, -3))
    assert gnp.floor_divide(i, 2).dtype == np.floor_divide(i, 2).dtype


# ---- the C++ rendering of every row: compiled by g++ and checked against NumPy, compiled by nvcc -------------

def _complex_expressions(prim):
    """(tag, expression, Wirtinger (k, half) or None) of a complex-capable row: forward, partials, pairs."""
    out = [("forward", prim.forward, None)] + [(f"d{k}", p, None) for k, p in enumerate(prim.partials) if p]
    for k, pair in enumerate(prim.wirtinger or ()):
        if pair:
            out += [(f"w{k}{'ab'[h]}", e, (k, h)) for h, e in enumerate(pair)]
    return out


def _cpp_complex_source(device=False):
    """The complex-capable rows' expressions (forward, partials, Wirtinger pairs) as C++ over complex values,
    T = C = gpuad_complex<R> (a boolean argument, where's condition, is R as the kernels load it), R = float,
    double, as the kernels compile them (kernels/prelude_complex.h)."""
    qualifier = "__device__ " if device else ""
    lines = [fusion.load_template("prelude_complex.h")]
    for prim in COMPLEX_ROWS:
        domains = prim.domain or (None,) * prim.arity
        kinds = ["R" if d == "bool" else "C" for d in domains] + ["C"] * (3 - prim.arity)
        params = ", ".join(f"{'R' if k == 'R' else 'gpuad_complex<R>'} {v}" for k, v in zip(kinds, "xyz"))
        for tag, e, _ in _complex_expressions(prim):
            fn = f"c_{prim.name}_{tag}"
            lines.append(f"template <typename R> {qualifier}gpuad_complex<R> {fn}({params}, gpuad_complex<R> out) "
                         f"{{ typedef gpuad_complex<R> C; typedef C T; return (T)({e.cuda()}); }}")
            for r, c in (("float", "gpuad_c64"), ("double", "gpuad_c128")):
                if device:
                    types = ", ".join(r if k == "R" else c for k in kinds)
                    lines.append(f"template {qualifier}{c} {fn}<{r}>({types}, {c});")
                else:
                    lines.append(
                        f'extern "C" void {fn}_{r}(const {c} *x, const {c} *y, const {c} *z, const {c} *out, '
                        f"{c} *res, long n) {{ for (long i = 0; i < n; ++i) res[i] = {fn}<{r}>("
                        + ", ".join(f"{v}[i].real()" if k == "R" else f"{v}[i]" for v, k in zip("xyz", kinds))
                        + ", out[i]); }")
    return "\n".join(lines) + "\n"


def _cpp_source(device=False):
    """Each row's forward and partial expressions as C++ functions of elementwise arrays, T = R = float, double
    (after the kernels' prelude, which has the functions whose real and complex forms differ)."""
    qualifier = "__device__ " if device else ""
    lines = [fusion.load_template("prelude.h")]
    for prim in ROWS:
        for tag, e in [("forward", prim.forward)] + [(f"d{k}", p) for k, p in enumerate(prim.partials) if p]:
            fn = f"{prim.name}_{tag}"
            lines.append(f"template <typename T> {qualifier}T {fn}(T x, T y, T z, T out) {{ typedef T R; "
                         f"return (T)({e.cuda()}); }}")
            for t in ("float", "double"):
                if device:
                    lines.append(f"template {qualifier}{t} {fn}<{t}>({t}, {t}, {t}, {t});")
                else:
                    lines.append(
                        f'extern "C" void {fn}_{t}(const {t} *x, const {t} *y, const {t} *z, const {t} *out, '
                        f"{t} *res, long n) {{ for (long i = 0; i < n; ++i) "
                        f"res[i] = {fn}(x[i], y[i], z[i], out[i]); }}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def cpp_rows(tmp_path_factory):
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler here")
    folder = tmp_path_factory.mktemp("cpp")
    (folder / "rows.cpp").write_text(_cpp_source() + _cpp_complex_source())
    result = subprocess.run([compiler, "-std=c++17", "-O1", "-shared", "-fPIC", str(folder / "rows.cpp"), "-o",
                             str(folder / "rows.so")], capture_output=True, text=True)
    assert result.returncode == 0, f"the rows' C++ does not compile with {compiler}:\n{result.stderr}"
    return ctypes.CDLL(str(folder / "rows.so"))


@pytest.mark.parametrize("prim", ROWS, ids=lambda p: p.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["double", "float"])
def test_row_cpp_matches_numpy(prim, dtype, cpp_rows):
    rng = np.random.default_rng(3)
    domains = prim.domain or (None,) * prim.arity
    values = [sample(d, (64,), rng, dtype).astype(dtype) for d in domains]
    out = prim.impl(*values)
    padded = values + [np.zeros(64, dtype)] * (3 - prim.arity) + [np.asarray(out, dtype)]
    ctype = ctypes.c_double if dtype == np.float64 else ctypes.c_float
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    for k, e in [(-1, prim.forward)] + [(k, p) for k, p in enumerate(prim.partials) if p]:
        res = np.empty(64, dtype)
        fn = getattr(cpp_rows, f"{prim.name}_{'forward' if k < 0 else f'd{k}'}_{ctype.__name__[2:]}")
        fn(*[a.ctypes.data_as(ctypes.POINTER(ctype)) for a in padded + [res]], ctypes.c_long(64))
        expected = out if k < 0 else np.broadcast_to(prim.function(k, np)(*prim.save(values, out)), (64,))
        np.testing.assert_allclose(res, expected, err_msg=f"C++ of {e.source!r}", **tol)


@pytest.mark.parametrize("prim", COMPLEX_ROWS, ids=lambda p: p.name)
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["complex128", "complex64"])
def test_complex_row_cpp_matches_numpy(prim, dtype, cpp_rows):
    """The function table on complex values: each complex-capable row's forward, partials and Wirtinger pair
    rendered as C++ (std::complex, kernels/prelude_complex.h) against the same expression on NumPy."""
    from test_complex import complex_sample
    rng = np.random.default_rng(5)
    domains = prim.domain or (None,) * prim.arity
    values = [complex_sample(d, (64,), rng) for d in domains]
    values = [v if v.dtype == bool else v.astype(dtype) for v in values]
    out = np.asarray(prim.impl(*values))
    padded = ([v.astype(dtype) for v in values] + [np.zeros(64, dtype)] * (3 - prim.arity)
              + [np.broadcast_to(out, (64,)).astype(dtype)])
    tol = dict(rtol=1e-11, atol=1e-12) if dtype == np.complex128 else dict(rtol=1e-4, atol=1e-5)
    real = "double" if dtype == np.complex128 else "float"
    for tag, e, half in _complex_expressions(prim):
        res = np.empty(64, dtype)
        getattr(cpp_rows, f"c_{prim.name}_{tag}_{real}")(*[ctypes.c_void_p(a.ctypes.data) for a in padded + [res]],
                                                        ctypes.c_long(64))
        if tag == "forward":
            expected = out
        else:
            k = int(tag[1])
            expected = prim.function(k, np, None if half is None else half[1])(*prim.save(values, out))
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(res, np.broadcast_to(np.asarray(expected, dtype), (64,)),
                                       err_msg=f"C++ of {e.source!r} ({prim.name} {tag})", **tol)


def test_rows_compile_with_nvcc(tmp_path):
    """The rows' C++, real and (with CuPy's headers, as CuPy's RawModule finds them) complex, in one nvcc run."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no nvcc here")
    from test_kernels import cupy_include_options
    include = cupy_include_options()
    (tmp_path / "rows.cu").write_text(_cpp_source(device=True)
                                      + (_cpp_complex_source(device=True) if include is not None else ""))
    result = subprocess.run([nvcc, "-std=c++17", *(include or ()), "-c", str(tmp_path / "rows.cu"), "-o",
                             str(tmp_path / "rows.o")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-6000:]
