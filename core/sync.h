/* Synchronisation primitives of the runtime: spinlock, futex, event count.
 * Private to core/. */
#ifndef TSR_CORE_SYNC_H
#define TSR_CORE_SYNC_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define tsr__cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define tsr__cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define tsr__cpu_relax() ((void)0)
#endif

#define TSR_CACHE_LINE 64

/* A test-and-test-and-set lock for critical sections of a few dozen instructions.
 * It yields the CPU after a while so an oversubscribed holder can finish. */
typedef struct {
    atomic_uint word;
} tsr__spinlock_t;

void tsr__spin_lock_slow(tsr__spinlock_t *lock);

static inline void tsr__spin_lock(tsr__spinlock_t *lock)
{
    if (atomic_exchange_explicit(&lock->word, 1, memory_order_acquire) != 0) {
        tsr__spin_lock_slow(lock);
    }
}

static inline void tsr__spin_unlock(tsr__spinlock_t *lock)
{
    atomic_store_explicit(&lock->word, 0, memory_order_release);
}

/* Block while *word == expected (spurious returns allowed). */
void tsr__futex_wait(atomic_uint *word, uint32_t expected);
/* As tsr__futex_wait, returning after at most timeout_ns. */
void tsr__futex_wait_timeout(atomic_uint *word, uint32_t expected, uint64_t timeout_ns);
/* Wake up to n threads blocked on word. */
void tsr__futex_wake(atomic_uint *word, int n);

/* An event count: lets a thread sleep until "something changed" without lost
 * wake-ups. Waiter: key = prepare; re-check the condition; then cancel (it holds)
 * or commit (sleep). Notifier: change state, then notify. The seq_cst fence in
 * notify pairs with the seq_cst increment in prepare. */
struct tsr__event {
    atomic_uint epoch;
    atomic_uint n_waiters;
};

static inline uint32_t tsr__event_prepare(struct tsr__event *ev)
{
    atomic_fetch_add_explicit(&ev->n_waiters, 1, memory_order_seq_cst);
    return atomic_load_explicit(&ev->epoch, memory_order_seq_cst);
}

static inline void tsr__event_cancel(struct tsr__event *ev)
{
    atomic_fetch_sub_explicit(&ev->n_waiters, 1, memory_order_relaxed);
}

static inline void tsr__event_commit(struct tsr__event *ev, uint32_t key)
{
    tsr__futex_wait(&ev->epoch, key);
    atomic_fetch_sub_explicit(&ev->n_waiters, 1, memory_order_relaxed);
}

static inline int tsr__event_has_waiters(struct tsr__event *ev)
{
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(&ev->n_waiters, memory_order_relaxed) != 0;
}

void tsr__event_wake(struct tsr__event *ev, int n);

/* Wake n waiters if there are any; cheap (a fence and a load) when there are none. */
static inline void tsr__event_notify(struct tsr__event *ev, int n)
{
    if (tsr__event_has_waiters(ev)) {
        tsr__event_wake(ev, n);
    }
}

/* Monotonic clock in nanoseconds. */
uint64_t tsr__now_ns(void);

/* Raise *a to v if v is larger (relaxed): a peak kept by several threads. */
static inline void tsr__atomic_max_u64(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

    while (v > old && !atomic_compare_exchange_weak_explicit(a, &old, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

/* A double kept in an atomic 64-bit word (relaxed): read and written whole. */
static inline double tsr__atomic_load_double(const _Atomic uint64_t *bits)
{
    uint64_t b = atomic_load_explicit(bits, memory_order_relaxed);
    double d;

    memcpy(&d, &b, sizeof(d));
    return d;
}

static inline void tsr__atomic_store_double(_Atomic uint64_t *bits, double d)
{
    uint64_t b;

    memcpy(&b, &d, sizeof(b));
    atomic_store_explicit(bits, b, memory_order_relaxed);
}

#endif /* TSR_CORE_SYNC_H */
