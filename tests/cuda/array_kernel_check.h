/* Shared by the tests of the CUDA array kernels (ew_emulation_test.cc on the host,
 * cuda_kernels_test.cc on a GPU): running an array codelet as a task pinned to a
 * device kind, comparing outputs element by element (exactly for integers, bools
 * and, unless told otherwise, floats; NaN matching any NaN), the tolerances of
 * float reductions, a reference for ARGMIN/ARGMAX partials, the programs both
 * write by hand, random arguments of the combine and copy kernels, and the base
 * of both fixtures (runtime, seeded generator, comparison with the CPU kernel). */
#ifndef TSR_TESTS_CUDA_ARRAY_KERNEL_CHECK_H
#define TSR_TESTS_CUDA_ARRAY_KERNEL_CHECK_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cuda/ew_random_program.h"

namespace tsr_ew_test {

struct TaskResult {
    tsr_status_t status = TSR_OK;
    std::string message;
    Bytes out;
};

/* Run `codelet` with `arg` on `inputs` (R) and an output (buffer inputs.size()):
 * a new dynamic handle (W), or when `out_init` is given a registered copy of it
 * (RW). The task is pinned to devices of `kind`. */
inline TaskResult RunKernel(tsr_runtime_t *rt, const tsr_codelet_t *codelet, const Bytes &arg,
                            const std::vector<Bytes> &inputs, tsr_device_kind_t kind,
                            const Bytes *out_init = nullptr)
{
    TaskResult res;
    std::vector<Bytes> ins = inputs;
    Bytes out_copy = out_init != nullptr ? *out_init : Bytes();
    std::vector<tsr_test::Data> handles;
    tsr_test::Task task(codelet);

    for (Bytes &b : ins) {
        handles.push_back(tsr_test::Register(rt, b.data(), b.size()));
        task.Use(handles.back().get(), TSR_R);
    }
    tsr_test::Data out = out_init != nullptr
                             ? tsr_test::Register(rt, out_copy.data(), out_copy.size())
                             : tsr_test::CreateData(rt);
    task.Use(out.get(), out_init != nullptr ? TSR_RW : TSR_W);
    task.ArgBytes(arg.data(), arg.size());
    tsr_task_desc_t desc = task.Desc();
    desc.pin = TSR_PIN_KIND;
    desc.pin_value = (uint32_t)kind;
    tsr_future_t *f = nullptr;
    res.status = tsr_task_submit(rt, &desc, &f);
    if (res.status != TSR_OK) {
        res.message = tsr_last_error();
        return res;
    }
    tsr_test::Future future(f);
    res.status = tsr_future_wait(f);
    res.message = tsr_future_message(f);
    if (res.status == TSR_OK) {
        std::optional<std::vector<uint8_t>> bytes = tsr_test::ReadBytes(out.get());
        if (bytes) {
            res.out.assign(bytes->begin(), bytes->end());
        }
    }
    return res;
}

template <class T>
T Get(const unsigned char *p)
{
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

/* Element i of an array of `type`, as a double (for messages and tolerances). */
inline double AsDouble(int type, const unsigned char *p)
{
    switch (type) {
    case TSR_BOOL:
    case TSR_UINT8:
        return Get<uint8_t>(p);
    case TSR_UINT16:
        return Get<uint16_t>(p);
    case TSR_INT32:
        return Get<int32_t>(p);
    case TSR_INT64:
        return (double)Get<int64_t>(p);
    case TSR_FLOAT32:
        return Get<float>(p);
    default:
        return Get<double>(p);
    }
}

/* Exactly equal as `type` (a NaN equals any NaN). */
inline bool SameValue(int type, const unsigned char *a, const unsigned char *b)
{
    if (type >= TSR_FLOAT32) {
        double x = AsDouble(type, a);
        double y = AsDouble(type, b);
        if (std::isnan(x) || std::isnan(y)) {
            return std::isnan(x) && std::isnan(y);
        }
    }
    return std::memcmp(a, b, (size_t)tsr_ew::dtype_bytes(type)) == 0;
}

/* Equal within `rel` of the larger magnitude plus `abs` (NaN matches NaN, an
 * infinity only itself). */
inline bool Close(double x, double y, double rel, double abs)
{
    if (std::isnan(x) || std::isnan(y)) {
        return std::isnan(x) && std::isnan(y);
    }
    if (std::isinf(x) || std::isinf(y)) {
        return x == y;
    }
    return std::fabs(x - y) <= rel * std::fmax(std::fabs(x), std::fabs(y)) + abs;
}

/* Elements (of `type`) that differ between a and b; `ulps` > 0 allows float
 * results that far apart in relative terms (units of the type's epsilon). */
inline std::string DiffArrays(int type, const Bytes &a, const Bytes &b, double ulps = 0)
{
    const size_t es = (size_t)tsr_ew::dtype_bytes(type);
    const double eps = type == TSR_FLOAT32 ? 1.1920929e-7 : 2.220446049250313e-16;
    if (a.size() != b.size()) {
        return "sizes differ: " + std::to_string(a.size()) + " and " + std::to_string(b.size());
    }
    for (size_t i = 0; i < a.size() / es; i++) {
        const unsigned char *x = a.data() + i * es;
        const unsigned char *y = b.data() + i * es;
        bool ok =
            SameValue(type, x, y) || (ulps > 0 && type >= TSR_FLOAT32 &&
                                      Close(AsDouble(type, x), AsDouble(type, y), ulps * eps, 0));
        if (!ok) {
            return "element " + std::to_string(i) + ": " + std::to_string(AsDouble(type, x)) +
                   " vs " + std::to_string(AsDouble(type, y));
        }
    }
    return "";
}

/* ---- fused programs --------------------------------------------------------------- */

/* The case without its reduction, cut after instruction `keep`. */
inline EwCase Elementwise(const EwCase &c, uint32_t keep)
{
    EwCase m = c;
    m.code.resize(keep + 1);
    m.h.n_instr = keep + 1;
    m.h.red_op = TSR_RED_NONE;
    m.h.red_mask = 0;
    m.h.out_bytes = (uint64_t)m.OutElems() * m.OutElemBytes();
    return m;
}

/* The case summing |v| (or v * v), as float64, over the same partial elements:
 * the scale of its float tolerances. */
inline EwCase ScaleCase(const EwCase &c, bool square)
{
    EwCase s = c;
    int v = (int)s.code.size() - 1;
    if (c.vtype() != TSR_FLOAT64) {
        v = AddInstr(&s, TSR_EW_CAST, c.vtype(), v, -1, -1, TSR_FLOAT64);
    }
    if (square) {
        AddInstr(&s, TSR_EW_MUL, TSR_FLOAT64, v, v);
    } else {
        AddInstr(&s, TSR_EW_ABS, TSR_FLOAT64, v);
    }
    s.h.n_instr = (uint32_t)s.code.size();
    s.h.red_op = TSR_RED_SUM;
    s.h.out_bytes = (uint64_t)s.OutElems() * 8;
    return s;
}

/* Whether CompareReduced needs the scales of a case: (abs, square). */
inline bool NeedsScales(const EwCase &c)
{
    return c.h.red_op == TSR_RED_MOMENTS || (c.h.red_op == TSR_RED_SUM && c.vtype() >= TSR_FLOAT32);
}

/* The index of the partial element that chunk element `flat` folds into. */
inline int64_t PartialIndex(const EwCase &c, int64_t flat)
{
    int64_t coord[TSR_MAX_DIMS];
    int64_t p = 0;
    for (int d = (int)c.h.ndim - 1; d >= 0; d--) {
        coord[d] = flat % c.h.shape[d];
        flat /= c.h.shape[d];
    }
    for (uint32_t d = 0; d < c.h.ndim; d++) {
        if (!((c.h.red_mask >> d) & 1u)) {
            p = p * c.h.shape[d] + coord[d];
        }
    }
    return p;
}

/* ARGMIN/ARGMAX partials folded here, by the rule of tsr_red_arg_t, from the
 * values and indices the CPU kernel computes elementwise, starting from the
 * kernels' identity: MIN's (MAX's) with index INT64_MAX. (Bool values are 0 or
 * 1: the kernels normalise loads, and arithmetic on bools is logic.) */
struct ArgRef {
    double value; /* exact but for int64, which `ivalue` holds */
    int64_t ivalue;
    bool nan;
    int64_t index;
};

inline std::vector<ArgRef> ArgReference(tsr_runtime_t *rt, const EwCase &c, std::string *err)
{
    const int vt = c.vtype();
    const bool is_min = c.h.red_op == TSR_RED_ARGMIN;
    const tsr_ew::ew_acc init = tsr_ew::acc_init(c.h.red_op, vt);
    const double init_value = AsDouble(vt, reinterpret_cast<const unsigned char *>(&init.w[0]));
    std::vector<ArgRef> best((size_t)c.OutElems(),
                             ArgRef{init_value, vt == TSR_INT64 ? (int64_t)init.w[0] : 0,
                                    std::isnan(init_value), INT64_MAX});
    EwCase vals = Elementwise(c, c.h.n_instr - 1);
    EwCase idxs = Elementwise(c, c.h.red_index);
    TaskResult v = RunKernel(rt, &tsr__ew_codelet, vals.Blob(), vals.inputs, TSR_DEVICE_CPU);
    TaskResult ix = RunKernel(rt, &tsr__ew_codelet, idxs.Blob(), idxs.inputs, TSR_DEVICE_CPU);
    if (v.status != TSR_OK || ix.status != TSR_OK) {
        *err = "elementwise reference failed: " + v.message + ix.message;
        return best;
    }
    const size_t es = (size_t)tsr_ew::dtype_bytes(vt);
    for (int64_t e = 0; e < c.Elems(); e++) {
        ArgRef cand;
        cand.value = AsDouble(vt, v.out.data() + e * es);
        cand.ivalue = vt == TSR_INT64 ? Get<int64_t>(v.out.data() + e * es) : 0;
        cand.nan = std::isnan(cand.value);
        cand.index = Get<int64_t>(ix.out.data() + e * 8);
        ArgRef &b = best[(size_t)PartialIndex(c, e)];
        bool wins;
        if (cand.nan || b.nan) {
            wins = cand.nan && (!b.nan || cand.index < b.index);
        } else if (cand.value == b.value && cand.ivalue == b.ivalue) {
            wins = cand.index < b.index;
        } else if (vt == TSR_INT64) {
            wins = is_min ? cand.ivalue < b.ivalue : cand.ivalue > b.ivalue;
        } else {
            wins = is_min ? cand.value < b.value : cand.value > b.value;
        }
        if (wins) {
            b = cand;
        }
    }
    return best;
}

inline std::string CompareArg(const EwCase &c, const std::vector<ArgRef> &ref, const Bytes &got)
{
    const int vt = c.vtype();
    if (got.size() < ref.size() * 16) {
        return "partials of " + std::to_string(got.size()) + " bytes";
    }
    for (size_t p = 0; p < ref.size(); p++) {
        const unsigned char *g = got.data() + p * 16;
        double v = AsDouble(vt, g);
        int64_t i = Get<int64_t>(g + 8);
        bool same_value = ref[p].nan        ? std::isnan(v)
                          : vt == TSR_INT64 ? Get<int64_t>(g) == ref[p].ivalue
                                            : v == ref[p].value;
        if (!same_value || i != ref[p].index) {
            return "partial " + std::to_string(p) + ": (" + std::to_string(v) + ", " +
                   std::to_string(i) + ") instead of (" + std::to_string(ref[p].value) + ", " +
                   std::to_string(ref[p].index) + ")";
        }
    }
    return "";
}

/* Partials a and b of case c: exact but for float SUM and PROD and for MOMENTS,
 * which may differ by the order of folding (within s1, the sum of |v|, and s2,
 * the sum of v * v, per partial element; see ScaleCase). */
inline std::string CompareReduced(const EwCase &c, const Bytes &a, const Bytes &b,
                                  const std::vector<double> &s1, const std::vector<double> &s2)
{
    const int red = c.h.red_op;
    const int vt = c.vtype();
    const bool fl = vt >= TSR_FLOAT32;
    const size_t asz = c.OutElemBytes();

    if (a.size() != b.size()) {
        return "partials of " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
               " bytes";
    }
    for (size_t p = 0; p < a.size() / asz; p++) {
        const unsigned char *x = a.data() + p * asz;
        const unsigned char *y = b.data() + p * asz;
        bool ok;
        if (red == TSR_RED_SUM && fl) {
            ok = Close(Get<double>(x), Get<double>(y), 0, 1e-11 * s1[p] + 1e-300);
        } else if (red == TSR_RED_PROD && fl) {
            ok = Close(Get<double>(x), Get<double>(y), 1e-11, 1e-300);
        } else if (red == TSR_RED_MOMENTS) {
            double n = Get<double>(x);
            ok = n == Get<double>(y) &&
                 Close(Get<double>(x + 8), Get<double>(y + 8), 1e-12, 1e-11 * s1[p] / n + 1e-300) &&
                 Close(Get<double>(x + 16), Get<double>(y + 16), 1e-10, 1e-10 * s2[p] + 1e-300);
        } else if (red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX) {
            ok = SameValue(vt, x, y) && Get<int64_t>(x + 8) == Get<int64_t>(y + 8);
            if (!ok) {
                return "partial " + std::to_string(p) + ": (" + std::to_string(AsDouble(vt, x)) +
                       ", " + std::to_string(Get<int64_t>(x + 8)) + ") vs (" +
                       std::to_string(AsDouble(vt, y)) + ", " +
                       std::to_string(Get<int64_t>(y + 8)) + ")";
            }
        } else if (red == TSR_RED_SUM || red == TSR_RED_PROD) {
            ok = std::memcmp(x, y, asz) == 0;
        } else {
            ok = SameValue(vt, x, y);
        }
        if (!ok) {
            const int shown = asz == 8 && !fl ? TSR_INT64 : asz >= 8 ? TSR_FLOAT64 : vt;
            return "partial " + std::to_string(p) + ": " + std::to_string(AsDouble(shown, x)) +
                   " vs " + std::to_string(AsDouble(shown, y));
        }
    }
    return "";
}

/* ---- programs written by hand ----------------------------------------------------- */

/* A program that only loads `lf`, a generator leaf, over a chunk of `shape`: no
 * input buffers, the output is buffer 0. */
inline EwCase LoadCase(const tsr_ew_leaf_t &lf, std::initializer_list<int64_t> shape)
{
    EwCase c;
    std::memset(&c.h, 0, sizeof(c.h));
    c.h.magic = TSR_EW_MAGIC;
    c.h.ndim = (uint32_t)shape.size();
    std::copy(shape.begin(), shape.end(), c.h.shape);
    c.h.n_leaves = 1;
    c.h.n_instr = 1;
    c.leaves.push_back(lf);
    AddInstr(&c, TSR_EW_LOAD, lf.type);
    c.h.out_bytes = (uint64_t)c.Elems() * tsr_ew::dtype_bytes(lf.type);
    return c;
}

/* The float32 chain sqrt(abs(x * 1.5 + 0.5)) * x - 2 over x, the n contiguous
 * elements of buffer 0, into buffer 1: a fused program as the collections emit
 * it. x is the caller's to add to `inputs` (or to register itself). */
inline EwCase ChainCase(int64_t n)
{
    EwCase c;
    std::memset(&c.h, 0, sizeof(c.h));
    c.h.magic = TSR_EW_MAGIC;
    c.h.ndim = 1;
    c.h.shape[0] = n;
    tsr_ew_leaf_t lf;
    std::memset(&lf, 0, sizeof(lf));
    lf.kind = TSR_LEAF_BUFFER;
    lf.type = TSR_FLOAT32;
    lf.stride[0] = 1;
    c.leaves.push_back(lf);
    auto add = [&](int op, int a, int b, double imm) {
        int i = AddInstr(&c, op, TSR_FLOAT32, a, b);
        c.code[i].imm_f = imm;
        return i;
    };
    int v = add(TSR_EW_LOAD, -1, -1, 0);
    int t = add(TSR_EW_MUL, v, add(TSR_EW_CONST, -1, -1, 1.5), 0);
    t = add(TSR_EW_ADD, t, add(TSR_EW_CONST, -1, -1, 0.5), 0);
    t = add(TSR_EW_SQRT, add(TSR_EW_ABS, t, -1, 0), -1, 0);
    t = add(TSR_EW_MUL, t, v, 0);
    add(TSR_EW_SUB, t, add(TSR_EW_CONST, -1, -1, 2), 0);
    c.h.n_leaves = 1;
    c.h.n_instr = (uint32_t)c.code.size();
    c.h.out_buf = 1;
    c.h.out_bytes = (uint64_t)n * 4;
    return c;
}

/* ---- random arguments of the kernels ---------------------------------------------- */

/* A leaf of generator `kind` and `type` at a random place far into the index
 * space (up to 2^44), with the parameters of both tests' generator checks:
 * ARANGE from -7.25 by 0.1, UNIFORM in [-7.25, 12.5), NORMAL of mean 3 and
 * deviation 12.5. Its strides and then its seed are the caller's to draw. */
inline tsr_ew_leaf_t GeneratorLeaf(std::mt19937_64 &rng, int kind, int type)
{
    tsr_ew_leaf_t lf;
    std::memset(&lf, 0, sizeof(lf));
    lf.kind = kind;
    lf.type = type;
    lf.offset = (int64_t)(rng() >> 20);
    lf.p0 = kind == TSR_LEAF_NORMAL ? 3 : -7.25;
    lf.p1 = kind == TSR_LEAF_ARANGE ? 0.1 : 12.5;
    return lf;
}

/* The bytes of a kernel's argument struct. */
template <class T>
Bytes BytesOf(const T &arg)
{
    const unsigned char *p = reinterpret_cast<const unsigned char *>(&arg);
    return Bytes(p, p + sizeof(arg));
}

inline Bytes RandomBytes(std::mt19937_64 &rng, size_t n)
{
    Bytes b(n);
    for (unsigned char &x : b) {
        x = (unsigned char)rng();
    }
    return b;
}

/* A random combine of partials of values of a random dtype (set in *vtype): 1 to
 * 6 inputs of 1 to `max_elems` elements, final or not, with a random count, ddof
 * and finalisation. out_type is left 0: the tests choose it differently. */
inline tsr_red_combine_arg_t RandomCombineArg(std::mt19937_64 &rng, uint64_t max_elems, int *vtype)
{
    tsr_red_combine_arg_t a;
    std::memset(&a, 0, sizeof(a));
    a.red_op = TSR_RED_SUM + (int32_t)(rng() % 7);
    *vtype = (int)(rng() % TSR_N_DTYPES);
    a.acc_type = tsr_red_acc_type((tsr_red_op_t)a.red_op, (tsr_dtype_t)*vtype);
    a.final = (uint32_t)(rng() % 2);
    a.n_in = 1 + (uint32_t)(rng() % 6);
    a.n_elems = 1 + rng() % max_elems;
    a.count = 1 + (double)(rng() % 100);
    a.ddof = (double)(rng() % 2);
    a.fin = a.red_op == TSR_RED_MOMENTS            ? TSR_FIN_VAR + (int32_t)(rng() % 2)
            : a.red_op == TSR_RED_SUM && rng() % 2 ? TSR_FIN_MEAN
                                                   : TSR_FIN_CAST;
    return a;
}

/* A random copy of 0 to 4 dimensions of 1 to `max_extent` elements each, of 1,
 * 2, 4 or 8 bytes; alloc, the pieces and the buffers are left to the caller. */
inline tsr_copy_header_t RandomCopyHeader(std::mt19937_64 &rng, uint64_t max_extent)
{
    tsr_copy_header_t h;
    std::memset(&h, 0, sizeof(h));
    h.magic = TSR_COPY_MAGIC;
    h.ndim = (uint32_t)(rng() % 5);
    const uint32_t sizes[] = {1, 2, 4, 8};
    h.elem_size = sizes[rng() % 4];
    int64_t total = 1;
    for (uint32_t d = 0; d < h.ndim; d++) {
        h.shape[d] = 1 + (int64_t)(rng() % max_extent);
        total *= h.shape[d];
    }
    h.out_bytes = (uint64_t)total * h.elem_size;
    return h;
}

/* h->n_pieces random pieces of copy *h: each a fill (one in four) or a copy of a
 * block at a random place of the output, read with strides of -4 to 4 (0
 * broadcasts) from a random source appended to *srcs, which holds 0 to 2
 * elements before the lowest one read and, with `slack`, 0 to 2 after the
 * highest. Sets h->out_buf, the buffer after the sources. */
inline std::vector<tsr_copy_piece_t> RandomPieces(std::mt19937_64 &rng, tsr_copy_header_t *h,
                                                  std::vector<Bytes> *srcs, bool slack)
{
    std::vector<tsr_copy_piece_t> pieces(h->n_pieces);
    for (tsr_copy_piece_t &p : pieces) {
        std::memset(&p, 0, sizeof(p));
        p.kind = rng() % 4 == 0 ? TSR_PIECE_FILL : TSR_PIECE_COPY;
        p.fill = rng();
        int64_t lo = 0, hi = 0;
        for (uint32_t d = 0; d < h->ndim; d++) {
            p.shape[d] = 1 + (int64_t)(rng() % (uint64_t)h->shape[d]);
            p.dst_origin[d] = (int64_t)(rng() % (uint64_t)(h->shape[d] - p.shape[d] + 1));
            p.src_stride[d] = (int64_t)(rng() % 9) - 4;
            int64_t span = (p.shape[d] - 1) * p.src_stride[d];
            (span < 0 ? lo : hi) += span;
        }
        p.src_offset = -lo + (int64_t)(rng() % 3);
        if (p.kind == TSR_PIECE_COPY) {
            p.buf = (int32_t)srcs->size();
            const int64_t after = slack ? (int64_t)(rng() % 3) : 0;
            srcs->push_back(
                RandomBytes(rng, (size_t)(p.src_offset + hi + 1 + after) * h->elem_size));
        }
    }
    h->out_buf = (uint32_t)srcs->size();
    return pieces;
}

/* The copy kernel's argument: the header, then its pieces. */
inline Bytes CopyArg(const tsr_copy_header_t &h, const std::vector<tsr_copy_piece_t> &pieces)
{
    Bytes arg(sizeof(h) + pieces.size() * sizeof(tsr_copy_piece_t));
    std::memcpy(arg.data(), &h, sizeof(h));
    std::memcpy(arg.data() + sizeof(h), pieces.data(), pieces.size() * sizeof(pieces[0]));
    return arg;
}

/* ---- the fixtures' base ------------------------------------------------------------ */

/* What the fixtures of both tests hold. Their SetUp starts rt_ (each its own
 * way), then calls Seed. */
class KernelTest : public testing::Test {
protected:
    /* Seeds rng_ from TSR_TEST_SEED, or afresh, and prints the seed: a failing
     * run can be replayed. */
    void Seed()
    {
        seed_ = tsr_test::TestSeed();
        std::printf("[   SEED   ] %s\n", tsr_test::SeedTrace(seed_).c_str());
        rng_.seed(seed_);
    }

    TaskResult Run(const tsr_codelet_t *cl, const Bytes &arg, const std::vector<Bytes> &in,
                   tsr_device_kind_t kind, const Bytes *init = nullptr)
    {
        return RunKernel(rt_.get(), cl, arg, in, kind, init);
    }

    /* `got`, case c's output from another kernel, against the CPU kernel's:
     * elementwise outputs exactly, partials within the order of folding, with
     * scale(square) giving the sums of |v| (false) or v * v (true) that scale
     * the float tolerances (see ScaleCase). Returns the difference or "". */
    template <class ScaleFn>
    std::string CompareWithCpu(const EwCase &c, const Bytes &got, ScaleFn scale)
    {
        TaskResult r = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CPU);
        if (r.status != TSR_OK) {
            return "the CPU kernel failed: " + r.message;
        }
        if (c.h.red_op == TSR_RED_NONE) {
            return DiffArrays(c.vtype(), r.out, got);
        }
        const bool scaled = NeedsScales(c);
        std::vector<double> s1 = scaled ? scale(false) : std::vector<double>();
        std::vector<double> s2 = scaled ? scale(true) : std::vector<double>();
        return CompareReduced(c, r.out, got, s1, s2);
    }

    tsr_test::Runtime rt_;
    uint64_t seed_ = 0;
    std::mt19937_64 rng_;
};

}  // namespace tsr_ew_test

#endif /* TSR_TESTS_CUDA_ARRAY_KERNEL_CHECK_H */
