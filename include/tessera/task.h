/* Codelets, tasks and futures. */
#ifndef TESSERA_TASK_H
#define TESSERA_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/data.h>
#include <tessera/export.h>
#include <tessera/runtime.h>
#include <tessera/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most data handles one task may access. */
#define TSR_MAX_BUFFERS 16
/** Largest argument blob copied inline into a task; larger blobs are copied to
 *  the heap (one allocation per such task). */
#define TSR_TASK_ARG_INLINE 64
/** Largest argument blob accepted at all. */
#define TSR_TASK_ARG_MAX (1u << 20)
/** Codelet n_buffers value meaning "the task says how many (and which modes)". */
#define TSR_NBUFFERS_DYNAMIC (-1)

/** Kinds of device a codelet may have an implementation for. */
typedef enum {
    TSR_DEVICE_CPU = 0,
    TSR_DEVICE_CUDA = 1,
    TSR_DEVICE_SIM = 2, /* simulated accelerator; falls back to the CPU implementation */
    TSR_DEVICE_KIND_COUNT = 3,
} tsr_device_kind_t;

/** Where a task may run (tsr_task_desc_t.pin). */
typedef enum {
    TSR_PIN_NONE = 0,   /* the scheduler chooses among devices that can run it */
    TSR_PIN_KIND = 1,   /* any device of kind pin_value (a tsr_device_kind_t) */
    TSR_PIN_DEVICE = 2, /* the device of index pin_value (see tsr_runtime_device_info) */
} tsr_pin_t;

typedef struct tsr_task_ctx tsr_task_ctx_t;
typedef struct tsr_future tsr_future_t;

/** A buffer as an implementation sees it: the replica on the device it runs on. */
typedef struct {
    void *ptr;      /* NULL for a dynamic-size output not allocated yet */
    size_t n_bytes; /* 0 likewise */
} tsr_buffer_t;

/** A task implementation. `bufs[i]` is the i-th handle of the task; `arg`
 *  points to the task's copy of its argument blob (NULL when it has none), valid
 *  during the call. Return TSR_OK, or an error status (and optionally a message
 *  through tsr_task_ctx_fail) to fail the task and cancel its dependents. A CUDA
 *  implementation launches asynchronously on tsr_task_ctx_stream(ctx). */
typedef tsr_status_t (*tsr_kernel_fn)(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                      const void *arg);

/** A cost hint: estimate for the given buffer sizes (flops or bytes moved). */
typedef double (*tsr_cost_fn)(const size_t *n_bytes, uint32_t n_buffers, const void *arg);

/** A named kernel with one implementation per device kind. The caller owns the
 *  struct and must keep it alive and unchanged while tasks using it are in flight
 *  (a static const struct is the usual choice). */
typedef struct {
    const char *name;                          /* shown in traces and messages */
    tsr_kernel_fn impl[TSR_DEVICE_KIND_COUNT]; /* NULL: no implementation there */
    int32_t n_buffers;                         /* 0..TSR_MAX_BUFFERS or TSR_NBUFFERS_DYNAMIC */
    tsr_access_t modes[TSR_MAX_BUFFERS];       /* mode of each buffer (fixed count) */
    tsr_cost_fn flops;                         /* optional cold-start hints */
    tsr_cost_fn bytes;
} tsr_codelet_t;

/** What to run. Value struct; start from TSR_TASK_DESC_INIT. */
typedef struct {
    const tsr_codelet_t *codelet; /* required; borrowed (see tsr_codelet_t) */
    tsr_data_t *const *handles;   /* n_handles handles, borrowed */
    const tsr_access_t *modes;    /* NULL: codelet->modes; required for DYNAMIC */
    uint32_t n_handles;           /* must equal codelet->n_buffers unless DYNAMIC */
    const void *arg;              /* copied at submit; NULL with arg_size 0 */
    size_t arg_size;              /* <= TSR_TASK_ARG_MAX */
    int32_t priority;             /* higher runs first among ready tasks; 0 default */
    tsr_future_t *const *deps;    /* explicit dependencies, borrowed */
    uint32_t n_deps;
    const char *name;   /* NULL: codelet->name; must outlive the task */
    tsr_pin_t pin;      /* TSR_PIN_NONE: anywhere it has an implementation */
    uint32_t pin_value; /* device kind or device index, per pin */
} tsr_task_desc_t;
/* clang-format off */
#define TSR_TASK_DESC_INIT {NULL, NULL, NULL, 0, NULL, 0, 0, NULL, 0, NULL, TSR_PIN_NONE, 0}
/* clang-format on */

/** Submit a task to `rt`. Dependencies on earlier tasks are inferred from the
 *  access modes of its handles in submission order, as a sequential program would
 *  see them (read-after-write, write-after-read, write-after-write), plus the
 *  explicit `deps`. A handle listed twice counts once with the union of modes.
 *  Returns at once; the task starts when its inputs are ready.
 *  Borrows `desc` and everything it points to for the duration of the call only.
 *  If `future_out` is non-NULL, on TSR_OK `*future_out` is a new future owned by
 *  the caller (tsr_future_release). Thread-safe; may be called from inside a task.
 *  Errors: TSR_EINVAL (bad descriptor, a handle of another runtime, unregistered
 *  handle, pin to a device index that does not exist), TSR_ENODEV (no present device
 *  allowed by `pin` has an implementation), TSR_ENOMEM.
 *  On error nothing was submitted. */
TSR_API tsr_status_t tsr_task_submit(tsr_runtime_t *rt, const tsr_task_desc_t *desc,
                                     tsr_future_t **future_out);

/** Runtime a running task belongs to (to submit more tasks from inside it). */
TSR_API tsr_runtime_t *tsr_task_ctx_runtime(const tsr_task_ctx_t *ctx);
/** Index of the worker running the task: 0-based, CPU workers first, then one per
 *  accelerator device. */
TSR_API uint32_t tsr_task_ctx_worker(const tsr_task_ctx_t *ctx);
/** Device kind the implementation runs on. */
TSR_API tsr_device_kind_t tsr_task_ctx_device_kind(const tsr_task_ctx_t *ctx);
/** Index of the device the task runs on (see tsr_runtime_device_info). */
TSR_API uint32_t tsr_task_ctx_device(const tsr_task_ctx_t *ctx);
/** Stream to launch on: a cudaStream_t for CUDA implementations, NULL elsewhere.
 *  A CUDA implementation queues all its work on this stream and returns without
 *  synchronising; the task completes when that work has (the runtime records an
 *  event after it). The stream belongs to the runtime: do not destroy it, and do
 *  not keep it after the call. Work queued elsewhere is not waited for. */
TSR_API void *tsr_task_ctx_stream(const tsr_task_ctx_t *ctx);
/** A cuBLAS handle (cublasHandle_t) bound to tsr_task_ctx_stream(ctx), for CUDA
 *  implementations; NULL elsewhere, or when libcublas could not be loaded. Owned
 *  by the runtime: do not destroy it or change its stream; math mode and pointer
 *  mode changes must be undone before returning. Tessera loads the shared
 *  libcublas: link the shared one (CUDA::cublas) to call it. */
TSR_API void *tsr_task_ctx_blas(const tsr_task_ctx_t *ctx);

/** Record a printf-style failure message for the running task; the
 *  implementation then returns an error status. The message (truncated to 512
 *  bytes) is reported by the task's future and by the futures of dependents
 *  cancelled because of it. */
TSR_API void tsr_task_ctx_fail(tsr_task_ctx_t *ctx, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** Allocate the buffer of handle `index` of the running task, a dynamic-size
 *  output (created with tsr_data_create) accessed in W or RW mode. The runtime
 *  owns the memory (freed at unregister or when a later task reallocates it);
 *  on TSR_OK `*ptr_out` is valid until the handle is next written. Calling it
 *  again in the same task resizes (contents up to the smaller size kept).
 *  On a CUDA device the buffer is device memory; call this before queuing work
 *  that uses the handle's buffer, since a resize does not wait for work the
 *  task queued itself.
 *  Errors: TSR_EINVAL (index out of range, read-only access, registered user
 *  buffer), TSR_ENOMEM (more than the node's limit, or out of memory), TSR_EIO
 *  (host memory is full and spilling to disk failed). */
TSR_API tsr_status_t tsr_task_ctx_alloc(tsr_task_ctx_t *ctx, uint32_t index, size_t n_bytes,
                                        void **ptr_out);

/** Block until the task of `future` has completed and return its status: TSR_OK,
 *  the error its implementation returned, or TSR_ECANCELED. From inside a task
 *  the worker runs other ready tasks while it waits. Thread-safe. */
TSR_API tsr_status_t tsr_future_wait(tsr_future_t *future);

/** TSR_PENDING if the task has not completed, else its status as tsr_future_wait. */
TSR_API tsr_status_t tsr_future_test(tsr_future_t *future);

/** Wait for all `n` futures; returns TSR_OK if all succeeded, else the status of
 *  the first (in array order) that did not. Borrows the array. */
TSR_API tsr_status_t tsr_future_wait_all(tsr_future_t *const *futures, size_t n);

/** Failure message of a completed task ("" on success or while pending). For a
 *  cancelled task it names the task that failed first and its message. Owned by
 *  the future, valid until it is released. */
TSR_API const char *tsr_future_message(tsr_future_t *future);

/** Sequence number of the task (unique in its runtime, increasing with submission). */
TSR_API uint64_t tsr_future_task_id(const tsr_future_t *future);

/** Add a reference to `future` (for sharing across threads); returns it. */
TSR_API tsr_future_t *tsr_future_retain(tsr_future_t *future);

/** Drop the caller's reference; the task itself is unaffected. NULL: no-op. */
TSR_API void tsr_future_release(tsr_future_t *future);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_TASK_H */
