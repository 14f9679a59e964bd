/* CPU implementation of the fused elementwise kernel, with an optional first
 * reduction stage; see kernel_args.h.
 *
 * The program runs on blocks of up to BLOCK elements along the innermost
 * dimension of the chunk, after dimensions that every leaf walks contiguously
 * have been merged. Each instruction is one loop over a block (ew_ops.h), small
 * enough to stay in L1, which the compiler vectorises; a leaf read with unit
 * stride is used in place, and the last instruction writes straight into the
 * output, or, for a large one, into a slot that non-temporal stores copy out. A
 * program of float arithmetic runs its ops together in registers instead
 * (ew_fuse.c), on larger blocks, and streams a large result out from the
 * registers. A reduction folds each block's results into the task's partials
 * (ew_fold.h), which the combine kernel (ew_combine.c) merges. The program is
 * checked first (ew_check.h), so that a malformed blob fails the task instead of
 * reading or writing out of bounds. */
#include <stdlib.h>
#include <string.h>
#include <tessera/task.h>

#include "kernels/cpu/ew_check.h"
#include "kernels/cpu/ew_fold.h"
#include "kernels/cpu/ew_fuse.h"
#include "kernels/cpu/ew_gen.h"
#include "kernels/cpu/ew_ops.h"
#include "kernels/cpu/ew_util.h"
#include "kernels/impl.h"
#include "kernels/kernel_args.h"

#define BLOCK 512

/* Outputs of at least STREAM_MIN_BYTES (beyond what the caches keep for the next
 * task) are written with non-temporal stores: a plain store first reads the line
 * it writes, a third more memory traffic for a map that reads one input. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define EW_HAVE_STREAM 1
#else
#define EW_HAVE_STREAM 0
#endif
#define STREAM_MIN_BYTES ((uint64_t)4 << 20)

/* Elements per block of a fused program whose leaves are all buffers (see
 * plan_blocks). */
#define FUSE_BLOCK 2048

/* ---- leaves ----------------------------------------------------------------------- */

EW_SIMD static void gather(void *dst, const char *src, int64_t stride, int64_t n, size_t esize)
{
    switch (esize) {
    case 1:
        for (int64_t k = 0; k < n; k++) {
            ((uint8_t *)dst)[k] = *(const uint8_t *)(src + k * stride);
        }
        break;
    case 2:
        for (int64_t k = 0; k < n; k++) {
            ((uint16_t *)dst)[k] = *(const uint16_t *)(src + k * stride * 2);
        }
        break;
    case 4:
        for (int64_t k = 0; k < n; k++) {
            ((uint32_t *)dst)[k] = *(const uint32_t *)(src + k * stride * 4);
        }
        break;
    default:
        for (int64_t k = 0; k < n; k++) {
            ((uint64_t *)dst)[k] = *(const uint64_t *)(src + k * stride * 8);
        }
        break;
    }
}

/* Copy n bytes to dst, the 16-byte-aligned part with non-temporal stores (the
 * task ends with a fence that orders them). */
static void stream_copy(char *dst, const char *src, size_t n)
{
#if EW_HAVE_STREAM
    size_t head = (16 - ((uintptr_t)dst & 15)) & 15;

    head = head < n ? head : n;
    memcpy(dst, src, head);
    dst += head;
    src += head;
    n -= head;
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)src);
        __m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + 48));
        _mm_stream_si128((__m128i *)dst, a);
        _mm_stream_si128((__m128i *)(dst + 16), b);
        _mm_stream_si128((__m128i *)(dst + 32), c);
        _mm_stream_si128((__m128i *)(dst + 48), d);
    }
    for (; n >= 16; n -= 16, dst += 16, src += 16) {
        _mm_stream_si128((__m128i *)dst, _mm_loadu_si128((const __m128i *)src));
    }
#endif
    memcpy(dst, src, n);
}

/* A bool leaf: any nonzero byte is true, and every bool value of a program is
 * 0 or 1 (its ops keep it so). */
EW_SIMD static void gather_bool(uint8_t *restrict dst, const uint8_t *src, int64_t stride,
                                int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        dst[k] = src[k * stride] != 0;
    }
}

/* The generators (ew_gen.h, shared with the CUDA kernel so that values are the
 * same bits) at global indices index + k * step, in wrapping arithmetic. */
/* Whether the int64 values of an arange leaf over indices index, index + step, ...
 * (n of them) can be computed in integers: an integral start and step, and every
 * index, product and value within 2^52, where the doubles ew_gen_arange computes
 * with are exact (so both give the same values, as on a GPU). Argmin and argmax
 * number their elements with such a leaf. */
static int arange_is_integral(const tsr_ew_leaf_t *leaf, int64_t index, int64_t step, int64_t n)
{
    const double lim = 4503599627370496.0; /* 2^52 */
    const double i0 = (double)index;
    const double i1 = (double)index + (double)(n - 1) * (double)step;

    return leaf->type == TSR_INT64 && leaf->p0 == floor(leaf->p0) && leaf->p1 == floor(leaf->p1) &&
           fabs(leaf->p0) < lim && fabs(i0) < lim && fabs(i1) < lim && fabs(i0 * leaf->p1) < lim &&
           fabs(i1 * leaf->p1) < lim && fabs(leaf->p0 + i0 * leaf->p1) < lim &&
           fabs(leaf->p0 + i1 * leaf->p1) < lim;
}

EW_SIMD_WIDE static void generate(void *dst, const tsr_ew_leaf_t *leaf, int64_t index, int64_t step,
                                  int64_t n)
{
    double v[BLOCK];
    const uint64_t key = ew_gen_key(leaf->seed);

    switch (leaf->kind) {
    case TSR_LEAF_ARANGE:
        if (arange_is_integral(leaf, index, step, n)) {
            const int64_t d = step * (int64_t)leaf->p1;
            int64_t val = (int64_t)leaf->p0 + index * (int64_t)leaf->p1;
            int64_t *out = dst;
            for (int64_t k = 0; k < n; k++) { /* an induction: vectorised, no multiply */
                out[k] = val;
                val += d;
            }
            return;
        }
        for (int64_t k = 0; k < n; k++) {
            v[k] = ew_gen_arange(leaf->p0, leaf->p1,
                                 (int64_t)((uint64_t)index + (uint64_t)k * (uint64_t)step));
        }
        break;
    case TSR_LEAF_UNIFORM:
        for (int64_t k = 0; k < n; k++) {
            v[k] = ew_gen_uniform(leaf->p0, leaf->p1, key,
                                  (int64_t)((uint64_t)index + (uint64_t)k * (uint64_t)step));
        }
        break;
    default: /* TSR_LEAF_NORMAL */
        for (int64_t k = 0; k < n; k++) {
            v[k] = ew_gen_normal(leaf->p0, leaf->p1, key,
                                 (int64_t)((uint64_t)index + (uint64_t)k * (uint64_t)step));
        }
        break;
    }
    tsr__ew_cast[TSR_FLOAT64][leaf->type](dst, v, n);
}

/* ---- the fused kernel ------------------------------------------------------------- */

typedef struct {
    int m;                                  /* merged dimensions, >= 1 */
    int64_t n[TSR_MAX_DIMS];                /* their sizes */
    int64_t ls[TSR_EW_MAX_LEAVES][TSR_MAX_DIMS]; /* leaf strides */
    int64_t os[TSR_MAX_DIMS];               /* output (or partial) strides */
    int red[TSR_MAX_DIMS];                  /* reduced? */
} ew_dims_t;

/* A reduction writes a small partial, so the walk may follow its inputs: when the
 * buffer leaves agree on an order of the m dimensions (by decreasing stride,
 * broadcast ones aside) whose innermost is reduced or adjacent in the partial,
 * put the dimensions in that order, so that a reduction of a transpose reads its
 * input in memory order rather than across it. */
static void follow_leaves(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves, ew_dims_t *g,
                          int m)
{
    int perm[TSR_MAX_DIMS];
    int key = -1;
    ew_dims_t t;

    if (m < 2) {
        return;
    }
    t = *g;
    for (uint32_t l = 0; l < h->n_leaves && key < 0; l++) {
        int has_zero = 0;
        for (int d = 0; d < m; d++) {
            has_zero |= g->ls[l][d] == 0;
        }
        key = leaves[l].kind == TSR_LEAF_BUFFER && !has_zero ? (int)l : -1;
    }
    if (key < 0) {
        return;
    }
    for (int d = 0; d < m; d++) { /* insertion sort: stable, m <= TSR_MAX_DIMS */
        int j = d;
        while (j > 0 && llabs(g->ls[key][perm[j - 1]]) < llabs(g->ls[key][d])) {
            perm[j] = perm[j - 1];
            j--;
        }
        perm[j] = d;
    }
    if (!t.red[perm[m - 1]] && t.os[perm[m - 1]] != 1) {
        return; /* a block's partials must be one element, or adjacent ones */
    }
    for (uint32_t l = 0; l < h->n_leaves; l++) { /* every buffer leaf agrees */
        int64_t prev = INT64_MAX;
        for (int d = 0; d < m && leaves[l].kind == TSR_LEAF_BUFFER; d++) {
            int64_t s = llabs(g->ls[l][perm[d]]);
            if (s == 0) {
                continue;
            }
            if (s > prev) {
                return;
            }
            prev = s;
        }
    }
    for (int d = 0; d < m; d++) {
        g->n[d] = t.n[perm[d]];
        g->os[d] = t.os[perm[d]];
        g->red[d] = t.red[perm[d]];
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][d] = t.ls[l][perm[d]];
        }
    }
}

/* Drop size-1 dimensions and merge neighbours that every leaf and the output walk
 * as one. */
static void collapse_dims(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves, ew_dims_t *g)
{
    int64_t os_full[TSR_MAX_DIMS];
    int64_t s = 1;
    int m = 0;

    for (int d = (int)h->ndim - 1; d >= 0; d--) {
        int red = h->red_op != TSR_RED_NONE && ((h->red_mask >> d) & 1u);
        os_full[d] = red ? 0 : s;
        s *= red ? 1 : h->shape[d];
    }
    for (uint32_t d = 0; d < h->ndim; d++) {
        if (h->shape[d] == 1) {
            continue;
        }
        g->n[m] = h->shape[d];
        g->os[m] = os_full[d];
        g->red[m] = h->red_op != TSR_RED_NONE && ((h->red_mask >> d) & 1u);
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][m] = leaves[l].stride[d];
        }
        m++;
    }
    if (h->red_op != TSR_RED_NONE) {
        follow_leaves(h, leaves, g, m);
    }
    if (m == 0) {
        g->n[0] = 1;
        g->os[0] = 0;
        g->red[0] = 0;
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][0] = 0;
        }
        m = 1;
    }
    for (int i = m - 1; i > 0; i--) {
        int ok = g->red[i - 1] == g->red[i] && g->os[i - 1] == g->os[i] * g->n[i];
        for (uint32_t l = 0; ok && l < h->n_leaves; l++) {
            ok = g->ls[l][i - 1] == g->ls[l][i] * g->n[i];
        }
        if (!ok) {
            continue;
        }
        g->n[i - 1] *= g->n[i];
        g->os[i - 1] = g->os[i];
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][i - 1] = g->ls[l][i];
        }
        for (int j = i; j < m - 1; j++) {
            g->n[j] = g->n[j + 1];
            g->os[j] = g->os[j + 1];
            g->red[j] = g->red[j + 1];
            for (uint32_t l = 0; l < h->n_leaves; l++) {
                g->ls[l][j] = g->ls[l][j + 1];
            }
        }
        m--;
    }
    g->m = m;
}

/* Everything a block needs, set up once per task. */
typedef struct {
    const tsr_ew_header_t *h;
    const tsr_ew_leaf_t *leaves;
    const tsr_ew_instr_t *code;
    const tsr_buffer_t *bufs;
    ew_dims_t g;
    int slot_of[TSR_EW_MAX_INSTR];
    char *slots;
    char *out;
    tsr_dtype_t vtype;
    size_t vsize;
    size_t acc_size;
    /* A reduction's: how the blocks fold into the partials. */
    struct tsr__fold fold;
    int stream_out; /* write the output with non-temporal stores */
    tsr__fuse_plan_t fuse;
    int64_t block;                 /* elements per block: BLOCK, or FUSE_BLOCK */
    size_t slot_bytes;             /* block * 8 */
    int n_pre;                     /* the instructions run_block runs one by one (all but */
    uint8_t pre[TSR_EW_MAX_INSTR]; /* the fused ops) */
    /* ARGMIN/ARGMAX along a reduced dimension whose indices come from an int64
     * arange leaf that only the fold reads: its instruction, which run_block
     * skips (the fold takes the indices as first + k * step), else -1. */
    int lazy_index;
} ew_run_t;

static char *slot_ptr(const ew_run_t *r, uint32_t i)
{
    int s = r->slot_of[i] >= 0 ? r->slot_of[i] : -r->slot_of[i] - 1;
    return r->slots + (size_t)s * r->slot_bytes;
}

/* The index into leaf l of element j0 of the row at outer index idx. Wrapping
 * arithmetic: a generator's index space has no bounds (a buffer leaf's elements
 * were checked to lie inside its buffer). */
static uint64_t leaf_at(const ew_run_t *r, uint32_t l, const int64_t *idx, int64_t j0)
{
    const int64_t *ls = r->g.ls[l];
    const int m = r->g.m;
    uint64_t at = (uint64_t)r->leaves[l].offset + (uint64_t)j0 * (uint64_t)ls[m - 1];

    for (int d = 0; d < m - 1; d++) {
        at += (uint64_t)idx[d] * (uint64_t)ls[d];
    }
    return at;
}

/* The values of leaf l for elements j0 .. j0+n of the row at outer index idx:
 * the buffer itself when it is read with unit stride and `in_place` allows,
 * else gathered (bools normalised) or generated into dst. */
static const void *load_leaf(const ew_run_t *r, uint32_t l, const int64_t *idx, int64_t j0,
                             int64_t n, void *dst, int in_place)
{
    const tsr_ew_leaf_t *lf = &r->leaves[l];
    const int64_t *ls = r->g.ls[l];
    const int m = r->g.m;
    const size_t es = tsr_dtype_size((tsr_dtype_t)lf->type);
    const uint64_t at = leaf_at(r, l, idx, j0);
    const char *src;

    if (lf->kind != TSR_LEAF_BUFFER) {
        generate(dst, lf, (int64_t)at, ls[m - 1], n);
        return dst;
    }
    src = (const char *)r->bufs[lf->buf].ptr + (size_t)at * es;
    if (lf->type == TSR_BOOL) {
        gather_bool(dst, (const uint8_t *)src, ls[m - 1], n);
        return dst;
    }
    if (ls[m - 1] == 1 && in_place) {
        return src;
    }
    gather(dst, src, ls[m - 1], n, es);
    return dst;
}

/* Fold the block's results `v` (and for ARGMIN/ARGMAX their indices: `index`,
 * or made here from the lazy index's leaf) into the partial at obase (+ j0
 * unless the block lies along a reduced dimension). */
static void fold_block(const ew_run_t *r, const void *v, const void *index, const int64_t *idx,
                       int64_t obase, int64_t j0, int64_t n)
{
    void *acc = r->out + (size_t)(obase + (r->fold.across ? 0 : j0)) * r->acc_size;

    if (r->lazy_index >= 0) {
        const uint32_t l = (uint32_t)r->code[r->lazy_index].aux;
        const tsr_ew_leaf_t *lf = &r->leaves[l];
        const int64_t at = (int64_t)leaf_at(r, l, idx, j0);
        const int64_t step = r->g.ls[l][r->g.m - 1];

        if (arange_is_integral(lf, at, step, n)) {
            tsr__fold_arg_affine(&r->fold, acc, v, (int64_t)lf->p0 + at * (int64_t)lf->p1,
                                 step * (int64_t)lf->p1, n);
            return;
        }
        index = load_leaf(r, l, idx, j0, n, slot_ptr(r, (uint32_t)r->lazy_index), 0);
    }
    tsr__fold_block(&r->fold, acc, v, index, n);
}

/* Run the program on elements j0 .. j0+n of the row at outer index idx. */
static void run_block(const ew_run_t *r, const int64_t *idx, int64_t j0, int64_t n)
{
    const tsr_ew_header_t *h = r->h;
    const void *val[TSR_EW_MAX_INSTR];
    int64_t obase = 0;
    char *out = NULL;    /* the block's output elements (no reduction) */
    char *direct = NULL; /* where the last instruction writes them itself */

    for (int d = 0; d < r->g.m - 1; d++) {
        obase += idx[d] * r->g.os[d];
    }
    if (h->red_op == TSR_RED_NONE) {
        out = r->out + (size_t)(obase + j0) * r->vsize;
        direct = r->stream_out ? NULL : out;
    }
    for (int p = 0; p < r->n_pre; p++) {
        const uint32_t i = r->pre[p];
        const tsr_ew_instr_t *in = &r->code[i];
        void *dst = direct != NULL && i + 1 == h->n_instr ? direct : slot_ptr(r, i);

        if ((int)i == r->lazy_index) {
            continue; /* made by fold_block if it needs it */
        }
        switch (in->op) {
        case TSR_EW_LOAD:
            val[i] = load_leaf(r, (uint32_t)in->aux, idx, j0, n, dst, dst != direct);
            break;
        case TSR_EW_CONST:
            if (dst == direct) {
                memcpy(dst, slot_ptr(r, i), (size_t)n * r->vsize);
            }
            val[i] = dst == direct ? dst : slot_ptr(r, i);
            break;
        case TSR_EW_CAST:
            tsr__ew_cast[in->type][in->aux](dst, val[in->a], n);
            val[i] = dst;
            break;
        default:
            tsr__ew_ops[in->op][in->type](dst, val[in->a],
                                          ew_n_args(in->op) > 1 ? val[in->b] : NULL,
                                          ew_n_args(in->op) > 2 ? val[in->c] : NULL, n);
            val[i] = dst;
            break;
        }
    }
    if (r->fuse.n_steps > 0) {
        /* A streamed result goes straight from the registers to the output. */
        void *nt = r->stream_out && (uintptr_t)out % r->vsize == 0 ? out : NULL;
        for (int s = 0; s < r->fuse.n_steps; s++) {
            const uint32_t i = r->fuse.step[s].instr;
            val[i] = direct != NULL && i + 1 == h->n_instr ? direct : slot_ptr(r, i);
        }
        tsr__fuse_run(r->vtype, &r->fuse, (void *const *)val, n, nt);
        if (nt != NULL) {
            return;
        }
    }
    if (out != NULL && direct == NULL) {
        stream_copy(out, val[h->n_instr - 1], (size_t)n * r->vsize);
    } else if (h->red_op != TSR_RED_NONE) {
        const int arg = h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX;
        fold_block(r, val[h->n_instr - 1], arg && r->lazy_index < 0 ? val[h->red_index] : NULL, idx,
                   obase, j0, n);
    }
}

/* Whether a leaf reads across rows (|inner stride| > 1) while rows are adjacent
 * in it (stride 1 along the next dimension out): a transpose. Such a chunk runs
 * in tiles of TILE_ROWS rows by TILE_COLS columns, so that the cache lines a
 * gather touches for one row serve the next rows too. */
#define TILE_ROWS 32
#define TILE_COLS 128

static int wants_tiles(const ew_run_t *r)
{
    const int m = r->g.m;
    if (m < 2) {
        return 0;
    }
    for (uint32_t l = 0; l < r->h->n_leaves; l++) {
        const int64_t *ls = r->g.ls[l];
        if (r->leaves[l].kind == TSR_LEAF_BUFFER && (ls[m - 1] > 1 || ls[m - 1] < -1) &&
            (ls[m - 2] == 1 || ls[m - 2] == -1)) {
            return 1;
        }
    }
    return 0;
}

/* Run every block of the chunk, in tiles when wants_tiles(). */
static void run_chunk(const ew_run_t *r)
{
    const int m = r->g.m;
    const int64_t inner = r->g.n[m - 1];
    const int tiles = wants_tiles(r);
    /* Tiles walk TILE_ROWS rows of dimension m-2 per column strip; the
     * dimensions further out advance as usual. */
    const int row_dim = tiles ? m - 2 : m - 1;
    const int64_t rows = tiles ? r->g.n[m - 2] : 1;
    const int64_t step = tiles ? TILE_COLS : r->block;
    int64_t idx[TSR_MAX_DIMS] = {0};

    for (;;) {
        for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            int64_t r1 = tiles && r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
            for (int64_t j0 = 0; j0 < inner; j0 += step) {
                int64_t n = inner - j0 < step ? inner - j0 : step;
                for (int64_t i = r0; i < r1; i++) {
                    if (tiles) {
                        idx[m - 2] = i;
                    }
                    run_block(r, idx, j0, n);
                }
            }
        }
        /* Next outer index (the tiled dimension is walked above). */
        int d = row_dim - 1;
        if (tiles) {
            idx[m - 2] = 0;
        }
        while (d >= 0 && ++idx[d] == r->g.n[d]) {
            idx[d] = 0;
            d--;
        }
        if (d < 0) {
            return;
        }
    }
}

/* The order run_block runs the instructions in: the ones it runs itself
 * (pre[]), then the fused ones, which read the values of all of those. */
static int run_order(const ew_run_t *r, uint8_t *order)
{
    int n = 0;
    uint8_t in_pre[TSR_EW_MAX_INSTR] = {0};

    for (int p = 0; p < r->n_pre; p++) {
        order[n++] = r->pre[p];
        in_pre[r->pre[p]] = 1;
    }
    for (uint32_t i = 0; i < r->h->n_instr; i++) {
        if (!in_pre[i]) {
            order[n++] = (uint8_t)i;
        }
    }
    return n;
}

/* Slots: value i lives in slot_of[i] until its last use in the order the
 * instructions run (run_order), then the slot is reused. A destination never
 * shares a slot with its operands (the loops are written for distinct arrays),
 * and a constant, filled once before the blocks, keeps its own. Returns the
 * number of slots, one more than the values need: the accumulator-type copy of
 * a reduced block. */
static int plan_slots(const ew_run_t *r, int *slot_of)
{
    const tsr_ew_header_t *h = r->h;
    const tsr_ew_instr_t *code = r->code;
    uint8_t order[TSR_EW_MAX_INSTR];
    int last_use[TSR_EW_MAX_INSTR]; /* positions in order[] */
    int free_slots[TSR_EW_MAX_INSTR + 2];
    int n_free = 0;
    int n_slots = 0;
    const int n = run_order(r, order);

    for (int p = 0; p < n; p++) {
        const int args[3] = {code[order[p]].a, code[order[p]].b, code[order[p]].c};
        last_use[order[p]] = p;
        for (int k = 0; k < ew_n_args(code[order[p]].op); k++) {
            last_use[args[k]] = p > last_use[args[k]] ? p : last_use[args[k]];
        }
    }
    last_use[h->n_instr - 1] = n; /* the result outlives the program */
    if (h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX) {
        last_use[h->red_index] = n; /* so do the indices it is folded with */
    }
    for (int p = 0; p < n; p++) {
        const uint32_t i = order[p];
        const int args[3] = {code[i].a, code[i].b, code[i].c};
        slot_of[i] = n_free > 0 && code[i].op != TSR_EW_CONST ? free_slots[--n_free] : n_slots++;
        for (int k = 0; k < ew_n_args(code[i].op); k++) {
            int a = args[k];
            if (last_use[a] == p && code[a].op != TSR_EW_CONST && slot_of[a] >= 0) {
                free_slots[n_free++] = slot_of[a];
                slot_of[a] = -slot_of[a] - 1; /* freed; stays readable during instr i */
            }
        }
    }
    return n_slots + 1;
}

/* Fill the slots of the constants, once per task. */
static void fill_consts(const ew_run_t *r)
{
    for (uint32_t i = 0; i < r->h->n_instr; i++) {
        const tsr_ew_instr_t *in = &r->code[i];
        if (in->op != TSR_EW_CONST) {
            continue;
        }
        for (int64_t k0 = 0; k0 < r->block; k0 += BLOCK) {
            char *dst = slot_ptr(r, i) + (size_t)k0 * tsr_dtype_size((tsr_dtype_t)in->type);
            if (in->type >= TSR_FLOAT32) {
                double v[BLOCK];
                for (int k = 0; k < BLOCK; k++) {
                    v[k] = in->imm_f;
                }
                tsr__ew_cast[TSR_FLOAT64][in->type](dst, v, BLOCK);
            } else {
                int64_t v[BLOCK];
                for (int k = 0; k < BLOCK; k++) {
                    v[k] = in->imm_i;
                }
                tsr__ew_cast[TSR_INT64][in->type](dst, v, BLOCK);
            }
        }
    }
}

/* The instruction of an ARGMIN/ARGMAX's indices when the fold may make them
 * itself (ew_run_t.lazy_index), else -1. */
static int lazy_index(const ew_run_t *r)
{
    const tsr_ew_header_t *h = r->h;
    const tsr_ew_instr_t *in = &r->code[h->red_index];

    if ((h->red_op != TSR_RED_ARGMIN && h->red_op != TSR_RED_ARGMAX) || !r->fold.across ||
        in->op != TSR_EW_LOAD || r->leaves[in->aux].kind != TSR_LEAF_ARANGE ||
        r->leaves[in->aux].type != TSR_INT64) {
        return -1;
    }
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *c = &r->code[i];
        const int32_t args[3] = {c->a, c->b, c->c};
        for (int k = 0; k < ew_n_args(c->op); k++) {
            if (args[k] == (int32_t)h->red_index) {
                return -1; /* the program reads them too */
            }
        }
    }
    return (int)h->red_index;
}

/* The block size and the instructions run_block runs itself. A fused program
 * (its ops in registers, per-block work its loads) whose leaves are all
 * buffers runs on FUSE_BLOCK elements at a time: its slots hold little more
 * than the loads' values, and the work per block weighs less. */
static void plan_blocks(ew_run_t *r)
{
    int buffers_only = 1;

    for (uint32_t l = 0; l < r->h->n_leaves; l++) {
        buffers_only &= r->leaves[l].kind == TSR_LEAF_BUFFER;
    }
    r->block = r->fuse.n_steps > 0 && buffers_only ? FUSE_BLOCK : BLOCK;
    r->slot_bytes = (size_t)r->block * 8;
    r->n_pre = 0;
    for (uint32_t i = 0; i < r->h->n_instr; i++) {
        if (r->fuse.n_steps == 0 || !tsr__fuse_op(r->code[i].op)) {
            r->pre[r->n_pre++] = (uint8_t)i;
        }
    }
    r->lazy_index = lazy_index(r);
}

static int chunk_is_empty(const tsr_ew_header_t *h)
{
    for (uint32_t d = 0; d < h->ndim; d++) {
        if (h->shape[d] == 0) {
            return 1;
        }
    }
    return 0;
}

tsr_status_t tsr__ew_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_ew_header_t *h = arg;
    const tsr_ew_leaf_t *leaves = h != NULL ? (const tsr_ew_leaf_t *)(h + 1) : NULL;
    const tsr_ew_instr_t *code = h != NULL && h->n_leaves <= TSR_EW_MAX_LEAVES
                                     ? (const tsr_ew_instr_t *)(leaves + h->n_leaves)
                                                      : NULL;
    ew_run_t r;
    uint64_t need = 0;
    char msg[200];
    int n_slots;
    tsr_status_t st;

    if (!ew_check_program(h, leaves, code, bufs, &need, msg, sizeof(msg))) {
        tsr_task_ctx_fail(ctx, "%s", msg);
        return TSR_EINVAL;
    }
    memset(&r, 0, sizeof(r));
    r.h = h;
    r.leaves = leaves;
    r.code = code;
    r.bufs = bufs;
    r.vtype = ew_result_type(&code[h->n_instr - 1]);
    r.vsize = tsr_dtype_size(r.vtype);
    r.acc_size = 8;
    if (h->red_op != TSR_RED_NONE) {
        r.fold.red_op = (tsr_red_op_t)h->red_op;
        r.fold.vtype = r.vtype;
        r.fold.acc_type = tsr_red_acc_type((tsr_red_op_t)h->red_op, r.vtype);
        r.acc_size = tsr_red_acc_size((tsr_red_op_t)h->red_op, r.vtype);
    }
    st = ew_out_buffer(ctx, bufs, h->out_buf, (size_t)h->out_bytes, (void **)&r.out);
    if (st != TSR_OK) {
        return st;
    }
    if (h->red_op != TSR_RED_NONE) {
        tsr__fold_init(r.out, (tsr_red_op_t)h->red_op, r.vtype,
                       (int64_t)(h->out_bytes / r.acc_size));
    }
    if (chunk_is_empty(h)) {
        return TSR_OK; /* nothing to run; partials keep the fold's identity */
    }
    collapse_dims(h, leaves, &r.g);
    r.fold.across = r.g.red[r.g.m - 1];
    tsr__fuse_plan(h, code, r.vtype, &r.fuse);
    plan_blocks(&r);
    n_slots = plan_slots(&r, r.slot_of);
    r.slots = aligned_alloc(64, (size_t)n_slots * r.slot_bytes);
    if (r.slots == NULL) {
        tsr_task_ctx_fail(ctx, "array kernel: out of memory for %d blocks", n_slots);
        return TSR_ENOMEM;
    }
    r.fold.tmp = r.slots + (size_t)(n_slots - 1) * r.slot_bytes;
    r.stream_out = EW_HAVE_STREAM && h->red_op == TSR_RED_NONE && h->out_bytes >= STREAM_MIN_BYTES;
    fill_consts(&r);
    run_chunk(&r);
#if EW_HAVE_STREAM
    if (r.stream_out) {
        _mm_sfence(); /* the stores are visible before the task completes */
    }
#endif
    free(r.slots);
    return TSR_OK;
}
