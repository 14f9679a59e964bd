/* tessera-bench: the tiled Cholesky factorisation of the `sched` scenario: its
 * task graph, lower bounds on its makespan, and the CPU tile kernels whose
 * measured run times are the task costs of the simulated platforms.
 *
 * The matrix is T x T tiles of b x b doubles, column-major inside a tile; only
 * the lower triangle (tile (m, n) with m >= n) exists. Right-looking, lower:
 *
 *   for k in 0..T-1:
 *     potrf(k)        A[k][k] = chol(A[k][k])                      RW A[k][k]
 *     for m > k:
 *       trsm(k, m)    A[m][k] = A[m][k] A[k][k]^-T        R A[k][k], RW A[m][k]
 *     for n > k:
 *       syrk(k, n)    A[n][n] -= A[n][k] A[n][k]^T         R A[n][k], RW A[n][n]
 *       for m > n:
 *         gemm(k,m,n) A[m][n] -= A[m][k] A[n][k]^T  R A[m][k], R A[n][k], RW A[m][n]
 *
 * Tasks are listed in that (submission) order, which is a topological order. */
#ifndef TESSERA_BENCH_CHOL_H
#define TESSERA_BENCH_CHOL_H

#include <stddef.h>
#include <stdint.h>

enum chol_kind {
    CHOL_POTRF = 0,
    CHOL_TRSM = 1,
    CHOL_SYRK = 2,
    CHOL_GEMM = 3,
    CHOL_N_KINDS = 4,
};

/* One task: its kind, the tiles it accesses (the written one last) and the
 * tasks it depends on (indices of earlier tasks, as the runtime infers them from
 * the access modes: read-after-write, write-after-read, write-after-write). */
struct chol_task {
    enum chol_kind kind;
    uint32_t k;        /* the step */
    uint32_t tiles[3]; /* tile indices (chol_tile_index); tiles[n_tiles-1] is RW */
    uint32_t n_tiles;  /* 1 (potrf), 2 (trsm, syrk) or 3 (gemm) */
    uint32_t *preds;   /* owned by the dag */
    uint32_t n_preds;
};

struct chol_dag {
    uint32_t n_tile_rows; /* T */
    uint32_t n_tiles;     /* T (T + 1) / 2 */
    uint32_t n_tasks;
    struct chol_task *tasks;
    uint64_t n_of_kind[CHOL_N_KINDS];
};

/* The cost of a task of each kind on each class of processing unit, seconds;
 * a negative value: that class cannot run it (GPU-only runs, CPU-only platforms). */
struct chol_costs {
    double cpu_s[CHOL_N_KINDS];
    double gpu_s[CHOL_N_KINDS];
};

/* Lower bounds on the makespan of the dag on n_cpus cores and n_gpus GPUs, each
 * running one task at a time, with transfers free. */
struct chol_bounds {
    double critical_path_s; /* longest path, each task at its fastest class */
    double area_s;          /* the best fractional split of the work (see bench_chol.c) */
};

/* "potrf", "trsm", "syrk", "gemm". */
const char *chol_kind_name(enum chol_kind kind);

/* Floating-point operations of one task of `kind` on b x b tiles. */
double chol_kind_flops(enum chol_kind kind, size_t b);

/* Index of tile (m, n), m >= n, among the T (T + 1) / 2 tiles. */
static inline uint32_t chol_tile_index(uint32_t m, uint32_t n)
{
    return m * (m + 1) / 2 + n;
}

/* Build the dag of T x T tiles into *dag_out (chol_dag_free frees it). Returns 0,
 * or 1 after saying why on stderr (out of memory; nothing to free then). */
int chol_dag_build(uint32_t n_tile_rows, struct chol_dag *dag_out);
void chol_dag_free(struct chol_dag *dag);

/* Bottom level of every task (its cost plus the longest path after it, each task
 * at its fastest class) into bottom_s (n_tasks entries). */
void chol_dag_bottom_levels(const struct chol_dag *dag, const struct chol_costs *costs,
                            double *bottom_s);

/* Both lower bounds for `costs` on n_cpus cores and n_gpus GPUs. */
void chol_dag_bounds(const struct chol_dag *dag, const struct chol_costs *costs, uint32_t n_cpus,
                     uint32_t n_gpus, struct chol_bounds *bounds_out);

/* CPU run times of one task of each kind on b x b tiles, one core: n_runs timed
 * calls of each kernel of bench_chol_kernels.c after one untimed call, inputs
 * restored before every call outside the timing, into samples_s[kind * n_runs +
 * run]. The potrf kernel's factor is checked first. Returns 0, or 1 after saying
 * why on stderr (out of memory, or a wrong factor). */
int chol_kernels_measure(size_t b, uint32_t n_runs, double *samples_s);

#endif /* TESSERA_BENCH_CHOL_H */
