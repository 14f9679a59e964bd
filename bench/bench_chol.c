/* tessera-bench sched: the task graph of the tiled Cholesky factorisation and
 * two lower bounds on its makespan (bench_chol.h).
 *
 * Critical path: the longest path through the graph with every task at the cost
 * of the fastest class that can run it. Area: every core and GPU runs one task at
 * a time, so for any schedule of makespan M, the work placed on GPUs is at most
 * n_gpus M and the work left on cores at most n_cpus M. Relaxing tasks to be
 * divisible and splitting each kind between the classes (fraction x_c of kind c
 * on GPUs), the least M meeting both is a linear programme whose optimum, for a
 * given M, is a fractional knapsack: fill the GPUs' n_gpus M seconds with the
 * kinds of highest speed-up first. So the optimum lies on the path that moves
 * kinds to the GPUs in decreasing speed-up order, where the GPU and core loads
 * (per unit) cross; it is computed exactly below, segment by segment. Transfers
 * are taken as free, so both are bounds whatever the links. */
#include "bench_chol.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tasks that read a tile since its last write: the dependents of the next write. */
struct tile_state {
    int64_t last_writer; /* -1: none yet */
    uint32_t *readers;
    uint32_t n_readers;
    uint32_t cap_readers;
};

const char *chol_kind_name(enum chol_kind kind)
{
    static const char *const names[CHOL_N_KINDS] = {"potrf", "trsm", "syrk", "gemm"};

    return (unsigned)kind < CHOL_N_KINDS ? names[kind] : "?";
}

double chol_kind_flops(enum chol_kind kind, size_t b)
{
    static const double per_b3[CHOL_N_KINDS] = {1.0 / 3.0, 1.0, 1.0, 2.0};
    double b3 = (double)b * (double)b * (double)b;

    return (unsigned)kind < CHOL_N_KINDS ? per_b3[kind] * b3 : 0.0;
}

static uint32_t count_tasks(uint32_t t)
{
    return t + t * (t - 1) + t * (t - 1) * (t - 2) / 6;
}

/* Task `idx` of kind `kind` at step k on the given tiles (written one last). */
static void task_set(struct chol_dag *dag, uint32_t idx, enum chol_kind kind, uint32_t k,
                     uint32_t n_tiles, const uint32_t *tiles)
{
    struct chol_task *task = &dag->tasks[idx];

    task->kind = kind;
    task->k = k;
    task->n_tiles = n_tiles;
    memcpy(task->tiles, tiles, n_tiles * sizeof(*tiles));
    dag->n_of_kind[kind]++;
}

/* The tasks in submission order, without their dependencies. */
static void list_tasks(struct chol_dag *dag)
{
    uint32_t t = dag->n_tile_rows;
    uint32_t idx = 0;

    for (uint32_t k = 0; k < t; k++) {
        uint32_t kk[1] = {chol_tile_index(k, k)};

        task_set(dag, idx++, CHOL_POTRF, k, 1, kk);
        for (uint32_t m = k + 1; m < t; m++) {
            uint32_t tiles[2] = {chol_tile_index(k, k), chol_tile_index(m, k)};

            task_set(dag, idx++, CHOL_TRSM, k, 2, tiles);
        }
        for (uint32_t n = k + 1; n < t; n++) {
            uint32_t nn[2] = {chol_tile_index(n, k), chol_tile_index(n, n)};

            task_set(dag, idx++, CHOL_SYRK, k, 2, nn);
            for (uint32_t m = n + 1; m < t; m++) {
                uint32_t mn[3] = {chol_tile_index(m, k), chol_tile_index(n, k),
                                  chol_tile_index(m, n)};

                task_set(dag, idx++, CHOL_GEMM, k, 3, mn);
            }
        }
    }
}

static int add_pred(struct chol_task *task, uint32_t *cap, int64_t pred)
{
    uint32_t *grown;

    if (pred < 0) {
        return 0;
    }
    for (uint32_t i = 0; i < task->n_preds; i++) {
        if (task->preds[i] == (uint32_t)pred) {
            return 0;
        }
    }
    if (task->n_preds == *cap) {
        *cap = *cap != 0 ? 2 * *cap : 4;
        grown = realloc(task->preds, *cap * sizeof(*grown));
        if (grown == NULL) {
            return 1;
        }
        task->preds = grown;
    }
    task->preds[task->n_preds++] = (uint32_t)pred;
    return 0;
}

static int add_reader(struct tile_state *ts, uint32_t idx)
{
    uint32_t *grown;

    if (ts->n_readers == ts->cap_readers) {
        ts->cap_readers = ts->cap_readers != 0 ? 2 * ts->cap_readers : 8;
        grown = realloc(ts->readers, ts->cap_readers * sizeof(*grown));
        if (grown == NULL) {
            return 1;
        }
        ts->readers = grown;
    }
    ts->readers[ts->n_readers++] = idx;
    return 0;
}

/* The dependencies of task idx as the runtime infers them (sequential
 * consistency), then its effect on the tiles' states. */
static int link_task(struct chol_dag *dag, struct tile_state *tiles, uint32_t idx)
{
    struct chol_task *task = &dag->tasks[idx];
    struct tile_state *out = &tiles[task->tiles[task->n_tiles - 1]];
    uint32_t cap = 0;
    int err = 0;

    for (uint32_t i = 0; i < task->n_tiles; i++) {
        err |= add_pred(task, &cap, tiles[task->tiles[i]].last_writer);
    }
    for (uint32_t r = 0; r < out->n_readers; r++) {
        err |= add_pred(task, &cap, out->readers[r]);
    }
    for (uint32_t i = 0; i + 1 < task->n_tiles; i++) {
        err |= add_reader(&tiles[task->tiles[i]], idx);
    }
    out->last_writer = idx;
    out->n_readers = 0;
    return err;
}

int chol_dag_build(uint32_t n_tile_rows, struct chol_dag *dag_out)
{
    struct chol_dag *dag = dag_out;
    struct tile_state *tiles;
    int err = 0;

    memset(dag, 0, sizeof(*dag));
    dag->n_tile_rows = n_tile_rows;
    dag->n_tiles = n_tile_rows * (n_tile_rows + 1) / 2;
    dag->n_tasks = count_tasks(n_tile_rows);
    dag->tasks = calloc(dag->n_tasks, sizeof(*dag->tasks));
    tiles = calloc(dag->n_tiles, sizeof(*tiles));
    if (dag->tasks != NULL && tiles != NULL) {
        list_tasks(dag);
        for (uint32_t i = 0; i < dag->n_tiles; i++) {
            tiles[i].last_writer = -1;
        }
        for (uint32_t i = 0; i < dag->n_tasks && err == 0; i++) {
            err = link_task(dag, tiles, i);
        }
    }
    for (uint32_t i = 0; tiles != NULL && i < dag->n_tiles; i++) {
        free(tiles[i].readers);
    }
    if (dag->tasks == NULL || tiles == NULL || err != 0) {
        fprintf(stderr, "tessera-bench: sched: out of memory (dag of %u tiles)\n", n_tile_rows);
        chol_dag_free(dag);
        free(tiles);
        return 1;
    }
    free(tiles);
    return 0;
}

void chol_dag_free(struct chol_dag *dag)
{
    for (uint32_t i = 0; dag->tasks != NULL && i < dag->n_tasks; i++) {
        free(dag->tasks[i].preds);
    }
    free(dag->tasks);
    memset(dag, 0, sizeof(*dag));
}

/* Cost of `kind` on the fastest class that can run it. */
static double fastest_s(const struct chol_costs *costs, enum chol_kind kind)
{
    double cpu = costs->cpu_s[kind];
    double gpu = costs->gpu_s[kind];

    if (cpu < 0.0) {
        return gpu;
    }
    return gpu < 0.0 || cpu < gpu ? cpu : gpu;
}

void chol_dag_bottom_levels(const struct chol_dag *dag, const struct chol_costs *costs,
                            double *bottom_s)
{
    for (uint32_t i = 0; i < dag->n_tasks; i++) {
        bottom_s[i] = 0.0; /* longest path after task i, until its own cost is added */
    }
    for (uint32_t i = dag->n_tasks; i-- > 0;) {
        const struct chol_task *task = &dag->tasks[i];

        bottom_s[i] += fastest_s(costs, task->kind);
        for (uint32_t p = 0; p < task->n_preds; p++) {
            uint32_t pred = task->preds[p];

            bottom_s[pred] = fmax(bottom_s[pred], bottom_s[i]);
        }
    }
}

/* Seconds of work of each kind on each class if it all ran there. */
struct area_work {
    double on_cpu[CHOL_N_KINDS];
    double on_gpu[CHOL_N_KINDS];
};

/* The kinds both classes can run, in decreasing speed-up (cpu / gpu) order;
 * returns how many. */
static int flexible_order(const struct chol_costs *costs, int *order)
{
    int n = 0;

    for (int c = 0; c < CHOL_N_KINDS; c++) {
        int at = n++;

        if (costs->cpu_s[c] < 0.0 || costs->gpu_s[c] < 0.0) {
            n--;
            continue;
        }
        while (at > 0 && costs->cpu_s[order[at - 1]] / costs->gpu_s[order[at - 1]] <
                             costs->cpu_s[c] / costs->gpu_s[c]) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = c;
    }
    return n;
}

/* Walk kinds onto the GPUs in decreasing speed-up; the least max(gpu load /
 * n_gpus, cpu load / n_cpus) over the path (at a crossing, or an end). */
static double area_bound(const struct chol_costs *costs, const struct area_work *w, double n_cpus,
                         double n_gpus)
{
    int order[CHOL_N_KINDS];
    int n_flex = flexible_order(costs, order);
    double gpu_load = 0.0;
    double cpu_load = 0.0;
    double best;

    for (int c = 0; c < CHOL_N_KINDS; c++) {
        gpu_load += costs->cpu_s[c] < 0.0 ? w->on_gpu[c] : 0.0;
        cpu_load += costs->cpu_s[c] < 0.0 ? 0.0 : w->on_cpu[c];
    }
    best = fmax(gpu_load / n_gpus, cpu_load / n_cpus);
    for (int i = 0; i < n_flex; i++) {
        int c = order[i];
        double f = (cpu_load / n_cpus - gpu_load / n_gpus) /
                   (w->on_gpu[c] / n_gpus + w->on_cpu[c] / n_cpus);

        if (f > 0.0 && f < 1.0) {
            best = fmin(best, (gpu_load + f * w->on_gpu[c]) / n_gpus);
        }
        gpu_load += w->on_gpu[c];
        cpu_load -= w->on_cpu[c];
        best = fmin(best, fmax(gpu_load / n_gpus, cpu_load / n_cpus));
    }
    return best;
}

static double critical_path(const struct chol_dag *dag, const struct chol_costs *costs)
{
    double *finish = calloc(dag->n_tasks, sizeof(*finish));
    double longest = 0.0;

    if (finish == NULL) {
        return NAN;
    }
    for (uint32_t i = 0; i < dag->n_tasks; i++) {
        const struct chol_task *task = &dag->tasks[i];
        double start = 0.0;

        for (uint32_t p = 0; p < task->n_preds; p++) {
            start = fmax(start, finish[task->preds[p]]);
        }
        finish[i] = start + fastest_s(costs, task->kind);
        longest = fmax(longest, finish[i]);
    }
    free(finish);
    return longest;
}

void chol_dag_bounds(const struct chol_dag *dag, const struct chol_costs *costs, uint32_t n_cpus,
                     uint32_t n_gpus, struct chol_bounds *bounds_out)
{
    struct chol_costs usable = *costs;
    struct area_work w;

    for (int c = 0; c < CHOL_N_KINDS; c++) {
        usable.cpu_s[c] = n_cpus > 0 ? costs->cpu_s[c] : -1.0;
        usable.gpu_s[c] = n_gpus > 0 ? costs->gpu_s[c] : -1.0;
        w.on_cpu[c] = (double)dag->n_of_kind[c] * usable.cpu_s[c];
        w.on_gpu[c] = (double)dag->n_of_kind[c] * usable.gpu_s[c];
    }
    bounds_out->critical_path_s = critical_path(dag, &usable);
    if (n_gpus == 0) {
        bounds_out->area_s = 0.0;
        for (int c = 0; c < CHOL_N_KINDS; c++) {
            bounds_out->area_s += w.on_cpu[c] / (double)n_cpus;
        }
    } else if (n_cpus == 0) {
        bounds_out->area_s = 0.0;
        for (int c = 0; c < CHOL_N_KINDS; c++) {
            bounds_out->area_s += w.on_gpu[c] / (double)n_gpus;
        }
    } else {
        bounds_out->area_s = area_bound(&usable, &w, (double)n_cpus, (double)n_gpus);
    }
}
