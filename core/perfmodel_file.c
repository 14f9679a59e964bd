/* Persistence of the performance models (format in perfmodel.h). Saving formats
 * each changed codelet's file under its shard's mutex and writes it after
 * releasing it, so workers recording meanwhile never wait for I/O. Loading treats
 * the files as untrusted: a line is parsed whole before anything is applied. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/model_file.h"
#include "core/perfmodel.h"
#include "core/perfmodel_impl.h"

#define STEM_MAX 64 /* bytes of the name kept in a file name */
#define FILE_MAGIC "tessera-perfmodel 1"

void tsr__pm_file_name(const char *name, char *buf, size_t n)
{
    char stem[STEM_MAX + 1];
    size_t len = 0;

    for (const char *c = name; *c != '\0' && len < STEM_MAX; c++) {
        char ch = *c;
        int is_plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                       (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || (ch == '.' && len > 0);

        stem[len++] = is_plain ? ch : '_';
    }
    stem[len] = '\0';
    snprintf(buf, n, "%s-%08x.model", stem, tsr__mf_hash_str(name));
}

/* ---- persistence ------------------------------------------------------------ */

static int cmp_entries(const void *a, const void *b)
{
    const struct pm_entry *x = *(const struct pm_entry *const *)a;
    const struct pm_entry *y = *(const struct pm_entry *const *)b;

    if (x->n_bytes != y->n_bytes) {
        return x->n_bytes < y->n_bytes ? -1 : 1;
    }
    return x->footprint < y->footprint ? -1 : x->footprint > y->footprint;
}

static void write_entry(FILE *f, uint32_t kind, struct pm_entry *e)
{
    uint32_t first = e->n_kept < TSR_PM_KEEP ? 0 : e->next_slot;

    tsr__pm_entry_refresh(e);
    fprintf(f, "%s %08x %llu %llu %.17g %.17g %u", tsr__pm_kind_name(kind), (unsigned)e->footprint,
            (unsigned long long)e->n_bytes, (unsigned long long)e->count, e->median, e->spread,
            (unsigned)e->n_kept);
    for (uint32_t j = 0; j < e->n_kept; j++) {
        fprintf(f, " %.17g", e->samples[(first + j) % TSR_PM_KEEP]);
    }
    fputc('\n', f);
}

/* Under the shard's mutex: the whole file of one codelet, entries by size. */
static int write_codelet(FILE *f, struct pm_codelet *cl)
{
    char *name = tsr__mf_escape(cl->name);

    if (name == NULL) {
        return -1;
    }
    fprintf(f, FILE_MAGIC "\ncodelet %s\n", name);
    fprintf(f, "# kind footprint n_bytes count median spread n_kept samples (s, oldest first)\n");
    free(name);
    for (uint32_t k = 0; k < N_KINDS; k++) {
        struct ptab *t = &cl->kinds[k].entries;
        struct pm_entry **sorted = malloc((t->n + 1) * sizeof(*sorted));
        uint32_t n = 0;

        if (sorted == NULL) {
            return -1;
        }
        for (uint32_t i = 0; i < t->cap; i++) {
            if (t->slots[i] != NULL) {
                sorted[n++] = t->slots[i];
            }
        }
        qsort(sorted, n, sizeof(*sorted), cmp_entries);
        for (uint32_t i = 0; i < n; i++) {
            write_entry(f, k, sorted[i]);
        }
        free(sorted);
    }
    return ferror(f) ? -1 : 0;
}

/* A codelet's file formatted under the lock, written after it. */
struct pending_file {
    struct pm_codelet *cl; /* codelets live until destroy */
    uint64_t version;
    char *text;
    size_t n_bytes;
};

/* Under the shard's mutex: format every changed codelet. Returns the number. */
static uint32_t format_changed(struct pm_shard *shard, struct pending_file *out, uint32_t max,
                               tsr_status_t *st)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < shard->codelets.cap && n < max; i++) {
        struct pm_codelet *cl = shard->codelets.slots[i];
        struct pending_file *p = &out[n];
        FILE *f;

        if (cl == NULL || cl->version == cl->saved_version) {
            continue;
        }
        p->cl = cl;
        p->version = cl->version;
        f = open_memstream(&p->text, &p->n_bytes);
        if (f == NULL) {
            *st = TSR_ENOMEM;
            continue;
        }
        if (write_codelet(f, cl) != 0) {
            *st = TSR_ENOMEM;
            fclose(f);
            free(p->text);
            continue;
        }
        fclose(f);
        n++;
    }
    return n;
}

static tsr_status_t write_pending(struct tsr__pm *pm, struct pm_shard *shard,
                                  const struct pending_file *p)
{
    char base[128];
    char *path = malloc(strlen(pm->dir) + sizeof(base) + 1);
    tsr_status_t st;

    if (path == NULL) {
        return TSR_ENOMEM;
    }
    tsr__pm_file_name(p->cl->name, base, sizeof(base));
    sprintf(path, "%s/%s", pm->dir, base);
    st = tsr__mf_write_atomic(path, p->text, p->n_bytes);
    free(path);
    if (st == TSR_OK) {
        pthread_mutex_lock(&shard->mutex);
        if (p->cl->saved_version < p->version) {
            p->cl->saved_version = p->version;
        }
        pthread_mutex_unlock(&shard->mutex);
    }
    return st;
}

/* Formats under the lock, writes outside it, so workers recording meanwhile wait
 * for no I/O. Returns the first error. */
static tsr_status_t save_shard(struct tsr__pm *pm, struct pm_shard *shard, int *has_dir)
{
    struct pending_file *pending;
    tsr_status_t st = TSR_OK;
    uint32_t n;

    pthread_mutex_lock(&shard->mutex);
    pending = calloc(shard->codelets.n + 1, sizeof(*pending));
    n = pending != NULL ? format_changed(shard, pending, shard->codelets.n, &st) : 0;
    pthread_mutex_unlock(&shard->mutex);
    if (pending == NULL) {
        return TSR_ENOMEM;
    }
    if (n > 0 && !*has_dir) {
        tsr_status_t mk = tsr__mf_mkdirs(pm->dir);

        *has_dir = mk == TSR_OK;
        st = st == TSR_OK ? mk : st;
    }
    for (uint32_t i = 0; i < n; i++) {
        tsr_status_t w = *has_dir ? write_pending(pm, shard, &pending[i]) : TSR_OK;

        st = st == TSR_OK ? w : st;
        free(pending[i].text);
    }
    free(pending);
    return st;
}

tsr_status_t tsr__pm_save(struct tsr__pm *pm)
{
    tsr_status_t st = TSR_OK;
    int has_dir = 0;

    if (pm == NULL) {
        return TSR_EINVAL;
    }
    if (pm->dir == NULL) {
        return TSR_OK;
    }
    for (uint32_t s = 0; s < N_SHARDS; s++) {
        tsr_status_t ss = save_shard(pm, &pm->shards[s], &has_dir);

        st = st == TSR_OK ? ss : st;
    }
    return st;
}

/* ---- loading ---------------------------------------------------------------- */

struct parsed_entry {
    uint32_t kind;
    uint32_t footprint;
    uint64_t n_bytes;
    uint64_t count;
    uint64_t n_kept;
    double samples[TSR_PM_KEEP];
};

static int parse_kind(const char **p, uint32_t *kind_out)
{
    char word[16];

    if (tsr__mf_token(p, word, sizeof(word)) != 0) {
        return -1;
    }
    for (uint32_t k = 0; k < N_KINDS; k++) {
        if (strcmp(word, tsr__pm_kind_name(k)) == 0) {
            *kind_out = k;
            return 0;
        }
    }
    return -1;
}

static const char *parse_entry(const char *p, struct parsed_entry *pe)
{
    double median, spread;

    if (parse_kind(&p, &pe->kind) != 0) {
        return "unknown device kind";
    }
    if (tsr__mf_hex32(&p, &pe->footprint) != 0 || tsr__mf_u64(&p, &pe->n_bytes) != 0 ||
        tsr__mf_u64(&p, &pe->count) != 0 || tsr__mf_f64(&p, &median) != 0 ||
        tsr__mf_f64(&p, &spread) != 0 || tsr__mf_u64(&p, &pe->n_kept) != 0) {
        return "bad field";
    }
    if (pe->n_kept == 0 || pe->n_kept > TSR_PM_KEEP || pe->count < pe->n_kept) {
        return "bad sample count";
    }
    for (uint64_t i = 0; i < pe->n_kept; i++) {
        if (tsr__mf_f64(&p, &pe->samples[i]) != 0) {
            return "bad or missing sample";
        }
    }
    return tsr__mf_end(p) == 0 ? NULL : "trailing text";
}

/* Under the shard's mutex. NULL, or why the entry was not added. */
static const char *add_parsed(struct pm_codelet *cl, const struct parsed_entry *pe)
{
    struct pm_kind *km = &cl->kinds[pe->kind];
    struct pm_entry *e;

    if (tsr__pm_find_entry(km, pe->footprint, pe->n_bytes) != NULL) {
        return "duplicate entry";
    }
    if (km->entries.n >= TSR_PM_MAX_ENTRIES) {
        return "too many entries";
    }
    e = tsr__pm_add_entry(km, pe->footprint, pe->n_bytes);
    if (e == NULL) {
        return "out of memory";
    }
    for (uint64_t i = 0; i < pe->n_kept; i++) {
        tsr__pm_entry_push(e, pe->samples[i]);
    }
    e->count = pe->count;
    km->reg_state = REG_STALE;
    return NULL;
}

static void note_problem(struct tsr__pm *pm, const char *file, uint32_t line, const char *why)
{
    if (pm->report.first_problem[0] == '\0') {
        snprintf(pm->report.first_problem, sizeof(pm->report.first_problem), "%s:%u: %s", file,
                 (unsigned)line, why);
    }
}

/* The header lines: the magic, then "codelet <name>". NULL, or what is wrong. */
static const char *parse_header(char **cursor, uint32_t *line_no, char *name, size_t n_name)
{
    char *line = tsr__mf_next_record(cursor, line_no);
    const char *p;

    if (line == NULL || strcmp(line, FILE_MAGIC) != 0) {
        return "not a tessera-perfmodel 1 file";
    }
    line = tsr__mf_next_record(cursor, line_no);
    if (line == NULL || strncmp(line, "codelet ", 8) != 0) {
        return "no codelet line";
    }
    p = line + 8;
    if (tsr__mf_token(&p, name, n_name) != 0 || name[0] == '\0' || tsr__mf_end(p) != 0) {
        return "bad codelet name";
    }
    return NULL;
}

static void load_entries(struct tsr__pm *pm, const char *file, char *cursor, uint32_t line_no,
                         struct pm_codelet *cl)
{
    struct pm_shard *shard = tsr__pm_shard_of(pm, cl->hash);
    struct parsed_entry pe;
    char *line;

    while ((line = tsr__mf_next_record(&cursor, &line_no)) != NULL) {
        const char *why = parse_entry(line, &pe);

        if (why == NULL) {
            pthread_mutex_lock(&shard->mutex);
            why = add_parsed(cl, &pe);
            pthread_mutex_unlock(&shard->mutex);
        }
        if (why != NULL) {
            pm->report.n_skipped_lines++;
            note_problem(pm, file, line_no, why);
        } else {
            pm->report.n_entries++;
        }
    }
}

static void load_file(struct tsr__pm *pm, const char *path, const char *file)
{
    char name[TSR_PM_MAX_NAME + 1];
    char *text;
    char *cursor;
    const char *why;
    uint32_t line_no = 0;
    struct pm_codelet *cl = NULL;

    pm->report.n_files++;
    why = tsr__mf_read(path, &text) == TSR_OK ? NULL : tsr_last_error();
    if (why != NULL) {
        pm->report.n_bad_files++;
        note_problem(pm, file, 0, why);
        return;
    }
    cursor = text;
    why = parse_header(&cursor, &line_no, name, sizeof(name));
    if (why == NULL) {
        uint32_t hash = tsr__mf_hash_str(name);
        struct pm_shard *shard = tsr__pm_shard_of(pm, hash);

        pthread_mutex_lock(&shard->mutex);
        cl = tsr__pm_get_codelet(shard, name, hash);
        pthread_mutex_unlock(&shard->mutex);
        why = cl == NULL ? "out of memory" : NULL;
    }
    if (why != NULL) {
        pm->report.n_bad_files++;
        note_problem(pm, file, line_no, why);
    } else {
        load_entries(pm, file, cursor, line_no, cl);
    }
    free(text);
}

/* Ours: "<stem>-XXXXXXXX.model". */
static int is_model_file(const char *name)
{
    size_t n = strlen(name);
    const char *tail;

    if (n < 15 || strcmp(name + n - 6, ".model") != 0) {
        return 0;
    }
    tail = name + n - 15;
    return tail[0] == '-' && strspn(tail + 1, "0123456789abcdef") == 8;
}

void tsr__pm_load_dir(struct tsr__pm *pm)
{
    DIR *d = opendir(pm->dir);
    struct dirent *de;

    if (d == NULL) {
        if (errno != ENOENT) {
            note_problem(pm, pm->dir, 0, strerror(errno));
        }
        return;
    }
    while ((de = readdir(d)) != NULL) {
        char *path;

        if (!is_model_file(de->d_name)) {
            continue;
        }
        path = malloc(strlen(pm->dir) + strlen(de->d_name) + 2);
        if (path == NULL) {
            break;
        }
        sprintf(path, "%s/%s", pm->dir, de->d_name);
        load_file(pm, path, de->d_name);
        free(path);
    }
    closedir(d);
}
