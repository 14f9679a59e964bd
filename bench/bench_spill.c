/* tessera-bench spill: data larger than the memory it is processed in, on the
 * device tier (device memory to host) and the disk tier (host memory to the spill
 * directory).
 *
 * Cases, in the order they run (each described at the top of its file):
 *
 * `peak_rss` (bench_spill_rss.c; ratio_to_limit, lower better): the resident set
 *   of the out-of-core pipeline below, over its host limit L; floor_value 1.1.
 * `stream_4x_device` (bench_spill_stream.c; GBps, higher better): fill (CPU),
 *   x = 2x + 1 on the accelerator, sum (CPU) over 4x the accelerator's memory: a sim
 *   device of 64 MiB (quick 16 MiB), floor a memcpy of the dataset; with --device
 *   cuda one GPU under a device_memory_limit of 1 GiB (quick 64 MiB), floor the
 *   pinned cudaMemcpy bandwidth of the host link, both measured in the same run.
 * `disk_write`, `disk_read` (bench_spill_disk.c; GBps, higher better), each with
 *   `compressed` 0 and 1: the spill I/O of the pipeline below, floor plain pwrite
 *   and pread of the same chunks to the same directory.
 *
 * This file: the entry point, the chunk data and kernels shared by the cases, the
 * spill directory, and the out-of-core pipeline of peak_rss and the disk cases:
 * a CPU-only runtime with host limit L (256 MiB; quick 32 MiB) and spill_dir a
 * fresh mkdtemp directory under $TMPDIR (else /tmp), removed after. Fill tasks
 * create 3 x L in chunks of 8 MiB (quick 2 MiB); tsr_wait_all; then one task per
 * chunk reads it and writes its sum to its own registered slot (independent, so
 * the I/O thread can read ahead); the sums are checked.
 *
 * One untimed warm-up pipeline before the runs of the stream and disk cases; each
 * run of the disk and peak_rss cases starts its own runtime. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_spill.h"

#define DISK_LIMIT_BYTES (256 * MIB)
#define DISK_LIMIT_BYTES_QUICK (32 * MIB)
#define DISK_CHUNK_BYTES (8 * MIB)
#define DISK_CHUNK_BYTES_QUICK (2 * MIB)
#define DISK_FACTOR 3 /* dataset = DISK_FACTOR x host limit */

#define PATTERN_WORDS 512 /* 4 KiB period of the compressible data */

/* ---- Data and kernels ----------------------------------------------------- */

/* splitmix64's finaliser. */
static inline uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void spill_fill_words(uint64_t *w, const struct fill_arg *a)
{
    uint64_t first = a->chunk * a->n_words;

    switch (a->kind) {
    case FILL_LINEAR:
        for (uint64_t i = 0; i < a->n_words; i++) {
            w[i] = (first + i) * LINEAR_MUL;
        }
        break;
    case FILL_RANDOM:
        for (uint64_t i = 0; i < a->n_words; i++) {
            w[i] = mix64(first + i);
        }
        break;
    default:
        for (uint64_t i = 0; i < a->n_words; i++) {
            w[i] = mix64(i % PATTERN_WORDS) + a->chunk;
        }
        break;
    }
}

uint64_t spill_sum_words(const uint64_t *w, size_t n)
{
    uint64_t s = 0;

    for (size_t i = 0; i < n; i++) {
        s += w[i];
    }
    return s;
}

/* bufs[0] (W, created with tsr_data_create): allocate the chunk and fill it. */
static tsr_status_t fill_kernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const struct fill_arg *a = arg;
    void *p = NULL;
    tsr_status_t st = tsr_task_ctx_alloc(ctx, 0, (size_t)a->n_words * sizeof(uint64_t), &p);

    (void)bufs;
    if (st != TSR_OK) {
        tsr_task_ctx_fail(ctx, "fill: tsr_task_ctx_alloc of chunk %llu: %s",
                          (unsigned long long)a->chunk, tsr_status_str(st));
        return st;
    }
    spill_fill_words(p, a);
    return TSR_OK;
}

/* bufs[0] (R): a chunk; bufs[1] (RW): one uint64 that gets the chunk's sum added. */
static tsr_status_t sum_kernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    uint64_t *acc = bufs[1].ptr;

    (void)ctx;
    (void)arg;
    *acc += spill_sum_words(bufs[0].ptr, bufs[0].n_bytes / sizeof(uint64_t));
    return TSR_OK;
}

const tsr_codelet_t spill_fill_cl = {
    .name = "spill_fill",
    .impl = {[TSR_DEVICE_CPU] = fill_kernel},
    .n_buffers = 1,
    .modes = {TSR_W},
};

const tsr_codelet_t spill_sum_cl = {
    .name = "spill_sum",
    .impl = {[TSR_DEVICE_CPU] = sum_kernel},
    .n_buffers = 2,
    .modes = {TSR_R, TSR_RW},
};

tsr_status_t spill_submit(tsr_runtime_t *rt, const tsr_codelet_t *cl, tsr_data_t *const *handles,
                          const void *arg, size_t arg_size, tsr_pin_t pin, uint32_t pin_value)
{
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;

    d.codelet = cl;
    d.handles = handles;
    d.n_handles = (uint32_t)cl->n_buffers;
    d.arg = arg;
    d.arg_size = arg_size;
    d.pin = pin;
    d.pin_value = pin_value;
    return tsr_task_submit(rt, &d, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

double spill_median(double *v, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (!isnan(v[i])) {
            v[k++] = v[i];
        }
    }
    if (k == 0) {
        return NAN;
    }
    qsort(v, k, sizeof(*v), cmp_double);
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

int spill_wants(const struct bench_opts *opts, const char *name)
{
    return opts->case_filter == NULL || strcmp(opts->case_filter, name) == 0;
}

/* ---- Spill directory --------------------------------------------------------- */

int spill_make_dir(char *buf, size_t n)
{
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || tmp[0] == '\0') {
        tmp = "/tmp";
    }
    snprintf(buf, n, "%s/tessera-bench-spill-XXXXXX", tmp);
    if (mkdtemp(buf) == NULL) {
        fprintf(stderr, "tessera-bench: spill: cannot create a directory %s: %s\n", buf,
                strerror(errno));
        return 1;
    }
    return 0;
}

void spill_remove_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    struct stat sb;

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (depth > 0) {
                spill_remove_tree(path, depth - 1);
            }
        } else {
            unlink(path);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (rmdir(dir) != 0) {
        fprintf(stderr, "tessera-bench: spill: %s not removed: %s\n", dir, strerror(errno));
    }
}

/* ---- Out-of-core pipeline (disk cases, peak_rss) ------------------------------------ */

/* Slots of the per-chunk sums, a cache line apart. */
#define SLOT_WORDS 8

/* The handles of one pipeline: a created chunk and a registered sum slot each. */
struct ooc_handles {
    tsr_data_t **chunks;
    tsr_data_t **slots;
    uint64_t *sums; /* SLOT_WORDS per chunk */
    size_t n_made;  /* chunks (and slots) made */
};

static int ooc_submit(tsr_runtime_t *rt, const struct ooc_params *p, tsr_data_t **chunks,
                      tsr_data_t **slots, double *seconds_out)
{
    double t0 = bench_now_s();
    tsr_status_t st = TSR_OK;

    for (size_t c = 0; c < p->n_chunks && st == TSR_OK; c++) {
        struct fill_arg a = {c, p->chunk_bytes / sizeof(uint64_t), p->kind};

        st = spill_submit(rt, &spill_fill_cl, &chunks[c], &a, sizeof(a), TSR_PIN_NONE, 0);
    }
    st = st == TSR_OK ? tsr_wait_all(rt) : st;
    for (size_t c = 0; c < p->n_chunks && st == TSR_OK; c++) {
        tsr_data_t *pair[2] = {chunks[c], slots[c]};

        st = spill_submit(rt, &spill_sum_cl, pair, NULL, 0, TSR_PIN_NONE, 0);
    }
    if (st != TSR_OK) {
        bench_print_error("spill: submit", st);
    }
    tsr_wait_all(rt);
    *seconds_out = bench_now_s() - t0;
    return st != TSR_OK;
}

/* Every chunk and slot of the pipeline in `rt`: 0, or 1 after saying why (the
 * ones made are in h->n_made, for ooc_handles_free). */
static int ooc_handles_make(tsr_runtime_t *rt, const struct ooc_params *p, struct ooc_handles *h)
{
    tsr_status_t st;

    for (; h->n_made < p->n_chunks; h->n_made++) {
        size_t c = h->n_made;

        st = tsr_data_register(rt, &h->sums[c * SLOT_WORDS], sizeof(uint64_t), &h->slots[c]);
        if (st == TSR_OK) {
            st = tsr_data_create(rt, &h->chunks[c]);
            if (st != TSR_OK) {
                tsr_data_unregister(h->slots[c]);
            }
        }
        if (st != TSR_OK) {
            bench_print_error("spill: handles", st);
            return 1;
        }
    }
    return 0;
}

static void ooc_handles_unregister(struct ooc_handles *h)
{
    for (size_t c = 0; c < h->n_made; c++) {
        tsr_data_unregister(h->chunks[c]);
        tsr_data_unregister(h->slots[c]);
    }
}

static void ooc_handles_free(struct ooc_handles *h)
{
    free(h->chunks);
    free(h->slots);
    free(h->sums);
}

/* Every chunk's sum against the expected one; a difference marks `out` wrong. */
static void ooc_check(const struct ooc_params *p, const uint64_t *sums, struct ooc_result *out)
{
    for (size_t c = 0; c < p->n_chunks; c++) {
        if (sums[c * SLOT_WORDS] != p->expected[c]) {
            snprintf(out->note, sizeof(out->note),
                     "wrong result: chunk %zu sums to %llu, expected %llu", c,
                     (unsigned long long)sums[c * SLOT_WORDS], (unsigned long long)p->expected[c]);
            fprintf(stderr, "tessera-bench: spill: %s\n", out->note);
            out->is_wrong = 1;
            return;
        }
    }
}

static void ooc_config(const struct ooc_params *p, const char *dir, tsr_config_t *cfg)
{
    cfg->flags = TSR_CONFIG_F_NO_ENV;
    cfg->n_cpu_workers = p->n_workers;
    cfg->policy = p->policy;
    cfg->n_cuda_devices = -1; /* CPU only (and no CUDA start-up in the RSS) */
    cfg->host_memory_limit.bytes = p->limit;
    cfg->spill_dir = dir;
    cfg->spill_compression = p->is_lz4 ? TSR_SPILL_COMPRESS_LZ4 : TSR_SPILL_COMPRESS_NONE;
}

int spill_ooc_once(const struct ooc_params *p, const char *dir, int sample_rss,
                   struct ooc_result *out)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_runtime_t *rt = NULL;
    struct ooc_handles h = {calloc(p->n_chunks, sizeof(tsr_data_t *)),
                            calloc(p->n_chunks, sizeof(tsr_data_t *)),
                            calloc(p->n_chunks * SLOT_WORDS, sizeof(uint64_t)), 0};
    struct spill_rss_sampler rs;
    tsr_status_t st;
    int err = 0;

    memset(out, 0, sizeof(*out));
    out->rss_base = -1;
    out->rss_peak = -1;
    if (h.chunks == NULL || h.slots == NULL || h.sums == NULL) {
        fprintf(stderr, "tessera-bench: spill: out of memory\n");
        ooc_handles_free(&h);
        return 1;
    }
    ooc_config(p, dir, &cfg);
    if (sample_rss) {
        out->rss_base = spill_rss_start(&rs);
    }
    st = tsr_init(&cfg, &rt);
    if (st != TSR_OK) {
        err = st == TSR_ENOTSUP && p->is_lz4 ? 2 : 1;
        if (err == 1) {
            bench_print_error("spill: tsr_init", st);
        }
    }
    err = err == 0 ? ooc_handles_make(rt, p, &h) : err;
    if (err == 0) {
        err = ooc_submit(rt, p, h.chunks, h.slots, &out->wall_s);
        err = err != 0 || bench_check_tasks(rt, "spill") != 0;
        tsr_runtime_spill_stats(rt, &out->spill);
        tsr_runtime_mem_stats(rt, 0, &out->host);
    }
    if (sample_rss) {
        out->rss_peak = spill_rss_stop(&rs);
    }
    ooc_handles_unregister(&h);
    tsr_shutdown(rt);
    if (err == 0) {
        ooc_check(p, h.sums, out);
    }
    ooc_handles_free(&h);
    return err;
}

uint64_t *spill_ooc_setup(const struct bench_opts *opts, const tsr_config_t *resolved,
                          uint32_t kind, int is_lz4, struct ooc_params *p)
{
    uint64_t *expected;
    uint64_t *buf;

    memset(p, 0, sizeof(*p));
    p->limit = opts->is_quick ? DISK_LIMIT_BYTES_QUICK : DISK_LIMIT_BYTES;
    p->chunk_bytes = opts->is_quick ? DISK_CHUNK_BYTES_QUICK : DISK_CHUNK_BYTES;
    p->n_chunks = DISK_FACTOR * (size_t)p->limit / p->chunk_bytes;
    p->kind = kind;
    p->is_lz4 = is_lz4;
    p->n_workers = resolved->n_cpu_workers;
    p->policy = resolved->policy;
    expected = calloc(p->n_chunks, sizeof(*expected));
    buf = malloc(p->chunk_bytes);
    for (size_t c = 0; expected != NULL && buf != NULL && c < p->n_chunks; c++) {
        struct fill_arg a = {c, p->chunk_bytes / sizeof(uint64_t), kind};

        spill_fill_words(buf, &a);
        expected[c] = spill_sum_words(buf, a.n_words);
    }
    if (buf == NULL) {
        free(expected);
        expected = NULL;
    }
    free(buf);
    p->expected = expected;
    return expected;
}

void spill_ooc_describe(struct bench_record *rec, const struct ooc_params *p, const char *device)
{
    bench_record_add_str(rec, "device", device);
    bench_record_add_int(rec, "host_limit_bytes", (int64_t)p->limit);
    bench_record_add_int(rec, "dataset_bytes", (int64_t)(p->chunk_bytes * p->n_chunks));
    bench_record_add_int(rec, "chunk_bytes", (int64_t)p->chunk_bytes);
}

/* ---- Entry point ------------------------------------------------------------------- */

int bench_spill_run(const struct bench_opts *opts)
{
    static const char *const names[] = {"peak_rss", "stream_4x_device", "disk_write", "disk_read"};
    tsr_config_t resolved;
    int known = opts->case_filter == NULL;
    int err = 0;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        known = known || strcmp(opts->case_filter, names[i]) == 0;
    }
    if (!known) {
        fprintf(stderr,
                "tessera-bench: spill has no case '%s' (peak_rss, stream_4x_device, disk_write, "
                "disk_read)\n",
                opts->case_filter);
        return 1;
    }
    if (bench_resolve(opts, &resolved) != 0) {
        return 1;
    }
    /* peak_rss first: the heap has seen the least before it. */
    if (spill_wants(opts, "peak_rss")) {
        err |= spill_peak_rss_case(opts, &resolved);
    }
    if (spill_wants(opts, "stream_4x_device")) {
        err |= spill_stream_case(opts, &resolved);
    }
    if (spill_wants(opts, "disk_write") || spill_wants(opts, "disk_read")) {
        err |= spill_disk_case(opts, &resolved, 0);
        err |= spill_disk_case(opts, &resolved, 1);
    }
    return err;
}
