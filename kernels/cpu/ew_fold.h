/* The partials of a reduction on the CPU: their initial value, the fold of a
 * block of values into them (the fused kernel, ew_cpu.c) and the merge of two
 * partials (the combine kernel, ew_combine.c), for every tsr_red_op_t. A partial
 * has the type and size of tsr_red_acc_type() and tsr_red_acc_size()
 * (kernel_args.h). Private to kernels/cpu/. */
#ifndef TSR_KERNELS_CPU_EW_FOLD_H
#define TSR_KERNELS_CPU_EW_FOLD_H

#include <stdint.h>
#include <tessera/array.h>

#include "kernels/kernel_args.h"

/* How a task's blocks fold into its partials, set up once per task. */
struct tsr__fold {
    tsr_red_op_t red_op;  /* not TSR_RED_NONE */
    tsr_dtype_t vtype;    /* the values' type */
    tsr_dtype_t acc_type; /* the partials': tsr_red_acc_type(red_op, vtype) */
    int across;           /* blocks lie along a reduced dimension: one partial each */
    void *tmp;            /* room for a block of values converted to acc_type */
};

/* Set the n partials at acc to the identity of red over values of type `type`:
 * 0 (SUM, MOMENTS), 1 (PROD), +-inf or the type's extreme (MIN, MAX), the same
 * with the largest index (ARGMIN, ARGMAX). Borrows acc. */
void tsr__fold_init(void *acc, tsr_red_op_t red, tsr_dtype_t type, int64_t n);

/* Fold n values v of type f->vtype, and for ARGMIN/ARGMAX their int64 indices,
 * into the partial acc[0] if f->across, else into acc[0..n) one each. Borrows
 * every array; uses f->tmp. */
void tsr__fold_block(const struct tsr__fold *f, void *acc, const void *v, const int64_t *index,
                     int64_t n);

/* ARGMIN/ARGMAX along a reduced dimension (f->across): tsr__fold_block with the
 * indices first, first + step, ..., first + (n-1) * step (no overflow), without
 * them in memory. */
void tsr__fold_arg_affine(const struct tsr__fold *f, void *acc, const void *v, int64_t first,
                          int64_t step, int64_t n);

/* Merge the n partials p into the n partials acc, of red over acc_type. Borrows
 * both arrays, which do not overlap. */
void tsr__fold_merge(void *acc, tsr_red_op_t red, tsr_dtype_t acc_type, const void *p, int64_t n);

#endif /* TSR_KERNELS_CPU_EW_FOLD_H */
