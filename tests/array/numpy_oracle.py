#!/usr/bin/env python3
"""NumPy oracle for Tessera's chunked arrays (include/tessera/array.h).
Its Lib (the ctypes bindings) serves npy_check.py too.

Builds random expressions -- random shapes, chunkings, dtypes, broadcasting,
elementwise ops, scalars, casts, transposes, where, persist, and reductions over
random axes -- through the C API (ctypes on libtessera) and the same expression in
NumPy on the same inputs, and compares: exactly for integers and bools, to a tight
tolerance for floats. Every case is reproducible from --seed and its index.

    numpy_oracle.py --lib build/libtessera.so [--seed N] [--cases N]

The runtime comes from the environment (TESSERA_NCPUS, TESSERA_SIM_DEVICES, ...),
so one script checks CPU workers, simulated devices and CUDA alike.
"""
import argparse
import ctypes as C
import sys
import warnings

import numpy as np

MAX_DIMS = 8
DTYPES = ["bool", "uint8", "uint16", "int32", "int64", "float32", "float64"]
NP = {i: np.dtype(n) for i, n in enumerate(DTYPES)}
CODE = {np.dtype(n): i for i, n in enumerate(DTYPES)}
FLOATS = (5, 6)

BINOPS = ["add", "sub", "mul", "div", "pow", "minimum", "maximum",
          "lt", "le", "gt", "ge", "eq", "ne"]
UNOPS = ["neg", "abs", "sqrt", "exp", "log", "sin", "cos"]
REDOPS = ["sum", "prod", "min", "max", "mean", "var", "std", "any", "all", "argmin", "argmax"]


class Spec(C.Structure):
    _fields_ = [("dtype", C.c_int), ("ndim", C.c_uint32),
                ("shape", C.c_int64 * MAX_DIMS), ("chunks", C.c_int64 * MAX_DIMS)]


class ReduceOpts(C.Structure):
    _fields_ = [("n_axes", C.c_uint32), ("axes", C.c_int32 * MAX_DIMS),
                ("keepdims", C.c_uint32), ("ddof", C.c_double),
                ("split_every", C.c_uint32)]


class Slice(C.Structure):
    _fields_ = [("start", C.c_int64), ("stop", C.c_int64), ("step", C.c_int64),
                ("flags", C.c_uint32)]


SLICE_NONE = -(2 ** 63)
SLICE_INDEX = 1


class Lib:
    def __init__(self, path):
        self.L = C.CDLL(path)
        P = C.c_void_p
        PP = C.POINTER(C.c_void_p)
        sig = {
            "tsr_init": (C.c_int, [P, PP]),
            "tsr_shutdown": (None, [P]),
            "tsr_last_error": (C.c_char_p, []),
            "tsr_array_from_buffer": (C.c_int, [P, C.POINTER(Spec), P, C.c_size_t, C.c_uint32, PP]),
            "tsr_array_arange": (C.c_int, [P, C.c_int, C.c_double, C.c_double, C.c_double,
                                           C.c_int64, PP]),
            "tsr_array_linspace": (C.c_int, [P, C.c_int, C.c_double, C.c_double, C.c_int64,
                                             C.c_int64, PP]),
            "tsr_array_full": (C.c_int, [P, C.POINTER(Spec), C.c_double, PP]),
            "tsr_array_binary": (C.c_int, [C.c_int, P, P, PP]),
            "tsr_array_binary_scalar": (C.c_int, [C.c_int, P, C.c_double, C.c_uint32, PP]),
            "tsr_array_unary": (C.c_int, [C.c_int, P, PP]),
            "tsr_array_where": (C.c_int, [P, P, P, PP]),
            "tsr_array_cast": (C.c_int, [P, C.c_int, PP]),
            "tsr_array_transpose": (C.c_int, [P, C.POINTER(C.c_int32), PP]),
            "tsr_array_reduce": (C.c_int, [C.c_int, P, C.POINTER(ReduceOpts), PP]),
            "tsr_array_matmul": (C.c_int, [P, P, PP]),
            "tsr_array_compute": (C.c_int, [P, P, C.c_size_t]),
            "tsr_array_persist": (C.c_int, [P]),
            "tsr_array_release": (None, [P]),
            "tsr_array_dtype": (C.c_int, [P]),
            "tsr_array_ndim": (C.c_uint32, [P]),
            "tsr_array_dim": (C.c_int64, [P, C.c_uint32]),
            "tsr_array_num_chunks": (C.c_int64, [P, C.c_uint32]),
            "tsr_array_chunk_size": (C.c_int64, [P, C.c_uint32, C.c_int64]),
            "tsr_array_slice": (C.c_int, [P, C.c_uint32, C.POINTER(Slice), PP]),
            "tsr_array_expand_dims": (C.c_int, [P, C.c_int32, PP]),
            "tsr_array_concatenate": (C.c_int, [C.POINTER(C.c_void_p), C.c_uint32, C.c_int32, PP]),
            "tsr_array_stack": (C.c_int, [C.POINTER(C.c_void_p), C.c_uint32, C.c_int32, PP]),
            "tsr_array_rechunk": (C.c_int, [P, C.POINTER(C.c_int64), PP]),
            "tsr_array_reshape": (C.c_int, [P, C.c_uint32, C.POINTER(C.c_int64), PP]),
            "tsr_array_tensordot": (C.c_int, [P, P, C.c_int32, C.c_int32, PP]),
            "tsr_array_to_npy": (C.c_int, [P, C.c_char_p]),
            "tsr_array_from_npy": (C.c_int, [P, C.c_char_p, C.POINTER(C.c_int64), PP]),
            "tsr_array_to_raw": (C.c_int, [P, C.c_char_p]),
            "tsr_array_from_raw": (C.c_int, [P, C.c_char_p, C.POINTER(Spec), C.c_uint64, PP]),
        }
        for name, (res, args) in sig.items():
            f = getattr(self.L, name)
            f.restype = res
            f.argtypes = args
            setattr(self, name[4:], f)

    def error(self):
        return self.last_error().decode(errors="replace")

    def check(self, st, what):
        if st != 0:
            raise RuntimeError("%s failed (%d): %s" % (what, st, self.error()))


class Node:
    """A Tessera array and the NumPy value it must equal."""

    def __init__(self, handle, value, chunks, inexact=False):
        self.h = handle
        self.v = value
        # per dimension: the tuple of chunk sizes (a regular size is expanded)
        self.chunks = [c if isinstance(c, tuple) else regular_chunks(c, n)
                       for c, n in zip(chunks, value.shape)]
        self.inexact = inexact  # went through a transcendental op (ulps may differ)


def regular_chunks(c, n):
    if n == 0:
        return ()  # no chunks along an empty dimension
    c = min(c, n)
    return tuple([c] * (n // c) + ([n % c] if n % c else []))


def lib_chunks(lib, h):
    return [tuple(lib.array_chunk_size(h, d, i) for i in range(lib.array_num_chunks(h, d)))
            for d in range(lib.array_ndim(h))]


class Case:
    def __init__(self, lib, rt, rng, case_id):
        self.lib = lib
        self.rt = rt
        self.rng = rng
        self.id = case_id
        self.handles = []
        self.buffers = []  # borrowed inputs stay alive until the case ends

    def new(self, fn, *args):
        out = C.c_void_p()
        self.lib.check(fn(*args, C.byref(out)), fn.__name__)
        self.handles.append(out)
        return out

    def release(self):
        for h in self.handles:
            self.lib.array_release(h)
        self.handles = []

    # ---- leaves -------------------------------------------------------------------
    def random_values(self, dt, shape):
        r = self.rng
        if dt == np.bool_:
            return r.random(shape) < 0.5
        if dt.kind in "ui":
            info = np.iinfo(dt)
            lo, hi = (info.min, info.max) if r.random() < 0.3 else (max(info.min, -50), 50)
            return r.integers(lo, hi, size=shape, dtype=dt, endpoint=True)
        v = r.standard_normal(shape) * (10.0 ** r.integers(-2, 3))
        return v.astype(dt)

    def leaf(self, dt, shape, chunks):
        v = np.ascontiguousarray(self.random_values(dt, shape))
        s = Spec()
        s.dtype = CODE[np.dtype(dt)]
        s.ndim = len(shape)
        for d, (n, c) in enumerate(zip(shape, chunks)):
            s.shape[d] = n
            s.chunks[d] = c
        flags = int(self.rng.integers(0, 2))
        buf = v.copy()
        self.buffers.append(buf)
        h = self.new(self.lib.array_from_buffer, self.rt, C.byref(s),
                     buf.ctypes.data_as(C.c_void_p), buf.nbytes, flags)
        return Node(h, v, list(chunks))


def np_binop(op, x, y):
    with np.errstate(all="ignore"):
        if op == "add":
            return np.add(x, y)
        if op == "sub":
            return np.subtract(x, y)
        if op == "mul":
            return np.multiply(x, y)
        if op == "div":
            return np.true_divide(x, y)
        if op == "pow":
            return np.power(x, y)
        if op == "minimum":
            return np.minimum(x, y)
        if op == "maximum":
            return np.maximum(x, y)
        return getattr(np, {"lt": "less", "le": "less_equal", "gt": "greater",
                            "ge": "greater_equal", "eq": "equal", "ne": "not_equal"}[op])(x, y)


def np_unop(op, x):
    with np.errstate(all="ignore"):
        if op == "neg":
            return np.negative(x)
        if op == "abs":
            return np.abs(x)
        if x.dtype.kind in "bui":
            x = x.astype(np.float64 if x.dtype.itemsize >= 4 else np.float32)
        return getattr(np, op)(x)


def weak_scalar_type(adt, value):
    """Tessera's documented rule for a scalar beside an array of type adt."""
    if adt.kind == "f":
        return adt
    if float(value).is_integer():
        return np.dtype(np.int64) if adt == np.bool_ else adt
    return np.dtype(np.float64)


# The ops the CPU kernel fuses in registers (kernels/cpu/ew_fuse.c).
REGISTER_BINOPS = ["add", "sub", "mul", "div", "minimum", "maximum"]
REGISTER_UNOPS = ["neg", "abs", "sqrt"]


class Generator:
    """Random expressions over one universe shape, so operands broadcast together;
    most leaves share one chunking, some have their own (Tessera unifies them)."""

    def __init__(self, case):
        self.c = case
        r = case.rng
        nd = int(r.integers(1, 5))
        self.shape = [int(r.integers(1, 24 if nd < 3 else 9)) for _ in range(nd)]
        if r.random() < 0.15:  # past the kernels' 512-element blocks
            nd = int(r.integers(1, 3))
            self.shape = [int(r.integers(1, 3000))] if nd == 1 else \
                [int(r.integers(1, 90)), int(r.integers(300, 700))]
        if nd >= 2 and r.random() < 0.5:  # square, so transposes combine
            self.shape[-1] = self.shape[-2]
        if r.random() < 0.06:  # an empty array
            self.shape[int(r.integers(0, nd))] = 0
        self.chunks = [int(r.integers(1, max(n, 1) + 1)) for n in self.shape]
        # A quarter of the cases keep to one float type: programs the CPU kernel
        # runs in registers (its fused path) need every value of one float type.
        self.one_float = NP[int(r.integers(5, 7))] if r.random() < 0.25 else None
        if nd >= 2 and self.shape[-1] == self.shape[-2] and r.random() < 0.7:
            self.chunks[-1] = self.chunks[-2]
        self.pool = []
        self.log = []

    def pick_op(self, ops, register_ops):
        """An op of ops; in one-float cases mostly one the CPU runs in registers."""
        r = self.c.rng
        if self.one_float is not None and r.random() < 0.8:
            return register_ops[int(r.integers(0, len(register_ops)))]
        return ops[int(r.integers(0, len(ops)))]

    def pick_dtype(self):
        return NP[int(self.c.rng.integers(0, 7))]

    def new_leaf(self):
        r = self.c.rng
        shape = list(self.shape)
        chunks = list(self.chunks)
        # Broadcastable: drop leading dims, set some dims to 1.
        drop = int(r.integers(0, len(shape))) if r.random() < 0.3 else 0
        shape, chunks = shape[drop:], chunks[drop:]
        if r.random() < 0.3:
            chunks = [int(r.integers(1, max(n, 1) + 1)) for n in shape]
        for d in range(len(shape)):
            if r.random() < 0.2:
                shape[d], chunks[d] = 1, 1
        return self.c.leaf(self.one_float or self.pick_dtype(), tuple(shape), chunks)

    def aligned(self, a, b):
        """Whether a and b broadcast together."""
        sa, sb = a.v.shape, b.v.shape
        for i in range(1, min(len(sa), len(sb)) + 1):
            x, y = sa[-i], sb[-i]
            if x != y and x != 1 and y != 1:
                return False
        return True

    def pick(self):
        return self.pool[int(self.c.rng.integers(0, len(self.pool)))]

    def pick_aligned(self, a):
        cands = [b for b in self.pool if self.aligned(a, b)]
        return cands[int(self.c.rng.integers(0, len(cands)))] if cands else None

    def step(self):
        r = self.c.rng
        lib = self.c.lib
        kind = r.random()
        a = self.pick()
        if kind < 0.35:
            b = self.pick_aligned(a)
            if b is None:
                return
            op = self.pick_op(BINOPS, REGISTER_BINOPS)
            t = np.result_type(a.v.dtype, b.v.dtype)
            if t == np.bool_ and op in ("sub", "pow"):
                return
            if op == "pow" and t.kind in "ui":
                return  # negative or huge integer exponents: NumPy refuses or differs
            if op in ("lt", "le", "gt", "ge", "eq", "ne") and (a.inexact or b.inexact):
                return  # an ulp apart in a transcendental may flip a comparison
            h = self.c.new(lib.array_binary, BINOPS.index(op), a.h, b.h)
            self.log.append("%d = %s(%d, %d)" % (len(self.pool), op, self.pool.index(a), self.pool.index(b)))
            ref = np_binop(op, a.v, b.v)
            self.pool.append(Node(h, ref, self.unified_chunks(h, ref, [a, b]),
                                  a.inexact or b.inexact or op == "pow"))
        elif kind < 0.55:
            op = self.pick_op(BINOPS, REGISTER_BINOPS)
            dt = a.v.dtype
            if dt.kind in "bui":
                value = float(r.integers(0, 4 if op == "pow" else min(100, np.iinfo(dt).max if dt != np.bool_ else 1) + 1))
            else:
                value = float(np.round(r.standard_normal() * 4, 2))
            st = weak_scalar_type(dt, value)
            t = np.result_type(dt, st)
            if t == np.bool_ and op in ("sub", "pow"):
                return
            if op == "pow" and t.kind == "f" and dt.kind == "f":
                value = float(r.integers(0, 4))
            if op in ("lt", "le", "gt", "ge", "eq", "ne") and a.inexact:
                return
            left = int(r.integers(0, 2))
            sv = np.array(value, dtype=st)
            if op == "pow" and left:
                return  # scalar ** array: exponents from data
            h = self.c.new(lib.array_binary_scalar, BINOPS.index(op), a.h, value, left)
            self.log.append("%d = %s(%d, %r%s)" % (len(self.pool), op, self.pool.index(a), value, " left" if left else ""))
            ref = np_binop(op, sv, a.v) if left else np_binop(op, a.v, sv)
            self.pool.append(Node(h, ref, list(a.chunks), a.inexact or op == "pow"))
        elif kind < 0.7:
            op = self.pick_op(UNOPS, REGISTER_UNOPS)
            if op == "neg" and a.v.dtype == np.bool_:
                return
            if op == "exp" and a.v.dtype.kind in "bui":
                return  # exp of a large integer overflows to inf in both, but float32 rounding of inf-adjacent values differs
            if op in ("sin", "cos") and a.inexact and large_finite(a.v):
                return  # an ulp apart in a large argument (x ** x, say) is any other sine
            h = self.c.new(lib.array_unary, UNOPS.index(op), a.h)
            self.log.append("%d = %s(%d)" % (len(self.pool), op, self.pool.index(a)))
            self.pool.append(Node(h, np_unop(op, a.v), list(a.chunks),
                                  a.inexact or op in ("exp", "log", "sin", "cos")))
        elif kind < 0.78:
            # Casts NumPy defines: no float -> integer (out-of-range floats are undefined).
            src = a.v.dtype
            dst = self.pick_dtype()
            if src.kind == "f" and dst.kind in "ui":
                return
            if a.inexact and dst == np.bool_:
                return
            h = self.c.new(lib.array_cast, a.h, CODE[dst])
            self.log.append("%d = cast(%d, %s)" % (len(self.pool), self.pool.index(a), dst))
            with np.errstate(all="ignore"):
                self.pool.append(Node(h, a.v.astype(dst), list(a.chunks), a.inexact))
        elif kind < 0.86:
            b = self.pick_aligned(a)
            cond = self.pick_aligned(a)
            if b is None or cond is None or not self.aligned(b, cond) or cond.inexact:
                return
            h = self.c.new(lib.array_where, cond.h, a.h, b.h)
            self.log.append("%d = where(%d, %d, %d)" % (len(self.pool), self.pool.index(cond), self.pool.index(a), self.pool.index(b)))
            ref = np.where(cond.v.astype(bool), a.v, b.v)
            self.pool.append(Node(h, ref, self.unified_chunks(h, ref, [cond, a, b]),
                                  a.inexact or b.inexact))
        elif kind < 0.92:
            nd = a.v.ndim
            if nd < 2:
                return
            perm = [int(p) for p in r.permutation(nd)]
            arr = (C.c_int32 * MAX_DIMS)(*perm)
            h = self.c.new(lib.array_transpose, a.h, arr)
            self.log.append("%d = transpose(%d, %s)" % (len(self.pool), self.pool.index(a), perm))
            self.pool.append(Node(h, np.transpose(a.v, perm), [a.chunks[p] for p in perm],
                                  a.inexact))
        elif kind < 0.98:
            self.structure(a)
        else:
            lib.check(lib.array_persist(a.h), "persist")
            self.log.append("persist(%d)" % self.pool.index(a))

    def structure(self, a):
        """A slice, new axis, concatenation, stack or rechunk of a."""
        r = self.c.rng
        lib = self.c.lib
        nd = a.v.ndim
        k = r.random()
        ia = self.pool.index(a)
        if k < 0.35 and nd > 0:
            sl = (Slice * MAX_DIMS)()
            idx = []
            n_index = 0
            for d in range(nd):
                n = a.v.shape[d]
                if r.random() < 0.1 and n_index + 1 < nd and n > 0:
                    i = int(r.integers(-n, n))
                    sl[d].start, sl[d].stop, sl[d].step, sl[d].flags = i, 0, 1, SLICE_INDEX
                    idx.append(i)
                    n_index += 1
                    continue
                if r.random() < 0.4:
                    start, stop, step = None, None, 1
                else:
                    step = int(r.choice([-7, -3, -2, -1, 1, 1, 2, 3, 5]))
                    start = None if r.random() < 0.3 else int(r.integers(-n - 2, n + 3))
                    stop = None if r.random() < 0.3 else int(r.integers(-n - 2, n + 3))
                if len(range(*slice(start, stop, step).indices(n))) == 0 and r.random() < 0.7:
                    return
                sl[d].start = SLICE_NONE if start is None else start
                sl[d].stop = SLICE_NONE if stop is None else stop
                sl[d].step = step
                sl[d].flags = 0
                idx.append(slice(start, stop, step))
            h = self.c.new(lib.array_slice, a.h, nd, sl)
            self.log.append("%d = %d[%s]" % (len(self.pool), ia, idx))
            self.pool.append(Node(h, a.v[tuple(idx)], lib_chunks(lib, h), a.inexact))
        elif k < 0.47:
            ax = int(r.integers(-nd - 1, nd + 1))
            h = self.c.new(lib.array_expand_dims, a.h, ax)
            self.log.append("%d = expand_dims(%d, %d)" % (len(self.pool), ia, ax))
            self.pool.append(Node(h, np.expand_dims(a.v, ax), lib_chunks(lib, h), a.inexact))
        elif k < 0.72 and nd > 0:
            stack = k >= 0.64
            ax = int(r.integers(-nd - 1, nd + 1)) if stack else int(r.integers(-nd, nd))
            axn = ax % nd if not stack else None

            def fits(b):
                if b.v.ndim != nd:
                    return False
                for d in range(nd):
                    if d != axn and b.v.shape[d] != a.v.shape[d]:
                        return False
                return True
            cands = [b for b in self.pool if fits(b)]
            parts = [a] + [cands[int(i)] for i in r.integers(0, len(cands), size=int(r.integers(0, 3)))]
            arr = (C.c_void_p * len(parts))(*[b.h.value for b in parts])
            fn = lib.array_stack if stack else lib.array_concatenate
            h = self.c.new(fn, arr, len(parts), ax)
            ref = (np.stack if stack else np.concatenate)([b.v for b in parts], axis=ax)
            self.log.append("%d = %s(%s, axis=%d)" % (len(self.pool), "stack" if stack else "concatenate",
                                                      [self.pool.index(b) for b in parts], ax))
            got = lib_chunks(lib, h)
            if not stack:  # across ax the parts' chunks unified, along it one after the other
                want = []
                for d in range(nd):
                    if d == axn:
                        want.append(tuple(c for b in parts for c in b.chunks[d]))
                        continue
                    bounds = {0, ref.shape[d]}
                    for b in parts:
                        bounds.update(int(x) for x in np.cumsum(b.chunks[d]))
                    want.append(tuple(int(c) for c in np.diff(sorted(bounds))))
                if got != want:
                    raise RuntimeError("concatenation chunks %s, expected %s" % (got, want))
            self.pool.append(Node(h, ref, got, any(b.inexact for b in parts)))
        elif k < 0.86:
            self.reshape(a)
        else:
            ch = [int(r.choice([0, -1, int(r.integers(1, max(n, 1) + 1))])) for n in a.v.shape]
            arr = (C.c_int64 * MAX_DIMS)(*ch)
            h = self.c.new(lib.array_rechunk, a.h, arr)
            self.log.append("%d = rechunk(%d, %s)" % (len(self.pool), ia, ch))
            self.pool.append(Node(h, a.v, lib_chunks(lib, h), a.inexact))

    def reshape(self, a):
        """a reshaped to a shape made by merging, splitting, adding and dropping
        dimensions; where Tessera refuses, no chunk grid of the new shape may hold
        a's chunks (checked by brute force)."""
        r = self.c.rng
        lib = self.c.lib
        shape = random_reshape(r, list(a.v.shape))
        arg = list(shape)
        if arg and r.random() < 0.3:
            arg[int(r.integers(0, len(arg)))] = -1
        arr = (C.c_int64 * MAX_DIMS)(*arg)
        out = C.c_void_p()
        if a.v.size == 0:  # any chunks; a -1 beside a 0 is refused, as by NumPy
            st = lib.array_reshape(a.h, len(arg), arr, C.byref(out))
            ambiguous = -1 in arg and 0 in arg
            self.log.append("%d = reshape(%d, %s)%s" % (len(self.pool), self.pool.index(a), arg,
                                                        "" if st == 0 else " refused"))
            if (st != 0) != ambiguous:
                raise RuntimeError("reshape of an empty array to %s: status %d" % (arg, st))
            if st == 0:
                self.c.handles.append(out)
                self.pool.append(Node(out, a.v.reshape(shape), lib_chunks(lib, out), a.inexact))
            return
        want = reshape_grid(a.chunks, a.v.shape, shape)
        st = lib.array_reshape(a.h, len(arg), arr, C.byref(out))
        self.log.append("%d = reshape(%d, %s)%s" % (len(self.pool), self.pool.index(a), arg,
                                                    "" if st == 0 else " refused"))
        if st != 0:
            if want is not None:
                raise RuntimeError("reshape of chunks %s to %s refused (%s), but chunks %s fit"
                                   % (a.chunks, shape, lib.error(), want))
            return
        self.c.handles.append(out)
        got = lib_chunks(lib, out)
        if want is None or [tuple(c) for c in want] != got:
            raise RuntimeError("reshape of chunks %s to %s gave chunks %s, expected %s"
                               % (a.chunks, shape, got, want))
        self.pool.append(Node(out, a.v.reshape(shape), got, a.inexact))

    def unified_chunks(self, h, ref, operands):
        """h's chunks, which must be the unified chunks of the operands: along each
        dimension, every boundary of every operand not broadcast there."""
        want = []
        for d, n in enumerate(ref.shape):
            bounds = {0, n}
            for x in operands:
                i = d - (ref.ndim - x.v.ndim)
                if i >= 0 and x.v.shape[i] == n and n != 1:
                    bounds.update(int(b) for b in np.cumsum(x.chunks[i]))
            want.append(tuple(int(c) for c in np.diff(sorted(bounds))))
        got = lib_chunks(self.c.lib, h)
        if got != want:
            raise RuntimeError("chunks %s of %s, expected %s" % (got, ref.shape, want))
        return got


def random_reshape(r, s):
    """A shape of the same size: adjacent dimensions merged, one split, 1s added
    or dropped."""
    for _ in range(int(r.integers(1, 4))):
        k = r.random()
        if k < 0.35 and len(s) >= 2:
            i = int(r.integers(0, len(s) - 1))
            s[i:i + 2] = [s[i] * s[i + 1]]
        elif k < 0.7 and s and len(s) < MAX_DIMS and 0 not in s:
            i = int(r.integers(0, len(s)))
            divs = [f for f in range(1, s[i] + 1) if s[i] % f == 0]
            f = int(r.choice(divs))
            s[i:i + 1] = [f, s[i] // f]
        elif k < 0.85 and len(s) < MAX_DIMS:
            s.insert(int(r.integers(0, len(s) + 1)), 1)
        elif 1 in s:
            s.remove(1)
    return s


def reshape_grid(chunks, shape, new_shape):
    """The chunks of the reshape of an array of `shape` in `chunks` when each of its
    chunks becomes one box of a chunk grid of new_shape, else None: the chunk ids
    of the elements, reshaped; the grid's boundaries are where ids change."""
    ids = np.zeros(shape, dtype=np.int64)
    n_chunks = 1
    for d, c in enumerate(chunks):
        idx = np.repeat(np.arange(len(c)), c).reshape([-1 if i == d else 1 for i in range(len(shape))])
        ids = ids * len(c) + idx
        n_chunks *= len(c)
    new = ids.reshape(new_shape)
    box = np.zeros(new_shape, dtype=np.int64)
    grid = []
    for d in range(new.ndim):
        m = np.moveaxis(new, d, 0)
        cuts = [0] + [i for i in range(1, m.shape[0]) if (m[i] != m[i - 1]).any()] + [m.shape[0]]
        grid.append(tuple(int(y - x) for x, y in zip(cuts, cuts[1:])))
        idx = np.repeat(np.arange(len(cuts) - 1), np.diff(cuts)).reshape(
            [-1 if i == d else 1 for i in range(new.ndim)])
        box = box * (len(cuts) - 1) + idx
    pairs = set(zip(box.ravel().tolist(), new.ravel().tolist()))
    n_boxes = int(np.prod([len(g) for g in grid])) if grid else 1
    if len(pairs) != n_chunks or n_boxes != n_chunks:
        return None
    return grid


def reduce_ref(op, v, axes, keepdims, ddof):
    ax = tuple(axes) if axes else None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a mean of an empty axis is NaN
        if op in ("sum", "prod"):
            t = v.dtype if v.dtype.kind == "f" else np.int64
            return getattr(np, op)(v, axis=ax, keepdims=keepdims, dtype=t)
        if op in ("min", "max"):
            return getattr(np, op)(v, axis=ax, keepdims=keepdims)
        if op in ("any", "all"):
            return getattr(np, op)(v, axis=ax, keepdims=keepdims)
        if op in ("argmin", "argmax"):
            return getattr(np, op)(v, axis=axes[0] if axes else None, keepdims=keepdims).astype(np.int64)
        t = np.float32 if v.dtype == np.float32 else np.float64
        w = v.astype(np.float64)
        if op == "mean":
            r = np.mean(w, axis=ax, keepdims=keepdims)
        else:
            r = getattr(np, op)(w, axis=ax, keepdims=keepdims, ddof=ddof)
        return np.asarray(r).astype(t)


def large_finite(v):
    """Whether v has finite values large enough that an ulp of them (as libm's and
    NumPy's pow or exp may differ) moves their sine by more than the tolerance."""
    f = np.abs(v[np.isfinite(v)]) if v.dtype.kind == "f" else np.abs(v.astype(np.float64))
    return f.size > 0 and f.max() > (30.0 if v.dtype == np.float32 else 1000.0)


def compare(got, ref, node_inexact, what, scale=None):
    if got.dtype != ref.dtype:
        return "%s: dtype %s, expected %s" % (what, got.dtype, ref.dtype)
    if got.shape != ref.shape:
        return "%s: shape %s, expected %s" % (what, got.shape, ref.shape)
    if got.dtype.kind != "f":
        bad = got != ref
        if bad.any():
            i = np.argwhere(bad)[0]
            return "%s: at %s got %r, expected %r" % (what, tuple(i), got[tuple(i)], ref[tuple(i)])
        return None
    rtol = 2e-5 if got.dtype == np.float32 else 1e-11
    if node_inexact:
        rtol = 1e-4  # a transcendental in float32 somewhere upstream
    g = got.astype(np.float64)
    r = ref.astype(np.float64)
    mag = np.abs(r) if scale is None else scale
    same_nan = np.isnan(g) & np.isnan(r)
    same_inf = np.isinf(g) & (g == r)
    close = np.abs(g - r) <= rtol * (mag + 1e-30) + 1e-300
    # float32 results near its range may round to inf in one and a finite value in the other
    if got.dtype == np.float32:
        close |= (np.abs(r) > 3.0e38) & (np.abs(g) > 3.0e38)
    ok = same_nan | same_inf | close
    if not ok.all():
        i = tuple(np.argwhere(~ok)[0])
        return "%s: at %s got %r, expected %r" % (what, i, got[i], ref[i])
    return None


def compare_arg(got, ref, v, axes, keepdims, what):
    """argmin/argmax of float values Tessera computed itself: its values may differ
    from NumPy's in the last bits, so the index must point at an element whose
    NumPy value is the extreme (or a NaN when there is one), not at NumPy's index."""
    if got.dtype != ref.dtype or got.shape != ref.shape:
        return "%s: %s %s, expected %s %s" % (what, got.dtype, got.shape, ref.dtype, ref.shape)
    if axes:
        g = got if keepdims else np.expand_dims(got, axes[0])
        r = ref if keepdims else np.expand_dims(ref, axes[0])
        if (g < 0).any() or (g >= v.shape[axes[0]]).any():
            return "%s: index out of range" % what
        at = np.take_along_axis(v, g, axis=axes[0]).astype(np.float64)
        want = np.take_along_axis(v, r, axis=axes[0]).astype(np.float64)
    else:
        if got.item() < 0 or got.item() >= v.size:
            return "%s: index %d out of range" % (what, got.item())
        at = np.asarray(v.reshape(-1)[got.item()], dtype=np.float64)
        want = np.asarray(v.reshape(-1)[ref.item()], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = (np.isnan(at) & np.isnan(want)) | (at == want) | \
            (np.abs(at - want) <= 1e-4 * np.abs(want) + 1e-300)
    if not ok.all():
        i = tuple(np.argwhere(~np.asarray(ok))[0]) if np.ndim(ok) else ()
        return "%s: index points at %r, the extreme is %r" % (what, np.asarray(at)[i], np.asarray(want)[i])
    return None


def matmul_case(case, verbose):
    """a @ b of random matrices (a sometimes an expression), chunked alike along
    the inner dimension or (half the time) not, or their tensordot over a random pair of axes. Float
    operands, or (in 40% of cases) operands of any dtypes, promoted together:
    integer and bool results exactly as NumPy's (wrapping sums and products, an OR
    of ANDs for bools), float ones to a tolerance that scales with |a| @ |b|."""
    r = case.rng
    lib = case.lib
    m, k, n = (int(r.integers(1, 150)) if r.random() < 0.95 else 0 for _ in range(3))
    cm, ck, cn = (int(r.integers(1, max(x, 1) + 1)) for x in (m, k, n))
    ckb = ck if r.random() < 0.5 else int(r.integers(1, max(k, 1) + 1))
    lo = 0 if r.random() < 0.4 else 5
    dt = NP[int(r.integers(lo, 7))]
    dot = r.random() < 0.4
    ax_a, ax_b = (int(r.integers(0, 2)), int(r.integers(0, 2))) if dot else (1, 0)
    a = case.leaf(dt, (m, k) if ax_a == 1 else (k, m), [cm, ck] if ax_a == 1 else [ck, cm])
    b = case.leaf(NP[int(r.integers(lo, 7))], (k, n) if ax_b == 0 else (n, k),
                  [ckb, cn] if ax_b == 0 else [cn, ckb])
    av = a.v
    ah = a.h
    if r.random() < 0.5 and dt.kind == "f":
        ah = case.new(lib.array_binary_scalar, BINOPS.index("mul"), a.h, 0.5, 0)
        ah = case.new(lib.array_unary, UNOPS.index("abs"), ah)
        av = np.abs(a.v * np.array(0.5, dtype=a.v.dtype))
    elif dt.kind != "f" and r.random() < 0.5:
        # a * 3 in a's integer type (wrapping), or int64 for bools
        ah = case.new(lib.array_binary_scalar, BINOPS.index("mul"), a.h, 3.0, 0)
        av = np_binop("mul", a.v, np.array(3, dtype=weak_scalar_type(dt, 3.0)))
    if dot:
        h = case.new(lib.array_tensordot, ah, b.h, ax_a - 2 * int(r.integers(0, 2)), ax_b)
        av = av if ax_a == 1 else av.T
    else:
        h = case.new(lib.array_matmul, ah, b.h)
    bv = b.v if ax_b == 0 else b.v.T
    t = np.result_type(av.dtype, b.v.dtype)
    got = np.empty((m, n), dtype=NP[lib.array_dtype(h)])
    lib.check(lib.array_compute(h, got.ctypes.data_as(C.c_void_p), got.nbytes), "compute")
    what = "case %d %s %s (%d,%d)@(%d,%d) chunks %s" % (
        case.id, "tensordot axes (%d, %d)" % (ax_a, ax_b) if dot else "matmul", t, m, k, k, n,
        (cm, ck, ckb, cn))
    if got.dtype != t:
        return "%s: dtype %s, expected %s" % (what, got.dtype, t)
    if t.kind in "biu":
        with np.errstate(all="ignore"):
            ref = np.matmul(av.astype(t), bv.astype(t))
        bad = got != ref
    else:
        ref = av.astype(np.float64) @ bv.astype(np.float64)
        scale = np.abs(av.astype(np.float64)) @ np.abs(bv.astype(np.float64))
        eps = 1e-6 if t == np.float32 else 1e-14
        bad = np.abs(got.astype(np.float64) - ref) > eps * (k + 4) * (scale + 1e-300)
    if verbose:
        print(what, "FAIL" if bad.any() else "ok")
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        return "%s: at %s got %r, expected %r" % (what, i, got[i], ref[i])
    return None


def run_case(lib, rt, seed, case_id, verbose):
    rng = np.random.default_rng([seed, case_id])
    case = Case(lib, rt, rng, case_id)
    g = None
    try:
        if rng.random() < 0.12:
            return matmul_case(case, verbose)
        g = Generator(case)
        for _ in range(int(rng.integers(1, 4 if g.one_float is None else 6))):
            g.pool.append(g.new_leaf())
            v = g.pool[-1].v
            g.log.append("%d = leaf %s %s chunks %s" % (len(g.pool) - 1, v.dtype, v.shape, g.pool[-1].chunks))
        for _ in range(int(rng.integers(1, 12))):
            g.step()
        node = g.pool[-1]
        what = "case %d (seed %d)" % (case_id, seed)
        is_arg = False
        if rng.random() < 0.5:
            op = REDOPS[int(rng.integers(0, len(REDOPS)))]
            nd = node.v.ndim
            axes = sorted(set(int(x) for x in rng.integers(0, nd, size=int(rng.integers(0, nd + 1))))) if nd else []
            keepdims = bool(rng.integers(0, 2))
            ddof = float(rng.integers(0, 2)) if op in ("var", "std") else 0.0
            if op in ("prod",) and node.v.dtype.kind == "f":
                return None  # products of many floats over/underflow at different points
            if op in ("any", "all") and node.inexact:
                return None
            is_arg = op in ("argmin", "argmax")
            if is_arg and len(axes) > 1:
                axes = axes[:1]
            count = int(np.prod([node.v.shape[a] for a in axes])) if axes else node.v.size
            if op in ("var", "std") and count - ddof <= 0 and count > 0:
                return None
            o = ReduceOpts()
            o.n_axes = len(axes)
            for i, a in enumerate(axes):
                o.axes[i] = a if rng.random() < 0.5 else a - nd
            o.keepdims = int(keepdims)
            o.ddof = ddof
            o.split_every = int(rng.integers(2, 9)) if rng.random() < 0.7 else 0
            try:
                ref = reduce_ref(op, node.v, axes, keepdims, ddof)
            except ValueError:  # min, max, argmin, argmax of an empty axis
                out = C.c_void_p()
                st = lib.array_reduce(REDOPS.index(op), node.h, C.byref(o), C.byref(out))
                if st == 0:
                    case.handles.append(out)
                    return "%s: %s of an empty axis accepted\n  %s" % (what, op, "\n  ".join(g.log))
                return None
            h = case.new(lib.array_reduce, REDOPS.index(op), node.h, C.byref(o))
            ref = np.asarray(ref)
            scale = None
            if ref.dtype.kind == "f" and op in ("sum", "mean", "var", "std"):
                w = np.abs(node.v.astype(np.float64))
                ax = tuple(axes) if axes else None
                with np.errstate(all="ignore"):
                    s = np.sum(w, axis=ax, keepdims=keepdims)
                    if op == "mean":
                        s = s / count
                    elif op in ("var", "std"):
                        s = np.sum(w * w, axis=ax, keepdims=keepdims) / max(count - ddof, 1)
                        if op == "std":
                            s = np.sqrt(s)
                scale = np.asarray(s)
            what += " %s(axes=%s, keepdims=%s)" % (op, axes, keepdims)
            inexact = node.inexact
        else:
            h = node.h
            ref = node.v
            scale = None
            inexact = node.inexact
        ref = np.array(ref)  # (ascontiguousarray would make a 0-d result 1-d)
        dt = NP[lib.array_dtype(h)]
        shape = tuple(lib.array_dim(h, d) for d in range(lib.array_ndim(h)))
        got = np.empty(shape, dtype=dt)
        lib.check(lib.array_compute(h, got.ctypes.data_as(C.c_void_p), got.nbytes), "compute")
        if is_arg and node.v.dtype.kind == "f":
            err = compare_arg(got, ref, node.v, axes, keepdims, what)
        else:
            err = compare(got, ref, inexact, what, scale)
        if verbose or err:
            print("%s: %s %s %s\n  %s" % (what, "FAIL" if err else "ok", got.dtype, got.shape,
                                          "\n  ".join(g.log)))
        return err
    except RuntimeError as e:
        if g is None:
            raise
        raise RuntimeError("%s\n  %s" % (e, "\n  ".join(g.log))) from None
    finally:
        case.release()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    lib = Lib(args.lib)
    rt = C.c_void_p()
    lib.check(lib.init(None, C.byref(rt)), "tsr_init")
    failures = []
    try:
        for i in range(args.first, args.first + args.cases):
            try:
                err = run_case(lib, rt, args.seed, i, args.verbose)
            except RuntimeError as e:
                err = "case %d (seed %d): %s" % (i, args.seed, e)
            if err:
                failures.append(err)
                print("FAIL", err, flush=True)
    finally:
        lib.shutdown(rt)
    print("numpy oracle: %d cases, %d failed (seed %d)" % (args.cases, len(failures), args.seed))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
