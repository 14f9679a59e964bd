/* Transfer model. The live values are atomics holding the bit patterns of
 * doubles, so the scheduler predicts without a lock; observe serialises its
 * read-modify-write on one mutex (a reader may see a new latency with the old
 * bandwidth for a moment, which is harmless for an estimate). */
#include "core/xfer_model.h"
#include "core/sync.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/model_file.h"

#define N TSR_XM_MAX_NODES
#define MAX_LOG_STEP 0.69314718055994531 /* ln 2: the most one observation counts for */
#define LATENCY_FLOOR_S 1e-9             /* keeps the log-space updates defined */
#define TIME_FLOOR_S 1e-9
#define MAX_REPS 15
#define FILE_NAME "transfers.model"
#define FILE_MAGIC "tessera-xfer 1"

struct tsr__xm {
    uint32_t n_nodes;
    enum tsr__xm_cache cache;
    pthread_mutex_t mutex; /* serialises observe */
    double base_latency[N][N];
    double base_bandwidth[N][N];
    _Atomic uint64_t latency[N][N]; /* live, bit patterns of doubles */
    _Atomic uint64_t bandwidth[N][N];
};

static int pair_ok(const struct tsr__xm *xm, uint32_t src, uint32_t dst)
{
    return xm != NULL && src < xm->n_nodes && dst < xm->n_nodes;
}

static int values_ok(double latency_s, double bytes_per_s)
{
    return isfinite(latency_s) && latency_s >= 0 && isfinite(bytes_per_s) && bytes_per_s > 0;
}

/* Base and live; src == dst is never used and keeps its defaults. */
static void set_pair(struct tsr__xm *xm, uint32_t src, uint32_t dst, double latency_s,
                     double bytes_per_s)
{
    xm->base_latency[src][dst] = latency_s;
    xm->base_bandwidth[src][dst] = bytes_per_s;
    tsr__atomic_store_double(&xm->latency[src][dst], latency_s);
    tsr__atomic_store_double(&xm->bandwidth[src][dst], bytes_per_s);
}

tsr_status_t tsr__xm_create(uint32_t n_nodes, struct tsr__xm **xm_out)
{
    struct tsr__xm *xm;

    if (n_nodes == 0 || n_nodes > N || xm_out == NULL) {
        return TSR_EINVAL;
    }
    xm = calloc(1, sizeof(*xm));
    if (xm == NULL) {
        return TSR_ENOMEM;
    }
    xm->n_nodes = n_nodes;
    xm->cache = TSR_XM_CACHE_ABSENT;
    pthread_mutex_init(&xm->mutex, NULL);
    for (uint32_t s = 0; s < N; s++) {
        for (uint32_t d = 0; d < N; d++) {
            set_pair(xm, s, d, TSR_XM_DEFAULT_LATENCY_S, TSR_XM_DEFAULT_BYTES_PER_S);
        }
    }
    *xm_out = xm;
    return TSR_OK;
}

void tsr__xm_destroy(struct tsr__xm *xm)
{
    if (xm == NULL) {
        return;
    }
    pthread_mutex_destroy(&xm->mutex);
    free(xm);
}

tsr_status_t tsr__xm_set(struct tsr__xm *xm, uint32_t src, uint32_t dst, double latency_s,
                         double bytes_per_s)
{
    if (!pair_ok(xm, src, dst) || !values_ok(latency_s, bytes_per_s)) {
        return TSR_EINVAL;
    }
    set_pair(xm, src, dst, latency_s, bytes_per_s);
    return TSR_OK;
}

tsr_status_t tsr__xm_get(const struct tsr__xm *xm, uint32_t src, uint32_t dst, double *latency_out,
                         double *bytes_per_s_out)
{
    if (!pair_ok(xm, src, dst) || latency_out == NULL || bytes_per_s_out == NULL) {
        return TSR_EINVAL;
    }
    *latency_out = src == dst ? 0 : tsr__atomic_load_double(&xm->latency[src][dst]);
    *bytes_per_s_out = src == dst ? INFINITY : tsr__atomic_load_double(&xm->bandwidth[src][dst]);
    return TSR_OK;
}

double tsr__xm_predict(const struct tsr__xm *xm, uint32_t src, uint32_t dst, uint64_t n_bytes)
{
    if (!pair_ok(xm, src, dst) || src == dst) {
        return 0;
    }
    return tsr__atomic_load_double(&xm->latency[src][dst]) +
           (double)n_bytes / tsr__atomic_load_double(&xm->bandwidth[src][dst]);
}

/* One step of the log-space moving average towards `seen`, clamped. */
static double ewma_step(double current, double seen, double floor)
{
    double r = log(fmax(seen, floor) / fmax(current, floor));

    r = fmin(fmax(r, -MAX_LOG_STEP), MAX_LOG_STEP);
    return fmax(current, floor) * exp(TSR_XM_OBSERVE_WEIGHT * r);
}

void tsr__xm_observe(struct tsr__xm *xm, uint32_t src, uint32_t dst, uint64_t n_bytes,
                     double seconds)
{
    double latency, bandwidth, n = (double)n_bytes;

    if (!pair_ok(xm, src, dst) || src == dst || n_bytes == 0 || !isfinite(seconds) ||
        seconds <= 0) {
        return;
    }
    pthread_mutex_lock(&xm->mutex);
    latency = tsr__atomic_load_double(&xm->latency[src][dst]);
    bandwidth = tsr__atomic_load_double(&xm->bandwidth[src][dst]);
    if (n_bytes >= TSR_XM_MIN_BANDWIDTH_BYTES && n / bandwidth >= latency) {
        /* Mostly transfer. A copy quicker than the latency alone says the
         * latency is overestimated too; count most of it as transfer. */
        double t = fmax(seconds - latency, 0.1 * seconds);

        tsr__atomic_store_double(&xm->bandwidth[src][dst], ewma_step(bandwidth, n / t, 1.0));
    } else {
        double t = seconds - n / bandwidth;

        tsr__atomic_store_double(&xm->latency[src][dst], ewma_step(latency, t, LATENCY_FLOOR_S));
    }
    pthread_mutex_unlock(&xm->mutex);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static tsr_status_t measure(tsr__xm_copy_fn copy, void *ctx, const uint32_t pair[2], size_t n_bytes,
                            uint32_t n_reps, double *median_out)
{
    double t[MAX_REPS];

    for (uint32_t i = 0; i < n_reps; i++) {
        TSR_TRY(copy(ctx, pair[0], pair[1], n_bytes, &t[i]));
        t[i] = isfinite(t[i]) ? fmax(t[i], TIME_FLOOR_S) : INFINITY;
    }
    qsort(t, n_reps, sizeof(t[0]), cmp_double);
    *median_out = n_reps % 2 != 0 ? t[n_reps / 2] : 0.5 * (t[n_reps / 2 - 1] + t[n_reps / 2]);
    return TSR_OK;
}

/* Bandwidth from the slope between the two sizes, latency from the intercept. A
 * large copy no slower than the small one (noise) leaves only the large
 * copy's average rate. */
static tsr_status_t calibrate_pair(struct tsr__xm *xm, tsr__xm_copy_fn copy, void *ctx,
                                   const struct tsr__xm_calib_opts *o, const uint32_t pair[2])
{
    double warm, t_small, t_large, bandwidth;
    double n_small = (double)o->small_bytes, n_large = (double)o->large_bytes;

    TSR_TRY(copy(ctx, pair[0], pair[1], o->small_bytes, &warm));
    TSR_TRY(measure(copy, ctx, pair, o->small_bytes, o->n_small_reps, &t_small));
    TSR_TRY(measure(copy, ctx, pair, o->large_bytes, o->n_large_reps, &t_large));
    if (!isfinite(t_small) || !isfinite(t_large)) {
        return tsr__fail(TSR_EBACKEND, "copy %u -> %u reported no usable time", (unsigned)pair[0],
                         (unsigned)pair[1]);
    }
    bandwidth = t_large > t_small ? (n_large - n_small) / (t_large - t_small) : n_large / t_large;
    set_pair(xm, pair[0], pair[1], fmax(t_small - n_small / bandwidth, 0), bandwidth);
    return TSR_OK;
}

static struct tsr__xm_calib_opts resolve_opts(const struct tsr__xm_calib_opts *opts)
{
    struct tsr__xm_calib_opts o = TSR_XM_CALIB_OPTS_INIT;

    if (opts != NULL) {
        o = *opts;
    }
    o.small_bytes = o.small_bytes != 0 ? o.small_bytes : 4096;
    o.large_bytes = o.large_bytes != 0 ? o.large_bytes : (size_t)16 << 20;
    o.n_small_reps = o.n_small_reps != 0 ? o.n_small_reps : 5;
    o.n_large_reps = o.n_large_reps != 0 ? o.n_large_reps : 3;
    return o;
}

tsr_status_t tsr__xm_calibrate(struct tsr__xm *xm, tsr__xm_copy_fn copy, void *ctx,
                               const struct tsr__xm_calib_opts *opts)
{
    struct tsr__xm_calib_opts o = resolve_opts(opts);

    if (xm == NULL || copy == NULL || o.small_bytes >= o.large_bytes || o.n_small_reps > MAX_REPS ||
        o.n_large_reps > MAX_REPS) {
        return TSR_EINVAL;
    }
    for (uint32_t s = 0; s < xm->n_nodes; s++) {
        for (uint32_t d = 0; d < xm->n_nodes; d++) {
            const uint32_t pair[2] = {s, d};
            tsr_status_t st = s == d ? TSR_OK : calibrate_pair(xm, copy, ctx, &o, pair);

            if (st != TSR_OK && st != TSR_ENOTSUP) {
                return st;
            }
        }
    }
    return TSR_OK;
}

/* ---- cache file ------------------------------------------------------------- */

static char *cache_path(const char *dir)
{
    char *path = malloc(strlen(dir) + sizeof("/" FILE_NAME));

    if (path != NULL) {
        sprintf(path, "%s/" FILE_NAME, dir);
    }
    return path;
}

struct parsed_pairs {
    double latency[N][N];
    double bandwidth[N][N];
    uint32_t n_seen;
};

/* One "pair" line; -1 if malformed, out of range, or a repeat. */
static int parse_pair(const char *p, uint32_t n_nodes, struct parsed_pairs *pp)
{
    uint64_t s, d;
    double latency, bandwidth;

    if (strncmp(p, "pair ", 5) != 0) {
        return -1;
    }
    p += 5;
    if (tsr__mf_u64(&p, &s) != 0 || tsr__mf_u64(&p, &d) != 0 || tsr__mf_f64(&p, &latency) != 0 ||
        tsr__mf_f64(&p, &bandwidth) != 0 || tsr__mf_end(p) != 0) {
        return -1;
    }
    if (s >= n_nodes || d >= n_nodes || s == d || !values_ok(latency, bandwidth) ||
        pp->bandwidth[s][d] > 0) {
        return -1;
    }
    pp->latency[s][d] = latency;
    pp->bandwidth[s][d] = bandwidth;
    pp->n_seen++;
    return 0;
}

/* The header: magic, signature, node count. */
static enum tsr__xm_cache parse_header(char **cursor, uint32_t *line_no, const char *signature,
                                       uint32_t n_nodes)
{
    char *line = tsr__mf_next_record(cursor, line_no);
    char *escaped;
    uint64_t n;
    const char *p;
    int same;

    if (line == NULL || strcmp(line, FILE_MAGIC) != 0) {
        return TSR_XM_CACHE_BAD;
    }
    line = tsr__mf_next_record(cursor, line_no);
    if (line == NULL || strncmp(line, "signature ", 10) != 0) {
        return TSR_XM_CACHE_BAD;
    }
    escaped = tsr__mf_escape(signature);
    same = escaped != NULL && strcmp(line + 10, escaped) == 0;
    free(escaped);
    line = tsr__mf_next_record(cursor, line_no);
    if (line == NULL || strncmp(line, "nodes ", 6) != 0) {
        return TSR_XM_CACHE_BAD;
    }
    p = line + 6;
    if (tsr__mf_u64(&p, &n) != 0 || tsr__mf_end(p) != 0) {
        return TSR_XM_CACHE_BAD;
    }
    return same && n == n_nodes ? TSR_XM_CACHE_LOADED : TSR_XM_CACHE_STALE;
}

static enum tsr__xm_cache parse_file(char *text, const char *signature, uint32_t n_nodes,
                                     struct parsed_pairs *pp)
{
    uint32_t line_no = 0;
    char *cursor = text;
    char *line;
    enum tsr__xm_cache c = parse_header(&cursor, &line_no, signature, n_nodes);

    if (c != TSR_XM_CACHE_LOADED) {
        return c;
    }
    while ((line = tsr__mf_next_record(&cursor, &line_no)) != NULL) {
        if (parse_pair(line, n_nodes, pp) != 0) {
            return TSR_XM_CACHE_BAD;
        }
    }
    return pp->n_seen == n_nodes * (n_nodes - 1) ? TSR_XM_CACHE_LOADED : TSR_XM_CACHE_BAD;
}

static enum tsr__xm_cache load_file(struct tsr__xm *xm, const char *path, const char *signature)
{
    struct parsed_pairs *pp;
    enum tsr__xm_cache c;
    char *text;

    if (tsr__mf_read(path, &text) != TSR_OK) {
        return TSR_XM_CACHE_BAD;
    }
    pp = calloc(1, sizeof(*pp));
    c = pp != NULL ? parse_file(text, signature, xm->n_nodes, pp) : TSR_XM_CACHE_BAD;
    for (uint32_t s = 0; c == TSR_XM_CACHE_LOADED && s < xm->n_nodes; s++) {
        for (uint32_t d = 0; d < xm->n_nodes; d++) {
            if (s != d) {
                set_pair(xm, s, d, pp->latency[s][d], pp->bandwidth[s][d]);
            }
        }
    }
    free(pp);
    free(text);
    return c;
}

enum tsr__xm_cache tsr__xm_load(struct tsr__xm *xm, const char *dir, const char *signature)
{
    char *path;
    enum tsr__xm_cache c;

    if (xm == NULL) {
        return TSR_XM_CACHE_ABSENT;
    }
    if (dir == NULL || signature == NULL) {
        xm->cache = TSR_XM_CACHE_ABSENT;
        return xm->cache;
    }
    path = cache_path(dir);
    if (path == NULL) {
        c = TSR_XM_CACHE_BAD;
    } else if (access(path, F_OK) != 0) {
        c = TSR_XM_CACHE_ABSENT;
    } else {
        c = load_file(xm, path, signature);
    }
    free(path);
    xm->cache = c;
    return c;
}

static int format_file(const struct tsr__xm *xm, const char *signature, char **text_out,
                       size_t *n_out)
{
    char *escaped = tsr__mf_escape(signature);
    FILE *f = escaped != NULL ? open_memstream(text_out, n_out) : NULL;
    int bad;

    if (f == NULL) {
        free(escaped);
        return -1;
    }
    fprintf(f, FILE_MAGIC "\nsignature %s\nnodes %u\n", escaped, (unsigned)xm->n_nodes);
    fprintf(f, "# src dst latency_s bytes_per_s\n");
    for (uint32_t s = 0; s < xm->n_nodes; s++) {
        for (uint32_t d = 0; d < xm->n_nodes; d++) {
            if (s != d) {
                fprintf(f, "pair %u %u %.17g %.17g\n", (unsigned)s, (unsigned)d,
                        xm->base_latency[s][d], xm->base_bandwidth[s][d]);
            }
        }
    }
    bad = ferror(f);
    free(escaped);
    if (fclose(f) != 0 || bad) {
        free(*text_out);
        return -1;
    }
    return 0;
}

tsr_status_t tsr__xm_save(const struct tsr__xm *xm, const char *dir, const char *signature)
{
    char *text = NULL;
    size_t n = 0;
    char *path;
    tsr_status_t st;

    if (xm == NULL || dir == NULL || signature == NULL) {
        return TSR_EINVAL;
    }
    TSR_TRY(tsr__mf_mkdirs(dir));
    if (format_file(xm, signature, &text, &n) != 0) {
        return TSR_ENOMEM;
    }
    path = cache_path(dir);
    st = path != NULL ? tsr__mf_write_atomic(path, text, n) : TSR_ENOMEM;
    free(path);
    free(text);
    return st;
}

tsr_status_t tsr__xm_setup(struct tsr__xm *xm, const char *dir, const char *signature,
                           tsr__xm_copy_fn copy, void *ctx)
{
    if (xm == NULL || copy == NULL || (dir != NULL && signature == NULL)) {
        return TSR_EINVAL;
    }
    if (tsr__xm_load(xm, dir, signature) == TSR_XM_CACHE_LOADED) {
        return TSR_OK;
    }
    TSR_TRY(tsr__xm_calibrate(xm, copy, ctx, NULL));
    return dir != NULL ? tsr__xm_save(xm, dir, signature) : TSR_OK;
}

enum tsr__xm_cache tsr__xm_cache_state(const struct tsr__xm *xm)
{
    return xm != NULL ? xm->cache : TSR_XM_CACHE_ABSENT;
}

/* ---- summary ---------------------------------------------------------------- */

/* A node's name cut to 12 bytes, padded to `width`. */
static void print_name(FILE *out, const char *const *names, uint32_t node, int width)
{
    char fallback[16];

    snprintf(fallback, sizeof(fallback), "node%u", (unsigned)node);
    fprintf(out, "%-*.12s", width, names != NULL && names[node] != NULL ? names[node] : fallback);
}

void tsr__xm_print(const struct tsr__xm *xm, FILE *out, const char *const *names)
{
    if (xm == NULL || out == NULL) {
        return;
    }
    fprintf(out, "transfers (GB/s / latency us; rows: from, columns: to):\n%12s", "");
    for (uint32_t d = 0; d < xm->n_nodes; d++) {
        fputs("  ", out);
        print_name(out, names, d, d + 1 < xm->n_nodes ? 12 : 0);
    }
    fputc('\n', out);
    for (uint32_t s = 0; s < xm->n_nodes; s++) {
        print_name(out, names, s, 12);
        for (uint32_t d = 0; d < xm->n_nodes; d++) {
            char cell[32];

            snprintf(cell, sizeof(cell), "%.3g / %.3g",
                     tsr__atomic_load_double(&xm->bandwidth[s][d]) * 1e-9,
                     tsr__atomic_load_double(&xm->latency[s][d]) * 1e6);
            fprintf(out, "  %-*s", d + 1 < xm->n_nodes ? 12 : 0, s == d ? "-" : cell);
        }
        fputc('\n', out);
    }
}
