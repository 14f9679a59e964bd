/* tessera-bench array: sum_spill_gpu (--device cuda) and sum_spill_sim (--device sim),
 * an array three times the device memory limit, persisted, then reduced pass after
 * pass through that limit (metric `seconds` of a steady pass, lower better).
 *
 * CUDA: the first GPU with device_memory_limit 8 GiB [256 MiB]; x random float32 of
 * 6 x 2^30 elements, 24 GiB [192 x 2^20, 768 MiB], in chunks of 2^24 elements, 64
 * MiB [2^19, 2 MiB]: the limit holds 128 chunks, twice what the GPU's driver thread
 * keeps in flight. Sim: one sim device of 64 MiB, x of 48 x 2^20 elements (192 MiB)
 * in chunks of 4 MiB, whatever --quick says. Tasks on the accelerator alone, as in
 * bench_array_gpu.c (TSR_CONFIG_F_ACCEL_FIRST, the runtime's policy unless --policy).
 *
 * Untimed but reported: persisting x (generated on the device, two thirds of it
 * written back to host memory to make room: persist_s) and the first pass
 * (first_pass_s), which writes back what persist left on the device while it
 * reads the rest. Timed: --runs further passes, each x.sum() built and computed into
 * a host float (tsr_array_compute); by then every chunk is clean in host memory, so
 * a pass streams x host to device, dropping replicas for room. The figure is
 * the second pass; the value is the median of passes 2 .. 1 + --runs.
 * h2d_bytes_per_pass: what those passes copied to the device, per pass.
 *
 * floor_value: x's bytes over the host-to-device link bandwidth measured in the same
 * run, runtime up, before x exists (pinned cudaMemcpy of 1 GiB [64 MiB], best of
 * max(--runs, 5) after a warm-up; on sim half a one-thread memcpy's read + write
 * rate). floor_fraction = floor_value / value = the pass's effective bandwidth
 * (x bytes / seconds, pass_gbps) over the link's; the target is >= 0.7.
 *
 * Check: every pass's sum against x's sum in float64 from a CPU-only runtime (all
 * cores) over the same counter-based generator, streamed in chunks (nothing kept);
 * relative error <= 1e-6. A wrong one: value null, a message, exit status 1.
 *
 * Peer (CUDA only, after the runtime has shut down): CuPy with its memory pool
 * limited to the same bytes (set_limit) allocating x (cupy.random): it cannot, and
 * the record says so (peer_value null, note "cupy: OutOfMemoryError ..."). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_array.h"
#include "bench_cuda.h"

#define FLOOR_MIN_RUNS 5u
#define SPILL_TARGET 0.7

struct spill_sizes {
    int64_t n;
    int64_t chunk;
    uint64_t limit;    /* device_memory_limit, or the sim device's memory */
    size_t link_bytes; /* the floor's copy */
};

static const struct spill_sizes cuda_sizes = {(int64_t)6 << 30, (int64_t)1 << 24, (uint64_t)8 << 30,
                                              (size_t)1 << 30};
static const struct spill_sizes cuda_quick_sizes = {(int64_t)192 << 20, (int64_t)1 << 19,
                                                    (uint64_t)256 << 20, (size_t)64 << 20};
static const struct spill_sizes sim_sizes = {(int64_t)48 << 20, (int64_t)1 << 20,
                                             (uint64_t)64 << 20, (size_t)64 << 20};

/* x.sum() on a 1-D float32 x: the sum_f32 workload at other sizes. */
static const struct array_case spill_case = {
    .name = "sum_spill",
    .expr = "x.sum(), x 3x the device memory limit",
    .kind = KIND_SUM_F32,
    .ndim = 1,
    .dtype = TSR_FLOAT32,
    .floor = FLOOR_READ,
};

struct spill_run {
    struct array_run r; /* r.seconds: the timed passes */
    struct spill_sizes z;
    double persist_s;
    double first_s;
    double *sums;        /* every pass's, the first included */
    uint64_t h2d_timed;  /* copied to the device during the timed passes */
    tsr_mem_stats_t dev; /* after the passes */
    double link_gbps;    /* NAN: not measured */
    char link_why[160];
    double ref; /* float64 sum from the CPU */
    struct peer_side cupy;
};

const char *array_spill_case_name(const struct bench_opts *opts)
{
    return opts->device == BENCH_DEVICE_SIM ? "sum_spill_sim" : "sum_spill_gpu";
}

/* The link bandwidth of the floor (see the top of the file). */
static void spill_link(const struct bench_opts *opts, struct spill_run *s)
{
    uint32_t n_runs = opts->n_runs > FLOOR_MIN_RUNS ? opts->n_runs : FLOOR_MIN_RUNS;
    int ordinal = (int)s->r.tg.info.kind_index;
    double *v = calloc(n_runs, sizeof(double));
    double best = 0.0;

    s->link_gbps = NAN;
    if (s->r.tg.info.kind != TSR_DEVICE_CUDA) {
        s->link_gbps = array_memcpy_gbps(s->z.link_bytes, n_runs) / 2.0;
    } else if (v != NULL &&
               bench_cuda_memcpy_peer(BENCH_COPY_H2D_PINNED, ordinal, ordinal, s->z.link_bytes,
                                      n_runs, v, s->link_why, sizeof(s->link_why)) == 0) {
        for (uint32_t i = 0; i < n_runs; i++) {
            best = v[i] > best ? v[i] : best;
        }
        s->link_gbps = best;
    }
    free(v);
}

/* One pass: x.sum() into a host float. */
static tsr_status_t spill_pass(struct spill_run *s, double *seconds_out, double *sum_out)
{
    tsr_array_t *res = NULL;
    float sum = NAN;
    double t0 = bench_now_s();
    tsr_status_t st = array_build_expr(&s->r, &res);

    st = st == TSR_OK ? tsr_array_compute(res, &sum, sizeof(sum)) : st;
    *seconds_out = bench_now_s() - t0;
    *sum_out = (double)sum;
    tsr_array_release(res);
    return st;
}

/* Persist x, the first pass, the timed ones. Returns 0, or 1 after saying why. */
static int spill_measure(const struct bench_opts *opts, struct spill_run *s)
{
    tsr_runtime_stats_t after = TSR_RUNTIME_STATS_INIT;
    double t0 = bench_now_s();
    tsr_status_t st = array_make_inputs(&s->r);
    uint64_t h2d_before;

    s->persist_s = bench_now_s() - t0;
    st = st == TSR_OK ? spill_pass(s, &s->first_s, &s->sums[0]) : st;
    h2d_before = array_h2d_bytes(&s->r.tg);
    for (uint32_t i = 0; i < opts->n_runs && st == TSR_OK; i++) {
        st = spill_pass(s, &s->r.seconds[i], &s->sums[1 + i]);
    }
    s->h2d_timed = array_h2d_bytes(&s->r.tg) - h2d_before;
    tsr_runtime_stats(s->r.tg.rt, &after);
    tsr_runtime_mem_stats(s->r.tg.rt, s->r.tg.info.mem_node, &s->dev);
    s->r.policy = after.policy;
    if (st != TSR_OK) {
        char what[160];

        snprintf(what, sizeof(what), "array %s: persist or sum", array_spill_case_name(opts));
        bench_print_error(what, st);
        return 1;
    }
    return 0;
}

/* x's sum in float64 on the CPU alone (environment ignored: no accelerator, every
 * core). Returns 0, or 1 after saying why. */
static int spill_reference(const struct spill_run *s, double *ref_out)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_array_spec_t spec = TSR_ARRAY_SPEC_INIT;
    tsr_runtime_t *rt = NULL;
    tsr_array_t *x = NULL;
    tsr_array_t *x64 = NULL;
    tsr_array_t *sum = NULL;
    tsr_status_t st;

    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cuda_devices = -1;
    spec.dtype = TSR_FLOAT32;
    spec.ndim = 1;
    spec.shape[0] = s->r.n;
    spec.chunks[0] = s->r.chunk;
    st = tsr_init(&cfg, &rt);
    st = st == TSR_OK ? tsr_array_random_uniform(rt, &spec, ARRAY_SEED, 0.0, 1.0, &x) : st;
    st = st == TSR_OK ? tsr_array_cast(x, TSR_FLOAT64, &x64) : st;
    st = st == TSR_OK ? tsr_array_reduce(TSR_REDUCE_SUM, x64, NULL, &sum) : st;
    st = st == TSR_OK ? tsr_array_compute(sum, ref_out, sizeof(*ref_out)) : st;
    tsr_array_release(sum);
    tsr_array_release(x64);
    tsr_array_release(x);
    tsr_shutdown(rt);
    if (st != TSR_OK) {
        bench_print_error("array sum_spill: the reference sum on the CPU", st);
        return 1;
    }
    return 0;
}

/* Every pass's sum against the reference; fills r.check, r.checksum, r.is_wrong. */
static void spill_check(const struct bench_opts *opts, struct spill_run *s)
{
    uint32_t n_sums = 1 + opts->n_runs;
    double max_err = 0.0;

    for (uint32_t i = 0; i < n_sums; i++) {
        max_err = fmax(max_err, fabs(s->sums[i] - s->ref) / fabs(s->ref));
    }
    s->r.checksum = s->sums[opts->n_runs];
    s->r.is_wrong = !(max_err <= ARRAY_REL_TOL);
    snprintf(s->r.check, sizeof(s->r.check),
             "%s: %u passes' sums (last %.9g) vs %.9g in float64 on the CPU over the same "
             "generator (max rel error %.3g, tol %.0e)",
             s->r.is_wrong ? "FAILED" : "passed", n_sums, s->r.checksum, s->ref, max_err,
             ARRAY_REL_TOL);
    if (s->r.is_wrong) {
        fprintf(stderr, "tessera-bench: array %s: wrong sum: %s\n", array_spill_case_name(opts),
                s->r.check);
    }
}

/* ---- the record ---- */

static void spill_notes(const struct spill_run *s, char *note, size_t size)
{
    const char *parts[2] = {s->cupy.note, s->link_why};
    size_t used = 0;

    note[0] = '\0';
    for (size_t i = 0; i < 2 && used < size; i++) {
        if (parts[i][0] != '\0') {
            used +=
                (size_t)snprintf(note + used, size - used, "%s%s", used > 0 ? "; " : "", parts[i]);
        }
    }
}

static void spill_emit(const struct bench_opts *opts, const struct spill_run *s)
{
    double x_bytes = (double)array_x_bytes(&s->r);
    char note[3 * BENCH_PEER_NOTE_MAX];
    struct bench_record rec;
    double value;
    double frac;

    bench_record_init(&rec, "array", array_spill_case_name(opts), "seconds", "s", "lower");
    rec.samples = s->r.seconds;
    rec.n_samples = s->r.is_wrong ? 0 : opts->n_runs;
    value = rec.n_samples > 0 ? bench_median(s->r.seconds, rec.n_samples) : NAN;
    rec.floor_value = x_bytes / (s->link_gbps * 1e9);
    frac = array_ratio(rec.floor_value, value);
    rec.peer = s->cupy.label;
    rec.peer_value = s->cupy.seconds;
    bench_target_describe(&s->r.tg, &rec);
    bench_record_add_str(&rec, "dtype", "float32");
    bench_record_add_str(&rec, "shape", s->r.shape);
    bench_record_add_str(&rec, "chunks", s->r.chunks);
    bench_record_add_int(&rec, "device_memory_limit", (int64_t)s->dev.capacity);
    bench_record_add_str(&rec, "floor",
                         s->r.tg.info.kind == TSR_DEVICE_CUDA
                             ? "x bytes over pinned cudaMemcpy host to device, same run"
                             : "x bytes over a one-thread memcpy, same run");
    bench_record_add_num(&rec, "link_gbps", s->link_gbps);
    bench_record_add_num(&rec, "floor_fraction", frac);
    bench_record_add_num(&rec, "pass_gbps", x_bytes / value / 1e9);
    bench_record_add_num(&rec, "first_pass_s", s->first_s);
    bench_record_add_num(&rec, "persist_s", s->persist_s);
    bench_record_add_int(&rec, "h2d_bytes_per_pass", (int64_t)(s->h2d_timed / opts->n_runs));
    bench_record_add_int(&rec, "spilled_bytes", (int64_t)s->dev.spilled_bytes);
    bench_record_add_str(&rec, "policy", tsr_sched_policy_name(s->r.policy));
    bench_record_add_str(&rec, "check", s->r.check);
    bench_record_add_num(&rec, "checksum", s->r.checksum);
    bench_record_add_str(&rec, "target",
                         "passes after the first at >= 0.7 of the host-to-device "
                         "link (floor_fraction); CuPy cannot hold x");
    bench_record_add_num(&rec, "target_met", isfinite(frac) ? (double)(frac >= SPILL_TARGET) : NAN);
    bench_record_add_str(&rec, "timed",
                         "tasks on the accelerator alone (TSR_CONFIG_F_ACCEL_FIRST); x "
                         "persisted (spilled) and summed once before; a pass: build x.sum() + "
                         "tsr_array_compute into a host float; value: median of passes 2 .. 1 + "
                         "runs");
    spill_notes(s, note, sizeof(note));
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_report_emit(opts->report, &rec);
}

/* ---- the case ---- */

static void spill_sizes_of(const struct bench_opts *opts, struct spill_run *s)
{
    if (opts->device == BENCH_DEVICE_SIM) {
        s->z = sim_sizes;
    } else {
        s->z = opts->is_quick ? cuda_quick_sizes : cuda_sizes;
    }
    s->r.c = &spill_case;
    s->r.n = s->z.n;
    s->r.chunk = s->z.chunk;
    array_describe_sizes(&s->r);
}

/* The device side: open, floor, measure, close. Returns 0, or 1 after saying why. */
static int spill_device(const struct bench_opts *opts, struct spill_run *s)
{
    const char *name = array_spill_case_name(opts);
    int err = array_gpu_open(opts, s->z.limit, &s->r.tg);

    if (err != 0) {
        return 1;
    }
    spill_link(opts, s);
    err = spill_measure(opts, s);
    err = err != 0 || bench_check_tasks(s->r.tg.rt, name) != 0;
    tsr_array_release(s->r.x);
    s->r.x = NULL;
    bench_target_close(&s->r.tg);
    return err;
}

int array_spill_run(const struct bench_opts *opts)
{
    struct spill_run *s = calloc(1, sizeof(*s));
    int err;

    if (s == NULL || (s->r.seconds = calloc(opts->n_runs, sizeof(double))) == NULL ||
        (s->sums = calloc(1 + (size_t)opts->n_runs, sizeof(double))) == NULL) {
        fprintf(stderr, "tessera-bench: array %s: out of memory\n", array_spill_case_name(opts));
        if (s != NULL) {
            free(s->r.seconds);
        }
        free(s);
        return 1;
    }
    spill_sizes_of(opts, s);
    err = spill_device(opts, s);
    err = err == 0 ? spill_reference(s, &s->ref) : err;
    if (err == 0) {
        char extra[64];

        spill_check(opts, s);
        snprintf(extra, sizeof(extra), "--limit-bytes %llu", (unsigned long long)s->z.limit);
        array_cupy_peer(opts, &s->r, spill_case.name, extra, &s->cupy);
        if (strstr(s->cupy.note, "OutOfMemoryError") != NULL) {
            snprintf(s->cupy.note, sizeof(s->cupy.note),
                     "cupy: OutOfMemoryError under the same %.3g GiB limit (expected: CuPy holds "
                     "x whole in device memory)",
                     (double)s->z.limit / (double)(1u << 30));
        }
        spill_emit(opts, s);
    }
    err = err != 0 || s->r.is_wrong;
    free(s->sums);
    free(s->r.seconds);
    free(s);
    return err;
}
