/* Data handles: the logical buffers tasks read and write. */
#ifndef TESSERA_DATA_H
#define TESSERA_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/export.h>
#include <tessera/runtime.h>
#include <tessera/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_data tsr_data_t;

/** How a task (or an acquire) uses a handle. */
typedef enum {
    TSR_R = 1,  /* reads */
    TSR_W = 2,  /* overwrites entirely; previous contents are not read */
    TSR_RW = 3, /* reads and writes */
} tsr_access_t;

/** Register the host buffer `ptr` of `n_bytes` bytes (n_bytes > 0, ptr != NULL)
 *  as a data handle of `rt`. Borrows the buffer: the caller keeps ownership and
 *  must not touch it while tasks may use it, except between tsr_data_acquire and
 *  tsr_data_release. On TSR_OK `*data_out` is new; end it with
 *  tsr_data_unregister. Thread-safe. Errors: TSR_EINVAL, TSR_ENOMEM. */
TSR_API tsr_status_t tsr_data_register(tsr_runtime_t *rt, void *ptr, size_t n_bytes,
                                       tsr_data_t **data_out);

/** Create a handle with no buffer yet: a dynamic-size output. The first task that
 *  writes it (W or RW) allocates its buffer with tsr_task_ctx_alloc, once it
 *  knows the size; the runtime owns that memory. Reading it before any write sees
 *  an empty buffer (ptr NULL, size 0). On TSR_OK `*data_out` is new. */
TSR_API tsr_status_t tsr_data_create(tsr_runtime_t *rt, tsr_data_t **data_out);

/** Give the calling thread access to the handle's host buffer: waits until every
 *  task submitted earlier that conflicts with `mode` has completed (writers for
 *  TSR_R, all users for TSR_W/TSR_RW). Tasks submitted afterwards that conflict
 *  wait until tsr_data_release. On TSR_OK writes `*ptr_out` and `*n_bytes_out`
 *  (each may be NULL). Errors: TSR_EINVAL; TSR_EBUSY if the handle is already
 *  acquired; TSR_ECANCELED if mode reads and the last writer failed or was
 *  cancelled (tsr_last_error() names the cause; the handle stays unacquired).
 *  Must not be called from inside a task. */
TSR_API tsr_status_t tsr_data_acquire(tsr_data_t *data, tsr_access_t mode, void **ptr_out,
                                      size_t *n_bytes_out);

/** End an acquire. A TSR_W or TSR_RW acquire counts as a successful write.
 *  Errors: TSR_EINVAL if the handle is not acquired. */
TSR_API tsr_status_t tsr_data_release(tsr_data_t *data);

/** Wait for every task using the handle to complete, then free the handle (and
 *  its buffer if the runtime allocated it; a registered user buffer is left to
 *  its owner, holding the latest contents). Using `data` afterwards is undefined.
 *  Must not be called from inside a task or while the handle is acquired.
 *  NULL: no-op. */
TSR_API void tsr_data_unregister(tsr_data_t *data);

/** Current size in bytes (0 for a dynamic output not written yet). Not
 *  synchronised with running tasks: acquire first for a settled value. */
TSR_API size_t tsr_data_size(const tsr_data_t *data);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_DATA_H */
