/* The host <-> kernel contract of the array kernels: plain fixed-width structs, no
 * host pointers, so that the same blob drives the CPU and the CUDA implementation.
 *
 * A fused elementwise kernel runs one program per output chunk. The blob is a
 * tsr_ew_header_t followed by n_leaves tsr_ew_leaf_t and n_instr tsr_ew_instr_t.
 * Instruction i defines value i (single assignment); operands name earlier values.
 * The last instruction is the result. Leaves are where values come from: a
 * buffer of the task read with per-dimension element strides (0 broadcasts,
 * permuted strides transpose), or a generator evaluated at a global element index
 * (offset + sum of coordinate x stride), so that generated values do not depend
 * on chunking or device.
 *
 * Without a reduction the result is written to buffer out_buf, a C-order array of
 * the chunk's shape. With one, the result is folded into a partial: shape as the
 * chunk but 1 along every dimension in red_mask, element type tsr_red_acc_type().
 * Partials are then merged pairwise up a tree by the combine kernel
 * (tsr_red_combine_arg_t), whose last level writes the final dtype. */
#ifndef TSR_KERNELS_KERNEL_ARGS_H
#define TSR_KERNELS_KERNEL_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/array.h>
#include <tessera/status.h>
#include <tessera/task.h>

#ifdef __cplusplus
extern "C" {
#define TSR_ARGS_STATIC_ASSERT(cond, what) static_assert(cond, what)
#else
#define TSR_ARGS_STATIC_ASSERT(cond, what) _Static_assert(cond, what)
#endif

#define TSR_EW_MAGIC 0x54455731u /* "TEW1" */
#define TSR_EW_MAX_LEAVES 15     /* TSR_MAX_BUFFERS less the output */
#define TSR_EW_MAX_INSTR 96

typedef enum {
    TSR_EW_LOAD = 0, /* value of leaf `aux` (type = the leaf's dtype) */
    TSR_EW_CONST,    /* imm_i (integer and bool types) or imm_f (float types) */
    TSR_EW_CAST,     /* a (of `type`) converted to `aux`; floats to integers
                        saturate, NaN gives 0 */
    TSR_EW_ADD,
    TSR_EW_SUB,
    TSR_EW_MUL,
    TSR_EW_DIV, /* float types only */
    TSR_EW_POW,
    TSR_EW_MIN, /* NaN-propagating, as numpy.minimum */
    TSR_EW_MAX,
    TSR_EW_LT, /* comparisons: operands of `type`, result bool */
    TSR_EW_LE,
    TSR_EW_GT,
    TSR_EW_GE,
    TSR_EW_EQ,
    TSR_EW_NE,
    TSR_EW_WHERE, /* a (bool) ? b : c, b and c of `type` */
    TSR_EW_NEG,
    TSR_EW_ABS,
    TSR_EW_SQRT, /* float types only, like the rest below */
    TSR_EW_EXP,
    TSR_EW_LOG,
    TSR_EW_SIN,
    TSR_EW_COS,
    TSR_EW_N_OPS
} tsr_ew_op_t;

typedef enum {
    TSR_LEAF_BUFFER = 0, /* element at offset + sum(coord * stride) of buffer `buf` */
    TSR_LEAF_ARANGE,     /* p0 + i * p1 */
    TSR_LEAF_UNIFORM,    /* uniform in [p0, p1) from (seed, i) */
    TSR_LEAF_NORMAL,     /* normal with mean p0 and deviation p1 from (seed, i) */
} tsr_leaf_kind_t;

/** What a reduction folds. Mean is SUM divided at the end; any/all are MAX/MIN
 *  of a bool; var/std are MOMENTS. */
typedef enum {
    TSR_RED_NONE = 0,
    TSR_RED_SUM,
    TSR_RED_PROD,
    TSR_RED_MIN,
    TSR_RED_MAX,
    TSR_RED_MOMENTS, /* (count, mean, M2) per element, as doubles */
    TSR_RED_ARGMIN,  /* (value, index) pairs, tsr_red_arg_t; the index of an element is */
    TSR_RED_ARGMAX,  /* the int64 value of instruction red_index of the program */
} tsr_red_op_t;

/** What the last combine writes. */
typedef enum {
    TSR_FIN_CAST = 0, /* the accumulator converted to out_type */
    TSR_FIN_MEAN,     /* sum / count */
    TSR_FIN_VAR,      /* M2 / (count - ddof) */
    TSR_FIN_STD,      /* sqrt of that */
} tsr_red_fin_t;

typedef struct {
    uint32_t magic;
    uint32_t ndim;       /* dimensions of the chunk, 0..TSR_MAX_DIMS */
    uint32_t n_leaves;   /* 0..TSR_EW_MAX_LEAVES */
    uint32_t n_instr;    /* 1..TSR_EW_MAX_INSTR */
    int64_t shape[TSR_MAX_DIMS];
    int32_t red_op;      /* tsr_red_op_t */
    uint32_t red_mask;   /* bit d: dimension d is reduced */
    uint32_t out_buf;    /* index of the output (or partial) buffer */
    uint32_t red_index;  /* ARGMIN/ARGMAX: the instruction giving each element's index */
    uint64_t out_bytes;  /* its size, allocated by the kernel */
} tsr_ew_header_t;

typedef struct {
    int32_t kind;  /* tsr_leaf_kind_t */
    int32_t type;  /* tsr_dtype_t of the values */
    int32_t buf;   /* buffer index (TSR_LEAF_BUFFER) */
    int32_t pad;
    int64_t offset; /* elements, or global index of coordinate 0 */
    int64_t stride[TSR_MAX_DIMS];
    double p0, p1;
    uint64_t seed;
} tsr_ew_leaf_t;

typedef struct {
    int32_t op;   /* tsr_ew_op_t */
    int32_t type; /* tsr_dtype_t of the operands (of b and c for WHERE) */
    int32_t a, b, c;
    int32_t aux; /* LOAD: leaf index; CAST: target dtype */
    int64_t imm_i;
    double imm_f;
} tsr_ew_instr_t;

/** A partial of ARGMIN/ARGMAX: the best value so far, stored in its own dtype at
 *  the start of `v` (a float32 in the first 4 bytes, ...), and its index. The
 *  better of two: a NaN beats any number (NumPy returns the first NaN), then the
 *  smaller (ARGMIN) or larger (ARGMAX) value, then, for equal values or two NaNs,
 *  the smaller index; so the result does not depend on the order of folding. */
typedef struct {
    union {
        double f64;
        float f32;
        int64_t i64;
        int32_t i32;
        uint16_t u16;
        uint8_t u8;
    } v;
    int64_t index;
} tsr_red_arg_t;

typedef struct {
    int32_t red_op;   /* tsr_red_op_t */
    int32_t acc_type; /* tsr_dtype_t of the partials (ignored for MOMENTS) */
    int32_t fin;      /* tsr_red_fin_t; used when final != 0 */
    int32_t out_type; /* tsr_dtype_t written when final != 0 (int64 indices for
                         ARGMIN/ARGMAX, whose acc_type is the type of the values) */
    uint32_t final;   /* 1: write the result, 0: write a partial */
    uint32_t n_in;    /* inputs: buffers 0..n_in-1; the output is buffer n_in */
    uint64_t n_elems; /* elements per partial */
    double count;     /* elements folded into each result (mean, var) */
    double ddof;
} tsr_red_combine_arg_t;

/** C (m x n) = beta * C + A (m x k) @ B (k x n), row-major, of one dtype: floats
 *  through a BLAS, integers wrapping modulo 2^bits, bools as an OR of ANDs.
 *  Buffers: 0 = A, 1 = B, 2 = C (W when beta == 0, else RW); A and B are read
 *  from element offsets off_a, off_b with row strides lda, ldb (a chunk of a
 *  larger buffer); C is a contiguous m x n chunk. */
typedef struct {
    int64_t m, n, k;
    int64_t lda, ldb;
    int64_t off_a, off_b;
    int32_t type; /* a tsr_dtype_t */
    int32_t beta; /* 0 or 1 */
} tsr_gemm_arg_t;

/** The copy kernel assembles an output chunk from boxes of other buffers: used
 *  by rechunk (an output chunk from the input chunks it overlaps) and for halos
 *  (a chunk with its neighbours' edges and boundary values). The blob is a
 *  tsr_copy_header_t followed by n_pieces tsr_copy_piece_t. The output is a
 *  C-order array of `shape`; piece p writes the box of shape p.shape at
 *  p.dst_origin, element e (box coordinates c) being element
 *  src_offset + sum(c[d] * src_stride[d]) of buffer p.buf (strides may be 0 or
 *  negative: broadcasts and mirrors), or the constant `fill` for TSR_PIECE_FILL.
 *  Several tasks may fill one output: the first allocates it (alloc = 1, W mode),
 *  the others write into it (alloc = 0, RW mode). Buffer out_buf is the output;
 *  the others are read. */
#define TSR_COPY_MAGIC 0x54435031u /* "TCP1" */
#define TSR_COPY_MAX_PIECES 64

typedef enum {
    TSR_PIECE_COPY = 0,
    TSR_PIECE_FILL,
} tsr_piece_kind_t;

typedef struct {
    uint32_t magic;
    uint32_t ndim;
    uint32_t n_pieces;  /* 1..TSR_COPY_MAX_PIECES */
    uint32_t elem_size; /* 1, 2, 4 or 8 bytes */
    int64_t shape[TSR_MAX_DIMS];
    uint32_t out_buf;
    uint32_t alloc;
    uint64_t out_bytes; /* product of shape x elem_size */
} tsr_copy_header_t;

typedef struct {
    int32_t kind; /* tsr_piece_kind_t */
    int32_t buf;
    int64_t src_offset; /* elements */
    int64_t src_stride[TSR_MAX_DIMS];
    int64_t dst_origin[TSR_MAX_DIMS];
    int64_t shape[TSR_MAX_DIMS];
    uint64_t fill; /* FILL: the element's bytes, in the low elem_size bytes */
} tsr_copy_piece_t;

TSR_ARGS_STATIC_ASSERT(sizeof(tsr_copy_header_t) == 96, "tsr_copy_header_t layout");
TSR_ARGS_STATIC_ASSERT(sizeof(tsr_copy_piece_t) == 216, "tsr_copy_piece_t layout");
TSR_ARGS_STATIC_ASSERT(sizeof(tsr_red_arg_t) == 16, "tsr_red_arg_t layout");
TSR_ARGS_STATIC_ASSERT(sizeof(tsr_gemm_arg_t) == 64, "tsr_gemm_arg_t layout");
TSR_ARGS_STATIC_ASSERT(sizeof(tsr_ew_header_t) == 104, "tsr_ew_header_t layout");
TSR_ARGS_STATIC_ASSERT(sizeof(tsr_ew_leaf_t) == 112, "tsr_ew_leaf_t layout");
TSR_ARGS_STATIC_ASSERT(sizeof(tsr_ew_instr_t) == 40, "tsr_ew_instr_t layout");
TSR_ARGS_STATIC_ASSERT(sizeof(tsr_red_combine_arg_t) == 48, "tsr_red_combine_arg_t layout");

/** The type partials of `red` over values of `type` are kept in: int64 for sums
 *  and products of integers and bools, float64 for those of floats, `type` for
 *  min and max; MOMENTS keeps 3 doubles per element (reported as float64). */
static inline tsr_dtype_t tsr_red_acc_type(tsr_red_op_t red, tsr_dtype_t type)
{
    if (red == TSR_RED_SUM || red == TSR_RED_PROD) {
        return type >= TSR_FLOAT32 ? TSR_FLOAT64 : TSR_INT64;
    }
    return red == TSR_RED_MOMENTS ? TSR_FLOAT64 : type;
}

/** Bytes per partial element. */
static inline size_t tsr_red_acc_size(tsr_red_op_t red, tsr_dtype_t type)
{
    if (red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX) {
        return sizeof(tsr_red_arg_t);
    }
    return red == TSR_RED_MOMENTS ? 3 * sizeof(double) : tsr_dtype_size(tsr_red_acc_type(red, type));
}

/** The codelets (kernels/codelets.c): a CPU implementation (which sim devices run
 *  too) and, in builds with CUDA, a CUDA one. */
extern const tsr_codelet_t tsr__ew_codelet;
extern const tsr_codelet_t tsr__red_combine_codelet;
extern const tsr_codelet_t tsr__gemm_codelet;
extern const tsr_codelet_t tsr__copy_codelet;

#undef TSR_ARGS_STATIC_ASSERT
#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_KERNEL_ARGS_H */
