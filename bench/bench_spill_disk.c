/* tessera-bench spill: `disk_write` and `disk_read`, and their pwrite / pread floor.
 *
 * `disk_write`, `disk_read` (GBps, higher better), each twice: `compressed` 0 (random
 *   data, spill_compression NONE) and 1 (a repeating 4 KiB pattern, LZ4; value null
 *   and a note when Tessera was built without lz4). The out-of-core pipeline of
 *   bench_spill.c: 3 x L through a host limit L (256 MiB; quick 32 MiB) in chunks of
 *   8 MiB (quick 2 MiB), spilled to a fresh directory. Values from
 *   tsr_runtime_spill_stats: bytes_written / write_busy_ns and bytes_read /
 *   read_busy_ns, the wall time during which at least one chunk was being written
 *   (read), compression or decompression and checksums included: workers and the
 *   I/O thread may read at once, and then each one's own time would count the same
 *   wall time twice. That per-transfer figure (bytes / write_ns, read_ns) is the
 *   extra field per_transfer_GBps.
 *   floor_value: plain pwrite then pread, in the same run, of the same number of
 *   chunks of the same size and kind of data, one file per chunk in the same
 *   directory (open + pwrite + close, no fsync; then open + pread + close into warm
 *   buffers), as the runtime writes them. Both sides go through the page cache: on a
 *   machine with free memory these are memory-speed figures. One untimed warm-up
 *   run first; each run starts its own runtime. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_spill.h"

#define FLOOR_POOL 8  /* distinct source buffers of the pwrite floor */
#define DISK_SERIES 8 /* the doubles of struct disk_sample */

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
            spill_fill_words((uint64_t *)(void *)pool[b], &a);
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

/* ---- disk_write, disk_read ----------------------------------------------------------- */

static void disk_emit(const struct bench_opts *opts, const struct ooc_params *p, const char *name,
                      const double *v, const double *each, double floor_value, const double *ratio,
                      const double *wall, uint32_t n_ok, const struct ooc_result *last,
                      const char *device, const char *note)
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
    spill_ooc_describe(&rec, p, device);
    bench_record_add_num(&rec, "stored_ratio", bench_median(ratio, n_ok));
    bench_record_add_num(&rec, "per_transfer_GBps", bench_median(each, n_ok));
    bench_record_add_int(&rec, "n_writes", (int64_t)last->spill.n_writes);
    bench_record_add_int(&rec, "n_reads", (int64_t)last->spill.n_reads);
    bench_record_add_int(&rec, "n_read_ahead", (int64_t)last->spill.n_read_ahead);
    bench_record_add_int(&rec, "n_read_ahead_wasted", (int64_t)last->spill.n_read_ahead_wasted);
    bench_record_add_num(&rec, "pipeline_s", bench_median(wall, n_ok));
    bench_record_add_int(&rec, "host_block_reuses", (int64_t)last->host.n_reuses);
    bench_record_add_str(&rec, "floor", is_write ? "pwrite" : "pread");
    bench_record_add_str(&rec, "timed",
                         is_write ? "spill stats: bytes_written / write_busy_ns (wall time "
                                    "with a write under way: compress, checksum, write)"
                                  : "spill stats: bytes_read / read_busy_ns (wall time with a "
                                    "read under way: read, checksum, decompress)");
    bench_record_add_str(&rec, "floor_timed",
                         is_write ? "open+pwrite+close per chunk file, no fsync, n_writes chunks"
                                  : "open+pread+close per chunk file, n_reads chunks");
    bench_report_emit(opts->report, &rec);
}

/* The figures of one run (or of the warm-up). */
struct disk_sample {
    double *wr;       /* GB/s written: bytes / wall time with a write under way */
    double *rd;       /* GB/s read: bytes / wall time with a read under way */
    double *wr_each;  /* GB/s of one write: bytes / the writes' own times added up */
    double *rd_each;  /* GB/s of one read */
    double *wr_floor; /* GB/s of the pwrite floor */
    double *rd_floor; /* GB/s of the pread floor */
    double *ratio;    /* bytes stored / bytes written */
    double *wall;     /* seconds of the whole pipeline */
};

static double gbps(uint64_t bytes, uint64_t ns)
{
    return ns > 0 ? (double)bytes / (double)ns : NAN;
}

/* One run: pipeline, then the floor with the same counts, in a fresh directory. */
static int disk_run_once(const struct ooc_params *p, struct ooc_result *res,
                         const struct disk_sample *out)
{
    char dir[4096];
    const tsr_spill_stats_t *sp = &res->spill;
    int err;

    if (spill_make_dir(dir, sizeof(dir)) != 0) {
        return 1;
    }
    err = spill_ooc_once(p, dir, 0, res);
    if (err == 0) {
        *out->wr = gbps(sp->bytes_written, sp->write_busy_ns);
        *out->rd = gbps(sp->bytes_read, sp->read_busy_ns);
        *out->wr_each = gbps(sp->bytes_written, sp->write_ns);
        *out->rd_each = gbps(sp->bytes_read, sp->read_ns);
        *out->wall = res->wall_s;
        *out->ratio =
            sp->bytes_written > 0 ? (double)sp->bytes_stored / (double)sp->bytes_written : NAN;
        err = disk_floor(dir, p->chunk_bytes, sp->n_writes, sp->n_reads, p->kind, out->wr_floor,
                         out->rd_floor);
    }
    spill_remove_tree(dir, 2);
    return err;
}

/* Slot `i` of the DISK_SERIES series laid out one after the other in buf (n each). */
static struct disk_sample disk_slot(double *buf, size_t n, size_t i)
{
    struct disk_sample s = {buf + i,         buf + n + i,     buf + 2 * n + i, buf + 3 * n + i,
                            buf + 4 * n + i, buf + 5 * n + i, buf + 6 * n + i, buf + 7 * n + i};

    return s;
}

/* The warm-up, then the timed runs into buf; `note` set when the figures are not
 * to be reported. Returns 0, or 1 when the case failed (`note` says why if it
 * can be reported). *n_ok_out: runs made. */
static int disk_runs(const struct ooc_params *p, double *buf, size_t n, struct ooc_result *res,
                     char *note, size_t n_note, uint32_t *n_ok_out)
{
    struct disk_sample warm = disk_slot(buf, n + 1, n); /* one past the runs of each series */
    uint32_t n_ok = 0;
    int err = disk_run_once(p, res, &warm);

    if (err == 2) {
        snprintf(note, n_note, "not measured: this Tessera was built without lz4");
        fprintf(stderr, "tessera-bench: spill disk_write/disk_read compressed: %s\n", note);
        return 0;
    }
    if (err == 0 && res->is_wrong) {
        snprintf(note, n_note, "%s", res->note);
        return 1;
    }
    for (; n_ok < n && err == 0; n_ok++) {
        struct disk_sample s = disk_slot(buf, n + 1, n_ok);

        err = disk_run_once(p, res, &s);
        if (err == 0 && res->is_wrong) {
            snprintf(note, n_note, "%s", res->note);
            err = 1;
        }
    }
    if (err == 0 && res->spill.n_writes == 0) {
        snprintf(note, n_note, "nothing was spilled (value null)");
    }
    *n_ok_out = n_ok;
    return err;
}

int spill_disk_case(const struct bench_opts *opts, const tsr_config_t *resolved, int is_lz4)
{
    struct ooc_params p;
    struct ooc_result res;
    size_t n = opts->n_runs;
    double *buf = calloc(DISK_SERIES * (n + 1), sizeof(double)); /* n runs + the warm-up each */
    uint64_t *expected =
        spill_ooc_setup(opts, resolved, is_lz4 ? FILL_PATTERN : FILL_RANDOM, is_lz4, &p);
    struct disk_sample s;
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
    snprintf(device, sizeof(device), "cpu:%d", (int)resolved->n_cpu_workers);
    memset(&res, 0, sizeof(res));
    err = disk_runs(&p, buf, n, &res, note, sizeof(note), &n_ok);
    if (err == 0 || note[0] != '\0') {
        n_ok = note[0] != '\0' ? 0 : n_ok;
        s = disk_slot(buf, n + 1, 0);
        if (spill_wants(opts, "disk_write")) {
            disk_emit(opts, &p, "disk_write", s.wr, s.wr_each,
                      n_ok > 0 ? spill_median(s.wr_floor, n_ok) : NAN, s.ratio, s.wall, n_ok, &res,
                      device, note);
        }
        if (spill_wants(opts, "disk_read")) {
            disk_emit(opts, &p, "disk_read", s.rd, s.rd_each,
                      n_ok > 0 ? spill_median(s.rd_floor, n_ok) : NAN, s.ratio, s.wall, n_ok, &res,
                      device, note);
        }
    }
    free(buf);
    free(expected);
    return err;
}
