/* CPU implementation of the tiled matrix product (tsr_gemm_arg_t): for floats a
 * CPU BLAS loaded at run time (OpenBLAS, kept to one thread per task since the
 * runtime runs one task per core, else any libblas with CBLAS), or a blocked loop
 * when none is installed; for integers and bools always the blocked loop. This
 * file is the BLAS wrapper: no BLAS header is needed, the two CBLAS entry points
 * are declared here. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/task.h>

#include "kernels/impl.h"
#include "kernels/kernel_args.h"

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111 };
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int,
                         const double *, int, double, double *, int);
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dgemm_fn g_dgemm;
static sgemm_fn g_sgemm;

static void load_blas(void)
{
    static const char *const names[] = {"libopenblas.so.0", "libopenblas.so", "libblis.so.4",
                                        "libcblas.so.3", "libblas.so.3"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        void (*set_threads)(int);
        if (lib == NULL) {
            continue;
        }
        g_dgemm = (dgemm_fn)dlsym(lib, "cblas_dgemm");
        g_sgemm = (sgemm_fn)dlsym(lib, "cblas_sgemm");
        if (g_dgemm == NULL || g_sgemm == NULL) {
            g_dgemm = NULL;
            g_sgemm = NULL;
            dlclose(lib);
            continue;
        }
        set_threads = (void (*)(int))dlsym(lib, "openblas_set_num_threads");
        if (set_threads != NULL) {
            set_threads(1);
        }
        return; /* kept loaded for the life of the process */
    }
}

/* The fallback of floats, and the loop of integers and bools: C = MAC(C, A, B)
 * in blocks, the inner loop along a row of B and C. */
#define DEF_GEMM_LOOP(T, SFX, MAC)                                                                 \
    static void gemm_loop_##SFX(const tsr_gemm_arg_t *g, const T *a, const T *b, T *c)             \
    {                                                                                              \
        const int64_t kb = 128;                                                                    \
        for (int64_t p0 = 0; p0 < g->k; p0 += kb) {                                                \
            int64_t p1 = p0 + kb < g->k ? p0 + kb : g->k;                                          \
            for (int64_t i = 0; i < g->m; i++) {                                                   \
                T *restrict ci = c + i * g->n;                                                     \
                for (int64_t p = p0; p < p1; p++) {                                                \
                    T aip = a[i * g->lda + p];                                                     \
                    const T *restrict bp = b + p * g->ldb;                                         \
                    for (int64_t j = 0; j < g->n; j++) {                                           \
                        ci[j] = MAC(ci[j], aip, bp[j]);                                            \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
/* Integers run in the unsigned type of their width (signed elements read through
 * it: the same bits as NumPy's wrapping arithmetic, without signed overflow);
 * 1u * keeps uint8 and uint16 products out of int, where uint16 ones overflow.
 * Bools are an OR of ANDs of any nonzero bytes, written as 0 or 1. */
#define MAC_FLOAT(c, a, b) ((c) + (a) * (b))
#define MAC_WRAP(c, a, b) ((c) + 1u * (a) * (b))
#define MAC_BOOL(c, a, b) (((c) != 0) | (((a) != 0) & ((b) != 0)))
DEF_GEMM_LOOP(float, f32, MAC_FLOAT)
DEF_GEMM_LOOP(double, f64, MAC_FLOAT)
DEF_GEMM_LOOP(uint8_t, b8, MAC_BOOL)
DEF_GEMM_LOOP(uint8_t, u8, MAC_WRAP)
DEF_GEMM_LOOP(uint16_t, u16, MAC_WRAP)
DEF_GEMM_LOOP(uint32_t, u32, MAC_WRAP)
DEF_GEMM_LOOP(uint64_t, u64, MAC_WRAP)

/* An integer or bool product into c (zeroed first unless beta). */
static void gemm_int(const tsr_gemm_arg_t *g, const tsr_buffer_t *bufs, void *c, size_t c_bytes)
{
    const int64_t oa = g->off_a;
    const int64_t ob = g->off_b;

    if (!g->beta) {
        memset(c, 0, c_bytes);
    }
    switch (g->type) {
    case TSR_BOOL:
        gemm_loop_b8(g, (const uint8_t *)bufs[0].ptr + oa, (const uint8_t *)bufs[1].ptr + ob, c);
        break;
    case TSR_UINT8:
        gemm_loop_u8(g, (const uint8_t *)bufs[0].ptr + oa, (const uint8_t *)bufs[1].ptr + ob, c);
        break;
    case TSR_UINT16:
        gemm_loop_u16(g, (const uint16_t *)bufs[0].ptr + oa, (const uint16_t *)bufs[1].ptr + ob, c);
        break;
    case TSR_INT32:
        gemm_loop_u32(g, (const uint32_t *)bufs[0].ptr + oa, (const uint32_t *)bufs[1].ptr + ob, c);
        break;
    default: /* TSR_INT64 */
        gemm_loop_u64(g, (const uint64_t *)bufs[0].ptr + oa, (const uint64_t *)bufs[1].ptr + ob, c);
        break;
    }
}

tsr_status_t tsr__gemm_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_gemm_arg_t *g = arg;
    size_t es = tsr_dtype_size((tsr_dtype_t)g->type);
    size_t c_bytes;
    void *c;

    if (es == 0 || g->m < 1 || g->n < 1 || g->k < 1 || g->lda < g->k || g->ldb < g->n ||
        g->m > INT32_MAX || g->n > INT32_MAX || g->k > INT32_MAX || g->lda > INT32_MAX ||
        g->ldb > INT32_MAX || g->off_a < 0 || g->off_b < 0 ||
        (size_t)(g->off_a + (g->m - 1) * g->lda + g->k) * es > bufs[0].n_bytes ||
        (size_t)(g->off_b + (g->k - 1) * g->ldb + g->n) * es > bufs[1].n_bytes) {
        tsr_task_ctx_fail(ctx, "matmul kernel: malformed arguments or short buffers");
        return TSR_EINVAL;
    }
    c_bytes = (size_t)(g->m * g->n) * es;
    if (g->beta != 0 && bufs[2].n_bytes == c_bytes) {
        c = bufs[2].ptr;
    } else if (bufs[2].ptr != NULL && bufs[2].n_bytes == c_bytes) {
        c = bufs[2].ptr; /* a registered buffer */
    } else {
        tsr_status_t st = tsr_task_ctx_alloc(ctx, 2, c_bytes, &c);
        if (st != TSR_OK) {
            return st;
        }
    }
    if (g->type < TSR_FLOAT32) {
        gemm_int(g, bufs, c, c_bytes);
        return TSR_OK;
    }
    pthread_once(&g_once, load_blas);
    if (g->type == TSR_FLOAT64) {
        const double *a = (const double *)bufs[0].ptr + g->off_a;
        const double *b = (const double *)bufs[1].ptr + g->off_b;
        if (g_dgemm != NULL) {
            g_dgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, (int)g->m, (int)g->n,
                    (int)g->k, 1.0, a, (int)g->lda, b, (int)g->ldb, g->beta ? 1.0 : 0.0, c,
                    (int)g->n);
            return TSR_OK;
        }
        if (!g->beta) {
            memset(c, 0, c_bytes);
        }
        gemm_loop_f64(g, a, b, c);
    } else {
        const float *a = (const float *)bufs[0].ptr + g->off_a;
        const float *b = (const float *)bufs[1].ptr + g->off_b;
        if (g_sgemm != NULL) {
            g_sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, (int)g->m, (int)g->n,
                    (int)g->k, 1.0f, a, (int)g->lda, b, (int)g->ldb, g->beta ? 1.0f : 0.0f, c,
                    (int)g->n);
            return TSR_OK;
        }
        if (!g->beta) {
            memset(c, 0, c_bytes);
        }
        gemm_loop_f32(g, a, b, c);
    }
    return TSR_OK;
}
