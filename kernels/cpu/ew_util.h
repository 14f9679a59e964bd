/* What the files of the CPU array kernels share: the macros their type x op
 * templates are written with (ew_ops.c, ew_fold.c, ew_cpu.c), and the output
 * buffer of a task (ew_cpu.c, ew_combine.c; the CUDA launchers' is in
 * launch_util.cuh). Private to kernels/cpu/. */
#ifndef TSR_KERNELS_CPU_EW_UTIL_H
#define TSR_KERNELS_CPU_EW_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/task.h>

/* The loops over a block are compiled twice, for the x86-64 baseline and for
 * AVX2, and the loader picks per machine. */
/* (Not under sanitizers: an instrumented ifunc resolver runs before their
 * runtime is up.) */
/* Loops that compute more than they move (exp, log, sin, cos, the random
 * generators) get an AVX-512 version too (EW_SIMD_WIDE); the memory-bound ones
 * would not run faster. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&                             \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define EW_SIMD __attribute__((target_clones("avx2", "default")))
#define EW_SIMD_WIDE __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define EW_SIMD
#define EW_SIMD_WIDE
#endif

/* NaN test that compiles to nothing for integer types (F is the is_float flag). */
#define ISNAN_0(x) 0
#define ISNAN_1(x) ((x) != (x))

/* A table row of name's instances, one per type in tsr_dtype_t order (the
 * suffixes of EW_TYPES). */
#define ROW_ALL(name)                                                                              \
    {                                                                                              \
        name##_b, name##_u8, name##_u16, name##_i32, name##_i64, name##_f32, name##_f64            \
    }

/* The output buffer `index` of `n_bytes`: a registered buffer of that size as it
 * is, else allocated for the task. */
static inline tsr_status_t ew_out_buffer(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                         uint32_t index, size_t n_bytes, void **out)
{
    if (bufs[index].ptr != NULL && bufs[index].n_bytes == n_bytes) {
        *out = bufs[index].ptr; /* a registered buffer of the right size */
        return TSR_OK;
    }
    return tsr_task_ctx_alloc(ctx, index, n_bytes, out);
}

#endif /* TSR_KERNELS_CPU_EW_UTIL_H */
