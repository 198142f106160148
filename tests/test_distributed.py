"""gpuad.distributed: packed collectives, sharding and data-parallel gradients.

The multi-process tests launch ``mpiexec -n 2`` and ``-n 3`` (the ``mpiexec`` of the ``mpich`` wheel, next to
this Python) on tests/distributed_worker.py, each under a timeout so that a hang fails instead of blocking CI;
they are skipped, with the reason shown, only where mpi4py or mpiexec is missing. The rest runs in this process
in a one-process world. The NCCL path (CuPy arrays) runs in the GPU test, in one process on one GPU.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import gpuad
import gpuad.distributed as dist
import gpuad.numpy as gnp

HERE = pathlib.Path(__file__).resolve().parent
WORKER = HERE / "distributed_worker.py"
TIMEOUT = 90  # seconds for one mpiexec run: far above the ~1 s each takes, far below a CI job's limit


def _mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError as e:
        return None, f"mpi4py cannot be imported ({e}): pip install 'gpuad[mpi]'"
    local = pathlib.Path(sys.executable).parent / "mpiexec"  # the mpich wheel installs it beside python
    found = str(local) if local.exists() else shutil.which("mpiexec")
    return found, None if found else "no mpiexec (pip install mpich)"


MPIEXEC, NO_MPI = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason=f"MPI tests: {NO_MPI}")


def _env(**extra):
    env = dict(os.environ, GPUAD_BACKEND="numpy", PYTHONUNBUFFERED="1", **extra)
    env.setdefault("HYDRA_LAUNCHER", "fork")  # MPICH: every process on this host, never ssh or a batch system
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    return env


def launch(n, *command, timeout=TIMEOUT, env=None):
    """Run ``mpiexec -n n command...``; (returncode, combined output, seconds)."""
    start = time.monotonic()
    try:
        done = subprocess.run([MPIEXEC, "-n", str(n), *command], capture_output=True, text=True, timeout=timeout,
                              env=env or _env(), cwd=HERE.parent)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"mpiexec -n {n} {' '.join(command)} hung for {timeout} s; output so far:\n{out}")
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def worker(n, scenario, **kwargs):
    return launch(n, sys.executable, str(WORKER), scenario, **kwargs)


@pytest.fixture
def one_process(monkeypatch):
    """A one-process world without a communicator (as without mpi4py), whatever this process has."""
    monkeypatch.setattr(dist, "_world", dist.World())
    return dist.world()


# ---- several processes ------------------------------------------------------------------------------------

@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("scenario", ["grads", "trees", "mismatch"])
def test_mpiexec(n, scenario):
    """grads: MLP and linear-algebra losses from uneven shards == the full-batch value and gradient (1e-12).
    trees: allreduce and broadcast of mixed-dtype pytrees, one collective per dtype. mismatch: ranks passing
    different structures, shapes, dtypes or operations, and an empty shard, all get a ValueError naming the rank."""
    code, out, _ = worker(n, scenario)
    assert code == 0, out
    for r in range(n):
        assert f"rank {r}: OK {scenario} (size {n})" in out, out
    if scenario == "mismatch":
        for case in ("structure", "shape", "dtype", "rank 0", "operation", "empty shard"):
            assert sum(f"rank {r}: {case}: ValueError" in out for r in range(n)) == n, (case, out)


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_failed_rank_ends_every_rank(n):
    """Rank 1 raises while the others wait for it in a collective: the job ends at once, non-zero, naming it."""
    code, out, seconds = worker(n, "fail", timeout=60)
    assert code != 0, out
    assert f"gpuad.distributed: rank 1 of {n} failed: RuntimeError: boom, on purpose" in out, out
    assert "unreachable" not in out and "OK fail" not in out, out
    assert seconds < 20, f"took {seconds:.1f} s to end the job"


@needs_mpi
@pytest.mark.parametrize("scenario", ["exit", "crash"])
def test_exiting_rank_ends_every_rank(scenario):
    """Rank 1 calls sys.exit(3) inside guard(), or dies with os._exit(3): no rank is left waiting."""
    code, out, seconds = worker(3, scenario, timeout=60)
    assert code != 0, out
    if scenario == "exit":
        assert "gpuad.distributed: rank 1 of 3 failed: SystemExit: 3" in out, out
    assert "unreachable" not in out and f"OK {scenario}" not in out, out
    assert seconds < 20, f"took {seconds:.1f} s to end the job"


@needs_mpi
def test_many_processes_need_mpi4py():
    """Started by mpiexec where mpi4py cannot be imported: a clear error on every rank, not n lonely worlds."""
    script = "import sys; sys.modules['mpi4py'] = None; import gpuad.distributed as d; d.init()"
    code, out, _ = launch(2, sys.executable, "-c", script, timeout=60)
    assert code != 0, out
    assert out.count("this process is one of 2 started by a launcher, but mpi4py cannot be imported") == 2, out


@needs_mpi
def test_readme_example(tmp_path):
    """The README's complete example script: the same losses with 3 processes as with one."""
    text = (HERE.parent / "README.md").read_text()
    start = text.index("```python\n", text.index("<!-- distributed-example")) + len("```python\n")
    script = tmp_path / "train.py"
    script.write_text(text[start:text.index("```", start)])
    code, out, _ = launch(3, sys.executable, str(script))
    assert code == 0, out
    alone = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT,
                           env=_env(), cwd=tmp_path)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    losses = [line.split("(")[0] for line in out.splitlines() if line.startswith("step")]
    assert len(losses) == 3 and losses == [line.split("(")[0] for line in alone.stdout.splitlines()], (out, alone)
    assert "(3 processes)" in out


@needs_mpi
def test_launcher_of_another_mpi_is_caught():
    """Started as one of several processes (PMI_SIZE=2) but MPI sees one: a clear error, not two lone worlds."""
    done = subprocess.run([sys.executable, "-c", "import gpuad.distributed as d; d.init()"], capture_output=True,
                          text=True, timeout=60, env=_env(PMI_SIZE="2"))
    assert done.returncode != 0 and "MPI sees a world of one" in done.stderr, done.stdout + done.stderr


def test_script_runs_without_mpiexec():
    """The worker's gradient and tree checks, as a plain script: a one-process world (mpi4py's singleton)."""
    for scenario in ("grads", "trees"):
        done = subprocess.run([sys.executable, str(WORKER), scenario], capture_output=True, text=True,
                              timeout=TIMEOUT, env=_env(), cwd=HERE.parent)
        assert done.returncode == 0 and f"rank 0: OK {scenario} (size 1)" in done.stdout, done.stdout + done.stderr


def test_without_mpi4py_and_lazy_imports():
    """Importing gpuad.distributed imports neither mpi4py nor CuPy; without mpi4py, init() gives size 1."""
    script = (
        "import sys\n"
        "import gpuad.distributed as d\n"
        "assert 'mpi4py' not in sys.modules and 'cupy' not in sys.modules, sorted(sys.modules)\n"
        "sys.modules['mpi4py'] = None\n"
        "import numpy as np\n"
        "w = d.init()\n"
        "assert (w.rank, w.size, w.local_rank, w.local_size, w.comm) == (0, 1, 0, 1, None), w\n"
        "out = d.allreduce({'a': np.arange(3.0), 'n': 2.5}, op='mean')\n"
        "assert np.array_equal(out['a'], [0, 1, 2]) and out['n'] == 2.5 and type(out['n']) is float\n"
        "print('ok', w)\n")
    env = {k: v for k, v in _env().items() if k not in dist._LAUNCHER_SIZE_VARS}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and "ok World(rank=0, size=1" in done.stdout, done.stdout + done.stderr


# ---- one process ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_shard_bounds_partition(size):
    for n in range(0, 20):
        bounds = [dist.shard_bounds(n, r, size) for r in range(size)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert [b - a for a, b in bounds] == [len(p) for p in np.array_split(np.arange(n), size)]


def test_shard_and_collectives_in_one_process(one_process):
    x = np.arange(24.0).reshape(4, 6)
    assert dist.shard(x) is not x and np.array_equal(dist.shard(x), x)
    assert np.array_equal(dist.shard(x, axis=-1), x)
    tree = {"a": x, "b": [np.float32(2), 3, np.ones(2, np.int64)]}
    for out in (dist.allreduce(tree), dist.allreduce({"a": x}, op="mean"), dist.broadcast(tree)):
        assert np.array_equal(out["a"], x) and out["a"] is not x
    out = dist.allreduce(tree)
    assert out["b"][1] == 3 and type(out["b"][1]) is int and out["b"][0].dtype == np.float32
    dist.barrier()


def test_value_and_grad_in_one_process_is_gpuads(one_process):
    rng = np.random.default_rng(1)
    w, x = rng.normal(size=(3, 2)), rng.normal(size=(5, 3))

    def loss(w, x):
        return gnp.mean(gnp.tanh(x @ w) ** 2)

    value, g = dist.value_and_grad(loss)(w, x)
    expect_value, expect_g = gpuad.value_and_grad(loss)(w, x)
    np.testing.assert_allclose(value, expect_value, rtol=1e-15)
    np.testing.assert_allclose(g, expect_g, rtol=1e-15)


def test_clear_errors(one_process):
    with pytest.raises(ValueError, match="op must be 'sum' or 'mean'"):
        dist.allreduce(np.ones(2), op="max")
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        dist.value_and_grad(lambda w, x: w, reduction="none")
    with pytest.raises(ValueError, match="root 1 is not a rank"):
        dist.broadcast(np.ones(2), root=1)
    with pytest.raises(TypeError, match="boolean"):
        dist.allreduce(np.ones(2, bool))
    with pytest.raises(TypeError, match="floating-point"):
        dist.allreduce(np.arange(2), op="mean")
    with pytest.raises(TypeError, match="leaves must be NumPy or CuPy arrays"):
        dist.allreduce({"a": "text"})
    with pytest.raises(ValueError, match="disagree on the number of rows"):
        dist.value_and_grad(lambda w, x, y: gnp.sum(w * x) + gnp.sum(y))(1.0, np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="without a batch axis"):
        dist.value_and_grad(lambda w, x: gnp.sum(w * x))(np.ones(2), 3.0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        dist.shard(np.ones((2, 2)), axis=2)


# ---- the NCCL path ----------------------------------------------------------------------------------------

class _FakeNcclComm:
    """Stands in for cupy.cuda.nccl.NcclCommunicator: checks each call's pointer and count against the arrays."""
    calls = []

    def __init__(self, ndev, uid, rank):
        assert (ndev, rank) == (1, 0) and uid == ("uid",)

    def allReduce(self, send, recv, count, datatype, op, stream):
        self.calls.append(("allReduce", send, recv, count, datatype, op, stream))

    def bcast(self, buff, count, datatype, root, stream):
        self.calls.append(("bcast", buff, count, datatype, root, stream))


def _fake_cupy():
    """A CuPy look-alike on NumPy (arrays of a class from a module named cupy), with a fake NCCL."""
    import types
    cupy = types.ModuleType("cupy")
    cuda = types.ModuleType("cupy.cuda")
    nccl = types.ModuleType("cupy.cuda.nccl")

    class Pointer:
        def __init__(self, ptr):
            self.ptr = ptr

    class ndarray(np.ndarray):
        @property
        def data(self):
            return Pointer(self.__array_interface__["data"][0])

    ndarray.__module__ = "cupy"
    wrap = lambda a: np.asarray(a).view(ndarray)  # noqa: E731
    cupy.ndarray = ndarray
    cupy.array = lambda a, dtype=None, copy=True: wrap(np.array(a, dtype=dtype, copy=copy))
    cupy.asarray = lambda a, dtype=None: wrap(np.asarray(a, dtype=dtype))
    cupy.concatenate = lambda parts: wrap(np.concatenate([np.asarray(p) for p in parts]))
    cupy.ravel = lambda a: wrap(np.ravel(a))
    cupy.asnumpy = lambda a: np.array(a)
    for name in ("uint8", "float16", "uint32", "uint64", "float32", "float64"):
        setattr(cupy, name, getattr(np, name))
    stream = types.SimpleNamespace(ptr=0, synchronize=lambda: None)
    cuda.get_current_stream = lambda: stream
    cuda.Device = lambda: types.SimpleNamespace(id=0)
    names = ["INT8", "UINT8", "INT32", "UINT32", "INT64", "UINT64", "FLOAT16", "FLOAT32", "FLOAT64"]
    for i, name in enumerate(names):
        setattr(nccl, f"NCCL_{name}", i)
    nccl.NCCL_SUM = 0
    nccl.NcclCommunicator = _FakeNcclComm
    nccl.get_unique_id = lambda: ("uid",)
    cupy.cuda, cuda.nccl = cuda, nccl
    return cupy, {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.nccl": nccl}


def test_nccl_calls_with_a_stand_in_cupy(one_process, monkeypatch):
    """The NCCL path's calls (pointers, counts, datatypes, widening, pieces) on the CPU, with a stand-in CuPy:
    the GPU test below runs the real one where there is a GPU."""
    cupy, modules = _fake_cupy()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(dist, "_nccl_comms", {})
    _FakeNcclComm.calls = []
    tree = {"f32": cupy.asarray(np.arange(6, dtype=np.float32).reshape(2, 3)), "c128": cupy.asarray([1 + 2j, 3j]),
            "i16": cupy.asarray(np.arange(3, dtype=np.int16)), "host": np.ones(2)}
    assert gpuad.backend.array_module(tree["f32"]) is cupy
    out = dist.allreduce(tree)
    for k in tree:
        assert type(out[k]) is type(tree[k]) and out[k].dtype == tree[k].dtype and np.array_equal(out[k], tree[k])
    nccl = modules["cupy.cuda.nccl"]
    calls = sorted(_FakeNcclComm.calls, key=lambda c: c[3])
    assert [(c[0], c[3], c[4]) for c in calls] == [  # complex as float pairs; int16 widened to int32
        ("allReduce", 3, nccl.NCCL_INT32), ("allReduce", 4, nccl.NCCL_FLOAT64), ("allReduce", 6, nccl.NCCL_FLOAT32)]
    assert all(c[1] == c[2] and c[1] != 0 for c in calls)
    _FakeNcclComm.calls = []
    out = dist.broadcast(dict(tree, mask=cupy.asarray([True, False])))
    assert np.array_equal(out["mask"], [True, False]) and out["mask"].dtype == bool
    counts = sorted((c[2], c[3]) for c in _FakeNcclComm.calls)  # bits as words: 1, 2, 4 or 8 bytes
    assert counts == [(2, nccl.NCCL_UINT8), (3, nccl.NCCL_FLOAT16), (4, nccl.NCCL_UINT64), (6, nccl.NCCL_UINT32)]
    assert len(dist._nccl_comms) == 1


@pytest.mark.gpu
def test_nccl_in_one_process(one_process):
    """CuPy arrays go over NCCL (a one-rank communicator: the same packing, NCCL calls and stream sync)."""
    import cupy
    if dist._nccl() is None:
        pytest.skip("this CuPy has no NCCL (pip install nvidia-nccl-cu12 or -cu13)")
    dist._nccl_comms.clear()
    tree = {"f32": cupy.arange(6, dtype=cupy.float32).reshape(2, 3), "f64": cupy.ones(4),
            "c64": cupy.array([1 + 2j], cupy.complex64), "i16": cupy.arange(3, dtype=cupy.int16),
            "f16": cupy.ones(2, cupy.float16), "host": np.arange(3.0)}
    for out in (dist.allreduce(tree), dist.allreduce({k: v for k, v in tree.items() if k != "i16"}, op="mean"),
                dist.broadcast(tree)):
        for k, v in out.items():
            assert type(v) is type(tree[k]) and v.dtype == tree[k].dtype
            assert np.array_equal(gpuad.backend.to_numpy(v), gpuad.backend.to_numpy(tree[k])), k
    assert dist._nccl_comms, "the NCCL communicator was not used"

    rng = np.random.default_rng(0)
    w, x = cupy.asarray(rng.normal(size=(3, 2))), cupy.asarray(rng.normal(size=(5, 3)))

    def loss(w, x):
        return gnp.mean(gnp.tanh(x @ w) ** 2)

    value, g = dist.value_and_grad(loss)(w, x)
    expect_value, expect_g = gpuad.value_and_grad(loss)(w, x)
    assert type(g) is cupy.ndarray
    np.testing.assert_allclose(cupy.asnumpy(g), cupy.asnumpy(expect_g), rtol=1e-14)
    np.testing.assert_allclose(float(value), float(expect_value), rtol=1e-14)
