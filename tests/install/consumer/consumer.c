/* An external program built against an installed Tessera: a few real tasks with data
 * dependencies, whose result is checked. Exits 0 on success, 1 on any mismatch or error. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <tessera.h>

#define N_CHUNKS 8
#define CHUNK_LEN 1024

/* W: x[i] = first + i, where `first` is the chunk's first global index. */
static tsr_status_t fill_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    double *x = bufs[0].ptr;
    size_t n = bufs[0].n_bytes / sizeof(double);
    uint64_t first;

    (void)ctx;
    memcpy(&first, arg, sizeof(first));
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)(first + i);
    }
    return TSR_OK;
}

/* RW: x[i] = 2 x[i] + 1. Only correct if it runs after fill (read-after-write). */
static tsr_status_t twice_plus_one_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                       const void *arg)
{
    double *x = bufs[0].ptr;
    size_t n = bufs[0].n_bytes / sizeof(double);

    (void)ctx;
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        x[i] = 2.0 * x[i] + 1.0;
    }
    return TSR_OK;
}

/* R chunk, RW total: total += sum(chunk). */
static tsr_status_t accumulate_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const double *x = bufs[0].ptr;
    size_t n = bufs[0].n_bytes / sizeof(double);
    double *total = bufs[1].ptr;

    (void)ctx;
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        *total += x[i];
    }
    return TSR_OK;
}

static const tsr_codelet_t fill_cl = {
    .name = "fill",
    .impl = {[TSR_DEVICE_CPU] = fill_cpu},
    .n_buffers = 1,
    .modes = {TSR_W},
};
static const tsr_codelet_t twice_cl = {
    .name = "twice_plus_one",
    .impl = {[TSR_DEVICE_CPU] = twice_plus_one_cpu},
    .n_buffers = 1,
    .modes = {TSR_RW},
};
static const tsr_codelet_t accumulate_cl = {
    .name = "accumulate",
    .impl = {[TSR_DEVICE_CPU] = accumulate_cpu},
    .n_buffers = 2,
    .modes = {TSR_R, TSR_RW},
};

static int check(tsr_status_t st, const char *what)
{
    if (st != TSR_OK) {
        fprintf(stderr, "consumer: %s failed: %s (%s)\n", what, tsr_status_str(st),
                tsr_last_error());
        return 1;
    }
    return 0;
}

static int submit(tsr_runtime_t *rt, const tsr_codelet_t *cl, tsr_data_t *const *handles,
                  const void *arg, size_t arg_size, tsr_future_t **future_out)
{
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;

    desc.codelet = cl;
    desc.handles = handles;
    desc.n_handles = (uint32_t)cl->n_buffers;
    desc.arg = arg;
    desc.arg_size = arg_size;
    return check(tsr_task_submit(rt, &desc, future_out), cl->name);
}

/* Submit fill -> twice_plus_one -> accumulate per chunk; the runtime orders them. */
static int run_graph(tsr_runtime_t *rt, tsr_data_t **chunks, tsr_data_t *total_h)
{
    tsr_future_t *last = NULL;
    int failed = 0;

    for (uint64_t c = 0; c < N_CHUNKS && !failed; c++) {
        uint64_t first = c * CHUNK_LEN;
        tsr_data_t *pair[2] = {chunks[c], total_h};

        failed |= submit(rt, &fill_cl, &chunks[c], &first, sizeof(first), NULL);
        failed |= submit(rt, &twice_cl, &chunks[c], NULL, 0, NULL);
        tsr_future_release(last);
        last = NULL;
        failed |= submit(rt, &accumulate_cl, pair, NULL, 0, &last);
    }
    if (last != NULL) {
        failed |= check(tsr_future_wait(last), "tsr_future_wait");
        tsr_future_release(last);
    }
    failed |= check(tsr_wait_all(rt), "tsr_wait_all");
    return failed;
}

int main(void)
{
    static double data[N_CHUNKS][CHUNK_LEN];
    double total = 0.0;
    /* sum over k < N of (2k + 1) is N^2, exact in a double. */
    const double expected = (double)N_CHUNKS * CHUNK_LEN * N_CHUNKS * CHUNK_LEN;
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_runtime_t *rt = NULL;
    tsr_data_t *chunks[N_CHUNKS] = {NULL};
    tsr_data_t *total_h = NULL;
    int failed = 0;

    if (strcmp(tsr_version(), TSR_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: library %s, headers %s\n", tsr_version(), TSR_VERSION_STRING);
        return 1;
    }
    cfg.n_cpu_workers = 2;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    if (check(tsr_init(&cfg, &rt), "tsr_init")) {
        return 1;
    }
    for (int c = 0; c < N_CHUNKS; c++) {
        failed |=
            check(tsr_data_register(rt, data[c], sizeof(data[c]), &chunks[c]), "tsr_data_register");
    }
    failed |= check(tsr_data_register(rt, &total, sizeof(total), &total_h), "tsr_data_register");
    if (!failed) {
        failed |= run_graph(rt, chunks, total_h);
    }
    for (int c = 0; c < N_CHUNKS; c++) {
        tsr_data_unregister(chunks[c]);
    }
    tsr_data_unregister(total_h);
    tsr_shutdown(rt);

    if (!failed && (total != expected ||
                    data[N_CHUNKS - 1][CHUNK_LEN - 1] != 2.0 * (N_CHUNKS * CHUNK_LEN - 1) + 1.0)) {
        fprintf(stderr, "consumer: total %.1f, expected %.1f\n", total, expected);
        failed = 1;
    }
    printf("consumer: tessera %s, %d tasks, total %.1f: %s\n", tsr_version(), 3 * N_CHUNKS, total,
           failed ? "FAIL" : "ok");
    return failed ? 1 : 0;
}
