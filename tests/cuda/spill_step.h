/* The fill and the step of the GPU spill oracle (cuda_spill_test.cc), shared by its
 * kernels (cuda_test_kernels.cu) and its sequential CPU replay, so that both compute
 * exactly the same thing. Plain C with inline functions; compiled as host code by
 * the C++ compiler and as host + device code by nvcc.
 *
 * Chunks are arrays of uint64_t of any length. A fill writes word w of a chunk as
 * tsr_test_spill_fill_word(key, w). A step hashes a sample of every chunk it reads
 * (R or RW) into one word h, then rewrites every chunk it writes (W or RW) over its
 * own length. The hash is a wrapping sum, so the GPU may add its terms in any
 * order and still get the replay's value bit for bit; it is taken before anything
 * is written, in a kernel of its own, because the chunks it reads may be the ones
 * the step rewrites. */
#ifndef TSR_TESTS_CUDA_SPILL_STEP_H
#define TSR_TESTS_CUDA_SPILL_STEP_H

#include <stdint.h>
#include <tessera/data.h>

#include "cuda/oracle_step.h" /* TSR_TEST_HD, tsr_test_step_mix */

#define TSR_TEST_SPILL_MAX_BUFS 3
/* The hash reads words 0, STRIDE, 2 * STRIDE, ... of each chunk it reads. */
#define TSR_TEST_SPILL_STRIDE 61
/* Device words holding each step's hash between its two kernels, one per step. */
#define TSR_TEST_SPILL_SLOTS 4096

/* The task argument (copied by value into the kernels' parameters). */
struct tsr_test_spill_arg {
    uint64_t key;
    uint32_t slot; /* < TSR_TEST_SPILL_SLOTS; no two steps in flight share one */
    uint32_t n_bufs;
    uint32_t modes[TSR_TEST_SPILL_MAX_BUFS]; /* tsr_access_t */
    uint32_t pad;
};

TSR_TEST_HD static inline uint64_t tsr_test_spill_fill_word(uint64_t key, uint64_t w)
{
    return tsr_test_step_mix(key, w);
}

/* The hash's term for word w (value v) of the step's buffer `buf`. */
TSR_TEST_HD static inline uint64_t tsr_test_spill_term(uint32_t buf, uint64_t w, uint64_t v)
{
    return tsr_test_step_mix(v + buf, w);
}

/* The new word w of the step's buffer `buf` (mode `mode`) from its old value. */
TSR_TEST_HD static inline uint64_t tsr_test_spill_update(uint64_t h, uint32_t buf, uint32_t mode,
                                                         uint64_t w, uint64_t old)
{
    return ((mode & TSR_R) ? old : 0) * 31 + tsr_test_step_mix(h, w + buf);
}

/* The sequential replay of a step on host arrays: bufs[i] holds n_words[i] words. */
static inline void tsr_test_spill_apply(const struct tsr_test_spill_arg *a, uint64_t *const *bufs,
                                        const uint64_t *n_words)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < a->n_bufs; i++) {
        if (!(a->modes[i] & TSR_R)) {
            continue;
        }
        for (uint64_t w = 0; w < n_words[i]; w += TSR_TEST_SPILL_STRIDE) {
            sum += tsr_test_spill_term(i, w, bufs[i][w]);
        }
    }
    uint64_t h = tsr_test_step_mix(a->key, sum);
    for (uint32_t i = 0; i < a->n_bufs; i++) {
        if (!(a->modes[i] & TSR_W)) {
            continue;
        }
        for (uint64_t w = 0; w < n_words[i]; w++) {
            bufs[i][w] = tsr_test_spill_update(h, i, a->modes[i], w, bufs[i][w]);
        }
    }
}

#endif /* TSR_TESTS_CUDA_SPILL_STEP_H */
