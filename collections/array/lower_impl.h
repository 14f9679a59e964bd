/* The lowering's state and the helpers its steps share (lower.c, lower_steps.c,
 * map.c, compute.c). Private to collections/array/. */
#ifndef TSR_COLLECTIONS_ARRAY_LOWER_IMPL_H
#define TSR_COLLECTIONS_ARRAY_LOWER_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/task.h>

#include "collections/array/array_impl.h"

typedef struct {
    tsr_array_t *node;
    tsr_data_t **chunks;
} tmp_t;

typedef struct {
    tsr_runtime_t *rt;
    tsr_array_t *root;
    tmp_t *tmps; /* nodes computed in this lowering, with their chunks */
    size_t n_tmps, cap_tmps;
    tsr_data_t **garbage; /* partials: unregistered at the end */
    size_t n_garbage, cap_garbage;
    tsr_array_t **split; /* subexpressions that must be materialised */
    size_t n_split, cap_split;
    tsr_future_t **futs; /* the tasks that write the root */
    size_t n_futs, cap_futs;
    uint64_t dev_room; /* the least memory of an accelerator (0: none) */
} lower_t;

/* Grow *pp (an array of *cap elements of esize bytes) to hold `need`; 0 when out
 * of memory (*pp unchanged). */
int tsr__lower_grow(void *pp, size_t *cap, size_t need, size_t esize);
/* TSR_ENOMEM with the compute's message. */
tsr_status_t tsr__lower_oom(void);
/* The chunk handles of x: its own (data) or those computed in this lowering; NULL
 * when it has none yet. */
tsr_data_t **tsr__lower_chunks(const lower_t *L, const tsr_array_t *x);
/* C-order element strides of an array of `shape`. */
void tsr__c_strides(uint32_t ndim, const int64_t *shape, int64_t *strides);
/* The chunk of x along dimension k holding coordinate g. */
int64_t tsr__chunk_at(const tsr_array_t *x, uint32_t k, int64_t g);
/* Submit a task touching about `bytes` of buffers; `is_root`: it writes the
 * root's chunks (its future is waited for). */
tsr_status_t tsr__lower_submit(lower_t *L, const tsr_task_desc_t *desc, uint64_t bytes,
                               int is_root);
/* n new runtime-owned handles (a malloc'd array), or an error. */
tsr_status_t tsr__lower_new_handles(lower_t *L, int64_t n, tsr_data_t ***out);
/* A handle unregistered when the compute ends (it takes h, even on failure). */
tsr_status_t tsr__lower_add_garbage(lower_t *L, tsr_data_t *h);
/* Compute x (not data yet) into outs, or into new handles recorded as x's
 * temporaries when outs is NULL. */
tsr_status_t tsr__lower_materialize(lower_t *L, tsr_array_t *x, tsr_data_t **outs);
/* Compute b into outs (one handle per chunk of b), whether b is data, an
 * expression or a step; `root`: these tasks write the root's chunks. */
tsr_status_t tsr__lower_compute_into(lower_t *L, tsr_array_t *b, tsr_data_t **outs, int root);
/* The fused program of the group rooted at x, one task per chunk of `space`. */
tsr_status_t tsr__lower_run_group(lower_t *L, tsr_array_t *x, const tsr_array_t *space,
                                  tsr_data_t **outs, int root);

/* One batch of copy pieces filling an output chunk. */
typedef struct {
    tsr_copy_header_t h;
    tsr_copy_piece_t p[TSR_COPY_MAX_PIECES];
    tsr_data_t *handles[TSR_MAX_BUFFERS];
    uint32_t n_h;
} copy_batch_t;

/* Submit B's pieces as one copy task into `out` (nothing when it has none), and
 * empty B. */
tsr_status_t tsr__lower_flush_copy(lower_t *L, copy_batch_t *B, tsr_data_t *out, int root);
/* Add piece p reading `src` (NULL for a fill) to B, flushing B into `out` first
 * when it has no room for the piece or its buffer. */
tsr_status_t tsr__lower_add_piece(lower_t *L, copy_batch_t *B, tsr_data_t *src,
                                  const tsr_copy_piece_t *p, tsr_data_t *out, int root);

/* The steps (lower_steps.c, map.c): each computes x into outs, one handle per
 * chunk of x. */
tsr_status_t tsr__lower_matmul(lower_t *L, tsr_array_t *x, tsr_data_t **outs);
tsr_status_t tsr__lower_concat(lower_t *L, tsr_array_t *x, tsr_data_t **outs);
tsr_status_t tsr__lower_rechunk(lower_t *L, tsr_array_t *x, tsr_data_t **outs);
tsr_status_t tsr__lower_map(lower_t *L, tsr_array_t *x, tsr_data_t **outs);

#endif /* TSR_COLLECTIONS_ARRAY_LOWER_IMPL_H */
