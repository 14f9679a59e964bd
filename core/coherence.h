/* Replica coherence between memory nodes (host memory and each accelerator's),
 * and between host memory and the disk tier. Private to core/. It runs when the
 * runtime has accelerators or the disk tier is on (by default; not in
 * simulations). */
#ifndef TSR_CORE_COHERENCE_H
#define TSR_CORE_COHERENCE_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/runtime.h>
#include <tessera/task.h>

struct tsr_data;
struct tsr__worker;

/* Make d usable on memory node `node` for `mode`: allocate the replica there if
 * needed and, when mode reads and the replica is stale, copy the latest contents
 * in from a valid replica. Fills *buf_out. `w` (may be NULL) is the worker doing
 * it, for the trace. Errors: TSR_ENOMEM (the node is full), TSR_EBACKEND (a copy
 * failed); tsr_last_error() names the device and sizes. */
tsr_status_t tsr__coh_fetch(struct tsr_data *d, uint32_t node, uint32_t mode, struct tsr__worker *w,
                            tsr_buffer_t *buf_out);

/* As tsr__coh_fetch, and pin the replica on `node` for a task that uses it: it is
 * not evicted until tsr__coh_unpin. */
tsr_status_t tsr__coh_fetch_pinned(struct tsr_data *d, uint32_t node, uint32_t mode,
                                   struct tsr__worker *w, tsr_buffer_t *buf_out);
void tsr__coh_unpin(struct tsr_data *d, uint32_t node);

/* Start copying d to `node` for a task placed there, if the node has free room
 * (nothing is evicted for it); failures are left to the task's own fetch. */
void tsr__coh_prefetch(struct tsr_data *d, uint32_t node);

/* The replica a copy of d should come from (d's coh_mutex held): the modified
 * one, else the first shared one in node order (host memory first); -1 if none. */
int tsr__coh_source(const struct tsr_data *d);

/* A task on `node` wrote d: that replica is now the only valid one. */
void tsr__coh_written(struct tsr_data *d, uint32_t node);

/* Give the dynamic-size output d a buffer of n_bytes on `node` (contents up to the
 * smaller size kept when that replica was valid); every other replica is freed. */
tsr_status_t tsr__coh_resize(struct tsr_data *d, uint32_t node, size_t n_bytes, void **ptr_out);

/* Free every replica the runtime allocated (device ones, and the host one when the
 * runtime owns it). */
/* Whether d has memory on `node` now (a block, valid or not). */
int tsr__coh_has_memory(struct tsr_data *d, uint32_t node);

void tsr__coh_free_all(struct tsr_data *d);

/* Device node `node`'s driver thread, between launches: above the node's spill
 * mark (cfg.device_spill_mark of its limit), give up one least recently used
 * replica that no task holds, and go on at each call until usage is 0.1 of the
 * limit under the mark, so that
 * allocations find room without evicting. `progress` is the driver's completed
 * launches: after a call finds nothing to give up, none is looked for until it
 * changes. Returns 1 if a replica was given up. */
int tsr__coh_evict_ahead(tsr_runtime_t *rt, uint32_t node, uint64_t progress);

/* The spill I/O thread: give up the least recently used host replica the runtime
 * owns that no task holds: freed if another copy is valid, else written to disk
 * first (its memory is freed when the write is committed, at once or, when the
 * handle is locked, by tsr__coh_commit_pending). Returns 1 if one went, 0 if none
 * could, 2 if too many commits are pending, a negative tsr_status_t (TSR_EIO,
 * tsr_last_error() says why) if writing failed; the data then stays. */
int tsr__coh_spill_one(tsr_runtime_t *rt);

/* The spill I/O thread: commit the pending spill writes whose handles are free
 * (all of them, waiting for the locks, when `wait`). Returns the number of host
 * replicas freed. */
int tsr__coh_commit_pending(tsr_runtime_t *rt, int wait);

/* The spill I/O thread: read d's disk copy back into host memory if it is still
 * the only valid one and a task will read it (see tsr__spill_read_ahead).
 * Returns 1 when d is done with (read, or nothing to read), 0 when it has to wait:
 * no room below the high mark, or enough read ahead already. */
int tsr__coh_read_back(struct tsr_data *d);

#endif /* TSR_CORE_COHERENCE_H */
