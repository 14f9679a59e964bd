/* `tessera demo`: a blocked matrix multiply C = A * B run as a task graph and
 * checked against a sequential triple loop.
 *
 * The matrices are split into tiles of T x T doubles, each registered as a data
 * handle; one task per (i, j, k) tile product reads A(i,k) and B(k,j) and
 * updates C(i,j) in place (RW). Tessera infers the dependencies: the products
 * into one C tile run one after the other in k order, different C tiles run in
 * parallel. The timed region goes from the first submit to the last task done;
 * input generation and handle registration are outside it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tessera_cli.h"
#include "tessera_demo_kernel.h"

#define DEMO_CMD "demo"
#define DEMO_MAX_REL_ERR 1e-12

struct demo_opts {
    long n;
    long tile;
    long seed;
    long n_workers;
    tsr_sched_policy_t policy;
};

struct demo {
    struct demo_opts opts;
    size_t n_tiles;  /* tiles per dimension */
    size_t tile_len; /* doubles per tile */
    double *a_rm;    /* row-major inputs and reference result */
    double *b_rm;
    double *c_ref;
    double *a; /* tile-major copies: tile (i, j) at (i * n_tiles + j) * tile_len */
    double *b;
    double *c;
    tsr_runtime_t *rt;
    tsr_data_t **handles; /* A tiles, then B tiles, then C tiles */
    size_t n_handles;
    double run_s;
    double ref_s;
};

struct tile_arg {
    uint32_t tile;
};

static tsr_status_t tile_gemm_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const struct tile_arg *ta = arg;
    size_t n_bytes = (size_t)ta->tile * ta->tile * sizeof(double);

    if (bufs[0].n_bytes < n_bytes || bufs[1].n_bytes < n_bytes || bufs[2].n_bytes < n_bytes) {
        tsr_task_ctx_fail(ctx, "tile_gemm: buffers smaller than a %u x %u tile", ta->tile,
                          ta->tile);
        return TSR_EINVAL;
    }
    demo_tile_gemm(ta->tile, bufs[0].ptr, bufs[1].ptr, bufs[2].ptr);
    return TSR_OK;
}

static const tsr_codelet_t cl_tile_gemm = {
    .name = "tile_gemm",
    .impl = {[TSR_DEVICE_CPU] = tile_gemm_cpu},
    .n_buffers = 3,
    .modes = {TSR_R, TSR_R, TSR_RW},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tessera demo [--n N] [--tile T] [--seed S] [--workers W] [--policy P]\n"
            "\n"
            "Multiplies two random N x N double matrices as a graph of T x T tile\n"
            "products, checks the result against a sequential triple loop and prints\n"
            "the devices used, tasks run, wall time and GFLOP/s.\n"
            "\n"
            "  --n N         matrix size (default 1024; a multiple of T)\n"
            "  --tile T      tile size (default 128)\n"
            "  --seed S      seed of the input generator (default 42)\n"
            "  --workers W   CPU worker threads (default 0: every core)\n"
            "  --policy P    eager | ws (default: the runtime's)\n");
}

static int parse_opt(struct demo_opts *o, const char *opt, const char *val)
{
    if (strcmp(opt, "--n") == 0) {
        return cli_parse_long(DEMO_CMD, opt, val, 1, 16384, &o->n);
    }
    if (strcmp(opt, "--tile") == 0) {
        return cli_parse_long(DEMO_CMD, opt, val, 1, 4096, &o->tile);
    }
    if (strcmp(opt, "--seed") == 0) {
        return cli_parse_long(DEMO_CMD, opt, val, 0, 2147483647L, &o->seed);
    }
    if (strcmp(opt, "--workers") == 0) {
        return cli_parse_long(DEMO_CMD, opt, val, 0, 1024, &o->n_workers);
    }
    if (strcmp(opt, "--policy") == 0) {
        return cli_parse_policy(DEMO_CMD, val, &o->policy);
    }
    fprintf(stderr, "tessera demo: unknown option '%s' (see tessera demo --help)\n", opt);
    return 1;
}

/* Returns 0 to run, CLI_EXIT_USAGE on error, -1 after --help. */
static int parse_args(struct demo_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return -1;
        }
        if (parse_opt(o, argv[i], i + 1 < argc ? argv[i + 1] : NULL) != 0) {
            return CLI_EXIT_USAGE;
        }
    }
    if (o->n % o->tile != 0) {
        fprintf(stderr, "tessera demo: --n %ld is not a multiple of --tile %ld\n", o->n, o->tile);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* SplitMix64: a small, well-mixed generator, so inputs depend only on the seed. */
static double next_uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53 * 2.0 - 1.0;
}

/* Copy the row-major n x n matrix `rm` into tile-major `tiled`. */
static void to_tiles(const struct demo *d, const double *rm, double *tiled)
{
    size_t n = (size_t)d->opts.n;
    size_t t = (size_t)d->opts.tile;

    for (size_t r = 0; r < n; r++) {
        for (size_t tj = 0; tj < d->n_tiles; tj++) {
            double *dst = tiled + ((r / t) * d->n_tiles + tj) * d->tile_len + (r % t) * t;

            memcpy(dst, rm + r * n + tj * t, t * sizeof(double));
        }
    }
}

static int demo_alloc(struct demo *d)
{
    size_t n_elems = (size_t)d->opts.n * (size_t)d->opts.n;
    uint64_t state = (uint64_t)d->opts.seed;

    d->n_tiles = (size_t)(d->opts.n / d->opts.tile);
    d->tile_len = (size_t)d->opts.tile * (size_t)d->opts.tile;
    d->n_handles = 3 * d->n_tiles * d->n_tiles;
    d->a_rm = malloc(n_elems * sizeof(double));
    d->b_rm = malloc(n_elems * sizeof(double));
    d->c_ref = malloc(n_elems * sizeof(double));
    d->a = malloc(n_elems * sizeof(double));
    d->b = malloc(n_elems * sizeof(double));
    d->c = calloc(n_elems, sizeof(double));
    d->handles = calloc(d->n_handles, sizeof(tsr_data_t *));
    if (!d->a_rm || !d->b_rm || !d->c_ref || !d->a || !d->b || !d->c || !d->handles) {
        fprintf(stderr, "tessera demo: out of memory for N = %ld\n", d->opts.n);
        return 1;
    }
    for (size_t i = 0; i < n_elems; i++) {
        d->a_rm[i] = next_uniform(&state);
    }
    for (size_t i = 0; i < n_elems; i++) {
        d->b_rm[i] = next_uniform(&state);
    }
    to_tiles(d, d->a_rm, d->a);
    to_tiles(d, d->b_rm, d->b);
    return 0;
}

/* Unregistering waits for the tasks using a tile and hands its buffer, holding
 * the latest contents, back to us. */
static void unregister_all(struct demo *d)
{
    for (size_t i = 0; d->handles != NULL && i < d->n_handles; i++) {
        tsr_data_unregister(d->handles[i]);
        d->handles[i] = NULL;
    }
}

static void demo_free(struct demo *d)
{
    unregister_all(d);
    tsr_shutdown(d->rt);
    free(d->handles);
    free(d->a_rm);
    free(d->b_rm);
    free(d->c_ref);
    free(d->a);
    free(d->b);
    free(d->c);
}

/* Start the runtime and register every tile as a handle: A, then B, then C. */
static int demo_start(struct demo *d)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    double *bases[3] = {d->a, d->b, d->c};
    size_t per_matrix = d->n_tiles * d->n_tiles;
    tsr_status_t st;

    cfg.n_cpu_workers = (int32_t)d->opts.n_workers;
    cfg.policy = d->opts.policy;
    st = tsr_init(&cfg, &d->rt);
    if (st != TSR_OK) {
        cli_print_error(DEMO_CMD, "tsr_init", st);
        return 1;
    }
    for (size_t h = 0; h < d->n_handles; h++) {
        double *ptr = bases[h / per_matrix] + (h % per_matrix) * d->tile_len;

        st = tsr_data_register(d->rt, ptr, d->tile_len * sizeof(double), &d->handles[h]);
        if (st != TSR_OK) {
            cli_print_error(DEMO_CMD, "tsr_data_register", st);
            return 1;
        }
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Submit the tile product of C(i,j) += A(i,k) * B(k,j). */
static tsr_status_t submit_product(struct demo *d, size_t i, size_t j, size_t k,
                                   tsr_future_t **future_out)
{
    size_t nt = d->n_tiles;
    struct tile_arg arg = {(uint32_t)d->opts.tile};
    tsr_data_t *h[3] = {d->handles[i * nt + k], d->handles[nt * nt + k * nt + j],
                        d->handles[2 * nt * nt + i * nt + j]};
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;

    desc.codelet = &cl_tile_gemm;
    desc.handles = h;
    desc.n_handles = 3;
    desc.arg = &arg;
    desc.arg_size = sizeof(arg);
    return tsr_task_submit(d->rt, &desc, future_out);
}

/* Report the first failed task of `futures` (n of them) with its message. */
static void report_failure(tsr_future_t *const *futures, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tsr_status_t st = tsr_future_test(futures[i]);

        if (st != TSR_OK) {
            fprintf(stderr, "tessera demo: task %llu failed: %s: %s\n",
                    (unsigned long long)tsr_future_task_id(futures[i]), tsr_status_str(st),
                    tsr_future_message(futures[i]));
            return;
        }
    }
}

/* Submit every tile product, wait for them all; times the whole. */
static int demo_run(struct demo *d, tsr_future_t **futures)
{
    size_t nt = d->n_tiles;
    size_t n_sub = 0;
    tsr_status_t st = TSR_OK;
    double t0 = now_s();

    for (size_t idx = 0; idx < nt * nt * nt && st == TSR_OK; idx++) {
        st = submit_product(d, idx / (nt * nt), (idx / nt) % nt, idx % nt, &futures[idx]);
        n_sub += st == TSR_OK;
    }
    if (st != TSR_OK) {
        cli_print_error(DEMO_CMD, "tsr_task_submit", st);
    }
    if (tsr_future_wait_all(futures, n_sub) != TSR_OK) {
        report_failure(futures, n_sub);
        st = TSR_ETASK;
    }
    /* The futures are done; wait_all also settles the runtime's counters. */
    tsr_wait_all(d->rt);
    d->run_s = now_s() - t0;
    for (size_t i = 0; i < n_sub; i++) {
        tsr_future_release(futures[i]);
    }
    return st == TSR_OK ? 0 : 1;
}

/* Max |C - C_ref| over max |C_ref|: the normwise relative error. */
static double max_rel_error(const struct demo *d)
{
    size_t n = (size_t)d->opts.n;
    size_t t = (size_t)d->opts.tile;
    double max_diff = 0.0;
    double max_ref = 0.0;

    for (size_t r = 0; r < n; r++) {
        for (size_t col = 0; col < n; col++) {
            size_t tile = (r / t) * d->n_tiles + col / t;
            double got = d->c[tile * d->tile_len + (r % t) * t + col % t];
            double want = d->c_ref[r * n + col];

            max_diff = fmax(max_diff, fabs(got - want));
            max_ref = fmax(max_ref, fabs(want));
        }
    }
    if (isnan(max_diff)) {
        return INFINITY;
    }
    return max_ref > 0.0 ? max_diff / max_ref : max_diff;
}

static void print_report(const struct demo *d, const tsr_runtime_stats_t *s, double rel_err)
{
    double flops = 2.0 * (double)d->opts.n * (double)d->opts.n * (double)d->opts.n;
    int pass = rel_err < DEMO_MAX_REL_ERR;

    printf(
        "tessera demo: C = A*B, double, N = %ld, tile %ld (%zu x %zu tiles, %zu tile "
        "products)\n",
        d->opts.n, d->opts.tile, d->n_tiles, d->n_tiles, d->n_tiles * d->n_tiles * d->n_tiles);
    printf("devices:    cpu: %u workers (%s)\n", s->n_cpu_workers,
           tsr_sched_policy_name(s->policy));
    printf("tasks run:  %llu (%llu failed, %llu cancelled, %llu stolen)\n",
           (unsigned long long)s->n_completed, (unsigned long long)s->n_failed,
           (unsigned long long)s->n_cancelled, (unsigned long long)s->n_stolen);
    printf("wall time:  %.3f s (first submit to last task done)\n", d->run_s);
    printf("GFLOP/s:    %.2f\n", flops / d->run_s * 1e-9);
    printf("reference:  %.3f s sequential triple loop (%.2f GFLOP/s)\n", d->ref_s,
           flops / d->ref_s * 1e-9);
    printf("max rel error: %.3g (limit %.0e)\n", rel_err, DEMO_MAX_REL_ERR);
    printf("check: %s\n", pass ? "PASS" : "FAIL");
}

/* Reference product, comparison and report; returns the exit code. */
static int demo_check(struct demo *d)
{
    tsr_runtime_stats_t stats = TSR_RUNTIME_STATS_INIT;
    tsr_status_t st = tsr_runtime_stats(d->rt, &stats);
    double t0;
    double rel_err;

    if (st != TSR_OK) {
        cli_print_error(DEMO_CMD, "tsr_runtime_stats", st);
        return CLI_EXIT_FAIL;
    }
    unregister_all(d);
    t0 = now_s();
    demo_ref_gemm((size_t)d->opts.n, d->a_rm, d->b_rm, d->c_ref);
    d->ref_s = now_s() - t0;
    rel_err = max_rel_error(d);
    print_report(d, &stats, rel_err);
    return rel_err < DEMO_MAX_REL_ERR ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_demo(int argc, char **argv)
{
    struct demo d;
    tsr_future_t **futures;
    int rc;

    memset(&d, 0, sizeof(d));
    d.opts = (struct demo_opts){1024, 128, 42, 0, TSR_SCHED_DEFAULT};
    rc = parse_args(&d.opts, argc, argv);
    if (rc != 0) {
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    if (demo_alloc(&d) == 0 && demo_start(&d) == 0) {
        futures = calloc(d.n_tiles * d.n_tiles * d.n_tiles, sizeof(tsr_future_t *));
        if (futures != NULL && demo_run(&d, futures) == 0) {
            rc = demo_check(&d);
        } else if (futures == NULL) {
            fprintf(stderr, "tessera demo: out of memory for futures\n");
        }
        free(futures);
    }
    demo_free(&d);
    return rc;
}
