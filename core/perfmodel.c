/* Performance models: tables, robust statistics, queries, summary and life
 * cycle (persistence is in perfmodel_file.c). Codelets are spread over shards by
 * the hash of their name, and all the kinds of one codelet live in the same
 * shard (see perfmodel_impl.h for the locking). Medians and fits are computed
 * lazily, when a query needs them: record only appends to a ring, so the workers'
 * hot path is a hash lookup and a store under the shard's mutex. */
#include "core/perfmodel.h"
#include "core/sync.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model_file.h"
#include "core/perfmodel_impl.h"

#define MAD_TO_SIGMA 1.4826 /* MAD of normal noise times this is its sigma */

_Static_assert(TSR_DEVICE_KIND_COUNT == 3, "name the new device kind in kind_names");
static const char *const kind_names[N_KINDS] = {"cpu", "cuda", "sim"};

/* ---- hash tables ---------------------------------------------------------- */

static int ptab_put(struct ptab *t, uint32_t hash, void *item)
{
    uint32_t i = hash & (t->cap - 1);

    while (t->slots[i] != NULL) {
        i = (i + 1) & (t->cap - 1);
    }
    t->slots[i] = item;
    t->hashes[i] = hash;
    t->n++;
    return 0;
}

static int ptab_insert(struct ptab *t, uint32_t hash, void *item)
{
    if ((t->n + 1) * 2 > t->cap) {
        struct ptab bigger = {0};

        bigger.cap = t->cap != 0 ? t->cap * 2 : 8;
        bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
        bigger.hashes = calloc(bigger.cap, sizeof(*bigger.hashes));
        if (bigger.slots == NULL || bigger.hashes == NULL) {
            free(bigger.slots);
            free(bigger.hashes);
            return -1;
        }
        for (uint32_t i = 0; i < t->cap; i++) {
            if (t->slots[i] != NULL) {
                ptab_put(&bigger, t->hashes[i], t->slots[i]);
            }
        }
        free(t->slots);
        free(t->hashes);
        *t = bigger;
    }
    return ptab_put(t, hash, item);
}

static void ptab_free_items(struct ptab *t)
{
    for (uint32_t i = 0; i < t->cap; i++) {
        free(t->slots[i]);
    }
    free(t->slots);
    free(t->hashes);
}

static uint32_t entry_hash(uint32_t footprint, uint64_t n_bytes)
{
    uint64_t x = ((uint64_t)footprint << 32 | footprint) ^ n_bytes;

    return (uint32_t)((x * 0x9e3779b97f4a7c15ull) >> 32);
}

struct pm_entry *tsr__pm_find_entry(const struct pm_kind *km, uint32_t footprint, uint64_t n_bytes)
{
    const struct ptab *t = &km->entries;
    uint32_t hash = entry_hash(footprint, n_bytes);

    for (uint32_t i = hash & (t->cap - 1); t->cap != 0 && t->slots[i] != NULL;
         i = (i + 1) & (t->cap - 1)) {
        struct pm_entry *e = t->slots[i];

        if (e->footprint == footprint && e->n_bytes == n_bytes) {
            return e;
        }
    }
    return NULL;
}

static struct pm_codelet *find_codelet(const struct pm_shard *shard, const char *name,
                                       uint32_t hash)
{
    const struct ptab *t = &shard->codelets;

    for (uint32_t i = hash & (t->cap - 1); t->cap != 0 && t->slots[i] != NULL;
         i = (i + 1) & (t->cap - 1)) {
        struct pm_codelet *cl = t->slots[i];

        if (t->hashes[i] == hash && strcmp(cl->name, name) == 0) {
            return cl;
        }
    }
    return NULL;
}

/* Under the shard's mutex. NULL when out of memory. */
struct pm_codelet *tsr__pm_get_codelet(struct pm_shard *shard, const char *name, uint32_t hash)
{
    struct pm_codelet *cl = find_codelet(shard, name, hash);

    if (cl != NULL) {
        return cl;
    }
    cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        return NULL;
    }
    cl->name = strdup(name);
    cl->hash = hash;
    if (cl->name == NULL || ptab_insert(&shard->codelets, hash, cl) != 0) {
        free(cl->name);
        free(cl);
        return NULL;
    }
    return cl;
}

/* Under the shard's mutex: a new, empty entry. NULL when out of memory. */
struct pm_entry *tsr__pm_add_entry(struct pm_kind *km, uint32_t footprint, uint64_t n_bytes)
{
    struct pm_entry *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        return NULL;
    }
    e->footprint = footprint;
    e->n_bytes = n_bytes;
    if (ptab_insert(&km->entries, entry_hash(footprint, n_bytes), e) != 0) {
        free(e);
        return NULL;
    }
    return e;
}

/* ---- robust statistics ------------------------------------------------------ */

static void sort_small(double *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        double x = v[i];
        uint32_t j = i;

        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static double median_sorted(const double *v, uint32_t n)
{
    return n % 2 != 0 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void tsr__pm_entry_refresh(struct pm_entry *e)
{
    double v[TSR_PM_KEEP];
    double med;

    if (!e->is_stale || e->n_kept == 0) {
        return;
    }
    memcpy(v, e->samples, e->n_kept * sizeof(v[0]));
    sort_small(v, e->n_kept);
    med = median_sorted(v, e->n_kept);
    for (uint32_t i = 0; i < e->n_kept; i++) {
        v[i] = fabs(v[i] - med);
    }
    sort_small(v, e->n_kept);
    e->median = med;
    e->spread = MAD_TO_SIGMA * median_sorted(v, e->n_kept);
    e->is_stale = 0;
}

void tsr__pm_entry_push(struct pm_entry *e, double seconds)
{
    e->samples[e->next_slot] = seconds;
    e->next_slot = (e->next_slot + 1) % TSR_PM_KEEP;
    if (e->n_kept < TSR_PM_KEEP) {
        e->n_kept++;
    }
    e->count++;
    e->is_stale = 1;
}

/* The regression's points: entries with enough samples and a positive size and
 * median. Advances *slot past the point returned; 0 at the end. */
static int next_point(struct pm_kind *km, uint32_t *slot, double *x, double *y, double *rel)
{
    for (; *slot < km->entries.cap; (*slot)++) {
        struct pm_entry *e = km->entries.slots[*slot];

        if (e == NULL || e->n_kept < TSR_PM_MIN_SAMPLES || e->n_bytes == 0) {
            continue;
        }
        tsr__pm_entry_refresh(e);
        if (e->median <= 0) {
            continue;
        }
        *x = log((double)e->n_bytes);
        *y = log(e->median);
        *rel = e->spread / e->median;
        (*slot)++;
        return 1;
    }
    return 0;
}

/* Least squares of log t on log n, in three passes over the table (means,
 * centred moments, residuals) so no point array is needed. */
static void kind_refit(struct pm_kind *km)
{
    double x, y, rel, mx = 0, my = 0, mrel = 0, sxx = 0, sxy = 0, ssr = 0;
    uint32_t n = 0;

    for (uint32_t s = 0; next_point(km, &s, &x, &y, &rel); n++) {
        mx += x;
        my += y;
        mrel += rel;
    }
    km->reg_state = REG_NONE;
    if (n < 2) {
        return;
    }
    mx /= n;
    my /= n;
    mrel /= n;
    for (uint32_t s = 0; next_point(km, &s, &x, &y, &rel);) {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
    }
    if (sxx < 1e-12) {
        return; /* one distinct size only */
    }
    km->b = sxy / sxx;
    km->log_a = my - km->b * mx;
    for (uint32_t s = 0; next_point(km, &s, &x, &y, &rel);) {
        double r = y - (km->log_a + km->b * x);

        ssr += r * r;
    }
    km->rel_spread = sqrt(ssr / (n > 2 ? n - 2 : 1)) + mrel;
    km->reg_state = REG_OK;
}

static int kind_has_fit(struct pm_kind *km)
{
    if (km->reg_state == REG_STALE) {
        kind_refit(km);
    }
    return km->reg_state == REG_OK;
}

/* ---- record and predict ----------------------------------------------------- */

static int key_ok(const struct tsr__pm_key *key)
{
    return key != NULL && key->name != NULL && key->name[0] != '\0' && key->kind < N_KINDS &&
           strlen(key->name) <= TSR_PM_MAX_NAME;
}

uint32_t tsr__pm_footprint(const size_t *n_bytes, uint32_t n_buffers, uint64_t *total_out)
{
    uint32_t h = 2166136261u;
    uint64_t total = 0;

    for (uint32_t i = 0; i <= n_buffers; i++) {
        uint64_t v = i == 0 ? n_buffers : n_bytes[i - 1];

        for (int byte = 0; byte < 8; byte++) {
            h = (h ^ (uint32_t)((v >> (8 * byte)) & 0xff)) * 16777619u;
        }
        total += i == 0 ? 0 : v;
    }
    if (total_out != NULL) {
        *total_out = total;
    }
    return h;
}

tsr_status_t tsr__pm_record(struct tsr__pm *pm, const struct tsr__pm_key *key, double seconds)
{
    uint32_t hash;
    struct pm_shard *shard;
    struct pm_codelet *cl;
    struct pm_entry *e = NULL;
    tsr_status_t st = TSR_OK;

    if (pm == NULL || !key_ok(key) || !isfinite(seconds) || seconds < 0) {
        return TSR_EINVAL;
    }
    hash = tsr__mf_hash_str(key->name);
    shard = tsr__pm_shard_of(pm, hash);
    pthread_mutex_lock(&shard->mutex);
    cl = tsr__pm_get_codelet(shard, key->name, hash);
    if (cl != NULL) {
        struct pm_kind *km = &cl->kinds[key->kind];

        e = tsr__pm_find_entry(km, key->footprint, key->n_bytes);
        if (e == NULL && km->entries.n >= TSR_PM_MAX_ENTRIES) {
            km->n_dropped++;
        } else if (e == NULL) {
            e = tsr__pm_add_entry(km, key->footprint, key->n_bytes);
            st = e == NULL ? TSR_ENOMEM : TSR_OK;
        }
        if (e != NULL) {
            tsr__pm_entry_push(e, seconds);
            km->reg_state = REG_STALE;
            cl->version++;
        }
    } else {
        st = TSR_ENOMEM;
    }
    pthread_mutex_unlock(&shard->mutex);
    return st;
}

void tsr__pm_set_peaks(struct tsr__pm *pm, uint32_t kind, double flops_per_s, double bytes_per_s)
{
    if (pm == NULL || kind >= N_KINDS) {
        return;
    }
    tsr__atomic_store_double(&pm->peak_flops[kind], isfinite(flops_per_s) ? flops_per_s : 0);
    tsr__atomic_store_double(&pm->peak_bytes[kind], isfinite(bytes_per_s) ? bytes_per_s : 0);
}

/* Roofline from the hints; leaves est alone when no term is usable. */
static void hint_estimate(const struct tsr__pm *pm, uint32_t kind, double flops, double bytes,
                          struct tsr__pm_estimate *est)
{
    double peak_flops = tsr__atomic_load_double(&pm->peak_flops[kind]);
    double peak_bytes = tsr__atomic_load_double(&pm->peak_bytes[kind]);
    double t = -1;

    if (flops > 0 && peak_flops > 0 && isfinite(flops)) {
        t = flops / peak_flops;
    }
    if (bytes > 0 && peak_bytes > 0 && isfinite(bytes)) {
        t = fmax(t, bytes / peak_bytes);
    }
    if (t >= 0) {
        est->seconds = t;
        est->spread = t;
        est->source = TSR_PM_HINT;
    }
}

/* Under the shard's mutex: history, else regression. */
static void model_estimate(struct pm_kind *km, const struct tsr__pm_key *key,
                           struct tsr__pm_estimate *est)
{
    struct pm_entry *e = tsr__pm_find_entry(km, key->footprint, key->n_bytes);

    if (e != NULL) {
        est->n_samples = e->count;
    }
    if (e != NULL && e->n_kept >= TSR_PM_MIN_SAMPLES) {
        tsr__pm_entry_refresh(e);
        est->seconds = e->median;
        est->spread = e->spread;
        est->source = TSR_PM_HISTORY;
    } else if (key->n_bytes > 0 && kind_has_fit(km)) {
        est->seconds = exp(km->log_a + km->b * log((double)key->n_bytes));
        est->spread = est->seconds * km->rel_spread;
        est->source = TSR_PM_REGRESSION;
    }
}

enum tsr__pm_source tsr__pm_predict(struct tsr__pm *pm, const struct tsr__pm_key *key,
                                    double flops_hint, double bytes_hint,
                                    struct tsr__pm_estimate *est_out)
{
    struct tsr__pm_estimate est = {0, 0, 0, TSR_PM_NONE};

    if (pm != NULL && key_ok(key)) {
        uint32_t hash = tsr__mf_hash_str(key->name);
        struct pm_shard *shard = tsr__pm_shard_of(pm, hash);
        struct pm_codelet *cl;

        pthread_mutex_lock(&shard->mutex);
        cl = find_codelet(shard, key->name, hash);
        if (cl != NULL) {
            model_estimate(&cl->kinds[key->kind], key, &est);
        }
        pthread_mutex_unlock(&shard->mutex);
        if (est.source == TSR_PM_NONE) {
            hint_estimate(pm, key->kind, flops_hint, bytes_hint, &est);
        }
    }
    if (est_out != NULL) {
        *est_out = est;
    }
    return est.source;
}

tsr_status_t tsr__pm_regression(struct tsr__pm *pm, const char *name, uint32_t kind, double *a_out,
                                double *b_out)
{
    struct tsr__pm_key key = {name, kind, 0, 0};
    struct pm_shard *shard;
    struct pm_codelet *cl;
    tsr_status_t st = TSR_ENOTSUP;
    uint32_t hash;

    if (pm == NULL || !key_ok(&key) || a_out == NULL || b_out == NULL) {
        return TSR_EINVAL;
    }
    hash = tsr__mf_hash_str(name);
    shard = tsr__pm_shard_of(pm, hash);
    pthread_mutex_lock(&shard->mutex);
    cl = find_codelet(shard, name, hash);
    if (cl != NULL && kind_has_fit(&cl->kinds[kind])) {
        *a_out = exp(cl->kinds[kind].log_a);
        *b_out = cl->kinds[kind].b;
        st = TSR_OK;
    }
    pthread_mutex_unlock(&shard->mutex);
    return st;
}

const char *tsr__pm_kind_name(uint32_t kind)
{
    return kind < N_KINDS ? kind_names[kind] : "?";
}

/* ---- summary ---------------------------------------------------------------- */

static void format_bytes(char *buf, size_t n, uint64_t v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)v;
    unsigned u = 0;

    while (x >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        x /= 1024;
        u++;
    }
    snprintf(buf, n, u == 0 ? "%.0f %s" : "%.3g %s", x, units[u]);
}

/* Under the codelet's shard mutex. */
static void print_kind(FILE *out, const char *name, uint32_t kind, struct pm_kind *km)
{
    const struct ptab *t = &km->entries;
    uint64_t n_samples = 0, lo = UINT64_MAX, hi = 0;
    char lo_text[32], hi_text[32];

    if (t->n == 0 && km->n_dropped == 0) {
        return;
    }
    for (uint32_t i = 0; i < t->cap; i++) {
        const struct pm_entry *e = t->slots[i];

        if (e != NULL) {
            n_samples += e->count;
            lo = e->n_bytes < lo ? e->n_bytes : lo;
            hi = e->n_bytes > hi ? e->n_bytes : hi;
        }
    }
    format_bytes(lo_text, sizeof(lo_text), t->n != 0 ? lo : 0);
    format_bytes(hi_text, sizeof(hi_text), hi);
    fprintf(out, "  codelet %s on %s: %u sizes (%s .. %s), %llu samples", name, kind_names[kind],
            (unsigned)t->n, lo_text, hi_text, (unsigned long long)n_samples);
    if (kind_has_fit(km)) {
        fprintf(out, ", t = %.3g s * n^%.2f", exp(km->log_a), km->b);
    }
    if (km->n_dropped != 0) {
        fprintf(out, ", %llu dropped", (unsigned long long)km->n_dropped);
    }
    fputc('\n', out);
}

static int cmp_codelets(const void *a, const void *b)
{
    const struct pm_codelet *x = *(const struct pm_codelet *const *)a;
    const struct pm_codelet *y = *(const struct pm_codelet *const *)b;

    return strcmp(x->name, y->name);
}

/* Under every shard's mutex: the codelets sorted by name (new array, or NULL). */
static struct pm_codelet **sorted_codelets(struct tsr__pm *pm, uint32_t *n_out,
                                           uint64_t *n_entries_out)
{
    uint32_t n = 0;
    struct pm_codelet **all;

    for (uint32_t s = 0; s < N_SHARDS; s++) {
        n += pm->shards[s].codelets.n;
    }
    all = malloc((n + 1) * sizeof(*all));
    *n_out = 0;
    *n_entries_out = 0;
    for (uint32_t s = 0; s < N_SHARDS && all != NULL; s++) {
        const struct ptab *t = &pm->shards[s].codelets;

        for (uint32_t i = 0; i < t->cap; i++) {
            struct pm_codelet *cl = t->slots[i];

            for (uint32_t k = 0; cl != NULL && k < N_KINDS; k++) {
                *n_entries_out += cl->kinds[k].entries.n;
            }
            if (cl != NULL) {
                all[(*n_out)++] = cl;
            }
        }
    }
    if (all != NULL) {
        qsort(all, *n_out, sizeof(*all), cmp_codelets);
    }
    return all;
}

void tsr__pm_print(struct tsr__pm *pm, FILE *out)
{
    struct pm_codelet **all;
    uint32_t n;
    uint64_t n_entries;

    if (pm == NULL || out == NULL) {
        return;
    }
    /* Lock order: shards by index. Printing is rare; workers wait meanwhile. */
    for (uint32_t s = 0; s < N_SHARDS; s++) {
        pthread_mutex_lock(&pm->shards[s].mutex);
    }
    all = sorted_codelets(pm, &n, &n_entries);
    fprintf(out, "models: %u codelets, %llu entries", (unsigned)n, (unsigned long long)n_entries);
    if (pm->dir != NULL) {
        fprintf(out, " (%s: %u files, %u skipped lines, %u bad files)", pm->dir,
                (unsigned)pm->report.n_files, (unsigned)pm->report.n_skipped_lines,
                (unsigned)pm->report.n_bad_files);
    }
    fputc('\n', out);
    for (uint32_t i = 0; all != NULL && i < n; i++) {
        for (uint32_t k = 0; k < N_KINDS; k++) {
            print_kind(out, all[i]->name, k, &all[i]->kinds[k]);
        }
    }
    free(all);
    for (uint32_t s = N_SHARDS; s-- > 0;) {
        pthread_mutex_unlock(&pm->shards[s].mutex);
    }
}

/* ---- life cycle ------------------------------------------------------------- */

tsr_status_t tsr__pm_create(const char *dir, struct tsr__pm **pm_out)
{
    struct tsr__pm *pm;

    if (pm_out == NULL) {
        return TSR_EINVAL;
    }
    pm = aligned_alloc(alignof(struct tsr__pm), sizeof(*pm));
    if (pm == NULL) {
        return TSR_ENOMEM;
    }
    memset(pm, 0, sizeof(*pm));
    if (dir != NULL) {
        pm->dir = strdup(dir);
        if (pm->dir == NULL) {
            free(pm);
            return TSR_ENOMEM;
        }
    }
    for (uint32_t s = 0; s < N_SHARDS; s++) {
        pthread_mutex_init(&pm->shards[s].mutex, NULL);
    }
    for (uint32_t k = 0; k < N_KINDS; k++) {
        atomic_init(&pm->peak_flops[k], 0);
        atomic_init(&pm->peak_bytes[k], 0);
    }
    if (pm->dir != NULL) {
        tsr__pm_load_dir(pm);
    }
    *pm_out = pm;
    return TSR_OK;
}

void tsr__pm_destroy(struct tsr__pm *pm)
{
    if (pm == NULL) {
        return;
    }
    (void)tsr__pm_save(pm);
    for (uint32_t s = 0; s < N_SHARDS; s++) {
        struct ptab *t = &pm->shards[s].codelets;

        for (uint32_t i = 0; i < t->cap; i++) {
            struct pm_codelet *cl = t->slots[i];

            for (uint32_t k = 0; cl != NULL && k < N_KINDS; k++) {
                ptab_free_items(&cl->kinds[k].entries);
            }
            if (cl != NULL) {
                free(cl->name);
            }
        }
        ptab_free_items(t);
        pthread_mutex_destroy(&pm->shards[s].mutex);
    }
    free(pm->dir);
    free(pm);
}

void tsr__pm_get_load_report(const struct tsr__pm *pm, struct tsr__pm_load_report *report_out)
{
    if (pm != NULL && report_out != NULL) {
        *report_out = pm->report;
    }
}
