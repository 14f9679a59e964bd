/* tessera-bench array: the CUDA pieces of its GPU cases, as plain C.
 *
 * Implemented by peers/cublas_dgemm.cu when the build has CUDA, and by
 * bench_array_cuda_stub.c (everything "not built") when it does not, so the C files
 * call them without any #if, as bench_cuda.h does for the other scenarios. No CUDA
 * type crosses this header. GPUs are named by CUDA ordinal
 * (tsr_device_info_t.kind_index). */
#ifndef TESSERA_BENCH_ARRAY_CUDA_H
#define TESSERA_BENCH_ARRAY_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cublas-dgemm: one cublasDgemm of two n x n float64 matrices already on GPU
 * `ordinal` (filled there with values in [0, 1) before the warm-up), the product
 * matmul_f64 computes; seconds_out: n_runs figures, each from the call to the
 * return of a stream synchronise, after one untimed warm-up. Returns 0, or -1
 * with the reason in `why`. */
int bench_cublas_dgemm_peer(int ordinal, size_t n, uint32_t n_runs, double *seconds_out, char *why,
                            size_t n_why);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_BENCH_ARRAY_CUDA_H */
