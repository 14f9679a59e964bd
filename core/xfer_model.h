/* Transfer model: how long a copy between two memory nodes takes, as
 * latency + n_bytes / bandwidth per ordered pair (src == dst costs 0). Node 0 is
 * host memory. Private to core/.
 *
 * Two sets of values per pair:
 * - the base, measured by tsr__xm_calibrate (or read from the cache file, or set
 *   with tsr__xm_set; before any of these: TSR_XM_DEFAULT_LATENCY_S and
 *   TSR_XM_DEFAULT_BYTES_PER_S); it is what is saved;
 * - the live estimate, which starts at the base and follows tsr__xm_observe, so
 *   contention in this run is learnt without leaking into the cache.
 *
 * Observing: a copy of at least TSR_XM_MIN_BANDWIDTH_BYTES whose predicted
 * bandwidth term outweighs the latency refines the bandwidth (from seconds -
 * latency); any other refines the latency (from seconds - n/bandwidth). The size
 * floor keeps small copies from dragging the bandwidth down where the latency
 * was measured as about 0 (memcpy-like links). Each is an exponentially weighted mean in log space,
 * weight TSR_XM_OBSERVE_WEIGHT, with the log of the ratio to the current value
 * clamped to ±ln 2: one outlier moves the estimate by at most 2^0.1 (7 %), while
 * a lasting change is followed within a few dozen copies.
 *
 * Cache file `<dir>/transfers.model` (text; '#' lines and blank lines ignored):
 *
 *     tessera-xfer 1
 *     signature <platform signature, escaped: bytes outside '!'..'~', and '%', as %XX>
 *     nodes <n>
 *     pair <src> <dst> <latency_s> <bytes_per_s>     (one per ordered pair src != dst)
 *
 * It is used only if the signature and the node count match and every pair is
 * present and valid; otherwise it is ignored whole (and calibration reruns).
 *
 * Threads: predict, get and observe may run concurrently (predict reads atomics,
 * observe takes a mutex). The other calls are set-up calls: not concurrent with
 * anything on the same model. */
#ifndef TSR_CORE_XFER_MODEL_H
#define TSR_CORE_XFER_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <tessera/status.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_XM_MAX_NODES 16
#define TSR_XM_DEFAULT_LATENCY_S 1e-5
#define TSR_XM_DEFAULT_BYTES_PER_S 1e10
#define TSR_XM_OBSERVE_WEIGHT 0.1
#define TSR_XM_MIN_BANDWIDTH_BYTES (64u << 10)

struct tsr__xm;

/* Time one copy of n_bytes from node src to node dst, blocking until it completed,
 * into *seconds_out. TSR_ENOTSUP: this pair cannot be measured (it keeps its
 * values); other errors stop the calibration. */
typedef tsr_status_t (*tsr__xm_copy_fn)(void *ctx, uint32_t src, uint32_t dst, size_t n_bytes,
                                        double *seconds_out);

/* Calibration sizes and repetitions; zero fields take the defaults shown. The
 * pair's first copy (small) is a warm-up and is not counted. */
struct tsr__xm_calib_opts {
    size_t small_bytes;    /* 4 KiB: mostly latency */
    size_t large_bytes;    /* 16 MiB: mostly bandwidth */
    uint32_t n_small_reps; /* 5; the median counts */
    uint32_t n_large_reps; /* 3 */
};
/* clang-format off */
#define TSR_XM_CALIB_OPTS_INIT {0, 0, 0, 0}
/* clang-format on */

/* Outcome of tsr__xm_load. */
enum tsr__xm_cache {
    TSR_XM_CACHE_LOADED = 0,
    TSR_XM_CACHE_ABSENT = 1, /* no file (or no directory given) */
    TSR_XM_CACHE_STALE = 2,  /* another platform signature or node count */
    TSR_XM_CACHE_BAD = 3,    /* unreadable or malformed */
};

/* A model of n_nodes (1..TSR_XM_MAX_NODES) memory nodes with default values. On
 * TSR_OK *xm_out is new; free with tsr__xm_destroy. Errors: TSR_EINVAL, TSR_ENOMEM. */
tsr_status_t tsr__xm_create(uint32_t n_nodes, struct tsr__xm **xm_out);
void tsr__xm_destroy(struct tsr__xm *xm); /* NULL: no-op; does not save */

/* Set the base and live values of pair src -> dst. TSR_EINVAL: bad node, latency
 * negative, bandwidth not > 0, or either not finite. */
tsr_status_t tsr__xm_set(struct tsr__xm *xm, uint32_t src, uint32_t dst, double latency_s,
                         double bytes_per_s);

/* Live values of pair src -> dst (0 and infinity when src == dst). Thread-safe.
 * Errors: TSR_EINVAL. */
tsr_status_t tsr__xm_get(const struct tsr__xm *xm, uint32_t src, uint32_t dst, double *latency_out,
                         double *bytes_per_s_out);

/* Predicted seconds to copy n_bytes from src to dst: latency + n_bytes / bandwidth,
 * 0 when src == dst or a node is out of range. Thread-safe, lock-free. */
double tsr__xm_predict(const struct tsr__xm *xm, uint32_t src, uint32_t dst, uint64_t n_bytes);

/* Refine the live values of src -> dst from one completed copy. Ignored for src ==
 * dst, bad nodes, n_bytes == 0, or seconds not finite and > 0. Thread-safe. */
void tsr__xm_observe(struct tsr__xm *xm, uint32_t src, uint32_t dst, uint64_t n_bytes,
                     double seconds);

/* Measure every ordered pair src != dst with `copy` (see tsr__xm_calib_opts; opts
 * NULL: defaults) and set base and live values from the medians: bandwidth from
 * the slope between the two sizes, latency from the intercept (at least 0).
 * Borrows ctx. Errors: TSR_EINVAL, the first error of copy other than
 * TSR_ENOTSUP (pairs measured before it keep their new values). */
tsr_status_t tsr__xm_calibrate(struct tsr__xm *xm, tsr__xm_copy_fn copy, void *ctx,
                               const struct tsr__xm_calib_opts *opts);

/* Load the base (and live) values from <dir>/transfers.model if it was written for
 * `signature` and this node count; otherwise nothing changes. Borrows both. */
enum tsr__xm_cache tsr__xm_load(struct tsr__xm *xm, const char *dir, const char *signature);

/* Write the base values to <dir>/transfers.model (atomically; dir created if
 * missing). Borrows both. Errors: TSR_EINVAL, TSR_ENOMEM, TSR_EBACKEND. */
tsr_status_t tsr__xm_save(const struct tsr__xm *xm, const char *dir, const char *signature);

/* Load the cache; if it is not usable, calibrate and (dir not NULL) save. With
 * dir NULL: calibrate only. tsr__xm_cache_state then says what the cache was.
 * Errors: those of tsr__xm_calibrate and tsr__xm_save. */
tsr_status_t tsr__xm_setup(struct tsr__xm *xm, const char *dir, const char *signature,
                           tsr__xm_copy_fn copy, void *ctx);

/* Outcome of the last tsr__xm_load (ABSENT before any). */
enum tsr__xm_cache tsr__xm_cache_state(const struct tsr__xm *xm);

/* A matrix of live bandwidth (GB/s) and latency (µs), rows the sources, columns
 * the destinations. names: n_nodes names, or NULL ("node<i>"). Borrows all. */
void tsr__xm_print(const struct tsr__xm *xm, FILE *out, const char *const *names);

#ifdef __cplusplus
}
#endif

#endif /* TSR_CORE_XFER_MODEL_H */
