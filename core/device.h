/* Devices of a runtime: set-up from the backend registry, and routing a ready
 * task to the device that runs it. Private to core/. */
#ifndef TSR_CORE_DEVICE_H
#define TSR_CORE_DEVICE_H

#include <stdint.h>
#include <tessera/task.h>

struct tsr_future;
struct tsr__worker;

/* Create rt->devices and size rt->workers from the resolved configuration. */
tsr_status_t tsr__devices_setup(tsr_runtime_t *rt);
void tsr__devices_fini(tsr_runtime_t *rt);

/* Size rt->workers for rt->devices (each device's first_worker and n_workers set). */
tsr_status_t tsr__devices_alloc_workers(tsr_runtime_t *rt, uint32_t n_workers);

/* Whether device `dev` can run codelet cl (it has an implementation for it). */
int tsr__device_can_run(const tsr_runtime_t *rt, uint32_t dev, const tsr_codelet_t *cl);

/* The devices a task may run on (its pin and codelet), *mask_out, and its device
 * now if that is decided at submission, else TSR_DEVICE_ANY (core/place.h).
 * Errors: TSR_EINVAL (bad pin), TSR_ENODEV (no allowed device can run it). */
tsr_status_t tsr__device_choose(tsr_runtime_t *rt, const tsr_task_desc_t *desc, uint32_t *dev_out,
                                uint32_t *mask_out);

/* Queue a ready task on its device; `self` is the calling worker of rt or NULL. */
void tsr__device_push(tsr_runtime_t *rt, struct tsr__worker *self, struct tsr_future *t);

/* The implementation a device of `kind` runs for cl (sim falls back to CPU). */
tsr_kernel_fn tsr__device_impl(const tsr_codelet_t *cl, tsr_device_kind_t kind);

#endif /* TSR_CORE_DEVICE_H */
