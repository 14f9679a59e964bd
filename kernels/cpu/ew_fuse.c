/* Float programs in registers (ew_fuse.h): the fused elementwise kernel's fast
 * path for a program of float loads, constants and arithmetic. Private to
 * kernels/cpu/. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "kernels/cpu/ew_check.h"
#include "kernels/cpu/ew_fuse.h"
#include "kernels/impl.h"

typedef float ew_v8f __attribute__((vector_size(32)));
typedef int32_t ew_v8i __attribute__((vector_size(32)));
typedef double ew_v4d __attribute__((vector_size(32)));
typedef int64_t ew_v4l __attribute__((vector_size(32)));

int tsr__fuse_op(int32_t op)
{
    return op == TSR_EW_ADD || op == TSR_EW_SUB || op == TSR_EW_MUL || op == TSR_EW_DIV ||
           op == TSR_EW_MIN || op == TSR_EW_MAX || op == TSR_EW_NEG || op == TSR_EW_ABS ||
           op == TSR_EW_SQRT;
}

void tsr__fuse_plan(const tsr_ew_header_t *h, const tsr_ew_instr_t *code, tsr_dtype_t vtype,
                    tsr__fuse_plan_t *p)
{
    int next[TSR_EW_MAX_INSTR]; /* the op after each op, or -1 */
    int prev = -1;

    p->n_steps = 0;
    if ((vtype != TSR_FLOAT32 && vtype != TSR_FLOAT64) || !tsr__fuse_op(code[h->n_instr - 1].op)) {
        return;
    }
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *in = &code[i];
        next[i] = -1;
        if (in->type != (int32_t)vtype ||
            (!tsr__fuse_op(in->op) && in->op != TSR_EW_LOAD && in->op != TSR_EW_CONST)) {
            return;
        }
        if (tsr__fuse_op(in->op)) {
            if (prev >= 0) {
                next[prev] = (int)i;
            }
            prev = (int)i;
        }
    }
    prev = -1;
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *in = &code[i];
        struct tsr__fuse_step *st = &p->step[p->n_steps];
        const int binary = ew_n_args(in->op) > 1;
        if (!tsr__fuse_op(in->op)) {
            continue;
        }
        st->op = (uint8_t)in->op;
        st->instr = (uint8_t)i;
        st->a = (uint8_t)in->a;
        st->b = (uint8_t)(binary ? in->b : in->a);
        st->a_cur = in->a == prev;
        st->b_cur = binary && st->b == prev;
        st->a_const = !st->a_cur && code[st->a].op == TSR_EW_CONST;
        st->setup = st->b_cur || !st->a_cur;
        st->kind = (uint8_t)TSR__FUSE_KIND(in->op, !binary                          ? 0
                                              : st->b_cur                      ? TSR__FUSE_BK_KEPT
                                              : code[st->b].op == TSR_EW_CONST ? TSR__FUSE_BK_CONST
                                                                               : TSR__FUSE_BK_MEM);
        st->f32_a = (float)code[st->a].imm_f;
        st->f32_b = (float)code[st->b].imm_f;
        st->f64_a = code[st->a].imm_f;
        st->f64_b = code[st->b].imm_f;
        st->store = i + 1 == h->n_instr;
        p->n_steps++;
        prev = (int)i;
    }
    /* A value read by an op other than the next one is stored. */
    for (int s = 0; s < p->n_steps; s++) {
        const tsr_ew_instr_t *in = &code[p->step[s].instr];
        const int args[2] = {in->a, ew_n_args(in->op) > 1 ? in->b : in->a};
        for (int k = 0; k < 2; k++) {
            if (tsr__fuse_op(code[args[k]].op) && next[args[k]] != (int)p->step[s].instr) {
                for (int t = 0; t < s; t++) {
                    p->step[t].store |= p->step[t].instr == args[k];
                }
            }
        }
    }
}

/* The steps over n elements of type T in vectors VT of L lanes (VI: integers of
 * T's width, MAGNITUDE all its bits but the sign), FUSE_U vectors at a time in
 * c0..c7, then the tail one element at a time. Each step computes c = a op b in
 * place: an a that is not the previous result is first loaded into c (the
 * previous result, when b is it, kept in b0..b7), and b is read from memory by
 * the op itself or is a constant in one register. One switch per step picks the
 * op with the way it gets b (TSR__FUSE_KIND). (Macros rather than helper
 * functions: a function taking 32-byte vectors has another ABI without AVX.) */
#define FUSE_U 8
#define FUSE_EACH(STMT) STMT(0) STMT(1) STMT(2) STMT(3) STMT(4) STMT(5) STMT(6) STMT(7)
#define FUSE_EACH_B(STMT, B)                                                                       \
    STMT(0, B) STMT(1, B) STMT(2, B) STMT(3, B) STMT(4, B) STMT(5, B) STMT(6, B) STMT(7, B)
#define FUSE_LOAD(u) memcpy(&c##u, src_ + u * L_, sizeof(c##u));
#define FUSE_SAVE(u) memcpy(dst_ + u * L_, &c##u, sizeof(c##u));
#define FUSE_KEEP(u) b##u = c##u;
#define FUSE_SPLAT(u) c##u = k_;
/* Operand b of vector u: kept, the constant, or loaded. */
#define FUSE_B_KEPT(u) b##u
#define FUSE_B_CONST(u) kb_
#define FUSE_B_MEM(u)                                                                              \
    ({                                                                                             \
        VT_ v_;                                                                                    \
        memcpy(&v_, bp_ + u * L_, sizeof(v_));                                                     \
        v_;                                                                                        \
    })
#define FUSE_ADD(u, B) c##u = c##u + B(u);
#define FUSE_SUB(u, B) c##u = c##u - B(u);
#define FUSE_MUL(u, B) c##u = c##u * B(u);
#define FUSE_DIV(u, B) c##u = c##u / B(u);
/* NaN-propagating, as numpy.minimum: x when x < y or x is NaN, else y. */
#define FUSE_PICK(u, B, CMP)                                                                       \
    {                                                                                              \
        VT_ y_ = B(u);                                                                             \
        VI_ m = (c##u CMP y_) | (c##u != c##u);                                                    \
        c##u = (VT_)(((VI_)c##u & m) | ((VI_)y_ & ~m));                                            \
    }
#define FUSE_MIN(u, B) FUSE_PICK(u, B, <)
#define FUSE_MAX(u, B) FUSE_PICK(u, B, >)
#define FUSE_NEG(u) c##u = -c##u;
#define FUSE_ABS(u) c##u = (VT_)((VI_)c##u & mag_);
#define FUSE_SQRT(u, F) c##u = F(c##u);
/* The cases of a binary op, one per way of getting b. */
#define FUSE_BIN_CASES(OP, STMT)                                                                   \
    case TSR__FUSE_KIND(OP, TSR__FUSE_BK_KEPT):                                                    \
        FUSE_EACH_B(STMT, FUSE_B_KEPT) break;                                                      \
    case TSR__FUSE_KIND(OP, TSR__FUSE_BK_CONST):                                                   \
        FUSE_EACH_B(STMT, FUSE_B_CONST) break;                                                     \
    case TSR__FUSE_KIND(OP, TSR__FUSE_BK_MEM): {                                                   \
        const T_ *bp_ = (const T_ *)val[st->b] + k;                                                \
        FUSE_EACH_B(STMT, FUSE_B_MEM)                                                              \
        break;                                                                                     \
    }
/* The result vectors to dst_ with non-temporal stores (NTSTORE; dst_ aligned to
 * FUSE_NT_ALIGN, and to 32 bytes where a32_). The elements before the first
 * aligned one are stored plainly; plain and streaming stores to one cache line
 * cost dearly, so the head is kept to the few elements that make malloc's
 * 16-byte alignment, rather than stretched to 32 bytes in every block. */
#define FUSE_NT_ALIGN 16
#define FUSE_STREAM(u, F) F(dst_ + u * L_, c##u, a32_);

/* Elements K0 .. K1 one at a time (the result stored plainly, also to nt_out). */
#define FUSE_SCALARS(SFX, T, K0, K1)                                                               \
    for (int64_t j_ = (K0); j_ < (K1); j_++) {                                                     \
        T c = 0;                                                                                   \
        for (int s = 0; s < n_steps; s++) {                                                        \
            const struct tsr__fuse_step *st = &p->step[s];                                         \
            T x = st->a_cur ? c : ((const T *)val[st->a])[j_];                                     \
            T y = st->b_cur ? c : st->b == st->a ? x : ((const T *)val[st->b])[j_];                \
            c = fuse_scalar_##SFX(st->op, x, y);                                                   \
            if (st->store) {                                                                       \
                ((T *)(nt_out != NULL && s + 1 == n_steps ? nt_out : val[st->instr]))[j_] = c;     \
            }                                                                                      \
        }                                                                                          \
    }

#define DEF_FUSE(SFX, T, VT, VI, L, MAGNITUDE, SQRT, FABS, ATTR, VSQRT, NTSTORE, IMM)              \
    static T fuse_scalar_##SFX(int op, T x, T y)                                                   \
    {                                                                                              \
        switch (op) {                                                                              \
        case TSR_EW_ADD:                                                                           \
            return x + y;                                                                          \
        case TSR_EW_SUB:                                                                           \
            return x - y;                                                                          \
        case TSR_EW_MUL:                                                                           \
            return x * y;                                                                          \
        case TSR_EW_DIV:                                                                           \
            return x / y;                                                                          \
        case TSR_EW_MIN:                                                                           \
            return (x < y || x != x) ? x : y;                                                      \
        case TSR_EW_MAX:                                                                           \
            return (x > y || x != x) ? x : y;                                                      \
        case TSR_EW_NEG:                                                                           \
            return -x;                                                                             \
        case TSR_EW_ABS:                                                                           \
            return FABS(x);                                                                        \
        default:                                                                                   \
            return SQRT(x);                                                                        \
        }                                                                                          \
    }                                                                                              \
    ATTR static void fuse_run_##SFX(const tsr__fuse_plan_t *p, void *const *val, int64_t n,        \
                                    void *nt_out)                                                  \
    {                                                                                              \
        typedef T T_;                                                                              \
        typedef VT VT_;                                                                            \
        typedef VI VI_;                                                                            \
        enum { L_ = L };                                                                           \
        const VI mag_ = (VI){0} + MAGNITUDE;                                                       \
        const int n_steps = p->n_steps;                                                            \
        int64_t k = 0;                                                                             \
        int a32_ = 0;                                                                              \
        VT c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};         \
        VT b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0}, b4 = {0}, b5 = {0}, b6 = {0}, b7 = {0};         \
        if (nt_out != NULL) { /* one by one up to the first aligned output vector */               \
            const uintptr_t mis_ = (uintptr_t)nt_out & (FUSE_NT_ALIGN - 1);                        \
            const int64_t head_ = (int64_t)((FUSE_NT_ALIGN - mis_) % FUSE_NT_ALIGN / sizeof(T));   \
            FUSE_SCALARS(SFX, T, 0, head_ < n ? head_ : n);                                        \
            k = head_ < n ? head_ : n;                                                             \
            a32_ = ((uintptr_t)((T *)nt_out + k) & 31) == 0;                                       \
        }                                                                                          \
        for (; k + FUSE_U * L <= n; k += FUSE_U * L) {                                             \
            for (int s = 0; s < n_steps; s++) {                                                    \
                const struct tsr__fuse_step *st = &p->step[s];                                     \
                const VT kb_ = st->IMM##_b - (VT){0}; /* x - +0 is x, even for -0 */               \
                if (st->setup) { /* else a is the previous result, and b is not */                 \
                    if (st->b_cur) {                                                               \
                        FUSE_EACH(FUSE_KEEP)                                                       \
                    }                                                                              \
                    if (st->a_const) {                                                             \
                        const VT k_ = st->IMM##_a - (VT){0};                                       \
                        FUSE_EACH(FUSE_SPLAT)                                                      \
                    } else if (!st->a_cur) {                                                       \
                        const T *src_ = (const T *)val[st->a] + k;                                 \
                        FUSE_EACH(FUSE_LOAD)                                                       \
                    }                                                                              \
                }                                                                                  \
                switch (st->kind) {                                                                \
                    FUSE_BIN_CASES(TSR_EW_ADD, FUSE_ADD)                                           \
                    FUSE_BIN_CASES(TSR_EW_SUB, FUSE_SUB)                                           \
                    FUSE_BIN_CASES(TSR_EW_MUL, FUSE_MUL)                                           \
                    FUSE_BIN_CASES(TSR_EW_DIV, FUSE_DIV)                                           \
                    FUSE_BIN_CASES(TSR_EW_MIN, FUSE_MIN)                                           \
                    FUSE_BIN_CASES(TSR_EW_MAX, FUSE_MAX)                                           \
                case TSR__FUSE_KIND(TSR_EW_NEG, 0):                                                \
                    FUSE_EACH(FUSE_NEG) break;                                                     \
                case TSR__FUSE_KIND(TSR_EW_ABS, 0):                                                \
                    FUSE_EACH(FUSE_ABS) break;                                                     \
                default:                                                                           \
                    FUSE_EACH_B(FUSE_SQRT, VSQRT) break;                                           \
                }                                                                                  \
                if (st->store) {                                                                   \
                    const int nt_ = nt_out != NULL && s + 1 == n_steps;                            \
                    T *dst_ = (T *)(nt_ ? nt_out : val[st->instr]) + k;                            \
                    if (nt_) {                                                                     \
                        FUSE_EACH_B(FUSE_STREAM, NTSTORE)                                          \
                    } else {                                                                       \
                        FUSE_EACH(FUSE_SAVE)                                                       \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        FUSE_SCALARS(SFX, T, k, n);                                                                \
        (void)a32_; /* (the baseline's streams are 16 bytes) */                                    \
    }

/* Each is built for the x86-64 baseline and for AVX2, the machine picking at run
 * time; the square roots are spelled out per instruction set, the compiler
 * leaving some of them lane by lane otherwise. */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define FUSE_AVX2 __attribute__((target("avx2")))
#define FUSE_BASE
#define VSQRT_F32_AVX2(v) ((ew_v8f)_mm256_sqrt_ps((__m256)(v)))
#define VSQRT_F64_AVX2(v) ((ew_v4d)_mm256_sqrt_pd((__m256d)(v)))
#define NTSTORE_F32_AVX2(d, v, a32)                                                                \
    do {                                                                                           \
        const __m256 w_ = (__m256)(v);                                                             \
        if (a32) {                                                                                 \
            _mm256_stream_ps((d), w_);                                                             \
        } else {                                                                                   \
            _mm_stream_ps((d), _mm256_castps256_ps128(w_));                                        \
            _mm_stream_ps((d) + 4, _mm256_extractf128_ps(w_, 1));                                  \
        }                                                                                          \
    } while (0)
#define NTSTORE_F64_AVX2(d, v, a32)                                                                \
    do {                                                                                           \
        const __m256d w_ = (__m256d)(v);                                                           \
        if (a32) {                                                                                 \
            _mm256_stream_pd((d), w_);                                                             \
        } else {                                                                                   \
            _mm_stream_pd((d), _mm256_castpd256_pd128(w_));                                        \
            _mm_stream_pd((d) + 2, _mm256_extractf128_pd(w_, 1));                                  \
        }                                                                                          \
    } while (0)
/* The baseline's 32-byte vectors are two SSE registers. */
#define FUSE_HALVES(H, v, STMT)                                                                    \
    ({                                                                                             \
        __typeof__(v) w_ = (v);                                                                    \
        H h_[2];                                                                                   \
        memcpy(h_, &w_, sizeof(w_));                                                               \
        STMT;                                                                                      \
        memcpy(&w_, h_, sizeof(w_));                                                               \
        w_;                                                                                        \
    })
#define VSQRT_F32_BASE(v)                                                                          \
    FUSE_HALVES(__m128, v, (h_[0] = _mm_sqrt_ps(h_[0]), h_[1] = _mm_sqrt_ps(h_[1])))
#define VSQRT_F64_BASE(v)                                                                          \
    FUSE_HALVES(__m128d, v, (h_[0] = _mm_sqrt_pd(h_[0]), h_[1] = _mm_sqrt_pd(h_[1])))
#define NTSTORE_F32_BASE(d, v, a32)                                                                \
    (void)FUSE_HALVES(__m128, v, (_mm_stream_ps((d), h_[0]), _mm_stream_ps((d) + 4, h_[1])))
#define NTSTORE_F64_BASE(d, v, a32)                                                                \
    (void)FUSE_HALVES(__m128d, v, (_mm_stream_pd((d), h_[0]), _mm_stream_pd((d) + 2, h_[1])))
DEF_FUSE(f32_avx2, float, ew_v8f, ew_v8i, 8, INT32_MAX, sqrtf, fabsf, FUSE_AVX2, VSQRT_F32_AVX2,
         NTSTORE_F32_AVX2, f32)
DEF_FUSE(f64_avx2, double, ew_v4d, ew_v4l, 4, INT64_MAX, sqrt, fabs, FUSE_AVX2, VSQRT_F64_AVX2,
         NTSTORE_F64_AVX2, f64)
DEF_FUSE(f32_base, float, ew_v8f, ew_v8i, 8, INT32_MAX, sqrtf, fabsf, FUSE_BASE, VSQRT_F32_BASE,
         NTSTORE_F32_BASE, f32)
DEF_FUSE(f64_base, double, ew_v4d, ew_v4l, 4, INT64_MAX, sqrt, fabs, FUSE_BASE, VSQRT_F64_BASE,
         NTSTORE_F64_BASE, f64)

static atomic_int fuse_allow_avx2 = 1;

int tsr__ew_cpu_allow_avx2(int allow)
{
    return atomic_exchange(&fuse_allow_avx2, allow != 0);
}

void tsr__fuse_run(tsr_dtype_t vtype, const tsr__fuse_plan_t *p, void *const *val, int64_t n,
                   void *nt_out)
{
    const int have_avx2 = atomic_load_explicit(&fuse_allow_avx2, memory_order_relaxed) &&
                          __builtin_cpu_supports("avx2");

    if (vtype == TSR_FLOAT32) {
        (have_avx2 ? fuse_run_f32_avx2 : fuse_run_f32_base)(p, val, n, nt_out);
    } else {
        (have_avx2 ? fuse_run_f64_avx2 : fuse_run_f64_base)(p, val, n, nt_out);
    }
}
#else
#define VSQRT_LANES(v)                                                                             \
    ({                                                                                             \
        __typeof__(v) w_ = (v);                                                                    \
        for (size_t j_ = 0; j_ < sizeof(w_) / sizeof(w_[0]); j_++) {                               \
            w_[j_] = _Generic(w_[j_], float : sqrtf, default : sqrt)(w_[j_]);                      \
        }                                                                                          \
        w_;                                                                                        \
    })
#define STORE_LANES(d, v, a32) memcpy((d), &(v), sizeof(v))
DEF_FUSE(f32, float, ew_v8f, ew_v8i, 8, INT32_MAX, sqrtf, fabsf, , VSQRT_LANES, STORE_LANES, f32)
DEF_FUSE(f64, double, ew_v4d, ew_v4l, 4, INT64_MAX, sqrt, fabs, , VSQRT_LANES, STORE_LANES, f64)

int tsr__ew_cpu_allow_avx2(int allow)
{
    (void)allow;
    return 0;
}

void tsr__fuse_run(tsr_dtype_t vtype, const tsr__fuse_plan_t *p, void *const *val, int64_t n,
                   void *nt_out)
{
    (vtype == TSR_FLOAT32 ? fuse_run_f32 : fuse_run_f64)(p, val, n, nt_out);
}
#endif
