/* The disk tier: host replicas of runtime-owned handles written to files in the
 * spill directory and read back, by a dedicated I/O thread so that compute does
 * not wait on the disk; host-memory marks (spill, pause) and the wait of an
 * allocation that would pass the host limit. Private to core/.
 *
 * Host memory marks, as fractions of the host limit:
 *   above TSR_SPILL_HIGH the I/O thread writes least-recently-used replicas to
 *   disk until usage is under TSR_SPILL_LOW; an allocation that would pass the
 *   limit waits for it; above TSR_SPILL_PAUSE tasks that read nothing (graph roots,
 *   which only create data) are held back until usage falls or nothing else can
 *   run. */
#ifndef TSR_CORE_SPILL_H
#define TSR_CORE_SPILL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <tessera/runtime.h>

#include "core/sync.h"

#define TSR_SPILL_LOW 0.60
#define TSR_SPILL_HIGH 0.70
#define TSR_SPILL_PAUSE 0.85

struct tsr_data;
struct tsr_future;

/* A handle's copy in the spill directory (guarded by the handle's coh_mutex). */
struct tsr__disk_copy {
    uint64_t file;     /* file number in the runtime's spill directory; 0: none */
    uint64_t n_bytes;  /* contents' size */
    uint64_t stored;   /* bytes in the file */
    uint64_t checksum; /* of the stored bytes */
    uint32_t valid;    /* holds the latest contents */
    uint32_t compressed;
};

/* What an I/O thread is doing with a handle (tsr_data.io; bits, one at a time). */
enum { TSR_IO_NONE = 0, TSR_IO_WRITING = 1, TSR_IO_READING = 2 };

/* A spill write whose outcome waits for its handle's lock (the I/O thread does
 * not block on handle locks: their holders may be waiting for host room). */
struct tsr__pending_commit {
    struct tsr_data *data;
    struct tsr__disk_copy copy;
    uint64_t version;
    tsr_status_t status;
};

#define TSR_SPILL_MAX_PENDING 8

/* Wall time during which at least one transfer of a kind (reads, writes) was under
 * way, whatever the number of threads doing them at once: bytes / busy_ns is the
 * throughput of the tier, where the sum of each transfer's own time counts
 * overlapping transfers twice. */
struct tsr__busy_clock {
    tsr__spinlock_t lock;
    uint32_t n_active;
    uint64_t since; /* when n_active last went from 0 to 1 */
    _Atomic uint64_t busy_ns;
};

struct tsr__spill {
    int inited;
    int enabled;               /* host replicas may be spilled (not in simulations) */
    int compress;              /* tsr_spill_compress_t, resolved */
    uint64_t high, low, pause; /* host marks in bytes */
    pthread_mutex_t mutex;     /* guards everything below but the atomics */
    pthread_cond_t wake;       /* the I/O thread waits here */
    pthread_cond_t room;       /* allocations waiting for host memory */
    pthread_t thread;
    int started;
    int stop;
    int want_spill;          /* host usage passed the high mark */
    char dir[4096];          /* this runtime's own directory; "" until made */
    uint64_t next_file;      /* file numbers */
    struct tsr_data **readq; /* handles to read back ahead of their tasks */
    uint32_t n_readq;
    uint32_t cap_readq;
    struct tsr_future **deferred; /* roots held back while host memory is paused */
    uint32_t n_deferred;
    uint32_t cap_deferred;
    uint64_t progress_gen; /* bumped when host memory was freed */
    uint64_t stuck_gen;    /* bumped when nothing more could be spilled */
    uint64_t error_gen;    /* bumped by each failed write */
    tsr_status_t error;    /* the last failed write's status and message */
    char error_msg[512];
    struct tsr__pending_commit pending[TSR_SPILL_MAX_PENDING]; /* the I/O thread's own */
    uint32_t n_pending;
    int fault_errno; /* tests: fail the next fault_count writes */
    uint32_t fault_count;
    _Atomic uint32_t n_deferred_now; /* n_deferred, read without the mutex */
    _Atomic uint64_t n_on_disk;      /* handles with a valid disk copy */
    _Atomic uint64_t n_writes, bytes_written, bytes_stored, write_ns;
    _Atomic uint64_t n_reads, bytes_read, read_ns, n_read_ahead, n_dropped;
    _Atomic uint64_t on_disk, peak_disk, n_errors, n_deferred_total, n_over_limit;
    struct tsr__busy_clock write_busy, read_busy;
    /* Read-ahead: bytes read back that no task has used yet, at most ahead_cap
     * (one chunk at least); ahead_blocked: the head of readq waits for memory or
     * for those to be used, and the next task to finish wakes the I/O thread. */
    _Atomic uint64_t ahead_bytes, n_ahead_wasted;
    uint64_t ahead_cap;
    _Atomic uint32_t ahead_blocked;
};

/* Resolve the configuration's tier (marks, compression); start and stop the I/O
 * thread (stop before handles are freed, fini after: it removes the runtime's
 * spill directory). */
tsr_status_t tsr__spill_init(tsr_runtime_t *rt);
tsr_status_t tsr__spill_start(tsr_runtime_t *rt);
void tsr__spill_stop(tsr_runtime_t *rt);
void tsr__spill_fini(tsr_runtime_t *rt);

/* Host usage passed the high mark: have the I/O thread spill (cheap when it
 * already is). */
void tsr__spill_kick(tsr_runtime_t *rt);

/* Count n_bytes of host memory about to be allocated for a replica (host_used),
 * first waiting until they fit under the limit, or until nothing more can be
 * spilled (then usage may pass the limit). Errors (nothing counted): TSR_ENOMEM
 * when n_bytes alone exceeds the limit, TSR_EIO when the spill writes this wait
 * depends on failed. `what` names the allocation in messages. The caller may
 * hold handle locks. */
tsr_status_t tsr__spill_reserve(tsr_runtime_t *rt, size_t n_bytes, const char *what);

/* Count n_bytes in host_used only if usage stays at most `cap` (after giving
 * the spare host blocks back, if need be); 1 if counted. */
int tsr__spill_try_reserve(tsr_runtime_t *rt, size_t n_bytes, uint64_t cap);

/* Write n bytes at ptr to a new spill file (compressed when it pays); fills *out.
 * Errors: TSR_EIO with the path and the system's reason. */
tsr_status_t tsr__spill_write(tsr_runtime_t *rt, const void *ptr, size_t n,
                              struct tsr__disk_copy *out);

/* Read a disk copy back into dst (copy->n_bytes), checking its checksum.
 * Errors: TSR_EIO (unreadable, short, or corrupt file). */
tsr_status_t tsr__spill_read(tsr_runtime_t *rt, const struct tsr__disk_copy *copy, void *dst);

/* Delete a disk copy's file and forget it. */
void tsr__spill_remove(tsr_runtime_t *rt, struct tsr__disk_copy *copy);

/* Ready task t will read handles whose only copy is on disk: queue them for the
 * I/O thread to read back, in the order tasks became ready. The I/O thread reads
 * one into room below the high mark, making that room by dropping clean host
 * replicas that no unfinished task uses (never by writing), and keeps at most
 * ahead_cap bytes read but not used yet; entries whose task already read them are
 * skipped. */
void tsr__spill_read_ahead(tsr_runtime_t *rt, struct tsr_future *t);

/* Wake the I/O thread. */
void tsr__spill_wake(struct tsr__spill *sp);

/* A task finished: if read-ahead waits for that, wake the I/O thread. */
static inline void tsr__spill_task_done(struct tsr__spill *sp)
{
    if (atomic_load_explicit(&sp->ahead_blocked, memory_order_relaxed) != 0) {
        atomic_store_explicit(&sp->ahead_blocked, 0, memory_order_relaxed);
        tsr__spill_wake(sp);
    }
}

/* The I/O thread works on d without its lock: tsr__spill_forget waits for
 * tsr__spill_release. */
void tsr__spill_hold(tsr_runtime_t *rt, struct tsr_data *d);
void tsr__spill_release(tsr_runtime_t *rt, struct tsr_data *d);

/* Handle d is being freed: drop it from the read-ahead queue, and wait while the
 * I/O thread holds it. */
void tsr__spill_forget(tsr_runtime_t *rt, struct tsr_data *d);

/* Back-pressure for a CPU worker: whether t, a task that reads nothing, must wait
 * because host memory is above the pause mark. A deferred task is queued again
 * once usage falls under the mark or the I/O thread has nothing more to spill. */
int tsr__spill_defer(tsr_runtime_t *rt, struct tsr_future *t);

/* Tests: make the next `count` spill writes fail with errno `err`. */
void tsr__spill_inject_fault(tsr_runtime_t *rt, int err, uint32_t count);

#endif /* TSR_CORE_SPILL_H */
