"""Run under ``mpiexec -n N`` by tests/test_distributed.py (or alone, a one-process world): one scenario per run.

    mpiexec -n 3 python tests/distributed_worker.py grads      # value_and_grad == the full-batch gradient
    mpiexec -n 3 python tests/distributed_worker.py trees      # allreduce/broadcast of mixed-dtype pytrees
    mpiexec -n 3 python tests/distributed_worker.py mismatch   # disagreeing ranks: a ValueError on every rank
    mpiexec -n 3 python tests/distributed_worker.py fail       # rank 1 raises: the whole job ends, naming it
    mpiexec -n 3 python tests/distributed_worker.py exit       # rank 1 calls sys.exit(3) inside dist.guard()
    mpiexec -n 3 python tests/distributed_worker.py crash      # rank 1 dies with os._exit(3)

Each rank prints ``rank R: OK <scenario>`` at the end of a scenario that passed (checks are asserts: a failed
check is an uncaught exception, which aborts the job).
"""
import os
import sys

import numpy as np

import gpuad
import gpuad.distributed as dist
import gpuad.nn
import gpuad.numpy as gnp

TOL = 1e-12


def mlp_loss(params, x, labels):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = gnp.tanh(h)
    return gpuad.nn.softmax_cross_entropy(h, labels)


def mlp_sum_loss(params, x, labels):
    return mlp_loss(params, x, labels) * x.shape[0]


def linalg_loss(params, data):
    """Mean over examples of log|det(M_i)| + c . solve(M_i, b_i), M_i = X_i A A^T X_i^T + I (SPD)."""
    a, c = params["A"], params["c"]
    x, b = data["X"], data["b"]
    xa = x @ a
    m = xa @ gnp.swapaxes(xa, -1, -2) + gnp.eye(x.shape[-2])
    logdet = gnp.linalg.slogdet(m)[1]
    z = gnp.linalg.solve(m, b[..., None])[..., 0]
    return gnp.mean(logdet + gnp.sum(z * c, axis=-1)), gnp.sum(logdet)


def close(a, b, tol=TOL):
    la, ta = gpuad.tree.flatten(a)
    lb, tb = gpuad.tree.flatten(b)
    assert ta == tb, (ta, tb)
    for u, v in zip(la, lb):
        u, v = np.asarray(u), np.asarray(v)
        assert u.shape == v.shape and u.dtype == v.dtype, (u.shape, v.shape, u.dtype, v.dtype)
        err = np.max(np.abs(u - v) / (1 + np.abs(v))) if u.size else 0.0
        assert err <= tol, f"relative error {err:.3g} > {tol:.0e}"


def grads(w):
    rng = np.random.default_rng(0)  # the same global data and parameters on every rank
    n = 23  # uneven over 2 and 3 ranks
    sizes = [(7, 16), (16, 12), (12, 5)]
    params = [(rng.normal(size=s) / np.sqrt(s[0]), rng.normal(size=s[1]) * 0.1) for s in sizes]
    x = rng.normal(size=(n, 7))
    labels = rng.integers(0, 5, size=n)

    start, stop = dist.shard_bounds(n)
    assert dist.shard(x).shape[0] == stop - start and np.array_equal(dist.shard(x), x[start:stop])

    # the MLP loss, mean over rows: every parameter, uneven shards
    full = gpuad.value_and_grad(mlp_loss)(params, x, labels)
    got = dist.value_and_grad(mlp_loss, batch_argnums=(1, 2))(params, dist.shard(x), dist.shard(labels))
    close(got, full)
    # default batch_argnums (every argument but argnums), sum reduction
    full = gpuad.value_and_grad(mlp_sum_loss)(params, x, labels)
    got = dist.value_and_grad(mlp_sum_loss, reduction="sum")(params, dist.shard(x), dist.shard(labels))
    close(got, full)

    # a linear-algebra loss with pytree parameters and a pytree batch, has_aux (aux stays per rank)
    lparams = {"A": rng.normal(size=(4, 3)), "c": rng.normal(size=5)}
    data = {"X": rng.normal(size=(n, 5, 4)), "b": rng.normal(size=(n, 5))}
    mine = {k: dist.shard(v) for k, v in data.items()}
    (value, aux), g = dist.value_and_grad(linalg_loss, has_aux=True)(lparams, mine)
    (full_value, _), full_g = gpuad.value_and_grad(linalg_loss, has_aux=True)(lparams, data)
    close((value, g), (full_value, full_g))
    (_, local_aux), _ = gpuad.value_and_grad(linalg_loss, has_aux=True)(lparams, mine)
    close(aux, local_aux)
    close(dist.allreduce(aux), full_value * 0 + np.sum(gpuad.value_and_grad(linalg_loss, has_aux=True)(
        lparams, data)[0][1]), tol=1e-10)

    # several argnums, batch along axis 1
    def by_columns(w1, w2, xt):
        return gnp.mean(gnp.tanh(w1 @ xt) * w2[:, None]) * xt.shape[0]
    w1, w2, xt = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=(4, n))
    got = dist.value_and_grad(by_columns, argnums=(0, 1), batch_axis=1)(w1, w2, dist.shard(xt, axis=1))
    close(got, gpuad.value_and_grad(by_columns, argnums=(0, 1))(w1, w2, xt))

    # float32 end to end: the result keeps float32, within float32 rounding
    p32 = [(a.astype(np.float32), b.astype(np.float32)) for a, b in params]
    v32, g32 = dist.value_and_grad(mlp_loss, batch_argnums=(1, 2))(p32, dist.shard(x.astype(np.float32)),
                                                                      dist.shard(labels))
    full = gpuad.value_and_grad(mlp_loss)(params, x, labels)
    assert np.asarray(v32).dtype == np.float32 and all(a.dtype == np.float32 for a in gpuad.tree.flatten(g32)[0])
    close((np.float64(v32), [(a.astype(np.float64), b.astype(np.float64)) for a, b in g32]), full, tol=1e-5)


class CountingComm:
    """An mpi4py communicator that counts its collectives (to check that leaves are packed)."""

    def __init__(self, comm):
        self.comm, self.calls = comm, []

    def __getattr__(self, name):
        attr = getattr(self.comm, name)
        if callable(attr) and name[:1].isupper() and name not in ("Get_rank", "Get_size", "Split_type"):
            def counted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)
            return counted
        return attr


def trees(w):
    r, size = w.rank, w.size
    total = size * (size + 1) // 2  # sum over ranks of (rank + 1)
    tree = {
        "f64": np.arange(6.0).reshape(2, 3) * (r + 1),
        "f32": [np.full(4, 0.5, np.float32) * (r + 1), np.ones((2, 2), np.float32) * (r + 1)],
        "f16": np.full(3, r + 1, np.float16),
        "i64": (np.arange(5) * (r + 1), np.int64(r + 1)),
        "i8": np.full(2, r + 1, np.int8),
        "c128": np.array([1 + 2j, -1j]) * (r + 1),
        "scalar": float(r + 1), "count": r + 1,
        "empty": np.zeros((0, 3)), "zero_d": np.array(r + 1.0),
        "strided": (np.arange(12.0).reshape(3, 4) * (r + 1))[:, ::2],
    }
    out = dist.allreduce(tree)
    expect = {
        "f64": np.arange(6.0).reshape(2, 3) * total,
        "f32": [np.full(4, 0.5, np.float32) * total, np.ones((2, 2), np.float32) * total],
        "f16": np.full(3, total, np.float16), "i64": (np.arange(5) * total, np.int64(total)),
        "i8": np.full(2, total, np.int8), "c128": np.array([1 + 2j, -1j]) * total,
        "scalar": float(total), "count": total, "empty": np.zeros((0, 3)), "zero_d": np.array(total * 1.0),
        "strided": (np.arange(12.0).reshape(3, 4) * total)[:, ::2],
    }
    for k in expect:
        a, b = gpuad.tree.flatten(out[k])[0], gpuad.tree.flatten(expect[k])[0]
        assert gpuad.tree.flatten(out[k])[1] == gpuad.tree.flatten(expect[k])[1], k
        for u, v in zip(a, b):
            assert type(u) is type(v) or (isinstance(u, np.ndarray) and isinstance(v, np.ndarray)), (k, u, v)
            assert np.asarray(u).dtype == np.asarray(v).dtype and np.array_equal(u, v), (k, u, v)
    assert tree["f64"][0, 1] == r + 1  # the input is left alone

    floats = {"a": np.ones(3) * (r + 1), "b": [np.float32(r + 1), np.ones(2, np.complex64) * (r + 1)]}
    mean = dist.allreduce(floats, op="mean")
    assert np.allclose(mean["a"], total / size) and np.allclose(mean["b"][0], total / size)
    assert np.allclose(mean["b"][1], total / size) and mean["b"][1].dtype == np.complex64

    # rank 1's parameters (a mixed-dtype tree) everywhere; bool leaves travel too
    params = {"w": np.full((3, 2), float(r)), "n": np.arange(3, dtype=np.int32) + r, "mask": np.array([r % 2 == 1]),
              "h": np.full(2, r, np.float16)}
    root = min(1, size - 1)
    got = dist.broadcast(params, root=root)
    assert np.array_equal(got["w"], np.full((3, 2), root)) and np.array_equal(got["n"], np.arange(3) + root)
    assert got["mask"].dtype == bool and bool(got["mask"][0]) == (root == 1)
    assert got["h"].dtype == np.float16 and np.array_equal(got["h"], [root, root])

    # packing: one collective per dtype, plus the one fingerprint exchange (an Allgather)
    counting = CountingComm(w.comm)
    dist.init(counting)
    try:
        many = [np.ones(10) * i for i in range(20)] + [np.ones(3, np.float32) for _ in range(20)]
        dist.allreduce(many)
        assert sorted(counting.calls) == ["Allgather", "Allreduce", "Allreduce"], counting.calls
        counting.calls.clear()
        dist.broadcast(many)
        assert sorted(counting.calls) == ["Allgather", "Bcast", "Bcast"], counting.calls
    finally:
        dist.init(w.comm)

    for bad, message in ((lambda: dist.allreduce([np.array([True])]), "boolean"),
                         (lambda: dist.allreduce([np.arange(3)], op="mean"), "floating-point")):
        try:
            bad()
        except TypeError as e:
            assert message in str(e), e
        else:
            raise AssertionError("no TypeError")


def expect_error(w, name, fn, *needles):
    try:
        fn()
    except ValueError as e:
        text = str(e)
        for needle in needles:
            assert needle in text, (name, needle, text)
        print(f"rank {w.rank}: {name}: ValueError: {text}", flush=True)
    else:
        raise AssertionError(f"{name}: no error on rank {w.rank}")


def mismatch(w):
    r, last = w.rank, w.size - 1
    base = {"a": np.ones(3), "b": [np.ones((2, 2), np.float32)]}
    tree = dict(base, extra=np.ones(1)) if r == 1 else base  # rank 1: another structure
    expect_error(w, "structure", lambda: dist.allreduce(tree), "rank 1 passed a different", "'extra'")
    tree = {"a": np.ones(4 if r == last else 3), "b": base["b"]}  # the last rank: another shape
    expect_error(w, "shape", lambda: dist.allreduce(tree), f"rank {last} passed", "(4,)", "(3,)")
    tree = {"a": np.ones(3, np.float32 if r == 1 else np.float64), "b": base["b"]}
    expect_error(w, "dtype", lambda: dist.allreduce(tree), "rank 1 passed", "float32")
    tree = {"a": np.ones(3, np.float32 if r == 0 else np.float64), "b": base["b"]}  # rank 0 is the odd one
    expect_error(w, "rank 0", lambda: dist.allreduce(tree), "rank 0 passed" if w.size > 2 else "rank 1 passed")
    if r == 1:  # another operation altogether
        expect_error(w, "operation", lambda: dist.broadcast(base), "rank 1 passed", "broadcast")
    else:
        expect_error(w, "operation", lambda: dist.allreduce(base), "rank 1 passed", "broadcast")
    # a mean loss over a batch too small for every rank to get a row
    x = np.ones((w.size - 1, 2))
    step = dist.value_and_grad(lambda p, x: gnp.mean(x @ p), batch_argnums=1)
    expect_error(w, "empty shard", lambda: step(np.ones(2), dist.shard(x)), f"rank {last} got no rows")
    # everything still works afterwards
    assert np.array_equal(dist.allreduce(np.ones(2)), np.full(2, w.size))


def fail(w):
    dist.allreduce(np.ones(2))
    if w.rank == 1:
        raise RuntimeError("boom, on purpose")
    dist.allreduce(np.ones(2))  # the other ranks wait here for rank 1, which never comes
    raise AssertionError("unreachable: rank 1 failed")


def exit_(w):
    with dist.guard():
        dist.allreduce(np.ones(2))
        if w.rank == 1:
            sys.exit(3)
        dist.allreduce(np.ones(2))  # the other ranks wait here for rank 1
        raise AssertionError("unreachable: rank 1 exited")


def crash(w):
    dist.allreduce(np.ones(2))
    if w.rank == 1:
        os._exit(3)  # no Python exception at all: mpiexec itself ends the job
    dist.allreduce(np.ones(2))
    raise AssertionError("unreachable: rank 1 died")


def main():
    scenario = sys.argv[1]
    w = dist.init()
    scenarios = {"grads": grads, "trees": trees, "mismatch": mismatch, "fail": fail, "exit": exit_, "crash": crash}
    scenarios[scenario](w)
    dist.barrier()
    print(f"rank {w.rank}: OK {scenario} (size {w.size})", flush=True)


if __name__ == "__main__":
    main()
