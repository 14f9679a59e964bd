/* Placement of ready tasks on devices, for the policies that decide at readiness
 * (dmda, random). Private to core/. */
#ifndef TSR_CORE_PLACE_H
#define TSR_CORE_PLACE_H

#include <stdint.h>
#include <tessera/runtime.h>

struct tsr_future;

/* t->device of a task whose device is chosen when it is ready. */
#define TSR_DEVICE_ANY UINT32_MAX

/* Whether rt places tasks at readiness (its policy is dmda or random). */
int tsr__place_is_deferred(const tsr_runtime_t *rt);

/* Choose the device of ready task t among t->dev_mask; sets t->device (and, for
 * dmda, t->pred_ns, counted in the device's expected load until t completes). */
void tsr__place(tsr_runtime_t *rt, struct tsr_future *t);

/* t completed: its predicted time leaves its device's expected load. */
void tsr__place_done(tsr_runtime_t *rt, struct tsr_future *t);

/* Task t ran for `seconds` on device `dev`: teach the models (core/models.c). */
void tsr__place_observe(tsr_runtime_t *rt, struct tsr_future *t, uint32_t dev, double seconds);

#endif /* TSR_CORE_PLACE_H */
