/* The Tessera runtime: configuration, start-up, shutdown and whole-runtime waits. */
#ifndef TESSERA_RUNTIME_H
#define TESSERA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <tessera/export.h>
#include <tessera/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_runtime tsr_runtime_t;

/** Scheduling policy. TSR_SCHED_DEFAULT picks `dmda` when the runtime has an
 *  accelerator and `ws` on CPU-only machines. Under eager and ws a task that may run
 *  on several devices goes to the CPU when it has a CPU implementation, else to the
 *  accelerators in turn, decided at submission; dmda and random decide when the task
 *  is ready, and queue CPU work as ws does. */
typedef enum {
    TSR_SCHED_DEFAULT = 0,
    TSR_SCHED_EAGER = 1,  /* one central ready queue shared by all workers */
    TSR_SCHED_WS = 2,     /* per-worker deques; idle workers steal */
    TSR_SCHED_DMDA = 3,   /* the device where the task is expected to finish first */
    TSR_SCHED_RANDOM = 4, /* a random device that can run it (a baseline) */
} tsr_sched_policy_t;

/** Verbosity of the messages Tessera writes to stderr. */
typedef enum {
    TSR_LOG_DEFAULT = 0, /* TSR_LOG_WARN */
    TSR_LOG_NONE = 1,
    TSR_LOG_ERROR = 2,
    TSR_LOG_WARN = 3,
    TSR_LOG_INFO = 4,
    TSR_LOG_DEBUG = 5,
} tsr_log_level_t;

/** A memory limit: `bytes` when non-zero, else `fraction` (0 < fraction <= 1) of
 *  the memory of the node it applies to, else the default. */
typedef struct {
    uint64_t bytes;
    double fraction;
} tsr_mem_limit_t;

/** Compression of chunks spilled to disk. */
typedef enum {
    TSR_SPILL_COMPRESS_DEFAULT = 0, /* lz4 when built with it and a sample compresses */
    TSR_SPILL_COMPRESS_NONE = 1,
    TSR_SPILL_COMPRESS_LZ4 = 2, /* always lz4 (TSR_ENOTSUP at tsr_init if not built in) */
} tsr_spill_compress_t;

/** Whether a runtime shows the progress of long work on stderr. */
typedef enum {
    TSR_PROGRESS_AUTO = 0, /* a bar when stderr is a terminal; nothing otherwise */
    TSR_PROGRESS_OFF = 1,  /* nothing on stderr (a progress_fn is still called) */
    TSR_PROGRESS_ON = 2,   /* a bar on a terminal; else a line per update, as in a log */
} tsr_progress_mode_t;

/** The progress of a runtime's current work, as drawn on stderr and given to
 *  tsr_config_t.progress_fn. Work is counted in batches: a batch begins when the
 *  runtime, seen idle (every submitted task finished), is seen with tasks to run,
 *  and ends when it is seen idle again. The runtime looks every progress interval,
 *  so a batch's start is known to within one interval, and a batch that begins and
 *  ends between two looks is not reported. Acquires are not counted. */
typedef struct {
    uint64_t n_tasks;    /* submitted in this batch so far (grows as tasks submit more) */
    uint64_t n_done;     /* of them finished: ran, failed or were cancelled */
    uint64_t n_failed;   /* of them failed or cancelled */
    double elapsed_s;    /* since the batch began */
    double remaining_s;  /* the tasks left at the batch's rate so far; -1: not known yet */
    uint64_t host_used;  /* bytes in the runtime's host replicas now */
    uint64_t host_limit; /* the host memory limit */
    uint64_t disk_bytes; /* bytes in spill files now */
    int is_done;         /* 1: the batch has ended; its last report */
} tsr_progress_t;

/** Called every progress interval while a batch runs, and once when it ends
 *  (is_done 1), by the runtime's progress thread (named tsr-progress) or, for the
 *  end, by a thread of the program returning from a wait (tsr_wait_all, a future,
 *  an acquire) that finds the batch ended, so that the end is reported before the
 *  wait returns when the batch was seen running. Calls never overlap. `user` is
 *  tsr_config_t.progress_user; `progress` is valid during the call only. It must
 *  return quickly, must not wait for tasks or call tsr_shutdown, and may call the
 *  tsr_runtime_* statistics functions. */
typedef void (*tsr_progress_fn)(void *user, const tsr_progress_t *progress);

/** Runtime configuration. Zero means default for every field, so
 *  `tsr_config_t cfg = TSR_CONFIG_INIT;` is a complete configuration. After the
 *  struct, TESSERA_* environment variables override it (see tsr_config_resolve):
 *    TESSERA_NCPUS      number of CPU worker threads (1..1024; default: usable cores)
 *    TESSERA_SCHED      eager | ws | dmda | random
 *    TESSERA_TRACE      path of a Chrome/Perfetto trace written at shutdown
 *    TESSERA_LOG_LEVEL  none | error | warn | info | debug
 *    TESSERA_SIM_DEVICES  simulated accelerators: "N" or "N:mem=SIZE" (SIZE in bytes
 *                       or with KiB/MiB/GiB; default 256MiB each), N in 0..8
 *    TESSERA_CUDA_DEVICES at most this many CUDA GPUs (0: none; default: all found;
 *                       CUDA_VISIBLE_DEVICES still chooses which)
 *    TESSERA_CUDA_STREAMS compute streams per GPU, 1..32 (default 4)
 *    TESSERA_SIMULATE   path of a platform description: simulate it in virtual time
 *                       (see tsr_config_t.simulate)
 *    TESSERA_DEVICE_MEMORY_LIMIT, TESSERA_HOST_MEMORY_LIMIT  bytes ("12GiB",
 *                       "512MiB", "1000000") or a fraction of the node's memory
 *                       ("0.8" or "80%")
 *    TESSERA_SPILL_DIR  where data spilled to disk goes
 *    TESSERA_SPILL_COMPRESSION  auto | none | lz4
 *    TESSERA_ACCEL_FIRST  1: tasks an accelerator can run stay off the CPU workers
 *                       (TSR_CONFIG_F_ACCEL_FIRST); 0: they may run anywhere
 *    TESSERA_DEVICE_SPILL_MARK  fraction of a device's limit where eviction ahead
 *                       of need starts ("0.9", "90%"; "1": never)
 *    TESSERA_MODEL_DIR  where dmda's performance models persist ("" or "none": they
 *                       are not saved); default $XDG_CACHE_HOME/tessera/models/HOST,
 *                       else ~/.cache/tessera/models/HOST
 *    TESSERA_PROGRESS   auto | on | off (see tsr_progress_mode_t)
 *    TESSERA_PROGRESS_INTERVAL  seconds between progress updates (0.01..3600)
 *  An invalid value in the struct or the environment makes tsr_init fail with
 *  TSR_EINVAL and a message naming it; there is no silent fallback. */
typedef struct {
    int32_t n_cpu_workers;     /* 0: one per usable core; negative: invalid */
    tsr_sched_policy_t policy; /* TSR_SCHED_DEFAULT: dmda with accelerators, else ws */
    const char *trace_path;    /* NULL: no trace; borrowed only during tsr_init */
    tsr_log_level_t log_level; /* TSR_LOG_DEFAULT: warn */
    uint32_t flags;            /* TSR_CONFIG_F_*; 0 */
    uint32_t n_sim_devices;    /* simulated accelerators (0..8); 0: none */
    uint64_t sim_mem_bytes;    /* memory of each one; 0: 256 MiB */
    int32_t n_cuda_devices;    /* 0: every GPU found; -1: none; N > 0: at most N */
    uint32_t cuda_streams;     /* compute streams per GPU (1..32); 0: 4 */
    const char *model_dir;     /* NULL: the default; "": no persistence; borrowed */
    /* Path of a platform description to simulate in virtual time (NULL: run for
     * real); borrowed during tsr_init. No kernel runs and no worker thread starts:
     * the thread that waits (tsr_wait_all, a future, an acquire) advances a virtual
     * clock, each task taking its modelled time on the device the policy chooses
     * and each copy its time on its link; see tsr_sim_report and the README for the
     * file's format. Data may then be registered without memory (ptr NULL). */
    const char *simulate;
    /* Most memory the runtime keeps in each device's node: default its usable
     * memory (a GPU's, less max(10%, 1 GiB) for the CUDA context and libraries; a
     * sim device's capacity). A fraction is of that usable memory. */
    tsr_mem_limit_t device_memory_limit;
    /* Most host memory the runtime allocates for replicas: default 80% of RAM.
     * Replicas the runtime owns (those of tsr_data_create handles) are written to
     * spill_dir from 70% of it (down to 60%); an allocation that would pass it
     * waits for that; above 85% tasks that read nothing (graph roots) wait for
     * their consumers. Buffers the program registered are never spilled. This
     * holds with the CPU alone too (simulations aside): the default limit keeps
     * a program whose data outgrows memory from being killed. */
    tsr_mem_limit_t host_memory_limit;
    const char *spill_dir; /* NULL: $TMPDIR (else /tmp)/tessera-spill; borrowed */
    tsr_spill_compress_t spill_compression;
    /* Fraction of a device's memory limit above which its driver gives up least
     * recently used replicas no task holds (dirty ones written to host memory)
     * ahead of need, down to 0.1 below it, so that allocations find room without
     * evicting. 0: 0.9; 1: evict only when an allocation needs room. */
    double device_spill_mark;
    /* Progress of long work on stderr. On a terminal a bar is redrawn in place once
     * a batch has run for a second, and left on its own line when the batch ends:
     *   tessera [########------------]  42%  4200/10000 tasks  3.1 s  ~4.3 s left
     * followed by host memory in use / its limit and the bytes on disk (if any; not
     * in simulations). Elsewhere (TSR_PROGRESS_ON), the same text one line per update. */
    tsr_progress_mode_t progress;
    /* Seconds between updates: 0 means 0.2 s on a terminal and for progress_fn
     * alone, 5 s for lines written elsewhere. Valid: 0 or 0.01..3600. */
    double progress_interval_s;
    tsr_progress_fn progress_fn; /* NULL: none; see tsr_progress_fn */
    void *progress_user;         /* given to progress_fn */
} tsr_config_t;
/* clang-format off */
#define TSR_CONFIG_INIT {0, TSR_SCHED_DEFAULT, NULL, TSR_LOG_DEFAULT, 0, 0, 0, 0, 0, NULL, NULL, \
                         {0, 0.0}, {0, 0.0}, NULL, TSR_SPILL_COMPRESS_DEFAULT, 0.0,              \
                         TSR_PROGRESS_AUTO, 0.0, NULL, NULL}
/* clang-format on */

/** Ignore every TESSERA_* environment variable (tests and embedding hosts). */
#define TSR_CONFIG_F_NO_ENV 0x1u
/** Accelerators first: a task that an accelerator of the runtime can run never
 *  runs on a CPU worker unless it is pinned there (as when a device-resident
 *  workload must not fall back to the CPU while the models are cold). Also
 *  TESSERA_ACCEL_FIRST=1 (0 clears it). */
#define TSR_CONFIG_F_ACCEL_FIRST 0x2u

/** Fill `*resolved_out` with what tsr_init would use for `config` (NULL: all
 *  defaults): environment overrides applied and defaults made explicit
 *  (n_cpu_workers > 0, policy and log_level not DEFAULT). `trace_path` in the
 *  result points into `config` or the environment and is borrowed.
 *  Returns TSR_EINVAL with tsr_last_error() naming the bad value; the output is
 *  written only on TSR_OK. Thread-safe as long as the environment is not being
 *  modified concurrently. */
TSR_API tsr_status_t tsr_config_resolve(const tsr_config_t *config, tsr_config_t *resolved_out);

/** Start a runtime: resolve the configuration, start the worker threads.
 *  Borrows `config` (NULL: defaults). On TSR_OK `*rt_out` is new and owned by
 *  the caller, who ends it with tsr_shutdown. Errors: TSR_EINVAL (bad
 *  configuration), TSR_ENOMEM, TSR_EBACKEND (threads could not start). Several
 *  runtimes may live in one process. */
TSR_API tsr_status_t tsr_init(const tsr_config_t *config, tsr_runtime_t **rt_out);

/** Wait for every submitted task to finish (or be cancelled, see
 *  tsr_runtime_cancel), write the trace if one was asked for, stop the workers
 *  and free everything the runtime owns: data handles still registered are
 *  unregistered, futures not yet released are freed (using them afterwards is
 *  undefined). A handle still acquired is released first (with a warning), since
 *  the tasks after it could never run otherwise. Must not be called from a task.
 *  NULL: no-op. */
TSR_API void tsr_shutdown(tsr_runtime_t *rt);

/** Cancel every task submitted before this call that has not started yet: it
 *  completes with TSR_ECANCELED (it is counted in tsr_runtime_stats_t.n_cancelled)
 *  and its dependents are cancelled in turn. Running tasks finish normally; tasks
 *  submitted after this call run as usual. Returns TSR_OK, TSR_EINVAL (NULL) or
 *  TSR_ENOMEM. Thread-safe. */
TSR_API tsr_status_t tsr_runtime_cancel(tsr_runtime_t *rt);

/** Block until every task submitted so far (including tasks those tasks
 *  submit) has completed, successfully or not. Returns TSR_OK, TSR_EINVAL
 *  (NULL), or TSR_EBUSY when called from inside a task (it would wait for
 *  itself). Thread-safe. */
TSR_API tsr_status_t tsr_wait_all(tsr_runtime_t *rt);

/** Counters of a runtime; a value struct filled by tsr_runtime_stats. */
typedef struct {
    uint32_t n_cpu_workers;
    tsr_sched_policy_t policy;
    uint64_t n_submitted; /* tasks submitted */
    uint64_t n_completed; /* tasks finished: ran, failed or cancelled */
    uint64_t n_failed;    /* tasks whose implementation returned an error */
    uint64_t n_cancelled; /* tasks cancelled (dependency failed, runtime cancel) */
    uint64_t n_stolen;    /* tasks taken from another worker's deque (ws) */
    /* tasks launched on an accelerator behind predecessors still running there
     * (ordered by its streams instead of waiting for their completion) */
    uint64_t n_launched_early;
} tsr_runtime_stats_t;
/* clang-format off */
#define TSR_RUNTIME_STATS_INIT {0, TSR_SCHED_DEFAULT, 0, 0, 0, 0, 0, 0}
/* clang-format on */

/** Fill `*stats_out` with a snapshot of the counters of `rt` (each counter is
 *  exact, the set is not one atomic snapshot while tasks run). Thread-safe. */
TSR_API tsr_status_t tsr_runtime_stats(tsr_runtime_t *rt, tsr_runtime_stats_t *stats_out);

/** A device of a runtime: device 0 is the CPU (all CPU workers); accelerators follow. */
typedef struct {
    uint32_t kind;       /* tsr_device_kind_t */
    uint32_t kind_index; /* index among devices of its kind */
    uint32_t mem_node;   /* memory node its tasks read and write (0: host memory) */
    uint32_t n_workers;  /* worker threads feeding it */
    uint64_t mem_bytes;  /* capacity of its memory node; 0 for host memory */
    char name[32];       /* "cpu", "sim0", "cuda0", ... */
    char model[64];      /* what the backend calls it: "NVIDIA H100 80GB HBM3 (sm_90)" */
} tsr_device_info_t;

/** Why a runtime started now has no device of `kind` (a tsr_device_kind_t), for
 *  messages: "" when there are some, or when no reason is known; for CUDA e.g.
 *  "this build has no CUDA backend" or the CUDA runtime's "no CUDA-capable device
 *  is detected". Static storage; thread-safe. */
TSR_API const char *tsr_device_kind_absent_reason(uint32_t kind);

/** Write a human description of the models rt's policy uses (dmda: transfer
 *  latency and bandwidth per pair of memory nodes, performance models per codelet
 *  and device kind) to `out`, as `tessera info` shows it. Errors: TSR_EINVAL. */
TSR_API tsr_status_t tsr_runtime_print_models(tsr_runtime_t *rt, FILE *out);

/** Most workers a simulation report describes. */
#define TSR_SIM_MAX_WORKERS 256

/** What a simulation (tsr_config_t.simulate) did so far. */
typedef struct {
    double makespan_s;    /* virtual time when the last task completed */
    uint64_t n_tasks;     /* tasks run (cancelled ones not counted) */
    uint64_t bytes_moved; /* copied between memory nodes */
    uint32_t n_workers;
    double busy_s[TSR_SIM_MAX_WORKERS];          /* per worker: seconds running tasks */
    uint32_t worker_device[TSR_SIM_MAX_WORKERS]; /* per worker: its device index */
} tsr_sim_report_t;

/** Fill `*out` for simulating runtime `rt`. Errors: TSR_EINVAL (NULL, or rt is not
 *  a simulation). */
TSR_API tsr_status_t tsr_sim_report(tsr_runtime_t *rt, tsr_sim_report_t *out);

/** Number of devices of `rt` (at least 1: the CPU). */
TSR_API uint32_t tsr_runtime_n_devices(tsr_runtime_t *rt);

/** Describe device `index` of `rt`. Errors: TSR_EINVAL (NULL or index out of range). */
TSR_API tsr_status_t tsr_runtime_device_info(tsr_runtime_t *rt, uint32_t index,
                                             tsr_device_info_t *info_out);

/** Copies between memory nodes: count and bytes since start-up, for tasks, prefetches,
 *  acquires and evictions' write-backs alike. */
typedef struct {
    uint64_t n_copies;
    uint64_t n_bytes;
} tsr_copy_stats_t;

/** Copies made from memory node `src_node` to `dst_node` (node 0 is host memory,
 *  device d uses node tsr_device_info_t.mem_node). Errors: TSR_EINVAL. Thread-safe. */
TSR_API tsr_status_t tsr_runtime_copy_stats(tsr_runtime_t *rt, uint32_t src_node, uint32_t dst_node,
                                            tsr_copy_stats_t *stats_out);

/** Memory of a node (bytes): a device's from its caching allocator; host memory's
 *  the replicas the runtime allocated there (the program's registered buffers
 *  are counted apart). */
typedef struct {
    uint64_t capacity;         /* the node's limit (tsr_config_t memory limits) */
    uint64_t used_bytes;       /* in replicas now (devices: rounded to allocator blocks) */
    uint64_t cached_bytes;     /* freed, kept for reuse */
    uint64_t peak_bytes;       /* peak of used + cached */
    uint64_t n_allocs;         /* blocks obtained from the backend (devices) */
    uint64_t n_reuses;         /* blocks served from the cache */
    uint64_t registered_bytes; /* host: buffers the program registered */
    uint64_t spilled_bytes;    /* written down a tier (device to host, host to disk) */
    uint64_t n_evicted;        /* devices: replicas given up for an allocation */
    uint64_t n_evicted_ahead;  /* devices: given up ahead of need, above the high mark */
} tsr_mem_stats_t;

/** Memory statistics of memory node `node` (see tsr_device_info_t.mem_node).
 *  Errors: TSR_EINVAL. Thread-safe. */
TSR_API tsr_status_t tsr_runtime_mem_stats(tsr_runtime_t *rt, uint32_t node,
                                           tsr_mem_stats_t *stats_out);

/** The disk tier: chunks the runtime wrote to and read back from its spill
 *  directory. write_ns and read_ns add up each transfer's own time, so transfers
 *  made at once by several threads count several times there; the *_busy_ns
 *  fields count the wall time during which at least one was under way.
 *  bytes / *_busy_ns is the tier's throughput; bytes / *_ns that of one
 *  transfer, on average. */
typedef struct {
    uint64_t n_writes;        /* chunks written to disk */
    uint64_t bytes_written;   /* their size in memory */
    uint64_t bytes_stored;    /* their size on disk (smaller when compressed) */
    uint64_t write_ns;        /* compressing, checksumming and writing (failed tries too) */
    uint64_t n_reads;         /* chunks read back */
    uint64_t bytes_read;      /* their size in memory */
    uint64_t read_ns;         /* reading, checking and decompressing (failed tries too) */
    uint64_t n_read_ahead;    /* of those, read by an I/O thread before a task asked */
    uint64_t n_dropped;       /* clean host replicas freed without writing */
    uint64_t on_disk_bytes;   /* stored in spill files now */
    uint64_t peak_disk_bytes; /* peak of on_disk_bytes */
    uint64_t n_errors;        /* failed writes and reads (TSR_EIO) */
    uint64_t n_deferred;      /* graph roots held back while host memory was paused */
    uint64_t n_over_limit;    /* allocations let past the host limit: nothing could go */
    uint64_t write_busy_ns;   /* wall time with at least one write under way */
    uint64_t read_busy_ns;    /* wall time with at least one read under way */
    uint64_t n_read_ahead_wasted; /* read ahead, then given up before a task used them */
} tsr_spill_stats_t;

/** Disk-tier statistics of `rt`. Errors: TSR_EINVAL. Thread-safe. */
TSR_API tsr_status_t tsr_runtime_spill_stats(tsr_runtime_t *rt, tsr_spill_stats_t *stats_out);

/** Name of a policy ("eager", "ws"); "default" for TSR_SCHED_DEFAULT. */
TSR_API const char *tsr_sched_policy_name(tsr_sched_policy_t policy);

/** Library version string, e.g. "0.1.0". */
TSR_API const char *tsr_version(void);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_RUNTIME_H */
