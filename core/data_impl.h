/* The data handle object and dependency inference over handles. Private to core/. */
#ifndef TSR_CORE_DATA_IMPL_H
#define TSR_CORE_DATA_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <tessera/data.h>

#include "core/runtime_impl.h"
#include "core/spill.h"
#include "core/sync.h"
#include "core/task_impl.h"

#define TSR_DATA_MAGIC 0x74737264u /* "tsrd" */
#define TSR_DATA_F_OWNED 0x1u      /* the runtime allocated the host replica */
#define TSR_DATA_F_DYNAMIC 0x2u    /* created by tsr_data_create */
#define TSR_DATA_F_REGISTERED 0x4u /* over a buffer of the program (counted in host_registered) */

enum replica_state { REP_INVALID = 0, REP_SHARED = 1, REP_MODIFIED = 2 };

/* The copy of a handle on one memory node. At most one replica is MODIFIED, and
 * then every other is INVALID. */
struct replica {
    void *ptr;
    size_t n_bytes; /* allocated size */
    uint32_t state;
    void *fence;       /* asynchronous devices: last queued work writing it (device_ops.h) */
    uint32_t pins;     /* tasks using it now: it may not be evicted */
    uint64_t last_use; /* device replicas: the runtime's use clock when last fetched */
};

/* A logical buffer. The lock guards last_writer, readers and changes of poison;
 * handles are locked in address order when a task holds several. */
struct tsr_data {
    tsr__spinlock_t lock;
    uint32_t magic;
    uint32_t flags;
    tsr_runtime_t *rt;
    struct task_ref last_writer;
    struct task_ref *readers; /* readers since the last writer */
    uint32_t n_readers;
    uint32_t cap_readers;
    /* Failure of the last writer, if it failed or was cancelled; NULL when the
     * contents are valid. Changed only under lock, read lock-free on success. */
    _Atomic(struct tsr_cause *) poison;
    size_t n_bytes; /* logical size */
    /* Replicas per memory node; rep[0] is host memory (the user's buffer for a
     * registered handle). Guarded by coh_mutex when the runtime is coherent
     * (accelerators or the disk tier); otherwise only rep[0] exists and tasks
     * ordering is enough. */
    pthread_mutex_t coh_mutex;
    struct replica rep[TSR_MAX_NODES];
    struct tsr__disk_copy disk; /* in the spill directory (guarded by coh_mutex) */
    uint64_t version;           /* bumped by every write: a spill racing one is dropped */
    uint32_t io;                /* TSR_IO_*: an I/O thread is using the host replica */
    uint32_t read_queued;       /* in the read-ahead queue (spill mutex) */
    uint32_t io_held;           /* the I/O thread uses it unlocked: not freed (spill mutex) */
    uint32_t ahead_unused;      /* host replica read ahead, no task used it yet (coh_mutex) */
    struct tsr_future *acquire; /* the held acquire, NULL when none */
    struct tsr_data *prev;      /* runtime's list of live handles */
    struct tsr_data *next;
};

/* Free a handle no task can reach any more (unregister, shutdown). */
void tsr__data_free(struct tsr_data *d);

/* One handle of a task after merging duplicates. */
struct dep_access {
    struct tsr_data *data;
    uint32_t mode;
};

/* Sort accesses by handle address and merge duplicates (modes OR-ed); returns the
 * new count. */
uint32_t tsr__deps_normalise(struct dep_access *acc, uint32_t n);

/* Register t's accesses (normalised) in the handles' histories, adding the edges
 * that make t wait for conflicting earlier tasks. Locks all handles for the
 * duration, so concurrent submitters see one total order. */
void tsr__deps_register(struct tsr_future *t, const struct dep_access *acc, uint32_t n);

/* Whether no unfinished task accesses d (takes d's lock): its contents are not
 * awaited by any task submitted so far. */
int tsr__deps_idle(struct tsr_data *d);

/* Called at completion for every handle t wrote: record or clear the poison. */
void tsr__deps_writer_done(struct tsr_data *data, struct tsr_cause *cause);

#endif /* TSR_CORE_DATA_IMPL_H */
