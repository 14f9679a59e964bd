/* The plan of one fused-program launch on CUDA: the program blob (kernel_args.h)
 * checked and compiled on the host into a form the kernels interpret cheaply,
 * with the launch geometry. The plan is passed to the kernels by value (a
 * __grid_constant__ parameter, under the 4 KiB every driver accepts).
 *
 * Compilation: dimensions are merged as by the CPU kernel; each value gets a
 * source: the result of the last instruction run (kept in registers), a constant
 * (converted to its type once; constants are not run), or a slot in thread-local
 * memory, reused after the value's last use. Each instruction gets one dispatch
 * code for its (op, type) pair.
 *
 * Geometry: threads work on groups of kGroup consecutive elements of a space of
 * dimensions (x), the other dimensions (y) being fixed per thread:
 *  - MAP (no reduction): x is every dimension; a grid-stride loop over groups.
 *  - RINNER (the innermost dimension is reduced): x is the reduced dimensions,
 *    y the kept ones; a team of `team` threads folds the groups of one partial
 *    element and merges in shared memory.
 *  - PINNER (the innermost dimension is kept): x is the kept dimensions, y the
 *    reduced ones; a thread keeps kGroup accumulators and walks y.
 * When there are too few partial elements to fill the GPU, the reduced
 * elements are split `splits` ways; the splits go to a scratch buffer and a
 * second kernel merges them, a team of `merge_team` threads per element, each
 * thread a fixed share in order, then a tree (deterministic for a given GPU). */
#ifndef TSR_KERNELS_CUDA_EW_PLAN_CUH
#define TSR_KERNELS_CUDA_EW_PLAN_CUH

#include "kernels/cpu/ew_check.h"
#include "kernels/cuda/ew_eval.cuh"

namespace tsr_ew {

constexpr int kGroup = 8;                   /* elements per thread group (fast kernels) */
constexpr int kSlots = 16;                  /* value slots of the fast kernels */
constexpr int kSlotsBig = TSR_EW_MAX_INSTR; /* the others: one element per group */
constexpr int kThreads = 256;               /* per block */
constexpr int kMaxSplits = 1024;
constexpr size_t kMaxScratch = (size_t)64 << 20;

/* Sources of an operand: a slot index (below kSrcConst), a constant, the
 * previous result, or none. */
constexpr uint8_t kSrcConst = 0x80;
constexpr uint8_t kSrcNone = 0xFE;
constexpr uint8_t kSrcPrev = 0xFF;

/* Dispatch codes: op * 8 + type for the ops, then these ranges. */
constexpr int kCodeCast = 256;     /* + from * 8 + to */
constexpr int kCodeLoad = 512;     /* + log2(element bytes): a buffer leaf */
constexpr int kCodeLoadBool = 516; /* a buffer leaf of bools, normalised to 0 or 1 */
constexpr int kCodeGen = 520;      /* + dtype: a generator leaf */
constexpr int kCodeConst = 600;    /* the constant of operand a */

enum { EW_MODE_MAP = 0, EW_MODE_RINNER = 1, EW_MODE_PINNER = 2 };

struct ew_code {
    uint16_t code;
    uint8_t a, b, c; /* sources */
    uint8_t dst;     /* slot the result is also kept in, or kSrcNone */
    uint8_t aux;     /* LOAD: the leaf */
    uint8_t pad;
};

struct ew_pleaf {
    const char *ptr; /* the buffer (device memory in kernels); NULL for generators */
    int64_t offset;
    int64_t stride[TSR_MAX_DIMS]; /* per merged dimension */
    double p0, p1;
    uint64_t key; /* gen_key(seed) */
    int32_t kind; /* tsr_leaf_kind_t */
    int32_t type;
};

/* Some merged dimensions, walked in C order. */
struct ew_space {
    int32_t nd;
    int32_t dim[TSR_MAX_DIMS]; /* merged dimension of each, outer first */
    int64_t n[TSR_MAX_DIMS];
    int64_t count;
};

struct ew_plan {
    int32_t mode;
    int32_t group; /* elements per group: kGroup, or 1 for the big-slot kernels */
    uint32_t n_instr;
    uint32_t n_leaves;
    int32_t red_op;
    int32_t vtype;      /* type of the result */
    int32_t team;       /* RINNER: threads per partial element (1, 32 or 256) */
    int32_t merge_team; /* splits > 1: threads merging the splits of one element */
    uint8_t red_src;    /* ARGMIN/ARGMAX: source of the index value */
    int64_t n_out;      /* output elements (MAP) or partial elements */
    int64_t splits;
    ew_space x, y;
    char *out;
    ew_acc *scratch; /* splits > 1: splits x n_out accumulators, split-major */
    ew_code code[TSR_EW_MAX_INSTR];
    ew_raw consts[TSR_EW_MAX_INSTR];
    ew_pleaf leaf[TSR_EW_MAX_LEAVES];
};
static_assert(sizeof(ew_plan) <= 4000, "the plan must fit the classic kernel parameter limit");

/* What the launcher needs besides the plan. */
struct ew_launch {
    int big;               /* use the big-slot kernels */
    unsigned blocks;       /* of the main kernel, kThreads threads each */
    unsigned blocks_merge; /* of the split merge (splits > 1) */
    size_t scratch_bytes;
};

/* ---- host: checks ----------------------------------------------------------------- */

inline int n_args(int32_t op)
{
    return ew_n_args(op);
}

inline int result_type(const tsr_ew_instr_t *in)
{
    return ew_result_type(in);
}

/* Check the program against the task's buffers as the CPU kernel does, with
 * the same code (kernels/cpu/ew_check.h): indices, operand types, buffer
 * leaves inside their buffers and not the output (an ARGMIN/ARGMAX index is an
 * int64 instruction before the last), an output of at least the chunk's size.
 * On success writes the bytes the output needs to *need_out. */
inline bool ew_check(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves,
                     const tsr_ew_instr_t *code, const tsr_buffer_t *bufs, uint64_t *need_out,
                     char *msg, size_t n_msg)
{
    return ew_check_program(h, leaves, code, bufs, need_out, msg, n_msg) != 0;
}

/* ---- host: compilation -------------------------------------------------------------- */

/* The chunk's dimensions with size-1 ones dropped and neighbours that every leaf
 * and the output walk as one merged (the CPU kernel's collapse). */
struct ew_dims {
    int m;
    int64_t n[TSR_MAX_DIMS];
    int64_t ls[TSR_EW_MAX_LEAVES][TSR_MAX_DIMS];
    int64_t os[TSR_MAX_DIMS];
    int red[TSR_MAX_DIMS];
};

inline void ew_dims_drop(ew_dims *g, uint32_t n_leaves, int i)
{
    for (int j = i; j < g->m - 1; j++) {
        g->n[j] = g->n[j + 1];
        g->os[j] = g->os[j + 1];
        g->red[j] = g->red[j + 1];
        for (uint32_t l = 0; l < n_leaves; l++) {
            g->ls[l][j] = g->ls[l][j + 1];
        }
    }
    g->m--;
}

inline void collapse_dims(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves, ew_dims *g)
{
    const bool reduce = h->red_op != TSR_RED_NONE;
    int64_t os_full[TSR_MAX_DIMS];
    int64_t s = 1;

    memset(g, 0, sizeof(*g));
    for (int d = (int)h->ndim - 1; d >= 0; d--) {
        bool red = reduce && ((h->red_mask >> d) & 1u);
        os_full[d] = red ? 0 : s;
        s *= red ? 1 : h->shape[d];
    }
    for (uint32_t d = 0; d < h->ndim; d++) {
        if (h->shape[d] == 1) {
            continue;
        }
        g->n[g->m] = h->shape[d];
        g->os[g->m] = os_full[d];
        g->red[g->m] = reduce && ((h->red_mask >> d) & 1u);
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][g->m] = leaves[l].stride[d];
        }
        g->m++;
    }
    if (g->m == 0) {
        g->n[0] = 1;
        g->m = 1;
    }
    for (int i = g->m - 1; i > 0; i--) {
        bool ok = g->red[i - 1] == g->red[i] && g->os[i - 1] == g->os[i] * g->n[i];
        for (uint32_t l = 0; ok && l < h->n_leaves; l++) {
            ok = g->ls[l][i - 1] == g->ls[l][i] * g->n[i];
        }
        if (ok) {
            g->n[i - 1] *= g->n[i];
            g->os[i - 1] = g->os[i];
            for (uint32_t l = 0; l < h->n_leaves; l++) {
                g->ls[l][i - 1] = g->ls[l][i];
            }
            ew_dims_drop(g, h->n_leaves, i);
        }
    }
}

/* The merged dimensions whose reduced flag is `red`, as a space. */
inline ew_space make_space(const ew_dims *g, int red)
{
    ew_space s;
    memset(&s, 0, sizeof(s));
    s.count = 1;
    for (int d = 0; d < g->m; d++) {
        if (g->red[d] == red) {
            s.dim[s.nd] = d;
            s.n[s.nd++] = g->n[d];
            s.count *= g->n[d];
        }
    }
    return s;
}

inline uint16_t dispatch_code(const tsr_ew_instr_t *in, const tsr_ew_leaf_t *leaves)
{
    switch (in->op) {
    case TSR_EW_LOAD: {
        const tsr_ew_leaf_t *lf = &leaves[in->aux];
        int es = dtype_bytes(lf->type);
        if (lf->kind == TSR_LEAF_BUFFER && lf->type == TSR_BOOL) {
            return (uint16_t)kCodeLoadBool;
        }
        if (lf->kind == TSR_LEAF_BUFFER) {
            return (uint16_t)(kCodeLoad + (es == 1 ? 0 : es == 2 ? 1 : es == 4 ? 2 : 3));
        }
        return (uint16_t)(kCodeGen + lf->type);
    }
    case TSR_EW_CONST:
        return kCodeConst;
    case TSR_EW_CAST:
        return (uint16_t)(kCodeCast + in->type * 8 + in->aux);
    default:
        return (uint16_t)(in->op * 8 + in->type);
    }
}

/* Whether instruction i runs in the kernels: constants are sources, not code,
 * unless one is the result. */
inline bool runs(const tsr_ew_header_t *h, const tsr_ew_instr_t *code, uint32_t i)
{
    return code[i].op != TSR_EW_CONST || i + 1 == h->n_instr;
}

/* Which value each instruction finds in `cur` (the last one run before it), and
 * which values must be kept in a slot: those some later instruction reads
 * without finding them there, and an ARGMIN/ARGMAX index not left in `cur`. */
inline void find_uses(const tsr_ew_header_t *h, const tsr_ew_instr_t *code, int *prev_of,
                      int *last_use, bool *keep)
{
    int prev = -1;
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const int32_t args[3] = {code[i].a, code[i].b, code[i].c};
        prev_of[i] = prev;
        last_use[i] = -1;
        keep[i] = false;
        for (int k = 0; k < n_args(code[i].op); k++) {
            last_use[args[k]] = (int)i;
            keep[args[k]] = keep[args[k]] || args[k] != prev;
        }
        prev = runs(h, code, i) ? (int)i : prev;
    }
    if ((h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX) &&
        h->red_index + 1 != h->n_instr) {
        keep[h->red_index] = true;
        last_use[h->red_index] = (int)h->n_instr; /* read after the program */
    }
}

/* Compile the instructions into P->code (constants left out, see runs()) with
 * the source of each operand and the slot of each kept value, reusing a slot
 * after its value's last use. Returns the number of slots used. */
inline int compile_code(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves,
                        const tsr_ew_instr_t *code, ew_plan *P)
{
    int prev_of[TSR_EW_MAX_INSTR], last_use[TSR_EW_MAX_INSTR];
    bool keep[TSR_EW_MAX_INSTR];
    int slot_of[TSR_EW_MAX_INSTR], const_of[TSR_EW_MAX_INSTR];
    int free_slots[TSR_EW_MAX_INSTR];
    int n_free = 0, n_slots = 0, n_consts = 0;

    find_uses(h, code, prev_of, last_use, keep);
    for (int i = 0; i < TSR_EW_MAX_INSTR; i++) {
        slot_of[i] = -1;
        const_of[i] = -1;
    }
    P->n_instr = 0;
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *in = &code[i];
        const int32_t args[3] = {in->a, in->b, in->c};
        uint8_t src[3] = {kSrcNone, kSrcNone, kSrcNone};
        for (int k = 0; k < n_args(in->op); k++) {
            int v = args[k];
            src[k] = const_of[v] >= 0  ? (uint8_t)(kSrcConst + const_of[v])
                     : v == prev_of[i] ? kSrcPrev
                                       : (uint8_t)slot_of[v];
        }
        for (int k = 0; k < n_args(in->op); k++) {
            int v = args[k];
            if (last_use[v] == (int)i && slot_of[v] >= 0) {
                free_slots[n_free++] = slot_of[v]; /* fetched before the result is stored */
                slot_of[v] = -1;
            }
        }
        if (in->op == TSR_EW_CONST) {
            const_of[i] = n_consts;
            P->consts[n_consts] = in->type >= TSR_FLOAT32
                                      ? cast_rt(TSR_FLOAT64, in->type, raw_put(in->imm_f))
                                      : cast_rt(TSR_INT64, in->type, raw_put(in->imm_i));
            src[0] = (uint8_t)(kSrcConst + n_consts++);
        } else if (keep[i]) {
            slot_of[i] = n_free > 0 ? free_slots[--n_free] : n_slots++;
        }
        if (runs(h, code, i)) {
            ew_code *c = &P->code[P->n_instr++];
            c->code = dispatch_code(in, leaves);
            c->a = src[0];
            c->b = src[1];
            c->c = src[2];
            c->dst = slot_of[i] >= 0 ? (uint8_t)slot_of[i] : kSrcNone;
            c->aux = in->op == TSR_EW_LOAD ? (uint8_t)in->aux : 0;
        }
    }
    if (h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX) {
        uint32_t r = h->red_index;
        P->red_src = const_of[r] >= 0      ? (uint8_t)(kSrcConst + const_of[r])
                     : r + 1 == h->n_instr ? kSrcPrev
                                           : (uint8_t)slot_of[r];
    }
    return n_slots;
}

inline unsigned clamp_blocks(int64_t items, int64_t per_block, int n_sms)
{
    int64_t b = (items + per_block - 1) / per_block;
    int64_t cap = (int64_t)n_sms * 16;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

/* Splits of `work` units so that `width` x splits threads fill the GPU, each
 * keeping at least `min_work` units; bounded by kMaxSplits and the scratch. */
inline int64_t choose_splits(int64_t width, int64_t work, int64_t min_work, int64_t n_out,
                             int n_sms)
{
    const int64_t target = (int64_t)n_sms * 2048;
    int64_t s, most;
    if (width <= 0 || width >= target) {
        return 1;
    }
    s = (target + width - 1) / width;
    most = work / min_work;
    s = s < most ? s : most;
    s = s < kMaxSplits ? s : kMaxSplits;
    most = n_out > 0 ? (int64_t)(kMaxScratch / sizeof(ew_acc)) / n_out : 1;
    s = s < most ? s : most;
    return s < 1 ? 1 : s;
}

inline void plan_geometry(const ew_dims *g, int reduce, int n_sms, ew_plan *P, ew_launch *L)
{
    const int64_t E = P->group;
    if (!reduce) {
        P->mode = EW_MODE_MAP;
        P->x = make_space(g, 0);
        P->n_out = P->x.count;
        L->blocks = clamp_blocks((P->n_out + E - 1) / E, kThreads, n_sms);
        return;
    }
    if (g->red[g->m - 1]) {
        P->mode = EW_MODE_RINNER;
        P->x = make_space(g, 1);
        P->y = make_space(g, 0);
        P->n_out = P->y.count;
        int64_t gx = (P->x.count + E - 1) / E;
        P->team = gx <= 4 ? 1 : gx <= 512 ? 32 : kThreads;
        if (P->team > 1) {
            P->splits =
                choose_splits(P->n_out * P->team, gx, (int64_t)P->team * 4, P->n_out, n_sms);
        }
        L->blocks = clamp_blocks(P->n_out * P->splits, kThreads / P->team, n_sms);
    } else {
        P->mode = EW_MODE_PINNER;
        P->x = make_space(g, 0);
        P->y = make_space(g, 1);
        P->n_out = P->x.count;
        int64_t gx = (P->n_out + E - 1) / E;
        P->splits = choose_splits(gx, P->y.count, 16, P->n_out, n_sms);
        L->blocks = clamp_blocks(gx * P->splits, kThreads, n_sms);
    }
    if (P->splits > 1) {
        L->scratch_bytes = (size_t)(P->splits * P->n_out) * sizeof(ew_acc);
        while (P->merge_team < kThreads && P->merge_team * 4 < P->splits) {
            P->merge_team *= 2;
        }
        L->blocks_merge = clamp_blocks(P->n_out, kThreads / P->merge_team, n_sms);
    }
}

/* Compile a checked program (ew_check) for `bufs` (device pointers in the
 * kernels, host ones in the emulation), writing into `out`, on a GPU of `n_sms`
 * multiprocessors. The scratch pointer is left to the caller. */
inline void ew_build(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves,
                     const tsr_ew_instr_t *code, const tsr_buffer_t *bufs, char *out, int n_sms,
                     ew_plan *P, ew_launch *L)
{
    ew_dims g;
    int n_slots;

    memset(P, 0, sizeof(*P));
    memset(L, 0, sizeof(*L));
    collapse_dims(h, leaves, &g);
    P->n_leaves = h->n_leaves;
    P->red_op = h->red_op;
    P->vtype = result_type(&code[h->n_instr - 1]);
    P->team = 1;
    P->merge_team = 1;
    P->splits = 1;
    P->red_src = kSrcNone;
    P->out = out;
    for (uint32_t l = 0; l < h->n_leaves; l++) {
        const tsr_ew_leaf_t *lf = &leaves[l];
        ew_pleaf *pl = &P->leaf[l];
        pl->kind = lf->kind == TSR_LEAF_BUFFER || lf->kind == TSR_LEAF_ARANGE ||
                           lf->kind == TSR_LEAF_UNIFORM
                       ? lf->kind
                       : TSR_LEAF_NORMAL;
        pl->type = lf->type;
        pl->ptr = lf->kind == TSR_LEAF_BUFFER ? (const char *)bufs[lf->buf].ptr : NULL;
        pl->offset = lf->offset;
        memcpy(pl->stride, g.ls[l], sizeof(pl->stride));
        pl->p0 = lf->p0;
        pl->p1 = lf->p1;
        pl->key = gen_key(lf->seed);
    }
    n_slots = compile_code(h, leaves, code, P);
    L->big = n_slots > kSlots;
    P->group = L->big ? 1 : kGroup;
    plan_geometry(&g, h->red_op != TSR_RED_NONE, n_sms, P, L);
}

}  // namespace tsr_ew

#endif /* TSR_KERNELS_CUDA_EW_PLAN_CUH */
