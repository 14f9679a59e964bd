/* Random fused programs (kernel_args.h) with their input buffers, for the tests of
 * the CUDA array kernels (ew_emulation_test, cuda_kernels_test): random shapes of
 * up to 4 dimensions, leaves read from buffers with random layouts (transposed,
 * padded, broadcast, reversed) or from generators at random global indices,
 * random ops, casts and constants over every dtype, and optionally a reduction
 * of any kind over random dimensions.
 *
 * Programs whose float results are summed, multiplied or summarised (SUM, PROD,
 * MOMENTS) end in a clamp that keeps the values where a different order of
 * folding cannot turn a finite result into inf or NaN (NaN itself is kept). */
#ifndef TSR_TESTS_CUDA_EW_RANDOM_PROGRAM_H
#define TSR_TESTS_CUDA_EW_RANDOM_PROGRAM_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/ew_blob.h"
#include "kernels/cuda/ew_eval.cuh"

namespace tsr_ew_test {

using Bytes = std::vector<unsigned char>;

/* What a generated program may contain. */
struct GenOptions {
    bool transcendental = true; /* POW on floats, EXP, LOG, SIN, COS, NORMAL leaves */
    int red_op = -1;            /* tsr_red_op_t, or -1 for a random one (or none) */
    int max_elems = 6000;
};

struct EwCase {
    tsr_ew_header_t h;
    std::vector<tsr_ew_leaf_t> leaves;
    std::vector<tsr_ew_instr_t> code;
    std::vector<Bytes> inputs; /* buffers 0 .. n-1; the output is buffer n */
    std::string text;          /* a description for failure messages */

    int vtype() const { return ResultType(code.back()); }
    static int ResultType(const tsr_ew_instr_t &in)
    {
        if (in.op >= TSR_EW_LT && in.op <= TSR_EW_NE) {
            return TSR_BOOL;
        }
        return in.op == TSR_EW_CAST ? in.aux : in.type;
    }
    Bytes Blob() const { return tsr_test::EwBlob(h, leaves, code); }
    /* Elements of the chunk, and of the output (partial elements if reducing). */
    int64_t Elems() const
    {
        int64_t n = 1;
        for (uint32_t d = 0; d < h.ndim; d++) {
            n *= h.shape[d];
        }
        return n;
    }
    int64_t OutElems() const
    {
        int64_t n = 1;
        for (uint32_t d = 0; d < h.ndim; d++) {
            n *= h.red_op != TSR_RED_NONE && ((h.red_mask >> d) & 1u) ? 1 : h.shape[d];
        }
        return n;
    }
    size_t OutElemBytes() const
    {
        return h.red_op == TSR_RED_NONE ? (size_t)tsr_ew::dtype_bytes(vtype())
                                        : (size_t)tsr_ew::acc_bytes(h.red_op, vtype());
    }
};

/* Appends an instruction (without immediates) to the program of `prog`; returns
 * its index, the value's operand number. */
inline int AddInstr(EwCase *prog, int op, int type, int a = -1, int b = -1, int c = -1, int aux = 0)
{
    prog->code.push_back(tsr_test::EwInstr(op, type, a, b, c, aux));
    return (int)prog->code.size() - 1;
}

inline const char *OpName(int op)
{
    static const char *const names[] = {
        "load", "const", "cast", "add", "sub",   "mul", "div", "pow",  "min", "max", "lt",  "le",
        "gt",   "ge",    "eq",   "ne",  "where", "neg", "abs", "sqrt", "exp", "log", "sin", "cos"};
    return op >= 0 && op < TSR_EW_N_OPS ? names[op] : "?";
}

/* Builds one random case. */
class ProgramGen {
public:
    ProgramGen(std::mt19937_64 &rng, const GenOptions &opt) : rng_(rng), opt_(opt) {}

    EwCase Make()
    {
        c_ = EwCase();
        std::memset(&c_.h, 0, sizeof(c_.h));
        c_.h.magic = TSR_EW_MAGIC;
        MakeShape();
        int red = opt_.red_op >= 0 ? opt_.red_op : Pick(8) < 3 ? TSR_RED_NONE : 1 + Pick(7);
        c_.h.red_op = red;
        if (red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX) {
            c_.h.red_index = (uint32_t)IndexValue();
        }
        const int first = (int)c_.leaves.size();
        const int n_leaves = 1 + Pick(4);
        for (int l = 0; l < n_leaves; l++) {
            AddLeaf();
        }
        for (int l = 0; l < n_leaves; l++) {
            if (Pick(4) != 0 || l == 0) {
                Load(first + l);
            }
        }
        if (Pick(10) == 0) {
            WideBody();
        } else {
            const int n_ops = 1 + Pick(16);
            for (int i = 0; i < n_ops; i++) {
                RandomOp();
            }
        }
        if (red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX) {
            EnsureLastIsNot(c_.h.red_index);
        }
        Clamp(red);
        c_.h.n_leaves = (uint32_t)c_.leaves.size();
        c_.h.n_instr = (uint32_t)c_.code.size();
        c_.h.out_buf = (uint32_t)c_.inputs.size();
        if (red != TSR_RED_NONE) {
            for (uint32_t d = 0; d < c_.h.ndim; d++) {
                c_.h.red_mask |= Pick(2) ? 1u << d : 0u;
            }
            c_.h.red_mask = Pick(5) == 0 ? (1u << c_.h.ndim) - 1 : c_.h.red_mask;
        }
        c_.h.out_bytes = (uint64_t)c_.OutElems() * c_.OutElemBytes();
        Describe();
        return c_;
    }

private:
    int Pick(int n) { return (int)(rng_() % (uint64_t)n); }
    double Uniform(double lo, double hi)
    {
        return lo + (hi - lo) * (double)(rng_() >> 11) * 0x1.0p-53;
    }

    void MakeShape()
    {
        int64_t total = 1;
        c_.h.ndim = (uint32_t)Pick(5);
        for (uint32_t d = 0; d < c_.h.ndim; d++) {
            int r = Pick(10);
            int64_t n = r < 2 ? 1 : r < 7 ? 2 + Pick(6) : 7 + Pick(34);
            c_.h.shape[d] = n;
            total *= n;
        }
        if (c_.h.ndim >= 1 && c_.h.ndim <= 2 && Pick(8) == 0) {
            c_.h.shape[c_.h.ndim - 1] = 500 + Pick(opt_.max_elems);
            total = c_.Elems();
        }
        for (uint32_t d = 0; total > opt_.max_elems && d < c_.h.ndim; d++) {
            total /= c_.h.shape[d];
            c_.h.shape[d] = 1 + Pick(3);
            total *= c_.h.shape[d];
        }
    }

    /* C-order strides of the chunk. */
    void DenseStrides(int64_t *s) const
    {
        int64_t k = 1;
        for (int d = (int)c_.h.ndim - 1; d >= 0; d--) {
            s[d] = k;
            k *= c_.h.shape[d];
        }
    }

    int RandomType() { return Pick(TSR_N_DTYPES); }

    void AddLeaf(int kind = -1, int type = -1)
    {
        tsr_ew_leaf_t lf;
        std::memset(&lf, 0, sizeof(lf));
        const int gens = opt_.transcendental ? 3 : 2;
        lf.kind = kind >= 0 ? kind : Pick(10) < 7 ? TSR_LEAF_BUFFER : 1 + Pick(gens);
        lf.type = type >= 0 ? type : RandomType();
        lf.seed = rng_();
        if (lf.kind == TSR_LEAF_BUFFER) {
            BufferLayout(&lf);
        } else {
            GeneratorLayout(&lf);
        }
        c_.leaves.push_back(lf);
    }

    /* A buffer holding the chunk as a permuted, padded, partly broadcast and
     * partly reversed array. */
    void BufferLayout(tsr_ew_leaf_t *lf)
    {
        const uint32_t nd = c_.h.ndim;
        int perm[TSR_MAX_DIMS];
        int64_t ext[TSR_MAX_DIMS];
        int64_t size = 1;
        for (uint32_t d = 0; d < nd; d++) {
            perm[d] = (int)d;
        }
        if (Pick(3) == 0) {
            std::shuffle(perm, perm + nd, rng_);
        }
        for (int i = (int)nd - 1; i >= 0; i--) {
            const int d = perm[i];
            const bool broadcast = Pick(6) == 0;
            ext[d] = broadcast ? 1 : c_.h.shape[d] + (Pick(5) == 0 ? Pick(3) : 0);
            lf->stride[d] = broadcast ? 0 : size;
            size *= ext[d];
        }
        lf->offset = Pick(4);
        for (uint32_t d = 0; d < nd; d++) {
            if (lf->stride[d] != 0 && Pick(7) == 0) {
                lf->offset += (c_.h.shape[d] - 1) * lf->stride[d];
                lf->stride[d] = -lf->stride[d];
            }
        }
        size += lf->offset + Pick(3);
        lf->buf = (int32_t)c_.inputs.size();
        c_.inputs.push_back(RandomValues(lf->type, size));
    }

    void GeneratorLayout(tsr_ew_leaf_t *lf)
    {
        int64_t s[TSR_MAX_DIMS];
        DenseStrides(s);
        lf->offset = Pick(3) == 0 ? (int64_t)(rng_() >> 24) : Pick(1000);
        for (uint32_t d = 0; d < c_.h.ndim; d++) {
            lf->stride[d] = Pick(4) == 0 ? Pick(7) - 3 : s[d] * (1 + Pick(2));
        }
        lf->offset += 4 * (int64_t)c_.Elems(); /* keeps indices >= 0 with negative strides */
        switch (lf->kind) {
        case TSR_LEAF_ARANGE:
            lf->p0 = Pick(2) ? Uniform(-100, 100) : Pick(21) - 10;
            lf->p1 = Pick(2) ? Uniform(-3, 3) : Pick(5) - 2;
            break;
        case TSR_LEAF_UNIFORM:
            lf->p0 = Uniform(-50, 50);
            lf->p1 = lf->p0 + Uniform(0.001, 100);
            break;
        default:
            lf->p0 = Uniform(-10, 10);
            lf->p1 = Uniform(0.1, 5);
            break;
        }
    }

    template <class T>
    void Put(Bytes &b, int64_t i, T v)
    {
        std::memcpy(b.data() + i * sizeof(T), &v, sizeof(T));
    }

    double RandomFloat(bool is_f64)
    {
        switch (Pick(30)) {
        case 0:
            return NAN;
        case 1:
            return INFINITY;
        case 2:
            return -INFINITY;
        case 3:
            return -0.0;
        case 4:
            return is_f64 ? 1e15 : 1e30;
        case 5:
            return is_f64 ? -1e-310 : 1e-40; /* subnormal */
        case 6:
        case 7:
        case 8:
            return Pick(21) - 10;
        default:
            return Uniform(-100, 100);
        }
    }

    int64_t RandomInt()
    {
        return Pick(3) == 0 ? (int64_t)rng_() : Pick(3) == 0 ? Pick(2001) - 1000 : Pick(21) - 10;
    }

    Bytes RandomValues(int type, int64_t n)
    {
        Bytes b((size_t)(n * tsr_ew::dtype_bytes(type)));
        for (int64_t i = 0; i < n; i++) {
            switch (type) {
            case TSR_BOOL: /* any nonzero byte is true; loads make it 1 */
                Put<uint8_t>(b, i, Pick(8) == 0 ? (uint8_t)(2 + Pick(254)) : (uint8_t)Pick(2));
                break;
            case TSR_UINT8:
                Put<uint8_t>(b, i, (uint8_t)RandomInt());
                break;
            case TSR_UINT16:
                Put<uint16_t>(b, i, (uint16_t)RandomInt());
                break;
            case TSR_INT32:
                Put<int32_t>(b, i, (int32_t)RandomInt());
                break;
            case TSR_INT64:
                Put<int64_t>(b, i, RandomInt());
                break;
            case TSR_FLOAT32:
                Put<float>(b, i, (float)RandomFloat(false));
                break;
            default:
                Put<double>(b, i, RandomFloat(true));
                break;
            }
        }
        return b;
    }

    /* ---- instructions ---- */

    int Add(int op, int type, int a = -1, int b = -1, int c = -1, int aux = 0)
    {
        return AddInstr(&c_, op, type, a, b, c, aux);
    }

    int Load(int leaf) { return Add(TSR_EW_LOAD, c_.leaves[leaf].type, -1, -1, -1, leaf); }

    int Const(int type)
    {
        int i = Add(TSR_EW_CONST, type);
        tsr_ew_instr_t &in = c_.code[i];
        if (type >= TSR_FLOAT32) {
            in.imm_f = Pick(6) == 0 ? RandomFloat(type == TSR_FLOAT64)
                       : Pick(2)    ? Pick(9) - 4
                                    : Uniform(-4, 4);
        } else {
            in.imm_i = Pick(4) == 0 ? RandomInt() : Pick(9) - 4;
        }
        return i;
    }

    int ConstValue(int type, double v)
    {
        int i = Add(TSR_EW_CONST, type);
        c_.code[i].imm_f = v;
        c_.code[i].imm_i = (int64_t)v;
        return i;
    }

    int TypeOf(int v) const { return EwCase::ResultType(c_.code[v]); }

    /* A value of `type`: often the latest one (chains), else any earlier one,
     * else a constant or a cast of some value. */
    int ValueOfType(int type)
    {
        const int n = (int)c_.code.size();
        if (n > 0 && TypeOf(n - 1) == type && Pick(2) == 0) {
            return n - 1;
        }
        std::vector<int> cands;
        for (int i = 0; i < n; i++) {
            if (TypeOf(i) == type) {
                cands.push_back(i);
            }
        }
        if (!cands.empty() && Pick(4) != 0) {
            return cands[(size_t)Pick((int)cands.size())];
        }
        if (n == 0 || Pick(3) == 0) {
            return Const(type);
        }
        int from = Pick(2) == 0 ? n - 1 : Pick(n);
        return Add(TSR_EW_CAST, TypeOf(from), from, -1, -1, type);
    }

    int LatestType()
    {
        return c_.code.empty() || Pick(3) == 0 ? RandomType() : TypeOf((int)c_.code.size() - 1);
    }

    int FloatType() { return Pick(2) ? TSR_FLOAT32 : TSR_FLOAT64; }

    void RandomOp()
    {
        static const int bins[] = {TSR_EW_ADD, TSR_EW_SUB, TSR_EW_MUL, TSR_EW_MIN,
                                   TSR_EW_MAX, TSR_EW_POW, TSR_EW_DIV};
        static const int cmps[] = {TSR_EW_LT, TSR_EW_LE, TSR_EW_GT,
                                   TSR_EW_GE, TSR_EW_EQ, TSR_EW_NE};
        static const int funcs[] = {TSR_EW_SQRT, TSR_EW_EXP, TSR_EW_LOG, TSR_EW_SIN, TSR_EW_COS};
        int r = Pick(12);
        int t = LatestType();
        if (r < 4) {
            int op = bins[Pick(7)];
            op = op == TSR_EW_POW && t >= TSR_FLOAT32 && !opt_.transcendental ? TSR_EW_MUL : op;
            t = op == TSR_EW_DIV && t < TSR_FLOAT32 ? FloatType() : t;
            int a = ValueOfType(t);
            int b = ValueOfType(t);
            Add(op, t, a, b);
        } else if (r < 6) {
            int a = ValueOfType(t);
            int b = ValueOfType(t);
            Add(cmps[Pick(6)], t, a, b);
        } else if (r == 6) {
            int a = ValueOfType(TSR_BOOL);
            int b = ValueOfType(t);
            int c = ValueOfType(t);
            Add(TSR_EW_WHERE, t, a, b, c);
        } else if (r == 7) {
            Add(Pick(2) ? TSR_EW_NEG : TSR_EW_ABS, t, ValueOfType(t));
        } else if (r == 8) {
            int op = opt_.transcendental ? funcs[Pick(5)] : TSR_EW_SQRT;
            t = t < TSR_FLOAT32 ? FloatType() : t;
            Add(op, t, ValueOfType(t));
        } else if (r == 9) {
            int from = Pick((int)c_.code.size());
            Add(TSR_EW_CAST, TypeOf(from), from, -1, -1, RandomType());
        } else if (r == 10) {
            Const(RandomType());
        } else {
            int n = (int)c_.code.size();
            int from = n - 1 - Pick(std::min(n, 3));
            Add(TSR_EW_CAST, TypeOf(from), from, -1, -1, LatestType());
        }
    }

    /* Many values alive at once: 17 to 24 of them, all summed at the end, so that
     * the kernels need more slots than the fast ones have. */
    void WideBody()
    {
        std::vector<int> vals;
        const int n = 17 + Pick(8);
        const int t = Pick(2) ? TSR_INT64 : TSR_FLOAT64;
        for (int i = 0; i < n && c_.code.size() < 50; i++) {
            int from = Pick((int)c_.code.size());
            int v = Add(TSR_EW_CAST, TypeOf(from), from, -1, -1, t);
            if (Pick(2)) {
                v = Add(TSR_EW_MUL, t, v, ValueOfType(t));
            }
            vals.push_back(v);
        }
        int acc = vals[0];
        for (size_t i = 1; i < vals.size(); i++) {
            acc = Add(TSR_EW_ADD, t, acc, vals[i]);
        }
    }

    /* ARGMIN/ARGMAX: an int64 index from an ARANGE leaf (the flat index, or one
     * along a dimension), loaded first. */
    int IndexValue()
    {
        int64_t s[TSR_MAX_DIMS];
        tsr_ew_leaf_t lf;
        std::memset(&lf, 0, sizeof(lf));
        lf.kind = TSR_LEAF_ARANGE;
        lf.type = TSR_INT64;
        lf.p0 = 0;
        lf.p1 = 1;
        lf.offset = Pick(2) ? 0 : Pick(100000);
        DenseStrides(s);
        const int axis = c_.h.ndim > 0 && Pick(3) == 0 ? Pick((int)c_.h.ndim) : -1;
        for (uint32_t d = 0; d < c_.h.ndim; d++) {
            lf.stride[d] = axis < 0 ? s[d] : (int)d == axis ? 1 : 0;
        }
        c_.leaves.push_back(lf);
        return Load((int)c_.leaves.size() - 1);
    }

    void EnsureLastIsNot(uint32_t v)
    {
        if (c_.code.size() == (size_t)v + 1) {
            int t = Pick(2) ? TSR_FLOAT32 : TSR_INT32;
            Add(TSR_EW_CAST, TSR_INT64, (int)v, -1, -1, t);
            Add(TSR_EW_NEG, t, (int)c_.code.size() - 1);
        }
    }

    /* Keep SUM/MOMENTS values of float type within +-limit (else 0) and PROD
     * factors of float type within (0.5, 1.5) (else 1); NaN passes. */
    void Clamp(int red)
    {
        const int v = (int)c_.code.size() - 1;
        const int t = TypeOf(v);
        if (t < TSR_FLOAT32) {
            return;
        }
        if (red == TSR_RED_SUM || red == TSR_RED_MOMENTS) {
            int a = Add(TSR_EW_ABS, t, v);
            int big = Add(TSR_EW_GT, t, a, ConstValue(t, t == TSR_FLOAT32 ? 1e30 : 1e100));
            Add(TSR_EW_WHERE, t, big, ConstValue(t, 0), v);
        } else if (red == TSR_RED_PROD) {
            int d = Add(TSR_EW_SUB, t, v, ConstValue(t, 1));
            int far = Add(TSR_EW_GE, t, Add(TSR_EW_ABS, t, d), ConstValue(t, 0.5));
            Add(TSR_EW_WHERE, t, far, ConstValue(t, 1), v);
        }
    }

    void Describe()
    {
        std::string &s = c_.text;
        s = "shape (";
        for (uint32_t d = 0; d < c_.h.ndim; d++) {
            s += std::to_string(c_.h.shape[d]) + (d + 1 < c_.h.ndim ? "," : "");
        }
        s += ") red " + std::to_string(c_.h.red_op) + " mask " + std::to_string(c_.h.red_mask) +
             "\n";
        for (size_t l = 0; l < c_.leaves.size(); l++) {
            const tsr_ew_leaf_t &lf = c_.leaves[l];
            s += "  leaf " + std::to_string(l) + ": kind " + std::to_string(lf.kind) + " type " +
                 std::to_string(lf.type) + " off " + std::to_string(lf.offset) + " strides";
            for (uint32_t d = 0; d < c_.h.ndim; d++) {
                s += " " + std::to_string(lf.stride[d]);
            }
            s += "\n";
        }
        for (size_t i = 0; i < c_.code.size(); i++) {
            const tsr_ew_instr_t &in = c_.code[i];
            s += "  " + std::to_string(i) + " = " + OpName(in.op) + "." + std::to_string(in.type) +
                 " " + std::to_string(in.a) + " " + std::to_string(in.b) + " " +
                 std::to_string(in.c) + " aux " + std::to_string(in.aux) + "\n";
        }
    }

    std::mt19937_64 &rng_;
    GenOptions opt_;
    EwCase c_;
};

}  // namespace tsr_ew_test

#endif /* TSR_TESTS_CUDA_EW_RANDOM_PROGRAM_H */
