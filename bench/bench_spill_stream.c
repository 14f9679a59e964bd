/* tessera-bench spill: `stream_4x_device`, the device tier (GBps, higher better).
 *
 * One accelerator of D bytes and a dataset of 4 x D: per chunk a fill task on the CPU
 * (tsr_data_create + tsr_task_ctx_alloc, uint64 words), x = 2x + 1 on the
 * accelerator, and a CPU task adding the chunk's sum into one registered accumulator
 * (so the sums are chained). Every byte goes to the device and back. Timed: first
 * submit to tsr_wait_all return; value = dataset bytes / that time. One untimed
 * warm-up pipeline first. The sum is checked against a sequential computation: a
 * wrong one gives value null, a note, and exit status 1.
 *
 * --device cpu or sim: one sim device of D = 64 MiB (quick 16 MiB), chunks of 4 MiB.
 *   floor_value: single-thread memcpy of the dataset once in the same chunks, same
 *   run (sim copies are memcpy; the pipeline copies each byte to the device and
 *   back, so the copy bound proper is half of it).
 * --device cuda: the first GPU, its device_memory_limit set to D = 1 GiB (quick
 *   64 MiB), chunks of 16 MiB (quick 4 MiB); 2x + 1 is a grid-stride kernel on the
 *   task's stream (bench_cuda_scale_impl). floor_value: the host link, measured in
 *   the same run with the runtime up: pinned cudaMemcpy of one chunk host to device
 *   and device to host (peers/cuda_memcpy.cu, median of --runs after a warm-up);
 *   every byte crosses the link once each way and the directions can overlap, so
 *   the bound is the slower of the two (both are in the record). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cuda.h"
#include "bench_spill.h"

#define STREAM_FACTOR 4 /* dataset = STREAM_FACTOR x device memory */

#define STREAM_DEV_BYTES (64 * MIB)
#define STREAM_DEV_BYTES_QUICK (16 * MIB)
#define STREAM_CHUNK_BYTES (4 * MIB)

#define STREAM_CUDA_DEV_BYTES (1024 * MIB)
#define STREAM_CUDA_DEV_BYTES_QUICK (64 * MIB)
#define STREAM_CUDA_CHUNK_BYTES (16 * MIB)
#define STREAM_CUDA_CHUNK_BYTES_QUICK (4 * MIB)

/* bufs[0] (RW): x = 2x + 1 on uint64 words. */
static tsr_status_t scale_kernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    uint64_t *w = bufs[0].ptr;
    size_t n = bufs[0].n_bytes / sizeof(uint64_t);

    (void)ctx;
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        w[i] = w[i] * 2 + 1;
    }
    return TSR_OK;
}

static const tsr_codelet_t scale_cl = {
    .name = "spill_scale",
    /* Sim devices run the CPU implementation. */
    .impl = {[TSR_DEVICE_CPU] = scale_kernel, [TSR_DEVICE_CUDA] = bench_cuda_scale_impl},
    .n_buffers = 1,
    .modes = {TSR_RW},
};

/* Copy and memory counters of the device's node, before or after the timed runs. */
struct stream_counts {
    tsr_copy_stats_t h2d;
    tsr_copy_stats_t d2h;
    tsr_mem_stats_t dev;
};

/* The floor: GB/s, and on CUDA the two directions it comes from. */
struct stream_floor {
    double gbps;
    double h2d_gbps; /* CUDA only; NAN otherwise */
    double d2h_gbps;
    char why[160]; /* why the CUDA floor is missing; "" otherwise */
};

struct stream_state {
    struct bench_target tg; /* the runtime and its accelerator */
    int is_cuda;
    size_t dev_bytes; /* sim_mem_bytes, or the GPU's device_memory_limit */
    size_t chunk_bytes;
    size_t n_chunks;
    size_t chunk_words;
    uint64_t expected; /* sum of 2x + 1 over the dataset */
    uint64_t sum;      /* of the last pipeline */
    double *gbps;      /* one per timed run */
    struct stream_counts before;
    struct stream_counts after;
    tsr_sched_policy_t policy;
    struct stream_floor floor;
};

/* One pipeline: `*seconds_out` from the first submit to tsr_wait_all's return,
 * `*sum_out` the accumulator. Handles are made before and freed after the timing. */
static int stream_once(const struct stream_state *s, double *seconds_out, uint64_t *sum_out)
{
    tsr_runtime_t *rt = s->tg.rt;
    tsr_data_t **chunks = calloc(s->n_chunks, sizeof(tsr_data_t *));
    uint64_t acc = 0;
    tsr_data_t *acc_h = NULL;
    tsr_status_t st = chunks != NULL ? TSR_OK : TSR_ENOMEM;
    size_t n_made = 0;
    double t0;

    st = st == TSR_OK ? tsr_data_register(rt, &acc, sizeof(acc), &acc_h) : st;
    for (; st == TSR_OK && n_made < s->n_chunks; n_made++) {
        st = tsr_data_create(rt, &chunks[n_made]);
        if (st != TSR_OK) {
            break;
        }
    }
    t0 = bench_now_s();
    for (size_t c = 0; c < s->n_chunks && st == TSR_OK; c++) {
        struct fill_arg a = {c, s->chunk_words, FILL_LINEAR};
        tsr_data_t *pair[2] = {chunks[c], acc_h};

        st = spill_submit(rt, &spill_fill_cl, &chunks[c], &a, sizeof(a), TSR_PIN_KIND,
                          TSR_DEVICE_CPU);
        st = st == TSR_OK
                 ? spill_submit(rt, &scale_cl, &chunks[c], NULL, 0, TSR_PIN_DEVICE, s->tg.dev)
                 : st;
        st = st == TSR_OK
                 ? spill_submit(rt, &spill_sum_cl, pair, NULL, 0, TSR_PIN_KIND, TSR_DEVICE_CPU)
                 : st;
    }
    if (st != TSR_OK) {
        bench_print_error("spill stream_4x_device: setup", st);
    }
    tsr_wait_all(rt);
    *seconds_out = bench_now_s() - t0;
    for (size_t c = 0; c < n_made; c++) {
        tsr_data_unregister(chunks[c]);
    }
    tsr_data_unregister(acc_h); /* leaves the latest sum in acc */
    free(chunks);
    *sum_out = acc;
    return st != TSR_OK || bench_check_tasks(rt, "spill stream_4x_device") != 0;
}

/* GB/s of single-thread memcpy of n_chunks chunks between two buffers of the
 * dataset's size: the median of n_runs after a warm-up. */
static double memcpy_chunks_gbps(size_t chunk_bytes, size_t n_chunks, uint32_t n_runs)
{
    size_t n_bytes = chunk_bytes * n_chunks;
    char *a = malloc(n_bytes);
    char *b = malloc(n_bytes);
    double *gbps = calloc(n_runs, sizeof(*gbps));
    double median = NAN;

    if (a != NULL && b != NULL && gbps != NULL) {
        memset(a, 1, n_bytes);
        memset(b, 2, n_bytes);
        for (uint32_t r = 0; r <= n_runs; r++) { /* run 0: warm-up */
            double t0 = bench_now_s();

            for (size_t c = 0; c < n_chunks; c++) {
                memcpy(b + c * chunk_bytes, a + c * chunk_bytes, chunk_bytes);
            }
            if (r > 0) {
                gbps[r - 1] = (double)n_bytes / (bench_now_s() - t0) / 1e9;
            }
        }
        median = spill_median(gbps, n_runs);
    }
    free(a);
    free(b);
    free(gbps);
    return median;
}

/* The host link of the GPU: pinned cudaMemcpy of one chunk each way (n_runs
 * each, after a warm-up), and the slower direction as the floor. Tessera's
 * runtime must be up: the copies use the primary context it holds. */
static void cuda_link_floor(const struct stream_state *s, uint32_t n_runs, struct stream_floor *f)
{
    double *h2d = calloc(2 * (size_t)n_runs, sizeof(double));
    double *d2h = h2d != NULL ? h2d + n_runs : NULL;
    int ordinal = (int)s->tg.info.kind_index;
    size_t n_bytes = s->chunk_bytes;
    int err = -1;

    if (h2d == NULL) {
        snprintf(f->why, sizeof(f->why), "out of memory");
    } else {
        err = bench_cuda_memcpy_peer(BENCH_COPY_H2D_PINNED, ordinal, ordinal, n_bytes, n_runs, h2d,
                                     f->why, sizeof(f->why));
    }
    if (err == 0) {
        err = bench_cuda_memcpy_peer(BENCH_COPY_D2H_PINNED, ordinal, ordinal, n_bytes, n_runs, d2h,
                                     f->why, sizeof(f->why));
    }
    if (err == 0) {
        f->h2d_gbps = spill_median(h2d, n_runs);
        f->d2h_gbps = spill_median(d2h, n_runs);
        f->gbps = fmin(f->h2d_gbps, f->d2h_gbps);
    } else {
        fprintf(stderr, "tessera-bench: spill stream_4x_device: no link floor: %s\n", f->why);
    }
    free(h2d);
}

static void stream_counts_read(const struct stream_state *s, struct stream_counts *out)
{
    uint32_t node = s->tg.info.mem_node;

    memset(out, 0, sizeof(*out));
    tsr_runtime_copy_stats(s->tg.rt, 0, node, &out->h2d);
    tsr_runtime_copy_stats(s->tg.rt, node, 0, &out->d2h);
    tsr_runtime_mem_stats(s->tg.rt, node, &out->dev);
}

/* Sizes for --device, and the runtime: the CPU workers and one accelerator of
 * s->dev_bytes. Returns 0, or 1 after saying why (nothing to close then). */
static int stream_open(const struct bench_opts *opts, const tsr_config_t *resolved,
                       struct stream_state *s)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    int is_quick = opts->is_quick;

    s->is_cuda = opts->device == BENCH_DEVICE_CUDA;
    if (s->is_cuda) {
        s->dev_bytes = is_quick ? STREAM_CUDA_DEV_BYTES_QUICK : STREAM_CUDA_DEV_BYTES;
        s->chunk_bytes = is_quick ? STREAM_CUDA_CHUNK_BYTES_QUICK : STREAM_CUDA_CHUNK_BYTES;
    } else {
        s->dev_bytes = is_quick ? STREAM_DEV_BYTES_QUICK : STREAM_DEV_BYTES;
        s->chunk_bytes = STREAM_CHUNK_BYTES;
    }
    s->chunk_words = s->chunk_bytes / sizeof(uint64_t);
    s->n_chunks = STREAM_FACTOR * s->dev_bytes / s->chunk_bytes;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = resolved->n_cpu_workers;
    cfg.policy = opts->policy;
    if (s->is_cuda) {
        cfg.n_cuda_devices = 1;
        cfg.device_memory_limit.bytes = s->dev_bytes;
    } else {
        cfg.n_sim_devices = 1;
        cfg.sim_mem_bytes = s->dev_bytes;
        cfg.n_cuda_devices = -1; /* the sim device alone */
    }
    return bench_target_open_config(&cfg, s->is_cuda ? TSR_DEVICE_CUDA : TSR_DEVICE_SIM, &s->tg);
}

static uint64_t stream_expected(size_t n_words)
{
    uint64_t s = 0;

    for (uint64_t g = 0; g < n_words; g++) {
        s += g * LINEAR_MUL * 2 + 1;
    }
    return s;
}

/* The warm-up, the timed runs into s->gbps and the counters around them; on
 * CUDA the link floor too, while the runtime is up. Returns 0, or 1 after saying
 * why. A wrong sum stops the runs and leaves it in s->sum. */
static int stream_measure(const struct bench_opts *opts, struct stream_state *s)
{
    tsr_runtime_stats_t rs = TSR_RUNTIME_STATS_INIT;
    double sec = 0.0;
    int err;

    s->expected = stream_expected(s->n_chunks * s->chunk_words);
    err = stream_once(s, &sec, &s->sum); /* warm-up */
    stream_counts_read(s, &s->before);
    for (uint32_t r = 0; r < opts->n_runs && err == 0 && s->sum == s->expected; r++) {
        err = stream_once(s, &sec, &s->sum);
        s->gbps[r] = (double)(s->n_chunks * s->chunk_bytes) / sec / 1e9;
    }
    stream_counts_read(s, &s->after);
    tsr_runtime_stats(s->tg.rt, &rs);
    s->policy = rs.policy;
    if (s->is_cuda && err == 0) {
        cuda_link_floor(s, opts->n_runs, &s->floor);
    }
    return err;
}

/* How the floor was had, for the record. */
static void stream_describe_floor(const struct stream_state *s, struct bench_record *rec)
{
    if (!s->is_cuda) {
        bench_record_add_str(rec, "floor", "memcpy");
        bench_record_add_str(rec, "floor_timed",
                             "single-thread memcpy of the dataset once, same chunks; the pipeline "
                             "copies each byte to the device and back, so its copy bound is half");
        return;
    }
    bench_record_add_str(rec, "floor", "cudaMemcpy pinned h2d, d2h");
    bench_record_add_str(rec, "floor_timed",
                         "cudaMemcpy + cudaDeviceSynchronize of one chunk from and to pinned host "
                         "memory; the slower direction (each byte crosses the link once each way)");
    bench_record_add_num(rec, "floor_h2d_gbps", s->floor.h2d_gbps);
    bench_record_add_num(rec, "floor_d2h_gbps", s->floor.d2h_gbps);
    if (s->floor.why[0] != '\0') {
        bench_record_add_str(rec, "floor_note", s->floor.why);
    }
}

static void stream_emit(const struct bench_opts *opts, const struct stream_state *s, uint32_t n_ok,
                        const char *note)
{
    double n_runs = (double)opts->n_runs;
    struct bench_record rec;

    bench_record_init(&rec, "spill", "stream_4x_device", "GBps", "GB/s", "higher");
    rec.samples = s->gbps;
    rec.n_samples = n_ok;
    rec.floor_value = s->floor.gbps;
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_target_describe(&s->tg, &rec);
    stream_describe_floor(s, &rec);
    bench_record_add_int(&rec, "dataset_bytes", (int64_t)(s->n_chunks * s->chunk_bytes));
    bench_record_add_int(&rec, "chunk_bytes", (int64_t)s->chunk_bytes);
    bench_record_add_int(&rec, "device_mem_bytes", (int64_t)s->dev_bytes);
    bench_record_add_int(&rec, "tasks", (int64_t)(3 * s->n_chunks));
    bench_record_add_num(&rec, "h2d_bytes_per_run",
                         (double)(s->after.h2d.n_bytes - s->before.h2d.n_bytes) / n_runs);
    bench_record_add_num(&rec, "d2h_bytes_per_run",
                         (double)(s->after.d2h.n_bytes - s->before.d2h.n_bytes) / n_runs);
    /* Of the d2h bytes, those written back by evictions (ahead of need or for an
     * allocation). */
    bench_record_add_num(
        &rec, "evicted_d2h_bytes_per_run",
        (double)(s->after.dev.spilled_bytes - s->before.dev.spilled_bytes) / n_runs);
    bench_record_add_str(&rec, "policy", tsr_sched_policy_name(s->policy));
    bench_record_add_str(
        &rec, "timed",
        s->is_cuda ? "first submit to wait_all return: fill (CPU), 2x+1 (cuda), sum (CPU)"
                   : "first submit to wait_all return: fill (CPU), 2x+1 (sim), sum (CPU)");
    bench_report_emit(opts->report, &rec);
}

int spill_stream_case(const struct bench_opts *opts, const tsr_config_t *resolved)
{
    struct stream_state s;
    char note[160] = "";
    int err;

    memset(&s, 0, sizeof(s));
    s.floor.gbps = NAN;
    s.floor.h2d_gbps = NAN;
    s.floor.d2h_gbps = NAN;
    s.gbps = calloc(opts->n_runs, sizeof(*s.gbps));
    if (s.gbps == NULL) {
        bench_print_error("spill stream_4x_device: tsr_init", TSR_ENOMEM);
        return 1;
    }
    if (stream_open(opts, resolved, &s) != 0) {
        free(s.gbps);
        return 1;
    }
    err = stream_measure(opts, &s);
    bench_target_close(&s.tg);
    if (err != 0) {
        free(s.gbps);
        return 1;
    }
    if (s.sum != s.expected) {
        snprintf(note, sizeof(note), "wrong result: sum %llu, expected %llu",
                 (unsigned long long)s.sum, (unsigned long long)s.expected);
        fprintf(stderr, "tessera-bench: spill stream_4x_device: %s\n", note);
        err = 1;
    }
    if (!s.is_cuda) {
        s.floor.gbps = memcpy_chunks_gbps(s.chunk_bytes, s.n_chunks, opts->n_runs);
    }
    stream_emit(opts, &s, err == 0 ? opts->n_runs : 0, note);
    free(s.gbps);
    return err;
}
