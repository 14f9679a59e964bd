/* Float programs in registers, for the CPU fused elementwise kernel (ew_cpu.c).
 *
 * A program whose every instruction is a load, a constant or an arithmetic op
 * (tsr__fuse_op) on one float type runs its ops together: FUSE_U vectors at a
 * time, each op computed in place in registers from the previous op's result,
 * storing only the values some later op reads out of order, and the result
 * (streamed to the output when asked). One op at a time over a block would store
 * and reload every value, and such loops are bound by their stores. The results
 * are the same bits (IEEE operations, lane by lane). Private to kernels/cpu/. */
#ifndef TSR_KERNELS_CPU_EW_FUSE_H
#define TSR_KERNELS_CPU_EW_FUSE_H

#include <stdint.h>

#include "kernels/kernel_args.h"

struct tsr__fuse_step {
    uint8_t op;
    uint8_t kind;         /* TSR__FUSE_KIND: the op and how it gets b */
    uint8_t instr;        /* the instruction; its value goes to val[instr] if `store` */
    uint8_t a, b;         /* operands (instructions), read from val[] unless below */
    uint8_t a_cur, b_cur; /* the operand is the previous step's result */
    uint8_t a_const;      /* a is a constant: f32_a / f64_a in every lane */
    uint8_t setup;        /* b is the previous result or a is not: work before the op */
    uint8_t store;
    float f32_a, f32_b; /* constant operands, in each float type */
    double f64_a, f64_b;
};

typedef struct {
    int n_steps; /* 0: the program does not qualify */
    struct tsr__fuse_step step[TSR_EW_MAX_INSTR];
} tsr__fuse_plan_t;

/* How a binary step gets b: the previous result (kept in registers), a constant,
 * or val[b]. */
enum { TSR__FUSE_BK_KEPT = 0, TSR__FUSE_BK_CONST, TSR__FUSE_BK_MEM };
#define TSR__FUSE_KIND(op, bk) ((op)*3 + (bk))

/* Whether op is one the registers run (add, sub, mul, div, min, max, neg, abs,
 * sqrt). */
int tsr__fuse_op(int32_t op);

/* The plan of a checked program whose values are of float type vtype, or
 * n_steps 0 if it does not qualify. */
void tsr__fuse_plan(const tsr_ew_header_t *h, const tsr_ew_instr_t *code, tsr_dtype_t vtype,
                    tsr__fuse_plan_t *p);

/* Run plan p over n elements: val[i] holds instruction i's values (the loads'
 * and constants', and room for the ops' that p stores). With nt_out (aligned to
 * its element size) the result goes there instead of to val[], streamed with
 * non-temporal stores from the first 32-byte boundary on; the caller fences. */
void tsr__fuse_run(tsr_dtype_t vtype, const tsr__fuse_plan_t *p, void *const *val, int64_t n,
                   void *nt_out);

#endif /* TSR_KERNELS_CPU_EW_FUSE_H */
