/* Host memory of replicas, with a few spare large blocks (see host_mem.h). */
#include "core/host_mem.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/runtime_impl.h"

#define MMAP_MIN ((size_t)1 << 20) /* smaller blocks come from malloc */
#define HUGE_PAGE ((size_t)2 << 20)
#define SPARE_CAP ((uint64_t)256 << 20) /* and at most an eighth of the host limit */

void tsr__host_mem_init(tsr_runtime_t *rt)
{
    struct tsr__host_spares *s = &rt->host_spares;
    uint64_t eighth = rt->host_limit / 8;

    pthread_mutex_init(&s->mutex, NULL);
    s->cap = eighth < SPARE_CAP ? eighth : SPARE_CAP;
    s->inited = 1;
}

void tsr__host_mem_fini(tsr_runtime_t *rt)
{
    struct tsr__host_spares *s = &rt->host_spares;

    if (!s->inited) {
        return;
    }
    tsr__host_mem_drop(rt);
    pthread_mutex_destroy(&s->mutex);
    s->inited = 0;
}

void *tsr__host_mem_alloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = (n + page - 1) / page * page;
    char *p;
    char *aligned;
    size_t head;

    if (n < MMAP_MIN) {
        return malloc(n > 0 ? n : 1);
    }
    if (n < HUGE_PAGE) {
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p != MAP_FAILED ? p : NULL;
    }
    p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    aligned = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    head = (size_t)(aligned - p);
    if (head > 0) {
        munmap(p, head);
    }
    munmap(aligned + len, HUGE_PAGE - head);
    (void)madvise(aligned, len, MADV_HUGEPAGE); /* advice only: fine if refused */
    return aligned;
}

static void give_back(void *p, size_t n)
{
    if (n < MMAP_MIN) {
        free(p);
    } else if (p != NULL) {
        munmap(p, n);
    }
}

void *tsr__host_mem_take(tsr_runtime_t *rt, size_t n)
{
    struct tsr__host_spares *s = &rt->host_spares;
    void *p = NULL;

    if (n < MMAP_MIN || atomic_load_explicit(&s->bytes, memory_order_relaxed) == 0) {
        return NULL;
    }
    pthread_mutex_lock(&s->mutex);
    for (uint32_t i = s->n; i-- > 0;) {
        if (s->len[i] == n) {
            p = s->ptr[i];
            s->n--;
            s->ptr[i] = s->ptr[s->n];
            s->len[i] = s->len[s->n];
            atomic_fetch_sub_explicit(&s->bytes, n, memory_order_relaxed);
            atomic_fetch_add_explicit(&s->n_reuses, 1, memory_order_relaxed);
            break;
        }
    }
    pthread_mutex_unlock(&s->mutex);
    return p;
}

void tsr__host_mem_release(tsr_runtime_t *rt, void *p, size_t n)
{
    struct tsr__host_spares *s = &rt->host_spares;
    int kept = 0;

    if (n >= MMAP_MIN && p != NULL) {
        pthread_mutex_lock(&s->mutex);
        if (s->n < TSR_HOST_SPARES &&
            atomic_load_explicit(&s->bytes, memory_order_relaxed) + n <= s->cap) {
            s->ptr[s->n] = p;
            s->len[s->n] = n;
            s->n++;
            atomic_fetch_add_explicit(&s->bytes, n, memory_order_relaxed);
            kept = 1;
        }
        pthread_mutex_unlock(&s->mutex);
    }
    if (!kept) {
        give_back(p, n);
        tsr__host_account(rt, -(int64_t)n);
    }
}

uint64_t tsr__host_mem_drop(tsr_runtime_t *rt)
{
    struct tsr__host_spares *s = &rt->host_spares;
    uint64_t dropped = 0;

    if (atomic_load_explicit(&s->bytes, memory_order_relaxed) == 0) {
        return 0;
    }
    pthread_mutex_lock(&s->mutex);
    for (uint32_t i = 0; i < s->n; i++) {
        give_back(s->ptr[i], s->len[i]);
        dropped += s->len[i];
    }
    s->n = 0;
    atomic_fetch_sub_explicit(&s->bytes, dropped, memory_order_relaxed);
    pthread_mutex_unlock(&s->mutex);
    tsr__host_account(rt, -(int64_t)dropped);
    return dropped;
}
