/* CUDA implementation of the tiled matrix product (tsr__gemm_cuda;
 * tsr_gemm_arg_t): for floats, one cuBLAS SGEMM or DGEMM on the handle the runtime
 * binds to the task's stream. cuBLAS is column-major: the row-major C = A B is
 * computed as C^T = B^T A^T, i.e. gemm(N, N, n, m, k, B, ldb, A, lda, C, n). For
 * integers and bools, a tiled kernel of our own on the task's stream
 * (gemm_int.cuh), which wraps around as tsr__gemm_cpu does.
 *
 * libtessera does not link cuBLAS (the runtime dlopens it so that the library
 * loads without it); the entry points are looked up in the library the runtime
 * loaded, which is already in the process when a handle exists. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <pthread.h>
#include <tessera/task.h>

#include "kernels/cuda/ew_eval.cuh"
#include "kernels/cuda/gemm_int.cuh"
#include "kernels/cuda/launch_util.cuh"
#include "kernels/impl.h"

namespace tsr_ew {
namespace {

typedef decltype(&cublasSgemm_v2) sgemm_fn;
typedef decltype(&cublasDgemm_v2) dgemm_fn;
typedef decltype(&cublasSetPointerMode_v2) pointer_mode_fn;
typedef decltype(&cublasSetMathMode) math_mode_fn;

struct blas_syms {
    pthread_once_t once;
    sgemm_fn sgemm;
    dgemm_fn dgemm;
    pointer_mode_fn pointer_mode; /* NULL if missing: then left as it is */
    math_mode_fn math_mode;
};

/* Written once (pthread_once), then only read. */
blas_syms g_blas = {PTHREAD_ONCE_INIT, NULL, NULL, NULL, NULL};

void load_blas(void)
{
    static const char *const names[] = {"libcublas.so.13", "libcublas.so"};
    for (const char *name : names) {
        /* RTLD_NOLOAD first: the copy the runtime opened, if any. */
        void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        lib = lib != NULL ? lib : dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL) {
            continue;
        }
        g_blas.sgemm = (sgemm_fn)dlsym(lib, "cublasSgemm_v2");
        g_blas.dgemm = (dgemm_fn)dlsym(lib, "cublasDgemm_v2");
        if (g_blas.sgemm != NULL && g_blas.dgemm != NULL) {
            g_blas.pointer_mode = (pointer_mode_fn)dlsym(lib, "cublasSetPointerMode_v2");
            g_blas.math_mode = (math_mode_fn)dlsym(lib, "cublasSetMathMode");
            return; /* kept open for the life of the process */
        }
        g_blas.sgemm = NULL;
        g_blas.dgemm = NULL;
        dlclose(lib);
    }
}

/* The checks of tsr__gemm_cpu (sizes within int, buffers large enough). */
bool gemm_arg_ok(const tsr_gemm_arg_t *g, const tsr_buffer_t *bufs)
{
    const uint64_t es = (uint64_t)dtype_bytes(g->type);
    if (g->type < TSR_BOOL || g->type > TSR_FLOAT64 || g->m < 1 || g->n < 1 || g->k < 1 ||
        g->lda < g->k || g->ldb < g->n || g->m > INT32_MAX || g->n > INT32_MAX ||
        g->k > INT32_MAX || g->lda > INT32_MAX || g->ldb > INT32_MAX || g->off_a < 0 ||
        g->off_b < 0 || (g->beta != 0 && g->beta != 1)) {
        return false;
    }
    return (uint64_t)(g->off_a + (g->m - 1) * g->lda + g->k) * es <= bufs[0].n_bytes &&
           (uint64_t)(g->off_b + (g->k - 1) * g->ldb + g->n) * es <= bufs[1].n_bytes &&
           bufs[0].ptr != NULL && bufs[1].ptr != NULL;
}

/* C as tsr__gemm_cpu finds it: as is when accumulating into it (beta 1) or a
 * registered buffer of the right size, else allocated. */
tsr_status_t gemm_output(tsr_task_ctx_t *ctx, const tsr_gemm_arg_t *g, const tsr_buffer_t *bufs,
                         void **c)
{
    const size_t c_bytes = (size_t)(g->m * g->n) * (size_t)dtype_bytes(g->type);
    if (g->beta != 0) {
        if (bufs[2].ptr == NULL || bufs[2].n_bytes != c_bytes) {
            tsr_task_ctx_fail(ctx, "matmul kernel: C has %zu bytes, expected %zu", bufs[2].n_bytes,
                              c_bytes);
            return TSR_EINVAL;
        }
        *c = bufs[2].ptr;
        return TSR_OK;
    }
    return out_buffer(ctx, bufs, 2, c_bytes, c);
}

template <int DT>
__global__ void __launch_bounds__(kGemmThreads)
    gemm_int_kernel(const __grid_constant__ gemm_int_plan P)
{
    typedef typename gemm_int_type<DT>::S S;
    typedef typename gemm_int_type<DT>::A A;
    __shared__ S sa[kGemmThreads];
    __shared__ S sb[kGemmThreads];
    const int t = (int)threadIdx.x;

    /* Every thread of a block runs the same tiles and steps: the barriers are
     * reached by all. */
    for (int64_t tile = blockIdx.x; tile < P.n_tiles; tile += gridDim.x) {
        A acc = 0;
        for (int64_t p0 = 0; p0 < P.k; p0 += kGemmTile) {
            gemm_int_load<DT>(P, tile, p0, t, sa, sb);
            __syncthreads();
            acc = gemm_int_fold<DT>(acc, sa, sb, t);
            __syncthreads();
        }
        gemm_int_store<DT>(P, tile, t, acc);
    }
}

/* The integer or bool product of a checked argument, queued on the task's stream. */
tsr_status_t gemm_int(tsr_task_ctx_t *ctx, const tsr_gemm_arg_t *g, const tsr_buffer_t *bufs)
{
    cudaStream_t stream = (cudaStream_t)tsr_task_ctx_stream(ctx);
    void *c = NULL;
    int n_sms = 0;
    tsr_status_t st = gemm_output(ctx, g, bufs, &c);
    cudaError_t err;

    if (st == TSR_OK) {
        st = sm_count(ctx, &n_sms);
    }
    if (st != TSR_OK) {
        return st;
    }
    const gemm_int_plan P = gemm_int_make_plan(g, bufs, c);
    const unsigned blocks = grid_blocks(P.n_tiles * kGemmThreads, kGemmThreads, n_sms);
    switch (g->type) {
    case TSR_BOOL:
        err = launch(gemm_int_kernel<TSR_BOOL>, blocks, kGemmThreads, stream, P);
        break;
    case TSR_UINT8:
        err = launch(gemm_int_kernel<TSR_UINT8>, blocks, kGemmThreads, stream, P);
        break;
    case TSR_UINT16:
        err = launch(gemm_int_kernel<TSR_UINT16>, blocks, kGemmThreads, stream, P);
        break;
    case TSR_INT32:
        err = launch(gemm_int_kernel<TSR_INT32>, blocks, kGemmThreads, stream, P);
        break;
    default: /* TSR_INT64 */
        err = launch(gemm_int_kernel<TSR_INT64>, blocks, kGemmThreads, stream, P);
        break;
    }
    return err == cudaSuccess ? TSR_OK
                              : cuda_fail(ctx, "matmul kernel: gemm_int_kernel launch", err);
}

}  // namespace
}  // namespace tsr_ew

extern "C" tsr_status_t tsr__gemm_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                       const void *arg)
{
    const tsr_gemm_arg_t *g = (const tsr_gemm_arg_t *)arg;
    cublasHandle_t handle = (cublasHandle_t)tsr_task_ctx_blas(ctx);
    cublasStatus_t bst;
    void *c = NULL;
    tsr_status_t st;

    if (g == NULL || !tsr_ew::gemm_arg_ok(g, bufs)) {
        tsr_task_ctx_fail(ctx, "matmul kernel: malformed arguments or short buffers");
        return TSR_EINVAL;
    }
    if (g->type < TSR_FLOAT32) {
        return tsr_ew::gemm_int(ctx, g, bufs);
    }
    if (handle != NULL) {
        pthread_once(&tsr_ew::g_blas.once, tsr_ew::load_blas);
    }
    if (handle == NULL || tsr_ew::g_blas.sgemm == NULL) {
        tsr_task_ctx_fail(ctx,
                          "matmul kernel: cuBLAS is not available on this device "
                          "(libcublas.so.13 could not be loaded)");
        return TSR_ENOTSUP;
    }
    st = tsr_ew::gemm_output(ctx, g, bufs, &c);
    if (st != TSR_OK) {
        return st;
    }
    /* The handle is shared with user codelets, which may have left another mode
     * set: alpha and beta are host values, and the product is plain FP32/FP64
     * (no TF32), as on the CPU. */
    if (tsr_ew::g_blas.pointer_mode != NULL) {
        tsr_ew::g_blas.pointer_mode(handle, CUBLAS_POINTER_MODE_HOST);
    }
    if (tsr_ew::g_blas.math_mode != NULL) {
        tsr_ew::g_blas.math_mode(handle, CUBLAS_DEFAULT_MATH);
    }
    if (g->type == TSR_FLOAT64) {
        const double one = 1.0, beta = g->beta ? 1.0 : 0.0;
        bst = tsr_ew::g_blas.dgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, (int)g->n, (int)g->m,
                                   (int)g->k, &one, (const double *)bufs[1].ptr + g->off_b,
                                   (int)g->ldb, (const double *)bufs[0].ptr + g->off_a, (int)g->lda,
                                   &beta, (double *)c, (int)g->n);
    } else {
        const float one = 1.0f, beta = g->beta ? 1.0f : 0.0f;
        bst = tsr_ew::g_blas.sgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, (int)g->n, (int)g->m,
                                   (int)g->k, &one, (const float *)bufs[1].ptr + g->off_b,
                                   (int)g->ldb, (const float *)bufs[0].ptr + g->off_a, (int)g->lda,
                                   &beta, (float *)c, (int)g->n);
    }
    if (bst != CUBLAS_STATUS_SUCCESS) {
        tsr_task_ctx_fail(ctx, "matmul kernel: cuBLAS %sgemm failed with status %d",
                          g->type == TSR_FLOAT64 ? "D" : "S", (int)bst);
        return TSR_EBACKEND;
    }
    return TSR_OK;
}
