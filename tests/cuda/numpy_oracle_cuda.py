#!/usr/bin/env python3
"""The NumPy oracle (tests/array/numpy_oracle.py) with the array kernels on a GPU.

    numpy_oracle_cuda.py --lib build/libtessera.so [oracle arguments]

Exits 77 (CTest's skip code here) when the runtime finds no CUDA device. Else
runs the oracle with a trace (TESSERA_TRACE) and its own exit status, and fails
if no array task ran on a CUDA worker: the environment (TESSERA_NCPUS=1,
TESSERA_SCHED=eager) leaves the GPU most of the work, and the CPU worker the
rest, so partials made on one device are combined on the other too.
"""
import ctypes as C
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
KIND_CUDA = 1


class DeviceInfo(C.Structure):
    _fields_ = [("kind", C.c_uint32), ("kind_index", C.c_uint32), ("mem_node", C.c_uint32),
                ("n_workers", C.c_uint32), ("mem_bytes", C.c_uint64), ("name", C.c_char * 32),
                ("model", C.c_char * 64)]


def cuda_devices(lib_path):
    """Names of the CUDA devices a runtime started here finds, and why none."""
    lib = C.CDLL(lib_path)
    lib.tsr_init.argtypes = [C.c_void_p, C.POINTER(C.c_void_p)]
    lib.tsr_shutdown.argtypes = [C.c_void_p]
    lib.tsr_runtime_n_devices.argtypes = [C.c_void_p]
    lib.tsr_runtime_n_devices.restype = C.c_uint32
    lib.tsr_runtime_device_info.argtypes = [C.c_void_p, C.c_uint32, C.POINTER(DeviceInfo)]
    lib.tsr_device_kind_absent_reason.argtypes = [C.c_uint32]
    lib.tsr_device_kind_absent_reason.restype = C.c_char_p
    env_trace = os.environ.pop("TESSERA_TRACE", None)
    rt = C.c_void_p()
    if lib.tsr_init(None, C.byref(rt)) != 0:
        sys.exit("numpy_oracle_cuda: tsr_init failed")
    names = []
    for d in range(lib.tsr_runtime_n_devices(rt)):
        info = DeviceInfo()
        if lib.tsr_runtime_device_info(rt, d, C.byref(info)) == 0 and info.kind == KIND_CUDA:
            names.append("%s (%s)" % (info.name.decode(), info.model.decode()))
    why = lib.tsr_device_kind_absent_reason(KIND_CUDA).decode()
    lib.tsr_shutdown(rt)
    if env_trace is not None:
        os.environ["TESSERA_TRACE"] = env_trace
    return names, why


def tasks_per_device(trace_path):
    """Task spans per device name ("cuda0", "cpu") in a Chrome trace."""
    with open(trace_path) as f:
        events = json.load(f)["traceEvents"]
    device_of = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            device_of[e["tid"]] = e["args"]["name"].split(" ")[0]
    counts = {}
    for e in events:
        if e.get("cat") == "task" and str(e.get("name", "")).startswith("array_"):
            dev = device_of.get(e["tid"], "?")
            counts[dev] = counts.get(dev, 0) + 1
    return counts


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "--lib":
        sys.exit(__doc__)
    lib_path = sys.argv[2]
    names, why = cuda_devices(lib_path)
    if not names:
        print("numpy_oracle_cuda: skipped, no CUDA device (%s)" % (why or "none found"))
        return SKIP
    print("numpy_oracle_cuda: on %s" % ", ".join(names))
    oracle = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "array",
                          "numpy_oracle.py")
    with tempfile.TemporaryDirectory(prefix="tsr_oracle_cuda") as tmp:
        trace = os.path.join(tmp, "trace.json")
        env = dict(os.environ, TESSERA_TRACE=trace)
        rc = subprocess.call([sys.executable, oracle, "--lib", lib_path] + sys.argv[3:], env=env)
        counts = tasks_per_device(trace) if os.path.exists(trace) else {}
    on_gpu = sum(n for dev, n in counts.items() if dev.startswith("cuda"))
    print("numpy_oracle_cuda: array tasks per device: %s" %
          (", ".join("%s %d" % kv for kv in sorted(counts.items())) or "none traced"))
    if rc == 0 and on_gpu == 0:
        print("numpy_oracle_cuda: FAIL: no array task ran on a CUDA device")
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
