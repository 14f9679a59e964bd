/* Internals of the performance models shared by perfmodel.c (tables, statistics,
 * queries) and perfmodel_file.c (persistence). Private to those two files.
 *
 * Locking: a shard's mutex guards every codelet in it and everything below
 * (entries, fits, versions); the functions here that take a shard, codelet,
 * kind or entry expect the caller to hold that mutex. Codelets and entries are
 * freed only by tsr__pm_destroy, so pointers to them stay valid without the lock
 * (their contents do not). */
#ifndef TSR_CORE_PERFMODEL_IMPL_H
#define TSR_CORE_PERFMODEL_IMPL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/perfmodel.h"
#include "core/sync.h"

#define N_KINDS TSR_DEVICE_KIND_COUNT
#define SHARD_BITS 4
#define N_SHARDS (1u << SHARD_BITS)

/* State of a kind's fit: to recompute, not enough points, or valid. */
enum { REG_STALE = 0, REG_NONE, REG_OK };

struct pm_entry {
    uint32_t footprint;
    uint32_t n_kept;    /* samples in the ring, <= TSR_PM_KEEP */
    uint32_t next_slot; /* where the next sample goes */
    int is_stale;       /* median and spread need recomputing */
    uint64_t n_bytes;
    uint64_t count; /* samples ever recorded */
    double median;
    double spread;
    double samples[TSR_PM_KEEP];
};

/* Open addressing, linear probing, at most half full; items are never removed. */
struct ptab {
    void **slots;
    uint32_t *hashes;
    uint32_t cap; /* 0 or a power of two */
    uint32_t n;
};

struct pm_kind {
    struct ptab entries; /* of struct pm_entry */
    int reg_state;
    double log_a;
    double b;
    double rel_spread;
    uint64_t n_dropped; /* samples refused: too many footprints */
};

struct pm_codelet {
    char *name;
    uint32_t hash;
    uint64_t version;       /* bumped by every record */
    uint64_t saved_version; /* version in the file */
    struct pm_kind kinds[N_KINDS];
};

struct pm_shard {
    alignas(TSR_CACHE_LINE) pthread_mutex_t mutex;
    struct ptab codelets; /* of struct pm_codelet */
};

struct tsr__pm {
    struct pm_shard shards[N_SHARDS];
    char *dir;
    _Atomic uint64_t peak_flops[N_KINDS]; /* bit patterns of doubles */
    _Atomic uint64_t peak_bytes[N_KINDS];
    struct tsr__pm_load_report report;
};

static inline struct pm_shard *tsr__pm_shard_of(struct tsr__pm *pm, uint32_t name_hash)
{
    return &pm->shards[name_hash >> (32 - SHARD_BITS)];
}

/* The codelet called `name` (hash: tsr__mf_hash_str(name)), created if missing.
 * NULL when out of memory. */
struct pm_codelet *tsr__pm_get_codelet(struct pm_shard *shard, const char *name, uint32_t hash);
/* The entry of a footprint and size, or NULL. */
struct pm_entry *tsr__pm_find_entry(const struct pm_kind *km, uint32_t footprint, uint64_t n_bytes);
/* A new, empty entry (the caller checked it is missing). NULL when out of memory. */
struct pm_entry *tsr__pm_add_entry(struct pm_kind *km, uint32_t footprint, uint64_t n_bytes);
/* Append a sample (the oldest goes once TSR_PM_KEEP are kept). */
void tsr__pm_entry_push(struct pm_entry *e, double seconds);
/* Recompute median and spread if samples came since. */
void tsr__pm_entry_refresh(struct pm_entry *e);

/* Load every model file of pm->dir (at create, before any other call). */
void tsr__pm_load_dir(struct tsr__pm *pm);

#endif /* TSR_CORE_PERFMODEL_IMPL_H */
