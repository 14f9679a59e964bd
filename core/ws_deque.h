/* A fixed-capacity work-stealing deque (Chase-Lev, with the C11 orderings of
 * Le et al. 2013): the owner pushes and pops at the bottom, thieves take from the
 * top. Private to core/. */
#ifndef TSR_CORE_WS_DEQUE_H
#define TSR_CORE_WS_DEQUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/sync.h"

struct tsr_future;

struct tsr__ws_deque {
    alignas(TSR_CACHE_LINE) atomic_llong top;
    alignas(TSR_CACHE_LINE) atomic_llong bottom;
    long long mask;
    _Atomic(struct tsr_future *) *slots;
};

int tsr__ws_deque_init(struct tsr__ws_deque *dq, long long capacity);
void tsr__ws_deque_fini(struct tsr__ws_deque *dq);
/* Owner only. Returns 0 when full. */
int tsr__ws_deque_push(struct tsr__ws_deque *dq, struct tsr_future *t);
/* Owner only. NULL when empty. */
struct tsr_future *tsr__ws_deque_pop(struct tsr__ws_deque *dq);
/* Any thread. NULL when empty or when it lost a race. */
struct tsr_future *tsr__ws_deque_steal(struct tsr__ws_deque *dq);
/* Approximate size. */
long long tsr__ws_deque_size(struct tsr__ws_deque *dq);

#endif /* TSR_CORE_WS_DEQUE_H */
