/* The disk tier and host-memory pressure (see spill.h). One I/O thread per
 * runtime writes host replicas to disk when usage passes the high mark, reads
 * spilled chunks back ahead of the tasks that need them, and releases roots held
 * back at the pause mark. Each chunk is one file: "<spill_dir>/tessera-<pid>-XXXXXX/
 * <n>.chunk", optionally lz4-compressed, with a 64-bit checksum kept in memory. */
#include "core/spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/checksum.h"
#include "core/coherence.h"
#include "core/data_impl.h"
#include "core/device.h"
#include "core/error.h"
#include "core/host_mem.h"
#include "core/runtime_impl.h"
#include "core/task_impl.h"
#include "tessera/config.h"

#if TSR_HAVE_LZ4
#include <lz4.h>
#endif

#define SAMPLE_BYTES (64u << 10)       /* compressibility sample */
#define COMPRESS_MAX ((size_t)1 << 30) /* larger chunks are stored raw */
#define IDLE_WAIT_NS 20000000L         /* the I/O thread rechecks memory this often */
#define STUCK_WAIT_NS 2000000L         /* and this often when nothing could be spilled */
#define NO_PROGRESS_NS 100000000L      /* an allocation waits this long without progress */
#define PENDING_WAIT_NS 200000L        /* retry of commits waiting for handle locks */
#define READ_PIECE ((size_t)256 << 10) /* read back and checked in pieces that stay in cache */

/* ---- Files ------------------------------------------------------------------ */

/* The runtime's own directory under spill_dir, made on first use (sp->mutex held). */
static tsr_status_t make_dir_locked(tsr_runtime_t *rt)
{
    struct tsr__spill *sp = &rt->spill;
    char tmpl[sizeof(sp->dir)];

    if (sp->dir[0] != '\0') {
        return TSR_OK;
    }
    if (mkdir(rt->spill_dir, 0700) != 0 && errno != EEXIST) {
        return tsr__fail(TSR_EIO,
                         "cannot create spill directory %s: %s; set TESSERA_SPILL_DIR (or "
                         "tsr_config_t.spill_dir) to a writable directory",
                         rt->spill_dir, strerror(errno));
    }
    snprintf(tmpl, sizeof(tmpl), "%s/tessera-%ld-XXXXXX", rt->spill_dir, (long)getpid());
    if (mkdtemp(tmpl) == NULL) {
        return tsr__fail(TSR_EIO,
                         "cannot create a directory in spill directory %s: %s; set "
                         "TESSERA_SPILL_DIR (or tsr_config_t.spill_dir) to a writable directory",
                         rt->spill_dir, strerror(errno));
    }
    memcpy(sp->dir, tmpl, sizeof(sp->dir));
    return TSR_OK;
}

static void file_path(const tsr_runtime_t *rt, uint64_t file, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%llu.chunk", rt->spill.dir, (unsigned long long)file);
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t k = write(fd, p, n);

        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            if (k == 0) {
                errno = EIO;
            }
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;

    while (n > 0) {
        ssize_t k = read(fd, p, n);

        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            if (k == 0) {
                errno = ENODATA; /* shorter than written */
            }
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read n bytes of fd into buf, adding each piece to c while it is in cache. */
static int read_checked(int fd, void *buf, size_t n, struct tsr__cksum *c)
{
    char *p = buf;

    for (size_t off = 0; off < n;) {
        size_t k = n - off < READ_PIECE ? n - off : READ_PIECE;

        if (read_all(fd, p + off, k) != 0) {
            return -1;
        }
        tsr__cksum_add(c, p + off, k);
        off += k;
    }
    return 0;
}

/* lz4-compress src into a new buffer if that saves at least 1/8 of a sample's
 * size (and then of the whole); NULL to store raw. */
static void *maybe_compress(const tsr_runtime_t *rt, const void *src, size_t n, size_t *stored)
{
#if TSR_HAVE_LZ4
    int mode = rt->spill.compress;
    size_t sample = n < SAMPLE_BYTES ? n : SAMPLE_BYTES;
    char *dst;
    int k;

    if (mode == TSR_SPILL_COMPRESS_NONE || n > COMPRESS_MAX || n < 64) {
        return NULL;
    }
    if (mode == TSR_SPILL_COMPRESS_DEFAULT && sample < n) {
        char *probe = malloc((size_t)LZ4_compressBound((int)sample));

        if (probe == NULL) {
            return NULL;
        }
        k = LZ4_compress_default(src, probe, (int)sample, LZ4_compressBound((int)sample));
        free(probe);
        if (k <= 0 || (size_t)k > sample - sample / 8) {
            return NULL;
        }
    }
    dst = malloc((size_t)LZ4_compressBound((int)n));
    if (dst == NULL) {
        return NULL;
    }
    k = LZ4_compress_default(src, dst, (int)n, LZ4_compressBound((int)n));
    if (k <= 0 || (mode == TSR_SPILL_COMPRESS_DEFAULT && (size_t)k > n - n / 8)) {
        free(dst);
        return NULL;
    }
    *stored = (size_t)k;
    return dst;
#else
    (void)rt;
    (void)src;
    (void)n;
    (void)stored;
    return NULL;
#endif
}

/* The fault a test injected for this write, if any (0: none). */
static int take_fault(struct tsr__spill *sp)
{
    int err = 0;

    pthread_mutex_lock(&sp->mutex);
    if (sp->fault_count > 0) {
        sp->fault_count--;
        err = sp->fault_errno;
    }
    pthread_mutex_unlock(&sp->mutex);
    return err;
}

static tsr_status_t write_chunk(tsr_runtime_t *rt, const void *ptr, size_t n,
                                struct tsr__disk_copy *out)
{
    struct tsr__spill *sp = &rt->spill;
    size_t stored = n;
    void *packed = maybe_compress(rt, ptr, n, &stored);
    const void *bytes = packed != NULL ? packed : ptr;
    char path[sizeof(sp->dir) + 32];
    uint64_t file;
    tsr_status_t st;
    int fault = take_fault(sp);
    int fd;
    int err;

    pthread_mutex_lock(&sp->mutex);
    st = make_dir_locked(rt);
    file = ++sp->next_file;
    pthread_mutex_unlock(&sp->mutex);
    if (st != TSR_OK) {
        free(packed);
        return st;
    }
    file_path(rt, file, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    err = fd < 0 ? errno : 0;
    if (fd >= 0 && fault == 0 && write_all(fd, bytes, stored) != 0) {
        err = errno;
    }
    if (fd >= 0 && fault != 0) {
        err = fault;
    }
    if (fd >= 0 && close(fd) != 0 && err == 0) {
        err = errno;
    }
    if (err != 0) {
        if (fd >= 0) {
            unlink(path);
        }
        free(packed);
        return tsr__fail(
            TSR_EIO, "spilling %zu bytes to %s failed: %s; the data stays in memory%s", n, path,
            strerror(err),
            err == ENOSPC ? " (free disk space or set TESSERA_SPILL_DIR elsewhere)" : "");
    }
    out->file = file;
    out->n_bytes = n;
    out->stored = stored;
    out->checksum = tsr__cksum_of(bytes, stored);
    out->compressed = packed != NULL;
    out->valid = 1;
    free(packed);
    tsr__atomic_max_u64(&sp->peak_disk, atomic_fetch_add(&sp->on_disk, stored) + stored);
    atomic_fetch_add(&sp->n_writes, 1);
    atomic_fetch_add(&sp->bytes_written, n);
    atomic_fetch_add(&sp->bytes_stored, stored);
    return TSR_OK;
}

/* A transfer of the clock's kind starts, or ends after *ns (its own time, from the
 * same clock readings, added to *ns). */
static uint64_t busy_begin(struct tsr__busy_clock *c)
{
    uint64_t now;

    tsr__spin_lock(&c->lock);
    now = tsr__now_ns();
    if (c->n_active++ == 0) {
        c->since = now;
    }
    tsr__spin_unlock(&c->lock);
    return now;
}

static void busy_end(struct tsr__busy_clock *c, uint64_t start, _Atomic uint64_t *ns)
{
    uint64_t now;

    tsr__spin_lock(&c->lock);
    now = tsr__now_ns();
    if (--c->n_active == 0) {
        atomic_fetch_add_explicit(&c->busy_ns, now - c->since, memory_order_relaxed);
    }
    tsr__spin_unlock(&c->lock);
    atomic_fetch_add_explicit(ns, now - start, memory_order_relaxed);
}

static tsr_status_t read_chunk(tsr_runtime_t *rt, const struct tsr__disk_copy *copy, void *dst)
{
    struct tsr__spill *sp = &rt->spill;
    char path[sizeof(sp->dir) + 32];
    void *raw = copy->compressed ? malloc(copy->stored) : dst;
    const char *why = NULL;
    struct tsr__cksum sum;
    int fd;

    tsr__cksum_init(&sum);
    file_path(rt, copy->file, path, sizeof(path));
    if (raw == NULL) {
        return tsr__fail(TSR_ENOMEM, "reading back %s: out of memory", path);
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read_checked(fd, raw, copy->stored, &sum) != 0) {
        why = strerror(errno);
    } else if (tsr__cksum_end(&sum) != copy->checksum) {
        why = "checksum mismatch: the file was changed or damaged on disk";
    }
#if TSR_HAVE_LZ4
    if (why == NULL && copy->compressed &&
        LZ4_decompress_safe(raw, dst, (int)copy->stored, (int)copy->n_bytes) !=
            (int)copy->n_bytes) {
        why = "lz4 data does not decompress to its size";
    }
#endif
    if (fd >= 0) {
        close(fd);
    }
    if (raw != dst) {
        free(raw);
    }
    if (why != NULL) {
        atomic_fetch_add(&sp->n_errors, 1);
        return tsr__fail(TSR_EIO, "reading back spilled chunk %s (%llu bytes) failed: %s", path,
                         (unsigned long long)copy->n_bytes, why);
    }
    atomic_fetch_add(&sp->n_reads, 1);
    atomic_fetch_add(&sp->bytes_read, copy->n_bytes);
    return TSR_OK;
}

tsr_status_t tsr__spill_write(tsr_runtime_t *rt, const void *ptr, size_t n,
                              struct tsr__disk_copy *out)
{
    uint64_t t0 = busy_begin(&rt->spill.write_busy);
    tsr_status_t st = write_chunk(rt, ptr, n, out);

    busy_end(&rt->spill.write_busy, t0, &rt->spill.write_ns);
    return st;
}

tsr_status_t tsr__spill_read(tsr_runtime_t *rt, const struct tsr__disk_copy *copy, void *dst)
{
    uint64_t t0 = busy_begin(&rt->spill.read_busy);
    tsr_status_t st = read_chunk(rt, copy, dst);

    busy_end(&rt->spill.read_busy, t0, &rt->spill.read_ns);
    return st;
}

void tsr__spill_remove(tsr_runtime_t *rt, struct tsr__disk_copy *copy)
{
    char path[sizeof(rt->spill.dir) + 32];

    if (copy->file == 0) {
        return;
    }
    file_path(rt, copy->file, path, sizeof(path));
    unlink(path);
    atomic_fetch_sub(&rt->spill.on_disk, copy->stored);
    if (copy->valid) {
        atomic_fetch_sub(&rt->spill.n_on_disk, 1);
    }
    memset(copy, 0, sizeof(*copy));
}

/* ---- The I/O thread ------------------------------------------------------------ */

static void add_ns(struct timespec *ts, long ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += ns;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_nsec -= 1000000000L;
        ts->tv_sec++;
    }
}

/* Queue the held-back roots again: all of them, or one (`one`), admitted for
 * good (sp->mutex held; the pushes only touch the scheduler). */
static void release_deferred_locked(tsr_runtime_t *rt, int one)
{
    struct tsr__spill *sp = &rt->spill;
    uint32_t n = one && sp->n_deferred > 0 ? 1 : sp->n_deferred;

    if (n == 0) {
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct tsr_future *t = sp->deferred[i];

        t->flags |= TSR_TASK_F_ADMITTED;
        tsr__device_push(rt, NULL, t);
    }
    memmove(sp->deferred, sp->deferred + n, (sp->n_deferred - n) * sizeof(*sp->deferred));
    sp->n_deferred -= n;
    atomic_store(&sp->n_deferred_now, sp->n_deferred);
}

/* Put d in readq at position `at` (sp->mutex held); 0 if out of memory. */
static int readq_insert_locked(struct tsr__spill *sp, struct tsr_data *d, uint32_t at)
{
    if (sp->n_readq == sp->cap_readq) {
        uint32_t cap = sp->cap_readq != 0 ? 2 * sp->cap_readq : 64;
        struct tsr_data **q = realloc(sp->readq, cap * sizeof(*q));

        if (q == NULL) {
            return 0;
        }
        sp->readq = q;
        sp->cap_readq = cap;
    }
    memmove(sp->readq + at + 1, sp->readq + at, (sp->n_readq - at) * sizeof(*sp->readq));
    sp->readq[at] = d;
    sp->n_readq++;
    d->read_queued = 1;
    return 1;
}

static void *io_main(void *arg)
{
    tsr_runtime_t *rt = arg;
    struct tsr__spill *sp = &rt->spill;
    struct timespec until;

    pthread_mutex_lock(&sp->mutex);
    while (!sp->stop) {
        uint64_t used = tsr__host_in_use(rt); /* spare blocks go when needed */
        int r;

        if (sp->n_pending > 0) {
            pthread_mutex_unlock(&sp->mutex);
            r = tsr__coh_commit_pending(rt, 0);
            pthread_mutex_lock(&sp->mutex);
            if (r > 0) {
                sp->progress_gen++;
                pthread_cond_broadcast(&sp->room);
            }
        }
        if (sp->n_readq > 0 &&
            atomic_load_explicit(&sp->ahead_blocked, memory_order_relaxed) == 0) {
            struct tsr_data *d = sp->readq[0];

            memmove(sp->readq, sp->readq + 1, (sp->n_readq - 1) * sizeof(*sp->readq));
            sp->n_readq--;
            d->read_queued = 0;
            d->io_held = 1; /* in this thread's hands: not freed meanwhile */
            pthread_mutex_unlock(&sp->mutex);
            r = tsr__coh_read_back(d);
            pthread_mutex_lock(&sp->mutex);
            if (r == 0) { /* back at the head, until a task finishes */
                readq_insert_locked(sp, d, 0);
                atomic_store_explicit(&sp->ahead_blocked, 1, memory_order_relaxed);
            }
            d->io_held = 0;
            pthread_cond_broadcast(&sp->room);
            if (r != 0) {
                continue;
            }
            used = tsr__host_in_use(rt);
        }
        if (sp->want_spill || used > sp->high) {
            pthread_mutex_unlock(&sp->mutex);
            r = tsr__coh_spill_one(rt);
            pthread_mutex_lock(&sp->mutex);
            used = tsr__host_in_use(rt);
            if (r == 2) {
                add_ns(&until, PENDING_WAIT_NS); /* commits wait for handle locks */
                pthread_cond_timedwait(&sp->wake, &sp->mutex, &until);
                continue;
            }
            if (r > 0) {
                sp->progress_gen++;
                atomic_store_explicit(&sp->ahead_blocked, 0, memory_order_relaxed);
                if (used <= sp->low) {
                    sp->want_spill = 0;
                }
                if (used < sp->pause && sp->n_deferred > 0) {
                    release_deferred_locked(rt, 0);
                }
                pthread_cond_broadcast(&sp->room);
                continue;
            }
            if (r < 0) {
                sp->error_gen++;
                sp->error = (tsr_status_t)r;
                snprintf(sp->error_msg, sizeof(sp->error_msg), "%s", tsr_last_error());
                atomic_fetch_add(&sp->n_errors, 1);
                tsr__log(rt, TSR_LOG_WARN, "%s", sp->error_msg);
            }
            /* Nothing more can go now: waiting allocations may pass the limit, and
             * one held-back root is admitted, so work always goes on. */
            sp->stuck_gen++;
            sp->want_spill = 0;
            release_deferred_locked(rt, 1);
            pthread_cond_broadcast(&sp->room);
            add_ns(&until, STUCK_WAIT_NS);
            pthread_cond_timedwait(&sp->wake, &sp->mutex, &until);
            continue;
        }
        if (sp->n_deferred > 0 && used < sp->pause) {
            release_deferred_locked(rt, 0);
        }
        add_ns(&until, sp->n_pending > 0 ? PENDING_WAIT_NS : IDLE_WAIT_NS);
        if (pthread_cond_timedwait(&sp->wake, &sp->mutex, &until) == ETIMEDOUT) {
            atomic_store_explicit(&sp->ahead_blocked, 0, memory_order_relaxed); /* look again */
        }
    }
    pthread_mutex_unlock(&sp->mutex);
    tsr__coh_commit_pending(rt, 1); /* no task runs any more */
    return NULL;
}

/* ---- Interface ------------------------------------------------------------------- */

tsr_status_t tsr__spill_init(tsr_runtime_t *rt)
{
    struct tsr__spill *sp = &rt->spill;
    pthread_condattr_t attr;

    pthread_mutex_init(&sp->mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sp->wake, &attr);
    pthread_cond_init(&sp->room, &attr);
    pthread_condattr_destroy(&attr);
    sp->inited = 1;
    sp->compress = rt->cfg.spill_compression;
    /* On with the CPU alone too: without it, data past memory gets the program
     * killed. It costs every task its pins (a few locks per buffer), within the
     * noise of tessera-bench overhead on this machine. */
    sp->enabled = rt->vt == NULL && rt->host_limit > 0;
    sp->high = (uint64_t)((double)rt->host_limit * TSR_SPILL_HIGH);
    sp->low = (uint64_t)((double)rt->host_limit * TSR_SPILL_LOW);
    sp->pause = (uint64_t)((double)rt->host_limit * TSR_SPILL_PAUSE);
    sp->ahead_cap = sp->high / 4;
    return TSR_OK;
}

tsr_status_t tsr__spill_start(tsr_runtime_t *rt)
{
    struct tsr__spill *sp = &rt->spill;
    int err;

    if (!sp->enabled) {
        return TSR_OK;
    }
    err = pthread_create(&sp->thread, NULL, io_main, rt);
    if (err != 0) {
        return tsr__fail(TSR_EBACKEND, "tsr_init: cannot start the spill I/O thread: %s",
                         strerror(err));
    }
    pthread_setname_np(sp->thread, "tsr-spill-io"); /* for top -H, gdb and perf */
    sp->started = 1;
    return TSR_OK;
}

void tsr__spill_stop(tsr_runtime_t *rt)
{
    struct tsr__spill *sp = &rt->spill;

    if (sp->started) {
        pthread_mutex_lock(&sp->mutex);
        sp->stop = 1;
        pthread_cond_signal(&sp->wake);
        pthread_cond_broadcast(&sp->room);
        pthread_mutex_unlock(&sp->mutex);
        pthread_join(sp->thread, NULL);
        sp->started = 0;
    }
}

void tsr__spill_fini(tsr_runtime_t *rt)
{
    struct tsr__spill *sp = &rt->spill;

    if (!sp->inited) {
        return;
    }
    tsr__spill_stop(rt);
    if (sp->dir[0] != '\0' && rmdir(sp->dir) != 0) {
        tsr__log(rt, TSR_LOG_WARN, "spill directory %s not removed: %s", sp->dir, strerror(errno));
    }
    free(sp->readq);
    free(sp->deferred);
    pthread_cond_destroy(&sp->wake);
    pthread_cond_destroy(&sp->room);
    pthread_mutex_destroy(&sp->mutex);
}

void tsr__spill_wake(struct tsr__spill *sp)
{
    if (!sp->started) {
        return;
    }
    pthread_mutex_lock(&sp->mutex);
    pthread_cond_signal(&sp->wake);
    pthread_mutex_unlock(&sp->mutex);
}

void tsr__spill_kick(tsr_runtime_t *rt)
{
    struct tsr__spill *sp = &rt->spill;

    if (!sp->started) {
        return;
    }
    pthread_mutex_lock(&sp->mutex);
    if (!sp->want_spill) {
        sp->want_spill = 1;
        pthread_cond_signal(&sp->wake);
    }
    pthread_mutex_unlock(&sp->mutex);
}

int tsr__spill_try_reserve(tsr_runtime_t *rt, size_t n_bytes, uint64_t cap)
{
    uint64_t used = atomic_load_explicit(&rt->host_used, memory_order_relaxed);

    for (;;) {
        if (used + n_bytes > cap) {
            if (tsr__host_mem_drop(rt) == 0) {
                return 0;
            }
            used = atomic_load_explicit(&rt->host_used, memory_order_relaxed);
            continue; /* giving the spare blocks back made room, or not */
        }
        if (atomic_compare_exchange_weak_explicit(&rt->host_used, &used, used + n_bytes,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            break;
        }
    }
    tsr__atomic_max_u64(&rt->host_peak, used + n_bytes);
    tsr__trace_memory(rt, 0, used + n_bytes);
    return 1;
}

tsr_status_t tsr__spill_reserve(tsr_runtime_t *rt, size_t n_bytes, const char *what)
{
    struct tsr__spill *sp = &rt->spill;
    tsr_status_t st = TSR_OK;
    struct timespec until;
    uint64_t progress0;
    uint64_t stuck0;
    uint64_t error0;

    if (!sp->enabled) {
        tsr__host_account(rt, (int64_t)n_bytes);
        return TSR_OK;
    }
    if (n_bytes > rt->host_limit) {
        return tsr__fail(TSR_ENOMEM,
                         "%s needs %zu bytes of host memory, more than the host limit of %llu "
                         "bytes (TESSERA_HOST_MEMORY_LIMIT); split the data into smaller chunks",
                         what, n_bytes, (unsigned long long)rt->host_limit);
    }
    if (tsr__spill_try_reserve(rt, n_bytes, sp->high)) {
        return TSR_OK;
    }
    if (!sp->started) {
        tsr__host_account(rt, (int64_t)n_bytes);
        return TSR_OK;
    }
    pthread_mutex_lock(&sp->mutex);
    stuck0 = sp->stuck_gen;
    error0 = sp->error_gen;
    sp->want_spill = 1;
    pthread_cond_signal(&sp->wake);
    progress0 = sp->progress_gen;
    add_ns(&until, NO_PROGRESS_NS);
    for (;;) {
        int over = 0;

        if (tsr__spill_try_reserve(rt, n_bytes, rt->host_limit)) {
            break;
        }
        if (sp->error_gen != error0) {
            st = tsr__fail(sp->error, "%s: no room in host memory for %zu bytes: %s", what, n_bytes,
                           sp->error_msg);
            break;
        }
        /* Nothing could be spilled for a while (what is in memory is in use, or
         * the I/O thread waits for a handle lock our caller holds): go over the
         * limit rather than hang. Until then, retry as tasks let data go. */
        if (sp->stuck_gen != stuck0) {
            stuck0 = sp->stuck_gen;
            sp->want_spill = 1;
        }
        over = sp->stop;
        if (!over && pthread_cond_timedwait(&sp->room, &sp->mutex, &until) == ETIMEDOUT) {
            over = sp->progress_gen == progress0;
            progress0 = sp->progress_gen;
            add_ns(&until, NO_PROGRESS_NS);
        }
        if (over) {
            atomic_fetch_add(&sp->n_over_limit, 1);
            tsr__host_account(rt, (int64_t)n_bytes);
            break;
        }
    }
    pthread_mutex_unlock(&sp->mutex);
    return st;
}

void tsr__spill_read_ahead(tsr_runtime_t *rt, struct tsr_future *t)
{
    struct tsr__spill *sp = &rt->spill;

    if (!sp->started) {
        return;
    }
    for (uint32_t i = 0; i < t->n_bufs; i++) {
        struct tsr_data *d = t->bufs[i].data;
        int queue;

        if (!(t->bufs[i].mode & TSR_R)) {
            continue;
        }
        pthread_mutex_lock(&d->coh_mutex);
        queue = d->disk.valid && d->io == TSR_IO_NONE && tsr__coh_source(d) < 0;
        if (queue) {
            pthread_mutex_lock(&sp->mutex);
            if (d->read_queued == 0 && readq_insert_locked(sp, d, sp->n_readq)) {
                pthread_cond_signal(&sp->wake);
            }
            pthread_mutex_unlock(&sp->mutex);
        }
        pthread_mutex_unlock(&d->coh_mutex);
    }
}

void tsr__spill_hold(tsr_runtime_t *rt, struct tsr_data *d)
{
    pthread_mutex_lock(&rt->spill.mutex);
    d->io_held = 1;
    pthread_mutex_unlock(&rt->spill.mutex);
}

void tsr__spill_release(tsr_runtime_t *rt, struct tsr_data *d)
{
    pthread_mutex_lock(&rt->spill.mutex);
    d->io_held = 0;
    pthread_cond_broadcast(&rt->spill.room);
    pthread_mutex_unlock(&rt->spill.mutex);
}

void tsr__spill_forget(tsr_runtime_t *rt, struct tsr_data *d)
{
    struct tsr__spill *sp = &rt->spill;

    pthread_mutex_lock(&sp->mutex);
    for (;;) { /* the I/O thread may put d back in readq before letting it go */
        for (uint32_t i = 0; i < sp->n_readq; i++) {
            if (sp->readq[i] == d) {
                memmove(sp->readq + i, sp->readq + i + 1,
                        (sp->n_readq - i - 1) * sizeof(*sp->readq));
                sp->n_readq--;
                break;
            }
        }
        if (!d->io_held) {
            break;
        }
        pthread_cond_wait(&sp->room, &sp->mutex);
    }
    d->read_queued = 0;
    pthread_mutex_unlock(&sp->mutex);
}

int tsr__spill_defer(tsr_runtime_t *rt, struct tsr_future *t)
{
    struct tsr__spill *sp = &rt->spill;
    int writes = 0;

    if (!sp->started || (t->flags & (TSR_TASK_F_ADMITTED | TSR_TASK_F_ACQUIRE)) ||
        tsr__host_in_use(rt) < sp->pause) {
        return 0;
    }
    for (uint32_t i = 0; i < t->n_bufs; i++) {
        if (t->bufs[i].mode & TSR_R) {
            return 0; /* a consumer: it lets memory go */
        }
        writes = 1;
    }
    if (!writes) {
        return 0;
    }
    pthread_mutex_lock(&sp->mutex);
    if (sp->n_deferred == sp->cap_deferred) {
        uint32_t cap = sp->cap_deferred != 0 ? 2 * sp->cap_deferred : 64;
        struct tsr_future **q = realloc(sp->deferred, cap * sizeof(*q));

        if (q == NULL) {
            pthread_mutex_unlock(&sp->mutex);
            return 0; /* run it rather than lose it */
        }
        sp->deferred = q;
        sp->cap_deferred = cap;
    }
    sp->deferred[sp->n_deferred++] = t;
    atomic_store(&sp->n_deferred_now, sp->n_deferred);
    atomic_fetch_add(&sp->n_deferred_total, 1);
    sp->want_spill = 1;
    pthread_cond_signal(&sp->wake);
    pthread_mutex_unlock(&sp->mutex);
    return 1;
}

void tsr__spill_inject_fault(tsr_runtime_t *rt, int err, uint32_t count)
{
    pthread_mutex_lock(&rt->spill.mutex);
    rt->spill.fault_errno = err;
    rt->spill.fault_count = count;
    pthread_mutex_unlock(&rt->spill.mutex);
}

tsr_status_t tsr_runtime_spill_stats(tsr_runtime_t *rt, tsr_spill_stats_t *out)
{
    struct tsr__spill *sp;

    if (rt == NULL || out == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_runtime_spill_stats: rt and stats_out must be non-NULL");
    }
    sp = &rt->spill;
    out->n_writes = atomic_load(&sp->n_writes);
    out->bytes_written = atomic_load(&sp->bytes_written);
    out->bytes_stored = atomic_load(&sp->bytes_stored);
    out->write_ns = atomic_load(&sp->write_ns);
    out->n_reads = atomic_load(&sp->n_reads);
    out->bytes_read = atomic_load(&sp->bytes_read);
    out->read_ns = atomic_load(&sp->read_ns);
    out->write_busy_ns = atomic_load(&sp->write_busy.busy_ns);
    out->read_busy_ns = atomic_load(&sp->read_busy.busy_ns);
    out->n_read_ahead_wasted = atomic_load(&sp->n_ahead_wasted);
    out->n_read_ahead = atomic_load(&sp->n_read_ahead);
    out->n_dropped = atomic_load(&sp->n_dropped);
    out->on_disk_bytes = atomic_load(&sp->on_disk);
    out->peak_disk_bytes = atomic_load(&sp->peak_disk);
    out->n_errors = atomic_load(&sp->n_errors);
    out->n_deferred = atomic_load(&sp->n_deferred_total);
    out->n_over_limit = atomic_load(&sp->n_over_limit);
    return TSR_OK;
}
