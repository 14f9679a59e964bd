/* Futex, spinlock slow path, event count wake and clock. */
#include "core/sync.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void tsr__spin_lock_slow(tsr__spinlock_t *lock)
{
    uint32_t n_spins = 0;

    for (;;) {
        while (atomic_load_explicit(&lock->word, memory_order_relaxed) != 0) {
            if (++n_spins < 128) {
                tsr__cpu_relax();
            } else {
                sched_yield();
            }
        }
        if (atomic_exchange_explicit(&lock->word, 1, memory_order_acquire) == 0) {
            return;
        }
    }
}

void tsr__futex_wait(atomic_uint *word, uint32_t expected)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void tsr__futex_wait_timeout(atomic_uint *word, uint32_t expected, uint64_t timeout_ns)
{
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};

    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
}

void tsr__futex_wake(atomic_uint *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void tsr__event_wake(struct tsr__event *ev, int n)
{
    atomic_fetch_add_explicit(&ev->epoch, 1, memory_order_seq_cst);
    tsr__futex_wake(&ev->epoch, n);
}

uint64_t tsr__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
