/* tessera-bench spill: `peak_rss`, and the resident-set sampler it runs beside the
 * out-of-core pipeline (bench_spill.c).
 *
 * `peak_rss` (ratio_to_limit, lower better): the out-of-core pipeline of the disk
 *   cases (uncompressed random data, 3 x L through a host limit of L) while a helper
 *   thread samples the process's resident set (/proc/self/statm) every 1 ms. Value:
 *   (largest sample - the resident set just before tsr_init, after malloc_trim) / L;
 *   floor_value 1.1, the target (limit + 10%); `accounted_peak_ratio` is the peak the
 *   runtime accounted for host replicas (tsr_runtime_mem_stats node 0) / L. Each run
 *   starts its own runtime; no warm-up (it runs first, when the heap has seen least). */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim: give freed heap back before the RSS baseline */
#endif

#include "bench_spill.h"

#define PEAK_RSS_TARGET 1.1    /* limit + 10% */
#define RSS_SAMPLE_NS 1000000L /* 1 ms */

/* ---- Resident set sampler ------------------------------------------------------ */

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
    struct spill_rss_sampler *s = arg;
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

int64_t spill_rss_start(struct spill_rss_sampler *s)
{
    int64_t base;

    memset(s, 0, sizeof(*s));
    atomic_init(&s->stop, 0);
    s->fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    s->page = sysconf(_SC_PAGESIZE);
    trim_heap();
    base = s->fd >= 0 ? rss_read(s->fd, s->page) : -1;
    s->peak = base;
    s->is_running = base >= 0 && pthread_create(&s->thread, NULL, rss_main, s) == 0;
    return base;
}

int64_t spill_rss_stop(struct spill_rss_sampler *s)
{
    int64_t peak = -1;

    if (s->is_running) {
        atomic_store(&s->stop, 1);
        pthread_join(s->thread, NULL);
        s->is_running = 0;
        peak = s->peak;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    return peak;
}

/* ---- peak_rss ---------------------------------------------------------------------- */

/* The record; n_ok 0 (value null) with a note when nothing was measured. */
static void peak_rss_emit(const struct bench_opts *opts, const struct ooc_params *p,
                          const double *ratio, const double *accounted, uint32_t n_ok,
                          const struct ooc_result *res, const char *device, const char *note)
{
    struct bench_record rec;

    bench_record_init(&rec, "spill", "peak_rss", "ratio_to_limit", "x", "lower");
    rec.samples = ratio;
    rec.n_samples = n_ok;
    rec.floor_value = PEAK_RSS_TARGET;
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_record_add_num(&rec, "accounted_peak_ratio",
                         n_ok > 0 ? bench_median(accounted, n_ok) : NAN);
    spill_ooc_describe(&rec, p, device);
    bench_record_add_str(&rec, "compression", "none");
    bench_record_add_int(&rec, "rss_base_bytes", res->rss_base);
    bench_record_add_int(&rec, "rss_peak_bytes", res->rss_peak);
    bench_record_add_int(&rec, "n_writes", (int64_t)res->spill.n_writes);
    bench_record_add_int(&rec, "n_reads", (int64_t)res->spill.n_reads);
    bench_record_add_int(&rec, "n_deferred", (int64_t)res->spill.n_deferred);
    bench_record_add_int(&rec, "n_over_limit", (int64_t)res->spill.n_over_limit);
    bench_record_add_str(&rec, "floor", "target: host limit + 10%");
    bench_record_add_str(&rec, "timed",
                         "max VmRSS (1 ms samples) during the pipeline minus VmRSS before "
                         "tsr_init, / host limit");
    bench_report_emit(opts->report, &rec);
}

/* One sampled run in a fresh directory: 0, or 1 after saying why; `note` set
 * (and 0 returned) when the run gave no figure. */
static int peak_rss_once(const struct ooc_params *p, struct ooc_result *res, char *note,
                         size_t n_note)
{
    char dir[4096];
    int err = spill_make_dir(dir, sizeof(dir));

    if (err != 0) {
        return err;
    }
    err = spill_ooc_once(p, dir, 1, res);
    spill_remove_tree(dir, 2);
    if (err == 0 && res->is_wrong) {
        snprintf(note, n_note, "%s", res->note);
        err = 1;
    } else if (err == 0 && (res->rss_base < 0 || res->rss_peak < 0)) {
        snprintf(note, n_note, "no resident set size (/proc/self/statm unreadable)");
    }
    return err;
}

int spill_peak_rss_case(const struct bench_opts *opts, const tsr_config_t *resolved)
{
    struct ooc_params p;
    struct ooc_result res;
    size_t n = opts->n_runs;
    double *ratio = calloc(2 * n, sizeof(double));
    double *accounted = ratio != NULL ? ratio + n : NULL;
    uint64_t *expected = spill_ooc_setup(opts, resolved, FILL_RANDOM, 0, &p);
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
        err = peak_rss_once(&p, &res, note, sizeof(note));
        if (err != 0 || note[0] != '\0') {
            break;
        }
        ratio[n_ok] = (double)(res.rss_peak - res.rss_base) / (double)p.limit;
        accounted[n_ok] = (double)res.host.peak_bytes / (double)p.limit;
    }
    if (err == 0 || note[0] != '\0') {
        peak_rss_emit(opts, &p, ratio, accounted, note[0] != '\0' ? 0 : n_ok, &res, device, note);
    }
    free(ratio);
    free(expected);
    return err;
}
