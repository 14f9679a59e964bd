/* tessera-bench array: what its files share (private to bench/).
 *
 * bench_array.c        entry point, the workloads (case table, expressions), the checks
 *                      of a result against C, the peer script's lines; the CPU cases
 * bench_array_gpu.c    the same workloads on one GPU (--device cuda) or sim device
 *                      (--device sim) beside CuPy, with TSR_CONFIG_F_ACCEL_FIRST
 * bench_array_spill.c  sum_spill_gpu / sum_spill_sim: an array three times the device
 *                      memory limit, persisted (spilled) and reduced again and again
 *
 * The cases themselves are described at the top of their files. */
#ifndef TESSERA_BENCH_ARRAY_H
#define TESSERA_BENCH_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#include <tessera.h>

#include "bench.h"
#include "bench_peer.h"

#define ARRAY_PEER_PROG "tessera-peer-array"
#define ARRAY_SEED 42
#define ARRAY_REL_TOL 1e-6 /* float32 results (one rounding, or a few in the chains) */

enum array_kind {
    KIND_MEAN_X_PLUS_XT,
    KIND_SUM_F32,
    KIND_MATMUL_F64,
    KIND_CHAIN,     /* elementwise_chain: arithmetic, memory-bound */
    KIND_MATH_CHAIN /* math_chain: exp, log, sin, cos, compute-bound */
};

/* The floor of a CPU case: STREAM-like read or scale bandwidth, or the BLAS rate.
 * On a GPU: the bytes of READ (x once) or SCALE (x and the result) over the
 * device-to-device copy bandwidth, or cuBLAS for BLAS. */
enum floor_kernel { FLOOR_READ = 0, FLOOR_SCALE = 1, FLOOR_BLAS = 2 };

struct array_case {
    const char *name;
    const char *expr;
    int64_t n;     /* x (and y) has n elements along each of its ndim dimensions, */
    int64_t chunk; /* in chunks of `chunk` along each */
    int64_t n_quick;
    int64_t chunk_quick;
    enum array_kind kind;
    uint32_t ndim;
    tsr_dtype_t dtype;
    enum floor_kernel floor; /* and what must move: x once, plus the result for SCALE */
    int64_t chunk_gpu;       /* chunks at full size on a GPU (quick sizes keep chunk_quick) */
};

/* The workloads, in the order they run. */
extern const struct array_case array_cases[];
extern const size_t array_n_cases;

/* One library's result as the peer script printed it. */
struct peer_side {
    char label[64]; /* "dask-2026.8.0", or the library's name when it has no figure */
    double seconds; /* NAN: none */
    double spread;
    double checksum;
    char note[BENCH_PEER_NOTE_MAX];
};

/* One case being measured. */
struct array_run {
    const struct array_case *c;
    int64_t n;
    int64_t chunk;
    struct bench_target tg;
    tsr_array_t *x;
    tsr_array_t *y; /* matmul_f64's second operand; NULL otherwise */
    void *out;      /* the result, host memory */
    size_t out_bytes;
    double *seconds; /* one per timed run */
    int64_t tasks_per_run;
    double checksum; /* mean of the result (the sum itself for sum_f32) */
    int is_wrong;
    char check[192];
    tsr_sched_policy_t policy;
    char shape[48];
    char chunks[48];
    struct peer_side dask;
    struct peer_side numpy;
};

/* ---- Workloads and checks (bench_array.c) ----------------------------------- */

/* Bytes of x (and of y). */
size_t array_x_bytes(const struct array_run *r);

/* r->shape and r->chunks for the records. */
void array_describe_sizes(struct array_run *r);

/* x (and y for matmul) of r's case and sizes in r->tg.rt, uniform in [0, 1),
 * computed and persisted (wherever the runtime runs the tasks). */
tsr_status_t array_make_inputs(struct array_run *r);

/* The case's expression of r->x (and r->y); `*y_out` is new (NULL on error). */
tsr_status_t array_build_expr(const struct array_run *r, tsr_array_t **y_out);

/* Check r->out (the result, r->out_bytes of host memory) against C over the
 * inputs' values, read back from the runtime; fills r->check, r->checksum and
 * r->is_wrong (a message on stderr when wrong). */
void array_run_check(struct array_run *r);

/* Peer lines: `lib`'s result for `case_name` in `res` (see bench_array.c). */
void array_peer_side_init(struct peer_side *p, const char *lib);
void array_peer_side_read(const struct bench_peer_result *res, const char *case_name,
                          const char *lib, struct peer_side *p);

/* num / den, or NAN when either is missing or den is not positive. */
double array_ratio(double num, double den);

/* ---- GPU and sim cases (bench_array_gpu.c) ---------------------------------- */

/* Start a runtime with one CPU worker and one accelerator of opts->device (sim:
 * `dev_mem_bytes` of memory; cuda: the first GPU, its device_memory_limit
 * `dev_mem_bytes`, 0 for the default), with TSR_CONFIG_F_ACCEL_FIRST, so that
 * every task the accelerator can run runs there, under --policy (default: the
 * runtime's). Close it with bench_target_close. Returns 0, or 1 after saying why
 * (nothing to close then). */
int array_gpu_open(const struct bench_opts *opts, uint64_t dev_mem_bytes, struct bench_target *tg);

/* Bytes copied between host memory and the device's memory node so far, both
 * directions. */
uint64_t array_link_bytes(const struct bench_target *tg);

/* Host-to-device bytes copied to the device's node so far. */
uint64_t array_h2d_bytes(const struct bench_target *tg);

/* "cupy-<version>" or "cupy" and a note: the CuPy peer (cuda only) for `peer_case`
 * with `extra_args` (shell-safe) after the common ones. */
void array_cupy_peer(const struct bench_opts *opts, const struct array_run *r,
                     const char *peer_case, const char *extra_args, struct peer_side *cupy);

/* Single-thread memcpy bandwidth (read + write bytes per second / 1e9), best of
 * several passes over two buffers of n_bytes: a sim device's copies and kernels
 * run on one thread. NAN without memory. */
double array_memcpy_gbps(size_t n_bytes, uint32_t n_runs);

int bench_array_gpu_run(const struct bench_opts *opts);

/* ---- The spill case (bench_array_spill.c) ----------------------------------- */

/* Its name on opts->device ("sum_spill_gpu", "sum_spill_sim"). */
const char *array_spill_case_name(const struct bench_opts *opts);

/* Run it: 0, or 1 after a failure or a wrong sum. */
int array_spill_run(const struct bench_opts *opts);

#endif /* TESSERA_BENCH_ARRAY_H */
