/* Host memory of the runtime's replicas (node 0). Blocks from 1 MiB are mapped
 * pages, given back to the system when freed instead of staying in the
 * allocator's pools, where they would count in the process's RSS; from 2 MiB they
 * are aligned to huge pages and advised so. A few freed large blocks are kept as
 * spares and handed out again for the same size: a fresh mapping costs a fault
 * and the kernel's zeroing of every page, which made reading a spilled chunk back
 * from the page cache take three times as long as the copy itself. Spares stay
 * counted in host_used, so the host limit bounds them too, and are given back as
 * soon as an allocation needs their room (tsr__host_mem_drop). Private to core/. */
#ifndef TSR_CORE_HOST_MEM_H
#define TSR_CORE_HOST_MEM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TSR_HOST_SPARES 16

struct tsr_runtime;

struct tsr__host_spares {
    int inited;
    pthread_mutex_t mutex; /* guards n, ptr, len */
    uint32_t n;
    void *ptr[TSR_HOST_SPARES];
    size_t len[TSR_HOST_SPARES]; /* the size each was allocated for */
    _Atomic uint64_t bytes;      /* held as spares: part of host_used */
    uint64_t cap;                /* at most this many bytes kept */
    _Atomic uint64_t n_reuses;
};

void tsr__host_mem_init(struct tsr_runtime *rt);
/* Give every spare back to the system. */
void tsr__host_mem_fini(struct tsr_runtime *rt);

/* New host memory for n bytes (not counted in host_used); NULL if none. */
void *tsr__host_mem_alloc(size_t n);
/* A spare block for exactly n bytes, moving from spare to in use (host_used is
 * unchanged); NULL if there is none. */
void *tsr__host_mem_take(struct tsr_runtime *rt, size_t n);
/* Replica memory p of n bytes (from tsr__host_mem_alloc or _take) is freed: kept
 * as a spare, or given back to the system and uncounted from host_used. */
void tsr__host_mem_release(struct tsr_runtime *rt, void *p, size_t n);
/* Give every spare back to the system; returns the bytes uncounted. */
uint64_t tsr__host_mem_drop(struct tsr_runtime *rt);

#endif /* TSR_CORE_HOST_MEM_H */
