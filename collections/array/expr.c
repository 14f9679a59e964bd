/* Building expressions: elementwise ops with NumPy's broadcasting and promotion,
 * casts, transposes and reductions. Nothing runs here; see lower.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/array.h>

#include "collections/array/array_impl.h"

static int is_float(tsr_dtype_t t)
{
    return t == TSR_FLOAT32 || t == TSR_FLOAT64;
}

/* A new EW node of `n_in` inputs (already of the operand type), broadcast
 * together, with chunks unified (tsr__array_unified_bounds). */
static tsr_status_t new_ew(tsr_ew_op_t op, tsr_dtype_t optype, tsr_dtype_t result,
                           tsr_array_t *const *in, uint32_t n_in, const char *fn, tsr_array_t **out)
{
    uint32_t nd = 0;
    int64_t shape[TSR_MAX_DIMS] = {0};
    uint32_t nch[TSR_MAX_DIMS];
    int64_t *cb[TSR_MAX_DIMS] = {NULL};
    tsr_array_t *a = NULL;
    tsr_status_t st;

    for (uint32_t i = 0; i < n_in; i++) {
        uint32_t n2;
        int64_t s2[TSR_MAX_DIMS];
        if (in[i]->rt != in[0]->rt) {
            return tsr__array_fail(TSR_EINVAL, "%s: operands belong to different runtimes", fn);
        }
        st = tsr_broadcast_shapes(nd, shape, in[i]->ndim, in[i]->shape, &n2, s2);
        if (st != TSR_OK) {
            return tsr__array_fail(st, "%s: %s", fn, tsr_last_error());
        }
        nd = n2;
        memcpy(shape, s2, sizeof(int64_t) * nd);
    }
    st = tsr__array_unified_bounds(in, n_in, nd, shape, nch, cb);
    if (st == TSR_OK) {
        st = tsr__array_new_bounds(in[0]->rt, result, nd, shape, nch, (const int64_t *const *)cb,
                                   &a);
    }
    for (uint32_t d = 0; d < nd; d++) {
        free(cb[d]);
    }
    if (st != TSR_OK) {
        return st;
    }
    a->kind = TSR__NODE_EW;
    a->op = op;
    a->optype = optype;
    a->aux = (int32_t)result;
    for (uint32_t i = 0; i < n_in; i++) {
        a->in[i] = tsr_array_retain(in[i]);
    }
    a->n_in = n_in;
    *out = a;
    return TSR_OK;
}

/* `a` as type t: a new reference to a itself, or a CAST node. */
static tsr_status_t as_type(tsr_array_t *a, tsr_dtype_t t, tsr_array_t **out)
{
    if (a->dtype == t) {
        *out = tsr_array_retain(a);
        return TSR_OK;
    }
    return new_ew(TSR_EW_CAST, a->dtype, t, &a, 1, "tsr_array_cast", out);
}

tsr_status_t tsr_array_cast(tsr_array_t *a, tsr_dtype_t dtype, tsr_array_t **out)
{
    tsr_status_t st = tsr__array_check(a, "tsr_array_cast");
    if (st == TSR_OK && (tsr_dtype_size(dtype) == 0 || out == NULL)) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_cast: dtype %d is not a tsr_dtype_t, or out "
                                         "is NULL", (int)dtype);
    }
    return st != TSR_OK ? st : as_type(a, dtype, out);
}

/* The kernel op and types of a binary op on operands promoted to t. */
static tsr_status_t binop_plan(tsr_binop_t op, tsr_dtype_t t, tsr_ew_op_t *kop, tsr_dtype_t *optype,
                               tsr_dtype_t *result)
{
    static const tsr_ew_op_t k_map[TSR_N_BINOPS] = {
        TSR_EW_ADD, TSR_EW_SUB, TSR_EW_MUL, TSR_EW_DIV, TSR_EW_POW, TSR_EW_MIN, TSR_EW_MAX,
        TSR_EW_LT,  TSR_EW_LE,  TSR_EW_GT,  TSR_EW_GE,  TSR_EW_EQ,  TSR_EW_NE,
    };
    *kop = k_map[op];
    *optype = t;
    *result = t;
    if (op >= TSR_OP_LT) {
        *result = TSR_BOOL;
    } else if (op == TSR_OP_DIV && !is_float(t)) {
        *optype = *result = TSR_FLOAT64;
    } else if (t == TSR_BOOL) {
        if (op == TSR_OP_ADD) {
            *kop = TSR_EW_MAX; /* logical or */
        } else if (op == TSR_OP_MUL) {
            *kop = TSR_EW_MIN; /* logical and */
        } else if (op == TSR_OP_SUB || op == TSR_OP_POW) {
            return tsr__array_fail(TSR_EINVAL,
                                   "tsr_array_binary: %s of two bool arrays is not supported (as "
                                   "in NumPy); cast one to an integer type first",
                                   op == TSR_OP_SUB ? "subtraction" : "power");
        }
    }
    return TSR_OK;
}

static tsr_status_t binary_typed(tsr_binop_t op, tsr_array_t *a, tsr_array_t *b, tsr_dtype_t t,
                                 tsr_array_t **out)
{
    tsr_ew_op_t kop;
    tsr_dtype_t optype;
    tsr_dtype_t result;
    tsr_array_t *in[2] = {NULL, NULL};
    tsr_status_t st = binop_plan(op, t, &kop, &optype, &result);

    if (st == TSR_OK) {
        st = as_type(a, optype, &in[0]);
    }
    if (st == TSR_OK) {
        st = as_type(b, optype, &in[1]);
    }
    if (st == TSR_OK) {
        st = new_ew(kop, optype, result, in, 2, "tsr_array_binary", out);
    }
    tsr_array_release(in[0]);
    tsr_array_release(in[1]);
    return st;
}

tsr_status_t tsr_array_binary(tsr_binop_t op, tsr_array_t *a, tsr_array_t *b, tsr_array_t **out)
{
    tsr_dtype_t t;
    tsr_status_t st = tsr__array_check(a, "tsr_array_binary");

    if (st == TSR_OK) {
        st = tsr__array_check(b, "tsr_array_binary");
    }
    if (st == TSR_OK && ((unsigned)op >= TSR_N_BINOPS || out == NULL)) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_binary: op %d is not a tsr_binop_t, or out "
                                         "is NULL", (int)op);
    }
    if (st == TSR_OK) {
        st = tsr_dtype_promote(a->dtype, b->dtype, &t);
    }
    return st != TSR_OK ? st : binary_typed(op, a, b, t, out);
}

static tsr_status_t new_const(tsr_runtime_t *rt, tsr_dtype_t t, double value, tsr_array_t **out)
{
    tsr_array_t *c;
    tsr_status_t st = tsr__array_new(rt, t, 0, NULL, NULL, &c);

    if (st != TSR_OK) {
        return st;
    }
    c->kind = TSR__NODE_EW;
    c->op = TSR_EW_CONST;
    c->optype = t;
    c->aux = (int32_t)t;
    c->imm_f = value;
    c->imm_i = is_float(t) ? 0 : (int64_t)value;
    *out = c;
    return TSR_OK;
}

tsr_status_t tsr_array_binary_scalar(tsr_binop_t op, tsr_array_t *a, double value, uint32_t flags,
                                     tsr_array_t **out)
{
    static const double k_lo[TSR_N_DTYPES] = {0, 0, 0, -2147483648.0, -9223372036854775808.0};
    static const double k_hi[TSR_N_DTYPES] = {1, 255, 65535, 2147483647.0, 9223372036854775807.0};
    tsr_status_t st = tsr__array_check(a, "tsr_array_binary_scalar");
    int integral = isfinite(value) && value == trunc(value);
    tsr_dtype_t ct;
    tsr_array_t *c = NULL;

    if (st == TSR_OK && ((unsigned)op >= TSR_N_BINOPS || out == NULL || flags > TSR_SCALAR_LEFT)) {
        st = tsr__array_fail(TSR_EINVAL,
                             "tsr_array_binary_scalar: op %d is not a tsr_binop_t, out is NULL, or "
                             "unknown flags 0x%x",
                             (int)op, (unsigned)flags);
    }
    if (st != TSR_OK) {
        return st;
    }
    /* A weak scalar takes the array's type where it fits its kind. */
    ct = is_float(a->dtype) ? a->dtype
         : !integral        ? TSR_FLOAT64
         : a->dtype == TSR_BOOL ? TSR_INT64
                                : a->dtype;
    if (!is_float(ct) && (value < k_lo[ct] || value > k_hi[ct])) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_binary_scalar: %g is out of range for %s (cast the "
                               "array to a wider type first)",
                               value, tsr_dtype_name(ct));
    }
    st = new_const(a->rt, ct, value, &c);
    if (st == TSR_OK) {
        tsr_dtype_t t;
        st = tsr_dtype_promote(a->dtype, ct, &t);
        if (st == TSR_OK) {
            st = flags & TSR_SCALAR_LEFT ? binary_typed(op, c, a, t, out)
                                         : binary_typed(op, a, c, t, out);
        }
    }
    tsr_array_release(c);
    return st;
}

tsr_status_t tsr_array_unary(tsr_unop_t op, tsr_array_t *a, tsr_array_t **out)
{
    static const tsr_ew_op_t k_map[TSR_N_UNOPS] = {TSR_EW_NEG, TSR_EW_ABS, TSR_EW_SQRT, TSR_EW_EXP,
                                                   TSR_EW_LOG, TSR_EW_SIN, TSR_EW_COS};
    tsr_status_t st = tsr__array_check(a, "tsr_array_unary");
    tsr_dtype_t t;
    tsr_array_t *x = NULL;

    if (st == TSR_OK && ((unsigned)op >= TSR_N_UNOPS || out == NULL)) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_unary: op %d is not a tsr_unop_t, or out is "
                                         "NULL", (int)op);
    }
    if (st == TSR_OK && op == TSR_OP_NEG && a->dtype == TSR_BOOL) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_unary: negation of a bool array is not "
                                         "supported (as in NumPy)");
    }
    if (st != TSR_OK) {
        return st;
    }
    t = a->dtype;
    if (op >= TSR_OP_SQRT && !is_float(t)) {
        t = t >= TSR_INT32 ? TSR_FLOAT64 : TSR_FLOAT32;
    }
    st = as_type(a, t, &x);
    if (st == TSR_OK) {
        st = new_ew(k_map[op], t, t, &x, 1, "tsr_array_unary", out);
    }
    tsr_array_release(x);
    return st;
}

tsr_status_t tsr_array_where(tsr_array_t *cond, tsr_array_t *a, tsr_array_t *b, tsr_array_t **out)
{
    tsr_status_t st = tsr__array_check(cond, "tsr_array_where");
    tsr_array_t *in[3] = {NULL, NULL, NULL};
    tsr_dtype_t t = TSR_BOOL;

    if (st == TSR_OK) {
        st = tsr__array_check(a, "tsr_array_where");
    }
    if (st == TSR_OK) {
        st = tsr__array_check(b, "tsr_array_where");
    }
    if (st == TSR_OK && out == NULL) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_where: out is NULL");
    }
    if (st == TSR_OK) {
        st = tsr_dtype_promote(a->dtype, b->dtype, &t);
    }
    if (st == TSR_OK) {
        st = as_type(cond, TSR_BOOL, &in[0]);
    }
    if (st == TSR_OK) {
        st = as_type(a, t, &in[1]);
    }
    if (st == TSR_OK) {
        st = as_type(b, t, &in[2]);
    }
    if (st == TSR_OK) {
        st = new_ew(TSR_EW_WHERE, t, t, in, 3, "tsr_array_where", out);
    }
    for (int i = 0; i < 3; i++) {
        tsr_array_release(in[i]);
    }
    return st;
}

tsr_status_t tsr_array_transpose(tsr_array_t *a, const int32_t *axes, tsr_array_t **out)
{
    int32_t perm[TSR_MAX_DIMS];
    uint32_t seen = 0;
    int identity = 1;
    int64_t shape[TSR_MAX_DIMS];
    tsr_array_t *like[TSR_MAX_DIMS];
    tsr_array_t *t;
    tsr_status_t st = tsr__array_check(a, "tsr_array_transpose");

    if (st == TSR_OK && out == NULL) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_transpose: out is NULL");
    }
    if (st != TSR_OK) {
        return st;
    }
    for (uint32_t d = 0; d < a->ndim; d++) {
        perm[d] = axes != NULL ? axes[d] : (int32_t)(a->ndim - 1 - d);
        if (perm[d] < 0 || (uint32_t)perm[d] >= a->ndim || (seen >> perm[d]) & 1u) {
            return tsr__array_fail(TSR_EINVAL,
                                   "tsr_array_transpose: axes is not a permutation of 0..%u "
                                   "(entry %u is %d)",
                                   (unsigned)a->ndim - 1, (unsigned)d, (int)perm[d]);
        }
        seen |= 1u << perm[d];
        identity = identity && perm[d] == (int32_t)d;
        shape[d] = a->shape[perm[d]];
        like[d] = a;
    }
    if (identity) {
        *out = tsr_array_retain(a);
        return TSR_OK;
    }
    st = tsr__array_new_like(a->rt, a->dtype, a->ndim, shape, like, perm, &t);
    if (st != TSR_OK) {
        return st;
    }
    t->kind = TSR__NODE_VIEW;
    for (uint32_t d = 0; d < a->ndim; d++) {
        t->vmap[perm[d]] = (int32_t)d;
        t->vstart[perm[d]] = 0;
        t->vstep[perm[d]] = 1;
    }
    t->in[0] = tsr_array_retain(a);
    t->n_in = 1;
    *out = t;
    return TSR_OK;
}

/* The int64 index of each element of a, as a generator: its coordinate along
 * `axis`, or its C-order position when axis < 0. Read by the program of an
 * argmin/argmax with the axis as its map. */
static tsr_status_t arg_index_node(tsr_array_t *a, int32_t axis, tsr_array_t **out)
{
    tsr_array_t *like[TSR_MAX_DIMS];
    int32_t like_dim[TSR_MAX_DIMS];
    uint32_t nd = axis < 0 ? a->ndim : 1;
    tsr_status_t st;

    for (uint32_t d = 0; d < nd; d++) {
        like[d] = a;
        like_dim[d] = axis < 0 ? (int32_t)d : axis;
    }
    st = tsr__array_new_like(a->rt, TSR_INT64, nd, axis < 0 ? a->shape : &a->shape[axis], like,
                             like_dim, out);
    if (st == TSR_OK) {
        (*out)->kind = TSR__NODE_GEN;
        (*out)->gen = TSR_LEAF_ARANGE;
        (*out)->p0 = 0;
        (*out)->p1 = 1;
    }
    return st;
}

static int same_shape(const tsr_array_t *a, const tsr_array_t *b)
{
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, a->ndim * sizeof(int64_t)) == 0;
}

/* The dimension of x that is innermost in memory where x's values are read
 * (its first input of the same shape, followed through views to data), or -1
 * when none is (generated values). */
static int inner_dim(const tsr_array_t *x)
{
    int k;

    switch (x->kind) {
    case TSR__NODE_GEN:
        return -1;
    case TSR__NODE_EW:
        for (uint32_t i = 0; i < x->n_in; i++) {
            const tsr_array_t *y = x->in[i];
            if (same_shape(y, x) && (k = inner_dim(y)) >= 0) {
                return k;
            }
        }
        return -1;
    case TSR__NODE_VIEW:
        k = inner_dim(x->in[0]);
        return k >= 0 ? x->vmap[k] : -1;
    default: /* data, or a step that writes C-order chunks */
        return x->ndim > 0 ? (int)x->ndim - 1 : -1;
    }
}

/* The sum or mean of a + b (or a - b), floats of the same shape, whose operands
 * lie in memory in different orders (one a transposed view of the other's
 * layout): as the sum of the two reductions, each of which reads its operand in
 * memory order where the fused kernel would read one of them across. Sets *done
 * when it built *out. */
static tsr_status_t reduce_split(tsr_reduce_op_t op, tsr_array_t *a, const tsr_reduce_opts_t *opts,
                                 tsr_array_t **out, int *done)
{
    tsr_array_t *r[2] = {NULL, NULL};
    tsr_status_t st = TSR_OK;
    int inner[2] = {-1, -1};

    *done = 0;
    if ((op != TSR_REDUCE_SUM && op != TSR_REDUCE_MEAN) || a->kind != TSR__NODE_EW ||
        (a->op != TSR_EW_ADD && a->op != TSR_EW_SUB) || !is_float(a->dtype) || a->n_in != 2) {
        return TSR_OK;
    }
    for (uint32_t i = 0; i < 2; i++) {
        const tsr_array_t *y = a->in[i];
        if (y->dtype != a->dtype || !same_shape(y, a) || (inner[i] = inner_dim(y)) < 0) {
            return TSR_OK;
        }
    }
    if (inner[0] == inner[1]) {
        return TSR_OK;
    }
    for (uint32_t i = 0; i < 2 && st == TSR_OK; i++) {
        st = tsr_array_reduce(op, a->in[i], opts, &r[i]);
    }
    if (st == TSR_OK) {
        st = tsr_array_binary(a->op == TSR_EW_ADD ? TSR_OP_ADD : TSR_OP_SUB, r[0], r[1], out);
        *done = st == TSR_OK;
    }
    tsr_array_release(r[0]);
    tsr_array_release(r[1]);
    return st;
}

/* A reduction over the axes `mask` of the empty array a: the op's identity
 * everywhere in the result (of type t and shape[0..nd), chunked like a's
 * dimensions like_dim), which is itself empty unless an empty axis was reduced.
 * min, max, argmin and argmax have no identity: as NumPy, they refuse to reduce
 * an empty axis, even into an empty result. */
static tsr_status_t reduce_empty(tsr_reduce_op_t op, tsr_array_t *a, uint32_t mask, tsr_dtype_t t,
                                 uint32_t nd, const int64_t *shape, tsr_array_t *const *like,
                                 const int32_t *like_dim, tsr_array_t **out)
{
    int64_t n_reduced = 1; /* elements each result element reduces */
    double identity = 0;
    tsr_status_t st;

    for (uint32_t d = 0; d < a->ndim; d++) {
        n_reduced *= (mask >> d) & 1u ? a->shape[d] : 1;
    }
    if (op == TSR_REDUCE_PROD || op == TSR_REDUCE_ALL) {
        identity = 1;
    } else if (op == TSR_REDUCE_MEAN || op == TSR_REDUCE_VAR || op == TSR_REDUCE_STD) {
        identity = NAN;
    } else if (n_reduced == 0 && op != TSR_REDUCE_SUM && op != TSR_REDUCE_ANY) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_reduce: min, max, argmin and argmax of an empty axis "
                               "have no value (as in NumPy); the array has %lld elements",
                               (long long)tsr_array_size(a));
    }
    st = tsr__array_new_like(a->rt, t, nd, shape, like, like_dim, out);
    if (st == TSR_OK) {
        (*out)->kind = TSR__NODE_GEN; /* an arange of step 0 */
        (*out)->gen = TSR_LEAF_ARANGE;
        (*out)->p0 = identity;
    }
    return st;
}

tsr_status_t tsr_array_reduce(tsr_reduce_op_t op, tsr_array_t *a, const tsr_reduce_opts_t *opts,
                              tsr_array_t **out)
{
    tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
    uint32_t mask = 0;
    uint32_t nd = 0;
    int64_t shape[TSR_MAX_DIMS];
    tsr_array_t *like[TSR_MAX_DIMS];
    int32_t like_dim[TSR_MAX_DIMS];
    tsr_red_op_t red;
    tsr_red_fin_t fin = TSR_FIN_CAST;
    tsr_dtype_t rt_type;
    tsr_array_t *x = NULL;
    tsr_array_t *r;
    int32_t arg_axis = -1; /* argmin/argmax: the axis, or -1 for flat indices */
    tsr_status_t st = tsr__array_check(a, "tsr_array_reduce");

    if (st == TSR_OK && ((unsigned)op >= TSR_N_REDUCE_OPS || out == NULL)) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_reduce: op %d is not a tsr_reduce_op_t, or "
                                         "out is NULL", (int)op);
    }
    if (st != TSR_OK) {
        return st;
    }
    if (opts != NULL) {
        o = *opts;
    }
    if (o.n_axes > TSR_MAX_DIMS || o.split_every == 1 || o.split_every >= TSR_MAX_BUFFERS ||
        !(o.ddof >= 0)) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_reduce: %u axes, split_every %u (2..%d, 0 for the "
                               "default) or ddof %g",
                               (unsigned)o.n_axes, (unsigned)o.split_every, TSR_MAX_BUFFERS - 1,
                               o.ddof);
    }
    for (uint32_t i = 0; i < o.n_axes; i++) {
        int32_t ax = o.axes[i] < 0 ? o.axes[i] + (int32_t)a->ndim : o.axes[i];
        if (ax < 0 || (uint32_t)ax >= a->ndim || (mask >> ax) & 1u) {
            return tsr__array_fail(TSR_EINVAL,
                                   "tsr_array_reduce: axis %d is out of range for %u dimensions "
                                   "or repeated",
                                   (int)o.axes[i], (unsigned)a->ndim);
        }
        mask |= 1u << ax;
        arg_axis = o.n_axes == 1 ? ax : -1;
    }
    if (o.n_axes == 0) {
        mask = a->ndim > 0 ? (1u << a->ndim) - 1 : 0;
    }
    if (op == TSR_REDUCE_SUM || op == TSR_REDUCE_MEAN) {
        int done;
        st = reduce_split(op, a, opts, out, &done);
        if (st != TSR_OK || done) {
            return st;
        }
    }
    switch (op) {
    case TSR_REDUCE_SUM:
    case TSR_REDUCE_PROD:
        red = op == TSR_REDUCE_SUM ? TSR_RED_SUM : TSR_RED_PROD;
        rt_type = is_float(a->dtype) ? a->dtype : TSR_INT64;
        break;
    case TSR_REDUCE_MIN:
    case TSR_REDUCE_MAX:
        red = op == TSR_REDUCE_MIN ? TSR_RED_MIN : TSR_RED_MAX;
        rt_type = a->dtype;
        break;
    case TSR_REDUCE_MEAN:
        red = TSR_RED_SUM;
        fin = TSR_FIN_MEAN;
        rt_type = a->dtype == TSR_FLOAT32 ? TSR_FLOAT32 : TSR_FLOAT64;
        break;
    case TSR_REDUCE_VAR:
    case TSR_REDUCE_STD:
        red = TSR_RED_MOMENTS;
        fin = op == TSR_REDUCE_VAR ? TSR_FIN_VAR : TSR_FIN_STD;
        rt_type = a->dtype == TSR_FLOAT32 ? TSR_FLOAT32 : TSR_FLOAT64;
        break;
    case TSR_REDUCE_ARGMIN:
    case TSR_REDUCE_ARGMAX:
        red = op == TSR_REDUCE_ARGMIN ? TSR_RED_ARGMIN : TSR_RED_ARGMAX;
        rt_type = TSR_INT64;
        if (o.n_axes > 1) {
            return tsr__array_fail(TSR_EINVAL, "tsr_array_reduce: argmin/argmax take one axis, or "
                                               "none for the index into the flattened array");
        }
        break;
    default: /* ANY, ALL */
        red = op == TSR_REDUCE_ANY ? TSR_RED_MAX : TSR_RED_MIN;
        rt_type = TSR_BOOL;
        break;
    }
    for (uint32_t d = 0; d < a->ndim; d++) {
        if (!((mask >> d) & 1u)) {
            shape[nd] = a->shape[d];
            like[nd] = a;
            like_dim[nd++] = (int32_t)d;
        } else if (o.keepdims) {
            shape[nd] = 1;
            like[nd] = a;
            like_dim[nd++] = -1;
        }
    }
    if (tsr_array_size(a) == 0) {
        return reduce_empty(op, a, mask, rt_type, nd, shape, like, like_dim, out);
    }
    /* any/all fold bools; a mean of integers sums in float64, as NumPy's does. */
    st = as_type(a,
                 op == TSR_REDUCE_ANY || op == TSR_REDUCE_ALL ? TSR_BOOL
                 : op == TSR_REDUCE_MEAN && !is_float(a->dtype) ? TSR_FLOAT64
                                                                 : a->dtype,
                 &x);
    if (st == TSR_OK) {
        st = tsr__array_new_like(a->rt, rt_type, nd, shape, like, like_dim, &r);
    }
    if (st != TSR_OK) {
        tsr_array_release(x);
        return st;
    }
    r->kind = TSR__NODE_REDUCE;
    r->in[0] = x; /* takes the reference */
    r->n_in = 1;
    if (red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX) {
        /* in[1]: each element's index, along the axis or flat. */
        st = arg_index_node(a, arg_axis, &r->in[1]);
        if (st != TSR_OK) {
            tsr_array_release(r);
            return st;
        }
        r->n_in = 2;
        r->aux = arg_axis;
    }
    r->red = red;
    r->fin = fin;
    r->red_mask = mask;
    r->ddof = o.ddof;
    r->split_every = o.split_every != 0 ? o.split_every : 8;
    *out = r;
    return TSR_OK;
}

tsr_status_t tsr_array_matmul(tsr_array_t *a, tsr_array_t *b, tsr_array_t **out)
{
    tsr_status_t st = tsr__array_check(a, "tsr_array_matmul");
    tsr_array_t *in[2] = {NULL, NULL};
    tsr_array_t *like[2];
    int32_t like_dim[2] = {0, 1};
    int64_t shape[2];
    tsr_dtype_t t = TSR_FLOAT64;
    tsr_array_t *r = NULL;

    if (st == TSR_OK) {
        st = tsr__array_check(b, "tsr_array_matmul");
    }
    if (st == TSR_OK && (out == NULL || a->rt != b->rt)) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_matmul: out is NULL, or the operands belong "
                                         "to different runtimes");
    }
    if (st == TSR_OK && (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0])) {
        st = tsr__array_fail(TSR_EINVAL,
                             "tsr_array_matmul: operands of %u and %u dimensions with inner sizes "
                             "%lld and %lld (2-D, equal inner sizes needed)",
                             (unsigned)a->ndim, (unsigned)b->ndim,
                             (long long)(a->ndim > 0 ? a->shape[a->ndim - 1] : 0),
                             (long long)(b->ndim > 0 ? b->shape[0] : 0));
    }
    if (st == TSR_OK) {
        /* Integer and bool products are the kernels' own loops (wrapping, or
         * OR of ANDs); floats go to BLAS. */
        st = tsr_dtype_promote(a->dtype, b->dtype, &t);
    }
    if (st == TSR_OK) {
        st = as_type(a, t, &in[0]);
    }
    if (st == TSR_OK) {
        st = as_type(b, t, &in[1]);
    }
    if (st == TSR_OK) {
        shape[0] = a->shape[0];
        shape[1] = b->shape[1];
        like[0] = a;
        like[1] = b;
        st = tsr__array_new_like(a->rt, t, 2, shape, like, like_dim, &r);
    }
    if (st != TSR_OK || a->shape[1] == 0) {
        /* (An empty sum: zeros.) */
        tsr_array_release(in[0]);
        tsr_array_release(in[1]);
        if (st == TSR_OK) {
            r->kind = TSR__NODE_GEN;
            r->gen = TSR_LEAF_ARANGE;
            *out = r;
        }
        return st;
    }
    r->kind = TSR__NODE_MATMUL;
    r->in[0] = in[0]; /* takes the references */
    r->in[1] = in[1];
    r->n_in = 2;
    *out = r;
    return TSR_OK;
}

tsr_status_t tsr_array_tensordot(tsr_array_t *a, tsr_array_t *b, int32_t a_axis, int32_t b_axis,
                                 tsr_array_t **out)
{
    tsr_array_t *at = NULL;
    tsr_array_t *bt = NULL;
    tsr_status_t st = tsr__array_check(a, "tsr_array_tensordot");

    if (st == TSR_OK) {
        st = tsr__array_check(b, "tsr_array_tensordot");
    }
    if (st != TSR_OK) {
        return st;
    }
    if (a->ndim != 2 || b->ndim != 2) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_tensordot: operands of %u and %u dimensions (2-D "
                               "needed)",
                               (unsigned)a->ndim, (unsigned)b->ndim);
    }
    a_axis = a_axis < 0 ? a_axis + 2 : a_axis;
    b_axis = b_axis < 0 ? b_axis + 2 : b_axis;
    if (a_axis < 0 || a_axis > 1 || b_axis < 0 || b_axis > 1) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_tensordot: axes out of range for 2-D "
                                           "operands");
    }
    /* a contracted over dimension 1 and b over dimension 0: transposes are views. */
    st = a_axis == 1 ? (at = tsr_array_retain(a), TSR_OK) : tsr_array_transpose(a, NULL, &at);
    if (st == TSR_OK) {
        st = b_axis == 0 ? (bt = tsr_array_retain(b), TSR_OK) : tsr_array_transpose(b, NULL, &bt);
    }
    if (st == TSR_OK) {
        st = tsr_array_matmul(at, bt, out);
    }
    tsr_array_release(at);
    tsr_array_release(bt);
    return st;
}
