/* Placement of ready tasks on devices, for the policies that decide at readiness
 * (dmda, random). Private to core/. */
#ifndef TSR_CORE_PLACE_H
#define TSR_CORE_PLACE_H

#include <stdint.h>
#include <tessera/runtime.h>

struct tsr_future;

/* t->device of a task whose device is chosen when it is ready (dmda, random). */
#define TSR_DEVICE_ANY UINT32_MAX
/* t->device of a task every device can run, under eager and ws with accelerators:
 * it waits in the runtime's shared queue for the first idle worker of any device. */
#define TSR_DEVICE_SHARED (UINT32_MAX - 1)

/* Whether rt places tasks at readiness (its policy is dmda or random). */
int tsr__place_is_deferred(const tsr_runtime_t *rt);

/* Choose the device of ready task t among t->dev_mask; sets t->device (and, for
 * dmda, t->pred_ns, counted in the device's expected load until t completes). */
void tsr__place(tsr_runtime_t *rt, struct tsr_future *t);

/* Seed the calling thread's random placement (simulations repeat exactly). */
void tsr__place_seed(uint64_t seed);

/* t completed: its predicted time leaves its device's expected load. */
void tsr__place_done(tsr_runtime_t *rt, struct tsr_future *t);

/* Task t ran for `seconds` on device `dev`: teach the models (core/models.c). */
void tsr__place_observe(tsr_runtime_t *rt, struct tsr_future *t, uint32_t dev, double seconds);

#endif /* TSR_CORE_PLACE_H */
