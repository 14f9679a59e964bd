/* tessera-bench: JSON-lines and table output of measurement records. */
#include "bench_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bench_record_init(struct bench_record *rec, const char *bench, const char *case_name,
                       const char *metric, const char *unit, const char *better)
{
    memset(rec, 0, sizeof(*rec));
    rec->bench = bench;
    rec->case_name = case_name;
    rec->metric = metric;
    rec->unit = unit;
    rec->better = better;
    rec->peer_value = NAN;
    rec->floor_value = NAN;
}

static struct bench_field *add_field(struct bench_record *rec, const char *key,
                                     enum bench_field_kind kind)
{
    struct bench_field *f;

    if (rec->n_extra >= BENCH_MAX_EXTRA) {
        return NULL;
    }
    f = &rec->extra[rec->n_extra++];
    memset(f, 0, sizeof(*f));
    f->key = key;
    f->kind = kind;
    return f;
}

void bench_record_add_str(struct bench_record *rec, const char *key, const char *value)
{
    struct bench_field *f = add_field(rec, key, BENCH_FIELD_STR);

    if (f != NULL) {
        f->s = value;
    }
}

void bench_record_add_int(struct bench_record *rec, const char *key, int64_t value)
{
    struct bench_field *f = add_field(rec, key, BENCH_FIELD_INT);

    if (f != NULL) {
        f->i = value;
    }
}

void bench_record_add_num(struct bench_record *rec, const char *key, double value)
{
    struct bench_field *f = add_field(rec, key, BENCH_FIELD_NUM);

    if (f != NULL) {
        f->d = value;
    }
}

void bench_report_init(struct bench_report *rep, FILE *out, enum bench_format format)
{
    rep->out = out;
    rep->format = format;
    rep->has_header = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

double bench_median(const double *samples, size_t n)
{
    double *sorted;
    double median;

    if (n == 0) {
        return NAN;
    }
    sorted = malloc(n * sizeof(*sorted));
    if (sorted == NULL) {
        return NAN;
    }
    memcpy(sorted, samples, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_double);
    median = (n % 2 == 1) ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    free(sorted);
    return median;
}

double bench_spread(const double *samples, size_t n)
{
    double lo;
    double hi;

    if (n == 0) {
        return NAN;
    }
    lo = samples[0];
    hi = samples[0];
    for (size_t i = 1; i < n; i++) {
        lo = samples[i] < lo ? samples[i] : lo;
        hi = samples[i] > hi ? samples[i] : hi;
    }
    return hi - lo;
}

/* JSON string with the escapes RFC 8259 requires; NULL is written as null. */
static void json_str(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

/* JSON number; NaN and infinities (no JSON form) are written as null. */
static void json_num(FILE *out, double v)
{
    if (isfinite(v)) {
        fprintf(out, "%.6g", v);
    } else {
        fputs("null", out);
    }
}

static void json_key(FILE *out, const char *key)
{
    fputc(',', out);
    json_str(out, key);
    fputc(':', out);
}

static void json_extra(FILE *out, const struct bench_field *f)
{
    json_key(out, f->key);
    switch (f->kind) {
    case BENCH_FIELD_STR:
        json_str(out, f->s);
        break;
    case BENCH_FIELD_INT:
        fprintf(out, "%lld", (long long)f->i);
        break;
    case BENCH_FIELD_NUM:
        json_num(out, f->d);
        break;
    }
}

static void emit_json(FILE *out, const struct bench_record *rec)
{
    fputs("{\"bench\":", out);
    json_str(out, rec->bench);
    json_key(out, "case");
    json_str(out, rec->case_name);
    json_key(out, "metric");
    json_str(out, rec->metric);
    json_key(out, "value");
    json_num(out, bench_median(rec->samples, rec->n_samples));
    json_key(out, "unit");
    json_str(out, rec->unit);
    json_key(out, "better");
    json_str(out, rec->better);
    fprintf(out, ",\"n\":%zu", rec->n_samples);
    json_key(out, "spread");
    json_num(out, bench_spread(rec->samples, rec->n_samples));
    json_key(out, "peer");
    json_str(out, rec->peer);
    json_key(out, "peer_value");
    json_num(out, rec->peer_value);
    json_key(out, "floor_value");
    json_num(out, rec->floor_value);
    for (size_t i = 0; i < rec->n_extra; i++) {
        json_extra(out, &rec->extra[i]);
    }
    fputs("}\n", out);
}

/* How many times better than the peer (> 1: Tessera wins), NAN without one. */
static double peer_ratio(const struct bench_record *rec, double value)
{
    if (!isfinite(rec->peer_value) || !(value > 0.0) || !(rec->peer_value > 0.0)) {
        return NAN;
    }
    if (strcmp(rec->better, "higher") == 0) {
        return value / rec->peer_value;
    }
    return rec->peer_value / value;
}

static void table_extras(FILE *out, const struct bench_record *rec)
{
    for (size_t i = 0; i < rec->n_extra; i++) {
        const struct bench_field *f = &rec->extra[i];

        if (f->kind == BENCH_FIELD_STR && f->s != NULL && strchr(f->s, ' ') != NULL) {
            fprintf(out, " %s=\"%s\"", f->key, f->s);
        } else if (f->kind == BENCH_FIELD_STR) {
            fprintf(out, " %s=%s", f->key, f->s != NULL ? f->s : "-");
        } else if (f->kind == BENCH_FIELD_INT) {
            fprintf(out, " %s=%lld", f->key, (long long)f->i);
        } else {
            fprintf(out, " %s=%.4g", f->key, f->d);
        }
    }
}

static void emit_table(struct bench_report *rep, const struct bench_record *rec)
{
    FILE *out = rep->out;
    double value = bench_median(rec->samples, rec->n_samples);
    double ratio = peer_ratio(rec, value);
    char peer_txt[64] = "-";
    char ratio_txt[32] = "-";

    if (!rep->has_header) {
        fprintf(out, "%-10s %-18s %-12s %12s %-5s %10s %3s  %-22s %7s  %s\n", "bench", "case",
                "metric", "value", "unit", "spread", "n", "peer", "vs_peer", "details");
        rep->has_header = 1;
    }
    if (isfinite(rec->peer_value)) {
        snprintf(peer_txt, sizeof(peer_txt), "%s %.4g", rec->peer, rec->peer_value);
    } else if (rec->peer != NULL) {
        snprintf(peer_txt, sizeof(peer_txt), "%s n/a", rec->peer);
    }
    if (isfinite(ratio)) {
        snprintf(ratio_txt, sizeof(ratio_txt), "%.2fx", ratio);
    }
    fprintf(out, "%-10s %-18s %-12s %12.4g %-5s %10.3g %3zu  %-22s %7s ", rec->bench,
            rec->case_name, rec->metric, value, rec->unit,
            bench_spread(rec->samples, rec->n_samples), rec->n_samples, peer_txt, ratio_txt);
    table_extras(out, rec);
    fputc('\n', out);
}

void bench_report_emit(struct bench_report *rep, const struct bench_record *rec)
{
    if (rep->format == BENCH_FORMAT_TABLE) {
        emit_table(rep, rec);
    } else {
        emit_json(rep->out, rec);
    }
    fflush(rep->out);
}
