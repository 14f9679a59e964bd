/* CPU implementation of the reduction combine kernel (tsr_red_combine_arg_t,
 * kernel_args.h): merges the partials that the fused kernel's tasks left
 * (ew_fold.h) into one, and in the last combine writes the result. The argument
 * is checked first (ew_check.h), so that a malformed one fails the task instead
 * of reading or writing out of bounds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/task.h>

#include "kernels/cpu/ew_check.h"
#include "kernels/cpu/ew_fold.h"
#include "kernels/cpu/ew_ops.h"
#include "kernels/cpu/ew_util.h"
#include "kernels/impl.h"
#include "kernels/kernel_args.h"

/* Write the final values of the merged accumulator `acc` (n elements) to out,
 * as ew_check_combine allows: indices for ARGMIN/ARGMAX, a cast, a mean of a
 * SUM, a variance or deviation of MOMENTS. */
static tsr_status_t combine_finish(tsr_task_ctx_t *ctx, const tsr_red_combine_arg_t *a,
                                   const char *acc, void *out, int64_t n)
{
    const tsr_dtype_t at = (tsr_dtype_t)a->acc_type;
    const tsr_dtype_t ot = (tsr_dtype_t)a->out_type;
    double *tmp;

    if (a->red_op == TSR_RED_ARGMIN || a->red_op == TSR_RED_ARGMAX) {
        for (int64_t k = 0; k < n; k++) {
            int64_t ix = ((const tsr_red_arg_t *)acc)[k].index;
            tsr__ew_cast[TSR_INT64][ot]((char *)out + (size_t)k * tsr_dtype_size(ot), &ix, 1);
        }
        return TSR_OK;
    }
    if (a->fin == TSR_FIN_CAST) {
        tsr__ew_cast[at][ot](out, acc, n);
        return TSR_OK;
    }
    tmp = malloc((size_t)n * sizeof(double));
    if (tmp == NULL) {
        tsr_task_ctx_fail(ctx, "reduction combine: out of memory");
        return TSR_ENOMEM;
    }
    if (a->fin == TSR_FIN_MEAN) {
        tsr__ew_cast[at][TSR_FLOAT64](tmp, acc, n);
        for (int64_t k = 0; k < n; k++) {
            tmp[k] /= a->count;
        }
    } else {
        for (int64_t k = 0; k < n; k++) {
            const double *m = (const double *)acc + 3 * k;
            double v = m[2] / (m[0] - a->ddof);
            tmp[k] = a->fin == TSR_FIN_STD ? sqrt(v) : v;
        }
    }
    tsr__ew_cast[TSR_FLOAT64][ot](out, tmp, n);
    free(tmp);
    return TSR_OK;
}

tsr_status_t tsr__combine_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_red_combine_arg_t *a = arg;
    int64_t n;
    size_t asz;
    char *acc;
    void *out;
    char msg[200];
    tsr_status_t st;

    if (!ew_check_combine(a, bufs, msg, sizeof(msg))) {
        tsr_task_ctx_fail(ctx, "%s", msg);
        return TSR_EINVAL;
    }
    n = (int64_t)a->n_elems;
    asz = tsr_red_acc_size((tsr_red_op_t)a->red_op, (tsr_dtype_t)a->acc_type);
    st = ew_out_buffer(ctx, bufs, a->n_in,
                       (size_t)n * (a->final ? tsr_dtype_size((tsr_dtype_t)a->out_type) : asz),
                       &out);
    if (st != TSR_OK || n == 0) {
        return st;
    }
    acc = a->final ? malloc((size_t)n * asz) : out;
    if (acc == NULL) {
        tsr_task_ctx_fail(ctx, "reduction combine: out of memory");
        return TSR_ENOMEM;
    }
    memcpy(acc, bufs[0].ptr, (size_t)n * asz);
    for (uint32_t i = 1; i < a->n_in; i++) {
        tsr__fold_merge(acc, (tsr_red_op_t)a->red_op, (tsr_dtype_t)a->acc_type, bufs[i].ptr, n);
    }
    if (a->final) {
        st = combine_finish(ctx, a, acc, out, n);
        free(acc);
    }
    return st;
}
