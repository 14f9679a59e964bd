/* Virtual-time simulation: a platform described in a file, where no kernel runs
 * and each task takes its modelled time; the real dependency tracking, placement
 * policies, queues and coherence run unchanged against a virtual clock, on the
 * thread that waits. Private to core/. */
#ifndef TSR_CORE_VTIME_H
#define TSR_CORE_VTIME_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/runtime.h>

struct tsr__vt;
struct tsr_future;

/* Read the platform file of rt->cfg.simulate and create rt->vt; sets
 * rt->cfg.n_cpu_workers to its cores. Errors: TSR_EINVAL (unreadable or bad file,
 * the message names the line), TSR_ENOMEM. */
tsr_status_t tsr__vt_create(tsr_runtime_t *rt);
void tsr__vt_destroy(tsr_runtime_t *rt);

/* The devices of the platform: the CPU and its GPUs (kind CUDA, no memory behind
 * them). Called instead of the backend registry. */
tsr_status_t tsr__vt_devices_setup(tsr_runtime_t *rt);

/* Run the simulation until no task can progress (every submitted task done, or
 * the rest waiting for the program, e.g. a held acquire). */
tsr_status_t tsr__vt_run(tsr_runtime_t *rt);

/* Modelled run time of t on a device of `kind`, in seconds (what dmda predicts in
 * a simulation: the platform's own figure). */
double tsr__vt_task_seconds(tsr_runtime_t *rt, struct tsr_future *t, uint32_t kind);

/* Modelled time of a copy of n_bytes from node src to node dst, link contention aside. */
double tsr__vt_copy_seconds(tsr_runtime_t *rt, uint32_t src, uint32_t dst, uint64_t n_bytes);

/* The virtual clock, in ns since the start. */
uint64_t tsr__vt_now_ns(tsr_runtime_t *rt);

/* Host memory for a replica of n_bytes in a simulation: an address never used. */
void *tsr__vt_fake_alloc(tsr_runtime_t *rt, size_t n_bytes);

#endif /* TSR_CORE_VTIME_H */
