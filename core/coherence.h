/* Replica coherence between memory nodes (host memory and each accelerator's).
 * Private to core/. With the CPU alone (one node) none of this runs. */
#ifndef TSR_CORE_COHERENCE_H
#define TSR_CORE_COHERENCE_H

#include <stddef.h>
#include <stdint.h>
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
void tsr__coh_free_all(struct tsr_data *d);

#endif /* TSR_CORE_COHERENCE_H */
