/* tessera-bench overhead on an accelerator (--device cuda, or sim for machines
 * without a GPU): the runtime's cost per task when every task is a tiny kernel.
 *
 * Cases: `gpu_chain` (every task RW on the same handle, so each depends on the
 * one before) and `gpu_independent` (each task RW on a handle of its own, so none
 * depends on another); on sim they are `gpu_chain_sim` and `gpu_independent_sim`.
 * Each task increments one uint32_t: on CUDA a <<<1, 1>>> kernel
 * (bench_cuda_tiny_impl), on sim the CPU function below. Tasks are pinned to the
 * first device of the kind. The timed region runs from the first submit to the
 * return of tsr_wait_all; runtime start-up and handle registration are outside it,
 * and one untimed warm-up run first moves the cells to the device, where they stay
 * (the timed runs copy nothing). Every cell is checked at the end.
 *
 * Peers, measured in the same invocation before Tessera's runs: on CUDA
 * "bare-cuda-loop" (peers/cuda_loop.cu: the same kernel launched in a plain loop on
 * one stream, one synchronise at the end); on sim "plain-c-loop" (the same C
 * function called in a loop on the calling thread). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_cuda.h"

#define GPU_N_TASKS 10000u /* --quick: a tenth */

struct gpu_case {
    const char *name;
    int is_chain;
};

static const struct gpu_case sim_cases[] = {
    {"gpu_chain_sim", 1},
    {"gpu_independent_sim", 0},
};
static const struct gpu_case cuda_cases[] = {
    {"gpu_chain", 1},
    {"gpu_independent", 0},
};
#define N_GPU_CASES 2

/* The runtime, the device and the cells of one case, alive across its runs. */
struct gpu_state {
    struct bench_target tg;
    tsr_data_t **handles;
    uint32_t *cells;
    uint32_t n_handles;
};

/* The peer's figures for one case, or why there are none. */
struct gpu_peer {
    double *us; /* n_runs values when is_ok */
    int is_ok;
    char note[256];
};

static tsr_status_t tiny_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    uint32_t *cell = bufs[0].ptr;

    (void)ctx;
    (void)arg;
    cell[0] += 1u;
    return TSR_OK;
}

static const tsr_codelet_t tiny_cl = {
    .name = "tiny_inc",
    .impl = {[TSR_DEVICE_CPU] = tiny_cpu, [TSR_DEVICE_CUDA] = bench_cuda_tiny_impl},
    .n_buffers = 1,
    .modes = {TSR_RW},
};

static void state_close(struct gpu_state *st)
{
    for (uint32_t i = 0; st->handles != NULL && i < st->n_handles; i++) {
        tsr_data_unregister(st->handles[i]);
    }
    bench_target_close(&st->tg);
    free(st->handles);
    free(st->cells);
    memset(st, 0, sizeof(*st));
}

static int state_open(const struct bench_opts *opts, uint32_t n_handles, struct gpu_state *st)
{
    tsr_status_t rc;

    memset(st, 0, sizeof(*st));
    if (bench_target_open(opts, 0, &st->tg) != 0) {
        return 1;
    }
    st->handles = calloc(n_handles, sizeof(tsr_data_t *));
    st->cells = calloc(n_handles, sizeof(*st->cells));
    if (st->handles == NULL || st->cells == NULL) {
        fprintf(stderr, "tessera-bench: out of memory\n");
        state_close(st);
        return 1;
    }
    for (; st->n_handles < n_handles; st->n_handles++) {
        rc = tsr_data_register(st->tg.rt, &st->cells[st->n_handles], sizeof(uint32_t),
                               &st->handles[st->n_handles]);
        if (rc != TSR_OK) {
            bench_print_error("tsr_data_register", rc);
            state_close(st);
            return 1;
        }
    }
    return 0;
}

/* Submit n_tasks tiny tasks and wait for all; `*seconds_out` is the time from
 * the first submit to the return of tsr_wait_all. With first_out, the first task's
 * future is returned there (new, owned by the caller). */
static int run_once(struct gpu_state *st, uint32_t n_tasks, tsr_future_t **first_out,
                    double *seconds_out)
{
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    tsr_status_t rc = TSR_OK;
    double t0;

    desc.codelet = &tiny_cl;
    desc.n_handles = 1;
    desc.pin = TSR_PIN_DEVICE;
    desc.pin_value = st->tg.dev;
    t0 = bench_now_s();
    for (uint32_t i = 0; i < n_tasks && rc == TSR_OK; i++) {
        desc.handles = &st->handles[st->n_handles == 1 ? 0 : i];
        rc = tsr_task_submit(st->tg.rt, &desc, i == 0 ? first_out : NULL);
    }
    if (rc != TSR_OK) {
        bench_print_error("tsr_task_submit", rc);
        tsr_wait_all(st->tg.rt);
        return 1;
    }
    rc = tsr_wait_all(st->tg.rt);
    *seconds_out = bench_now_s() - t0;
    if (rc != TSR_OK) {
        bench_print_error("tsr_wait_all", rc);
        return 1;
    }
    return 0;
}

/* The untimed run; a failing kernel is reported with its message here. */
static int warm_up(struct gpu_state *st, const char *case_name, uint32_t n_tasks)
{
    tsr_future_t *first = NULL;
    double seconds;
    int err = run_once(st, n_tasks, &first, &seconds);
    tsr_status_t rc = first != NULL ? tsr_future_wait(first) : TSR_OK;

    if (err == 0 && rc != TSR_OK) {
        fprintf(stderr, "tessera-bench: overhead %s: the first task failed: %s: %s\n", case_name,
                tsr_status_str(rc), tsr_future_message(first));
        err = 1;
    }
    tsr_future_release(first);
    return err;
}

/* Every cell holds what n_rounds runs must have left there. */
static int check_cells(struct gpu_state *st, const char *case_name, uint32_t n_tasks,
                       uint32_t n_rounds)
{
    uint32_t want = st->n_handles == 1 ? n_tasks * n_rounds : n_rounds;
    int err = 0;

    for (uint32_t i = 0; i < st->n_handles && err == 0; i++) {
        uint32_t *cell = NULL;
        tsr_status_t rc = tsr_data_acquire(st->handles[i], TSR_R, (void **)&cell, NULL);

        if (rc != TSR_OK) {
            bench_print_error("tsr_data_acquire", rc);
            return 1;
        }
        if (*cell != want) {
            fprintf(stderr,
                    "tessera-bench: overhead %s: WRONG RESULT: cell %u is %u, expected %u\n",
                    case_name, i, *cell, want);
            err = 1;
        }
        tsr_data_release(st->handles[i]);
    }
    return err;
}

/* plain-c-loop: the kernel function called n times on the calling thread. It is
 * called through a volatile pointer, as the runtime calls it through the codelet,
 * so the compiler cannot fold the loop away. */
static double c_loop_once(uint32_t *cells, uint32_t n, int is_chain)
{
    tsr_kernel_fn volatile kernel = tiny_cpu;
    double t0 = bench_now_s();

    for (uint32_t i = 0; i < n; i++) {
        tsr_buffer_t buf = {&cells[is_chain ? 0 : i], sizeof(uint32_t)};

        kernel(NULL, &buf, NULL);
    }
    return bench_now_s() - t0;
}

static void run_c_loop_peer(const struct bench_opts *opts, const struct gpu_case *c, uint32_t n,
                            struct gpu_peer *peer)
{
    uint32_t *cells = calloc(n, sizeof(*cells));

    if (cells == NULL) {
        snprintf(peer->note, sizeof(peer->note), "plain-c-loop: out of memory");
        return;
    }
    c_loop_once(cells, n, c->is_chain);
    for (uint32_t r = 0; r < opts->n_runs; r++) {
        peer->us[r] = c_loop_once(cells, n, c->is_chain) * 1e6 / (double)n;
    }
    peer->is_ok = 1;
    free(cells);
}

static void run_peer(const struct bench_opts *opts, const struct gpu_case *c, uint32_t n,
                     const struct bench_target *tg, struct gpu_peer *peer)
{
    if (!opts->use_peers) {
        snprintf(peer->note, sizeof(peer->note), "peer not run (--no-peer)");
    } else if (opts->device == BENCH_DEVICE_SIM) {
        run_c_loop_peer(opts, c, n, peer);
    } else {
        peer->is_ok = bench_cuda_loop_peer((int)tg->info.kind_index, n, c->is_chain, opts->n_runs,
                                           peer->us, peer->note, sizeof(peer->note)) == 0;
    }
}

static void emit_case(const struct bench_opts *opts, const struct gpu_case *c,
                      const struct gpu_state *st, uint32_t n_tasks, const double *us,
                      const struct gpu_peer *peer)
{
    int is_cuda = opts->device == BENCH_DEVICE_CUDA;
    struct bench_record rec;

    bench_record_init(&rec, "overhead", c->name, "us_per_task", "us", "lower");
    rec.samples = us;
    rec.n_samples = opts->n_runs;
    rec.peer = is_cuda ? "bare-cuda-loop" : "plain-c-loop";
    if (peer->is_ok) {
        rec.peer_value = bench_median(peer->us, opts->n_runs);
        bench_record_add_num(&rec, "peer_spread", bench_spread(peer->us, opts->n_runs));
    } else {
        bench_record_add_str(&rec, "note", peer->note);
    }
    bench_target_describe(&st->tg, &rec);
    bench_record_add_int(&rec, "tasks", n_tasks);
    bench_record_add_int(&rec, "handles", st->n_handles);
    bench_record_add_str(&rec, "kernel", is_cuda ? "<<<1,1>>> cell += 1" : "C cell += 1");
    bench_record_add_str(&rec, "timed", "first submit to wait_all return");
    bench_record_add_str(&rec, "peer_timed",
                         is_cuda ? "first launch to stream synchronize return" : "the call loop");
    if (is_cuda) {
        bench_record_add_str(&rec, "target", "within 2x of bare-cuda-loop");
    }
    bench_report_emit(opts->report, &rec);
}

static int run_case(const struct bench_opts *opts, const struct gpu_case *c)
{
    uint32_t n_tasks = opts->is_quick ? GPU_N_TASKS / 10 : GPU_N_TASKS;
    double *us = calloc(2 * (size_t)opts->n_runs, sizeof(*us));
    struct gpu_peer peer = {us != NULL ? us + opts->n_runs : NULL, 0, ""};
    struct gpu_state st;
    double seconds = 0.0;
    int err;

    if (us == NULL || state_open(opts, c->is_chain ? 1 : n_tasks, &st) != 0) {
        free(us);
        return 1;
    }
    run_peer(opts, c, n_tasks, &st.tg, &peer);
    err = warm_up(&st, c->name, n_tasks);
    for (uint32_t r = 0; r < opts->n_runs && err == 0; r++) {
        err = run_once(&st, n_tasks, NULL, &seconds);
        us[r] = seconds * 1e6 / (double)n_tasks;
    }
    err = err != 0 ? err : bench_check_tasks(st.tg.rt, c->name);
    err = err != 0 ? err : check_cells(&st, c->name, n_tasks, opts->n_runs + 1);
    if (err == 0) {
        emit_case(opts, c, &st, n_tasks, us, &peer);
    }
    state_close(&st);
    free(us);
    return err;
}

int bench_overhead_gpu_run(const struct bench_opts *opts)
{
    const struct gpu_case *cases = opts->device == BENCH_DEVICE_SIM ? sim_cases : cuda_cases;
    int n_run = 0;
    int err = 0;

    for (size_t i = 0; i < N_GPU_CASES && err == 0; i++) {
        if (opts->case_filter == NULL || strcmp(opts->case_filter, cases[i].name) == 0) {
            err = run_case(opts, &cases[i]);
            n_run++;
        }
    }
    if (n_run == 0) {
        fprintf(stderr, "tessera-bench: overhead has no case '%s' on --device %s (%s, %s)\n",
                opts->case_filter, bench_device_name(opts->device), cases[0].name, cases[1].name);
        return 1;
    }
    return err;
}
