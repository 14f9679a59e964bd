/* User functions on blocks: map_blocks (a function per chunk of its inputs) and
 * map_overlap (a function per chunk widened by a halo).
 *
 * A MAP node is a step of its own. Its inputs are computed into chunks first;
 * then one task per chunk runs a trampoline codelet that allocates the output
 * block and calls the user's implementation with the block's description
 * (tsr_block_info_t) as its argument. For map_overlap, copy tasks first assemble
 * each widened chunk from the chunks it overlaps and the boundary rule
 * (tsr__copy_codelet: mirrored and wrapped runs are pieces with negative or
 * shifted strides, nearest ones pieces with stride 0, constants fills). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/array.h>
#include <tessera/task.h>

#include "collections/array/array_impl.h"
#include "collections/array/lower_impl.h"

#define MAP_ARG_MAX ((size_t)64 << 10)

struct tsr__map {
    tsr_kernel_fn fn[2]; /* CPU, CUDA */
    const char *name;    /* interned */
    void *arg;
    size_t arg_size;
    int overlap;
    int64_t depth[TSR_MAX_DIMS];
    tsr_boundary_t boundary;
    uint64_t fill; /* CONSTANT: the value's bytes in the input's dtype */
};

/* A task's argument: the implementations, then the block's description and
 * the caller's bytes right after it (tsr_block_arg). */
struct map_task_arg {
    tsr_kernel_fn fn[2];
    tsr_block_info_t info;
};

void tsr__map_free(struct tsr__map *m)
{
    if (m != NULL) {
        free(m->arg);
        free(m);
    }
}

/* ---- the trampoline codelets ------------------------------------------------------------ */

static tsr_status_t run_block(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg,
                              int which)
{
    const struct map_task_arg *t = arg;
    const tsr_block_info_t *info = &t->info;
    tsr_buffer_t b[TSR_MAP_MAX_INPUTS + 1];
    size_t n = tsr_dtype_size(info->dtype);
    void *out = NULL;
    tsr_status_t st;

    for (uint32_t d = 0; d < info->ndim; d++) {
        n *= (size_t)info->shape[d];
    }
    for (uint32_t i = 0; i < info->n_in; i++) {
        size_t want = tsr_dtype_size(info->in_dtype[i]);
        for (uint32_t d = 0; d < info->ndim; d++) {
            want *= (size_t)info->in_shape[i][d];
        }
        if (bufs[i].n_bytes != want) {
            tsr_task_ctx_fail(ctx, "map_blocks: input block %u has %zu bytes, %zu expected",
                              (unsigned)i, bufs[i].n_bytes, want);
            return TSR_EINVAL;
        }
        b[i] = bufs[i];
    }
    if (bufs[info->n_in].ptr != NULL && bufs[info->n_in].n_bytes == n) {
        out = bufs[info->n_in].ptr;
    } else {
        st = tsr_task_ctx_alloc(ctx, info->n_in, n, &out);
        if (st != TSR_OK) {
            return st;
        }
    }
    b[info->n_in].ptr = out;
    b[info->n_in].n_bytes = n;
    return t->fn[which](ctx, b, info);
}

static tsr_status_t map_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    return run_block(ctx, bufs, arg, 0);
}

static tsr_status_t map_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    return run_block(ctx, bufs, arg, 1);
}

/* By which implementations the caller gave: 1 CPU, 2 CUDA, 3 both. */
static const tsr_codelet_t map_codelets[4] = {
    [1] = {.name = "map_blocks",
           .impl = {[TSR_DEVICE_CPU] = map_cpu, [TSR_DEVICE_SIM] = map_cpu},
           .n_buffers = TSR_NBUFFERS_DYNAMIC},
    [2] = {.name = "map_blocks",
           .impl = {[TSR_DEVICE_CUDA] = map_cuda},
           .n_buffers = TSR_NBUFFERS_DYNAMIC},
    [3] =
        {.name = "map_blocks",
         .impl =
             {[TSR_DEVICE_CPU] = map_cpu, [TSR_DEVICE_SIM] = map_cpu, [TSR_DEVICE_CUDA] = map_cuda},
         .n_buffers = TSR_NBUFFERS_DYNAMIC},
};

/* ---- building ------------------------------------------------------------------------ */

/* Task names are kept for the process's life: traces and performance models
 * refer to them after the tasks (and the arrays) are gone. One copy per name. */
static pthread_mutex_t names_mutex = PTHREAD_MUTEX_INITIALIZER;
static char **names;
static size_t n_names, cap_names;

static const char *intern_name(const char *name)
{
    const char *found = NULL;

    pthread_mutex_lock(&names_mutex);
    for (size_t i = 0; i < n_names && found == NULL; i++) {
        if (strcmp(names[i], name) == 0) {
            found = names[i];
        }
    }
    if (found == NULL && tsr__lower_grow(&names, &cap_names, n_names + 1, sizeof(*names))) {
        char *copy = malloc(strlen(name) + 1);
        if (copy != NULL) {
            strcpy(copy, name);
            names[n_names++] = copy;
            found = copy;
        }
    }
    pthread_mutex_unlock(&names_mutex);
    return found;
}

static tsr_status_t check_fn(const tsr_block_fn_t *fn, tsr_dtype_t dtype, const char *what)
{
    if (fn == NULL || (fn->cpu == NULL && fn->cuda == NULL)) {
        return tsr__array_fail(TSR_EINVAL,
                               "%s: no function, or neither a CPU nor a CUDA "
                               "implementation",
                               what);
    }
    if (fn->arg_size > MAP_ARG_MAX || (fn->arg == NULL && fn->arg_size > 0)) {
        return tsr__array_fail(TSR_EINVAL,
                               "%s: an argument of %zu bytes (at most %zu, and not NULL when "
                               "sized)",
                               what, fn->arg_size, MAP_ARG_MAX);
    }
    if (tsr_dtype_size(dtype) == 0) {
        return tsr__array_fail(TSR_EINVAL, "%s: dtype %d is not a tsr_dtype_t", what, (int)dtype);
    }
    return TSR_OK;
}

/* A MAP node over inputs[0..n_in) with the chunks of inputs[0]. */
static tsr_status_t new_map(const tsr_block_fn_t *fn, tsr_array_t *const *inputs, uint32_t n_in,
                            tsr_dtype_t dtype, const char *what, tsr_array_t **out)
{
    const tsr_array_t *a = inputs[0];
    tsr_array_t *r = NULL;
    struct tsr__map *m = calloc(1, sizeof(*m));
    const char *name = fn->name != NULL ? fn->name : "map_blocks";
    tsr_status_t st = TSR_OK;

    if (m != NULL) {
        m->name = intern_name(name);
        m->arg = malloc(fn->arg_size > 0 ? fn->arg_size : 1);
    }
    if (m == NULL || m->name == NULL || m->arg == NULL) {
        tsr__map_free(m);
        return tsr__array_fail(TSR_ENOMEM, "%s: out of memory", what);
    }
    if (fn->arg_size > 0) {
        memcpy(m->arg, fn->arg, fn->arg_size);
    }
    m->arg_size = fn->arg_size;
    m->fn[0] = fn->cpu;
    m->fn[1] = fn->cuda;
    st = tsr__array_new_bounds(a->rt, dtype, a->ndim, a->shape, a->nch,
                               (const int64_t *const *)a->cb, &r);
    if (st == TSR_OK && n_in > 3 && (r->in = calloc(n_in, sizeof(*r->in))) == NULL) {
        r->in = r->in_fixed;
        st = tsr__array_fail(TSR_ENOMEM, "%s: out of memory", what);
    }
    if (st != TSR_OK) {
        tsr__map_free(m);
        tsr_array_release(r);
        return st;
    }
    r->kind = TSR__NODE_MAP;
    r->map = m;
    for (uint32_t i = 0; i < n_in; i++) {
        r->in[i] = tsr_array_retain(inputs[i]);
    }
    r->n_in = n_in;
    *out = r;
    return TSR_OK;
}

/* inputs[0..n) seen with their chunks unified (each a new reference in views[]),
 * so that the blocks a call gets line up. */
static tsr_status_t unify_inputs(tsr_array_t *const *inputs, uint32_t n, tsr_array_t **views)
{
    const tsr_array_t *a = inputs[0];
    uint32_t nch[TSR_MAX_DIMS];
    int64_t *cb[TSR_MAX_DIMS] = {NULL};
    tsr_status_t st = tsr__array_unified_bounds(inputs, n, a->ndim, a->shape, nch, cb);

    for (uint32_t i = 0; i < n && st == TSR_OK; i++) {
        st = tsr__array_refined(inputs[i], nch, (const int64_t *const *)cb, &views[i]);
    }
    for (uint32_t d = 0; d < a->ndim; d++) {
        free(cb[d]);
    }
    return st;
}

tsr_status_t tsr_array_map_blocks(const tsr_block_fn_t *fn, tsr_array_t *const *inputs,
                                  uint32_t n_in, tsr_dtype_t dtype, tsr_array_t **out)
{
    static const char what[] = "tsr_array_map_blocks";
    tsr_array_t *views[TSR_MAP_MAX_INPUTS] = {NULL};
    tsr_status_t st = check_fn(fn, dtype, what);

    if (st == TSR_OK && (inputs == NULL || out == NULL || n_in == 0 || n_in > TSR_MAP_MAX_INPUTS)) {
        st = tsr__array_fail(TSR_EINVAL, "%s: %u inputs (1 to %d), or inputs or out is NULL", what,
                             (unsigned)n_in, TSR_MAP_MAX_INPUTS);
    }
    for (uint32_t i = 0; st == TSR_OK && i < n_in; i++) {
        const tsr_array_t *a = inputs[0];
        const tsr_array_t *b = inputs[i];
        st = tsr__array_check(b, what);
        if (st == TSR_OK && (b->rt != a->rt || b->ndim != a->ndim ||
                             memcmp(b->shape, a->shape, a->ndim * sizeof(int64_t)) != 0)) {
            st = tsr__array_fail(TSR_EINVAL,
                                 "%s: input %u has another shape than input 0 (or another "
                                 "runtime)",
                                 what, (unsigned)i);
        }
    }
    if (st == TSR_OK) {
        st = unify_inputs(inputs, n_in, views);
    }
    if (st == TSR_OK) {
        st = new_map(fn, views, n_in, dtype, what, out);
    }
    for (uint32_t i = 0; i < TSR_MAP_MAX_INPUTS; i++) {
        tsr_array_release(views[i]); /* new_map holds its own references */
    }
    return st;
}

/* `v` as an element of dtype t (low bytes of *bits); 0 if it does not fit. */
static int fill_bits(tsr_dtype_t t, double v, uint64_t *bits)
{
    union {
        uint8_t u8;
        uint16_t u16;
        int32_t i32;
        int64_t i64;
        float f32;
        double f64;
        uint64_t raw;
    } u;
    double lo = 0;
    double hi = 0;

    u.raw = 0;
    switch (t) {
    case TSR_BOOL:
        u.u8 = v != 0;
        break;
    case TSR_FLOAT32:
        u.f32 = (float)v;
        break;
    case TSR_FLOAT64:
        u.f64 = v;
        break;
    default:
        lo = t == TSR_UINT8 || t == TSR_UINT16 ? 0 : t == TSR_INT32 ? -2147483648.0 : -0x1p63;
        hi = t == TSR_UINT8    ? 255
             : t == TSR_UINT16 ? 65535
             : t == TSR_INT32  ? 2147483647.0
                               : 0x1p63 - 1024;
        if (!(v >= lo && v <= hi) || v != floor(v)) {
            return 0;
        }
        if (t == TSR_UINT8) {
            u.u8 = (uint8_t)v;
        } else if (t == TSR_UINT16) {
            u.u16 = (uint16_t)v;
        } else if (t == TSR_INT32) {
            u.i32 = (int32_t)v;
        } else {
            u.i64 = (int64_t)v;
        }
    }
    *bits = u.raw;
    return 1;
}

tsr_status_t tsr_array_map_overlap(const tsr_block_fn_t *fn, tsr_array_t *a, const int64_t *depth,
                                   tsr_boundary_t boundary, double constant, tsr_dtype_t dtype,
                                   tsr_array_t **out)
{
    static const char what[] = "tsr_array_map_overlap";
    uint64_t fill = 0;
    tsr_status_t st = check_fn(fn, dtype, what);

    if (st == TSR_OK) {
        st = tsr__array_check(a, what);
    }
    if (st != TSR_OK) {
        return st;
    }
    if (out == NULL || (depth == NULL && a->ndim > 0) ||
        (unsigned)boundary > TSR_BOUNDARY_PERIODIC) {
        return tsr__array_fail(TSR_EINVAL,
                               "%s: depth or out is NULL, or boundary %d is not a "
                               "tsr_boundary_t",
                               what, (int)boundary);
    }
    for (uint32_t d = 0; d < a->ndim; d++) {
        int wraps = boundary == TSR_BOUNDARY_REFLECT || boundary == TSR_BOUNDARY_PERIODIC;
        if (depth[d] < 0 || (wraps && depth[d] > a->shape[d])) {
            return tsr__array_fail(TSR_EINVAL,
                                   "%s: depth %lld along dimension %u of size %lld (0 to the "
                                   "size for reflect and periodic boundaries)",
                                   what, (long long)depth[d], (unsigned)d, (long long)a->shape[d]);
        }
    }
    if (boundary == TSR_BOUNDARY_CONSTANT && !fill_bits(a->dtype, constant, &fill)) {
        return tsr__array_fail(TSR_EINVAL, "%s: the constant %g is not a %s value", what, constant,
                               tsr_dtype_name(a->dtype));
    }
    st = new_map(fn, &a, 1, dtype, what, out);
    if (st == TSR_OK) {
        struct tsr__map *m = (*out)->map;
        m->overlap = 1;
        for (uint32_t d = 0; d < a->ndim; d++) {
            m->depth[d] = depth[d];
        }
        m->boundary = boundary;
        m->fill = fill;
    }
    return st;
}

/* ---- lowering ------------------------------------------------------------------------ */

/* The chunks a halo is read from: a's chunk grid, or one chunk for a borrowed
 * whole buffer. */
struct src_grid {
    const tsr_array_t *a;
    tsr_data_t **chunks; /* NULL: a->whole */
};

static uint32_t grid_nch(const struct src_grid *g, uint32_t d)
{
    return g->chunks != NULL ? g->a->nch[d] : 1;
}

static int64_t grid_bound(const struct src_grid *g, uint32_t d, int64_t j)
{
    return g->chunks != NULL ? g->a->cb[d][j] : j == 0 ? 0 : g->a->shape[d];
}

static int64_t grid_chunk_at(const struct src_grid *g, uint32_t d, int64_t x)
{
    return g->chunks != NULL ? tsr__chunk_at(g->a, d, x) : 0;
}

/* Along one dimension of the widened block: positions [dst, dst + len) read the
 * source chunk `chunk` from coordinate `src` on, stepping `step` (1, -1 or 0);
 * chunk < 0 for the boundary constant. */
struct run {
    int64_t dst, len, chunk, src;
    int step;
};

/* The runs of global coordinates [g0, g1) read at x = A + t g; `base` is the
 * widened block's first coordinate. */
static uint32_t seg_runs(const struct src_grid *G, uint32_t d, int64_t g0, int64_t g1, int64_t A,
                         int t, int64_t base, struct run *out)
{
    uint32_t n = 0;

    if (g1 <= g0) {
        return 0;
    }
    if (t == 0) {
        out[n++] = (struct run){g0 - base, g1 - g0, grid_chunk_at(G, d, A), A, 0};
    } else if (t > 0) {
        int64_t x0 = A + g0, x1 = A + g1; /* [x0, x1) */
        for (int64_t j = grid_chunk_at(G, d, x0); j < grid_nch(G, d) && grid_bound(G, d, j) < x1;
             j++) {
            int64_t s0 = x0 > grid_bound(G, d, j) ? x0 : grid_bound(G, d, j);
            int64_t s1 = x1 < grid_bound(G, d, j + 1) ? x1 : grid_bound(G, d, j + 1);
            out[n++] = (struct run){s0 - A - base, s1 - s0, j, s0, 1};
        }
    } else {
        int64_t xhi = A - g0, xlo = A - g1 + 1; /* [xlo, xhi], read downwards */
        for (int64_t j = grid_chunk_at(G, d, xhi); j >= 0 && grid_bound(G, d, j + 1) > xlo; j--) {
            int64_t top = xhi < grid_bound(G, d, j + 1) - 1 ? xhi : grid_bound(G, d, j + 1) - 1;
            int64_t bot = xlo > grid_bound(G, d, j) ? xlo : grid_bound(G, d, j);
            out[n++] = (struct run){A - top - base, top - bot + 1, j, top, -1};
        }
    }
    return n;
}

/* All runs of dimension d of the widened block [p0, p1) of an array of size n. */
static uint32_t dim_runs(const struct src_grid *G, const struct tsr__map *m, uint32_t d, int64_t p0,
                         int64_t p1, struct run *out)
{
    int64_t n = G->a->shape[d];
    int64_t lo_end = p1 < 0 ? p1 : 0;
    int64_t hi_start = p0 > n ? p0 : n;
    uint32_t k = 0;

    if (p0 < lo_end) {
        switch (m->boundary) {
        case TSR_BOUNDARY_REFLECT:
            k += seg_runs(G, d, p0, lo_end, -1, -1, p0, out + k);
            break;
        case TSR_BOUNDARY_PERIODIC:
            k += seg_runs(G, d, p0, lo_end, n, 1, p0, out + k);
            break;
        case TSR_BOUNDARY_NEAREST:
            k += seg_runs(G, d, p0, lo_end, 0, 0, p0, out + k);
            break;
        default:
            out[k++] = (struct run){0, lo_end - p0, -1, 0, 0};
        }
    }
    k += seg_runs(G, d, p0 > 0 ? p0 : 0, p1 < n ? p1 : n, 0, 1, p0, out + k);
    if (hi_start < p1) {
        switch (m->boundary) {
        case TSR_BOUNDARY_REFLECT:
            k += seg_runs(G, d, hi_start, p1, 2 * n - 1, -1, p0, out + k);
            break;
        case TSR_BOUNDARY_PERIODIC:
            k += seg_runs(G, d, hi_start, p1, -n, 1, p0, out + k);
            break;
        case TSR_BOUNDARY_NEAREST:
            k += seg_runs(G, d, hi_start, p1, n - 1, 0, p0, out + k);
            break;
        default:
            out[k++] = (struct run){hi_start - p0, p1 - hi_start, -1, 0, 0};
        }
    }
    return k;
}

/* Copy tasks filling `pad` with the chunk of origin o and shape s widened by
 * the halo. */
static tsr_status_t fill_halo(lower_t *L, const struct src_grid *G, const struct tsr__map *m,
                              const int64_t *o, const int64_t *s, copy_batch_t *B,
                              struct run *const *runs, tsr_data_t *pad)
{
    const tsr_array_t *a = G->a;
    uint32_t nd = a->ndim;
    uint32_t nr[TSR_MAX_DIMS];
    uint32_t at[TSR_MAX_DIMS] = {0};
    size_t es = tsr_dtype_size(a->dtype);
    uint64_t n = 1;
    tsr_status_t st = TSR_OK;

    memset(&B->h, 0, sizeof(B->h));
    B->h.magic = TSR_COPY_MAGIC;
    B->h.ndim = nd;
    B->h.elem_size = (uint32_t)es;
    for (uint32_t d = 0; d < nd; d++) {
        B->h.shape[d] = s[d] + 2 * m->depth[d];
        n *= (uint64_t)B->h.shape[d];
        nr[d] = dim_runs(G, m, d, o[d] - m->depth[d], o[d] + s[d] + m->depth[d], runs[d]);
    }
    B->h.alloc = 1;
    B->h.out_bytes = n * es;
    B->n_h = 0;
    for (;;) {
        tsr_copy_piece_t p;
        int64_t jc[TSR_MAX_DIMS];
        int fill = 0;

        memset(&p, 0, sizeof(p));
        for (uint32_t d = 0; d < nd; d++) {
            const struct run *r = &runs[d][at[d]];
            p.dst_origin[d] = r->dst;
            p.shape[d] = r->len;
            fill = fill || r->chunk < 0;
            jc[d] = r->chunk;
        }
        if (fill) {
            p.kind = TSR_PIECE_FILL;
            p.fill = m->fill;
            st = tsr__lower_add_piece(L, B, NULL, &p, pad, 0);
        } else {
            int64_t cs[TSR_MAX_DIMS], co[TSR_MAX_DIMS], cst[TSR_MAX_DIMS];
            tsr_data_t *src;
            if (G->chunks != NULL) {
                tsr__array_chunk_box(a, jc, cs, co);
                src = G->chunks[tsr__array_chunk_flat(a, jc)];
            } else {
                memcpy(cs, a->shape, sizeof(cs));
                memset(co, 0, sizeof(co));
                src = a->whole;
            }
            tsr__c_strides(nd, cs, cst);
            p.kind = TSR_PIECE_COPY;
            for (uint32_t d = 0; d < nd; d++) {
                const struct run *r = &runs[d][at[d]];
                p.src_offset += (r->src - co[d]) * cst[d];
                p.src_stride[d] = r->step * cst[d];
            }
            st = tsr__lower_add_piece(L, B, src, &p, pad, 0);
        }
        if (st != TSR_OK) {
            return st;
        }
        int d = (int)nd - 1;
        while (d >= 0 && ++at[d] == nr[d]) {
            at[d] = 0;
            d--;
        }
        if (d < 0) {
            break;
        }
    }
    return tsr__lower_flush_copy(L, B, pad, 0);
}

tsr_status_t tsr__lower_map(lower_t *L, tsr_array_t *x, tsr_data_t **outs)
{
    const struct tsr__map *m = x->map;
    int root = L->root == x;
    int which = (m->fn[0] != NULL ? 1 : 0) | (m->fn[1] != NULL ? 2 : 0);
    size_t arg_bytes = sizeof(struct map_task_arg) + m->arg_size;
    struct map_task_arg *t = NULL;
    struct run *runs[TSR_MAX_DIMS] = {NULL};
    copy_batch_t *B = NULL;
    struct src_grid G = {x->in[0], NULL};
    tsr_status_t st = TSR_OK;

    for (uint32_t i = 0; i < x->n_in && st == TSR_OK; i++) {
        if (tsr__lower_chunks(L, x->in[i]) == NULL && !(m->overlap && x->in[i]->whole != NULL)) {
            st = tsr__lower_materialize(L, x->in[i], NULL);
        }
    }
    if (st != TSR_OK) {
        return st;
    }
    G.chunks = tsr__lower_chunks(L, x->in[0]);
    t = calloc(1, arg_bytes);
    if (t == NULL) {
        return tsr__lower_oom();
    }
    if (m->overlap) {
        B = malloc(sizeof(*B));
        for (uint32_t d = 0; B != NULL && d < x->ndim; d++) {
            /* At most every chunk of the dimension, plus the two boundary runs. */
            runs[d] = malloc(((size_t)3 * grid_nch(&G, d) + 4) * sizeof(struct run));
            if (runs[d] == NULL) {
                free(B);
                B = NULL;
            }
        }
        if (B == NULL) {
            st = tsr__lower_oom();
        }
    }
    memcpy(t->fn, m->fn, sizeof(t->fn));
    t->info.ndim = x->ndim;
    t->info.n_in = x->n_in;
    t->info.dtype = x->dtype;
    t->info.arg_size = m->arg_size;
    for (uint32_t i = 0; i < x->n_in; i++) {
        t->info.in_dtype[i] = x->in[i]->dtype;
    }
    if (m->overlap) {
        memcpy(t->info.depth, m->depth, sizeof(t->info.depth));
    }
    if (m->arg_size > 0) {
        memcpy(t + 1, m->arg, m->arg_size);
    }
    for (int64_t k = 0; k < tsr__array_n_chunks(x) && st == TSR_OK; k++) {
        tsr_data_t *handles[TSR_MAP_MAX_INPUTS + 1];
        tsr_access_t modes[TSR_MAP_MAX_INPUTS + 1];
        tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
        uint64_t bytes = 0;
        int64_t n = 1;

        tsr__array_chunk_coords(x, k, t->info.chunk);
        tsr__array_chunk_box(x, t->info.chunk, t->info.shape, t->info.origin);
        for (uint32_t d = 0; d < x->ndim; d++) {
            n *= t->info.shape[d];
        }
        for (uint32_t i = 0; i < x->n_in; i++) {
            int64_t ni = 1;
            for (uint32_t d = 0; d < x->ndim; d++) {
                t->info.in_shape[i][d] = t->info.shape[d] + 2 * t->info.depth[d];
                ni *= t->info.in_shape[i][d];
            }
            if (m->overlap) {
                st = tsr_data_create(L->rt, &handles[i]);
                if (st == TSR_OK) {
                    st = tsr__lower_add_garbage(L, handles[i]);
                }
                if (st == TSR_OK) {
                    st = fill_halo(L, &G, m, t->info.origin, t->info.shape, B, runs, handles[i]);
                }
            } else {
                handles[i] = tsr__lower_chunks(L, x->in[i])[k];
            }
            modes[i] = TSR_R;
            bytes += (uint64_t)ni * tsr_dtype_size(x->in[i]->dtype);
        }
        handles[x->n_in] = outs[k];
        modes[x->n_in] = TSR_W;
        bytes += (uint64_t)n * tsr_dtype_size(x->dtype);
        desc.codelet = &map_codelets[which];
        desc.handles = handles;
        desc.modes = modes;
        desc.n_handles = x->n_in + 1;
        desc.arg = t;
        desc.arg_size = arg_bytes;
        desc.name = m->name;
        if (st == TSR_OK) {
            st = tsr__lower_submit(L, &desc, bytes, root);
        }
    }
    for (uint32_t d = 0; d < TSR_MAX_DIMS; d++) {
        free(runs[d]);
    }
    free(B);
    free(t);
    return st;
}
