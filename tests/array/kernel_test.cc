// The CPU array kernels (kernels/cpu/: tsr__ew_cpu, tsr__combine_cpu, tsr__copy_cpu)
// called directly with hand-built blobs (kernels/kernel_args.h), against references
// computed here in int64/uint64 or float64: wrapping integer arithmetic as NumPy's,
// bools that stay 0 or 1, var/std combines, and malformed arguments refused with
// TSR_EINVAL (never read or written out of bounds). Float arithmetic and the
// generators: kernel_float_test.cc; shared helpers: kernel_util.h.
//
// This C++ file includes kernel_args.h as it is (its static asserts must read as
// C++). The kernels' headers are private to kernels/: they are included by their
// path relative to this file. Direct calls pass a NULL task context (the kernels
// then report failures by status only) and registered-size output buffers; the
// messages are checked through a task. The seed is printed; TSR_TEST_SEED replays.
#include <gtest/gtest.h>
#include <tessera.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../../kernels/impl.h"
#include "../../kernels/kernel_args.h"
#include "array/kernel_util.h"
#include "common/test_util.h"

namespace {

using tsr_kernel_test::Buffers;
using tsr_kernel_test::Bytes;
using tsr_kernel_test::FromBytes;
using tsr_kernel_test::KernelTest;
using tsr_kernel_test::Moments;
using tsr_kernel_test::Program;
using tsr_kernel_test::RunEw;
using tsr_kernel_test::RunTask;
using tsr_kernel_test::TaskOutcome;
using tsr_kernel_test::ToBytes;

// ---- bug: integer arithmetic wraps like NumPy's -----------------------------------------

// Random values of an integer type with its extremes often, as int64.
int64_t RandomInt(std::mt19937_64 &rng, int type)
{
    const int64_t lo[] = {0, 0, 0, INT32_MIN, INT64_MIN};
    const int64_t hi[] = {1, UINT8_MAX, UINT16_MAX, INT32_MAX, INT64_MAX};
    switch (rng() % 6) {
    case 0:
        return hi[type];
    case 1:
        return lo[type];
    case 2:
        return hi[type] - (int64_t)(rng() % 3);
    case 3:
        return (int64_t)(rng() % 20) - (lo[type] < 0 ? 10 : 0);
    default: {
        uint64_t r = rng();
        switch (type) {
        case TSR_UINT8:
            return (uint8_t)r;
        case TSR_UINT16:
            return (uint16_t)r;
        case TSR_INT32:
            return (int32_t)(uint32_t)r;
        default:
            return (int64_t)r;
        }
    }
    }
}

// The value v modulo the type's width, read back as the type (NumPy's wrapping).
int64_t Wrap(int type, uint64_t v)
{
    switch (type) {
    case TSR_UINT8:
        return (uint8_t)v;
    case TSR_UINT16:
        return (uint16_t)v;
    case TSR_INT32:
        return (int32_t)(uint32_t)v;
    default:
        return (int64_t)v;
    }
}

int64_t Reference(int op, int type, int64_t x, int64_t y)
{
    const uint64_t ux = (uint64_t)x;
    const uint64_t uy = (uint64_t)y;
    switch (op) {
    case TSR_EW_ADD:
        return Wrap(type, ux + uy);
    case TSR_EW_SUB:
        return Wrap(type, ux - uy);
    case TSR_EW_MUL:
        return Wrap(type, ux * uy); /* the low 64 bits are exact modulo 2^64 */
    case TSR_EW_POW: {
        uint64_t r = 1;
        for (int64_t k = 0; k < y; k++) {
            r *= ux;
        }
        return Wrap(type, r);
    }
    case TSR_EW_NEG:
        return Wrap(type, 0 - ux);
    default: /* ABS */
        return x < 0 ? Wrap(type, 0 - ux) : x;
    }
}

void PutInt(Bytes &b, size_t i, int type, int64_t v)
{
    const size_t es = tsr_dtype_size((tsr_dtype_t)type);
    std::memcpy(b.data() + i * es, &v, es); /* little-endian: the low bytes */
}

int64_t GetInt(const Bytes &b, size_t i, int type)
{
    uint64_t v = 0;
    const size_t es = tsr_dtype_size((tsr_dtype_t)type);
    std::memcpy(&v, b.data() + i * es, es);
    return Wrap(type, v);
}

TEST_F(KernelTest, IntegerArithmeticWrapsLikeNumpy)
{
    const int types[] = {TSR_UINT8, TSR_UINT16, TSR_INT32, TSR_INT64};
    const int ops[] = {TSR_EW_ADD, TSR_EW_SUB, TSR_EW_MUL, TSR_EW_POW, TSR_EW_NEG, TSR_EW_ABS};
    const int64_t n = 3000;
    for (int type : types) {
        for (int op : ops) {
            const bool unary = op == TSR_EW_NEG || op == TSR_EW_ABS;
            const size_t es = tsr_dtype_size((tsr_dtype_t)type);
            Bytes xs((size_t)n * es), ys((size_t)n * es);
            std::vector<int64_t> x(n), y(n);
            for (int64_t i = 0; i < n; i++) {
                x[i] = RandomInt(rng_, type);
                y[i] = op == TSR_EW_POW ? (int64_t)(rng_() % 40) : RandomInt(rng_, type);
                PutInt(xs, (size_t)i, type, x[i]);
                PutInt(ys, (size_t)i, type, y[i]);
            }
            Program p({n});
            int a = p.Load(p.Leaf(TSR_LEAF_BUFFER, type, 0));
            int b = unary ? -1 : p.Load(p.Leaf(TSR_LEAF_BUFFER, type, 1));
            p.Op(op, type, a, b);
            Bytes out;
            std::vector<Bytes> ins = {xs};
            if (!unary) {
                ins.push_back(ys);
            }
            ASSERT_EQ(RunEw(p, ins, &out, (uint64_t)n * es), TSR_OK);
            for (int64_t i = 0; i < n; i++) {
                ASSERT_EQ(GetInt(out, (size_t)i, type), Reference(op, type, x[i], y[i]))
                    << "op " << op << " type " << type << ": " << x[i] << ", " << y[i];
            }
        }
    }
}

// ---- bug: bools stay 0 or 1 --------------------------------------------------------------

TEST_F(KernelTest, BoolResultsAreZeroOrOne)
{
    const int64_t n = 512 + 37;
    Bytes xs((size_t)n), ys((size_t)n);
    const unsigned char bytes[] = {0, 1, 2, 255, 1, 0, 128};
    for (int64_t i = 0; i < n; i++) {
        xs[(size_t)i] = bytes[rng_() % 7]; /* any nonzero byte is true */
        ys[(size_t)i] = bytes[rng_() % 7];
    }
    struct Case {
        int op;
        bool (*ref)(bool, bool);
    };
    const Case cases[] = {
        {TSR_EW_ADD, [](bool x, bool y) { return x || y; }},
        {TSR_EW_SUB, [](bool x, bool y) { return x != y; }},
        {TSR_EW_MUL, [](bool x, bool y) { return x && y; }},
        {TSR_EW_MIN, [](bool x, bool y) { return x && y; }},
        {TSR_EW_MAX, [](bool x, bool y) { return x || y; }},
        {TSR_EW_POW, [](bool x, bool y) { return x || !y; }},
        {TSR_EW_EQ, [](bool x, bool y) { return x == y; }},
        {TSR_EW_LT, [](bool x, bool y) { return x < y; }},
        {TSR_EW_NEG, [](bool x, bool) { return x; }},
        {TSR_EW_ABS, [](bool x, bool) { return x; }},
        {TSR_EW_LOAD, [](bool x, bool) { return x; }},
    };
    for (const Case &c : cases) {
        const bool unary = c.op == TSR_EW_NEG || c.op == TSR_EW_ABS || c.op == TSR_EW_LOAD;
        for (int64_t stride : {1, 2}) { /* in place and gathered */
            Program p({n / stride});
            int a = p.Load(p.Leaf(TSR_LEAF_BUFFER, TSR_BOOL, 0));
            p.leaves[0].stride[0] = stride;
            if (c.op != TSR_EW_LOAD) {
                int b = unary ? -1 : p.Load(p.Leaf(TSR_LEAF_BUFFER, TSR_BOOL, 1));
                p.Op(c.op, TSR_BOOL, a, b);
            }
            Bytes out;
            ASSERT_EQ(RunEw(p, {xs, ys}, &out, (uint64_t)(n / stride)), TSR_OK);
            for (int64_t i = 0; i < n / stride; i++) {
                const bool ref = c.ref(xs[(size_t)(i * stride)] != 0, ys[(size_t)i] != 0);
                ASSERT_EQ(out[(size_t)i], ref ? 1 : 0)
                    << "op " << c.op << " stride " << stride << " element " << i << ": "
                    << (int)xs[(size_t)(i * stride)] << ", " << (int)ys[(size_t)i];
            }
        }
    }
}

// argmax(x + y) of bools is the first element where either is true, as NumPy's
// (a byte of 2 left by the addition would beat a 1).
TEST_F(KernelTest, ArgmaxOfBoolArithmeticFindsTheFirstTrue)
{
    const int64_t n = 1000;
    for (int rep = 0; rep < 20; rep++) {
        Bytes xs((size_t)n, 0), ys((size_t)n, 0);
        const int64_t first = (int64_t)(rng_() % (uint64_t)n);
        xs[(size_t)first] = 1;
        for (int64_t i = first + 1; i < n; i++) {
            xs[(size_t)i] = rng_() % 2;
            ys[(size_t)i] = xs[(size_t)i] && rng_() % 2 ? 1 : 0;
        }
        Program p({n});
        int idx = p.Leaf(TSR_LEAF_ARANGE, TSR_INT64);
        p.leaves[(size_t)idx].p1 = 1;
        int ix = p.Load(idx);
        int a = p.Load(p.Leaf(TSR_LEAF_BUFFER, TSR_BOOL, 0));
        int b = p.Load(p.Leaf(TSR_LEAF_BUFFER, TSR_BOOL, 1));
        p.Op(TSR_EW_ADD, TSR_BOOL, a, b);
        p.h.red_op = TSR_RED_ARGMAX;
        p.h.red_mask = 1;
        p.h.red_index = (uint32_t)ix;
        Bytes out;
        ASSERT_EQ(RunEw(p, {xs, ys}, &out, sizeof(tsr_red_arg_t)), TSR_OK);
        tsr_red_arg_t r;
        std::memcpy(&r, out.data(), sizeof(r));
        EXPECT_EQ(r.index, first);
        EXPECT_EQ(r.v.u8, 1);
    }
}

// ---- bug: var/std combines, and combine arguments that do not fit ----------------------

tsr_red_combine_arg_t CombineArg(int red, int acc_type, int fin, uint32_t n_in, uint64_t n_elems)
{
    tsr_red_combine_arg_t a;
    std::memset(&a, 0, sizeof(a));
    a.red_op = red;
    a.acc_type = acc_type;
    a.fin = fin;
    a.out_type = TSR_FLOAT64;
    a.final = 1;
    a.n_in = n_in;
    a.n_elems = n_elems;
    a.count = 1;
    return a;
}

tsr_status_t RunCombine(const tsr_red_combine_arg_t &a, std::vector<Bytes> inputs, Bytes *out,
                        size_t out_bytes)
{
    out->assign(out_bytes, 0);
    std::vector<tsr_buffer_t> bufs = Buffers(inputs, out);
    return tsr__combine_cpu(nullptr, bufs.data(), &a);
}

TEST_F(KernelTest, VarianceCombineMatchesTwoPassReference)
{
    const uint32_t n_in = 5;
    const int64_t n_elems = 7;
    std::vector<std::vector<double>> values((size_t)n_elems);
    std::vector<Bytes> parts;
    std::normal_distribution<double> normal(10, 3);
    for (uint32_t k = 0; k < n_in; k++) {
        std::vector<double> partial;
        for (int64_t e = 0; e < n_elems; e++) {
            /* Empty partials too, but never fewer than two values in all. */
            const size_t len = k == 0 ? 2 + rng_() % 48 : rng_() % 4 == 0 ? 0 : 1 + rng_() % 49;
            std::vector<double> v(len);
            for (double &x : v) {
                x = normal(rng_);
            }
            double m[3];
            Moments(v.data(), (int64_t)v.size(), m);
            partial.insert(partial.end(), m, m + 3);
            values[(size_t)e].insert(values[(size_t)e].end(), v.begin(), v.end());
        }
        parts.push_back(ToBytes(partial));
    }
    for (int fin : {TSR_FIN_VAR, TSR_FIN_STD}) {
        tsr_red_combine_arg_t a = CombineArg(TSR_RED_MOMENTS, TSR_FLOAT64, fin, n_in, n_elems);
        a.ddof = 1;
        Bytes out;
        ASSERT_EQ(RunCombine(a, parts, &out, (size_t)n_elems * 8), TSR_OK);
        std::vector<double> got = FromBytes<double>(out);
        for (int64_t e = 0; e < n_elems; e++) {
            double m[3];
            Moments(values[(size_t)e].data(), (int64_t)values[(size_t)e].size(), m);
            double var = m[2] / (m[0] - 1);
            double ref = fin == TSR_FIN_STD ? std::sqrt(var) : var;
            EXPECT_NEAR(got[(size_t)e], ref, 1e-12 * ref) << "element " << e << " fin " << fin;
        }
    }
}

TEST_F(KernelTest, CombineRefusesAFinishOrAccumulatorThatDoesNotFit)
{
    const int64_t n = 64;
    struct Case {
        int red, acc_type, fin;
        const char *what;
    };
    const Case cases[] = {
        {TSR_RED_SUM, TSR_FLOAT64, TSR_FIN_VAR, "var of a sum (reads 3 doubles per element)"},
        {TSR_RED_SUM, TSR_INT64, TSR_FIN_STD, "std of a sum"},
        {TSR_RED_PROD, TSR_FLOAT64, TSR_FIN_MEAN, "mean of a product"},
        {TSR_RED_MOMENTS, TSR_FLOAT64, TSR_FIN_CAST, "moments cast"},
        {TSR_RED_MOMENTS, TSR_FLOAT64, TSR_FIN_MEAN, "mean of moments"},
        {TSR_RED_MIN, TSR_FLOAT64, TSR_FIN_VAR, "var of a min"},
        {TSR_RED_ARGMIN, TSR_FLOAT64, TSR_FIN_STD, "std of an argmin"},
        {TSR_RED_SUM, TSR_FLOAT64, 9, "an unknown finish"},
        {TSR_RED_SUM, TSR_FLOAT32, TSR_FIN_CAST, "a float32 sum accumulator"},
        {TSR_RED_PROD, TSR_INT32, TSR_FIN_CAST, "an int32 product accumulator"},
        {TSR_RED_SUM, -1, TSR_FIN_CAST, "a negative accumulator type"},
    };
    for (const Case &c : cases) {
        tsr_red_combine_arg_t a = CombineArg(c.red, c.acc_type, c.fin, 2, n);
        const size_t asz = c.acc_type < 0 ? 8
                                          : tsr_red_acc_size((tsr_red_op_t)c.red,
                                                             (tsr_dtype_t)c.acc_type);
        std::vector<Bytes> ins(2, Bytes((size_t)n * asz, 0));
        Bytes out;
        EXPECT_EQ(RunCombine(a, ins, &out, (size_t)n * 8), TSR_EINVAL) << c.what;
    }
    // Partials of the wrong size, and a count whose byte size overflows.
    tsr_red_combine_arg_t a = CombineArg(TSR_RED_SUM, TSR_FLOAT64, TSR_FIN_CAST, 2, n);
    std::vector<Bytes> ins = {Bytes((size_t)n * 8), Bytes((size_t)n * 8 - 1)};
    Bytes out;
    EXPECT_EQ(RunCombine(a, ins, &out, (size_t)n * 8), TSR_EINVAL) << "a short partial";
    a.n_elems = (uint64_t)1 << 62;
    ins = {Bytes(0), Bytes(0)};
    EXPECT_EQ(RunCombine(a, ins, &out, 8), TSR_EINVAL) << "an overflowing count";
    // Through a task: the message says why.
    a = CombineArg(TSR_RED_SUM, TSR_FLOAT64, TSR_FIN_VAR, 1, n);
    TaskOutcome o = RunTask(&tsr__red_combine_codelet,
                            Bytes((unsigned char *)&a, (unsigned char *)&a + sizeof(a)),
                            {Bytes((size_t)n * 8)});
    EXPECT_EQ(o.status, TSR_EINVAL);
    EXPECT_NE(o.message.find("reduction combine"), std::string::npos) << o.message;
}

// ---- bug: leaves and pieces are checked against their buffers ------------------------------

// A float64 program over 64 elements: x * 2 + y, x and y buffer leaves.
Program GoodProgram()
{
    Program p({8, 8});
    int x = p.Load(p.Leaf(TSR_LEAF_BUFFER, TSR_FLOAT64, 0));
    int y = p.Load(p.Leaf(TSR_LEAF_BUFFER, TSR_FLOAT64, 1));
    int two = p.Op(TSR_EW_CONST, TSR_FLOAT64);
    p.code[(size_t)two].imm_f = 2;
    p.Op(TSR_EW_ADD, TSR_FLOAT64, p.Op(TSR_EW_MUL, TSR_FLOAT64, x, two), y);
    return p;
}

TEST_F(KernelTest, MalformedProgramsAreRefused)
{
    const std::vector<Bytes> ins = {Bytes(64 * 8), Bytes(64 * 8)};
    Bytes out;
    {
        Program p = GoodProgram();
        ASSERT_EQ(RunEw(p, ins, &out, 64 * 8), TSR_OK);
    }
    struct Case {
        const char *what;
        void (*edit)(Program &);
        uint64_t out_bytes;
    };
    const Case cases[] = {
        {"a leaf one element past its buffer", [](Program &p) { p.leaves[0].offset = 1; }, 512},
        {"a leaf before its buffer", [](Program &p) { p.leaves[1].offset = -1; }, 512},
        {"a leaf whose stride leaves its buffer", [](Program &p) { p.leaves[0].stride[0] = 9; },
         512},
        {"a leaf whose span overflows",
         [](Program &p) { p.leaves[0].stride[0] = INT64_MAX / 4; }, 512},
        {"a leaf of buffer 16", [](Program &p) { p.leaves[0].buf = TSR_MAX_BUFFERS; }, 512},
        {"a leaf of buffer -1", [](Program &p) { p.leaves[0].buf = -1; }, 512},
        {"a leaf of an empty buffer", [](Program &p) { p.leaves[0].buf = 5; }, 512},
        {"a leaf reading the output", [](Program &p) { p.leaves[0].buf = 2; }, 512},
        {"a leaf of unknown kind", [](Program &p) { p.leaves[0].kind = 7; }, 512},
        {"a leaf of unknown type", [](Program &p) { p.leaves[0].type = 9; }, 512},
        {"an output too short", [](Program &) {}, 511},
        {"a negative dimension", [](Program &p) { p.h.shape[0] = -8; }, 512},
        {"a float64 op on uint8 values (read 8 bytes each, in place)",
         [](Program &p) {
             p.leaves[0].type = TSR_UINT8;
             p.code[0].type = TSR_UINT8;
         },
         512},
        {"a where on a float condition",
         [](Program &p) { p.Op(TSR_EW_WHERE, TSR_FLOAT64, 0, 1, 1); }, 512},
        {"an operand from the future", [](Program &p) { p.code[3].a = 4; }, 512},
        {"a load of leaf 2", [](Program &p) { p.code[1].aux = 2; }, 512},
        {"sqrt of an integer",
         [](Program &p) { p.Op(TSR_EW_SQRT, TSR_INT64, p.Op(TSR_EW_CAST, TSR_FLOAT64, 4, -1, -1, TSR_INT64)); },
         512},
        {"an argmax index past the program",
         [](Program &p) {
             p.h.red_op = TSR_RED_ARGMAX;
             p.h.red_mask = 3;
             p.h.red_index = UINT32_MAX;
         },
         16},
        {"an argmax index of type float64",
         [](Program &p) {
             p.h.red_op = TSR_RED_ARGMAX;
             p.h.red_mask = 3;
             p.h.red_index = 0;
         },
         16},
        {"an unknown reduction", [](Program &p) { p.h.red_op = 8; }, 512},
        {"a bad magic", [](Program &p) { p.h.magic = 0; }, 512},
    };
    for (const Case &c : cases) {
        Program p = GoodProgram();
        c.edit(p);
        EXPECT_EQ(RunEw(p, ins, &out, c.out_bytes), TSR_EINVAL) << c.what;
    }
    // Through a task: the message says why.
    Program p = GoodProgram();
    p.leaves[0].offset = 1;
    TaskOutcome o = RunTask(&tsr__ew_codelet, p.Blob(2, 512), ins);
    EXPECT_EQ(o.status, TSR_EINVAL);
    EXPECT_NE(o.message.find("leaf 0 reads outside buffer 0"), std::string::npos) << o.message;
}

// A chunk with a dimension of size 0 runs nothing: its partials keep the identity.
TEST_F(KernelTest, EmptyChunkLeavesTheIdentity)
{
    Program p({0, 5});
    p.Load(p.Leaf(TSR_LEAF_BUFFER, TSR_FLOAT64, 0));
    p.h.red_op = TSR_RED_MAX;
    p.h.red_mask = 1;
    Bytes out;
    ASSERT_EQ(RunEw(p, {Bytes(8)}, &out, 5 * 8), TSR_OK);
    for (double v : FromBytes<double>(out)) {
        EXPECT_EQ(v, -INFINITY);
    }
}

struct CopyBlob {
    tsr_copy_header_t h;
    std::vector<tsr_copy_piece_t> pieces;

    CopyBlob(std::vector<int64_t> shape, uint32_t elem_size)
    {
        std::memset(&h, 0, sizeof(h));
        h.magic = TSR_COPY_MAGIC;
        h.ndim = (uint32_t)shape.size();
        h.elem_size = elem_size;
        h.out_bytes = elem_size;
        h.alloc = 1;
        for (size_t d = 0; d < shape.size(); d++) {
            h.shape[d] = shape[d];
            h.out_bytes *= (uint64_t)shape[d];
        }
    }
    // A piece copying the whole output from buffer `buf`, C order.
    tsr_copy_piece_t &Whole(int32_t buf)
    {
        tsr_copy_piece_t p;
        std::memset(&p, 0, sizeof(p));
        p.kind = TSR_PIECE_COPY;
        p.buf = buf;
        int64_t s = 1;
        for (int d = (int)h.ndim - 1; d >= 0; d--) {
            p.shape[d] = h.shape[d];
            p.src_stride[d] = s;
            s *= h.shape[d];
        }
        pieces.push_back(p);
        return pieces.back();
    }
    Bytes Blob()
    {
        h.n_pieces = (uint32_t)pieces.size();
        Bytes b(sizeof(h) + pieces.size() * sizeof(tsr_copy_piece_t));
        std::memcpy(b.data(), &h, sizeof(h));
        std::memcpy(b.data() + sizeof(h), pieces.data(), pieces.size() * sizeof(pieces[0]));
        return b;
    }
};

tsr_status_t RunCopy(CopyBlob &c, std::vector<Bytes> inputs, size_t out_size, Bytes *out)
{
    c.h.out_buf = (uint32_t)inputs.size();
    Bytes blob = c.Blob();
    out->assign(out_size, 0);
    std::vector<tsr_buffer_t> bufs = Buffers(inputs, out);
    return tsr__copy_cpu(nullptr, bufs.data(), blob.data());
}

TEST_F(KernelTest, MalformedCopiesAreRefused)
{
    Bytes src(5 * 7);
    for (unsigned char &x : src) {
        x = (unsigned char)rng_();
    }
    Bytes out;
    {
        CopyBlob c({5, 7}, 1);
        c.Whole(0);
        ASSERT_EQ(RunCopy(c, {src}, 35, &out), TSR_OK);
        EXPECT_EQ(out, src);
    }
    struct Case {
        const char *what;
        void (*edit)(CopyBlob &);
    };
    const Case cases[] = {
        {"a piece of buffer 16", [](CopyBlob &c) { c.pieces[0].buf = TSR_MAX_BUFFERS; }},
        {"a piece of buffer -1", [](CopyBlob &c) { c.pieces[0].buf = -1; }},
        {"a piece of the output", [](CopyBlob &c) { c.pieces[0].buf = 1; }},
        {"a piece of an empty buffer", [](CopyBlob &c) { c.pieces[0].buf = 7; }},
        {"a piece past its source", [](CopyBlob &c) { c.pieces[0].src_offset = 1; }},
        {"a piece whose span wraps to 0",
         [](CopyBlob &c) {
             c.pieces[0].shape[1] = 5;
             c.pieces[0].src_stride[1] = (int64_t)1 << 62; /* 4 * 2^62 wraps to 0 */
         }},
        {"a piece past the output", [](CopyBlob &c) { c.pieces[0].dst_origin[0] = 1; }},
        {"a piece of unknown kind", [](CopyBlob &c) { c.pieces[0].kind = 5; }},
        {"an out_bytes short of the shape", [](CopyBlob &c) { c.h.out_bytes = 34; }},
        {"a negative dimension", [](CopyBlob &c) { c.h.shape[0] = -5; }},
        {"an element size of 3", [](CopyBlob &c) { c.h.elem_size = 3; }},
    };
    for (const Case &k : cases) {
        CopyBlob c({5, 7}, 1);
        c.Whole(0);
        k.edit(c);
        EXPECT_EQ(RunCopy(c, {src}, (size_t)c.h.out_bytes, &out), TSR_EINVAL) << k.what;
    }
    // A bad piece after a good one: nothing is written.
    CopyBlob c({5, 7}, 1);
    c.Whole(0);
    c.Whole(0).src_offset = 1;
    c.h.alloc = 0;
    EXPECT_EQ(RunCopy(c, {src}, 35, &out), TSR_EINVAL);
    EXPECT_EQ(out, Bytes(35, 0));
    // Through a task: the message says why.
    CopyBlob d({5, 7}, 1);
    d.Whole(0).src_offset = 1;
    d.h.out_buf = 1;
    TaskOutcome o = RunTask(&tsr__copy_codelet, d.Blob(), {src});
    EXPECT_EQ(o.status, TSR_EINVAL);
    EXPECT_NE(o.message.find("piece 0 falls outside"), std::string::npos) << o.message;
}

}  // namespace
