/* tessera-bench transfer: bandwidth of the copies the runtime makes between
 * memory nodes. Each copy is timed from the request to the data being valid where
 * it was needed: a task pinned to the destination device that reads the handle
 * (its kernel does nothing), or tsr_data_acquire for a copy to the host.
 *
 * On the simulated accelerators (--device cpu or sim; always available) the cases
 * are h2d_sim, d2h_sim and d2d_sim, beside a plain memcpy of the same size in the
 * same run. On CUDA (--device cuda) they are h2d_pinned, h2d_pageable, d2h_pinned
 * and d2d, at several sizes, beside cudaMemcpy of the same size, direction and
 * kind of host memory (peers/cuda_memcpy.cu); each timed run must make exactly one
 * copy of the handle (checked with tsr_runtime_copy_stats). d2d needs two GPUs:
 * with one, its records carry value null and a note. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_cuda.h"

#define SIM_MEM_BYTES (1ull << 30)

static tsr_status_t touch_kernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)ctx;
    (void)bufs;
    (void)arg;
    return TSR_OK;
}

static const tsr_codelet_t touch_cl = {
    .name = "touch",
    .impl = {[TSR_DEVICE_CPU] = touch_kernel, [TSR_DEVICE_CUDA] = touch_kernel},
    .n_buffers = TSR_NBUFFERS_DYNAMIC,
};

/* Run the empty task on `device` with `mode` on h; returns its status. */
static tsr_status_t touch(tsr_runtime_t *rt, tsr_data_t *h, uint32_t device, tsr_access_t mode)
{
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    tsr_future_t *f = NULL;
    tsr_status_t st;

    d.codelet = &touch_cl;
    d.handles = &h;
    d.modes = &mode;
    d.n_handles = 1;
    d.pin = TSR_PIN_DEVICE;
    d.pin_value = device;
    st = tsr_task_submit(rt, &d, &f);
    if (st == TSR_OK) {
        st = tsr_future_wait(f);
        tsr_future_release(f);
    }
    return st;
}

/* Make the host replica the only valid one (a host write). */
static tsr_status_t host_write(tsr_data_t *h)
{
    void *p;
    tsr_status_t st = tsr_data_acquire(h, TSR_W, &p, NULL);

    return st == TSR_OK ? tsr_data_release(h) : st;
}

static tsr_status_t host_read(tsr_data_t *h)
{
    void *p;
    tsr_status_t st = tsr_data_acquire(h, TSR_R, &p, NULL);

    return st == TSR_OK ? tsr_data_release(h) : st;
}

/* One timed copy of case `name`; returns the seconds it took, or NAN. */
static double time_copy(tsr_runtime_t *rt, tsr_data_t *h, const char *name)
{
    double t0;
    tsr_status_t st;

    if (strcmp(name, "h2d_sim") == 0) {
        st = host_write(h);
        t0 = bench_now_s();
        st = st == TSR_OK ? touch(rt, h, 1, TSR_R) : st;
    } else if (strcmp(name, "d2h_sim") == 0) {
        st = touch(rt, h, 1, TSR_RW);
        t0 = bench_now_s();
        st = st == TSR_OK ? host_read(h) : st;
    } else {
        st = touch(rt, h, 1, TSR_RW);
        t0 = bench_now_s();
        st = st == TSR_OK ? touch(rt, h, 2, TSR_R) : st;
    }
    if (st != TSR_OK) {
        bench_print_error(name, st);
        return NAN;
    }
    return bench_now_s() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* GB/s of plain memcpy between two host buffers of n_bytes: the median of n_runs
 * after a warm-up, as the runtime's figure is. */
static double memcpy_gbps(size_t n_bytes, uint32_t n_runs)
{
    char *a = malloc(n_bytes);
    char *b = malloc(n_bytes);
    double *gbps = calloc(n_runs, sizeof(*gbps));
    double median = NAN;

    if (a != NULL && b != NULL && gbps != NULL) {
        memset(a, 1, n_bytes);
        memcpy(b, a, n_bytes);
        for (uint32_t r = 0; r < n_runs; r++) {
            double t0 = bench_now_s();

            memcpy(b, a, n_bytes);
            gbps[r] = (double)n_bytes / (bench_now_s() - t0) / 1e9;
        }
        qsort(gbps, n_runs, sizeof(*gbps), cmp_double);
        median = n_runs % 2 ? gbps[n_runs / 2] : (gbps[n_runs / 2 - 1] + gbps[n_runs / 2]) / 2;
    }
    free(a);
    free(b);
    free(gbps);
    return median;
}

static int run_case(const struct bench_opts *opts, tsr_runtime_t *rt, tsr_data_t *h, size_t n_bytes,
                    const char *name)
{
    double *gbps = calloc(opts->n_runs, sizeof(*gbps));
    struct bench_record rec;

    if (gbps == NULL) {
        return 1;
    }
    time_copy(rt, h, name); /* warm-up: allocates the device replicas */
    for (uint32_t r = 0; r < opts->n_runs; r++) {
        double s = time_copy(rt, h, name);

        if (isnan(s)) {
            free(gbps);
            return 1;
        }
        gbps[r] = (double)n_bytes / s / 1e9;
    }
    bench_record_init(&rec, "transfer", name, "GBps", "GB/s", "higher");
    rec.samples = gbps;
    rec.n_samples = opts->n_runs;
    rec.peer = "memcpy";
    rec.peer_value = opts->use_peers ? memcpy_gbps(n_bytes, opts->n_runs) : NAN;
    bench_record_add_str(&rec, "device", "sim:2");
    bench_record_add_int(&rec, "bytes", (int64_t)n_bytes);
    bench_record_add_str(&rec, "timed", "request to data valid on the destination (one task)");
    bench_report_emit(opts->report, &rec);
    free(gbps);
    return 0;
}

static int sim_transfer_run(const struct bench_opts *opts)
{
    static const char *const cases[] = {"h2d_sim", "d2h_sim", "d2d_sim"};
    size_t n_bytes = opts->is_quick ? (8u << 20) : (256u << 20);
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_runtime_t *rt = NULL;
    tsr_data_t *h = NULL;
    char *buf = malloc(n_bytes);
    int rc = 0;

    cfg.n_cpu_workers = opts->n_workers;
    cfg.n_sim_devices = 2;
    cfg.sim_mem_bytes = SIM_MEM_BYTES;
    if (buf == NULL || tsr_init(&cfg, &rt) != TSR_OK ||
        tsr_data_register(rt, buf, n_bytes, &h) != TSR_OK) {
        bench_print_error("transfer: start", TSR_ENOMEM);
        free(buf);
        tsr_shutdown(rt);
        return 1;
    }
    memset(buf, 3, n_bytes);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && rc == 0; i++) {
        if (opts->case_filter == NULL || strcmp(opts->case_filter, cases[i]) == 0) {
            rc = run_case(opts, rt, h, n_bytes, cases[i]);
        }
    }
    tsr_data_unregister(h);
    tsr_shutdown(rt);
    free(buf);
    return rc;
}

/* CUDA cases. */

struct cuda_case {
    const char *name;
    enum bench_copy_dir dir;
    const char *host_memory; /* "pinned", "pageable"; NULL: no host end */
};

static const struct cuda_case cuda_cases[] = {
    {"h2d_pinned", BENCH_COPY_H2D_PINNED, "pinned"},
    {"h2d_pageable", BENCH_COPY_H2D_PAGEABLE, "pageable"},
    {"d2h_pinned", BENCH_COPY_D2H_PINNED, "pinned"},
    {"d2d", BENCH_COPY_D2D, NULL},
};
#define N_CUDA_CASES (sizeof(cuda_cases) / sizeof(cuda_cases[0]))

static const size_t cuda_sizes[] = {1u << 20, 16u << 20, 256u << 20};
static const size_t cuda_sizes_quick[] = {1u << 20, 8u << 20};

/* The GPUs of the run: the first, and the second (for d2d) when there is one. */
struct cuda_xfer {
    struct bench_target tg;
    int has_gpu1;
    uint32_t gpu1;
    tsr_device_info_t info1;
};

static int is_h2d(enum bench_copy_dir dir)
{
    return dir == BENCH_COPY_H2D_PINNED || dir == BENCH_COPY_H2D_PAGEABLE;
}

/* Leave h where exactly one copy (from *src_out to *dst_out) is needed. */
static tsr_status_t cuda_prepare(const struct cuda_xfer *x, tsr_data_t *h, enum bench_copy_dir dir,
                                 uint32_t *src_out, uint32_t *dst_out)
{
    if (is_h2d(dir)) {
        *src_out = 0;
        *dst_out = x->tg.info.mem_node;
        return host_write(h);
    }
    *src_out = x->tg.info.mem_node;
    *dst_out = dir == BENCH_COPY_D2D ? x->info1.mem_node : 0;
    return touch(x->tg.rt, h, x->tg.dev, TSR_RW);
}

static tsr_status_t cuda_request(const struct cuda_xfer *x, tsr_data_t *h, enum bench_copy_dir dir)
{
    if (is_h2d(dir)) {
        return touch(x->tg.rt, h, x->tg.dev, TSR_R);
    }
    if (dir == BENCH_COPY_D2D) {
        return touch(x->tg.rt, h, x->gpu1, TSR_R);
    }
    return host_read(h);
}

/* One timed copy of n_bytes; 0 and its seconds, or 1 after saying why (an error,
 * or not exactly one copy of the right size). */
static int cuda_copy_once(const struct cuda_xfer *x, tsr_data_t *h, const struct cuda_case *c,
                          size_t n_bytes, double *seconds_out)
{
    tsr_copy_stats_t before = {0, 0};
    tsr_copy_stats_t after = {0, 0};
    uint32_t src = 0;
    uint32_t dst = 0;
    double t0;
    tsr_status_t st = cuda_prepare(x, h, c->dir, &src, &dst);

    st = st == TSR_OK ? tsr_runtime_copy_stats(x->tg.rt, src, dst, &before) : st;
    t0 = bench_now_s();
    st = st == TSR_OK ? cuda_request(x, h, c->dir) : st;
    *seconds_out = bench_now_s() - t0;
    st = st == TSR_OK ? tsr_runtime_copy_stats(x->tg.rt, src, dst, &after) : st;
    if (st != TSR_OK) {
        bench_print_error(c->name, st);
        return 1;
    }
    if (after.n_copies - before.n_copies != 1 || after.n_bytes - before.n_bytes != n_bytes) {
        fprintf(stderr,
                "tessera-bench: transfer %s: %llu copies (%llu bytes) from node %u to node %u, "
                "expected one of %zu bytes\n",
                c->name, (unsigned long long)(after.n_copies - before.n_copies),
                (unsigned long long)(after.n_bytes - before.n_bytes), src, dst, n_bytes);
        return 1;
    }
    return 0;
}

/* Tessera's figures: `out` gets n_runs GB/s values after a warm-up that allocates
 * the device replicas. The host buffer is pinned or pageable as the case says. */
static int cuda_measure(const struct bench_opts *opts, const struct cuda_xfer *x,
                        const struct cuda_case *c, size_t n_bytes, double *out)
{
    int is_pinned = c->host_memory != NULL && strcmp(c->host_memory, "pinned") == 0;
    void *buf = is_pinned ? bench_cuda_host_alloc(n_bytes) : malloc(n_bytes);
    tsr_data_t *h = NULL;
    double s = 0.0;
    tsr_status_t rc;
    int err = buf == NULL;

    if (err) {
        fprintf(stderr, "tessera-bench: transfer %s: no %zu-byte host buffer\n", c->name, n_bytes);
        return 1;
    }
    memset(buf, 3, n_bytes);
    rc = tsr_data_register(x->tg.rt, buf, n_bytes, &h);
    if (rc != TSR_OK) {
        bench_print_error("tsr_data_register", rc);
        err = 1;
    }
    err = err != 0 ? err : cuda_copy_once(x, h, c, n_bytes, &s);
    for (uint32_t r = 0; r < opts->n_runs && err == 0; r++) {
        err = cuda_copy_once(x, h, c, n_bytes, &s);
        out[r] = (double)n_bytes / s / 1e9;
    }
    tsr_data_unregister(h);
    if (is_pinned) {
        bench_cuda_host_free(buf);
    } else {
        free(buf);
    }
    return err;
}

/* One record; n_samples 0 (value null) when the case could not run, with `note`. */
static void cuda_emit(const struct bench_opts *opts, const struct cuda_xfer *x,
                      const struct cuda_case *c, size_t n_bytes, const double *gbps,
                      uint32_t n_samples, const double *peer, const char *note)
{
    struct bench_target where = x->tg;
    struct bench_record rec;

    if (c->dir == BENCH_COPY_D2D) {
        snprintf(where.label, sizeof(where.label), "cuda:2");
    }
    bench_record_init(&rec, "transfer", c->name, "GBps", "GB/s", "higher");
    rec.samples = gbps;
    rec.n_samples = n_samples;
    rec.peer = "cudaMemcpy";
    if (peer != NULL) {
        rec.peer_value = bench_median(peer, opts->n_runs);
        bench_record_add_num(&rec, "peer_spread", bench_spread(peer, opts->n_runs));
    }
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_target_describe(&where, &rec);
    bench_record_add_int(&rec, "bytes", (int64_t)n_bytes);
    bench_record_add_str(&rec, "host_memory", c->host_memory != NULL ? c->host_memory : "none");
    bench_record_add_str(&rec, "timed", "request to data valid on the destination (one copy)");
    bench_record_add_str(&rec, "peer_timed", "cudaMemcpy + cudaDeviceSynchronize");
    bench_report_emit(opts->report, &rec);
}

static int cuda_run_size(const struct bench_opts *opts, const struct cuda_xfer *x,
                         const struct cuda_case *c, size_t n_bytes)
{
    double *gbps = calloc(2 * (size_t)opts->n_runs, sizeof(*gbps));
    double *peer = gbps != NULL ? gbps + opts->n_runs : NULL;
    char note[256] = "";
    int has_peer = 0;
    int err = 0;

    if (gbps == NULL) {
        return 1;
    }
    if (c->dir == BENCH_COPY_D2D && !x->has_gpu1) {
        cuda_emit(opts, x, c, n_bytes, gbps, 0, NULL, "needs 2 GPUs");
        free(gbps);
        return 0;
    }
    if (!opts->use_peers) {
        snprintf(note, sizeof(note), "peer not run (--no-peer)");
    } else {
        has_peer =
            bench_cuda_memcpy_peer(c->dir, (int)x->tg.info.kind_index, (int)x->info1.kind_index,
                                   n_bytes, opts->n_runs, peer, note, sizeof(note)) == 0;
    }
    err = cuda_measure(opts, x, c, n_bytes, gbps);
    if (err == 0) {
        cuda_emit(opts, x, c, n_bytes, gbps, opts->n_runs, has_peer ? peer : NULL, note);
    }
    free(gbps);
    return err;
}

static int cuda_transfer_run(const struct bench_opts *opts)
{
    const size_t *sizes = opts->is_quick ? cuda_sizes_quick : cuda_sizes;
    size_t n_sizes = opts->is_quick ? 2 : 3;
    struct cuda_xfer x;
    int n_run = 0;
    int err = 0;

    memset(&x, 0, sizeof(x));
    if (bench_target_open(opts, 0, &x.tg) != 0) {
        return 1;
    }
    x.has_gpu1 = bench_device_find(x.tg.rt, TSR_DEVICE_CUDA, 1, &x.gpu1, &x.info1) == 0;
    for (size_t i = 0; i < N_CUDA_CASES && err == 0; i++) {
        if (opts->case_filter != NULL && strcmp(opts->case_filter, cuda_cases[i].name) != 0) {
            continue;
        }
        n_run++;
        for (size_t s = 0; s < n_sizes && err == 0; s++) {
            err = cuda_run_size(opts, &x, &cuda_cases[i], sizes[s]);
        }
    }
    bench_target_close(&x.tg);
    if (n_run == 0) {
        fprintf(stderr, "tessera-bench: transfer has no case '%s' on --device cuda\n",
                opts->case_filter);
        return 1;
    }
    return err;
}

int bench_transfer_run(const struct bench_opts *opts)
{
    return opts->device == BENCH_DEVICE_CUDA ? cuda_transfer_run(opts) : sim_transfer_run(opts);
}
