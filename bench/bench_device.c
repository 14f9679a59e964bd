/* tessera-bench: choosing the device a case runs on (--device), describing it in
 * records, and the check that stops `--device cuda` cleanly without a GPU. */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_cuda.h"

static const tsr_device_kind_t device_kinds[BENCH_DEVICE_COUNT] = {
    [BENCH_DEVICE_CPU] = TSR_DEVICE_CPU,
    [BENCH_DEVICE_SIM] = TSR_DEVICE_SIM,
    [BENCH_DEVICE_CUDA] = TSR_DEVICE_CUDA,
};

const char *bench_device_name(enum bench_device device)
{
    static const char *const names[BENCH_DEVICE_COUNT] = {"cpu", "sim", "cuda"};

    return (unsigned)device < BENCH_DEVICE_COUNT ? names[device] : "?";
}

int bench_device_find(tsr_runtime_t *rt, tsr_device_kind_t kind, uint32_t nth, uint32_t *index_out,
                      tsr_device_info_t *info_out)
{
    uint32_t n = tsr_runtime_n_devices(rt);
    tsr_device_info_t info;

    for (uint32_t i = 0; i < n; i++) {
        if (tsr_runtime_device_info(rt, i, &info) != TSR_OK || info.kind != (uint32_t)kind) {
            continue;
        }
        if (nth-- == 0) {
            *index_out = i;
            *info_out = info;
            return 0;
        }
    }
    return -1;
}

static int count_kind(tsr_runtime_t *rt, tsr_device_kind_t kind)
{
    uint32_t index;
    tsr_device_info_t info;
    int n = 0;

    while (bench_device_find(rt, kind, (uint32_t)n, &index, &info) == 0) {
        n++;
    }
    return n;
}

/* The NVIDIA driver release, from the kernel module's banner
 * ("NVRM version: NVIDIA UNIX ... Kernel Module  580.65.06  ..."): the first word
 * after "Module" that starts with a digit; "?" if there is none. */
static void nvidia_driver_version(char *buf, size_t n)
{
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    char line[512] = "";
    const char *p = NULL;
    char word[32];
    int len = 0;

    snprintf(buf, n, "?");
    if (f == NULL) {
        return;
    }
    if (fgets(line, sizeof(line), f) != NULL) {
        p = strstr(line, "Module");
    }
    fclose(f);
    while (p != NULL && sscanf(p, "%31s%n", word, &len) == 1) {
        if (word[0] >= '0' && word[0] <= '9') {
            snprintf(buf, n, "%s", word);
            return;
        }
        p += len;
    }
}

static void runtime_config(const struct bench_opts *opts, uint64_t sim_mem_bytes, tsr_config_t *cfg)
{
    cfg->n_cpu_workers = opts->n_workers;
    cfg->policy = opts->policy;
    if (opts->device == BENCH_DEVICE_SIM) {
        cfg->n_sim_devices = 1;
        cfg->sim_mem_bytes = sim_mem_bytes;
    }
}

static tsr_status_t runtime_open(const struct bench_opts *opts, uint64_t sim_mem_bytes,
                                 tsr_runtime_t **rt_out)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;

    runtime_config(opts, sim_mem_bytes, &cfg);
    return tsr_init(&cfg, rt_out);
}

/* "cpu", "sim" or "cuda" for a device kind. */
static const char *kind_name(tsr_device_kind_t kind)
{
    for (int d = 0; d < BENCH_DEVICE_COUNT; d++) {
        if (device_kinds[d] == kind) {
            return bench_device_name((enum bench_device)d);
        }
    }
    return "?";
}

int bench_target_open(const struct bench_opts *opts, uint64_t sim_mem_bytes,
                      struct bench_target *target_out)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;

    runtime_config(opts, sim_mem_bytes, &cfg);
    return bench_target_open_config(&cfg, device_kinds[opts->device], target_out);
}

int bench_target_open_config(const tsr_config_t *cfg, tsr_device_kind_t kind,
                             struct bench_target *target_out)
{
    struct bench_target *t = target_out;
    tsr_status_t st;

    memset(t, 0, sizeof(*t));
    st = tsr_init(cfg, &t->rt);
    if (st != TSR_OK) {
        bench_print_error("tsr_init", st);
        return 1;
    }
    if (bench_device_find(t->rt, kind, 0, &t->dev, &t->info) != 0) {
        fprintf(stderr, "tessera-bench: the runtime has no %s device\n", kind_name(kind));
        bench_target_close(t);
        return 1;
    }
    if (kind == TSR_DEVICE_CPU) {
        snprintf(t->label, sizeof(t->label), "cpu:%u", t->info.n_workers);
    } else {
        snprintf(t->label, sizeof(t->label), "%s:1", kind_name(kind));
    }
    if (kind == TSR_DEVICE_CUDA) {
        bench_cuda_describe((int)t->info.kind_index, t->gpu, sizeof(t->gpu), t->cuda_driver,
                            sizeof(t->cuda_driver), t->cuda_runtime, sizeof(t->cuda_runtime));
        nvidia_driver_version(t->driver, sizeof(t->driver));
    }
    return 0;
}

void bench_target_close(struct bench_target *target)
{
    tsr_shutdown(target->rt);
    target->rt = NULL;
}

void bench_target_describe(const struct bench_target *target, struct bench_record *rec)
{
    bench_record_add_str(rec, "device", target->label);
    if (target->info.kind == TSR_DEVICE_CUDA) {
        bench_record_add_str(rec, "gpu", target->gpu);
        bench_record_add_str(rec, "driver", target->driver);
        bench_record_add_str(rec, "cuda_driver", target->cuda_driver);
        bench_record_add_str(rec, "cuda_runtime", target->cuda_runtime);
    }
}

int bench_cuda_absent(const struct bench_opts *opts)
{
    char why[256] = "";
    tsr_runtime_t *rt = NULL;
    tsr_status_t st;
    int n_tessera;

    if (opts->device != BENCH_DEVICE_CUDA) {
        return 0;
    }
    if (bench_cuda_probe(why, sizeof(why)) > 0) {
        st = runtime_open(opts, 0, &rt);
        if (st != TSR_OK) {
            bench_print_error("tsr_init", st);
            return -1;
        }
        n_tessera = count_kind(rt, TSR_DEVICE_CUDA);
        tsr_shutdown(rt);
        if (n_tessera > 0) {
            return 0;
        }
        snprintf(why, sizeof(why),
                 "the CUDA runtime sees a GPU but Tessera registered none "
                 "(TESSERA_CUDA_DEVICES=0? see `tessera info`)");
    }
    fprintf(stderr, "tessera-bench: --device cuda: no CUDA device (%s); nothing measured\n", why);
    return 1;
}

int bench_check_tasks(tsr_runtime_t *rt, const char *what)
{
    tsr_runtime_stats_t s = TSR_RUNTIME_STATS_INIT;
    tsr_status_t st = tsr_runtime_stats(rt, &s);

    if (st != TSR_OK) {
        bench_print_error("tsr_runtime_stats", st);
        return 1;
    }
    if (s.n_completed != s.n_submitted || s.n_failed != 0 || s.n_cancelled != 0) {
        fprintf(stderr,
                "tessera-bench: %s: %llu submitted, %llu completed, %llu failed, %llu "
                "cancelled\n",
                what, (unsigned long long)s.n_submitted, (unsigned long long)s.n_completed,
                (unsigned long long)s.n_failed, (unsigned long long)s.n_cancelled);
        return 1;
    }
    return 0;
}
