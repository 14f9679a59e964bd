/* tessera-bench spill: data larger than the memory it is processed in, on the
 * device tier (device memory to host) and the disk tier (host memory to the spill
 * directory).
 *
 * Cases, in the order they run:
 *
 * `peak_rss` (ratio_to_limit, lower better): the out-of-core pipeline of the disk
 *   cases (uncompressed random data, 3 x L through a host limit of L) while a helper
 *   thread samples the process's resident set (/proc/self/statm) every 1 ms. Value:
 *   (largest sample - the resident set just before tsr_init, after malloc_trim) / L;
 *   floor_value 1.1, the target (limit + 10%); `accounted_peak_ratio` is the peak the
 *   runtime accounted for host replicas (tsr_runtime_mem_stats node 0) / L.
 *
 * `stream_4x_device` (GBps, higher better): one sim device of D bytes (64 MiB; quick
 *   16 MiB), a dataset of 4 x D in 4 MiB chunks: per chunk a fill task on the CPU
 *   (tsr_data_create + tsr_task_ctx_alloc, uint64 words), x = 2x + 1 on the sim
 *   device, and a CPU task adding the chunk's sum into one registered accumulator
 *   (so the sums are chained). Timed: first submit to tsr_wait_all return; value =
 *   dataset bytes / that time. floor_value: single-thread memcpy of the dataset once
 *   in the same chunks, same run (sim copies are memcpy; the pipeline copies each byte
 *   to the device and back, so the copy bound proper is half of it). The sum is
 *   checked against a sequential computation: a wrong one gives value null, a note,
 *   and exit status 1. With --device cuda: a note on stderr and no record (this
 *   program has no CUDA kernel for the elementwise step).
 *
 * `disk_write`, `disk_read` (GBps, higher better), each twice: `compressed` 0 (random
 *   data, spill_compression NONE) and 1 (a repeating 4 KiB pattern, LZ4; value null
 *   and a note when Tessera was built without lz4). CPU-only runtime, host limit L
 *   (256 MiB; quick 32 MiB), spill_dir a fresh mkdtemp directory under $TMPDIR (else
 *   /tmp), removed after. Fill tasks create 3 x L in chunks of 8 MiB (quick 2 MiB);
 *   tsr_wait_all; then one task per chunk reads it and writes its sum to its own
 *   registered slot (independent, so the I/O thread can read ahead); the sums are
 *   checked. Values from tsr_runtime_spill_stats: bytes_written / write_ns and
 *   bytes_read / read_ns (the I/O time of the chunks: compression or decompression
 *   and checksums included). floor_value: plain pwrite then pread, in the same run,
 *   of the same number of chunks of the same size and kind of data, one file per
 *   chunk in the same directory (open + pwrite + close, no fsync; then open + pread +
 *   close into warm buffers), as the runtime writes them. Both sides go through the
 *   page cache: on a machine with free memory these are memory-speed figures.
 *
 * One untimed warm-up pipeline before the runs of the stream and disk cases; each
 * run of the disk and peak_rss cases starts its own runtime. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim: give freed heap back before the RSS baseline */
#endif

#include "bench.h"

#define MIB ((size_t)1 << 20)

#define STREAM_DEV_BYTES (64 * MIB)
#define STREAM_DEV_BYTES_QUICK (16 * MIB)
#define STREAM_CHUNK_BYTES (4 * MIB)
#define STREAM_FACTOR 4 /* dataset = STREAM_FACTOR x device memory */

#define DISK_LIMIT_BYTES (256 * MIB)
#define DISK_LIMIT_BYTES_QUICK (32 * MIB)
#define DISK_CHUNK_BYTES (8 * MIB)
#define DISK_CHUNK_BYTES_QUICK (2 * MIB)
#define DISK_FACTOR 3 /* dataset = DISK_FACTOR x host limit */

#define PEAK_RSS_TARGET 1.1    /* limit + 10% */
#define RSS_SAMPLE_NS 1000000L /* 1 ms */
#define FLOOR_POOL 8           /* distinct source buffers of the pwrite floor */
#define PATTERN_WORDS 512      /* 4 KiB period of the compressible data */
#define LINEAR_MUL 0x9e3779b97f4a7c15ull

/* ---- Data and kernels ----------------------------------------------------- */

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

/* splitmix64's finaliser. */
static inline uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fill_words(uint64_t *w, const struct fill_arg *a)
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

static uint64_t sum_words(const uint64_t *w, size_t n)
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
    fill_words(p, a);
    return TSR_OK;
}

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

/* bufs[0] (R): a chunk; bufs[1] (RW): one uint64 that gets the chunk's sum added. */
static tsr_status_t sum_kernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    uint64_t *acc = bufs[1].ptr;

    (void)ctx;
    (void)arg;
    *acc += sum_words(bufs[0].ptr, bufs[0].n_bytes / sizeof(uint64_t));
    return TSR_OK;
}

static const tsr_codelet_t fill_cl = {
    .name = "spill_fill",
    .impl = {[TSR_DEVICE_CPU] = fill_kernel},
    .n_buffers = 1,
    .modes = {TSR_W},
};

static const tsr_codelet_t scale_cl = {
    .name = "spill_scale",
    .impl = {[TSR_DEVICE_CPU] = scale_kernel}, /* sim devices run the CPU implementation */
    .n_buffers = 1,
    .modes = {TSR_RW},
};

static const tsr_codelet_t sum_cl = {
    .name = "spill_sum",
    .impl = {[TSR_DEVICE_CPU] = sum_kernel},
    .n_buffers = 2,
    .modes = {TSR_R, TSR_RW},
};

static tsr_status_t submit(tsr_runtime_t *rt, const tsr_codelet_t *cl, tsr_data_t *const *handles,
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

/* Median of n samples, ignoring NANs; NAN when there are none. Reorders `v`. */
static double median_of(double *v, size_t n)
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

static int wants(const struct bench_opts *opts, const char *name)
{
    return opts->case_filter == NULL || strcmp(opts->case_filter, name) == 0;
}

/* ---- stream_4x_device ------------------------------------------------------ */

struct stream_state {
    tsr_runtime_t *rt;
    uint32_t dev;  /* the sim device */
    uint32_t node; /* its memory node */
    size_t n_chunks;
    size_t chunk_words;
    uint64_t expected; /* sum of 2x + 1 over the dataset */
};

/* One pipeline: `*seconds_out` from the first submit to tsr_wait_all's return,
 * `*sum_out` the accumulator. Handles are made before and freed after the timing. */
static int stream_once(const struct stream_state *s, double *seconds_out, uint64_t *sum_out)
{
    tsr_data_t **chunks = calloc(s->n_chunks, sizeof(tsr_data_t *));
    uint64_t acc = 0;
    tsr_data_t *acc_h = NULL;
    tsr_status_t st = chunks != NULL ? TSR_OK : TSR_ENOMEM;
    size_t n_made = 0;
    double t0;

    st = st == TSR_OK ? tsr_data_register(s->rt, &acc, sizeof(acc), &acc_h) : st;
    for (; st == TSR_OK && n_made < s->n_chunks; n_made++) {
        st = tsr_data_create(s->rt, &chunks[n_made]);
        if (st != TSR_OK) {
            break;
        }
    }
    t0 = bench_now_s();
    for (size_t c = 0; c < s->n_chunks && st == TSR_OK; c++) {
        struct fill_arg a = {c, s->chunk_words, FILL_LINEAR};
        tsr_data_t *pair[2] = {chunks[c], acc_h};

        st = submit(s->rt, &fill_cl, &chunks[c], &a, sizeof(a), TSR_PIN_KIND, TSR_DEVICE_CPU);
        st = st == TSR_OK ? submit(s->rt, &scale_cl, &chunks[c], NULL, 0, TSR_PIN_DEVICE, s->dev)
                          : st;
        st =
            st == TSR_OK ? submit(s->rt, &sum_cl, pair, NULL, 0, TSR_PIN_KIND, TSR_DEVICE_CPU) : st;
    }
    if (st != TSR_OK) {
        bench_print_error("spill stream_4x_device: setup", st);
    }
    tsr_wait_all(s->rt);
    *seconds_out = bench_now_s() - t0;
    for (size_t c = 0; c < n_made; c++) {
        tsr_data_unregister(chunks[c]);
    }
    tsr_data_unregister(acc_h); /* leaves the latest sum in acc */
    free(chunks);
    *sum_out = acc;
    return st != TSR_OK || bench_check_tasks(s->rt, "spill stream_4x_device") != 0;
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
        median = median_of(gbps, n_runs);
    }
    free(a);
    free(b);
    free(gbps);
    return median;
}

static uint64_t stream_expected(size_t n_words)
{
    uint64_t s = 0;

    for (uint64_t g = 0; g < n_words; g++) {
        s += g * LINEAR_MUL * 2 + 1;
    }
    return s;
}

static int stream_case(const struct bench_opts *opts, const tsr_config_t *resolved)
{
    size_t dev_bytes = opts->is_quick ? STREAM_DEV_BYTES_QUICK : STREAM_DEV_BYTES;
    size_t n_bytes = STREAM_FACTOR * dev_bytes;
    double *gbps = calloc(opts->n_runs, sizeof(*gbps));
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_copy_stats_t h2d0 = {0, 0}, h2d1 = {0, 0}, d2h0 = {0, 0}, d2h1 = {0, 0};
    tsr_runtime_stats_t rs = TSR_RUNTIME_STATS_INIT;
    tsr_mem_stats_t dm0, dm1;
    struct stream_state s;
    tsr_device_info_t info;
    struct bench_record rec;
    char note[160] = "";
    uint64_t sum = 0;
    double sec = 0.0;
    tsr_status_t st;
    int err = 0;

    if (opts->device == BENCH_DEVICE_CUDA) {
        fprintf(stderr,
                "tessera-bench: spill stream_4x_device: no CUDA kernel for its "
                "elementwise step in tessera-bench; not measured on --device cuda\n");
        free(gbps);
        return 0;
    }
    memset(&s, 0, sizeof(s));
    memset(&dm0, 0, sizeof(dm0));
    memset(&dm1, 0, sizeof(dm1));
    s.chunk_words = STREAM_CHUNK_BYTES / sizeof(uint64_t);
    s.n_chunks = n_bytes / STREAM_CHUNK_BYTES;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = resolved->n_cpu_workers;
    cfg.policy = opts->policy;
    cfg.n_sim_devices = 1;
    cfg.sim_mem_bytes = dev_bytes;
    cfg.n_cuda_devices = -1; /* the sim device alone */
    st = gbps != NULL ? tsr_init(&cfg, &s.rt) : TSR_ENOMEM;
    if (st != TSR_OK) {
        bench_print_error("spill stream_4x_device: tsr_init", st);
        free(gbps);
        return 1;
    }
    if (bench_device_find(s.rt, TSR_DEVICE_SIM, 0, &s.dev, &info) != 0) {
        fprintf(stderr, "tessera-bench: spill stream_4x_device: the runtime has no sim device\n");
        tsr_shutdown(s.rt);
        free(gbps);
        return 1;
    }
    s.node = info.mem_node;
    s.expected = stream_expected(s.n_chunks * s.chunk_words);
    err = stream_once(&s, &sec, &sum); /* warm-up */
    tsr_runtime_copy_stats(s.rt, 0, s.node, &h2d0);
    tsr_runtime_copy_stats(s.rt, s.node, 0, &d2h0);
    tsr_runtime_mem_stats(s.rt, s.node, &dm0);
    for (uint32_t r = 0; r < opts->n_runs && err == 0 && sum == s.expected; r++) {
        err = stream_once(&s, &sec, &sum);
        gbps[r] = (double)n_bytes / sec / 1e9;
    }
    tsr_runtime_copy_stats(s.rt, 0, s.node, &h2d1);
    tsr_runtime_copy_stats(s.rt, s.node, 0, &d2h1);
    tsr_runtime_mem_stats(s.rt, s.node, &dm1);
    tsr_runtime_stats(s.rt, &rs);
    tsr_shutdown(s.rt);
    if (err != 0) {
        free(gbps);
        return 1;
    }
    if (sum != s.expected) {
        snprintf(note, sizeof(note), "wrong result: sum %llu, expected %llu",
                 (unsigned long long)sum, (unsigned long long)s.expected);
        fprintf(stderr, "tessera-bench: spill stream_4x_device: %s\n", note);
        err = 1;
    }
    bench_record_init(&rec, "spill", "stream_4x_device", "GBps", "GB/s", "higher");
    rec.samples = gbps;
    rec.n_samples = err == 0 ? opts->n_runs : 0;
    rec.floor_value = memcpy_chunks_gbps(STREAM_CHUNK_BYTES, s.n_chunks, opts->n_runs);
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_record_add_str(&rec, "device", "sim:1");
    bench_record_add_str(&rec, "floor", "memcpy");
    bench_record_add_str(&rec, "floor_timed",
                         "single-thread memcpy of the dataset once, same chunks; the pipeline "
                         "copies each byte to the device and back, so its copy bound is half");
    bench_record_add_int(&rec, "dataset_bytes", (int64_t)n_bytes);
    bench_record_add_int(&rec, "chunk_bytes", (int64_t)STREAM_CHUNK_BYTES);
    bench_record_add_int(&rec, "device_mem_bytes", (int64_t)dev_bytes);
    bench_record_add_int(&rec, "tasks", (int64_t)(3 * s.n_chunks));
    bench_record_add_num(&rec, "h2d_bytes_per_run",
                         (double)(h2d1.n_bytes - h2d0.n_bytes) / (double)opts->n_runs);
    bench_record_add_num(&rec, "d2h_bytes_per_run",
                         (double)(d2h1.n_bytes - d2h0.n_bytes) / (double)opts->n_runs);
    /* Replicas evicted from the device are written back outside the copy counts. */
    bench_record_add_num(&rec, "evicted_d2h_bytes_per_run",
                         (double)(dm1.spilled_bytes - dm0.spilled_bytes) / (double)opts->n_runs);
    bench_record_add_str(&rec, "policy", tsr_sched_policy_name(rs.policy));
    bench_record_add_str(&rec, "timed",
                         "first submit to wait_all return: fill (CPU), 2x+1 (sim), sum (CPU)");
    bench_report_emit(opts->report, &rec);
    free(gbps);
    return err;
}

/* ---- Spill directory --------------------------------------------------------- */

static int make_spill_dir(char *buf, size_t n)
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

/* Remove `dir` and what is in it, `depth` levels of directories down. */
static void remove_tree(const char *dir, int depth)
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
                remove_tree(path, depth - 1);
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

/* ---- The pwrite / pread floor ------------------------------------------------ */

/* pwrite (is_write) or pread all n bytes at offset 0, retrying short transfers. */
static int pio_all(int fd, char *p, size_t n, int is_write)
{
    off_t off = 0;

    while (n > 0) {
        ssize_t k = is_write ? pwrite(fd, p, n, off) : pread(fd, p, n, off);

        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return -1;
        }
        p += k;
        off += k;
        n -= (size_t)k;
    }
    return 0;
}

/* n_write files of chunk_bytes in `dir` (open + pwrite + close each), then n_read
 * of them read back (open + pread + close), then removed; GB/s of each phase
 * (NAN for a phase with nothing to do). Returns 0, or 1 after saying why. */
static int disk_floor(const char *dir, size_t chunk_bytes, uint64_t n_write, uint64_t n_read,
                      uint32_t kind, double *write_gbps, double *read_gbps)
{
    char *pool[FLOOR_POOL] = {NULL};
    char path[4200];
    const char *what = NULL;
    double t0;
    int err = 0;

    *write_gbps = NAN;
    *read_gbps = NAN;
    if (n_write == 0) {
        return 0;
    }
    for (uint32_t b = 0; b < FLOOR_POOL && err == 0; b++) {
        struct fill_arg a = {b, chunk_bytes / sizeof(uint64_t), kind};

        pool[b] = malloc(chunk_bytes);
        err = pool[b] == NULL;
        if (err == 0) {
            fill_words((uint64_t *)(void *)pool[b], &a);
        }
    }
    t0 = bench_now_s();
    for (uint64_t i = 0; i < n_write && err == 0; i++) {
        int fd;

        snprintf(path, sizeof(path), "%s/floor-%llu.chunk", dir, (unsigned long long)i);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        err = fd < 0 || pio_all(fd, pool[i % FLOOR_POOL], chunk_bytes, 1) != 0;
        what = "pwrite";
        err = (fd >= 0 && close(fd) != 0) || err;
    }
    if (err == 0) {
        *write_gbps = (double)(chunk_bytes * n_write) / (bench_now_s() - t0) / 1e9;
    }
    t0 = bench_now_s();
    for (uint64_t i = 0; i < n_read && err == 0; i++) {
        int fd;

        snprintf(path, sizeof(path), "%s/floor-%llu.chunk", dir, (unsigned long long)(i % n_write));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        err = fd < 0 || pio_all(fd, pool[i % FLOOR_POOL], chunk_bytes, 0) != 0;
        what = "pread";
        err = (fd >= 0 && close(fd) != 0) || err;
    }
    if (err == 0 && n_read > 0) {
        *read_gbps = (double)(chunk_bytes * n_read) / (bench_now_s() - t0) / 1e9;
    }
    if (err != 0) {
        fprintf(stderr, "tessera-bench: spill: floor %s of %s failed: %s\n",
                what != NULL ? what : "malloc", path, strerror(errno));
    }
    for (uint64_t i = 0; i < n_write; i++) {
        snprintf(path, sizeof(path), "%s/floor-%llu.chunk", dir, (unsigned long long)i);
        unlink(path);
    }
    for (uint32_t b = 0; b < FLOOR_POOL; b++) {
        free(pool[b]);
    }
    return err;
}

/* ---- Resident set sampler ------------------------------------------------------ */

struct rss_sampler {
    pthread_t thread;
    int fd;    /* /proc/self/statm */
    long page; /* bytes per page */
    atomic_int stop;
    int64_t peak; /* largest sample (bytes) */
};

/* Resident bytes now, or -1. */
static int64_t rss_read(int fd, long page)
{
    char buf[128];
    unsigned long long size = 0;
    unsigned long long res = 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &size, &res) != 2) {
        return -1;
    }
    return (int64_t)res * page;
}

static void *rss_main(void *arg)
{
    struct rss_sampler *s = arg;
    struct timespec pause = {0, RSS_SAMPLE_NS};

    for (;;) {
        int64_t v = rss_read(s->fd, s->page);
        int stop = atomic_load(&s->stop);

        s->peak = v > s->peak ? v : s->peak;
        if (stop) {
            break;
        }
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/* Give freed heap memory back to the system, so that reusing it shows in the RSS. */
static void trim_heap(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* ---- Out-of-core pipeline (disk cases, peak_rss) ------------------------------------ */

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

/* Slots of the per-chunk sums, a cache line apart. */
#define SLOT_WORDS 8

static int ooc_submit(tsr_runtime_t *rt, const struct ooc_params *p, tsr_data_t **chunks,
                      tsr_data_t **slots, double *seconds_out)
{
    double t0 = bench_now_s();
    tsr_status_t st = TSR_OK;

    for (size_t c = 0; c < p->n_chunks && st == TSR_OK; c++) {
        struct fill_arg a = {c, p->chunk_bytes / sizeof(uint64_t), p->kind};

        st = submit(rt, &fill_cl, &chunks[c], &a, sizeof(a), TSR_PIN_NONE, 0);
    }
    st = st == TSR_OK ? tsr_wait_all(rt) : st;
    for (size_t c = 0; c < p->n_chunks && st == TSR_OK; c++) {
        tsr_data_t *pair[2] = {chunks[c], slots[c]};

        st = submit(rt, &sum_cl, pair, NULL, 0, TSR_PIN_NONE, 0);
    }
    if (st != TSR_OK) {
        bench_print_error("spill: submit", st);
    }
    tsr_wait_all(rt);
    *seconds_out = bench_now_s() - t0;
    return st != TSR_OK;
}

/* One pipeline in its own runtime spilling to `dir`. Returns 0, 1 after saying
 * why, or 2 when the runtime refused the compression (TSR_ENOTSUP: no lz4). */
static int ooc_once(const struct ooc_params *p, const char *dir, int sample_rss,
                    struct ooc_result *out)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_runtime_t *rt = NULL;
    tsr_data_t **chunks = calloc(p->n_chunks, sizeof(tsr_data_t *));
    tsr_data_t **slots = calloc(p->n_chunks, sizeof(tsr_data_t *));
    uint64_t *sums = calloc(p->n_chunks * SLOT_WORDS, sizeof(*sums));
    struct rss_sampler rs;
    int has_sampler = 0;
    size_t n_made = 0;
    tsr_status_t st;
    int err = 0;

    memset(out, 0, sizeof(*out));
    memset(&rs, 0, sizeof(rs));
    rs.fd = -1;
    out->rss_base = -1;
    out->rss_peak = -1;
    if (chunks == NULL || slots == NULL || sums == NULL) {
        fprintf(stderr, "tessera-bench: spill: out of memory\n");
        free(chunks);
        free(slots);
        free(sums);
        return 1;
    }
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = p->n_workers;
    cfg.policy = p->policy;
    cfg.n_cuda_devices = -1; /* CPU only (and no CUDA start-up in the RSS) */
    cfg.host_memory_limit.bytes = p->limit;
    cfg.spill_dir = dir;
    cfg.spill_compression = p->is_lz4 ? TSR_SPILL_COMPRESS_LZ4 : TSR_SPILL_COMPRESS_NONE;
    if (sample_rss) {
        rs.fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        rs.page = sysconf(_SC_PAGESIZE);
        trim_heap();
        out->rss_base = rs.fd >= 0 ? rss_read(rs.fd, rs.page) : -1;
        rs.peak = out->rss_base;
        has_sampler = out->rss_base >= 0 && pthread_create(&rs.thread, NULL, rss_main, &rs) == 0;
    }
    st = tsr_init(&cfg, &rt);
    if (st != TSR_OK) {
        err = st == TSR_ENOTSUP && p->is_lz4 ? 2 : 1;
        if (err == 1) {
            bench_print_error("spill: tsr_init", st);
        }
    }
    for (; err == 0 && n_made < p->n_chunks; n_made++) {
        st = tsr_data_register(rt, &sums[n_made * SLOT_WORDS], sizeof(uint64_t), &slots[n_made]);
        if (st == TSR_OK) {
            st = tsr_data_create(rt, &chunks[n_made]);
            if (st != TSR_OK) {
                tsr_data_unregister(slots[n_made]);
            }
        }
        if (st != TSR_OK) {
            bench_print_error("spill: handles", st);
            err = 1;
            break;
        }
    }
    if (err == 0) {
        err = ooc_submit(rt, p, chunks, slots, &out->wall_s);
        err = err != 0 || bench_check_tasks(rt, "spill") != 0;
        tsr_runtime_spill_stats(rt, &out->spill);
        tsr_runtime_mem_stats(rt, 0, &out->host);
    }
    if (has_sampler) {
        atomic_store(&rs.stop, 1);
        pthread_join(rs.thread, NULL);
        out->rss_peak = rs.peak;
    }
    if (rs.fd >= 0) {
        close(rs.fd);
    }
    for (size_t c = 0; c < n_made; c++) {
        tsr_data_unregister(chunks[c]);
        tsr_data_unregister(slots[c]);
    }
    tsr_shutdown(rt);
    for (size_t c = 0; err == 0 && c < p->n_chunks; c++) {
        if (sums[c * SLOT_WORDS] != p->expected[c]) {
            snprintf(out->note, sizeof(out->note),
                     "wrong result: chunk %zu sums to %llu, expected %llu", c,
                     (unsigned long long)sums[c * SLOT_WORDS], (unsigned long long)p->expected[c]);
            fprintf(stderr, "tessera-bench: spill: %s\n", out->note);
            out->is_wrong = 1;
            break;
        }
    }
    free(chunks);
    free(slots);
    free(sums);
    return err;
}

/* Sizes of the out-of-core cases, and the expected sums (NULL: out of memory). */
static uint64_t *ooc_setup(const struct bench_opts *opts, const tsr_config_t *resolved,
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

        fill_words(buf, &a);
        expected[c] = sum_words(buf, a.n_words);
    }
    if (buf == NULL) {
        free(expected);
        expected = NULL;
    }
    free(buf);
    p->expected = expected;
    return expected;
}

/* The fields every out-of-core record carries. */
static void ooc_describe(struct bench_record *rec, const struct ooc_params *p, const char *device)
{
    bench_record_add_str(rec, "device", device);
    bench_record_add_int(rec, "host_limit_bytes", (int64_t)p->limit);
    bench_record_add_int(rec, "dataset_bytes", (int64_t)(p->chunk_bytes * p->n_chunks));
    bench_record_add_int(rec, "chunk_bytes", (int64_t)p->chunk_bytes);
}

/* ---- disk_write, disk_read ----------------------------------------------------------- */

static void disk_emit(const struct bench_opts *opts, const struct ooc_params *p, const char *name,
                      const double *v, double floor_value, const double *ratio, uint32_t n_ok,
                      const struct ooc_result *last, const char *device, const char *note)
{
    struct bench_record rec;
    int is_write = strcmp(name, "disk_write") == 0;

    bench_record_init(&rec, "spill", name, "GBps", "GB/s", "higher");
    rec.samples = v;
    rec.n_samples = n_ok;
    rec.floor_value = floor_value;
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_record_add_int(&rec, "compressed", p->is_lz4);
    bench_record_add_str(&rec, "compression", p->is_lz4 ? "lz4" : "none");
    bench_record_add_str(&rec, "data", p->kind == FILL_PATTERN ? "repeating 4 KiB" : "random");
    ooc_describe(&rec, p, device);
    bench_record_add_num(&rec, "stored_ratio", bench_median(ratio, n_ok));
    bench_record_add_int(&rec, "n_writes", (int64_t)last->spill.n_writes);
    bench_record_add_int(&rec, "n_reads", (int64_t)last->spill.n_reads);
    bench_record_add_int(&rec, "n_read_ahead", (int64_t)last->spill.n_read_ahead);
    bench_record_add_str(&rec, "floor", is_write ? "pwrite" : "pread");
    bench_record_add_str(&rec, "timed",
                         is_write ? "spill stats: bytes_written / write_ns (I/O thread: "
                                    "compress, checksum, write)"
                                  : "spill stats: bytes_read / read_ns (read, checksum, "
                                    "decompress)");
    bench_record_add_str(&rec, "floor_timed",
                         is_write ? "open+pwrite+close per chunk file, no fsync, n_writes chunks"
                                  : "open+pread+close per chunk file, n_reads chunks");
    bench_report_emit(opts->report, &rec);
}

/* One run: pipeline, then the floor with the same counts, in a fresh directory. */
static int disk_run_once(const struct ooc_params *p, struct ooc_result *res, double *wr, double *rd,
                         double *wr_floor, double *rd_floor, double *ratio)
{
    char dir[4096];
    const tsr_spill_stats_t *sp = &res->spill;
    int err;

    if (make_spill_dir(dir, sizeof(dir)) != 0) {
        return 1;
    }
    err = ooc_once(p, dir, 0, res);
    if (err == 0) {
        *wr = sp->write_ns > 0 ? (double)sp->bytes_written / (double)sp->write_ns : NAN;
        *rd = sp->read_ns > 0 ? (double)sp->bytes_read / (double)sp->read_ns : NAN;
        *ratio = sp->bytes_written > 0 ? (double)sp->bytes_stored / (double)sp->bytes_written : NAN;
        err =
            disk_floor(dir, p->chunk_bytes, sp->n_writes, sp->n_reads, p->kind, wr_floor, rd_floor);
    }
    remove_tree(dir, 2);
    return err;
}

static int disk_case(const struct bench_opts *opts, const tsr_config_t *resolved, int is_lz4)
{
    struct ooc_params p;
    struct ooc_result res;
    size_t n = opts->n_runs;
    double *buf = calloc(5 * n + 5, sizeof(double)); /* 5 per run, then the warm-up's */
    uint64_t *expected = ooc_setup(opts, resolved, is_lz4 ? FILL_PATTERN : FILL_RANDOM, is_lz4, &p);
    double *wr, *rd, *wr_floor, *rd_floor, *ratio, *scratch;
    char device[32];
    char note[160] = "";
    uint32_t n_ok = 0;
    int err;

    if (buf == NULL || expected == NULL) {
        fprintf(stderr, "tessera-bench: spill: out of memory\n");
        free(buf);
        free(expected);
        return 1;
    }
    wr = buf;
    rd = buf + n;
    wr_floor = buf + 2 * n;
    rd_floor = buf + 3 * n;
    ratio = buf + 4 * n;
    scratch = buf + 5 * n;
    snprintf(device, sizeof(device), "cpu:%d", (int)resolved->n_cpu_workers);
    memset(&res, 0, sizeof(res));
    err = disk_run_once(&p, &res, &scratch[0], &scratch[1], &scratch[2], &scratch[3], &scratch[4]);
    if (err == 2) {
        snprintf(note, sizeof(note), "not measured: this Tessera was built without lz4");
        fprintf(stderr, "tessera-bench: spill disk_write/disk_read compressed: %s\n", note);
        err = 0;
    } else if (err == 0 && res.is_wrong) {
        snprintf(note, sizeof(note), "%s", res.note);
        err = 1;
    } else {
        for (; n_ok < n && err == 0; n_ok++) {
            err = disk_run_once(&p, &res, &wr[n_ok], &rd[n_ok], &wr_floor[n_ok], &rd_floor[n_ok],
                                &ratio[n_ok]);
            if (err == 0 && res.is_wrong) {
                snprintf(note, sizeof(note), "%s", res.note);
                err = 1;
            }
        }
        if (err != 0 && note[0] == '\0') {
            free(buf);
            free(expected);
            return 1;
        }
        if (err == 0 && res.spill.n_writes == 0) {
            snprintf(note, sizeof(note), "nothing was spilled (value null)");
        }
    }
    if (note[0] != '\0') {
        n_ok = 0;
    }
    if (wants(opts, "disk_write")) {
        disk_emit(opts, &p, "disk_write", wr, n_ok > 0 ? median_of(wr_floor, n_ok) : NAN, ratio,
                  n_ok, &res, device, note);
    }
    if (wants(opts, "disk_read")) {
        disk_emit(opts, &p, "disk_read", rd, n_ok > 0 ? median_of(rd_floor, n_ok) : NAN, ratio,
                  n_ok, &res, device, note);
    }
    free(buf);
    free(expected);
    return err;
}

/* ---- peak_rss ---------------------------------------------------------------------- */

static int peak_rss_case(const struct bench_opts *opts, const tsr_config_t *resolved)
{
    struct ooc_params p;
    struct ooc_result res;
    size_t n = opts->n_runs;
    double *ratio = calloc(2 * n, sizeof(double));
    double *accounted = ratio != NULL ? ratio + n : NULL;
    uint64_t *expected = ooc_setup(opts, resolved, FILL_RANDOM, 0, &p);
    struct bench_record rec;
    char device[32];
    char note[160] = "";
    uint32_t n_ok = 0;
    int err = 0;

    if (ratio == NULL || expected == NULL) {
        fprintf(stderr, "tessera-bench: spill: out of memory\n");
        free(ratio);
        free(expected);
        return 1;
    }
    snprintf(device, sizeof(device), "cpu:%d", (int)resolved->n_cpu_workers);
    memset(&res, 0, sizeof(res));
    for (; n_ok < n && err == 0; n_ok++) {
        char dir[4096];

        err = make_spill_dir(dir, sizeof(dir));
        if (err != 0) {
            break;
        }
        err = ooc_once(&p, dir, 1, &res);
        remove_tree(dir, 2);
        if (err == 0 && res.is_wrong) {
            snprintf(note, sizeof(note), "%s", res.note);
            err = 1;
        } else if (err == 0 && (res.rss_base < 0 || res.rss_peak < 0)) {
            snprintf(note, sizeof(note), "no resident set size (/proc/self/statm unreadable)");
        }
        if (err != 0 || note[0] != '\0') {
            break;
        }
        ratio[n_ok] = (double)(res.rss_peak - res.rss_base) / (double)p.limit;
        accounted[n_ok] = (double)res.host.peak_bytes / (double)p.limit;
    }
    if (err != 0 && note[0] == '\0') {
        free(ratio);
        free(expected);
        return 1;
    }
    if (note[0] != '\0') {
        n_ok = 0;
    }
    bench_record_init(&rec, "spill", "peak_rss", "ratio_to_limit", "x", "lower");
    rec.samples = ratio;
    rec.n_samples = n_ok;
    rec.floor_value = PEAK_RSS_TARGET;
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_record_add_num(&rec, "accounted_peak_ratio",
                         n_ok > 0 ? bench_median(accounted, n_ok) : NAN);
    ooc_describe(&rec, &p, device);
    bench_record_add_str(&rec, "compression", "none");
    bench_record_add_int(&rec, "rss_base_bytes", res.rss_base);
    bench_record_add_int(&rec, "rss_peak_bytes", res.rss_peak);
    bench_record_add_int(&rec, "n_writes", (int64_t)res.spill.n_writes);
    bench_record_add_int(&rec, "n_reads", (int64_t)res.spill.n_reads);
    bench_record_add_int(&rec, "n_deferred", (int64_t)res.spill.n_deferred);
    bench_record_add_int(&rec, "n_over_limit", (int64_t)res.spill.n_over_limit);
    bench_record_add_str(&rec, "floor", "target: host limit + 10%");
    bench_record_add_str(&rec, "timed",
                         "max VmRSS (1 ms samples) during the pipeline minus VmRSS before "
                         "tsr_init, / host limit");
    bench_report_emit(opts->report, &rec);
    free(ratio);
    free(expected);
    return err;
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
    if (wants(opts, "peak_rss")) {
        err |= peak_rss_case(opts, &resolved);
    }
    if (wants(opts, "stream_4x_device")) {
        err |= stream_case(opts, &resolved);
    }
    if (wants(opts, "disk_write") || wants(opts, "disk_read")) {
        err |= disk_case(opts, &resolved, 0);
        err |= disk_case(opts, &resolved, 1);
    }
    return err;
}
