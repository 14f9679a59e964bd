/* The checks of the array kernels' arguments (kernel_args.h) against the task's
 * buffers, shared by the CPU launchers (ew_cpu.c, ew_combine.c, copy_cpu.c) and
 * the CUDA ones (kernels/cuda/ew_plan.cuh, copy_exec.cuh, reduce_cuda.cu), so
 * that a blob is refused, or run, alike on every device. A malformed blob must
 * fail its task with TSR_EINVAL and a message, never read or write outside a
 * buffer: every index, type and size is checked here, products and sums of
 * sizes without overflowing. C11 and C++ (static inline, host code only).
 *
 * A kernel only sees `bufs`, not how many buffers its task has: indices are
 * checked against TSR_MAX_BUFFERS and the buffers' pointers and sizes. Private
 * to kernels/. */
#ifndef TSR_KERNELS_CPU_EW_CHECK_H
#define TSR_KERNELS_CPU_EW_CHECK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <tessera/task.h>

#include "kernels/kernel_args.h"

#if defined(__GNUC__) || defined(__clang__)
#define EW_CHECK_PRINTF __attribute__((format(printf, 3, 4)))
#else
#define EW_CHECK_PRINTF
#endif

/* Writes the message and returns 0 (refused). */
static inline EW_CHECK_PRINTF int ew_check_fail(char *msg, size_t n_msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, n_msg, fmt, ap);
    va_end(ap);
    return 0;
}

/* ---- fused programs ------------------------------------------------------------------ */

static inline int ew_n_args(int32_t op)
{
    return op == TSR_EW_LOAD || op == TSR_EW_CONST ? 0
           : op == TSR_EW_WHERE                    ? 3
           : op == TSR_EW_CAST || op >= TSR_EW_NEG ? 1
                                                   : 2;
}

static inline tsr_dtype_t ew_result_type(const tsr_ew_instr_t *in)
{
    if (in->op >= TSR_EW_LT && in->op <= TSR_EW_NE) {
        return TSR_BOOL;
    }
    return (tsr_dtype_t)(in->op == TSR_EW_CAST ? in->aux : in->type);
}

/* The type operand k of `in` must have: bool for WHERE's condition, else `type`. */
static inline tsr_dtype_t ew_operand_type(const tsr_ew_instr_t *in, int k)
{
    return (tsr_dtype_t)(in->op == TSR_EW_WHERE && k == 0 ? TSR_BOOL : in->type);
}

/* Whether op is defined on type: DIV and SQRT onwards need floats. */
static inline int ew_op_defined(int32_t op, int32_t type)
{
    return !(op == TSR_EW_DIV || op >= TSR_EW_SQRT) || type >= TSR_FLOAT32;
}

/* Elements [*lo, *hi] a leaf reads over the chunk (of n_elems > 0 elements).
 * Returns 0 on overflow. */
static inline int ew_leaf_span(const tsr_ew_header_t *h, const tsr_ew_leaf_t *lf, int64_t *lo,
                               int64_t *hi)
{
    *lo = lf->offset;
    *hi = lf->offset;
    for (uint32_t d = 0; d < h->ndim; d++) {
        int64_t span;
        if (__builtin_mul_overflow(h->shape[d] - 1, lf->stride[d], &span) ||
            __builtin_add_overflow(span < 0 ? *lo : *hi, span, span < 0 ? lo : hi)) {
            return 0;
        }
    }
    return 1;
}

static inline int ew_check_leaves(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves,
                                  const tsr_buffer_t *bufs, int64_t n_elems, char *msg,
                                  size_t n_msg)
{
    for (uint32_t l = 0; l < h->n_leaves; l++) {
        const tsr_ew_leaf_t *lf = &leaves[l];
        int64_t lo, hi;
        if ((unsigned)lf->type >= TSR_N_DTYPES || (unsigned)lf->kind > TSR_LEAF_NORMAL) {
            return ew_check_fail(msg, n_msg, "array kernel: leaf %u has kind %d and type %d",
                                 (unsigned)l, (int)lf->kind, (int)lf->type);
        }
        if (lf->kind != TSR_LEAF_BUFFER) {
            continue;
        }
        if ((unsigned)lf->buf >= TSR_MAX_BUFFERS || (uint32_t)lf->buf == h->out_buf ||
            bufs[lf->buf].ptr == NULL) {
            return ew_check_fail(msg, n_msg,
                                 "array kernel: leaf %u reads buffer %d, which is empty or the "
                                 "output",
                                 (unsigned)l, (int)lf->buf);
        }
        if (n_elems > 0 &&
            (!ew_leaf_span(h, lf, &lo, &hi) || lo < 0 ||
             (uint64_t)hi >= bufs[lf->buf].n_bytes / tsr_dtype_size((tsr_dtype_t)lf->type))) {
            return ew_check_fail(msg, n_msg,
                                 "array kernel: leaf %u reads outside buffer %d (%zu bytes)",
                                 (unsigned)l, (int)lf->buf, bufs[lf->buf].n_bytes);
        }
    }
    return 1;
}

static inline int ew_check_code(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves,
                                const tsr_ew_instr_t *code, char *msg, size_t n_msg)
{
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *in = &code[i];
        const int32_t args[3] = {in->a, in->b, in->c};
        int ok = (unsigned)in->op < TSR_EW_N_OPS && (unsigned)in->type < TSR_N_DTYPES;
        for (int k = 0; ok && k < ew_n_args(in->op); k++) {
            ok = args[k] >= 0 && (uint32_t)args[k] < i &&
                 ew_result_type(&code[args[k]]) == ew_operand_type(in, k);
        }
        if (ok && in->op == TSR_EW_LOAD) {
            ok = (uint32_t)in->aux < h->n_leaves && leaves[in->aux].type == in->type;
        } else if (ok && in->op == TSR_EW_CAST) {
            ok = (unsigned)in->aux < TSR_N_DTYPES;
        } else if (ok) {
            ok = ew_op_defined(in->op, in->type);
        }
        if (!ok) {
            return ew_check_fail(msg, n_msg,
                                 "array kernel: instruction %u (op %d on type %d) is malformed",
                                 (unsigned)i, (int)in->op, (int)in->type);
        }
    }
    if ((h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX) &&
        (h->red_index >= h->n_instr - 1 || ew_result_type(&code[h->red_index]) != TSR_INT64)) {
        return ew_check_fail(msg, n_msg, "array kernel: the index of an arg reduction is malformed");
    }
    return 1;
}

/* Bytes of the output (or partial) of a checked header and program, or 0 on
 * overflow (an empty output is refused by the caller only if it overflowed). */
static inline int ew_out_bytes(const tsr_ew_header_t *h, const tsr_ew_instr_t *code,
                               uint64_t *n_out)
{
    const tsr_dtype_t vtype = ew_result_type(&code[h->n_instr - 1]);
    const int reduce = h->red_op != TSR_RED_NONE;
    uint64_t n = reduce ? tsr_red_acc_size((tsr_red_op_t)h->red_op, vtype) : tsr_dtype_size(vtype);

    for (uint32_t d = 0; d < h->ndim; d++) {
        uint64_t k = reduce && ((h->red_mask >> d) & 1u) ? 1 : (uint64_t)h->shape[d];
        if (__builtin_mul_overflow(n, k, &n)) {
            return 0;
        }
    }
    *n_out = n;
    return n <= (uint64_t)INT64_MAX && n <= (uint64_t)SIZE_MAX;
}

/** Check a fused program (the blob's header, leaves and instructions) against
 *  the task's buffers: every index in range, operand types as the ops expect,
 *  buffer leaves inside their buffers and not the output, an output of at least
 *  the chunk's size (written to *need_out). Returns 1, or 0 with a message. */
static inline int ew_check_program(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves,
                                   const tsr_ew_instr_t *code, const tsr_buffer_t *bufs,
                                   uint64_t *need_out, char *msg, size_t n_msg)
{
    int64_t n_elems = 1;
    uint64_t need = 0;

    if (h == NULL || h->magic != TSR_EW_MAGIC || h->ndim > TSR_MAX_DIMS ||
        h->n_leaves > TSR_EW_MAX_LEAVES || h->n_instr == 0 || h->n_instr > TSR_EW_MAX_INSTR ||
        h->out_buf >= TSR_MAX_BUFFERS || h->red_op < TSR_RED_NONE || h->red_op > TSR_RED_ARGMAX) {
        return ew_check_fail(msg, n_msg, "array kernel: malformed program header");
    }
    for (uint32_t d = 0; d < h->ndim; d++) {
        if (h->shape[d] < 0 || __builtin_mul_overflow(n_elems, h->shape[d], &n_elems)) {
            return ew_check_fail(msg, n_msg, "array kernel: dimension %u has size %lld",
                                 (unsigned)d, (long long)h->shape[d]);
        }
    }
    if (!ew_check_leaves(h, leaves, bufs, n_elems, msg, n_msg) ||
        !ew_check_code(h, leaves, code, msg, n_msg)) {
        return 0;
    }
    if (!ew_out_bytes(h, code, &need)) {
        return ew_check_fail(msg, n_msg, "array kernel: the chunk's size overflows");
    }
    if (h->out_bytes < need) {
        return ew_check_fail(msg, n_msg, "array kernel: output of %llu bytes, %llu needed",
                             (unsigned long long)h->out_bytes, (unsigned long long)need);
    }
    *need_out = need;
    return 1;
}

/* ---- the combine kernel ------------------------------------------------------------------ */

/** Check a combine argument and its input partials: a reduction with its
 *  accumulator type (int64 or float64 for SUM and PROD; ignored for MOMENTS),
 *  a finish that fits it (MEAN after SUM, VAR and STD after MOMENTS and only
 *  there, CAST otherwise), and inputs of n_elems partials each. Returns 1, or
 *  0 with a message. */
static inline int ew_check_combine(const tsr_red_combine_arg_t *a, const tsr_buffer_t *bufs,
                                   char *msg, size_t n_msg)
{
    int ok = a != NULL && a->red_op > TSR_RED_NONE && a->red_op <= TSR_RED_ARGMAX &&
             (unsigned)a->acc_type < TSR_N_DTYPES && (unsigned)a->out_type < TSR_N_DTYPES &&
             a->n_in != 0 && a->n_in < TSR_MAX_BUFFERS && a->n_elems <= (uint64_t)INT64_MAX / 24 &&
             a->n_elems <= (uint64_t)SIZE_MAX / 24;
    size_t asz;

    if (ok && (a->red_op == TSR_RED_SUM || a->red_op == TSR_RED_PROD)) {
        ok = a->acc_type == TSR_INT64 || a->acc_type == TSR_FLOAT64;
    }
    if (ok && a->final) {
        ok = a->red_op == TSR_RED_MOMENTS ? a->fin == TSR_FIN_VAR || a->fin == TSR_FIN_STD
             : a->red_op == TSR_RED_SUM   ? a->fin == TSR_FIN_CAST || a->fin == TSR_FIN_MEAN
                                          : a->fin == TSR_FIN_CAST;
    }
    if (!ok) {
        return ew_check_fail(msg, n_msg,
                             "reduction combine: malformed arguments (red %d, acc type %d, fin %d, "
                             "%u inputs)",
                             a != NULL ? (int)a->red_op : -1, a != NULL ? (int)a->acc_type : -1,
                             a != NULL ? (int)a->fin : -1, a != NULL ? (unsigned)a->n_in : 0u);
    }
    asz = tsr_red_acc_size((tsr_red_op_t)a->red_op, (tsr_dtype_t)a->acc_type);
    for (uint32_t i = 0; i < a->n_in; i++) {
        if (bufs[i].n_bytes != (size_t)a->n_elems * asz ||
            (a->n_elems > 0 && bufs[i].ptr == NULL)) {
            return ew_check_fail(msg, n_msg,
                                 "reduction combine: partial %u has %zu bytes, expected %zu",
                                 (unsigned)i, bufs[i].n_bytes, (size_t)a->n_elems * asz);
        }
    }
    return 1;
}

/* ---- the copy kernel --------------------------------------------------------------------- */

/** Check a copy header: magic, counts, element size, and an out_bytes that
 *  holds the shape. Returns 1, or 0 with a message. */
static inline int ew_check_copy_header(const tsr_copy_header_t *h, char *msg, size_t n_msg)
{
    uint64_t n_bytes;
    int ok = h != NULL && h->magic == TSR_COPY_MAGIC && h->ndim <= TSR_MAX_DIMS &&
             h->n_pieces != 0 && h->n_pieces <= TSR_COPY_MAX_PIECES &&
             h->out_buf < TSR_MAX_BUFFERS &&
             (h->elem_size == 1 || h->elem_size == 2 || h->elem_size == 4 || h->elem_size == 8);

    n_bytes = ok ? h->elem_size : 0;
    for (uint32_t d = 0; ok && d < h->ndim; d++) {
        ok = h->shape[d] >= 0 && !__builtin_mul_overflow(n_bytes, (uint64_t)h->shape[d], &n_bytes);
    }
    if (!ok || n_bytes > h->out_bytes || h->out_bytes > (uint64_t)SIZE_MAX) {
        return ew_check_fail(msg, n_msg, "array copy: malformed argument");
    }
    return 1;
}

/* Whether piece p lies inside the output and (COPY) inside its source of
 * src_bytes, without overflowing. */
static inline int ew_copy_piece_fits(const tsr_copy_header_t *h, const tsr_copy_piece_t *p,
                                     size_t src_bytes)
{
    int64_t lo = p->src_offset;
    int64_t hi = p->src_offset;

    for (uint32_t d = 0; d < h->ndim; d++) {
        int64_t span, end;
        if (p->shape[d] < 1 || p->dst_origin[d] < 0 ||
            __builtin_add_overflow(p->dst_origin[d], p->shape[d], &end) || end > h->shape[d]) {
            return 0;
        }
        if (__builtin_mul_overflow(p->shape[d] - 1, p->src_stride[d], &span) ||
            __builtin_add_overflow(span < 0 ? lo : hi, span, span < 0 ? &lo : &hi)) {
            return 0;
        }
    }
    return p->kind == TSR_PIECE_FILL ||
           (lo >= 0 && (uint64_t)hi < (uint64_t)src_bytes / h->elem_size);
}

/** Check piece `index` of a checked header against the task's buffers: a
 *  known kind, a source that is not the output, and every element it reads and
 *  writes in bounds. Returns 1, or 0 with a message. */
static inline int ew_check_copy_piece(const tsr_copy_header_t *h, const tsr_copy_piece_t *p,
                                      uint32_t index, const tsr_buffer_t *bufs, char *msg,
                                      size_t n_msg)
{
    int ok;

    if (p->kind == TSR_PIECE_FILL) {
        ok = ew_copy_piece_fits(h, p, 0);
    } else {
        ok = p->kind == TSR_PIECE_COPY && (uint32_t)p->buf < TSR_MAX_BUFFERS &&
             (uint32_t)p->buf != h->out_buf && bufs[p->buf].ptr != NULL &&
             ew_copy_piece_fits(h, p, bufs[p->buf].n_bytes);
    }
    if (!ok) {
        return ew_check_fail(msg, n_msg, "array copy: piece %u falls outside its buffers",
                             (unsigned)index);
    }
    return 1;
}

#endif /* TSR_KERNELS_CPU_EW_CHECK_H */
