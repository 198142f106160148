"""Fused elementwise regions on the CPU: what the tape records and keeps, and that the fused backward pass (the
composed adjoint program, rendered to Python over NumPy) gives the per-op rules' gradients, for a table of
programs (broadcasts, views, constants, conditions, uses from outside a region, long chains, float32), for
random programs over every rule row (hypothesis), and to second order through the traced path."""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gpuad
import gpuad.nn
import gpuad.numpy as gnp
from gpuad import fusion
from gpuad.core import bind
from gpuad.fusion import MAX_REGION
from gpuad.ops import elementwise as elementwise_rows
from gpuad.ops.elementwise import Elementwise
from gpuad.tape import set_fusion
from gpuad.testing import check_grads

ROWS = sorted((p for p in vars(elementwise_rows).values() if isinstance(p, Elementwise)), key=lambda p: p.name)


def bench(x, w):
    """The GPU benchmark's function."""
    return gnp.sum(gnp.sin(x) * w + x * x * gnp.exp(-w) + gnp.tanh(x * w))


def chain(x, w):
    y = x
    for _ in range(40):
        y = gnp.sin(y) * w + y
    return gnp.sum(y)


# name -> (function, argument shapes, dtype)
PROGRAMS = {
    "issue_example": (lambda x, w: gnp.sum(gnp.sin(x) * w + x * x * gnp.exp(-w)), [(4, 5), (4, 5)], np.float64),
    "benchmark": (bench, [(4, 5), (4, 5)], np.float64),
    "benchmark_float32": (bench, [(4, 5), (4, 5)], np.float32),
    "broadcast_row": (bench, [(4, 5), (5,)], np.float64),
    "broadcast_column": (bench, [(4, 5), (4, 1)], np.float64),
    "broadcast_both": (bench, [(4, 1), (1, 5)], np.float32),
    "broadcast_3d": (bench, [(2, 3, 4), (3, 1)], np.float64),
    "scalar_weight": (bench, [(4, 5), ()], np.float64),
    "zero_dim": (bench, [(), ()], np.float64),
    "constants": (lambda x, w: gnp.sum((x * 2.5 - 1) / (w * w + 0.5) + 3 - x ** 2), [(6,), (6,)], np.float64),
    "where_clip_maximum": (lambda x, w: gnp.sum(gnp.where(x > 0, x * w, gnp.sin(w)) + gnp.clip(x, -0.5, 0.5) * w
                                                + gnp.maximum(x, x * 1.0) * w), [(3, 4), (3, 4)], np.float64),
    "used_by_a_reduction": (lambda x, w: (lambda a: gnp.sum(a) * gnp.sum(a * w + 1))(gnp.sin(x) * w),
                            [(3, 4), (3, 4)], np.float64),
    "softmax_like": (lambda x, w: (lambda e: gnp.sum(e / gnp.sum(e) * w))(gnp.exp(x - 1)), [(5,), (5,)],
                     np.float64),
    "transposed_input": (lambda x, w: gnp.sum(gnp.sin(x.T) * w + x.T), [(5, 4), (4, 5)], np.float64),
    "strided_views": (lambda x, w: gnp.sum(gnp.cos(x[:, ::2]) * w[::-1, 1::2]), [(4, 6), (4, 6)], np.float64),
    "integer_and_bool_constants": (lambda x, w: gnp.sum(x * np.arange(5) + gnp.where(np.arange(5) > 2, w, x)),
                                   [(5,), (5,)], np.float64),
    "mixed_float_dtypes": (lambda x, w: gnp.sum(gnp.sin(x) * w.astype(np.float32) + w), [(4,), (4,)], np.float64),
    "long_chain": (chain, [(3,), (3,)], np.float64),
    "matmul_between": (lambda x, w: gnp.sum(gnp.tanh(gnp.exp(x) @ w) * gnp.exp(x)[:3, :3]), [(3, 4), (4, 3)],
                       np.float64),
    # complex regions (issue 14): holomorphic rows, the non-holomorphic ones (abs, sign, real, imag, conj: their
    # Wirtinger pairs), real values feeding complex regions and complex values feeding real ones
    "complex_benchmark": (lambda z, w: gnp.sum(gnp.real(gnp.sin(z) * w + z * z * gnp.exp(-w) + gnp.tanh(z * w))),
                          [(4, 5), (4, 5)], np.complex128),
    "complex64_broadcast": (lambda z, w: gnp.sum(gnp.abs(gnp.sqrt(z) * gnp.conj(w) + gnp.log(z + 2.0)) ** 2),
                            [(4, 5), (5,)], np.complex64),
    "complex_nonholomorphic": (lambda z, w: gnp.sum(gnp.imag(gnp.sign(z) * w) + gnp.abs(z - w)
                                                    + gnp.real(gnp.conj(z) * z * 1j) + gnp.imag(gnp.conj(w) ** 2)),
                               [(3, 4), (3, 1)], np.complex128),
    "complex_from_real": (lambda x, w: gnp.sum(gnp.real(gnp.exp(1j * x) * w) + gnp.imag(gnp.exp(x * 0.5j + w) ** 2)
                                               + gnp.abs(x + w * 1j)), [(3, 4), (4,)], np.float64),
    "complex_from_real_float32": (lambda x, w: gnp.sum(gnp.abs(gnp.exp(x * 1j) * (w - 0.5j) + x) ** 2),
                                  [(6,), (6,)], np.float32),
    "complex_strided_views": (lambda z, w: gnp.sum(gnp.abs(gnp.exp(z.T) * w[::-1, 1::2] + gnp.conj(z.T)) ** 2),
                              [(3, 4), (4, 6)], np.complex128),
    "complex_where_maximum": (lambda z, w: gnp.sum(gnp.abs(gnp.where(gnp.real(z) > 0, z * w, gnp.cos(w))
                                                           + gnp.maximum(z, w) * w + gnp.clip(z, -0.5, 0.5)) ** 2),
                              [(3, 4), (3, 4)], np.complex128),
}


def make_args(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "c":
        return [np.asarray(rng.uniform(-1.5, 1.5, s) + 1j * rng.uniform(-1.5, 1.5, s), dtype=dtype) for s in shapes]
    return [np.asarray(rng.uniform(-1.5, 1.5, s), dtype=dtype) for s in shapes]


def tape_gradient(fn, args, fused=True, output_gradients=None, persistent=False, launcher=None):
    """(gradients, tape) of fn at args, recorded with fusion on or off (its regions run by ``launcher``)."""
    previous = set_fusion(fused)
    try:
        with gpuad.Tape(persistent=persistent, launcher=launcher) as tape:
            xs = [tape.watch(a) for a in args]
            y = fn(*xs)
        return tape.gradient(y, xs, output_gradients=output_gradients), tape
    finally:
        set_fusion(previous)


def assert_grads_close(actual, expected, dtype, what=""):
    rtol = 1e-9 if np.dtype(dtype) in (np.float64, np.complex128) else 2e-4
    for k, (a, e) in enumerate(zip(actual, expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape and a.dtype == e.dtype, f"{what} gradient {k}: {a.shape} {a.dtype} vs {e.shape} {e.dtype}"
        scale = max(1.0, float(np.max(np.abs(e), initial=0.0)))
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, err_msg=f"{what} gradient {k}")


# ---- the fused backward pass gives the per-op rules' gradients ------------------------------------------------

@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_fused_matches_per_op(name):
    fn, shapes, dtype = PROGRAMS[name]
    args = make_args(shapes, dtype)
    fused, tape = tape_gradient(fn, args)
    unfused, _ = tape_gradient(fn, args, fused=False)
    assert_grads_close(fused, unfused, dtype, name)
    for g, a in zip(fused, args):
        assert g.dtype == a.dtype


@pytest.mark.parametrize("name", ["issue_example", "broadcast_row", "scalar_weight", "zero_dim", "constants",
                                  "used_by_a_reduction", "softmax_like", "transposed_input"])
def test_second_order_through_fused_regions(name):
    """The traced backward pass recomputes region values with traced ops and runs the per-op rules."""
    fn, shapes, dtype = PROGRAMS[name]
    check_grads(fn, make_args(shapes, dtype, seed=1), order=2, modes=("rev",))


def test_hessian_through_a_region_matches_unfused():
    x, w = make_args([(4,), (4,)], np.float64)
    hvp = lambda f: gpuad.grad(lambda x: gnp.vdot(gpuad.grad(f)(x, w), w))(x)  # noqa: E731
    fused = hvp(bench)
    previous = set_fusion(False)
    try:
        unfused = hvp(bench)
    finally:
        set_fusion(previous)
    np.testing.assert_allclose(fused, unfused, rtol=1e-12)


def test_seeds_inside_a_region_and_a_source_inside_it():
    """Cotangents arriving at several region entries (vector output, output_gradients), and a gradient with
    respect to an intermediate of the region (its total adjoint)."""
    x, w = make_args([(3, 4), (3, 4)], np.float64)
    seed = np.random.default_rng(2).standard_normal((3, 4))
    results = []
    for fused in (True, False):
        previous = set_fusion(fused)
        try:
            with gpuad.Tape() as tape:
                X, W = tape.watch(x), tape.watch(w)
                h = gnp.sin(X) * W
                y = h * h + gnp.exp(h) * X
            results.append(tape.gradient(y, [X, W, h], output_gradients=seed))
        finally:
            set_fusion(previous)
    assert_grads_close(*results, np.float64)


def test_persistent_tape_runs_the_fused_pass_twice():
    x, w = make_args([(3, 4), (4,)], np.float64)
    with gpuad.Tape(persistent=True) as tape:
        X, W = tape.watch(x), tape.watch(w)
        y = bench(X, W)
    first, second = tape.gradient(y, [X, W]), tape.gradient(y, [X, W])
    assert_grads_close(first, second, np.float64)


def test_float32_regions_stay_float32():
    x, w = make_args([(3, 4), (4,)], np.float32)
    gx, gw = gpuad.grad(bench, argnums=(0, 1))(x, w)
    assert gx.dtype == gw.dtype == np.float32 and gw.shape == (4,)


# ---- random programs over every rule row ------------------------------------------------------------------------

def _to_domain(v, domain):
    """A traced value squashed into a row argument's domain (the rows' own tanh, * and +: they fuse too)."""
    if domain == "bool":
        return gnp.tanh(v) > 0  # a plain boolean array: a condition carries no derivative
    t = gnp.tanh(v)
    if domain is None:
        return t * 2.0
    low, high = (0.5, 2.0) if domain == "nonzero" else domain
    return t * ((high - low) / 2) + (high + low) / 2


def random_program(seed, rows=ROWS):
    """A random program of 3 to 8 rule rows (of ``rows``) over x (3, 4), w (3, 4) and b (4,): each step applies a
    random row to earlier values (squashed into the row's domain); the loss also sums an earlier value (a second
    cotangent into the region) and sometimes scales by the sum of one (a use from outside that splits the
    region)."""
    rng = np.random.default_rng(seed)
    steps, size = [], 3
    for _ in range(int(rng.integers(3, 9))):
        prim = rows[int(rng.integers(len(rows)))]
        steps.append((prim, [int(rng.integers(size)) for _ in range(prim.arity)]))
        size += 1
    tap = int(rng.integers(3, size))
    couple = bool(rng.random() < 0.3)

    def program(x, w, b):
        pool = [x, w, b]
        for prim, picks in steps:
            domains = prim.domain or (None,) * prim.arity
            pool.append(bind(prim, [_to_domain(pool[p], d) for p, d in zip(picks, domains)], {}))
        last = pool[-1] * gnp.sum(pool[tap]) if couple else pool[-1]
        return gnp.sum(last) + 0.5 * gnp.sum(pool[tap])

    program.__name__ = f"random_program_{seed}"
    return program


def random_args(seed, dtype=np.float64):
    return make_args([(3, 4), (3, 4), (4,)], dtype, seed=seed + 1000)


@pytest.mark.parametrize("seed", range(16))
def test_random_complex_programs_fused_match_per_op(seed):
    """Random programs over the rows NumPy defines on complex values, on complex x and w and a real b: complex
    regions, real values feeding them, and real regions reading complex values (abs, real, imag)."""
    from test_complex import COMPLEX_ROWS
    program = random_program(seed, COMPLEX_ROWS)
    x, w, b = make_args([(3, 4), (3, 4), (4,)], np.complex128, seed=seed + 2000)
    args = [x, w, b.real.copy()]
    with np.errstate(all="ignore"):
        fused, tape = tape_gradient(program, args)
        unfused, _ = tape_gradient(program, args, fused=False)
    assert tape.kernel_specs()
    assert_grads_close(fused, unfused, np.complex128, program.__name__)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6))
def test_random_programs_fused_match_per_op(seed):
    program, args = random_program(seed), random_args(seed)
    with np.errstate(all="ignore"):
        fused, _ = tape_gradient(program, args)
        unfused, _ = tape_gradient(program, args, fused=False)
    assert_grads_close(fused, unfused, np.float64, program.__name__)


# ---- what the tape records and keeps ----------------------------------------------------------------------------

def _regions(tape):
    return [[tape.entries[i].prim.name for i in members] for members in tape.regions.regions()]


def test_benchmark_function_is_one_region_keeping_its_transcendental_values():
    x, w = make_args([(100, 100), (100, 100)], np.float64)
    _, tape = tape_gradient(bench, [x, w], persistent=True)
    assert _regions(tape) == [["sin", "multiply", "multiply", "negative", "exp", "multiply", "add", "multiply",
                               "tanh", "add"]]
    # on NumPy the region keeps sin(x), exp(-w) and tanh(x*w) (dearer to recompute than to keep) and
    # recomputes x*x, -w and x*w
    assert tape.saved_bytes(exclude=[x, w]) == 3 * x.nbytes
    _, unfused = tape_gradient(bench, [x, w], fused=False, persistent=True)
    # without fusion the rules keep sin(x), exp(-w), x*x and tanh(x*w): four intermediates
    assert unfused.saved_bytes(exclude=[x, w]) == 4 * x.nbytes
    (region,) = [built[0] for built in tape.regions.cache.values() if built and isinstance(built[0], fusion.Region)]
    source = fusion.python_source(region)[0]
    assert "sin(" not in source and "exp(" not in source and "tanh(" not in source  # read, not recomputed
    assert " * s0" not in source and "s0 *" not in source  # the seed 1 is folded away


def test_cost_model_keeps_only_transcendental_host_values():
    rows = elementwise_rows
    for row, dear in [(rows.SIN, True), (rows.EXP, True), (rows.TANH, True), (rows.MULTIPLY, False),
                      (rows.NEGATIVE, False), (rows.ADD, False), (rows.ABSOLUTE, False), (rows.WHERE, False)]:
        assert fusion.regions.dear_to_recompute(row) is dear, row.name
        big = np.ones(fusion.regions.KEEP_MIN_SIZE)
        assert fusion.regions.keeps_value(row, big) is dear
        assert not fusion.regions.keeps_value(row, big.view(type("DeviceArray", (np.ndarray,), {})))
        assert not fusion.regions.keeps_value(row, big[:-1])  # small: recomputing costs less than keeping


def test_region_intermediates_are_freed_during_the_forward_pass():
    x, w = make_args([(2000,), (2000,)], np.float64)
    for fused in (True, False):
        refs = []

        def keep(t):
            refs.append(weakref.ref(t.data))
            return t

        def program(x, w):
            return gnp.sum(keep(keep(gnp.sin(x)) * w) + keep(keep(x * x) * keep(gnp.exp(keep(-w)))))

        gc.disable()
        try:
            previous = set_fusion(fused)
            try:
                with gpuad.Tape() as tape:
                    X, W = tape.watch(x), tape.watch(w)
                    y = program(X, W)
            finally:
                set_fusion(previous)
            alive = [r() is not None for r in refs]
            # unfused: sin(x), x*x and exp(-w), what the rules read; fused on NumPy: sin(x) and exp(-w), the
            # values dearer to recompute than to keep (x*x is recomputed)
            assert sum(alive) == (2 if fused else 3)
            gx, gw = tape.gradient(y, [X, W])
            np.testing.assert_allclose(gx, np.cos(x) * w + 2 * x * np.exp(-w))
        finally:
            gc.enable()


def test_an_outside_use_closes_a_region():
    """sum(a) uses a from outside its region: a later elementwise use of a starts a new region (saving a), so
    every outside use of a region comes after its last entry."""
    x = make_args([(5,)], np.float64)[0]
    _, tape = tape_gradient(lambda x: gnp.sum(gnp.sin(x)) * gnp.sum(gnp.sin(x) * 2), [x], persistent=True)
    assert _regions(tape) == [["sin"], ["sin", "multiply"], ["multiply"]]
    with gpuad.Tape(persistent=True) as tape:
        X = tape.watch(x)
        a = gnp.sin(X)
        s = gnp.sum(a)
        y = gnp.sum(a * s)
    assert _regions(tape) == [["sin"], ["multiply"]]
    assert tape.entries[-2].saved[0] is a.data  # a is now an external argument: saved
    np.testing.assert_allclose(tape.gradient(y, X), 2 * np.cos(x) * np.sum(np.sin(x)))


def test_regions_split_by_shape_dtype_and_size():
    x = make_args([(3, 4)], np.float64)[0]
    _, tape = tape_gradient(lambda x: gnp.sum(gnp.exp(gnp.sin(x[0])) * x + gnp.cos(x).astype(np.float32)), [x],
                            persistent=True)
    assert sorted(_regions(tape)) == [["cos"], ["multiply", "add"], ["sin", "exp"]]
    _, tape = tape_gradient(lambda x: gnp.sum(chain(x, x) + chain(x, x) + chain(x, x) + chain(x, x)), [x[0]],
                            persistent=True)
    assert max(len(r) for r in _regions(tape)) <= MAX_REGION


def test_kernels_of_the_last_backward_pass_are_printable():
    x, w = make_args([(3, 4), (4,)], np.float64)
    with gpuad.Tape() as tape:
        X, W = tape.watch(x), tape.watch(w)
        y = bench(X, W)
    with pytest.raises(RuntimeError, match="gradient"):
        tape.kernels()
    tape.gradient(y, [X, W])
    cuda, cpu = tape.kernels(), tape.kernels("cpu")
    assert cuda.count('extern "C" __global__ void gpuad_') == cpu.count('extern "C" void gpuad_') == 2
    assert "gpuad_fused" in cuda and "gpuad_fused2_negative_exp_bwd_f64" in cuda
    assert "__global__" not in cpu and "for (long long i = 0; i < n; ++i)" in cpu
    body = cuda.split("namespace ")[1].split("}  // namespace")[0]
    assert body in cpu  # one generated text, two wrappers


def test_python_rendering_reuses_buffers():
    """The NumPy rendering writes into its own temporaries (out=) and accumulates in place (+=)."""
    x, w = make_args([(3, 4), (3, 4)], np.float64)
    with gpuad.Tape() as tape:
        X, W = tape.watch(x), tape.watch(w)
        y = bench(X, W)
    tape.gradient(y, [X, W])
    source = fusion.python_source(tape.kernel_specs()[0].region)[0]
    assert "out=" in source and "+=" in source and "del " in source


def test_fused_pass_counts_one_region_per_region():
    x, w = make_args([(3, 4), (4,)], np.float64)
    before = dict(fusion.stats)
    gpuad.grad(bench, argnums=(0, 1))(x, w)
    assert fusion.stats["regions"] - before["regions"] == 2


def test_fusion_can_be_turned_off():
    previous = set_fusion(False)
    try:
        _, tape = tape_gradient(bench, make_args([(3,), (3,)], np.float64), fused=False, persistent=True)
    finally:
        set_fusion(previous)
    assert _regions(tape) == [] and tape.kernel_specs() == []


# ---- the fusion package: names, launchers, the Python rendering's liveness, its place among the modules --------

def test_kernel_names_hash_row_names():
    """A kernel's name depends on the region's structure with its rows by name, never on object identity: the
    same in every process (CuPy's disk cache, the batch builds of the tests), and the same as before the rows
    were held as objects."""
    from gpuad.ops.elementwise import EXP, NEGATIVE
    region = fusion.Region("float64", False, (("float64", True),), 0,
                           ((NEGATIVE, (("i", 0),)), (EXP, (("v", 0),))), (1,), (("i", 0),))
    full = np.zeros((3, 4))
    spec = fusion.plan(region, (3, 4), [full], [full], [((3, 4), full.dtype)])[0]
    assert spec.name == "gpuad_fused2_negative_exp_bwd_f64_4cf4d352"


def _rendered_sources():
    sources = []
    for fn, shapes, dtype in [PROGRAMS["benchmark"], PROGRAMS["broadcast_row"], PROGRAMS["long_chain"],
                              PROGRAMS["where_clip_maximum"], PROGRAMS["constants"]]:
        _, tape = tape_gradient(fn, make_args(shapes, dtype))
        sources += [fusion.python_source(s.region)[0] for s in tape.kernel_specs()]
    for seed in range(20):
        with np.errstate(all="ignore"):
            _, tape = tape_gradient(random_program(seed), random_args(seed))
        sources += [fusion.python_source(s.region)[0] for s in tape.kernel_specs()]
    return sources


def test_python_rendering_frees_every_local_after_its_last_use():
    """Every local the rendered function makes (temporaries, forward values, adjoints) and does not return is
    deleted once, after its last read, and never read again."""
    import ast
    for source in _rendered_sources():
        body = ast.parse(source).body[0].body
        returned = {e.id for e in body[-1].value.elts}
        made, deleted = set(), {}
        for n, stmt in enumerate(body):
            if isinstance(stmt, ast.Delete):
                for t in stmt.targets:
                    assert t.id not in deleted, source
                    deleted[t.id] = n
                continue
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name):
                    assert node.id not in deleted, f"{node.id} used after its del:\n{source}"
                    if isinstance(node.ctx, ast.Store):
                        made.add(node.id)
        assert made - returned == set(deleted), source


class RecordingLauncher:
    """A launcher that compiles and runs nothing: it records ``prepare`` batches and launches (the cotangent
    buffers it is handed stay as allocated: only the structure of the pass is checked with it)."""
    runs_on = "numpy"

    def __init__(self):
        self.calls, self.prepared, self.compiled = [], [], set()

    def ready(self, spec):
        return spec.name in self.compiled

    def prepare(self, specs):
        self.prepared.append([s.name for s in specs])
        self.compiled.update(s.name for s in specs)

    def launch(self, spec, kinds, values):
        self.calls.append((spec, kinds, len(values)))


def test_regions_run_through_the_launcher_the_tape_was_given():
    """One launcher interface: ``runs_on``, ``ready(spec)``, ``prepare(specs)`` (one compiler run for all of
    them) and ``launch(spec, kinds, values)``, passed to the Tape. A backward pass prepares once: the first
    region whose kernel is missing brings the kernels the rest of the pass will need."""
    x, w = make_args([(3, 4), (4,)], np.float64)
    recorder = RecordingLauncher()
    tape_gradient(bench, [x, w], launcher=recorder)
    assert [spec.name.split("_bwd")[0] for spec, _, _ in recorder.calls] == ["gpuad_fused8_sin_multiply_add_tanh",
                                                                            "gpuad_fused2_negative_exp"]
    for spec, kinds, count in recorder.calls:
        assert kinds == fusion.kernel_param_kinds(spec) and count == len(kinds)
    assert recorder.prepared == [[spec.name for spec, _, _ in recorder.calls]]  # one batch, predicted right
    tape_gradient(bench, [x, w], launcher=recorder)
    assert len(recorder.prepared) == 1 and len(recorder.calls) == 4
    with pytest.raises(ValueError, match="runs cupy arrays"):
        tape_gradient(bench, [x, w], launcher=fusion.CudaLauncher())


def mlp(w1, b1, w2, b2, x):
    """Two dense tanh layers with row biases and a logsumexp loss: four regions, two broadcast operands, seeds
    that are broadcast views (from the sums) and fresh arrays (from the matmuls)."""
    h = gnp.tanh(x @ w1 + b1)
    h = gnp.tanh(h @ w2 + b2)
    return gnp.mean(gpuad.nn.logsumexp(h, axis=-1))


COMPILE_CASES = {**{name: (fn, shapes, dtype) for name, (fn, shapes, dtype) in PROGRAMS.items()},
                 "mlp": (mlp, [(8, 8), (8,), (8, 8), (8,), (4, 8)], np.float32),
                 "mlp_rows": (lambda w1, b1, w2, b2, x: mlp(w1, b1, w2, b2, x.T.copy().T),
                              [(8, 8), (1, 8), (8, 8), (8,), (4, 8)], np.float64)}


@pytest.mark.parametrize("name", sorted(COMPILE_CASES) + [f"random-{s}" for s in range(24)])
def test_one_compile_per_backward_pass(name):
    """The first region whose kernel is not compiled has the launcher compile, in the same batch, the kernels
    the rest of the pass will need (predicted from the entries that will hand each region its cotangents): one
    compile per backward pass, exactly the kernels that run; a second pass over the same shapes compiles
    nothing."""
    if name.startswith("random-"):
        seed = int(name.split("-")[1])
        fn, args = random_program(seed), random_args(seed)
    else:
        fn, shapes, dtype = COMPILE_CASES[name]
        args = make_args(shapes, dtype)
    recorder = RecordingLauncher()
    with np.errstate(all="ignore"):
        tape_gradient(fn, args, launcher=recorder)
    ran = {spec.name for spec, _, _ in recorder.calls}
    assert len(recorder.prepared) == (1 if ran else 0), recorder.prepared
    if ran:
        assert set(recorder.prepared[0]) == ran
    with np.errstate(all="ignore"):
        tape_gradient(fn, args, launcher=recorder)
    assert len(recorder.prepared) == (1 if ran else 0)


def test_fusion_never_imports_the_tape_and_the_backend_no_fusion():
    import ast
    import pathlib
    root = pathlib.Path(gpuad.__file__).parent

    def imported(path):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names.add("." * node.level + (node.module or ""))
                names.update(f"{'.' * node.level}{node.module or ''}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        return names

    for path in (root / "fusion").glob("*.py"):
        assert not any("tape" in name for name in imported(path)), path.name
    assert not any("fusion" in name or "codegen" in name for name in imported(root / "backend.py"))


def test_python_rendering_folds_a_unit_seed_without_aliasing_inputs():
    """With the seed 1 folded, d sum(x * w) / dx is w itself in the program: the caller gets a copy; a constant
    cotangent (d sum(x + w) / dx = 1) comes back as a read-only broadcast of it, of x's shape."""
    x, w = make_args([(5,), (5,)], np.float64)
    gx, gw = gpuad.grad(lambda x, w: gnp.sum(x * w), argnums=(0, 1))(x, w)
    assert gx is not w and gw is not x and not np.shares_memory(gx, w) and not np.shares_memory(gw, x)
    np.testing.assert_array_equal(gx, w)
    np.testing.assert_array_equal(gw, x)
    gx, gw = gpuad.grad(lambda x, w: gnp.sum(x + w), argnums=(0, 1))(x, w)
    np.testing.assert_array_equal(gx, np.ones(5))
    np.testing.assert_array_equal(gw, np.ones(5))
    gx = gpuad.grad(lambda x: gnp.sum(x * x))(x)  # both partials of x * x: one term, doubled
    np.testing.assert_array_equal(gx, 2 * x)
    gx = gpuad.grad(lambda x: gnp.sum(gnp.sin(x) * 3.0))(x)  # a constant partial under the folded seed
    np.testing.assert_allclose(gx, 3 * np.cos(x))


def _rosenbrock(x):
    return gnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _unfused_grad(f, *args, argnums=0):
    previous = set_fusion(False)
    try:
        return gpuad.grad(f, argnums=argnums)(*args)
    finally:
        set_fusion(previous)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_python_rendering_folds_scalar_factors(dtype):
    """The scalar factors of a term (literals, the region's constants, a folded unit seed, negations) are
    multiplied together as scalars and applied in one pass: Rosenbrock's backward is 7 array passes (3 forward
    values, one product, three scalings, the last ones in place), within rounding of the unfused gradient and of
    the input's dtype."""
    x = np.random.default_rng(3).standard_normal(64).astype(dtype)
    with gpuad.Tape() as tape:
        X = tape.watch(x)
        y = _rosenbrock(X)
    (g,) = tape.gradient(y, [X])
    (region,) = [s.region for s in tape.kernel_specs()]
    import ast
    source = fusion.python_source(region)[0]
    passes = [stmt for stmt in ast.parse(source).body[0].body  # a call, or an operation (an assignment of a
              if isinstance(stmt, ast.Expr) or (isinstance(stmt, ast.Assign)  # name or a literal is none)
                                                 and isinstance(stmt.value, (ast.BinOp, ast.Call)))]
    assert len(passes) == 7, source
    assert g.dtype == dtype
    rtol = {np.float64: 1e-13, np.float32: 1e-5, np.float16: 1e-2}[dtype]
    np.testing.assert_allclose(g, _unfused_grad(_rosenbrock, x), rtol=rtol, atol=rtol)


def test_python_rendering_scaled_cotangents_never_alias():
    """A scaled cotangent whose base is an input, or that two outputs share, is applied into a new array."""
    x, w = make_args([(5,), (5,)], np.float64)
    x0, w0 = x.copy(), w.copy()
    gx, gw = gpuad.grad(lambda x, w: gnp.sum(-(x * w)), argnums=(0, 1))(x, w)
    np.testing.assert_array_equal(gx, -w)
    np.testing.assert_array_equal(gw, -x)
    gx, gw = gpuad.grad(lambda x, w: gnp.sum(2.0 * (x - w) ** 2), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(gx, 4 * (x - w))
    np.testing.assert_allclose(gw, -4 * (x - w))
    assert not np.shares_memory(gx, gw)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
