/* Chunked n-dimensional arrays: lazy expressions over chunks, computed by the
 * runtime's tasks.
 *
 * An array is a reference-counted handle to a node of an expression graph.
 * Building an expression (tsr_array_binary, tsr_array_reduce, ...) copies no data
 * and runs nothing; tsr_array_compute (or tsr_array_persist) fuses chains of
 * elementwise ops, broadcasts, casts, transposes and generators into one kernel
 * per chunk (a reduction fuses its first stage too) and submits the tasks.
 *
 * Ownership: every function that returns an array in `*out` returns a new
 * reference (release it with tsr_array_release); arrays passed in are borrowed,
 * and an expression keeps its own references to its inputs, so the caller may
 * release them at once. Handles may be used from several threads; an array's
 * value never changes once built.
 *
 * Errors: TSR_EINVAL with a message in tsr_last_error() for shapes that do not
 * broadcast, chunks that do not line up, axes out of range, ops a dtype does not
 * support; TSR_ENOMEM; the status of a failed task from compute. */
#ifndef TESSERA_ARRAY_H
#define TESSERA_ARRAY_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/export.h>
#include <tessera/runtime.h>
#include <tessera/status.h>
#include <tessera/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Element types, in promotion order within each kind. */
typedef enum {
    TSR_BOOL = 0,
    TSR_UINT8 = 1,
    TSR_UINT16 = 2,
    TSR_INT32 = 3,
    TSR_INT64 = 4,
    TSR_FLOAT32 = 5,
    TSR_FLOAT64 = 6,
} tsr_dtype_t;

#define TSR_N_DTYPES 7

/** Most dimensions an array has. */
#define TSR_MAX_DIMS 8

/** Bytes per element of `dtype`; 0 if it is not a tsr_dtype_t. */
TSR_API size_t tsr_dtype_size(tsr_dtype_t dtype);

/** NumPy's name of `dtype` ("float32"); "?" if it is not a tsr_dtype_t. */
TSR_API const char *tsr_dtype_name(tsr_dtype_t dtype);

/** The type of a binary operation's result on arrays of types a and b, as NumPy's
 *  `result_type(a, b)`: the smallest type that holds every value of both (bool
 *  goes with anything; an integer with float32 is float32 up to 16 bits, float64
 *  beyond). Errors: TSR_EINVAL if either is not a tsr_dtype_t. */
TSR_API tsr_status_t tsr_dtype_promote(tsr_dtype_t a, tsr_dtype_t b, tsr_dtype_t *out);

/** The shape of `a` and `b` broadcast together by NumPy's rules: shapes are
 *  aligned at their last dimension, and each pair of sizes must be equal or one of
 *  them 1. Writes *ndim_out (max of both) and shape_out[0..*ndim_out).
 *  Errors: TSR_EINVAL (more than TSR_MAX_DIMS dimensions, a NULL shape with
 *  ndim > 0, or sizes that do not broadcast; tsr_last_error() names the
 *  dimension and both sizes). */
TSR_API tsr_status_t tsr_broadcast_shapes(uint32_t ndim_a, const int64_t *shape_a, uint32_t ndim_b,
                                          const int64_t *shape_b, uint32_t *ndim_out,
                                          int64_t *shape_out);

typedef struct tsr_array tsr_array_t;

/** Dtype, shape and chunk shape of a new array. Value struct; start from
 *  TSR_ARRAY_SPEC_INIT. chunks[d] is the chunk size along dimension d (the last
 *  chunk may be smaller); 0 picks one (chunks of about 32 MiB, split from the
 *  first dimension). Sizes may be 0: an array with a dimension of size 0 is
 *  empty, as in NumPy, with no chunks along that dimension; everything built on
 *  it works as on other arrays and runs no task (a reduction over an empty axis
 *  gives the op's identity: 0 for sum, 1 for prod, false for any, true for all,
 *  NaN for mean, var and std; min, max, argmin and argmax refuse it). */
typedef struct {
    tsr_dtype_t dtype;
    uint32_t ndim; /* 0..TSR_MAX_DIMS; 0 is a scalar */
    int64_t shape[TSR_MAX_DIMS];
    int64_t chunks[TSR_MAX_DIMS];
} tsr_array_spec_t;
/* clang-format off */
#define TSR_ARRAY_SPEC_INIT {TSR_FLOAT64, 0, {0}, {0}}
/* clang-format on */

/** tsr_array_from_buffer flags. */
#define TSR_ARRAY_COPY 0u   /* copy the buffer into chunks owned by the runtime */
#define TSR_ARRAY_BORROW 1u /* read the caller's buffer in place; it must stay valid and
                               unchanged until the array and everything computed from it
                               are released */

/** An array over the C-order host buffer `data` holding spec's shape and dtype
 *  (`n_bytes` must be exactly its size). With TSR_ARRAY_COPY the data is copied
 *  before the call returns. Errors: TSR_EINVAL (bad spec, size mismatch). */
TSR_API tsr_status_t tsr_array_from_buffer(tsr_runtime_t *rt, const tsr_array_spec_t *spec,
                                           void *data, size_t n_bytes, uint32_t flags,
                                           tsr_array_t **out);

/** Every element `value` (converted to spec->dtype as a cast would). */
TSR_API tsr_status_t tsr_array_full(tsr_runtime_t *rt, const tsr_array_spec_t *spec, double value,
                                    tsr_array_t **out);
TSR_API tsr_status_t tsr_array_zeros(tsr_runtime_t *rt, const tsr_array_spec_t *spec,
                                     tsr_array_t **out);
TSR_API tsr_status_t tsr_array_ones(tsr_runtime_t *rt, const tsr_array_spec_t *spec,
                                    tsr_array_t **out);

/** 1-D: start, start + step, ... while < stop (> stop for a negative step), as
 *  numpy.arange (an empty range gives an empty array); `chunk` elements per chunk
 *  (0: auto). Errors: TSR_EINVAL (step 0, a NaN, more than 9e18 elements). */
TSR_API tsr_status_t tsr_array_arange(tsr_runtime_t *rt, tsr_dtype_t dtype, double start,
                                      double stop, double step, int64_t chunk, tsr_array_t **out);

/** 1-D: `num` evenly spaced values from start to stop inclusive (numpy.linspace). */
TSR_API tsr_status_t tsr_array_linspace(tsr_runtime_t *rt, tsr_dtype_t dtype, double start,
                                        double stop, int64_t num, int64_t chunk,
                                        tsr_array_t **out);

/** Random values from `seed`, counter-based: the value of an element depends only
 *  on the seed and its C-order index, never on chunking or the device. Uniform
 *  in [lo, hi); normal with mean `a` and standard deviation `b`. Float dtypes
 *  (others get the float values converted). */
TSR_API tsr_status_t tsr_array_random_uniform(tsr_runtime_t *rt, const tsr_array_spec_t *spec,
                                              uint64_t seed, double lo, double hi,
                                              tsr_array_t **out);
TSR_API tsr_status_t tsr_array_random_normal(tsr_runtime_t *rt, const tsr_array_spec_t *spec,
                                             uint64_t seed, double mean, double stddev,
                                             tsr_array_t **out);

/** Add a reference; returns `a`. */
TSR_API tsr_array_t *tsr_array_retain(tsr_array_t *a);
/** Drop a reference; the last one frees the node (and its chunks, once tasks
 *  using them are done). NULL: no-op. */
TSR_API void tsr_array_release(tsr_array_t *a);

TSR_API tsr_dtype_t tsr_array_dtype(const tsr_array_t *a);
TSR_API uint32_t tsr_array_ndim(const tsr_array_t *a);
/** Size of dimension `dim` (0 when out of range). */
TSR_API int64_t tsr_array_dim(const tsr_array_t *a, uint32_t dim);
/** Elements in all. */
TSR_API int64_t tsr_array_size(const tsr_array_t *a);
/** Chunks along `dim` (0 when out of range), and the size of chunk `index` there. */
TSR_API int64_t tsr_array_num_chunks(const tsr_array_t *a, uint32_t dim);
TSR_API int64_t tsr_array_chunk_size(const tsr_array_t *a, uint32_t dim, int64_t index);

/** Elementwise binary ops, NumPy's broadcasting and type promotion. On bools, ADD
 *  is logical or and MUL logical and (SUB is refused), as in NumPy. DIV is true
 *  division (integers give float64). Comparisons give bool. */
typedef enum {
    TSR_OP_ADD = 0,
    TSR_OP_SUB,
    TSR_OP_MUL,
    TSR_OP_DIV,
    TSR_OP_POW,
    TSR_OP_MINIMUM, /* NaN-propagating, numpy.minimum */
    TSR_OP_MAXIMUM,
    TSR_OP_LT,
    TSR_OP_LE,
    TSR_OP_GT,
    TSR_OP_GE,
    TSR_OP_EQ,
    TSR_OP_NE,
    TSR_N_BINOPS
} tsr_binop_t;

/** Elementwise unary ops. The float functions (SQRT .. COS) of integers give
 *  float64 for int32/int64 and float32 for bool/uint8/uint16 (NumPy gives float16
 *  for the 8-bit ones, which Tessera does not have). */
typedef enum {
    TSR_OP_NEG = 0, /* refused on bool */
    TSR_OP_ABS,
    TSR_OP_SQRT,
    TSR_OP_EXP,
    TSR_OP_LOG,
    TSR_OP_SIN,
    TSR_OP_COS,
    TSR_N_UNOPS
} tsr_unop_t;

/** a op b. The operands may be chunked differently: along each dimension the
 *  result has every chunk boundary of every operand not broadcast there (as
 *  dask's unify_chunks), so that each of its chunks reads one chunk of each
 *  operand and no data is copied. Errors: TSR_EINVAL (shapes that do not
 *  broadcast, a bad op). */
TSR_API tsr_status_t tsr_array_binary(tsr_binop_t op, tsr_array_t *a, tsr_array_t *b,
                                      tsr_array_t **out);

/** tsr_array_binary_scalar flags. */
#define TSR_SCALAR_LEFT 1u /* value op a instead of a op value */

/** a op value, with the scalar "weak" as a Python number is under NumPy 2: the
 *  result keeps a's dtype if a is float, or if a is an integer (or bool) array and
 *  value is integral; an integer array with a non-integral value gives float64. */
TSR_API tsr_status_t tsr_array_binary_scalar(tsr_binop_t op, tsr_array_t *a, double value,
                                             uint32_t flags, tsr_array_t **out);

TSR_API tsr_status_t tsr_array_unary(tsr_unop_t op, tsr_array_t *a, tsr_array_t **out);

/** cond ? a : b elementwise (cond converted to bool; a and b promoted), all three
 *  broadcast together, chunks unified as tsr_array_binary's. */
TSR_API tsr_status_t tsr_array_where(tsr_array_t *cond, tsr_array_t *a, tsr_array_t *b,
                                     tsr_array_t **out);

/** a converted to dtype (floats to integers truncate toward zero and saturate,
 *  NaN gives 0; anything nonzero is true). */
TSR_API tsr_status_t tsr_array_cast(tsr_array_t *a, tsr_dtype_t dtype, tsr_array_t **out);

/** Dimensions reordered: dimension d of the result is dimension axes[d] of a
 *  (axes a permutation of 0..ndim-1; NULL reverses them, as a.T). */
TSR_API tsr_status_t tsr_array_transpose(tsr_array_t *a, const int32_t *axes, tsr_array_t **out);

/** Omitted start or stop of a slice (Python's None). */
#define TSR_SLICE_NONE INT64_MIN
/** tsr_slice_t flags. */
#define TSR_SLICE_INDEX 1u /* a single index, `start`: the dimension is dropped */

/** One dimension of a basic index: start:stop:step with Python's rules (negative
 *  values count from the end, bounds beyond the size are clipped, step may be
 *  negative but not 0), or with TSR_SLICE_INDEX the one index `start`. */
typedef struct {
    int64_t start;
    int64_t stop;
    int64_t step;
    uint32_t flags;
} tsr_slice_t;
/* clang-format off */
#define TSR_SLICE_ALL_INIT {TSR_SLICE_NONE, TSR_SLICE_NONE, 1, 0}
/* clang-format on */

/** a[slices[0], ..., slices[n-1]], dimensions from n on taken whole, as NumPy's
 *  basic indexing. A view: no data is copied; the fused kernels read through it.
 *  The result's chunks are the parts of a's chunks the slice keeps (so a
 *  chunk-aligned slice reads only the chunks it needs; a large step gives small
 *  chunks, which tsr_array_rechunk can merge). Errors: TSR_EINVAL (n > ndim, a
 *  step of 0, an index out of range, an empty slice: zero-size arrays are not
 *  supported). */
TSR_API tsr_status_t tsr_array_slice(tsr_array_t *a, uint32_t n, const tsr_slice_t *slices,
                                     tsr_array_t **out);

/** a with a new dimension of size 1 at `axis` (0..ndim, negative counts from the
 *  end), as numpy.expand_dims. A view. */
TSR_API tsr_status_t tsr_array_expand_dims(tsr_array_t *a, int32_t axis, tsr_array_t **out);

/** arrays[0..n) joined along `axis` (numpy.concatenate): the same number of
 *  dimensions and equal sizes along the others; dtypes promoted together. The
 *  result's chunks along `axis` are the inputs' chunks in turn, and along the
 *  others the inputs' unified as tsr_array_binary's; each input is computed
 *  straight into its part. Errors: TSR_EINVAL (sizes, axis, 0-d arrays, n == 0). */
TSR_API tsr_status_t tsr_array_concatenate(tsr_array_t *const *arrays, uint32_t n, int32_t axis,
                                           tsr_array_t **out);

/** arrays[0..n) (one shape) joined along a new dimension at `axis`,
 *  as numpy.stack: one chunk per input along it. */
TSR_API tsr_status_t tsr_array_stack(tsr_array_t *const *arrays, uint32_t n, int32_t axis,
                                     tsr_array_t **out);

/** a with new chunks: chunks[d] elements along dimension d (0 keeps d's chunks,
 *  -1 makes one chunk), as dask's rechunk. Each new chunk is assembled from the
 *  old chunks it overlaps by copy tasks (a generator or a borrowed buffer is
 *  simply read with the new chunks). Returns `a` itself (a new reference) when
 *  nothing changes. Errors: TSR_EINVAL (a size below -1). */
TSR_API tsr_status_t tsr_array_rechunk(tsr_array_t *a, const int64_t *chunks, tsr_array_t **out);

/** a with the same elements in C order and the shape shape[0..ndim) (one size may
 *  be -1: inferred), as numpy.reshape. Each chunk of the result is one chunk of a
 *  with its elements in the same order, so a reshape never moves data between
 *  chunks: the dimensions of a that merge into one must be chunked so that each
 *  chunk is a contiguous run of the merged dimension (the later ones of them in
 *  one chunk, the earlier ones in chunks of 1), and a dimension that splits must
 *  have chunk boundaries the new dimensions can represent. Returns `a` itself (a
 *  new reference) for its own shape. Errors: TSR_EINVAL (sizes whose product is
 *  not a's size, more than one -1, a size below -1 or 0; chunks that do not allow
 *  it: the message names the dimension and the tsr_array_rechunk that would). */
TSR_API tsr_status_t tsr_array_reshape(tsr_array_t *a, uint32_t ndim, const int64_t *shape,
                                       tsr_array_t **out);

typedef enum {
    TSR_REDUCE_SUM = 0, /* bool and integers give int64 */
    TSR_REDUCE_PROD,
    TSR_REDUCE_MIN,
    TSR_REDUCE_MAX,
    TSR_REDUCE_MEAN, /* float32 gives float32, others float64 */
    TSR_REDUCE_VAR,  /* with opts.ddof, like mean for types */
    TSR_REDUCE_STD,
    TSR_REDUCE_ANY, /* bool */
    TSR_REDUCE_ALL,
    TSR_REDUCE_ARGMIN, /* int64 indices: along the one axis given, or into the array */
    TSR_REDUCE_ARGMAX, /* flattened in C order when n_axes is 0; the first of equal
                          values, and the first NaN if there is one, as NumPy */
    TSR_N_REDUCE_OPS
} tsr_reduce_op_t;

/** Reduction options. Value struct; start from TSR_REDUCE_OPTS_INIT. */
typedef struct {
    uint32_t n_axes;              /* 0: every axis */
    int32_t axes[TSR_MAX_DIMS];   /* negative counts from the end */
    uint32_t keepdims;            /* nonzero: reduced axes stay with size 1 */
    double ddof;                  /* VAR, STD: divisor is count - ddof */
    uint32_t split_every;         /* partials merged per tree node; 0: 8 */
} tsr_reduce_opts_t;
/* clang-format off */
#define TSR_REDUCE_OPTS_INIT {0, {0}, 0, 0.0, 0}
/* clang-format on */

/** A reduction of `a` as a tree: a partial per chunk (fused with a's elementwise
 *  expression), merged split_every at a time. NULL opts: every axis, defaults.
 *  Errors: TSR_EINVAL (axis out of range or repeated; ARGMIN/ARGMAX over more than
 *  one axis but not all of them given as n_axes 0). */
TSR_API tsr_status_t tsr_array_reduce(tsr_reduce_op_t op, tsr_array_t *a,
                                      const tsr_reduce_opts_t *opts, tsr_array_t **out);

/** The matrix product a @ b of 2-D arrays of any dtypes, promoted together
 *  (tsr_dtype_promote) into the result's dtype, as numpy.matmul: as one task per
 *  pair of chunks, each chunk of the result accumulating the products of a's row
 *  of chunks and b's column of chunks. Floats use a BLAS (a CPU BLAS on one thread
 *  per task, OpenBLAS when installed; cuBLAS on a GPU). Integer products and sums
 *  wrap around modulo 2^bits of the result's type, as NumPy's do; bool @ bool is
 *  bool, element (i, j) true when a[i][p] and b[p][j] are both true for some p.
 *  a's chunks along dimension 1 need not be b's along dimension 0: the sum runs
 *  over the steps between both sets of boundaries, each product reading part of
 *  a chunk in place. Errors: TSR_EINVAL (not 2-D, inner sizes that differ). */
TSR_API tsr_status_t tsr_array_matmul(tsr_array_t *a, tsr_array_t *b, tsr_array_t **out);

/** numpy.tensordot(a, b, axes=([a_axis], [b_axis])) of 2-D arrays: the sums over
 *  a's dimension a_axis times b's dimension b_axis (negative axes count from the
 *  end), of shape (a's other size, b's other size). tsr_array_matmul of the
 *  transposes that bring the contracted dimensions inside (views; the operands are
 *  computed into chunks first), so with its dtypes: promoted together, integers
 *  wrapping around, bools giving bool (an OR of ANDs). Errors: as
 *  tsr_array_matmul, and TSR_EINVAL for axes out of range. */
TSR_API tsr_status_t tsr_array_tensordot(tsr_array_t *a, tsr_array_t *b, int32_t a_axis,
                                         int32_t b_axis, tsr_array_t **out);

/* ---- user code on blocks ----------------------------------------------------------- */

/** Most inputs of tsr_array_map_blocks. */
#define TSR_MAP_MAX_INPUTS 8

/** What a map_blocks or map_overlap function is told about its block. Its `arg`
 *  points to this struct, followed by the caller's argument bytes
 *  (tsr_block_arg). bufs[0..n_in) are the input blocks, read-only C-order arrays
 *  of in_shape[i] and in_dtype[i] (for map_overlap, the chunk with `depth`
 *  elements of halo on each side); bufs[n_in] is the output block, a C-order
 *  array of `shape` and `dtype`, already allocated on the device the function
 *  runs on, which the function must fill entirely. */
typedef struct {
    uint32_t ndim;
    uint32_t n_in;
    tsr_dtype_t dtype;                    /* of the output block */
    uint32_t reserved;
    int64_t shape[TSR_MAX_DIMS];          /* the output block's */
    int64_t origin[TSR_MAX_DIMS];         /* its first element's index in the result */
    int64_t chunk[TSR_MAX_DIMS];          /* its coordinates in the result's chunk grid */
    int64_t depth[TSR_MAX_DIMS];          /* halo on each side (0 for map_blocks) */
    int64_t in_shape[TSR_MAP_MAX_INPUTS][TSR_MAX_DIMS];
    tsr_dtype_t in_dtype[TSR_MAP_MAX_INPUTS];
    uint64_t arg_size; /* bytes at tsr_block_arg */
} tsr_block_info_t;

/** The caller's argument bytes of a block function (tsr_block_fn_t.arg's copy). */
static inline const void *tsr_block_arg(const tsr_block_info_t *info)
{
    return info + 1;
}

/** A function run on blocks: a CPU implementation (also used on simulated
 *  devices) and/or a CUDA one (a host function that queues its work on
 *  tsr_task_ctx_stream(ctx) and returns without waiting), with the tsr_kernel_fn
 *  signature and tsr_block_info_t as `arg`. Tasks go where an implementation
 *  exists. `arg` (arg_size bytes, may be NULL with 0) is copied when the map is
 *  built; `name` (NULL: "map_blocks") is copied and names the tasks in traces.
 *  Return TSR_OK, or an error (tsr_task_ctx_fail for a message), which fails the
 *  compute. */
typedef struct {
    tsr_kernel_fn cpu;
    tsr_kernel_fn cuda;
    const char *name;
    const void *arg;
    size_t arg_size;
} tsr_block_fn_t;

#define TSR_BLOCK_FN_INIT {NULL, NULL, NULL, NULL, 0}

/** fn applied to each block of inputs[0..n_in) (dask's map_blocks): the inputs
 *  must have equal shapes; their chunks are unified as tsr_array_binary's (an
 *  input chunked more coarsely is computed into the finer chunks first). The
 *  result has their shape, those chunks and `dtype`, block k computed by one task
 *  from block k of each input (expressions are computed into chunks first). Lazy,
 *  like every expression. Errors: TSR_EINVAL (no implementation, n_in 0 or above
 *  TSR_MAP_MAX_INPUTS, shapes that differ, a bad dtype, arg_size above 64 KiB). */
TSR_API tsr_status_t tsr_array_map_blocks(const tsr_block_fn_t *fn, tsr_array_t *const *inputs,
                                          uint32_t n_in, tsr_dtype_t dtype, tsr_array_t **out);

/** How map_overlap fills the halo beyond the array's edges. */
typedef enum {
    TSR_BOUNDARY_REFLECT = 0, /* mirrored, the edge repeated: dask's "reflect",
                                 numpy.pad's "symmetric" (depth <= size) */
    TSR_BOUNDARY_NEAREST,     /* the edge element repeated ("edge") */
    TSR_BOUNDARY_CONSTANT,    /* a constant value */
    TSR_BOUNDARY_PERIODIC,    /* wrapped around ("wrap"; depth <= size) */
} tsr_boundary_t;

/** fn applied to each chunk of `a` widened by depth[d] elements on each side
 *  along each dimension d (dask's map_overlap): the halo comes from the
 *  neighbouring chunks (any number of them: depth may exceed the chunk size) or,
 *  beyond the edges, from `boundary` (`constant` converted to a's dtype). fn's
 *  single input block is the widened chunk (in_shape = chunk shape + 2 depth);
 *  it writes the result's chunk (the chunk's shape and chunks, `dtype`), so no
 *  trimming is needed. Errors: TSR_EINVAL (as map_blocks; a negative depth; a
 *  depth above the size for REFLECT or PERIODIC; a bad boundary). */
TSR_API tsr_status_t tsr_array_map_overlap(const tsr_block_fn_t *fn, tsr_array_t *a,
                                           const int64_t *depth, tsr_boundary_t boundary,
                                           double constant, tsr_dtype_t dtype,
                                           tsr_array_t **out);

/** Compute `a` and write it to the host buffer `out` in C order; `n_bytes` must
 *  be exactly the array's size in bytes. Blocks until done. Errors: TSR_EINVAL;
 *  the status of the task that failed (tsr_last_error() has its message). */
TSR_API tsr_status_t tsr_array_compute(tsr_array_t *a, void *out, size_t n_bytes);

/** Compute `a` and keep its chunks in the runtime (on whichever memory node they
 *  are, spilled if need be), so that later expressions read them instead of
 *  recomputing; the expression `a` was built from is then dropped. Blocks until
 *  done. Errors: as tsr_array_compute. */
TSR_API tsr_status_t tsr_array_persist(tsr_array_t *a);

/* ---- files ------------------------------------------------------------------------ */

/** Store `a` in the .npy file `path` (created or truncated; NumPy format 1.0, or 2.0
 *  when the header needs it; C order, little-endian; the data starts at a
 *  multiple of 64 bytes), computing it first (an expression is computed into
 *  temporary chunks, freed as they are written, and stays an expression; a source
 *  or persisted array is written from its own chunks). The file is written chunk
 *  by chunk, by parallel CPU tasks, so the array need not fit in host memory at
 *  once. Borrows `a`. Errors: TSR_EINVAL (NULL), TSR_EIO (with the
 *  path and errno's text in tsr_last_error()), and those of tsr_array_compute
 *  (then the file is not touched). A failed store removes the partial file. */
TSR_API tsr_status_t tsr_array_to_npy(tsr_array_t *a, const char *path);

/** Load the .npy file `path` as a new array (the data is read before the call
 *  returns, by parallel tasks on the CPU, one per chunk). Its dtype must be one
 *  Tessera has (|b1, |u1, <u2, <i4, <i8, <f4, <f8; "=" and "|" byte orders
 *  accepted where NumPy writes them, and any byte order for one-byte types), C
 *  order (Fortran order is accepted only where it is the same bytes: at most one
 *  dimension larger than 1). Formats 1.0, 2.0 and 3.0; headers of at most 1 MiB
 *  holding exactly the keys descr, fortran_order and shape. `chunks`: ndim sizes
 *  (0 entries pick one), or NULL for automatic chunks. On TSR_OK `*out` is new.
 *  Errors: TSR_EINVAL (NULL arguments, not a .npy file, a malformed header,
 *  unsupported dtype, Fortran order, big-endian data, more than TSR_MAX_DIMS
 *  dimensions, a zero-size array, a negative chunk size, a file shorter than its
 *  header says), TSR_EIO (the file cannot be opened or read: path and errno's
 *  text in tsr_last_error()), TSR_ENOMEM. */
TSR_API tsr_status_t tsr_array_from_npy(tsr_runtime_t *rt, const char *path,
                                        const int64_t *chunks, tsr_array_t **out);

/** Store `a` as raw C-order little-endian bytes in `path`, no header. Errors: as
 *  tsr_array_to_npy. */
TSR_API tsr_status_t tsr_array_to_raw(tsr_array_t *a, const char *path);

/** Load raw C-order little-endian bytes from `path`, starting `offset` bytes in,
 *  as a new array of spec's dtype, shape and chunks (bytes past the array are
 *  ignored). Errors: TSR_EINVAL (NULL arguments, bad spec, a file too short for
 *  offset + the array's size), TSR_EIO, TSR_ENOMEM. */
TSR_API tsr_status_t tsr_array_from_raw(tsr_runtime_t *rt, const char *path,
                                        const tsr_array_spec_t *spec, uint64_t offset,
                                        tsr_array_t **out);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_ARRAY_H */
