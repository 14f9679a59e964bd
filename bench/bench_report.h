/* tessera-bench: records of measurements and their output, one JSON object per
 * line (the format of shared/BENCH.md) or a human-readable table.
 *
 * A record is filled by a scenario (bench_record_init, then the setters), then
 * emitted; the report computes the median and spread of the samples. Strings
 * passed to a record are borrowed until bench_report_emit returns. */
#ifndef TESSERA_BENCH_REPORT_H
#define TESSERA_BENCH_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_EXTRA 24

enum bench_format {
    BENCH_FORMAT_JSON = 0,
    BENCH_FORMAT_TABLE = 1,
};

enum bench_field_kind {
    BENCH_FIELD_STR = 0,
    BENCH_FIELD_INT = 1,
    BENCH_FIELD_NUM = 2, /* NAN is written as null */
};

/* An extra field of a record ("device", "tasks", "policy", "note", ...). */
struct bench_field {
    const char *key;
    enum bench_field_kind kind;
    const char *s;
    int64_t i;
    double d;
};

/* One measurement: the required fields of BENCH.md plus extras. */
struct bench_record {
    const char *bench;     /* scenario, e.g. "overhead" */
    const char *case_name; /* e.g. "independent" */
    const char *metric;    /* e.g. "us_per_task" */
    const char *unit;      /* e.g. "us" */
    const char *better;    /* "lower" or "higher" */
    const double *samples; /* one value per run; borrowed */
    size_t n_samples;
    const char *peer;   /* NULL: null */
    double peer_value;  /* NAN: null */
    double floor_value; /* NAN: null */
    struct bench_field extra[BENCH_MAX_EXTRA];
    size_t n_extra;
};

struct bench_report {
    FILE *out;
    enum bench_format format;
    int has_header; /* table header already printed */
};

/* Start a record: metric fields set, no samples, peer and floor null. */
void bench_record_init(struct bench_record *rec, const char *bench, const char *case_name,
                       const char *metric, const char *unit, const char *better);

/* Append an extra field; silently ignored past BENCH_MAX_EXTRA. Borrows strings. */
void bench_record_add_str(struct bench_record *rec, const char *key, const char *value);
void bench_record_add_int(struct bench_record *rec, const char *key, int64_t value);
void bench_record_add_num(struct bench_record *rec, const char *key, double value);

/* Start a report on `out` (borrowed) in `format`. */
void bench_report_init(struct bench_report *rep, FILE *out, enum bench_format format);

/* Write `rec` (value = median of the samples, spread = max - min) and flush. */
void bench_report_emit(struct bench_report *rep, const struct bench_record *rec);

/* Median and max - min of `n` samples (n > 0; NAN for n == 0). */
double bench_median(const double *samples, size_t n);
double bench_spread(const double *samples, size_t n);

#endif /* TESSERA_BENCH_REPORT_H */
