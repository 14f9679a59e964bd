/* Lowering array expressions to tasks.
 *
 * A compute walks the graph from its root. Every node that is not data is
 * computed as part of a fused group: the elementwise ops, casts, constants,
 * transposes and generators reachable from the group's root without crossing
 * data become one program (kernel_args.h), run once per chunk of the root. A
 * reduction is its own step: a partial per chunk of its input (the input's group
 * fused into that kernel), then a tree of combines, split_every at a time. A
 * group too large for one program materialises its largest subexpression first.
 * Intermediates live in runtime-owned handles until the compute ends. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/array.h>
#include <tessera/task.h>

#include "collections/array/array_impl.h"
#include "collections/array/lower_impl.h"

int tsr__lower_grow(void *pp, size_t *cap, size_t need, size_t esize)
{
    void **p = pp;
    void *q;
    size_t c;

    if (need <= *cap) {
        return 1;
    }
    c = *cap ? *cap * 2 : 16;
    while (c < need) {
        c *= 2;
    }
    q = realloc(*p, c * esize);
    if (q == NULL) {
        return 0;
    }
    *p = q;
    *cap = c;
    return 1;
}

tsr_status_t tsr__lower_oom(void)
{
    return tsr__array_fail(TSR_ENOMEM, "array compute: out of memory");
}

tsr_data_t **tsr__lower_chunks(const lower_t *L, const tsr_array_t *x)
{
    if (x->chunks != NULL) {
        return x->chunks;
    }
    for (size_t i = 0; i < L->n_tmps; i++) {
        if (L->tmps[i].node == x) {
            return L->tmps[i].chunks;
        }
    }
    return NULL;
}

/* Values a program reads directly. */
static int is_leaf(const lower_t *L, const tsr_array_t *x)
{
    return x->kind == TSR__NODE_GEN || x->whole != NULL || tsr__lower_chunks(L, x) != NULL;
}

/* Nodes lowered as steps of their own, never fused into a consumer. */
static int is_step(const tsr_array_t *x)
{
    return x->kind == TSR__NODE_REDUCE || x->kind == TSR__NODE_MATMUL ||
           x->kind == TSR__NODE_CONCAT || x->kind == TSR__NODE_RECHUNK ||
           x->kind == TSR__NODE_RESHAPE || x->kind == TSR__NODE_MAP;
}

static int is_split(const lower_t *L, const tsr_array_t *x)
{
    for (size_t i = 0; i < L->n_split; i++) {
        if (L->split[i] == x) {
            return 1;
        }
    }
    return 0;
}

void tsr__c_strides(uint32_t ndim, const int64_t *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int d = (int)ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= shape[d];
    }
}

/* ---- programs ----------------------------------------------------------------------- */

/* How a node is read by the program of a group: coordinate k of the node is
 * off[k] + step[k] * (coordinate dim[k] of the group's root), or off[k] when
 * dim[k] < 0 (broadcast, or a fixed index). */
typedef struct {
    int8_t dim[TSR_MAX_DIMS];
    int64_t off[TSR_MAX_DIMS];
    int64_t step[TSR_MAX_DIMS];
} amap_t;

typedef struct {
    tsr_array_t *src;
    amap_t map;
} lsrc_t;

typedef struct {
    lower_t *L;
    uint32_t n_leaves;
    uint32_t n_instr;
    tsr_ew_leaf_t leaves[TSR_EW_MAX_LEAVES];
    lsrc_t lsrc[TSR_EW_MAX_LEAVES];
    tsr_ew_instr_t code[TSR_EW_MAX_INSTR];
    lsrc_t memo[TSR_EW_MAX_INSTR]; /* the node and map instruction i computes */
} prog_t;

#define EMIT_FULL (-1)
#define EMIT_BUG (-2)

static void amap_identity(amap_t *m)
{
    memset(m, 0, sizeof(*m));
    for (int d = 0; d < TSR_MAX_DIMS; d++) {
        m->dim[d] = (int8_t)d;
        m->step[d] = 1;
    }
}

static int same_read(const lsrc_t *s, const tsr_array_t *x, const amap_t *m)
{
    for (uint32_t k = 0; k < x->ndim; k++) {
        if (s->map.dim[k] != m->dim[k] || s->map.off[k] != m->off[k] ||
            s->map.step[k] != m->step[k]) {
            return 0;
        }
    }
    return s->src == x;
}

static int32_t add_instr(prog_t *P, const tsr_ew_instr_t *in, tsr_array_t *x, const amap_t *m)
{
    if (P->n_instr == TSR_EW_MAX_INSTR) {
        return EMIT_FULL;
    }
    P->code[P->n_instr] = *in;
    P->memo[P->n_instr].src = x;
    P->memo[P->n_instr].map = *m;
    return (int32_t)P->n_instr++;
}

/* The value index of node x read through map m, emitting what it needs. */
static int32_t emit(prog_t *P, tsr_array_t *x, const amap_t *m)
{
    tsr_ew_instr_t in;
    amap_t cm;

    for (uint32_t i = 0; i < P->n_instr; i++) {
        if (same_read(&P->memo[i], x, m)) {
            return (int32_t)i;
        }
    }
    memset(&in, 0, sizeof(in));
    in.a = in.b = in.c = -1;
    in.type = (int32_t)x->dtype;
    if (is_leaf(P->L, x)) {
        uint32_t l = 0;
        while (l < P->n_leaves && !same_read(&P->lsrc[l], x, m)) {
            l++;
        }
        if (l == P->n_leaves) {
            if (l == TSR_EW_MAX_LEAVES) {
                return EMIT_FULL;
            }
            memset(&P->leaves[l], 0, sizeof(P->leaves[l]));
            P->leaves[l].kind = x->kind == TSR__NODE_GEN ? (int32_t)x->gen : TSR_LEAF_BUFFER;
            P->leaves[l].type = (int32_t)x->dtype;
            P->leaves[l].p0 = x->p0;
            P->leaves[l].p1 = x->p1;
            P->leaves[l].seed = x->seed;
            P->lsrc[l].src = x;
            P->lsrc[l].map = *m;
            P->n_leaves++;
        }
        in.op = TSR_EW_LOAD;
        in.aux = (int32_t)l;
        return add_instr(P, &in, x, m);
    }
    if (x->kind == TSR__NODE_VIEW) {
        const tsr_array_t *c = x->in[0];
        memset(&cm, 0, sizeof(cm));
        for (uint32_t k = 0; k < c->ndim; k++) {
            int32_t r = x->vmap[k];
            cm.dim[k] = r >= 0 ? m->dim[r] : -1;
            cm.off[k] = x->vstart[k] + (r >= 0 ? x->vstep[k] * m->off[r] : 0);
            cm.step[k] = r >= 0 && m->dim[r] >= 0 ? x->vstep[k] * m->step[r] : 0;
        }
        return emit(P, x->in[0], &cm);
    }
    if (x->kind != TSR__NODE_EW) {
        return EMIT_BUG; /* a step should have been computed first */
    }
    in.op = (int32_t)x->op;
    in.type = (int32_t)x->optype;
    in.aux = x->aux;
    in.imm_i = x->imm_i;
    in.imm_f = x->imm_f;
    for (uint32_t j = 0; j < x->n_in; j++) {
        const tsr_array_t *c = x->in[j];
        uint32_t off = x->ndim - c->ndim;
        int32_t v;
        memset(&cm, 0, sizeof(cm));
        for (uint32_t k = 0; k < c->ndim; k++) {
            int bc = c->shape[k] == 1;
            cm.dim[k] = bc ? -1 : m->dim[k + off];
            cm.off[k] = bc ? 0 : m->off[k + off];
            cm.step[k] = bc ? 0 : m->step[k + off];
        }
        v = emit(P, x->in[j], &cm);
        if (v < 0) {
            return v;
        }
        if (j == 0) {
            in.a = v;
        } else if (j == 1) {
            in.b = v;
        } else {
            in.c = v;
        }
    }
    return add_instr(P, &in, x, m);
}

/* Compute what the group rooted at x reads that is not data yet: reductions and
 * split subexpressions. `seen` avoids walking shared subgraphs twice. */
static tsr_status_t group_deps(lower_t *L, tsr_array_t *x, int is_root, tsr_array_t ***seen,
                               size_t *n_seen, size_t *cap_seen)
{
    if (is_leaf(L, x)) {
        return TSR_OK;
    }
    if (!is_root && (is_step(x) || is_split(L, x))) {
        return tsr__lower_materialize(L, x, NULL);
    }
    for (size_t i = 0; i < *n_seen; i++) {
        if ((*seen)[i] == x) {
            return TSR_OK;
        }
    }
    if (!tsr__lower_grow(seen, cap_seen, *n_seen + 1, sizeof(**seen))) {
        return tsr__lower_oom();
    }
    (*seen)[(*n_seen)++] = x;
    if (is_step(x)) {
        return TSR_OK; /* the root of a step: its inputs are groups of their own */
    }
    for (uint32_t j = 0; j < x->n_in; j++) {
        tsr_status_t st = group_deps(L, x->in[j], 0, seen, n_seen, cap_seen);
        if (st != TSR_OK) {
            return st;
        }
    }
    return TSR_OK;
}

/* Elementwise nodes under x in its group, counted; *best gets the largest
 * subexpression below the root. */
static int group_size(const lower_t *L, tsr_array_t *x, int is_root, tsr_array_t **best,
                      int *best_n)
{
    int n = 0;

    if (is_leaf(L, x) || (!is_root && (is_step(x) || is_split(L, x)))) {
        return 0;
    }
    for (uint32_t j = 0; j < x->n_in; j++) {
        n += group_size(L, x->in[j], 0, best, best_n);
    }
    n += x->kind == TSR__NODE_EW;
    if (!is_root && x->kind == TSR__NODE_EW && n > *best_n) {
        *best = x;
        *best_n = n;
    }
    return n > 1000000 ? 1000000 : n;
}

/* Build the program of the group rooted at x, computing its dependencies first
 * and splitting it until it fits. With `first` (a generator read through map
 * first_map), its value is emitted before x's and *first_at gets its index. */
static tsr_status_t build_program_with(lower_t *L, tsr_array_t *x, tsr_array_t *first,
                                       const amap_t *first_map, uint32_t *first_at, prog_t *P)
{
    amap_t ident;

    amap_identity(&ident);
    if (is_step(x) && tsr__lower_chunks(L, x) == NULL) {
        /* A step read by a program (a reduction of a product, say) is data to it. */
        tsr_status_t st = tsr__lower_materialize(L, x, NULL);
        if (st != TSR_OK) {
            return st;
        }
    }
    for (;;) {
        tsr_array_t **seen = NULL;
        size_t n_seen = 0;
        size_t cap_seen = 0;
        tsr_array_t *best = NULL;
        int best_n = 0;
        int32_t v;
        tsr_status_t st = group_deps(L, x, 1, &seen, &n_seen, &cap_seen);

        free(seen);
        if (st != TSR_OK) {
            return st;
        }
        memset(P, 0, offsetof(prog_t, leaves));
        P->L = L;
        v = first != NULL ? emit(P, first, first_map) : 0;
        if (v >= 0 && first != NULL) {
            *first_at = (uint32_t)v;
        }
        if (v >= 0) {
            v = emit(P, x, &ident);
        }
        if (v >= 0) {
            return TSR_OK;
        }
        if (v == EMIT_BUG) {
            return tsr__array_fail(TSR_EINVAL,
                                   "array compute: internal error, a reduction was "
                                   "not computed before its consumer");
        }
        group_size(L, x, 1, &best, &best_n);
        if (best == NULL) {
            return tsr__array_fail(TSR_ENOTSUP,
                                   "array compute: an expression node has too many "
                                   "inputs to fuse");
        }
        if (!tsr__lower_grow(&L->split, &L->cap_split, L->n_split + 1, sizeof(*L->split))) {
            return tsr__lower_oom();
        }
        L->split[L->n_split++] = best;
    }
}

static tsr_status_t build_program(lower_t *L, tsr_array_t *x, prog_t *P)
{
    return build_program_with(L, x, NULL, NULL, NULL, P);
}

/* ---- submission ----------------------------------------------------------------------- */

/* Submit a task touching about `bytes` of buffers. One that needs more than half
 * of the smallest accelerator's memory runs on the CPU, where it fits, rather
 * than failing for want of room on a device. */
tsr_status_t tsr__lower_submit(lower_t *L, const tsr_task_desc_t *desc_in, uint64_t bytes,
                               int is_root)
{
    tsr_task_desc_t d = *desc_in;
    const tsr_task_desc_t *desc = &d;
    tsr_future_t *f = NULL;
    tsr_status_t st;

    if (L->dev_room > 0 && bytes > L->dev_room / 2) {
        d.pin = TSR_PIN_KIND;
        d.pin_value = TSR_DEVICE_CPU;
    }

    if (is_root && !tsr__lower_grow(&L->futs, &L->cap_futs, L->n_futs + 1, sizeof(*L->futs))) {
        return tsr__lower_oom();
    }
    st = tsr_task_submit(L->rt, desc, is_root ? &f : NULL);
    if (st == TSR_OK && is_root) {
        L->futs[L->n_futs++] = f;
    }
    return st;
}

static uint32_t handle_index(tsr_data_t **handles, uint32_t *n, tsr_data_t *h)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (handles[i] == h) {
            return i;
        }
    }
    handles[*n] = h;
    return (*n)++;
}

/* The chunk of x along dimension k holding coordinate g (binary search). */
int64_t tsr__chunk_at(const tsr_array_t *x, uint32_t k, int64_t g)
{
    int64_t lo = 0;
    int64_t hi = x->nch[k] - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (x->cb[k][mid] <= g) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

/* Fill leaf lf's buffer, offset and strides for the root chunk at `origin` of
 * `shape`: generators and whole buffers by global coordinates; chunked data by
 * the one chunk the root chunk reads (views are chunked so that there is one). */
static tsr_status_t place_leaf(lower_t *L, const lsrc_t *s, const int64_t *origin,
                               const int64_t *shape, tsr_ew_leaf_t *lf, tsr_data_t **handles,
                               uint32_t *n_h)
{
    const tsr_array_t *x = s->src;
    const amap_t *m = &s->map;
    int64_t xs[TSR_MAX_DIMS];
    int64_t g0[TSR_MAX_DIMS];
    int64_t sc[TSR_MAX_DIMS];

    for (uint32_t k = 0; k < x->ndim; k++) {
        g0[k] = m->off[k] + (m->dim[k] >= 0 ? m->step[k] * origin[m->dim[k]] : 0);
    }
    if (x->kind == TSR__NODE_GEN || x->whole != NULL) {
        tsr__c_strides(x->ndim, x->shape, xs);
        if (x->whole != NULL) {
            lf->buf = (int32_t)handle_index(handles, n_h, x->whole);
        }
    } else {
        int64_t cshape[TSR_MAX_DIMS];
        int64_t corigin[TSR_MAX_DIMS];
        for (uint32_t k = 0; k < x->ndim; k++) {
            int64_t g1 = g0[k] + (m->dim[k] >= 0 ? m->step[k] * (shape[m->dim[k]] - 1) : 0);
            sc[k] = tsr__chunk_at(x, k, g0[k]);
            if (g1 < x->cb[k][sc[k]] || g1 >= x->cb[k][sc[k] + 1]) {
                return tsr__array_fail(TSR_EINVAL,
                                       "array compute: internal error, a chunk "
                                       "reads across chunks of its input");
            }
        }
        tsr__array_chunk_box(x, sc, cshape, corigin);
        tsr__c_strides(x->ndim, cshape, xs);
        for (uint32_t k = 0; k < x->ndim; k++) {
            g0[k] -= corigin[k];
        }
        lf->buf = (int32_t)handle_index(handles, n_h,
                                        tsr__lower_chunks(L, x)[tsr__array_chunk_flat(x, sc)]);
    }
    for (uint32_t k = 0; k < x->ndim; k++) {
        lf->offset += g0[k] * xs[k];
        if (m->dim[k] >= 0) {
            lf->stride[m->dim[k]] += m->step[k] * xs[k];
        }
    }
    return TSR_OK;
}

/* One task per chunk of `space` (the group's root) running program P, writing
 * outs[i] (a reduction's partials when red != NONE). */
static tsr_status_t submit_program(lower_t *L, const prog_t *P, const tsr_array_t *space,
                                   tsr_red_op_t red, uint32_t red_mask, uint32_t red_index,
                                   tsr_data_t **outs, int is_root)
{
    size_t blob_size = sizeof(tsr_ew_header_t) + P->n_leaves * sizeof(tsr_ew_leaf_t) +
                       P->n_instr * sizeof(tsr_ew_instr_t);
    char *blob = malloc(blob_size);
    tsr_ew_header_t *h = (tsr_ew_header_t *)blob;
    tsr_ew_leaf_t *leaves = (tsr_ew_leaf_t *)(h + 1);
    int64_t n_chunks = tsr__array_n_chunks(space);
    tsr_dtype_t vtype;
    tsr_status_t st = TSR_OK;

    if (blob == NULL) {
        return tsr__lower_oom();
    }
    memcpy(leaves + P->n_leaves, P->code, P->n_instr * sizeof(tsr_ew_instr_t));
    {
        const tsr_ew_instr_t *last = &P->code[P->n_instr - 1];
        vtype = last->op >= TSR_EW_LT && last->op <= TSR_EW_NE ? TSR_BOOL
                : last->op == TSR_EW_CAST                      ? (tsr_dtype_t)last->aux
                                                               : (tsr_dtype_t)last->type;
    }
    for (int64_t c = 0; c < n_chunks && st == TSR_OK; c++) {
        int64_t coords[TSR_MAX_DIMS];
        int64_t origin[TSR_MAX_DIMS];
        tsr_data_t *handles[TSR_MAX_BUFFERS];
        tsr_access_t modes[TSR_MAX_BUFFERS];
        uint32_t n_h = 0;
        int64_t out_elems = 1;
        int64_t chunk_elems = 1;
        uint64_t task_bytes;
        tsr_task_desc_t desc = TSR_TASK_DESC_INIT;

        memset(h, 0, sizeof(*h));
        tsr__array_chunk_coords(space, c, coords);
        tsr__array_chunk_box(space, coords, h->shape, origin);
        h->magic = TSR_EW_MAGIC;
        h->ndim = space->ndim;
        h->n_leaves = P->n_leaves;
        h->n_instr = P->n_instr;
        h->red_op = (int32_t)red;
        h->red_mask = red_mask;
        h->red_index = red_index;
        for (uint32_t d = 0; d < space->ndim; d++) {
            out_elems *= red != TSR_RED_NONE && ((red_mask >> d) & 1u) ? 1 : h->shape[d];
            chunk_elems *= h->shape[d];
        }
        h->out_bytes = (uint64_t)out_elems *
                       (red != TSR_RED_NONE ? tsr_red_acc_size(red, vtype) : tsr_dtype_size(vtype));
        task_bytes = h->out_bytes;
        for (uint32_t l = 0; l < P->n_leaves && st == TSR_OK; l++) {
            const lsrc_t *s = &P->lsrc[l];
            tsr_ew_leaf_t *lf = &leaves[l];

            *lf = P->leaves[l];
            st = place_leaf(L, s, origin, h->shape, lf, handles, &n_h);
            /* A borrowed whole buffer moves whole; a chunk about as the output. */
            task_bytes += s->src->whole != NULL ? tsr_data_size(s->src->whole)
                          : lf->kind == TSR_LEAF_BUFFER
                              ? (uint64_t)chunk_elems * tsr_dtype_size((tsr_dtype_t)lf->type)
                              : 0;
        }
        if (st != TSR_OK) {
            break;
        }
        for (uint32_t i = 0; i < n_h; i++) {
            modes[i] = TSR_R;
        }
        h->out_buf = n_h;
        handles[n_h] = outs[c];
        modes[n_h++] = TSR_W;
        desc.codelet = &tsr__ew_codelet;
        desc.handles = handles;
        desc.modes = modes;
        desc.n_handles = n_h;
        desc.arg = blob;
        desc.arg_size = blob_size;
        st = tsr__lower_submit(L, &desc, task_bytes, is_root);
    }
    free(blob);
    return st;
}

tsr_status_t tsr__lower_new_handles(lower_t *L, int64_t n, tsr_data_t ***out)
{
    tsr_data_t **hs = calloc((size_t)(n > 0 ? n : 1), sizeof(*hs));

    if (hs == NULL) {
        return tsr__lower_oom();
    }
    for (int64_t i = 0; i < n; i++) {
        tsr_status_t st = tsr_data_create(L->rt, &hs[i]);
        if (st != TSR_OK) {
            for (int64_t j = 0; j < i; j++) {
                tsr_data_unregister(hs[j]);
            }
            free(hs);
            return st;
        }
    }
    *out = hs;
    return TSR_OK;
}

tsr_status_t tsr__lower_add_garbage(lower_t *L, tsr_data_t *h)
{
    if (!tsr__lower_grow(&L->garbage, &L->cap_garbage, L->n_garbage + 1, sizeof(*L->garbage))) {
        tsr_data_unregister(h);
        return tsr__lower_oom();
    }
    L->garbage[L->n_garbage++] = h;
    return TSR_OK;
}

static tsr_status_t submit_combine(lower_t *L, const tsr_array_t *r, tsr_data_t *const *in,
                                   uint32_t n_in, uint64_t n_elems, double count, int final,
                                   tsr_data_t *out, int is_root)
{
    tsr_data_t *handles[TSR_MAX_BUFFERS];
    tsr_access_t modes[TSR_MAX_BUFFERS];
    tsr_red_combine_arg_t arg;
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;

    memset(&arg, 0, sizeof(arg));
    arg.red_op = (int32_t)r->red;
    arg.acc_type = (int32_t)tsr_red_acc_type(r->red, r->in[0]->dtype);
    arg.fin = (int32_t)r->fin;
    arg.out_type = (int32_t)r->dtype;
    arg.final = (uint32_t) final;
    arg.n_in = n_in;
    arg.n_elems = n_elems;
    arg.count = count;
    arg.ddof = r->ddof;
    for (uint32_t i = 0; i < n_in; i++) {
        handles[i] = in[i];
        modes[i] = TSR_R;
    }
    handles[n_in] = out;
    modes[n_in] = TSR_W;
    desc.codelet = &tsr__red_combine_codelet;
    desc.handles = handles;
    desc.modes = modes;
    desc.n_handles = n_in + 1;
    desc.arg = &arg;
    desc.arg_size = sizeof(arg);
    return tsr__lower_submit(
        L, &desc, (uint64_t)(n_in + 1) * n_elems * tsr_red_acc_size(r->red, r->in[0]->dtype),
        is_root);
}

static tsr_status_t lower_reduce(lower_t *L, tsr_array_t *r, tsr_data_t **outs)
{
    tsr_array_t *x = r->in[0];
    prog_t *P = malloc(sizeof(*P));
    tsr_data_t **partials = NULL;
    tsr_data_t **lists = NULL;
    int64_t n_in_chunks = tsr__array_n_chunks(x);
    int64_t n_out = tsr__array_n_chunks(r);
    int64_t per_out = n_out > 0 ? n_in_chunks / n_out : 0;
    int64_t *fill = NULL;
    double count = 1;
    uint32_t f = r->split_every;
    uint32_t red_index = 0;
    tsr_status_t st;

    if (P == NULL) {
        return tsr__lower_oom();
    }
    if (r->red == TSR_RED_ARGMIN || r->red == TSR_RED_ARGMAX) {
        /* Each element's index comes from generator in[1]: along axis r->aux, or
         * flat (its dimensions are x's). */
        amap_t imap;
        amap_identity(&imap);
        if (r->aux >= 0) {
            imap.dim[0] = (int8_t)r->aux;
        }
        st = build_program_with(L, x, r->in[1], &imap, &red_index, P);
    } else {
        st = build_program(L, x, P);
    }
    if (st == TSR_OK) {
        st = tsr__lower_new_handles(L, n_in_chunks, &partials);
    }
    if (st == TSR_OK) {
        for (int64_t i = 0; i < n_in_chunks && st == TSR_OK; i++) {
            st = tsr__lower_add_garbage(L, partials[i]);
        }
        if (st != TSR_OK) {
            free(partials);
            partials = NULL;
        }
    }
    if (st == TSR_OK) {
        st = submit_program(L, P, x, r->red, r->red_mask, red_index, partials, 0);
    }
    free(P);
    /* Group the partials by the output chunk they fold into. */
    if (st == TSR_OK && ((lists = malloc((size_t)n_in_chunks * sizeof(*lists))) == NULL ||
                         (fill = calloc((size_t)n_out, sizeof(*fill))) == NULL)) {
        st = tsr__lower_oom();
    }
    for (uint32_t d = 0; d < x->ndim; d++) {
        count *= (r->red_mask >> d) & 1u ? (double)x->shape[d] : 1.0;
    }
    for (int64_t i = 0; i < n_in_chunks && st == TSR_OK; i++) {
        int64_t xc[TSR_MAX_DIMS];
        int64_t o = 0;
        tsr__array_chunk_coords(x, i, xc);
        for (uint32_t d = 0; d < x->ndim; d++) {
            if (!((r->red_mask >> d) & 1u)) {
                o = o * x->nch[d] + xc[d];
            }
        }
        lists[o * per_out + fill[o]++] = partials[i];
    }
    for (int64_t o = 0; o < n_out && st == TSR_OK; o++) {
        tsr_data_t **cur = lists + o * per_out;
        int64_t n = per_out;
        int64_t oc[TSR_MAX_DIMS];
        int64_t os[TSR_MAX_DIMS];
        int64_t oo[TSR_MAX_DIMS];
        uint64_t elems;

        tsr__array_chunk_coords(r, o, oc);
        elems = (uint64_t)tsr__array_chunk_box(r, oc, os, oo);
        while (n > f && st == TSR_OK) {
            int64_t m = 0;
            for (int64_t i = 0; i < n && st == TSR_OK; i += f) {
                uint32_t k = (uint32_t)(n - i < f ? n - i : f);
                tsr_data_t *h;
                st = tsr_data_create(L->rt, &h);
                if (st == TSR_OK) {
                    st = tsr__lower_add_garbage(L, h);
                }
                if (st == TSR_OK) {
                    st = submit_combine(L, r, cur + i, k, elems, count, 0, h, 0);
                    cur[m++] = h; /* the slot of cur[i] is read already */
                }
            }
            n = m;
        }
        if (st == TSR_OK) {
            st = submit_combine(L, r, cur, (uint32_t)n, elems, count, 1, outs[o], L->root == r);
        }
    }
    free(partials);
    free(lists);
    free(fill);
    return st;
}

/* The fused program of the group rooted at x, one task per chunk of `space`
 * (x's own chunks, or new ones when x reads by global coordinates) writing outs. */
tsr_status_t tsr__lower_run_group(lower_t *L, tsr_array_t *x, const tsr_array_t *space,
                                  tsr_data_t **outs, int root)
{
    prog_t *P = malloc(sizeof(*P));
    tsr_status_t st = P != NULL ? build_program(L, x, P) : tsr__lower_oom();

    if (st == TSR_OK) {
        st = submit_program(L, P, space, TSR_RED_NONE, 0, 0, outs, root);
    }
    free(P);
    return st;
}

/* Compute b into the handles outs (one per chunk of b), whether b is data
 * already (copied by a LOAD program), an expression, or a step; `root`: these
 * tasks write the root's chunks. */
tsr_status_t tsr__lower_compute_into(lower_t *L, tsr_array_t *b, tsr_data_t **outs, int root)
{
    tsr_status_t st;

    if (is_step(b) && tsr__lower_chunks(L, b) == NULL) {
        /* The step's own tasks count as the root's when they write its chunks. */
        tsr_array_t *saved = L->root;
        if (root) {
            L->root = b;
        }
        st = tsr__lower_materialize(L, b, outs);
        L->root = saved;
    } else {
        st = tsr__lower_run_group(L, b, b, outs, root);
    }
    return st;
}

/* Compute x (not data yet) into outs, or into new handles recorded as x's
 * temporaries when outs is NULL. */
tsr_status_t tsr__lower_materialize(lower_t *L, tsr_array_t *x, tsr_data_t **outs)
{
    tsr_data_t **mine = NULL;
    tsr_status_t st;

    if (tsr__lower_chunks(L, x) != NULL) {
        return TSR_OK;
    }
    if (outs == NULL) {
        st = tsr__lower_new_handles(L, tsr__array_n_chunks(x), &mine);
        if (st != TSR_OK) {
            return st;
        }
        outs = mine;
    }
    if (x->kind == TSR__NODE_REDUCE) {
        st = lower_reduce(L, x, outs);
    } else if (x->kind == TSR__NODE_MATMUL) {
        st = tsr__lower_matmul(L, x, outs);
    } else if (x->kind == TSR__NODE_CONCAT) {
        st = tsr__lower_concat(L, x, outs);
    } else if (x->kind == TSR__NODE_RECHUNK) {
        st = tsr__lower_rechunk(L, x, outs);
    } else if (x->kind == TSR__NODE_MAP) {
        st = tsr__lower_map(L, x, outs);
    } else if (x->kind == TSR__NODE_RESHAPE) {
        /* Chunk k of x has the bytes of chunk k of its input. */
        st = tsr__lower_compute_into(L, x->in[0], outs, L->root == x);
    } else {
        st = tsr__lower_run_group(L, x, x, outs, L->root == x);
    }
    /* Recorded even on failure, so that cleanup unregisters the handles. */
    if (mine != NULL) {
        if (!tsr__lower_grow(&L->tmps, &L->cap_tmps, L->n_tmps + 1, sizeof(*L->tmps))) {
            /* Unregistering waits for the tasks already submitted. */
            for (int64_t i = 0; i < tsr__array_n_chunks(x); i++) {
                tsr_data_unregister(mine[i]);
            }
            free(mine);
            return tsr__lower_oom();
        }
        L->tmps[L->n_tmps].node = x;
        L->tmps[L->n_tmps++].chunks = mine;
    }
    return st;
}
