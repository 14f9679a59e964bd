#!/usr/bin/env python3
"""Peers of `tessera-bench array`: the same array computations through dask.array
and NumPy (the CPU cases) and CuPy (the GPU cases).

    array_peers.py CASE --n N --chunk C [--threads T] [--runs R] [--seed S]
                   [--lib both|dask|numpy|cupy] [--gpu G] [--limit-bytes B]

CASE, and what is timed (the data is made before and is not timed):
  mean_x_plus_xt     (x + x.T).mean(axis=0), x random float64 N x N, chunks C x C
  sum_f32            x.sum(), x random float32 of N elements, chunks of C
  matmul_f64         x @ y, x and y random float64 N x N, chunks C x C
  elementwise_chain  sqrt(abs(x * 1.5 + 0.5)) * x - 2 (6 ops), x random float32 of
                     N elements, chunks of C; the result is a new array of N float32
  math_chain         cos(log(exp(sin(x)) + 1) * x) (6 ops), x as for elementwise_chain
  sum_spill          (cupy only) x.sum(), x random float32 of N elements, with the
                     memory pool limited to B bytes (--limit-bytes)

dask: x is made with dask.array.random and .persist()ed before the timing (the
threaded scheduler, T workers, BLAS single-threaded in each); a run is building the
expression and .compute() into a NumPy array. NumPy: x is an in-memory array; a run
is the expression (NumPy's elementwise ops and reductions use one thread; matmul
uses T BLAS threads). CuPy (--lib cupy, GPU G): x is a CuPy array made with
cupy.random before the timing; a run is the expression as a user writes it, its
result left on the device, timed up to the return of cupy.cuda.Device().synchronize()
(chunks are ignored). sum_spill sets the default memory pool's limit to B and makes
x: with x larger than B that raises OutOfMemoryError, reported as the version "oom"
(else x.sum() is timed as the other cases are). One untimed warm-up run, then R
timed runs.

Output, one line per library (the protocol of bench/bench_peer.h):
    case=CASE.LIB=VERSION value=MEDIAN_SECONDS spread=MAX_MINUS_MIN n=R
    case=CASE.LIB.checksum value=MEAN_OF_RESULT spread=0 n=1
and a JSON line per library with the same figures. A library that cannot be
imported gives `case=CASE.LIB=missing value=nan spread=nan n=0` and a note on stderr
("failed" for a run that raised, "oom" as above, "nodevice" when CuPy finds no GPU);
the exit status is 0 all the same. With --lib both (the default) each library runs
in a child process of its own, one after the other, so that their memory is freed
in between and each sets its own BLAS thread count before NumPy is imported.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = ("mean_x_plus_xt", "sum_f32", "matmul_f64", "elementwise_chain", "math_chain",
         "sum_spill")
LIBS = ("numpy", "dask")
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("case", choices=CASES)
    p.add_argument("--n", type=float, required=True,
                   help="rows = columns (2-D cases) or elements (1-D cases)")
    p.add_argument("--chunk", type=float, required=True,
                   help="chunk size along every dimension")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--lib", choices=("both", "cupy") + LIBS, default="both")
    p.add_argument("--gpu", type=int, default=0, help="CUDA ordinal of the GPU (cupy)")
    p.add_argument("--limit-bytes", type=float, default=0,
                   help="sum_spill: the memory pool's limit in bytes")
    a = p.parse_args(argv)
    a.n = int(a.n)
    a.chunk = int(a.chunk)
    a.limit_bytes = int(a.limit_bytes)
    if a.n < 1 or a.chunk < 1 or a.threads < 1 or a.runs < 1:
        p.error("--n, --chunk, --threads and --runs must be >= 1")
    if (a.case == "sum_spill") != (a.lib == "cupy" and a.limit_bytes > 0):
        p.error("sum_spill runs with --lib cupy and --limit-bytes, and only it has a limit")
    return a


def emit(case, lib, version, times, checksum):
    """Print the peer-protocol lines and the JSON line of one library."""
    if times:
        med = statistics.median(times)
        spread = max(times) - min(times)
        print(f"case={case}.{lib}={version} value={med:.9g} spread={spread:.9g} n={len(times)}")
        print(f"case={case}.{lib}.checksum value={checksum:.17g} spread=0 n=1")
    else:
        med = spread = None
        print(f"case={case}.{lib}={version} value=nan spread=nan n=0")
    print(json.dumps({"peer": lib, "version": version, "case": case, "seconds": med,
                      "spread": spread, "n": len(times), "runs": times,
                      "checksum": checksum}))
    sys.stdout.flush()


def timed(fn, runs):
    """One untimed warm-up, then `runs` timed calls; returns (times, last result)."""
    out = fn()
    times = []
    for _ in range(runs):
        out = None  # the previous result is freed before the next run
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def checksum_of(np, out):
    return float(np.mean(np.asarray(out, dtype=np.float64)))


def run_numpy(a):
    os.environ.update({k: str(a.threads) for k in BLAS_THREAD_VARS})
    try:
        import numpy as np
    except ImportError as e:
        print(f"array_peers: numpy not available: {e}", file=sys.stderr)
        emit(a.case, "numpy", "missing", [], None)
        return
    rng = np.random.default_rng(a.seed)
    n = a.n
    if a.case == "mean_x_plus_xt":
        x = rng.random((n, n))
        fn = lambda: (x + x.T).mean(axis=0)
    elif a.case == "sum_f32":
        x = rng.random(n, dtype=np.float32)
        fn = lambda: x.sum()
    elif a.case == "matmul_f64":
        x = rng.random((n, n))
        y = rng.random((n, n))
        fn = lambda: x @ y
    elif a.case == "math_chain":
        x = rng.random(n, dtype=np.float32)
        fn = lambda: np.cos(np.log(np.exp(np.sin(x)) + 1) * x)
    else:
        x = rng.random(n, dtype=np.float32)
        fn = lambda: np.sqrt(np.abs(x * 1.5 + 0.5)) * x - 2
    times, out = timed(fn, a.runs)
    emit(a.case, "numpy", np.__version__, times, checksum_of(np, out))


def run_dask(a):
    # Each of the dask workers runs single-threaded kernels, as Tessera's do.
    os.environ.update({k: "1" for k in BLAS_THREAD_VARS})
    try:
        import numpy as np
        import dask
        import dask.array as da
    except ImportError as e:
        print(f"array_peers: dask.array not available: {e}", file=sys.stderr)
        emit(a.case, "dask", "missing", [], None)
        return
    n, c = a.n, a.chunk

    def random(shape, chunks, dtype, seed):
        # dask.array.random.default_rng came in dask 2023.2; Debian 12 has 2022.12.
        if hasattr(da.random, "default_rng"):
            return da.random.default_rng(seed).random(shape, chunks=chunks, dtype=dtype)
        return da.random.RandomState(seed).random_sample(shape, chunks=chunks).astype(dtype)

    with dask.config.set(scheduler="threads", num_workers=a.threads):
        if a.case in ("mean_x_plus_xt", "matmul_f64"):
            x = random((n, n), (c, c), np.float64, a.seed).persist()
            y = None
            if a.case == "matmul_f64":
                y = random((n, n), (c, c), np.float64, a.seed + 1).persist()
        else:
            x = random(n, c, np.float32, a.seed).persist()
        if a.case == "mean_x_plus_xt":
            fn = lambda: (x + x.T).mean(axis=0).compute()
        elif a.case == "sum_f32":
            fn = lambda: x.sum().compute()
        elif a.case == "matmul_f64":
            fn = lambda: (x @ y).compute()
        elif a.case == "math_chain":
            fn = lambda: da.cos(da.log(da.exp(da.sin(x)) + 1) * x).compute()
        else:
            fn = lambda: (da.sqrt(da.abs(x * 1.5 + 0.5)) * x - 2).compute()
        times, out = timed(fn, a.runs)
    emit(a.case, "dask", dask.__version__, times, checksum_of(np, out))


def cupy_timed(cp, fn, runs):
    """timed() for GPU work: each call is followed by a device synchronise inside
    its timed region; the device is idle when a region starts."""
    dev = cp.cuda.Device()
    out = fn()
    dev.synchronize()
    times = []
    for _ in range(runs):
        out = None  # the previous result goes back to the memory pool first
        dev.synchronize()
        t0 = time.perf_counter()
        out = fn()
        dev.synchronize()
        times.append(time.perf_counter() - t0)
    return times, out


def cupy_spill(cp, a):
    """x of a.n float32 with the pool limited to a.limit_bytes, then summed as the
    other cases run (when x fits after all)."""
    cp.get_default_memory_pool().set_limit(size=a.limit_bytes)
    rng = cp.random.default_rng(a.seed)
    try:
        x = rng.random(a.n, dtype=cp.float32)
    except cp.cuda.memory.OutOfMemoryError as e:
        print(f"array_peers: cupy: {a.case}: OutOfMemoryError making x of {a.n * 4} bytes "
              f"under a {a.limit_bytes}-byte pool limit: {e}", file=sys.stderr)
        emit(a.case, "cupy", "oom", [], None)
        return
    times, out = cupy_timed(cp, lambda: x.sum(), a.runs)
    emit(a.case, "cupy", cp.__version__, times, float(out))


def cupy_case(cp, a):
    """The expression of a.case on CuPy arrays made here, as a function."""
    rng = cp.random.default_rng(a.seed)
    n = a.n
    if a.case == "mean_x_plus_xt":
        x = rng.random((n, n))
        return lambda: (x + x.T).mean(axis=0)
    if a.case == "sum_f32":
        x = rng.random(n, dtype=cp.float32)
        return lambda: x.sum()
    if a.case == "matmul_f64":
        x = rng.random((n, n))
        y = rng.random((n, n))
        return lambda: x @ y
    x = rng.random(n, dtype=cp.float32)
    if a.case == "math_chain":
        return lambda: cp.cos(cp.log(cp.exp(cp.sin(x)) + 1) * x)
    return lambda: cp.sqrt(cp.abs(x * 1.5 + 0.5)) * x - 2


def run_cupy(a):
    try:
        import cupy as cp
    except ImportError as e:
        print(f"array_peers: cupy not available: {e}", file=sys.stderr)
        emit(a.case, "cupy", "missing", [], None)
        return
    try:
        if cp.cuda.runtime.getDeviceCount() <= a.gpu:
            raise RuntimeError(f"no GPU {a.gpu}")
    except Exception as e:  # CUDARuntimeError without a driver or a GPU
        print(f"array_peers: cupy: no CUDA device: {e}", file=sys.stderr)
        emit(a.case, "cupy", "nodevice", [], None)
        return
    with cp.cuda.Device(a.gpu):
        if a.case == "sum_spill":
            cupy_spill(cp, a)
            return
        times, out = cupy_timed(cp, cupy_case(cp, a), a.runs)
        emit(a.case, "cupy", cp.__version__, times, float(out.astype(cp.float64).mean()))


def main(argv):
    a = parse_args(argv)
    if a.lib == "cupy":
        try:
            run_cupy(a)
        except Exception as e:  # a failed run is a note, not a failure of the bench
            print(f"array_peers: cupy: {a.case} failed: {type(e).__name__}: {e}",
                  file=sys.stderr)
            emit(a.case, "cupy", "failed", [], None)
        return 0
    if a.lib == "numpy":
        run_numpy(a)
        return 0
    if a.lib == "dask":
        run_dask(a)
        return 0
    for lib in LIBS:
        sys.stdout.flush()
        child = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv
                               + ["--lib", lib], check=False)
        if child.returncode != 0:
            print(f"array_peers: {lib} run exited with status {child.returncode}",
                  file=sys.stderr)
            emit(a.case, lib, "failed", [], None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
