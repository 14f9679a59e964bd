/* Performance models: how long a codelet runs on a device kind, per size
 * footprint, learnt from measured runs. One model set per runtime. Private to
 * core/.
 *
 * Key: codelet name × device kind × footprint. The footprint is a 32-bit hash of
 * the task's buffer sizes (tsr__pm_footprint) together with their total in bytes,
 * which is the x of the regression over size.
 *
 * Estimates, best first (enum tsr__pm_source):
 * - HISTORY: the entry has at least TSR_PM_MIN_SAMPLES samples. Each entry keeps
 *   its last TSR_PM_KEEP samples and a running count; the estimate is their
 *   median and the spread their median absolute deviation scaled by 1.4826 (a
 *   standard deviation for normal noise). One outlier (a 100x warm-up call, a
 *   noisy neighbour) moves neither.
 * - REGRESSION: t = a·n^b, fitted by least squares on log t against log n over
 *   the medians of the codelet's entries on that kind that have at least
 *   TSR_PM_MIN_SAMPLES samples (one point per footprint), once two distinct
 *   sizes exist. Spread: the estimate times (rms of the fit's log residuals, over
 *   n - 2 degrees of freedom, plus the mean relative spread of the points).
 * - HINT: roofline from the caller's hints and the kind's peaks (tsr__pm_set_peaks):
 *   max(flops / peak_flops, bytes / peak_bytes_per_s), over the terms whose hint
 *   and peak are both > 0. A hint is trusted to its order of magnitude: the spread
 *   equals the estimate.
 * - NONE: nothing known; the scheduler should explore.
 *
 * Persistence. A set created with a directory loads every `*-XXXXXXXX.model` file
 * there (XXXXXXXX: 8 hex digits; other files are not ours and are ignored) and
 * writes back, on tsr__pm_save and on destroy, the files of codelets whose model
 * changed, one file per codelet named tsr__pm_file_name(name): the name with every
 * byte outside [A-Za-z0-9_.-] (and a leading '.') replaced by '_', cut to 64
 * bytes, then '-' and the FNV-1a hash of the full name in hex, then ".model". The
 * name stays inside the directory whatever it holds. Files are replaced
 * atomically (temporary file + rename); concurrent processes: the last writer
 * wins. The directory is created on save if missing.
 *
 * File format (text, one record a line, fields separated by one space; '#' lines
 * and blank lines are ignored):
 *
 *     tessera-perfmodel 1
 *     codelet <name>
 *     <kind> <footprint> <n_bytes> <count> <median> <spread> <n_kept> <s_1> ... <s_n_kept>
 *
 * - line 1 is the version line; a file without it is rejected whole;
 * - <name> is the codelet name escaped: bytes outside '!'..'~', and '%', as %XX;
 *   the `codelet` line precedes the entries (a file without one is rejected);
 * - <kind> is "cpu", "cuda" or "sim"; <footprint> 8 hex digits; <n_bytes> and
 *   <count> (samples recorded ever) decimal integers; <median> and <spread>
 *   seconds (informative: recomputed from the samples on load); <n_kept> in
 *   1..TSR_PM_KEEP, then that many samples in seconds, oldest first
 *   (%.17g: values round-trip exactly).
 * Entry lines that fail to parse (bad field, count < n_kept, unknown kind,
 * duplicate key, trailing text) are skipped and counted; a file that is binary,
 * over 16 MiB, or lacks the header lines counts as a bad file. Loading never
 * fails the set: see tsr__pm_get_load_report.
 *
 * Threads: record, predict, regression, print and save may run concurrently
 * (a mutex per shard of codelets; record allocates only when it meets a new
 * codelet or footprint). create and destroy may not overlap anything. */
#ifndef TSR_CORE_PERFMODEL_H
#define TSR_CORE_PERFMODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <tessera/status.h>
#include <tessera/task.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_PM_KEEP 32          /* samples kept per entry */
#define TSR_PM_MIN_SAMPLES 3    /* samples before an entry's own history is used */
#define TSR_PM_MAX_ENTRIES 4096 /* footprints per codelet and kind; more are dropped */
#define TSR_PM_MAX_NAME 255     /* bytes of a codelet name */

struct tsr__pm;

/* Where an estimate came from, worst to best. */
enum tsr__pm_source {
    TSR_PM_NONE = 0,
    TSR_PM_HINT = 1,
    TSR_PM_REGRESSION = 2,
    TSR_PM_HISTORY = 3,
};

/* What a measurement or a query is about. All fields borrowed. */
struct tsr__pm_key {
    const char *name;   /* codelet name, non-empty */
    uint32_t kind;      /* a tsr_device_kind_t */
    uint32_t footprint; /* tsr__pm_footprint of the buffer sizes */
    uint64_t n_bytes;   /* total bytes of the buffers */
};

struct tsr__pm_estimate {
    double seconds;
    double spread;      /* seconds */
    uint64_t n_samples; /* samples ever recorded for this exact key */
    enum tsr__pm_source source;
};

/* What loading the directory found. */
struct tsr__pm_load_report {
    uint32_t n_files;         /* model files read */
    uint32_t n_bad_files;     /* rejected whole */
    uint32_t n_entries;       /* entries loaded */
    uint32_t n_skipped_lines; /* malformed entry lines */
    char first_problem[256];  /* "" or the first problem met ("gemm-1a2b3c4d.model:7: ...") */
};

/* Footprint of a list of buffer sizes: FNV-1a over the count and each size as 8
 * little-endian bytes. *total_out (may be NULL) gets the sum. Borrows n_bytes. */
uint32_t tsr__pm_footprint(const size_t *n_bytes, uint32_t n_buffers, uint64_t *total_out);

/* Create an empty model set; with `dir` (NULL: no persistence), load its model
 * files (see above; the directory may be missing). Borrows dir (copied). On TSR_OK
 * *pm_out is new; free with tsr__pm_destroy. Errors: TSR_ENOMEM. */
tsr_status_t tsr__pm_create(const char *dir, struct tsr__pm **pm_out);

/* Save (errors ignored: call tsr__pm_save first to see them) and free. NULL: no-op. */
void tsr__pm_destroy(struct tsr__pm *pm);

/* Peaks of device kind `kind` for the hint estimate (0: unknown). Thread-safe. */
void tsr__pm_set_peaks(struct tsr__pm *pm, uint32_t kind, double flops_per_s, double bytes_per_s);

/* Add one measured run of `seconds`. Borrows key (the name is copied the first
 * time it is met). Thread-safe. Errors: TSR_EINVAL (no name or one longer than
 * TSR_PM_MAX_NAME, kind out of range, seconds negative or not finite), TSR_ENOMEM. Beyond
 * TSR_PM_MAX_ENTRIES footprints the sample is dropped (counted, TSR_OK). */
tsr_status_t tsr__pm_record(struct tsr__pm *pm, const struct tsr__pm_key *key, double seconds);

/* Best estimate for `key`, with the cold-start hints (flops and bytes moved for
 * this task; 0: none). Writes *est_out in every case (NONE: seconds and spread 0)
 * and returns its source. A bad key gives NONE. Thread-safe. */
enum tsr__pm_source tsr__pm_predict(struct tsr__pm *pm, const struct tsr__pm_key *key,
                                    double flops_hint, double bytes_hint,
                                    struct tsr__pm_estimate *est_out);

/* The fitted t = a·n^b of codelet `name` on `kind`. Thread-safe. Errors:
 * TSR_EINVAL (bad argument), TSR_ENOTSUP (fewer than two sizes with enough
 * samples). */
tsr_status_t tsr__pm_regression(struct tsr__pm *pm, const char *name, uint32_t kind, double *a_out,
                                double *b_out);

/* Write the files of the codelets changed since the last save or load. TSR_OK
 * without a directory. Thread-safe. Errors: TSR_ENOMEM, TSR_EBACKEND (directory
 * or file not writable; the first failure is in tsr_last_error, the rest are
 * still tried and stay unsaved). */
tsr_status_t tsr__pm_save(struct tsr__pm *pm);

/* What loading found (zeros without a directory). */
void tsr__pm_get_load_report(const struct tsr__pm *pm, struct tsr__pm_load_report *report_out);

/* File name (no directory) of codelet `name`'s model into buf (n bytes; 96 are
 * always enough). */
void tsr__pm_file_name(const char *name, char *buf, size_t n);

/* Name of a device kind as in model files ("cpu"), "?" when out of range. */
const char *tsr__pm_kind_name(uint32_t kind);

/* A short human summary for `tessera info`: one line of totals, then one per
 * codelet and kind (sizes, samples, fit). Thread-safe. */
void tsr__pm_print(struct tsr__pm *pm, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* TSR_CORE_PERFMODEL_H */
