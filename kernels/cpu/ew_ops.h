/* The elementwise ops and casts of the CPU array kernels: one loop over a block
 * per (op, operand type) and per (from, to) pair of types, instantiated from one
 * template per op family (ew_types.h), as tables indexed by type. Each entry is
 * compiled for the x86-64 baseline and for AVX2 (EW_SIMD). Private to
 * kernels/cpu/. */
#ifndef TSR_KERNELS_CPU_EW_OPS_H
#define TSR_KERNELS_CPU_EW_OPS_H

#include <stdint.h>
#include <tessera/array.h>

#include "kernels/kernel_args.h"

/* d[k] = op(a[k], b[k], c[k]) for k < n, b and c unused by an op with fewer
 * operands. Borrows every array; d overlaps none of the operands. */
typedef void (*tsr__ew_op_fn)(void *d, const void *a, const void *b, const void *c, int64_t n);
/* d[k] = a[k] converted as ew_types.h says, for k < n. Borrows both arrays,
 * which do not overlap. */
typedef void (*tsr__ew_cast_fn)(void *d, const void *a, int64_t n);

/* Indexed by op, then by operand type; NULL where the op is not defined. */
extern const tsr__ew_op_fn tsr__ew_ops[TSR_EW_N_OPS][TSR_N_DTYPES];
/* Indexed by the type converted from, then by the type converted to. */
extern const tsr__ew_cast_fn tsr__ew_cast[TSR_N_DTYPES][TSR_N_DTYPES];

#endif /* TSR_KERNELS_CPU_EW_OPS_H */
