/* tessera-bench spill: what the files of the scenario share (private to bench/).
 *
 * bench_spill.c        entry point, chunk data and kernels, the spill directory, and
 *                      the out-of-core pipeline of the host-tier cases
 * bench_spill_stream.c stream_4x_device (device tier: sim device or one GPU)
 * bench_spill_disk.c   disk_write, disk_read and their pwrite / pread floor
 * bench_spill_rss.c    peak_rss and the resident-set sampler the pipeline runs
 *
 * The cases themselves are described at the top of their files. */
#ifndef TESSERA_BENCH_SPILL_H
#define TESSERA_BENCH_SPILL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera.h>

#include "bench.h"

#define MIB ((size_t)1 << 20)

#define LINEAR_MUL 0x9e3779b97f4a7c15ull

/* ---- Data and kernels (bench_spill.c) --------------------------------------- */

enum fill_kind {
    FILL_LINEAR = 0,  /* stream: word g of the dataset is g * LINEAR_MUL */
    FILL_RANDOM = 1,  /* a hash of the word's position: incompressible */
    FILL_PATTERN = 2, /* a 4 KiB random block repeated, plus the chunk index */
};

struct fill_arg {
    uint64_t chunk;   /* chunk index */
    uint64_t n_words; /* uint64 words per chunk */
    uint32_t kind;    /* enum fill_kind */
};

/* Fill task: bufs[0] (W, created with tsr_data_create) is allocated in the task
 * and filled as its fill_arg says. CPU only. */
extern const tsr_codelet_t spill_fill_cl;

/* Sum task: bufs[0] (R) a chunk; bufs[1] (RW) one uint64 that gets the chunk's
 * sum added. CPU only. */
extern const tsr_codelet_t spill_sum_cl;

/* Write chunk a->chunk of kind a->kind into `w` (a->n_words words). */
void spill_fill_words(uint64_t *w, const struct fill_arg *a);

/* Sum of n words, modulo 2^64. */
uint64_t spill_sum_words(const uint64_t *w, size_t n);

/* Submit one task of `cl` on `handles` (cl->n_buffers of them), pinned as told.
 * Borrows everything; returns tsr_task_submit's status. */
tsr_status_t spill_submit(tsr_runtime_t *rt, const tsr_codelet_t *cl, tsr_data_t *const *handles,
                          const void *arg, size_t arg_size, tsr_pin_t pin, uint32_t pin_value);

/* Median of n samples, ignoring NANs; NAN when there are none. Reorders `v`. */
double spill_median(double *v, size_t n);

/* 1 when --case lets case `name` run. */
int spill_wants(const struct bench_opts *opts, const char *name);

/* ---- Spill directory (bench_spill.c) ---------------------------------------- */

/* A fresh directory under $TMPDIR (else /tmp) into buf: 0, or 1 after saying why. */
int spill_make_dir(char *buf, size_t n);

/* Remove `dir` and what is in it, `depth` levels of directories down. */
void spill_remove_tree(const char *dir, int depth);

/* ---- Out-of-core pipeline of peak_rss and the disk cases (bench_spill.c) ----- */

struct ooc_params {
    uint64_t limit; /* host limit L */
    size_t chunk_bytes;
    size_t n_chunks;   /* DISK_FACTOR x L / chunk_bytes */
    uint32_t kind;     /* FILL_RANDOM or FILL_PATTERN */
    int is_lz4;        /* spill_compression LZ4, else NONE */
    int32_t n_workers; /* resolved */
    tsr_sched_policy_t policy;
    const uint64_t *expected; /* per chunk */
};

struct ooc_result {
    tsr_spill_stats_t spill;
    tsr_mem_stats_t host;
    double wall_s;    /* first submit to the return of the second tsr_wait_all */
    int64_t rss_base; /* bytes; -1: not sampled */
    int64_t rss_peak;
    int is_wrong; /* a chunk's sum differed */
    char note[160];
};

/* Sizes of the out-of-core cases into *p, and the expected sums: returns new
 * memory (p->expected points to it; the caller frees it), or NULL when out of memory. */
uint64_t *spill_ooc_setup(const struct bench_opts *opts, const tsr_config_t *resolved,
                          uint32_t kind, int is_lz4, struct ooc_params *p);

/* One pipeline in its own runtime spilling to `dir`, with the resident set
 * sampled when sample_rss is 1. Returns 0, 1 after saying why, or 2 when the
 * runtime refused the compression (TSR_ENOTSUP: no lz4). */
int spill_ooc_once(const struct ooc_params *p, const char *dir, int sample_rss,
                   struct ooc_result *out);

/* The fields every out-of-core record carries. */
void spill_ooc_describe(struct bench_record *rec, const struct ooc_params *p, const char *device);

/* ---- Resident set sampler (bench_spill_rss.c) ------------------------------- */

struct spill_rss_sampler {
    pthread_t thread;
    int fd;    /* /proc/self/statm */
    long page; /* bytes per page */
    atomic_int stop;
    int64_t peak; /* largest sample (bytes) */
    int is_running;
};

/* Give freed heap back to the system, read the resident set (the baseline) and
 * start a thread sampling it every 1 ms. Returns the baseline in bytes, or -1
 * when it cannot be read (no thread then). spill_rss_stop must follow either way. */
int64_t spill_rss_start(struct spill_rss_sampler *s);

/* Stop the sampler: the largest sample in bytes, or -1 when none was taken. */
int64_t spill_rss_stop(struct spill_rss_sampler *s);

/* ---- Cases: 0, or nonzero after saying why on stderr ------------------------- */

int spill_peak_rss_case(const struct bench_opts *opts, const tsr_config_t *resolved);
int spill_stream_case(const struct bench_opts *opts, const tsr_config_t *resolved);
int spill_disk_case(const struct bench_opts *opts, const tsr_config_t *resolved, int is_lz4);

#endif /* TESSERA_BENCH_SPILL_H */
