/* Virtual-time simulation.
 *
 * The platform file (see TESSERA_SIMULATE in <tessera/runtime.h> and the README)
 * gives CPU cores, GPUs with their memory and speed-ups over one core, links, and
 * the CPU time of each codelet's task. The runtime is built as usual from it,
 * except that its GPUs are "virtual" devices (kind CUDA) whose memory is only
 * counted and whose copies only take time, and that no worker thread starts: the
 * thread that waits (tsr_wait_all, a future, an acquire) runs an event loop.
 *
 * The loop: every idle worker takes its next task from the real queues (the CPU
 * policy's, or its device's); making the task's inputs valid on its memory node
 * runs the real coherence code, whose copies occupy the links one after another
 * (a link is busy until its last copy ends); the task then starts when its inputs
 * have arrived and runs for its modelled time. The earliest completion advances
 * the clock and completes its task for real, which makes successors ready and
 * lets the policy place them. Completions at the same time go in worker order and
 * idle workers look for work in a fixed rotation, so the same graph and platform
 * give the same schedule. */
#include "core/vtime.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_impl.h"
#include "core/data_impl.h"
#include "core/device.h"
#include "core/error.h"
#include "core/place.h"
#include "core/runtime_impl.h"
#include "core/sched.h"
#include "core/task_impl.h"
#include "core/worker.h"
#include "devices/device_ops.h"

#define VT_MAX_COSTS 128
#define VT_MAX_GPUS (TSR_MAX_NODES - 1)
#define VT_DEFAULT_GFLOPS 10.0
#define VT_DEFAULT_TASK_S 1e-3
#define VT_FAKE_BASE 0x100000000000ull

struct vt_cost {
    char name[64];
    double cpu_s;   /* 0: not given */
    double speedup; /* 0: not given */
};

struct vt_worker {
    struct tsr_future *task;
    uint64_t start_ns;
    uint64_t end_ns;
    uint64_t busy_ns;
};

/* The state of one virtual GPU, as its device ops see it. */
struct vdev {
    struct tsr__vt *vt;
    uint32_t node;
};

struct tsr__vt {
    tsr_runtime_t *rt;
    uint32_t n_cores;
    double cpu_gflops;
    uint32_t n_gpus;
    uint64_t gpu_mem;
    double default_speedup;
    double hg_latency_s, hg_bytes_per_s; /* host <-> GPU */
    double gg_latency_s, gg_bytes_per_s; /* GPU <-> GPU */
    struct vt_cost costs[VT_MAX_COSTS];
    uint32_t n_costs;

    uint64_t now_ns;
    uint64_t link_busy[TSR_MAX_NODES][TSR_MAX_NODES];
    uint64_t inputs_ready_ns; /* of the task being started */
    uint64_t bytes_moved;
    uint64_t n_tasks;
    uint64_t makespan_ns;
    uint64_t next_fake;
    uint32_t next_first; /* the idle worker that looks for work first, in turn */
    struct vt_worker *workers;
    struct vdev gpus[TSR_MAX_NODES];
};

/* ---- platform file ------------------------------------------------------------ */

struct unit {
    const char *suffix;
    double factor;
};

/* A number with one of `units` (longest suffixes first), e.g. "80GiB". */
static int parse_with_unit(const char *text, const struct unit *units, size_t n_units, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (end == text || errno != 0 || !(v >= 0.0) || !isfinite(v)) {
        return 0;
    }
    for (size_t i = 0; i < n_units; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            *out = v * units[i].factor;
            return 1;
        }
    }
    return 0;
}

static int parse_bytes(const char *text, double *out)
{
    static const struct unit u[] = {{"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0},
                                    {"KB", 1e3},     {"MB", 1e6},        {"GB", 1e9},
                                    {"B", 1.0},      {"", 1.0}};

    return parse_with_unit(text, u, sizeof(u) / sizeof(u[0]), out);
}

static int parse_rate(const char *text, double *out)
{
    static const struct unit u[] = {{"GB/s", 1e9}, {"MB/s", 1e6}, {"KB/s", 1e3}, {"B/s", 1.0}};

    return parse_with_unit(text, u, sizeof(u) / sizeof(u[0]), out) && *out > 0.0;
}

static int parse_time(const char *text, double *out)
{
    static const struct unit u[] = {
        {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}, {"s", 1.0}, {"", 1.0}};

    return parse_with_unit(text, u, sizeof(u) / sizeof(u[0]), out);
}

static int parse_plain(const char *text, double *out)
{
    static const struct unit u[] = {{"", 1.0}};

    return parse_with_unit(text, u, 1, out);
}

static struct vt_cost *cost_of(struct tsr__vt *vt, const char *name, int create)
{
    for (uint32_t i = 0; i < vt->n_costs; i++) {
        if (strcmp(vt->costs[i].name, name) == 0) {
            return &vt->costs[i];
        }
    }
    if (!create || vt->n_costs == VT_MAX_COSTS || strlen(name) >= sizeof(vt->costs[0].name)) {
        return NULL;
    }
    snprintf(vt->costs[vt->n_costs].name, sizeof(vt->costs[0].name), "%s", name);
    return &vt->costs[vt->n_costs++];
}

/* One key=value field of a directive; returns 0 when it is not recognised. */
static int apply_field(struct tsr__vt *vt, const char *directive, const char *what, char *key,
                       const char *value)
{
    double v;

    if (strcmp(directive, "cpu") == 0) {
        if (strcmp(key, "cores") == 0 && parse_plain(value, &v) && v >= 1 && v <= 1024 &&
            v == floor(v)) {
            vt->n_cores = (uint32_t)v;
            return 1;
        }
        if (strcmp(key, "gflops") == 0 && parse_plain(value, &v) && v > 0) {
            vt->cpu_gflops = v;
            return 1;
        }
        return 0;
    }
    if (strcmp(directive, "gpu") == 0) {
        if (strcmp(key, "count") == 0 && parse_plain(value, &v) && v >= 0 && v <= VT_MAX_GPUS &&
            v == floor(v)) {
            vt->n_gpus = (uint32_t)v;
            return 1;
        }
        if (strcmp(key, "memory") == 0 && parse_bytes(value, &v) && v >= 1) {
            vt->gpu_mem = (uint64_t)v;
            return 1;
        }
        if (strcmp(key, "speedup") == 0 && parse_plain(value, &v) && v > 0) {
            vt->default_speedup = v;
            return 1;
        }
        if (strncmp(key, "speedup.", 8) == 0 && key[8] != '\0' && parse_plain(value, &v) && v > 0) {
            struct vt_cost *c = cost_of(vt, key + 8, 1);

            if (c != NULL) {
                c->speedup = v;
                return 1;
            }
        }
        return 0;
    }
    if (strcmp(directive, "link") == 0) {
        int hg = strcmp(what, "host-gpu") == 0;

        if (strcmp(key, "bandwidth") == 0 && parse_rate(value, &v)) {
            *(hg ? &vt->hg_bytes_per_s : &vt->gg_bytes_per_s) = v;
            return 1;
        }
        if (strcmp(key, "latency") == 0 && parse_time(value, &v)) {
            *(hg ? &vt->hg_latency_s : &vt->gg_latency_s) = v;
            return 1;
        }
        return 0;
    }
    if (strcmp(directive, "task") == 0 && strcmp(key, "cpu") == 0 && parse_time(value, &v) &&
        v > 0) {
        struct vt_cost *c = cost_of(vt, what, 1);

        if (c != NULL) {
            c->cpu_s = v;
            return 1;
        }
    }
    return 0;
}

static tsr_status_t parse_line(struct tsr__vt *vt, char *line, const char *path, int line_no)
{
    char *save = NULL;
    char *directive = strtok_r(line, " \t\r\n", &save);
    const char *what = "";
    char *tok;

    if (directive == NULL || directive[0] == '#') {
        return TSR_OK;
    }
    if (strcmp(directive, "link") == 0 || strcmp(directive, "task") == 0) {
        what = strtok_r(NULL, " \t\r\n", &save);
        if (what == NULL || (strcmp(directive, "link") == 0 && strcmp(what, "host-gpu") != 0 &&
                             strcmp(what, "gpu-gpu") != 0)) {
            return tsr__fail(
                TSR_EINVAL, "%s:%d: '%s' needs %s", path, line_no, directive,
                strcmp(directive, "link") == 0 ? "host-gpu or gpu-gpu" : "a codelet name");
        }
    } else if (strcmp(directive, "cpu") != 0 && strcmp(directive, "gpu") != 0) {
        return tsr__fail(TSR_EINVAL, "%s:%d: unknown directive '%s' (cpu, gpu, link, task)", path,
                         line_no, directive);
    }
    while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && tok[0] != '#') {
        char *eq = strchr(tok, '=');

        if (eq == NULL) {
            return tsr__fail(TSR_EINVAL, "%s:%d: '%s' is not key=value", path, line_no, tok);
        }
        *eq = '\0';
        if (!apply_field(vt, directive, what, tok, eq + 1)) {
            return tsr__fail(TSR_EINVAL, "%s:%d: bad field %s=%s for '%s'", path, line_no, tok,
                             eq + 1, directive);
        }
    }
    return TSR_OK;
}

static tsr_status_t parse_platform(struct tsr__vt *vt, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int line_no = 0;
    tsr_status_t st = TSR_OK;

    if (f == NULL) {
        return tsr__fail(TSR_EINVAL, "simulation platform '%s' cannot be read: %s", path,
                         strerror(errno));
    }
    while (st == TSR_OK && fgets(line, sizeof(line), f) != NULL) {
        line_no++;
        st = parse_line(vt, line, path, line_no);
    }
    fclose(f);
    return st;
}

tsr_status_t tsr__vt_create(tsr_runtime_t *rt)
{
    struct tsr__vt *vt = calloc(1, sizeof(*vt));
    tsr_status_t st;

    if (vt == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory for the simulation");
    }
    vt->rt = rt;
    vt->n_cores = 1;
    vt->cpu_gflops = VT_DEFAULT_GFLOPS;
    vt->gpu_mem = 16ull << 30;
    vt->default_speedup = 1.0;
    vt->hg_latency_s = 10e-6;
    vt->hg_bytes_per_s = 16e9;
    vt->gg_latency_s = 5e-6;
    vt->gg_bytes_per_s = 100e9;
    vt->next_fake = VT_FAKE_BASE;
    st = parse_platform(vt, rt->cfg.simulate);
    if (st != TSR_OK) {
        free(vt);
        return tsr__fail(st, "tsr_init: %s", tsr_last_error());
    }
    rt->vt = vt;
    rt->cfg.n_cpu_workers = (int32_t)vt->n_cores;
    return TSR_OK;
}

void tsr__vt_destroy(tsr_runtime_t *rt)
{
    if (rt->vt != NULL) {
        free(rt->vt->workers);
        free(rt->vt);
        rt->vt = NULL;
    }
}

/* ---- the virtual GPU ------------------------------------------------------------- */

void *tsr__vt_fake_alloc(tsr_runtime_t *rt, size_t n_bytes)
{
    uint64_t p = rt->vt->next_fake;

    rt->vt->next_fake += (n_bytes + 4095) & ~(uint64_t)4095;
    rt->vt->next_fake += 4096;
    return (void *)(uintptr_t)p;
}

double tsr__vt_copy_seconds(tsr_runtime_t *rt, uint32_t src, uint32_t dst, uint64_t n_bytes)
{
    const struct tsr__vt *vt = rt->vt;

    if (src == dst) {
        return 0.0;
    }
    if (src == 0 || dst == 0) {
        return vt->hg_latency_s + (double)n_bytes / vt->hg_bytes_per_s;
    }
    return vt->gg_latency_s + (double)n_bytes / vt->gg_bytes_per_s;
}

static tsr_status_t vdev_execute(tsr_kernel_fn fn, tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                 const void *arg)
{
    (void)fn;
    (void)ctx;
    (void)bufs;
    (void)arg;
    return TSR_ENOTSUP; /* nothing runs in a simulation */
}

static tsr_status_t vdev_mem_alloc(void *state, struct tsr__dev_mem *mem, size_t n_bytes,
                                   void **ptr_out)
{
    struct vdev *v = state;

    if (mem->used + n_bytes > mem->capacity) {
        return TSR_ENOMEM;
    }
    mem->used += n_bytes;
    *ptr_out = tsr__vt_fake_alloc(v->vt->rt, n_bytes);
    return TSR_OK;
}

static void vdev_mem_free(void *state, struct tsr__dev_mem *mem, void *ptr, size_t n_bytes)
{
    (void)state;
    (void)ptr;
    mem->used -= n_bytes;
}

/* A copy occupies its link from when both it and the link are free. */
static tsr_status_t vdev_copy(const struct tsr__copy *c, char *msg, size_t n_msg)
{
    const struct vdev *sv = c->src_dev;
    const struct vdev *dv = c->dst_dev;
    struct tsr__vt *vt = (sv != NULL ? sv : dv)->vt;
    uint32_t src = sv != NULL ? sv->node : 0;
    uint32_t dst = dv != NULL ? dv->node : 0;
    uint64_t *busy = &vt->link_busy[src][dst];
    uint64_t start = *busy > vt->now_ns ? *busy : vt->now_ns;
    uint64_t end = start + (uint64_t)(tsr__vt_copy_seconds(vt->rt, src, dst, c->n_bytes) * 1e9);

    (void)msg;
    (void)n_msg;
    *busy = end;
    if (c->dst_fence != NULL) {
        /* A replica's fence is the virtual time its contents arrive. */
        *c->dst_fence = (void *)(uintptr_t)end;
    } else if (end > vt->inputs_ready_ns) {
        vt->inputs_ready_ns = end; /* into host memory, for the task being started */
    }
    vt->bytes_moved += c->n_bytes;
    return TSR_OK;
}

static void vdev_fence_free(void *state, void *fence)
{
    (void)state;
    (void)fence;
}

static const struct tsr__device_ops vdev_ops = {
    .name = "cuda",
    .kind = TSR_DEVICE_CUDA,
    .has_async_copies = 1, /* copies start when a task is placed, as on a GPU */
    .execute = vdev_execute,
    .mem_alloc = vdev_mem_alloc,
    .mem_free = vdev_mem_free,
    .copy = vdev_copy,
    .fence_free = vdev_fence_free,
};

tsr_status_t tsr__vt_devices_setup(tsr_runtime_t *rt)
{
    struct tsr__vt *vt = rt->vt;
    uint32_t n_workers = vt->n_cores + vt->n_gpus;

    rt->devices = calloc(TSR_MAX_NODES, sizeof(*rt->devices));
    vt->workers = calloc(n_workers, sizeof(*vt->workers));
    if (rt->devices == NULL || vt->workers == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory for the simulation");
    }
    rt->devices[0].ops = &tsr__cpu_device_ops;
    rt->devices[0].n_workers = vt->n_cores;
    snprintf(rt->devices[0].name, sizeof(rt->devices[0].name), "cpu");
    snprintf(rt->devices[0].model, sizeof(rt->devices[0].model), "simulated CPU, %u cores",
             (unsigned)vt->n_cores);
    for (uint32_t g = 1; g <= vt->n_gpus; g++) {
        struct tsr__device *dev = &rt->devices[g];

        dev->index = g;
        dev->kind_index = g - 1;
        dev->node = g;
        dev->ops = &vdev_ops;
        vt->gpus[g].vt = vt;
        vt->gpus[g].node = g;
        dev->state = &vt->gpus[g];
        dev->first_worker = vt->n_cores + g - 1;
        dev->n_workers = 1;
        dev->mem.capacity = tsr__config_limit(&rt->cfg.device_memory_limit, vt->gpu_mem, 1.0);
        snprintf(dev->name, sizeof(dev->name), "cuda%u", (unsigned)(g - 1));
        snprintf(dev->model, sizeof(dev->model), "simulated GPU, %g x a core by default",
                 vt->default_speedup);
        TSR_TRY(tsr__central_init(&dev->queue));
        dev->queue.by_order = 1;
        tsr__mem_cache_init(&dev->cache);
        dev->has_queue = 1;
    }
    rt->n_devices = 1 + vt->n_gpus;
    return tsr__devices_alloc_workers(rt, n_workers);
}

/* ---- the clock ------------------------------------------------------------------- */

double tsr__vt_task_seconds(tsr_runtime_t *rt, struct tsr_future *t, uint32_t kind)
{
    struct tsr__vt *vt = rt->vt;
    const char *name = t->cl->name != NULL ? t->cl->name : t->name;
    const struct vt_cost *c = cost_of(vt, name, 0);
    double cpu_s = c != NULL && c->cpu_s > 0.0 ? c->cpu_s : 0.0;
    double speedup = c != NULL && c->speedup > 0.0 ? c->speedup : vt->default_speedup;

    if (cpu_s == 0.0 && t->cl->flops != NULL) {
        size_t sizes[TSR_MAX_BUFFERS];

        for (uint32_t i = 0; i < t->n_bufs; i++) {
            sizes[i] = t->bufs[i].data->n_bytes;
        }
        cpu_s = t->cl->flops(sizes, t->n_bufs, t->arg) / (vt->cpu_gflops * 1e9);
    }
    if (!(cpu_s > 0.0)) {
        cpu_s = VT_DEFAULT_TASK_S;
    }
    return kind == TSR_DEVICE_CUDA ? cpu_s / speedup : cpu_s;
}

static struct tsr_future *vt_pop(tsr_runtime_t *rt, uint32_t i)
{
    return tsr__worker_pop(&rt->workers[i]);
}

static void vt_start(tsr_runtime_t *rt, uint32_t i, struct tsr_future *t)
{
    struct tsr__vt *vt = rt->vt;
    struct vt_worker *vw = &vt->workers[i];
    uint64_t run_ns;

    vt->inputs_ready_ns = vt->now_ns;
    if (!tsr__task_vt_start(&rt->workers[i], t)) {
        return; /* completed at once: cancelled, or its inputs could not be placed */
    }
    for (uint32_t b = 0; b < t->n_bufs; b++) {
        uint64_t arrival =
            (uint64_t)(uintptr_t)t->bufs[b].data->rep[rt->workers[i].dev->node].fence;

        if ((t->bufs[b].mode & TSR_R) && arrival > vt->inputs_ready_ns) {
            vt->inputs_ready_ns = arrival;
        }
    }
    run_ns = (uint64_t)(tsr__vt_task_seconds(rt, t, rt->workers[i].dev->ops->kind) * 1e9);
    vw->task = t;
    vw->start_ns = vt->inputs_ready_ns;
    vw->end_ns = vw->start_ns + run_ns;
    vw->busy_ns += run_ns;
    vt->n_tasks++;
}

tsr_status_t tsr__vt_run(tsr_runtime_t *rt)
{
    struct tsr__vt *vt = rt->vt;

    tsr__place_seed(0x5eed0f7e55e7aull); /* random placement repeats too */
    vt->next_first = 0;
    for (;;) {
        int is_started = 1;
        int next = -1;

        while (is_started) {
            /* Idle workers look for work in turn, from a rotating first one, so no
             * device is always first to the queues they share. */
            uint32_t first = vt->next_first++ % rt->n_workers;

            is_started = 0;
            for (uint32_t k = 0; k < rt->n_workers; k++) {
                uint32_t i = (first + k) % rt->n_workers;
                struct tsr_future *t;

                if (vt->workers[i].task == NULL && (t = vt_pop(rt, i)) != NULL) {
                    vt_start(rt, i, t);
                    is_started = 1;
                }
            }
        }
        for (uint32_t i = 0; i < rt->n_workers; i++) {
            if (vt->workers[i].task != NULL &&
                (next < 0 || vt->workers[i].end_ns < vt->workers[next].end_ns)) {
                next = (int)i;
            }
        }
        if (next < 0) {
            return TSR_OK;
        }
        {
            struct vt_worker *vw = &vt->workers[next];
            struct tsr_future *t = vw->task;

            vw->task = NULL;
            vt->now_ns = vw->end_ns;
            if (vt->now_ns > vt->makespan_ns) {
                vt->makespan_ns = vt->now_ns;
            }
            tsr__task_vt_finish(&rt->workers[next], t, rt->t0_ns + vw->start_ns,
                                rt->t0_ns + vw->end_ns);
        }
    }
}

tsr_status_t tsr_sim_report(tsr_runtime_t *rt, tsr_sim_report_t *out)
{
    struct tsr__vt *vt;

    if (rt == NULL || out == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_sim_report: NULL argument");
    }
    vt = rt->vt;
    if (vt == NULL) {
        return tsr__fail(TSR_EINVAL,
                         "tsr_sim_report: this runtime is not a simulation (set "
                         "tsr_config_t.simulate or TESSERA_SIMULATE)");
    }
    memset(out, 0, sizeof(*out));
    out->makespan_s = (double)vt->makespan_ns * 1e-9;
    out->n_tasks = vt->n_tasks;
    out->bytes_moved = vt->bytes_moved;
    out->n_workers = rt->n_workers < TSR_SIM_MAX_WORKERS ? rt->n_workers : TSR_SIM_MAX_WORKERS;
    for (uint32_t i = 0; i < out->n_workers; i++) {
        out->busy_s[i] = (double)vt->workers[i].busy_ns * 1e-9;
        out->worker_device[i] = rt->workers[i].dev->index;
    }
    return TSR_OK;
}

uint64_t tsr__vt_now_ns(tsr_runtime_t *rt)
{
    return rt->vt->now_ns;
}
