/* tessera-bench transfer: bandwidth of the copies the runtime makes between
 * memory nodes. On the simulated accelerators (always available) the cases are
 * h2d_sim, d2h_sim and d2d_sim; each is timed from the request to the data being
 * valid where it was needed, beside a plain memcpy of the same size in the same
 * run. The CUDA cases (h2d_pinned, ...) arrive with the CUDA device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

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
    .impl = {[TSR_DEVICE_CPU] = touch_kernel},
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

int bench_transfer_run(const struct bench_opts *opts)
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
