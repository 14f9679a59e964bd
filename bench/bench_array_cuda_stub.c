/* tessera-bench without CUDA: bench_array_cuda.h answers "not built". The GPU
 * cases of `array` never start in such a build (bench_cuda_absent stops them
 * first); this keeps bench_array_gpu.c free of #if. */
#include <stdio.h>

#include "bench_array_cuda.h"

int bench_cublas_dgemm_peer(int ordinal, size_t n, uint32_t n_runs, double *seconds_out, char *why,
                            size_t n_why)
{
    (void)ordinal;
    (void)n;
    (void)n_runs;
    (void)seconds_out;
    snprintf(why, n_why, "this tessera-bench was built without CUDA");
    return -1;
}
