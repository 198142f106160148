"""``gpuad.distributed``: data-parallel gradients across processes, GPUs and hosts, on MPI and NCCL.

gpuad builds no transport of its own: processes are started by ``mpiexec`` and talk through MPI (mpi4py; the
``mpich`` wheel brings ``libmpi`` and ``mpiexec`` with no system install: ``pip install 'gpuad[mpi]'``), and CuPy
arrays go between GPUs over NCCL (``cupy.cuda.nccl``, its communicator bootstrapped through MPI), the way
ChainerMN and Horovod do. Which transport an array takes is decided by the backend seam
(``gpuad.backend.array_module``), not by the caller: NumPy arrays over MPI, CuPy arrays over NCCL (or, where CuPy
has no NCCL, staged through host memory over MPI).

A script runs unchanged with or without ``mpiexec``: without it (or without mpi4py) the world has one process,
and every collective returns its input's values::

    import gpuad.distributed as dist
    w = dist.init()                              # World(rank, size, local_rank, local_size)
    params = dist.broadcast(params)              # rank 0's parameters everywhere
    x, y = dist.shard(X), dist.shard(Y)          # this rank's rows of the global batch (uneven sizes allowed)
    step = dist.value_and_grad(loss, batch_argnums=(1, 2))   # loss(params, x, y) is a *mean* over rows
    value, grads = step(params, x, y)            # == the full-batch value and gradient, on every rank

    mpiexec -n 4 python train.py

**Collectives.** ``allreduce(tree, op)`` and ``broadcast(tree, root)`` take pytrees (tuples, lists, dicts) of
NumPy or CuPy arrays (or numbers). The leaves are packed into one contiguous buffer per (backend, dtype), so a
tree costs a few collectives, not one per leaf; the results come back as a tree of the same structure, of new
arrays (views into the reduced buffer). Every collective first exchanges a 64-bit fingerprint of the operation,
the tree's structure and every leaf's backend, shape and dtype (one ``Allgather`` of two integers): ranks that
disagree all raise the same ``ValueError``, naming the ranks that differ and the first difference, instead of
deadlocking or reducing mismatched buffers.

**Failures.** ``init()`` (in a world of more than one process) installs a ``sys.excepthook``: an exception that
escapes on any rank prints its traceback and ``gpuad.distributed: rank R of N failed: ...`` and calls
``MPI_Abort``, which makes ``mpiexec`` end every rank, with a non-zero status, within seconds, rather than
leaving the others waiting forever in their next collective (``init(abort_on_error=False)`` leaves the hook
alone). ``with guard():`` around a script's body does the same for ``sys.exit(non-zero)`` and exceptions that
would otherwise be caught further out. (A rank that dies outright, killed or ``os._exit``, ends the job too:
``mpiexec`` does that itself.)
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import sys
import time
import traceback

import numpy as _np

from . import backend
from . import tree as _tree

__all__ = ["World", "init", "world", "guard", "allreduce", "broadcast", "shard", "shard_bounds", "barrier",
           "value_and_grad"]

# environment variables that launchers set for each process: a world of more than one process without mpi4py
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place among the processes of one job.

    ``rank`` and ``size``: among all processes; ``local_rank`` and ``local_size``: among those on this host (use
    ``local_rank`` to pick this process's GPU: ``cupy.cuda.Device(w.local_rank).use()``). ``comm`` is the mpi4py
    communicator, or None in a one-process world without mpi4py.
    """
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    comm: object = dataclasses.field(default=None, repr=False, compare=False)


_ABORT_GRACE_S = 1.0  # seconds between printing a rank's failure and aborting the job
_world: World | None = None
_hook_installed = False


def _launcher_size() -> int:
    for name in _LAUNCHER_SIZE_VARS:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def init(comm=None, *, abort_on_error: bool = True) -> World:
    """Join the job (idempotent) and return its ``World``.

    Under ``mpiexec`` this initializes MPI through mpi4py (``comm`` defaults to ``MPI.COMM_WORLD``; pass another
    mpi4py communicator to work on a subset of the processes). Without mpi4py it returns a one-process world, and
    raises a RuntimeError if a launcher started several processes (they could not talk to each other). With
    ``abort_on_error`` (the default) and more than one process, an uncaught exception on any rank aborts the
    whole job with a message naming that rank (see the module's docstring).
    """
    global _world
    if _world is not None and comm is None:
        return _world
    if comm is None:
        launched = _launcher_size()
        try:
            from mpi4py import MPI
        except Exception as e:  # ImportError, or an mpi4py that finds no MPI library (RuntimeError)
            if launched > 1:
                raise RuntimeError(
                    f"gpuad.distributed: this process is one of {launched} started by a launcher, but mpi4py "
                    f"cannot be imported ({type(e).__name__}: {e}); install the MPI extra (pip install "
                    f"'gpuad[mpi]') so that the processes can talk to each other") from None
            _world = World()
            return _world
        comm = MPI.COMM_WORLD
        if comm.Get_size() == 1 and launched > 1:
            raise RuntimeError(
                f"gpuad.distributed: this process is one of {launched} started by a launcher, but MPI sees a "
                f"world of one: the mpiexec that started it belongs to another MPI than mpi4py's library "
                f"({MPI.Get_library_version().splitlines()[0].strip()}); start it with that MPI's mpiexec (the "
                f"mpich wheel puts one beside python)")
    from mpi4py import MPI
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    _world = World(comm.Get_rank(), comm.Get_size(), local.Get_rank(), local.Get_size(), comm)
    local.Free()
    if abort_on_error and _world.size > 1:
        _install_excepthook()
    return _world


def world() -> World:
    """The current ``World`` (calling ``init()`` first if nothing has)."""
    return _world if _world is not None else init()


def _install_excepthook():
    global _hook_installed
    if _hook_installed:
        return
    previous = sys.excepthook

    def abort_everyone(kind, value, tb):
        w = _world
        if w is not None and w.comm is not None and w.size > 1:
            _abort(w, kind, value, tb)
        previous(kind, value, tb)

    sys.excepthook = abort_everyone
    _hook_installed = True


def _abort(w, kind, value, tb):
    """Print what failed on this rank, then end the whole job (MPI_Abort) with status 1."""
    try:
        line = f"gpuad.distributed: rank {w.rank} of {w.size} failed: {kind.__name__}: {value}\n"
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stdout.flush()
        sys.stderr.write(line + text + line.replace("\n", "; aborting every rank\n"))  # one write: not cut up
        sys.stderr.flush()
        time.sleep(_ABORT_GRACE_S)  # let mpiexec forward the message before it tears the job down
    finally:
        w.comm.Abort(1)


@contextlib.contextmanager
def guard():
    """Abort the whole job if the block ends with any exception other than ``SystemExit(0)``.

    The excepthook that ``init()`` installs covers uncaught exceptions; this also covers ``sys.exit(non-zero)``
    and ``KeyboardInterrupt`` on one rank (which would otherwise leave that rank waiting in ``MPI_Finalize`` and
    the others in their next collective), and exceptions that a caller further out would swallow. Use it
    around the body of a training script (``with dist.guard(): main()``); a no-op in a one-process world.
    """
    try:
        yield
    except SystemExit as e:
        if e.code not in (None, 0):
            w = _world
            if w is not None and w.comm is not None and w.size > 1:
                _abort(w, type(e), e, e.__traceback__)
        raise
    except BaseException as e:
        w = _world
        if w is not None and w.comm is not None and w.size > 1:
            _abort(w, type(e), e, e.__traceback__)
        raise


def barrier():
    """Wait until every rank gets here."""
    w = world()
    if w.comm is not None:
        w.comm.Barrier()


# ---- the fingerprint exchange ---------------------------------------------------------------------------------

def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def _exchange(w: World, what: str, parts: list[str], count: int = 0):
    """Check that every rank calls the same operation on the same kind of tree; gather one count per rank.

    ``parts``: this rank's description (operation, structure, one entry per leaf). One Allgather of two int64
    per rank; only when the fingerprints differ are the descriptions gathered, to name the first difference.
    Returns the counts of all ranks (a NumPy int64 array; just this rank's in a world without a communicator).
    On a mismatch, every rank raises the same ValueError naming the ranks that differ from the majority.
    """
    if w.comm is None:
        return _np.array([count], _np.int64)
    mine = _np.array([_hash64("\x1f".join(parts)), count], _np.int64)
    every = _np.empty((w.size, 2), _np.int64)
    w.comm.Allgather(mine, every)
    if (every[:, 0] == every[0, 0]).all():
        return every[:, 1]
    descriptions = w.comm.allgather(parts)  # every rank saw the mismatch, so every rank gets here
    hashes = [int(h) for h in every[:, 0]]
    ref = max(range(w.size), key=lambda r: (hashes.count(hashes[r]), -r))  # the majority (ties: lowest rank)
    differing = [r for r in range(w.size) if hashes[r] != hashes[ref]]
    first, other = descriptions[ref], descriptions[differing[0]]
    i = next((i for i, (a, b) in enumerate(zip(first, other)) if a != b), min(len(first), len(other)))
    a = first[i] if i < len(first) else "(nothing)"
    b = other[i] if i < len(other) else "(nothing)"
    names = ", ".join(map(str, differing))
    raise ValueError(
        f"gpuad.distributed.{what}: the ranks disagree: rank{'s' if len(differing) > 1 else ''} {names} passed "
        f"a different operation, tree structure, shape or dtype than rank {ref} (every rank must pass the same). "
        f"First difference, rank {ref}: {a}; rank {differing[0]}: {b}")


# ---- packing ------------------------------------------------------------------------------------------------

def _leaves(value, what):
    """(arrays, treedef, numbers): the leaves as NumPy/CuPy arrays; ``numbers`` marks the Python numbers."""
    leaves, treedef = _tree.flatten(value)
    arrays, numbers = [], []
    for i, leaf in enumerate(leaves):
        module = backend.array_module(leaf)
        if module is not _np:
            arrays.append(leaf)
            numbers.append(None)
        elif isinstance(leaf, _np.ndarray):
            arrays.append(leaf)
            numbers.append(None)
        elif isinstance(leaf, (bool, int, float, complex, _np.generic)):
            arrays.append(_np.asarray(leaf))
            numbers.append(type(leaf))
        else:
            raise TypeError(f"gpuad.distributed.{what}: leaf {i} is a {type(leaf).__name__}; leaves must be NumPy "
                            f"or CuPy arrays or numbers (collectives are not differentiable: call them outside "
                            f"grad, on its results)")
    return arrays, treedef, numbers


def _describe(what, arrays, treedef):
    parts = [what, getattr(_tree, "describe", repr)(treedef)]
    parts += [f"leaf {i}: {backend.array_module(a).__name__} {a.dtype} {tuple(a.shape)}" for i, a in enumerate(arrays)]
    return parts


def _groups(arrays):
    """[(module, dtype, [leaf indices])], one per (backend, dtype), in an order every rank agrees on."""
    groups = {}
    for i, a in enumerate(arrays):
        module = backend.array_module(a)
        key = (module.__name__, a.dtype.str)
        groups.setdefault(key, (module, a.dtype, []))[2].append(i)
    return [groups[k] for k in sorted(groups)]


def _pack(module, dtype, parts):
    if len(parts) == 1:
        return module.array(parts[0], dtype=dtype, copy=True).reshape(-1)
    return module.concatenate([module.ravel(p) for p in parts]).astype(dtype, copy=False)


def _unpack(buffer, shapes):
    out, offset = [], 0
    for shape in shapes:
        n = 1
        for d in shape:
            n *= d
        out.append(buffer[offset:offset + n].reshape(shape))
        offset += n
    return out


def _rebuild(treedef, results, numbers):
    leaves = [r if kind is None else kind(r.item()) for r, kind in zip(results, numbers)]
    return _tree.unflatten(treedef, leaves)


# ---- transports: MPI for NumPy arrays, NCCL for CuPy arrays -------------------------------------------------

def _mpi_allreduce(w, buffer):
    from mpi4py import MPI
    w.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)


def _mpi_bcast(w, buffer, root):
    w.comm.Bcast(buffer.view(_np.uint8), root=root)


_nccl_comms: dict = {}


def _nccl():
    """``cupy.cuda.nccl`` or None where this CuPy has no NCCL."""
    try:
        from cupy.cuda import nccl
        nccl.NcclCommunicator  # noqa: B018  (absent where CuPy was built without NCCL)
        return nccl
    except Exception:
        return None


def _nccl_comm(w, cupy, nccl):
    """The NCCL communicator of this world on the current device: rank 0's unique id, broadcast through MPI."""
    key = (id(w.comm), cupy.cuda.Device().id)
    comm = _nccl_comms.get(key)
    if comm is None:
        uid = nccl.get_unique_id() if w.rank == 0 else None
        if w.comm is not None:
            uid = w.comm.bcast(uid, root=0)
        comm = _nccl_comms[key] = nccl.NcclCommunicator(w.size, uid, w.rank)
    return comm


def _nccl_type(nccl, dtype):
    """(NCCL datatype, element count factor, transport dtype) for a buffer of ``dtype``."""
    table = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
             "int8": nccl.NCCL_INT8, "uint8": nccl.NCCL_UINT8, "int32": nccl.NCCL_INT32,
             "uint32": nccl.NCCL_UINT32, "int64": nccl.NCCL_INT64, "uint64": nccl.NCCL_UINT64}
    name = _np.dtype(dtype).name
    if name in table:
        return table[name], 1, None
    if name in ("complex64", "complex128"):  # summed as (real, imaginary) pairs
        return table["float32" if name == "complex64" else "float64"], 2, None
    if name in ("int16", "uint16"):  # NCCL has no 16-bit integers: widen for the trip
        return nccl.NCCL_INT32 if name == "int16" else nccl.NCCL_UINT32, 1, name.replace("16", "32")
    raise TypeError(f"gpuad.distributed: NCCL cannot sum {name} arrays")


def _cupy_allreduce(w, buffer):
    import cupy
    nccl = _nccl()
    if nccl is None:  # CuPy without NCCL: through host memory, over MPI
        if w.comm is not None:
            host = cupy.asnumpy(buffer)
            _mpi_allreduce(w, host)
            buffer.set(host)
        return buffer
    datatype, factor, wide = _nccl_type(nccl, buffer.dtype)
    work = buffer if wide is None else buffer.astype(wide)
    stream = cupy.cuda.get_current_stream()
    _nccl_comm(w, cupy, nccl).allReduce(work.data.ptr, work.data.ptr, work.size * factor, datatype,
                                        nccl.NCCL_SUM, stream.ptr)
    stream.synchronize()
    if wide is not None:
        buffer[...] = work
    return buffer


def _cupy_bcast(w, buffer, root):
    import cupy
    nccl = _nccl()
    if nccl is None:
        if w.comm is not None:
            host = cupy.asnumpy(buffer)
            _mpi_bcast(w, host, root)
            buffer.set(host)
        return buffer
    # a broadcast copies bits: send them as unsigned words, in pieces whose count fits bcast's C int
    words = {1: (cupy.uint8, nccl.NCCL_UINT8), 2: (cupy.float16, nccl.NCCL_FLOAT16),
             4: (cupy.uint32, nccl.NCCL_UINT32)}
    kind, datatype = words.get(buffer.dtype.itemsize, (cupy.uint64, nccl.NCCL_UINT64))
    words = buffer.view(kind)
    stream = cupy.cuda.get_current_stream()
    comm = _nccl_comm(w, cupy, nccl)
    piece = 1 << 30
    for start in range(0, words.size, piece):
        count = min(piece, words.size - start)
        comm.bcast(words.data.ptr + start * words.itemsize, count, datatype, root, stream.ptr)
    stream.synchronize()
    return buffer


def _transport_sum(w, module, buffer):
    if module is _np:
        if w.comm is not None:
            _mpi_allreduce(w, buffer)
    else:
        _cupy_allreduce(w, buffer)


def _transport_bcast(w, module, buffer, root):
    if module is _np:
        if w.comm is not None:
            _mpi_bcast(w, buffer, root)
    else:
        _cupy_bcast(w, buffer, root)


# ---- collectives ---------------------------------------------------------------------------------------------

def _reduce(tree, op, what, rows=None):
    """Sum or mean of ``tree`` over the ranks; with ``rows`` (this rank's row count), each rank's leaves are first
    weighted by ``rows / (total over the ranks)``: the full-batch mean from per-shard means."""
    w = world()
    arrays, treedef, numbers = _leaves(tree, what)
    label = f"allreduce({op})" if rows is None else f"{what}(mean over rows)"
    counts = _exchange(w, what, _describe(label, arrays, treedef), 0 if rows is None else rows)
    scale = None
    if rows is not None:
        empty = [r for r, c in enumerate(counts) if c == 0]
        if empty:
            raise ValueError(f"gpuad.distributed.{what}: rank{'s' if len(empty) > 1 else ''} "
                             f"{', '.join(map(str, empty))} got no rows (global batch of {int(counts.sum())} "
                             f"over {w.size} ranks); every rank needs at least one for a mean loss")
        scale = rows / int(counts.sum())
    groups = _groups(arrays)
    for module, dtype, _ in groups:
        if dtype.kind == "b":
            raise TypeError(f"gpuad.distributed.{what}: cannot sum boolean arrays; cast them to an integer dtype")
        if op == "mean" and dtype.kind not in "fc":
            raise TypeError(f"gpuad.distributed.{what}: op='mean' needs floating-point arrays, not {dtype}; use "
                            f"op='sum' and divide")
    results = [None] * len(arrays)
    for module, dtype, indices in groups:
        buffer = _pack(module, dtype, [arrays[i] for i in indices])
        if scale is not None and scale != 1:
            buffer *= dtype.type(scale)
        if buffer.size:
            _transport_sum(w, module, buffer)
        if op == "mean" and w.size > 1:
            buffer /= dtype.type(w.size)
        for i, r in zip(indices, _unpack(buffer, [arrays[i].shape for i in indices])):
            results[i] = r
    return _rebuild(treedef, results, numbers)


def allreduce(tree, op: str = "sum"):
    """The elementwise sum (``op="sum"``) or mean (``op="mean"``) over all ranks of a pytree of arrays.

    Every rank must pass a tree of the same structure, leaf shapes, dtypes and backends (checked: a clear
    ValueError on every rank otherwise). Leaves are packed into one buffer per (backend, dtype) and reduced with
    one collective each: NumPy arrays over MPI, CuPy arrays over NCCL (CuPy arrays must be on this process's
    current device, where its NCCL communicator is made on first use). Returns a tree of the same structure of new
    arrays (Python numbers come back as numbers). In a one-process world the values come back unchanged.
    """
    if op not in ("sum", "mean"):
        raise ValueError(f"gpuad.distributed.allreduce: op must be 'sum' or 'mean', not {op!r}")
    return _reduce(tree, op, "allreduce")


def broadcast(tree, root: int = 0):
    """Rank ``root``'s pytree of arrays, on every rank (e.g. the initial parameters).

    Every rank passes a tree of the same structure, shapes and dtypes (its own values are ignored except on
    ``root``; checked as in ``allreduce``). One collective per (backend, dtype).
    """
    w = world()
    if not 0 <= root < w.size:
        raise ValueError(f"gpuad.distributed.broadcast: root {root} is not a rank of this {w.size}-process world")
    arrays, treedef, numbers = _leaves(tree, "broadcast")
    _exchange(w, "broadcast", _describe(f"broadcast(root={root})", arrays, treedef))
    results = [None] * len(arrays)
    for module, dtype, indices in _groups(arrays):
        buffer = _pack(module, dtype, [arrays[i] for i in indices])
        if buffer.size:
            _transport_bcast(w, module, buffer, root)
        for i, r in zip(indices, _unpack(buffer, [arrays[i].shape for i in indices])):
            results[i] = r
    return _rebuild(treedef, results, numbers)


def shard_bounds(n: int, rank: int | None = None, size: int | None = None) -> tuple[int, int]:
    """(start, stop) of ``rank``'s part of ``n`` items split over ``size`` ranks (default: this world's).

    The first ``n % size`` ranks get one item more than the others (as ``numpy.array_split``).
    """
    if rank is None or size is None:
        w = world()
        rank = w.rank if rank is None else rank
        size = w.size if size is None else size
    q, r = divmod(int(n), size)
    start = rank * q + min(rank, r)
    return start, start + q + (1 if rank < r else 0)


def shard(array, axis: int = 0):
    """This rank's slice of ``array`` (the global batch) along ``axis``: a view, sizes as ``numpy.array_split``."""
    ndim = len(array.shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"gpuad.distributed.shard: axis {axis} is out of range for an array of {ndim} dimensions")
    axis %= ndim
    start, stop = shard_bounds(array.shape[axis])
    return array[(slice(None),) * axis + (slice(start, stop),)]


# ---- data-parallel gradients ---------------------------------------------------------------------------------

def value_and_grad(fun, argnums=0, batch_argnums=None, has_aux=False, *, reduction: str = "mean",
                   batch_axis: int = 0):
    """``gpuad.value_and_grad`` of a loss over a batch split across the ranks.

    Each rank calls the returned function with the same parameters (``args[argnums]``) and its own shard of the
    batch (the arguments ``batch_argnums``: default every positional argument not in ``argnums``; every leaf of
    them has the rank's examples along ``batch_axis``, e.g. from ``shard``). Each rank differentiates ``fun`` on
    its shard; the values and gradients are then summed over the ranks (one packed all-reduce per dtype), and
    every rank gets the value and gradient of the loss over the *whole* batch:

    - ``reduction="mean"`` (default): ``fun`` returns the mean over its rows; rank ``r``'s value and gradient are
      weighted by ``n_r / N`` (its rows over the global count) before the sum, so uneven shards give exactly the
      full-batch mean's value and gradient.
    - ``reduction="sum"``: ``fun`` returns the sum over its rows; values and gradients are summed as they are.

    Keyword arguments are passed to ``fun`` unchanged on every rank (they are never batch arguments). Terms of the
    loss that do not come from rows (a weight penalty, say) must be divided by the number of ranks
    for ``"sum"``, and are counted exactly once for ``"mean"`` (the weights add up to one). With
    ``has_aux=True`` the aux value is this rank's own, not reduced (``allreduce`` it if needed). Every rank needs
    at least one row. Returns ``(value, grads)`` (``((value, aux), grads)`` with ``has_aux``) like
    ``gpuad.value_and_grad``, identical on every rank.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"gpuad.distributed.value_and_grad: reduction must be 'mean' or 'sum', not {reduction!r}")
    import gpuad
    local = gpuad.value_and_grad(fun, argnums=argnums, has_aux=has_aux)
    diff = {argnums} if isinstance(argnums, int) else set(argnums)

    @functools.wraps(fun)
    def distributed_value_and_grad(*args, **kwargs):
        nums = [n for n in range(len(args)) if n not in diff] if batch_argnums is None else (
            [batch_argnums] if isinstance(batch_argnums, int) else list(batch_argnums))
        n_local = _local_rows(args, nums, batch_axis) if reduction == "mean" else None
        value, grads = local(*args, **kwargs)
        aux = None
        if has_aux:
            value, aux = value
        rows = n_local if reduction == "mean" else None
        value, grads = _reduce((value, grads), "sum", "value_and_grad", rows=rows)
        return ((value, aux) if has_aux else value), grads

    return distributed_value_and_grad


def _local_rows(args, nums, axis) -> int:
    rows = None
    for n in nums:
        if not -len(args) <= n < len(args):
            raise ValueError(f"gpuad.distributed.value_and_grad: batch_argnums names argument {n}, but the function "
                             f"was called with {len(args)}")
        for leaf in _tree.flatten(args[n])[0]:
            shape = getattr(leaf, "shape", None)
            if shape is None or len(shape) == 0:
                raise ValueError(f"gpuad.distributed.value_and_grad: argument {n} is a batch argument, but it has a "
                                 f"leaf without a batch axis ({type(leaf).__name__}); leave it out of batch_argnums")
            count = shape[axis]
            if rows is not None and count != rows:
                raise ValueError(f"gpuad.distributed.value_and_grad: the batch arguments disagree on the number of "
                                 f"rows along axis {axis}: {rows} and {count}")
            rows = count
    if rows is None:
        raise ValueError("gpuad.distributed.value_and_grad: no batch argument (batch_argnums) to count rows in")
    return int(rows)
