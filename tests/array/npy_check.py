#!/usr/bin/env python3
"""NumPy's own .npy files against Tessera's (collections/array/io.c).

Both directions, on random arrays of every Tessera dtype, random shapes (0-d to
5-d) and random chunkings, compared byte for byte:
  - files written by numpy.save (and numpy.lib.format.write_array in formats 1.0,
    2.0 and 3.0, with long headers) are loaded with tsr_array_from_npy;
  - Tessera arrays (sources, borrowed buffers, lazy expressions, persisted ones)
    are stored with tsr_array_to_npy and read back with numpy.load (and with
    mmap_mode), and with tsr_array_to_raw against numpy.fromfile;
  - raw files with a prefix are loaded with tsr_array_from_raw at an offset;
  - files Tessera must refuse (Fortran order, big-endian, dtypes it does not
    have, structured dtypes) are refused with TSR_EINVAL and a message naming the
    cause.

    npy_check.py --lib build/libtessera.so [--seed N] [--cases N]
"""
import argparse
import ctypes as C
import os
import sys
import tempfile

import numpy as np

from numpy_oracle import CODE, MAX_DIMS, NP, Lib, Spec  # the ctypes bindings

TSR_EINVAL = -1
TSR_OP_ADD = 0


def random_values(rng, dt, shape):
    return np.asarray(_random_values(rng, dt, shape), dtype=dt)


def _random_values(rng, dt, shape):
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    v = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4)).astype(dt)
    flat = v.reshape(-1)
    if flat.size > 4 and rng.random() < 0.5:  # special values travel unchanged
        flat[rng.integers(0, flat.size, 4)] = [np.nan, np.inf, -np.inf, -0.0]
    return v


def random_shape(rng):
    nd = int(rng.integers(0, 6))
    hi = [1, 300, 60, 20, 9, 6][nd]
    shape = [int(rng.integers(1, hi + 1)) for _ in range(nd)]
    if nd > 0 and rng.random() < 0.08:  # an empty array
        shape[int(rng.integers(0, nd))] = 0
    return tuple(shape)


def random_chunks(rng, shape):
    """None (automatic), or per dimension a size (0: automatic)."""
    if rng.random() < 0.25:
        return None
    return [0 if rng.random() < 0.2 else int(rng.integers(1, max(n, 1) + 1)) for n in shape]


class Checker:
    def __init__(self, lib, rt, rng, tmp):
        self.lib = lib
        self.rt = rt
        self.rng = rng
        self.tmp = tmp
        self.failures = []

    def fail(self, what):
        self.failures.append(what)
        print("FAIL", what, flush=True)

    # ---- helpers ---------------------------------------------------------------------
    def compute(self, h):
        lib = self.lib
        dt = NP[lib.array_dtype(h)]
        shape = tuple(lib.array_dim(h, d) for d in range(lib.array_ndim(h)))
        out = np.empty(shape, dtype=dt)
        lib.check(lib.array_compute(h, out.ctypes.data_as(C.c_void_p), out.nbytes), "compute")
        return out

    def from_npy(self, path, chunks):
        h = C.c_void_p()
        arg = None
        if chunks is not None:
            arg = (C.c_int64 * max(1, len(chunks)))(*chunks)
        st = self.lib.array_from_npy(self.rt, path.encode(), arg, C.byref(h))
        return st, h

    def from_numpy(self, v, chunks, flags):
        s = Spec()
        s.dtype = CODE[v.dtype]
        s.ndim = v.ndim
        for d, n in enumerate(v.shape):
            s.shape[d] = n
            s.chunks[d] = chunks[d] if chunks is not None else 0
        h = C.c_void_p()
        self.lib.check(self.lib.array_from_buffer(self.rt, C.byref(s), v.ctypes.data_as(C.c_void_p),
                                                  v.nbytes, flags, C.byref(h)), "from_buffer")
        return h

    def same(self, what, got, want):
        if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
            self.fail("%s: got %s %s, want %s %s" % (what, got.dtype, got.shape, want.dtype,
                                                      want.shape))
            return False
        return True

    def check_chunks(self, what, h, shape, chunks):
        for d, n in enumerate(shape):
            want = chunks[d] if chunks is not None and chunks[d] > 0 and n > 0 else None
            got = self.lib.array_chunk_size(h, d, 0)
            if want is not None and got != min(want, n):
                self.fail("%s: chunk size %d along %d, asked for %d" % (what, got, d, want))

    # ---- NumPy writes, Tessera reads ----------------------------------------------------
    def numpy_to_tessera(self, i):
        r = self.rng
        dt = NP[int(r.integers(0, 7))]
        shape = random_shape(r)
        v = random_values(r, dt, shape)
        chunks = random_chunks(r, shape)
        path = os.path.join(self.tmp, "np%d.npy" % i)
        version = [None, None, (1, 0), (2, 0), (3, 0)][int(r.integers(0, 5))]
        if version is None:
            np.save(path, v)
        else:
            with open(path, "wb") as f:
                np.lib.format.write_array(f, v, version=version)
        what = "case %d numpy->tessera %s %s chunks %s format %s" % (i, dt, shape, chunks, version)
        st, h = self.from_npy(path, chunks)
        if st != 0:
            self.fail("%s: tsr_array_from_npy: %d %s" % (what, st, self.lib.error()))
            return
        try:
            if self.same(what, self.compute(h), v):
                self.check_chunks(what, h, shape, chunks)
        finally:
            self.lib.array_release(h)
        os.unlink(path)

    # ---- Tessera writes, NumPy reads ------------------------------------------------------
    def make_tessera(self, v, chunks):
        """A Tessera array and the value it must have: v as a source or a borrowed
        buffer, or v + v as a lazy expression or persisted."""
        r = self.rng
        kind = int(r.integers(0, 4))
        if kind <= 1:
            return self.from_numpy(v, chunks, kind), v, ["copy", "borrow"][kind]
        if v.dtype.kind == "i":
            v >>= 1  # no signed overflow in v + v
        a = self.from_numpy(v, chunks, 0)
        h = C.c_void_p()
        try:
            self.lib.check(self.lib.array_binary(TSR_OP_ADD, a, a, C.byref(h)), "binary")
        finally:
            self.lib.array_release(a)
        with np.errstate(all="ignore"):
            want = v | v if v.dtype == np.bool_ else np.add(v, v)
        if kind == 3:
            self.lib.check(self.lib.array_persist(h), "persist")
        return h, want, ["lazy", "persisted"][kind - 2]

    def tessera_to_numpy(self, i):
        r = self.rng
        dt = NP[int(r.integers(0, 7))]
        shape = random_shape(r)
        v = np.array(random_values(r, dt, shape), dtype=dt, order="C")
        chunks = random_chunks(r, shape)
        h, want, kind = self.make_tessera(v, chunks)
        what = "case %d tessera->numpy %s %s chunks %s %s" % (i, dt, shape, chunks, kind)
        npy = os.path.join(self.tmp, "ts%d.npy" % i)
        raw = os.path.join(self.tmp, "ts%d.raw" % i)
        try:
            self.lib.check(self.lib.array_to_npy(h, npy.encode()), "to_npy")
            self.lib.check(self.lib.array_to_raw(h, raw.encode()), "to_raw")
        except RuntimeError as e:
            self.fail("%s: %s" % (what, e))
            return
        finally:
            self.lib.array_release(h)
        self.same(what + " numpy.load", np.load(npy), want)
        self.same(what + " numpy.load(mmap)", np.array(np.load(npy, mmap_mode="r")), want)
        with open(npy, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version != (1, 0):
                self.fail("%s: format %s, not 1.0" % (what, version))
            else:
                hdr = np.lib.format.read_array_header_1_0(f)
                if hdr != (tuple(want.shape), False, want.dtype) or f.tell() % 64 != 0:
                    self.fail("%s: header %s, data at %d" % (what, hdr, f.tell()))
        self.same(what + " numpy.fromfile", np.fromfile(raw, dtype=dt).reshape(shape), want)
        os.unlink(npy)
        os.unlink(raw)

    def raw_at_offset(self, i):
        r = self.rng
        dt = NP[int(r.integers(0, 7))]
        shape = random_shape(r)
        v = random_values(r, dt, shape)
        chunks = random_chunks(r, shape) or [0] * len(shape)
        off = int(r.integers(0, 100))
        path = os.path.join(self.tmp, "off%d.raw" % i)
        with open(path, "wb") as f:
            f.write(bytes(r.integers(0, 256, off, dtype=np.uint8)))
            f.write(v.tobytes())
            f.write(b"tail")
        s = Spec()
        s.dtype = CODE[dt]
        s.ndim = len(shape)
        for d, n in enumerate(shape):
            s.shape[d] = n
            s.chunks[d] = chunks[d]
        h = C.c_void_p()
        what = "case %d from_raw %s %s chunks %s offset %d" % (i, dt, shape, chunks, off)
        st = self.lib.array_from_raw(self.rt, path.encode(), C.byref(s), off, C.byref(h))
        if st != 0:
            self.fail("%s: %d %s" % (what, st, self.lib.error()))
            return
        try:
            self.same(what, self.compute(h), v)
        finally:
            self.lib.array_release(h)
        os.unlink(path)

    # ---- files to refuse ----------------------------------------------------------------
    def refused(self, name, v, words, version=None, fortran=False):
        path = os.path.join(self.tmp, "refuse.npy")
        if fortran:
            v = np.asfortranarray(v)
        if version is None:
            np.save(path, v)
        else:
            with open(path, "wb") as f:
                np.lib.format.write_array(f, v, version=version)
        st, h = self.from_npy(path, None)
        msg = self.lib.error()
        if st != TSR_EINVAL or h.value is not None:
            self.fail("%s: status %d (want TSR_EINVAL): %s" % (name, st, msg))
            self.lib.array_release(h)
        elif not all(w in msg for w in words):
            self.fail("%s: message %r lacks %s" % (name, msg, words))
        os.unlink(path)

    def refusals(self):
        x = np.arange(12.0).reshape(3, 4)
        self.refused("fortran order", x, ["Fortran order"], fortran=True)
        self.refused("big-endian f8", x.astype(">f8"), ["'>f8'", "big-endian"])
        self.refused("big-endian i4", x.astype(">i4"), ["'>i4'", "big-endian"])
        self.refused("big-endian u2", x.astype(">u2"), ["'>u2'", "big-endian"], version=(2, 0))
        for dt in ["int8", "int16", "uint32", "uint64", "float16", "complex128"]:
            self.refused(dt, x.astype(dt), ["'%s'" % np.dtype(dt).str, "not supported"])
        self.refused("unicode", np.array(["ab", "c"]), ["'<U2'", "not supported"])
        self.refused("structured", np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]),
                     ["structured"])

    def long_header(self):
        """An 8-d array with large sizes written as format 2.0: a header far
        beyond 64 bytes."""
        v = random_values(self.rng, np.dtype("int32"), (2, 1, 3, 1, 2, 1, 2, 3))
        path = os.path.join(self.tmp, "long.npy")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, v, version=(2, 0))
        st, h = self.from_npy(path, [1, 1, 2, 1, 1, 1, 1, 2])
        if st != 0:
            self.fail("long header: %d %s" % (st, self.lib.error()))
            return
        try:
            self.same("long header", self.compute(h), v)
        finally:
            self.lib.array_release(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=200)
    args = ap.parse_args()
    lib = Lib(args.lib)
    rt = C.c_void_p()
    lib.check(lib.init(None, C.byref(rt)), "tsr_init")
    try:
        with tempfile.TemporaryDirectory(prefix="tsr-npy-check") as tmp:
            ck = Checker(lib, rt, np.random.default_rng(args.seed), tmp)
            ck.refusals()
            ck.long_header()
            for i in range(args.cases):
                try:
                    ck.numpy_to_tessera(i)
                    ck.tessera_to_numpy(i)
                    ck.raw_at_offset(i)
                except RuntimeError as e:
                    ck.fail("case %d (seed %d): %s" % (i, args.seed, e))
    finally:
        lib.shutdown(rt)
    print("npy check: %d cases, %d failed (seed %d)" % (args.cases, len(ck.failures), args.seed))
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
