/* Internals of the array collection, shared by its files. Private to
 * collections/array/.
 *
 * A tsr_array is a node of the expression graph. Sources hold data (a handle per
 * chunk, or one borrowed whole buffer); generators compute values from the
 * global index; elementwise and transpose nodes are fused at compute time into
 * the kernels of kernel_args.h; reductions are lowered to a tree of tasks. */
#ifndef TSR_COLLECTIONS_ARRAY_IMPL_H
#define TSR_COLLECTIONS_ARRAY_IMPL_H

#include <stdatomic.h>
#include <tessera/array.h>
#include <tessera/data.h>
#include <tessera/status.h>

#include "kernels/kernel_args.h"

/* Errors are reported through the public tsr_set_error, like any library built
 * on Tessera. */
#define tsr__array_fail tsr_set_error

typedef enum {
    TSR__NODE_SOURCE = 0, /* chunks (or whole) hold the values */
    TSR__NODE_GEN,        /* a generator leaf (arange, random) */
    TSR__NODE_EW,         /* an elementwise op of 0..3 inputs (CONST has none) */
    TSR__NODE_VIEW,       /* in[0] seen through an affine map of coordinates: a
                             transpose, slice, index or new axis (vmap, vstart, vstep) */
    TSR__NODE_CONCAT,     /* in[0..n_in) joined along dimension `aux` */
    TSR__NODE_RECHUNK,    /* in[0] with other chunk boundaries */
    TSR__NODE_RESHAPE,    /* in[0] with another shape: chunk k holds in[0]'s chunk k */
    TSR__NODE_MAP,        /* a user function on blocks of in[0..n_in) (map.c) */
    TSR__NODE_REDUCE,     /* a reduction of in[0] */
    TSR__NODE_MATMUL,     /* in[0] @ in[1], 2-D, both of this node's dtype */
} tsr__node_kind_t;

struct tsr_array {
    atomic_uint refs;
    tsr_runtime_t *rt;
    tsr_dtype_t dtype;
    uint32_t ndim;
    int64_t shape[TSR_MAX_DIMS];
    uint32_t nch[TSR_MAX_DIMS];  /* chunks along each dimension */
    int64_t *cb[TSR_MAX_DIMS];   /* cb[d][0..nch[d]]: chunk boundaries (in `bounds`) */
    int64_t *bounds;
    tsr__node_kind_t kind;

    /* SOURCE: one handle per chunk (C order of the chunk grid; each a C-order
     * chunk), or `whole` (a borrowed buffer of the full array). */
    tsr_data_t **chunks;
    tsr_data_t *whole;

    /* EW, VIEW, REDUCE, CONCAT (up to TSR__MAX_CONCAT inputs) */
    struct tsr_array **in;
    struct tsr_array *in_fixed[3]; /* `in` points here unless a concatenation has more */
    uint32_t n_in;
    tsr_ew_op_t op;
    tsr_dtype_t optype; /* operand type of op */
    int32_t aux;        /* CAST: target type */
    int64_t imm_i;      /* CONST */
    double imm_f;
    /* VIEW: coordinate k of in[0] is vstart[k] + vstep[k] * (coordinate vmap[k] of
     * this array), or vstart[k] when vmap[k] < 0 (an index); dimensions of this
     * array no vmap names have size 1 (new axes). */
    int32_t vmap[TSR_MAX_DIMS];
    int64_t vstart[TSR_MAX_DIMS];
    int64_t vstep[TSR_MAX_DIMS];

    /* GEN */
    tsr_leaf_kind_t gen;
    double p0, p1;
    uint64_t seed;

    /* MAP: the function, its argument and halo (owned; freed with the inputs) */
    struct tsr__map *map;

    /* REDUCE */
    tsr_red_op_t red;
    tsr_red_fin_t fin;
    uint32_t red_mask; /* over in[0]'s dimensions */
    double ddof;
    uint32_t split_every;
};

/* A new node with refs 1, shape and chunking from the arguments: `chunk_sizes`
 * regular (0: automatic), or `like` (per dimension, copy the boundaries of
 * like_arr[like_dim[d]]; like_dim[d] < 0 means one chunk). */
tsr_status_t tsr__array_new(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                            const int64_t *shape, const int64_t *chunk_sizes,
                            tsr_array_t **out);
tsr_status_t tsr__array_new_like(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                                 const int64_t *shape, tsr_array_t *const *like_arr,
                                 const int32_t *like_dim, tsr_array_t **out);

/* A new node with refs 1 and the given chunk boundaries cb[d][0..nch[d]]. */
tsr_status_t tsr__array_new_bounds(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                                   const int64_t *shape, const uint32_t *nch,
                                   const int64_t *const *cb, tsr_array_t **out);

/* The boundaries of both a[0..na] and b[0..nb] (chunk boundaries of one size),
 * merged: each chunk of the result lies in one chunk of a and one of b. `out`
 * has room for na + nb + 1; returns the result's chunk count. */
uint32_t tsr__bounds_merge(const int64_t *a, uint32_t na, const int64_t *b, uint32_t nb,
                           int64_t *out);

/* The chunk boundaries of a node of `shape` (nd dimensions) over inputs in[0..n)
 * broadcast to it: along each dimension, every boundary of every input that is
 * not broadcast there, so that each chunk reads one chunk of each input (the
 * inputs need not be chunked alike). Sets nch[d] and allocates cb[d] for each
 * d < nd; the caller frees them, also on failure (start them NULL). */
tsr_status_t tsr__array_unified_bounds(tsr_array_t *const *in, uint32_t n, uint32_t nd,
                                       const int64_t *shape, uint32_t *nch, int64_t **cb);

/* `a` seen with the chunk boundaries cb[d][0..nch[d]], each chunk inside one
 * chunk of a (a VIEW; no data moves), or a itself (a new reference) when they
 * are a's. */
tsr_status_t tsr__array_refined(tsr_array_t *a, const uint32_t *nch, const int64_t *const *cb,
                                tsr_array_t **out);

/* Chunks in all (product of nch). */
int64_t tsr__array_n_chunks(const tsr_array_t *a);
/* Chunk coordinates of flat chunk index `flat` (C order over the grid). */
void tsr__array_chunk_coords(const tsr_array_t *a, int64_t flat, int64_t *coords);
int64_t tsr__array_chunk_flat(const tsr_array_t *a, const int64_t *coords);
/* Shape and origin of the chunk at `coords`; returns its element count. */
int64_t tsr__array_chunk_box(const tsr_array_t *a, const int64_t *coords, int64_t *shape,
                             int64_t *origin);
/* Whether `a` holds values (a source, or persisted). */
static inline int tsr__array_is_data(const tsr_array_t *a)
{
    return a->kind == TSR__NODE_SOURCE;
}

/* Turn `a` into a source holding `chunks` (takes the array of handles) and drop
 * its inputs. */
void tsr__array_become_source(tsr_array_t *a, tsr_data_t **chunks);

/* The chunk handles of an empty array (none, but not NULL, so that the array
 * counts as computed). */
tsr_status_t tsr__array_empty_chunks(tsr_data_t ***chunks_out);

/* A new empty source node (a size of 0 in shape) with refs 1, chunked as
 * tsr__array_new chunks. */
tsr_status_t tsr__array_new_empty(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                                  const int64_t *shape, const int64_t *chunk_sizes,
                                  tsr_array_t **out);

/* Free a MAP node's function description (NULL: no-op). */
void tsr__map_free(struct tsr__map *m);

/* Check that `a` is a usable array handle (not NULL); names `fn` in the error. */
tsr_status_t tsr__array_check(const tsr_array_t *a, const char *fn);

#endif /* TSR_COLLECTIONS_ARRAY_IMPL_H */
