/* Shared by the tests of the CUDA array kernels (ew_emulation_test.cc on the host,
 * cuda_kernels_test.cc on a GPU): running an array codelet as a task pinned to a
 * device kind, comparing outputs element by element (exactly for integers, bools
 * and, unless told otherwise, floats; NaN matching any NaN), the tolerances of
 * float reductions, and a reference for ARGMIN/ARGMAX partials. */
#ifndef TSR_TESTS_CUDA_ARRAY_KERNEL_CHECK_H
#define TSR_TESTS_CUDA_ARRAY_KERNEL_CHECK_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
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
    auto add = [&](int op, int type, int a, int b, int aux) {
        tsr_ew_instr_t in;
        std::memset(&in, 0, sizeof(in));
        in.op = op;
        in.type = type;
        in.a = a;
        in.b = b;
        in.c = -1;
        in.aux = aux;
        s.code.push_back(in);
        return (int)s.code.size() - 1;
    };
    if (c.vtype() != TSR_FLOAT64) {
        v = add(TSR_EW_CAST, c.vtype(), v, -1, TSR_FLOAT64);
    }
    if (square) {
        add(TSR_EW_MUL, TSR_FLOAT64, v, v, 0);
    } else {
        add(TSR_EW_ABS, TSR_FLOAT64, v, -1, 0);
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

}  // namespace tsr_ew_test

#endif /* TSR_TESTS_CUDA_ARRAY_KERNEL_CHECK_H */
