/* The work of one thread of the fused-program kernels (ew_cuda.cu), on a plan
 * (ew_plan.cuh): evaluating the program on a group of elements, and what a
 * thread does with groups in each mode. __host__ __device__, so that the host
 * emulation runs exactly this code; only the loops over threads and the
 * shared-memory barriers are the kernels' own.
 *
 * Registers and memory: the result of the previous instruction (`cur`, one
 * value per element of the group) stays in registers, the slots are
 * thread-local memory (L1), operands and instructions are read from the
 * kernel's parameter. A leaf read with unit stride whose group lies in one row
 * is loaded with 16-byte (or 8-byte) vector loads when aligned, and a full group
 * of results is stored the same way. */
#ifndef TSR_KERNELS_CUDA_EW_EXEC_CUH
#define TSR_KERNELS_CUDA_EW_EXEC_CUH

#include "kernels/cuda/ew_plan.cuh"

namespace tsr_ew {

/* ---- group addressing ------------------------------------------------------------- */

/* a / b and a % b, in 32 bits when both fit (the usual case, much cheaper). */
TSR_HDI void divmod(int64_t a, int64_t b, int64_t *q, int64_t *r)
{
    if ((((uint64_t)a | (uint64_t)b) >> 32) == 0) {
        uint32_t q32 = (uint32_t)a / (uint32_t)b;
        *q = q32;
        *r = (uint32_t)a - q32 * (uint32_t)b;
    } else {
        *q = a / b;
        *r = a - *q * b;
    }
}

/* Coordinates in space `s` of its flat (C-order) index i. */
TSR_HDI void unflatten(const ew_space &s, int64_t i, int64_t *c)
{
    for (int d = s.nd - 1; d > 0; d--) {
        divmod(i, s.n[d], &i, &c[d]);
    }
    if (s.nd > 0) {
        c[0] = i;
    }
}

/* The next coordinates in C order. */
TSR_HDI void advance(const ew_space &s, int64_t *c)
{
    int d = s.nd - 1;
    while (d >= 0 && ++c[d] == s.n[d] && d > 0) {
        c[d--] = 0;
    }
}

/* Per leaf: its offset plus the part of the y coordinates (yc). */
TSR_HDI void leaf_bases(const ew_plan &P, const int64_t *yc, int64_t *ybase)
{
    for (uint32_t l = 0; l < P.n_leaves; l++) {
        int64_t o = P.leaf[l].offset;
        for (int i = 0; i < P.y.nd; i++) {
            o += yc[i] * P.leaf[l].stride[P.y.dim[i]];
        }
        ybase[l] = o;
    }
}

/* Offsets (elements) of the group's elements in leaf `lf`; true when the group
 * lies in one row of x's innermost dimension (offsets off[0] + k * *stride). */
template <int E>
TSR_HDI bool group_offsets(const ew_space &x, const ew_pleaf &lf, int64_t base, const int64_t *xc,
                           int nv, int64_t *off, int64_t *stride)
{
    const int in = x.nd - 1;
    const int64_t s = lf.stride[x.dim[in]];
    int64_t o = base;
    int64_t c[TSR_MAX_DIMS];

    for (int i = 0; i < x.nd; i++) {
        o += xc[i] * lf.stride[x.dim[i]];
    }
    *stride = s;
    if (xc[in] + nv <= x.n[in]) {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            off[k] = o + k * s;
        }
        return true;
    }
    for (int i = 0; i < x.nd; i++) {
        c[i] = xc[i];
    }
    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        off[k] = o;
        if (k + 1 < nv) {
            int d = in;
            o += lf.stride[x.dim[d]];
            while (++c[d] == x.n[d] && d > 0) {
                o -= lf.stride[x.dim[d]] * x.n[d];
                c[d--] = 0;
                o += lf.stride[x.dim[d]];
            }
        }
    }
    return false;
}

template <int BYTES>
TSR_HDI bool aligned(const void *p)
{
    constexpr uintptr_t w = BYTES < 16 ? BYTES : 16;
    return ((uintptr_t)p & (w - 1)) == 0;
}

/* Element k (of ES bytes) of words w, little-endian. */
template <int ES>
TSR_HDI ew_raw word_elem(const uint32_t *w, int k)
{
    if constexpr (ES == 8) {
        return (ew_raw)w[2 * k] | (ew_raw)w[2 * k + 1] << 32;
    } else if constexpr (ES == 4) {
        return w[k];
    } else {
        constexpr int per = 4 / ES;
        return (w[k / per] >> (8 * ES * (k % per))) & ((1u << (8 * ES)) - 1);
    }
}

/* Move `bytes` (8, or a multiple of 16) between aligned memory and 32-bit words:
 * 16-byte (or one 8-byte) vector accesses on the device, memcpy on the host. */
template <int BYTES>
TSR_HDI void load_words(const char *p, uint32_t *w)
{
#ifdef __CUDA_ARCH__
    if constexpr (BYTES >= 16) {
        TSR_UNROLL
        for (int i = 0; i < BYTES / 16; i++) {
            uint4 q = reinterpret_cast<const uint4 *>(p)[i];
            w[4 * i] = q.x;
            w[4 * i + 1] = q.y;
            w[4 * i + 2] = q.z;
            w[4 * i + 3] = q.w;
        }
    } else {
        uint2 q = *reinterpret_cast<const uint2 *>(p);
        w[0] = q.x;
        w[1] = q.y;
    }
#else
    memcpy(w, p, BYTES);
#endif
}

template <int BYTES>
TSR_HDI void store_words(char *p, const uint32_t *w)
{
#ifdef __CUDA_ARCH__
    if constexpr (BYTES >= 16) {
        TSR_UNROLL
        for (int i = 0; i < BYTES / 16; i++) {
            reinterpret_cast<uint4 *>(p)[i] =
                make_uint4(w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]);
        }
    } else {
        *reinterpret_cast<uint2 *>(p) = make_uint2(w[0], w[1]);
    }
#else
    memcpy(p, w, BYTES);
#endif
}

/* Whether E elements of ES bytes go as whole words (8 bytes, or a multiple of 16). */
template <int ES, int E>
struct vector_io {
    static constexpr int bytes = ES * E;
    static constexpr bool value = E > 1 && (bytes == 8 || bytes % 16 == 0);
};

/* Load E contiguous elements of ES bytes from p, aligned to min(16, ES * E). */
template <int ES, int E>
TSR_HDI void load_contig(const char *p, ew_raw *v)
{
    if constexpr (vector_io<ES, E>::value) {
        uint32_t w[vector_io<ES, E>::bytes / 4];
        load_words<vector_io<ES, E>::bytes>(p, w);
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            v[k] = word_elem<ES>(w, k);
        }
    } else {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            v[k] = ld_raw<ES>(p + k * ES);
        }
    }
}

/* Store E contiguous elements, aligned as load_contig. */
template <int ES, int E>
TSR_HDI void store_contig(char *p, const ew_raw *v)
{
    if constexpr (vector_io<ES, E>::value) {
        uint32_t w[vector_io<ES, E>::bytes / 4];
        TSR_UNROLL
        for (int i = 0; i < vector_io<ES, E>::bytes / 4; i++) {
            w[i] = 0;
        }
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            if constexpr (ES == 8) {
                w[2 * k] = (uint32_t)v[k];
                w[2 * k + 1] = (uint32_t)(v[k] >> 32);
            } else if constexpr (ES == 4) {
                w[k] = (uint32_t)v[k];
            } else {
                constexpr int per = 4 / ES;
                w[k / per] |= ((uint32_t)v[k] & ((1u << (8 * ES)) - 1u)) << (8 * ES * (k % per));
            }
        }
        store_words<vector_io<ES, E>::bytes>(p, w);
    } else {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            st_raw<ES>(p + k * ES, v[k]);
        }
    }
}

/* ---- the instructions --------------------------------------------------------------- */

template <int ES, int E>
TSR_HDI void load_leaf(const ew_plan &P, int l, const int64_t *ybase, const int64_t *xc, int nv,
                       ew_raw *v)
{
    const ew_pleaf &lf = P.leaf[l];
    int64_t off[E];
    int64_t s;
    bool row = group_offsets<E>(P.x, lf, ybase[l], xc, nv, off, &s);
    const char *p = lf.ptr + off[0] * ES;

    if (E > 1 && row && s == 1 && nv == E && aligned<ES * E>(p)) {
        load_contig<ES, E>(p, v);
        return;
    }
    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        v[k] = k < nv ? ld_raw<ES>(lf.ptr + off[k] * ES) : 0;
    }
}

template <int DT, int E>
TSR_HDI void gen_leaf(const ew_plan &P, int l, const int64_t *ybase, const int64_t *xc, int nv,
                      ew_raw *v)
{
    const ew_pleaf &lf = P.leaf[l];
    int64_t off[E];
    int64_t s;
    ew_raw t[E];

    group_offsets<E>(P.x, lf, ybase[l], xc, nv, off, &s);
    TSR_NO_UNROLL
    for (int k = 0; k < E; k++) {
        t[k] = raw_put(from_f<DT>(gen_value(lf.kind, lf.p0, lf.p1, lf.key, off[k])));
    }
    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        v[k] = t[k];
    }
}

/* d[k] = op(a[k], b[k]); costly ops go through memory without unrolling, to keep
 * the code small and `d` in registers. */
template <int OP, int DT, int E>
TSR_HDI void apply2(ew_raw *d, const ew_raw *a, const ew_raw *b)
{
    if constexpr (op_is_heavy<OP>::value) {
        ew_raw ta[E], tb[E];
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            ta[k] = a[k];
            tb[k] = b[k];
        }
        TSR_NO_UNROLL
        for (int k = 0; k < E; k++) {
            ta[k] = op2<OP, DT>(ta[k], tb[k]);
        }
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            d[k] = ta[k];
        }
    } else {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            d[k] = op2<OP, DT>(a[k], b[k]);
        }
    }
}

template <int OP, int DT, int E>
TSR_HDI void apply1(ew_raw *d, const ew_raw *a)
{
    if constexpr (op_is_heavy<OP>::value) {
        ew_raw ta[E];
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            ta[k] = a[k];
        }
        TSR_NO_UNROLL
        for (int k = 0; k < E; k++) {
            ta[k] = op1<OP, DT>(ta[k]);
        }
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            d[k] = ta[k];
        }
    } else {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            d[k] = op1<OP, DT>(a[k]);
        }
    }
}

template <int FROM, int TO, int E>
TSR_HDI void cast_group(ew_raw *d, const ew_raw *a)
{
    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        d[k] = cast<FROM, TO>(a[k]);
    }
}

/* The values of source `src`. */
template <int E, int NS>
TSR_HDI void fetch(const ew_plan &P, uint8_t src, const ew_raw *cur, const ew_raw (*slot)[E],
                   ew_raw *v)
{
    if (src == kSrcPrev) {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            v[k] = cur[k];
        }
    } else if (src == kSrcNone) {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            v[k] = 0;
        }
    } else if (src >= kSrcConst) {
        const ew_raw c = P.consts[src - kSrcConst];
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            v[k] = c;
        }
    } else {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            v[k] = slot[src][k];
        }
    }
}

/* Case lists of the dispatch switch: every (op, type) pair the CPU kernel defines. */
#define TSR_EW_BIN_OPS(X) \
    X(TSR_EW_ADD)         \
    X(TSR_EW_SUB)         \
    X(TSR_EW_MUL)         \
    X(TSR_EW_POW)         \
    X(TSR_EW_MIN)         \
    X(TSR_EW_MAX)         \
    X(TSR_EW_LT)          \
    X(TSR_EW_LE)          \
    X(TSR_EW_GT)          \
    X(TSR_EW_GE)          \
    X(TSR_EW_EQ)          \
    X(TSR_EW_NE)
#define TSR_EW_UN_FLOAT_OPS(X) \
    X(TSR_EW_SQRT)             \
    X(TSR_EW_EXP)              \
    X(TSR_EW_LOG)              \
    X(TSR_EW_SIN)              \
    X(TSR_EW_COS)
#define TSR_EW_FLOAT_LIST(X, ...) \
    X(__VA_ARGS__, TSR_FLOAT32)   \
    X(__VA_ARGS__, TSR_FLOAT64)

#define TSR_EW_CASE_BIN(OP, DT)       \
    case (OP)*8 + (DT):               \
        apply2<OP, DT, E>(cur, a, b); \
        break;
#define TSR_EW_CASE_UN(OP, DT)     \
    case (OP)*8 + (DT):            \
        apply1<OP, DT, E>(cur, a); \
        break;
#define TSR_EW_CASES_BIN(OP) TSR_EW_DT_LIST(TSR_EW_CASE_BIN, OP)
#define TSR_EW_CASES_UN_FLOAT(OP) TSR_EW_FLOAT_LIST(TSR_EW_CASE_UN, OP)
#define TSR_EW_CASE_WHERE(UNUSED, DT) case TSR_EW_WHERE * 8 + (DT):
#define TSR_EW_CASE_CAST2(FROM, TO)      \
    case kCodeCast + (FROM)*8 + (TO):    \
        cast_group<FROM, TO, E>(cur, a); \
        break;
#define TSR_EW_CASES_CAST(UNUSED, FROM) TSR_EW_DT_LIST2(TSR_EW_CASE_CAST2, FROM)
#define TSR_EW_CASE_GEN(UNUSED, DT)                     \
    case kCodeGen + (DT):                               \
        gen_leaf<DT, E>(P, in.aux, ybase, xc, nv, cur); \
        break;

/* Run the program on the group of `nv` (<= E) elements at x coordinates xc,
 * with leaf bases ybase; the results go to res[0..E) and, for ARGMIN/ARGMAX
 * (idx not null), the index values to idx. */
template <int E, int NS>
TSR_HDI void eval_group(const ew_plan &P, const int64_t *ybase, const int64_t *xc, int nv,
                        ew_raw *res, int64_t *idx)
{
    ew_raw cur[E];
    ew_raw slot[NS][E];

    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        cur[k] = 0;
    }
    for (uint32_t i = 0; i < P.n_instr; i++) {
        const ew_code in = P.code[i];
        ew_raw a[E], b[E];
        fetch<E, NS>(P, in.a, cur, slot, a);
        fetch<E, NS>(P, in.b, cur, slot, b);
        switch (in.code) {
            TSR_EW_BIN_OPS(TSR_EW_CASES_BIN)
            TSR_EW_FLOAT_LIST(TSR_EW_CASE_BIN, TSR_EW_DIV)
            TSR_EW_DT_LIST(TSR_EW_CASE_UN, TSR_EW_NEG)
            TSR_EW_DT_LIST(TSR_EW_CASE_UN, TSR_EW_ABS)
            TSR_EW_UN_FLOAT_OPS(TSR_EW_CASES_UN_FLOAT)
            TSR_EW_DT_LIST(TSR_EW_CASES_CAST, 0)
            TSR_EW_DT_LIST(TSR_EW_CASE_GEN, 0)
            TSR_EW_DT_LIST(TSR_EW_CASE_WHERE, 0)
            {
                ew_raw c[E];
                fetch<E, NS>(P, in.c, cur, slot, c);
                TSR_UNROLL
                for (int k = 0; k < E; k++) {
                    cur[k] = (uint8_t)a[k] ? b[k] : c[k];
                }
                break;
            }
        case kCodeLoad:
            load_leaf<1, E>(P, in.aux, ybase, xc, nv, cur);
            break;
        case kCodeLoad + 1:
            load_leaf<2, E>(P, in.aux, ybase, xc, nv, cur);
            break;
        case kCodeLoad + 2:
            load_leaf<4, E>(P, in.aux, ybase, xc, nv, cur);
            break;
        case kCodeLoad + 3:
            load_leaf<8, E>(P, in.aux, ybase, xc, nv, cur);
            break;
        case kCodeLoadBool:
            load_leaf<1, E>(P, in.aux, ybase, xc, nv, cur);
            TSR_UNROLL
            for (int k = 0; k < E; k++) {
                cur[k] = cur[k] != 0;
            }
            break;
        default: /* kCodeConst */
            TSR_UNROLL
            for (int k = 0; k < E; k++) {
                cur[k] = a[k];
            }
            break;
        }
        if (in.dst != kSrcNone) {
            TSR_UNROLL
            for (int k = 0; k < E; k++) {
                slot[in.dst][k] = cur[k];
            }
        }
    }
    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        res[k] = cur[k];
    }
    if (idx != nullptr) {
        ew_raw t[E];
        fetch<E, NS>(P, P.red_src, cur, slot, t);
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            idx[k] = (int64_t)t[k]; /* an int64 value (ew_check) */
        }
    }
}

/* ---- per-thread work in each mode ---------------------------------------------------- */

template <int ES, int E>
TSR_HDI void store_group_es(char *p, const ew_raw *v, int nv)
{
    if (E > 1 && nv == E && aligned<ES * E>(p)) {
        store_contig<ES, E>(p, v);
        return;
    }
    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        if (k < nv) {
            st_raw<ES>(p + k * ES, v[k]);
        }
    }
}

template <int E>
TSR_HDI void store_group(int type, char *p, const ew_raw *v, int nv)
{
    switch (dtype_bytes(type)) {
    case 1:
        store_group_es<1, E>(p, v, nv);
        break;
    case 2:
        store_group_es<2, E>(p, v, nv);
        break;
    case 4:
        store_group_es<4, E>(p, v, nv);
        break;
    default:
        store_group_es<8, E>(p, v, nv);
        break;
    }
}

/* Elements of the group starting at flat index x0 of a space of `count`. */
template <int E>
TSR_HDI int group_size(int64_t count, int64_t x0)
{
    return count - x0 < E ? (int)(count - x0) : E;
}

/* MAP: evaluate group g and store it; ybase = leaf_bases(P, NULL). */
template <int E, int NS>
TSR_HDI void map_group(const ew_plan &P, const int64_t *ybase, int64_t g)
{
    int64_t xc[TSR_MAX_DIMS];
    ew_raw r[E];
    const int64_t x0 = g * E;
    const int nv = group_size<E>(P.x.count, x0);

    unflatten(P.x, x0, xc);
    eval_group<E, NS>(P, ybase, xc, nv, r, nullptr);
    store_group<E>(P.vtype, P.out + x0 * dtype_bytes(P.vtype), r, nv);
}

TSR_HDI bool is_arg(int red)
{
    return red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX;
}

/* Where the accumulator of partial element p, split s, goes. */
TSR_HDI void store_partial(const ew_plan &P, int64_t p, const ew_acc &a);

TSR_HDI void write_acc(const ew_plan &P, int64_t p, int64_t s, const ew_acc &a)
{
    if (P.splits == 1) {
        store_partial(P, p, a);
    } else {
        P.scratch[s * P.n_out + p] = a;
    }
}

/* RINNER: lane `lane` of the team on `item` (partial element item % n_out,
 * split item / n_out) folds its share of the groups. */
template <int E, int NS>
TSR_HDI ew_acc rinner_fold(const ew_plan &P, int64_t item, int lane)
{
    int64_t yc[TSR_MAX_DIMS], xc[TSR_MAX_DIMS], ybase[TSR_EW_MAX_LEAVES];
    int64_t idx[E];
    ew_raw r[E];
    const int64_t s = item / P.n_out;
    const int64_t gx = (P.x.count + E - 1) / E;
    const int64_t g1 = (s + 1) * gx / P.splits;
    const bool arg = is_arg(P.red_op);
    ew_acc acc = acc_init(P.red_op, P.vtype);

    unflatten(P.y, item % P.n_out, yc);
    leaf_bases(P, yc, ybase);
    for (int64_t g = s * gx / P.splits + lane; g < g1; g += P.team) {
        const int64_t x0 = g * E;
        const int nv = group_size<E>(P.x.count, x0);
        unflatten(P.x, x0, xc);
        eval_group<E, NS>(P, ybase, xc, nv, r, arg ? idx : nullptr);
        fold_group<E>(P.red_op, P.vtype, acc, r, arg ? idx : nullptr, nv);
    }
    return acc;
}

/* One level of the merge tree of teams of `team` threads over sh[] (thread t of
 * the block): lanes below `half` take in their partner's accumulator. */
TSR_HDI void team_step(const ew_plan &P, int team, ew_acc *sh, int t, int half)
{
    if (t % team < half) {
        merge(P.red_op, P.vtype, sh[t], sh[t + half]);
    }
}

/* PINNER: the thread on `item` (group item % gx, split item / gx) folds its
 * split of y into one accumulator per element and writes them. */
template <int E, int NS>
TSR_HDI void pinner_item(const ew_plan &P, int64_t item)
{
    int64_t xc[TSR_MAX_DIMS], yc[TSR_MAX_DIMS], ybase[TSR_EW_MAX_LEAVES];
    int64_t idx[E];
    ew_raw r[E];
    ew_acc acc[E];
    const int64_t gx = (P.n_out + E - 1) / E;
    const int64_t s = item / gx;
    const int64_t x0 = item % gx * E;
    const int nv = group_size<E>(P.n_out, x0);
    const int64_t y1 = (s + 1) * P.y.count / P.splits;
    const bool arg = is_arg(P.red_op);
    const ew_acc a0 = acc_init(P.red_op, P.vtype);

    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        acc[k] = a0;
    }
    unflatten(P.x, x0, xc);
    int64_t y = s * P.y.count / P.splits;
    unflatten(P.y, y, yc);
    for (; y < y1; y++) {
        leaf_bases(P, yc, ybase);
        eval_group<E, NS>(P, ybase, xc, nv, r, arg ? idx : nullptr);
        fold_each<E>(P.red_op, P.vtype, acc, r, arg ? idx : nullptr, nv);
        advance(P.y, yc);
    }
    TSR_UNROLL
    for (int k = 0; k < E; k++) {
        if (k < nv) {
            write_acc(P, x0 + k, s, acc[k]);
        }
    }
}

/* splits > 1: lane `lane` of the team merging partial element p folds splits
 * lane, lane + merge_team, ... in order (the team then merges as a tree). */
TSR_HDI ew_acc merge_fold(const ew_plan &P, int64_t p, int lane)
{
    ew_acc a = lane < P.splits ? P.scratch[lane * P.n_out + p] : acc_init(P.red_op, P.vtype);
    for (int64_t s = lane + P.merge_team; s < P.splits; s += P.merge_team) {
        merge(P.red_op, P.vtype, a, P.scratch[s * P.n_out + p]);
    }
    return a;
}

/* Store partial element p. */
TSR_HDI void store_partial(const ew_plan &P, int64_t p, const ew_acc &a)
{
    acc_store(P.red_op, P.vtype, P.out + p * acc_bytes(P.red_op, P.vtype), a);
}

}  // namespace tsr_ew

#endif /* TSR_KERNELS_CUDA_EW_EXEC_CUH */
