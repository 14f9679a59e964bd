/* tessera-bench overhead: the cost of the runtime per task, on the CPU workers
 * (--device cpu; the GPU cases are in bench_overhead_gpu.c).
 *
 * Cases: `independent` (empty tasks, no data), `rw_1000_handles` (each task RW
 * on one of 1000 handles, round robin) and `chain` (each task RW on the same
 * handle, so every task depends on the previous one). The timed region runs
 * from the first submit to the return of tsr_wait_all: it includes submission
 * (graph building), dependency tracking and execution; runtime start-up and
 * handle registration are outside it. One untimed warm-up run per case. The
 * peer (bench/peers/starpu_overhead.c) times the same region through StarPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_peer.h"

#define PEER_NAME "starpu-1.3"
#define PEER_PROG "tessera-peer-starpu-overhead"

struct overhead_case {
    const char *name;
    uint64_t n_tasks;   /* full size; --quick divides by 10 */
    uint32_t n_handles; /* 0: tasks access no data */
};

static const struct overhead_case cases[] = {
    {"independent", 1000000, 0},
    {"rw_1000_handles", 1000000, 1000},
    {"chain", 100000, 1},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* A runtime and the handles of one case, alive across its runs. */
struct overhead_state {
    tsr_runtime_t *rt;
    tsr_data_t **handles;
    uint64_t *cells; /* the 8-byte buffers behind the handles */
    uint32_t n_handles;
};

static tsr_status_t empty_kernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)ctx;
    (void)bufs;
    (void)arg;
    return TSR_OK;
}

static const tsr_codelet_t cl_empty = {
    .name = "empty",
    .impl = {[TSR_DEVICE_CPU] = empty_kernel},
    .n_buffers = 0,
};

static const tsr_codelet_t cl_empty_rw = {
    .name = "empty_rw",
    .impl = {[TSR_DEVICE_CPU] = empty_kernel},
    .n_buffers = 1,
    .modes = {TSR_RW},
};

static void state_close(struct overhead_state *st)
{
    for (uint32_t i = 0; st->handles != NULL && i < st->n_handles; i++) {
        tsr_data_unregister(st->handles[i]);
    }
    tsr_shutdown(st->rt);
    free(st->handles);
    free(st->cells);
    memset(st, 0, sizeof(*st));
}

static int state_open(const struct bench_opts *opts, uint32_t n_handles, struct overhead_state *st)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_status_t rc;

    memset(st, 0, sizeof(*st));
    cfg.n_cpu_workers = opts->n_workers;
    cfg.policy = opts->policy;
    rc = tsr_init(&cfg, &st->rt);
    if (rc != TSR_OK) {
        bench_print_error("tsr_init", rc);
        return 1;
    }
    st->handles = calloc(n_handles + 1, sizeof(tsr_data_t *));
    st->cells = calloc(n_handles + 1, sizeof(*st->cells));
    if (st->handles == NULL || st->cells == NULL) {
        fprintf(stderr, "tessera-bench: out of memory\n");
        state_close(st);
        return 1;
    }
    for (; st->n_handles < n_handles; st->n_handles++) {
        rc = tsr_data_register(st->rt, &st->cells[st->n_handles], sizeof(uint64_t),
                               &st->handles[st->n_handles]);
        if (rc != TSR_OK) {
            bench_print_error("tsr_data_register", rc);
            state_close(st);
            return 1;
        }
    }
    return 0;
}

/* Submit `n_tasks` tasks and wait for all of them; `*seconds_out` is the wall
 * time from the first submit to the return of tsr_wait_all. */
static int run_once(struct overhead_state *st, uint64_t n_tasks, double *seconds_out)
{
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    uint32_t h = 0;
    double t0;
    tsr_status_t rc = TSR_OK;

    desc.codelet = st->n_handles > 0 ? &cl_empty_rw : &cl_empty;
    desc.n_handles = st->n_handles > 0 ? 1 : 0;
    t0 = bench_now_s();
    for (uint64_t i = 0; i < n_tasks && rc == TSR_OK; i++) {
        if (st->n_handles > 0) {
            desc.handles = &st->handles[h];
            h = (h + 1 == st->n_handles) ? 0 : h + 1;
        }
        rc = tsr_task_submit(st->rt, &desc, NULL);
    }
    if (rc != TSR_OK) {
        bench_print_error("tsr_task_submit", rc);
        tsr_wait_all(st->rt);
        return 1;
    }
    rc = tsr_wait_all(st->rt);
    *seconds_out = bench_now_s() - t0;
    if (rc != TSR_OK) {
        bench_print_error("tsr_wait_all", rc);
        return 1;
    }
    return 0;
}

/* Every task submitted so far completed, none failed or was cancelled. */
static int check_stats(tsr_runtime_t *rt, const char *case_name, tsr_runtime_stats_t *stats_out)
{
    tsr_status_t rc = tsr_runtime_stats(rt, stats_out);

    if (rc != TSR_OK) {
        bench_print_error("tsr_runtime_stats", rc);
        return 1;
    }
    if (stats_out->n_completed != stats_out->n_submitted || stats_out->n_failed != 0 ||
        stats_out->n_cancelled != 0) {
        fprintf(stderr,
                "tessera-bench: overhead %s: %llu submitted, %llu completed, %llu failed, "
                "%llu cancelled\n",
                case_name, (unsigned long long)stats_out->n_submitted,
                (unsigned long long)stats_out->n_completed, (unsigned long long)stats_out->n_failed,
                (unsigned long long)stats_out->n_cancelled);
        return 1;
    }
    return 0;
}

/* Fill the peer fields of `rec` from the peer run, or say why there are none. */
static void set_peer(struct bench_record *rec, const struct bench_peer_result *peer,
                     const char *case_name)
{
    const struct bench_peer_case *pc = bench_peer_find(peer, case_name);

    rec->peer = PEER_NAME;
    if (pc != NULL) {
        rec->peer_value = pc->value;
        bench_record_add_num(rec, "peer_spread", pc->spread);
    } else if (!peer->is_ok) {
        bench_record_add_str(rec, "note", peer->note);
    } else {
        bench_record_add_str(rec, "note", "peer reported no result for this case");
    }
}

static void emit_case(const struct bench_opts *opts, const struct overhead_case *c,
                      uint64_t n_tasks, const double *us, const struct bench_peer_result *peer,
                      const tsr_runtime_stats_t *stats)
{
    struct bench_record rec;
    char device[32];

    snprintf(device, sizeof(device), "cpu:%u", stats->n_cpu_workers);
    bench_record_init(&rec, "overhead", c->name, "us_per_task", "us", "lower");
    rec.samples = us;
    rec.n_samples = opts->n_runs;
    set_peer(&rec, peer, c->name);
    bench_record_add_str(&rec, "device", device);
    bench_record_add_int(&rec, "tasks", (int64_t)n_tasks);
    bench_record_add_int(&rec, "handles", c->n_handles);
    bench_record_add_str(&rec, "policy", tsr_sched_policy_name(stats->policy));
    bench_record_add_str(&rec, "timed", "first submit to wait_all return");
    bench_report_emit(opts->report, &rec);
}

static int run_case(const struct bench_opts *opts, const struct overhead_case *c,
                    const struct bench_peer_result *peer)
{
    struct overhead_state st;
    tsr_runtime_stats_t stats = TSR_RUNTIME_STATS_INIT;
    uint64_t n_tasks = opts->is_quick ? c->n_tasks / 10 : c->n_tasks;
    double *us = calloc(opts->n_runs, sizeof(*us));
    double seconds = 0.0;
    int err;

    if (us == NULL || state_open(opts, c->n_handles, &st) != 0) {
        free(us);
        return 1;
    }
    err = run_once(&st, n_tasks, &seconds);
    for (uint32_t r = 0; r < opts->n_runs && err == 0; r++) {
        err = run_once(&st, n_tasks, &seconds);
        us[r] = seconds * 1e6 / (double)n_tasks;
    }
    if (err == 0) {
        err = check_stats(st.rt, c->name, &stats);
    }
    if (err == 0) {
        emit_case(opts, c, n_tasks, us, peer, &stats);
    }
    state_close(&st);
    free(us);
    return err;
}

static void run_peer(const struct bench_opts *opts, struct bench_peer_result *peer)
{
    tsr_config_t resolved;
    char args[512];

    memset(peer, 0, sizeof(*peer));
    if (!opts->use_peers) {
        snprintf(peer->note, sizeof(peer->note), "peer not run (--no-peer)");
        return;
    }
    if (bench_resolve(opts, &resolved) != 0) {
        snprintf(peer->note, sizeof(peer->note), "peer not run (configuration invalid)");
        return;
    }
    snprintf(args, sizeof(args), "--workers %d --policy %s --runs %u%s%s%s",
             (int)resolved.n_cpu_workers, tsr_sched_policy_name(resolved.policy), opts->n_runs,
             opts->is_quick ? " --quick" : "", opts->case_filter != NULL ? " --case " : "",
             opts->case_filter != NULL ? opts->case_filter : "");
    if (isatty(STDERR_FILENO)) {
        fprintf(stderr, "tessera-bench: overhead: running peer %s ...\n", PEER_NAME);
    }
    bench_peer_run(PEER_PROG, args, peer);
}

/* The case filter is passed to the peer's command line, so it must name a case. */
static int check_filter(const char *filter)
{
    if (filter == NULL) {
        return 0;
    }
    for (size_t i = 0; i < N_CASES; i++) {
        if (strcmp(cases[i].name, filter) == 0) {
            return 0;
        }
    }
    fprintf(stderr,
            "tessera-bench: overhead has no case '%s' on --device cpu (independent, "
            "rw_1000_handles, chain)\n",
            filter);
    return 1;
}

int bench_overhead_run(const struct bench_opts *opts)
{
    struct bench_peer_result *peer;
    int err;

    if (opts->device != BENCH_DEVICE_CPU) {
        return bench_overhead_gpu_run(opts);
    }
    err = check_filter(opts->case_filter);

    peer = malloc(sizeof(*peer));
    if (err != 0 || peer == NULL) {
        free(peer);
        return 1;
    }
    run_peer(opts, peer);
    for (size_t i = 0; i < N_CASES && err == 0; i++) {
        if (opts->case_filter == NULL || strcmp(opts->case_filter, cases[i].name) == 0) {
            err = run_case(opts, &cases[i], peer);
        }
    }
    free(peer);
    return err;
}
