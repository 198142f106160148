"""Weak scaling of data-parallel gradients (gpuad.distributed) and the all-reduce's throughput.

W2: the MLP loss 784 -> 1024 -> 1024 -> 10 (tanh, softmax cross-entropy, mean over rows), gradient with respect
to the three weight matrices (1.86 M float32, 7.5 MB), a batch of 4096 rows per process (weak scaling: the
global batch grows with the processes). Reports, on rank 0:

- time per step of ``gpuad.distributed.value_and_grad`` (median over steps),
- the same step split into the local forward + backward and the packed all-reduce of value and gradient (the
  all-reduce's share of the step; it includes waiting for the slowest rank),
- the all-reduce alone (after a barrier) on a tree of W2's gradient size: time, algorithm bandwidth (bytes /
  time) and bus bandwidth (bytes * 2 (n - 1) / n / time, NCCL's convention for a ring all-reduce).

Runs on the default backend (NumPy over MPI on the CPU; CuPy over NCCL with a GPU, one GPU per process by local
rank). On the CPU each process uses one BLAS thread unless the environment says otherwise, so that n processes
use n cores.

    mpiexec -n 1 python benchmarks/distributed_scaling.py
    mpiexec -n 2 python benchmarks/distributed_scaling.py [--batch 4096] [--steps 10] [--json out.json]
"""
import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads its BLAS
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import gpuad  # noqa: E402
import gpuad.distributed as dist  # noqa: E402
import gpuad.nn  # noqa: E402
import gpuad.numpy as gnp  # noqa: E402
from gpuad import backend  # noqa: E402

SIZES = (784, 1024, 1024, 10)


def loss(weights, x, labels):
    h = x
    for i, w in enumerate(weights):
        h = h @ w
        if i < len(weights) - 1:
            h = gnp.tanh(h)
    return gpuad.nn.softmax_cross_entropy(h, labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4096, help="rows per process (default 4096)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10, after one warm-up)")
    parser.add_argument("--repeat", type=int, default=20, help="timed all-reduces for the throughput")
    parser.add_argument("--json", help="also write the results (rank 0) to this file")
    args = parser.parse_args()

    w = dist.init()
    xp = backend.default_module()
    if xp.__name__ == "cupy":
        xp.cuda.Device(w.local_rank % xp.cuda.runtime.getDeviceCount()).use()

        def sync():
            xp.cuda.Device().synchronize()
    else:
        def sync():
            pass

    rng = np.random.default_rng(0)
    weights = [xp.asarray((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32))
               for a, b in zip(SIZES[:-1], SIZES[1:])]
    weights = dist.broadcast(weights)  # every rank starts from rank 0's parameters
    mine = np.random.default_rng(1 + w.rank)  # each rank its own rows
    x = xp.asarray(mine.standard_normal((args.batch, SIZES[0])).astype(np.float32))
    labels = xp.asarray(mine.integers(0, SIZES[-1], args.batch))
    n_params = sum(int(v.size) for v in weights)
    grad_bytes = n_params * 4

    step = dist.value_and_grad(loss, batch_argnums=(1, 2))
    local = gpuad.value_and_grad(loss)

    def timed(fn):
        dist.barrier()
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        return time.perf_counter() - t0, out

    step(weights, x, labels)  # warm-up
    step_times = [timed(lambda: step(weights, x, labels))[0] for _ in range(args.steps)]

    local_times, reduce_times = [], []
    for _ in range(args.steps):  # the same step in two timed halves
        t_local, (value, grads) = timed(lambda: local(weights, x, labels))
        t0 = time.perf_counter()  # no barrier: waiting for the slowest rank is part of the all-reduce's cost
        dist.allreduce((value, grads))
        sync()
        local_times.append(t_local)
        reduce_times.append(time.perf_counter() - t0)

    tree = [xp.ones(v.shape, xp.float32) for v in weights]  # W2's gradient size
    dist.allreduce(tree)
    allreduce_times = [timed(lambda: dist.allreduce(tree))[0] for _ in range(args.repeat)]

    t_step = statistics.median(step_times)
    t_local = statistics.median(local_times)
    t_reduce = statistics.median(reduce_times)
    t_allreduce = statistics.median(allreduce_times)
    results = {
        "benchmark": "weak scaling of W2's gradient (MLP 784-1024-1024-10, tanh, softmax cross-entropy, float32)",
        "processes": w.size, "batch_per_process": args.batch, "global_batch": args.batch * w.size,
        "backend": xp.__name__, "transport": "NCCL" if xp.__name__ == "cupy" else "MPI (mpi4py)",
        "host": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "blas_threads_per_process": os.environ.get("OPENBLAS_NUM_THREADS"),
        "gradient_floats": n_params, "gradient_bytes": grad_bytes,
        "step_s": t_step, "local_value_and_grad_s": t_local, "allreduce_in_step_s": t_reduce,
        "allreduce_share": t_reduce / (t_local + t_reduce),
        "allreduce_alone_s": t_allreduce,
        "allreduce_algbw_GBps": grad_bytes / t_allreduce / 1e9,
        "allreduce_busbw_GBps": grad_bytes * 2 * (w.size - 1) / w.size / t_allreduce / 1e9,
        "throughput_rows_per_s": args.batch * w.size / t_step,
    }
    if w.rank == 0:
        print(f"{results['benchmark']}; {w.size} process(es) x batch {args.batch}, {xp.__name__} over "
              f"{results['transport']}, {results['host']}")
        print(f"  step (dist.value_and_grad)      {t_step * 1e3:9.1f} ms   ({results['throughput_rows_per_s']:.0f} "
              f"rows/s)")
        print(f"  local value_and_grad            {t_local * 1e3:9.1f} ms")
        print(f"  all-reduce in the step          {t_reduce * 1e3:9.1f} ms   "
              f"({100 * results['allreduce_share']:.1f}% of the step)")
        print(f"  all-reduce alone, {grad_bytes / 1e6:.2f} MB     {t_allreduce * 1e3:9.2f} ms   "
              f"algbw {results['allreduce_algbw_GBps']:.2f} GB/s, busbw {results['allreduce_busbw_GBps']:.2f} GB/s")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
