/* The CUDA device: one per GPU, fed by one driver thread (core/worker.c).
 *
 * Per GPU: several compute streams (tasks take them in turn), a host-to-device and a
 * device-to-host copy stream, pinned staging buffers for copies from and to
 * pageable host memory, one cuBLAS handle per compute stream, and a pool of events.
 * A task's completion is an event recorded after its work (polled, never a
 * device-wide synchronise); a replica's fence is an event recorded after the last
 * work that wrote it. Peer access between GPUs is enabled where the hardware allows.
 *
 * The library links the static CUDA runtime, which loads the driver at run time:
 * without a driver or a GPU, cudaGetDeviceCount fails and there are simply no CUDA
 * devices. cuBLAS is loaded with dlopen for the same reason. */
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device_ops.h"

#define STAGE_BYTES (8u << 20)       /* each of the two staging buffers per direction */
#define STAGE_MIN_BYTES (1u << 20)   /* smaller pageable copies go direct */
#define MEM_RESERVE_FRACTION 0.10    /* of each GPU left to the CUDA context and libraries */
#define MEM_RESERVE_MIN (1ull << 30) /* ... and at least this */

/* The part of cuBLAS used here: handles bound to streams. */
typedef int (*cublas_create_fn)(void **handle);
typedef int (*cublas_destroy_fn)(void *handle);
typedef int (*cublas_set_stream_fn)(void *handle, cudaStream_t stream);

static struct {
    pthread_once_t once;
    int n_gpus;
    char absent[160];
    void *blas_lib;
    cublas_create_fn blas_create;
    cublas_destroy_fn blas_destroy;
    cublas_set_stream_fn blas_set_stream;
} probe = {PTHREAD_ONCE_INIT, 0, "", NULL, NULL, NULL, NULL};

struct stage {
    pthread_mutex_t mutex;
    void *buf[2];      /* pinned */
    cudaEvent_t ev[2]; /* last copy using buf[i] */
};

struct cuda_dev {
    int id;
    uint32_t n_streams;
    uint32_t next_stream;
    cudaStream_t *streams;
    void **blas;
    cudaStream_t h2d;
    cudaStream_t d2h;
    struct stage up;   /* host -> device */
    struct stage down; /* device -> host */
    pthread_mutex_t pool_mutex;
    cudaEvent_t *pool;
    uint32_t n_pool;
    uint32_t cap_pool;
};

/* Whether err leaves the GPU's context unusable: every later CUDA call of the
 * process on that GPU fails with it. */
static int is_sticky(cudaError_t err)
{
    switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
        return 1;
    default:
        return 0;
    }
}

/* "cudaErrorX: text" into msg; clears the calling thread's last error unless sticky. */
static void cuda_msg(char *msg, size_t n_msg, const char *what, int id, cudaError_t err)
{
    if (msg != NULL && n_msg > 0) {
        snprintf(msg, n_msg, "%s on cuda%d: %s: %s%s", what, id, cudaGetErrorName(err),
                 cudaGetErrorString(err),
                 is_sticky(err) ? " (the GPU's context is lost: its later tasks fail too; "
                                  "find the faulty kernel with compute-sanitizer, then restart "
                                  "the process)"
                                : "");
    }
    (void)cudaGetLastError();
}

static void probe_once(void)
{
    cudaError_t err = cudaGetDeviceCount(&probe.n_gpus);

    if (err != cudaSuccess) {
        int driver = 0;

        probe.n_gpus = 0;
        if (cudaDriverGetVersion(&driver) == cudaSuccess && driver == 0) {
            snprintf(probe.absent, sizeof(probe.absent), "no NVIDIA driver is loaded (%s)",
                     cudaGetErrorName(err));
        } else {
            snprintf(probe.absent, sizeof(probe.absent), "%s: %s", cudaGetErrorName(err),
                     cudaGetErrorString(err));
        }
        (void)cudaGetLastError();
        return;
    }
    if (probe.n_gpus == 0) {
        snprintf(probe.absent, sizeof(probe.absent), "the driver reports no GPU");
        return;
    }
    probe.blas_lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
    if (probe.blas_lib == NULL) {
        probe.blas_lib = dlopen("libcublas.so", RTLD_NOW | RTLD_LOCAL);
    }
    if (probe.blas_lib != NULL) {
        probe.blas_create = (cublas_create_fn)dlsym(probe.blas_lib, "cublasCreate_v2");
        probe.blas_destroy = (cublas_destroy_fn)dlsym(probe.blas_lib, "cublasDestroy_v2");
        probe.blas_set_stream = (cublas_set_stream_fn)dlsym(probe.blas_lib, "cublasSetStream_v2");
        if (probe.blas_create == NULL || probe.blas_destroy == NULL ||
            probe.blas_set_stream == NULL) {
            probe.blas_create = NULL;
        }
    }
}

const char *tsr__cuda_absent_reason(void)
{
    pthread_once(&probe.once, probe_once);
    return probe.absent;
}

static uint32_t cuda_n_devices(const tsr_config_t *resolved)
{
    uint32_t n;

    pthread_once(&probe.once, probe_once);
    n = (uint32_t)probe.n_gpus;
    if (resolved->n_cuda_devices < 0) {
        return 0;
    }
    if (resolved->n_cuda_devices > 0 && (uint32_t)resolved->n_cuda_devices < n) {
        n = (uint32_t)resolved->n_cuda_devices;
    }
    return n;
}

static uint32_t cuda_n_workers(const tsr_config_t *resolved)
{
    (void)resolved;
    return 1; /* the driver thread */
}

static uint64_t cuda_mem_capacity(const tsr_config_t *resolved, uint32_t index)
{
    struct cudaDeviceProp prop;
    uint64_t total;
    uint64_t reserve;

    (void)resolved;
    if (cudaGetDeviceProperties(&prop, (int)index) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    total = prop.totalGlobalMem;
    reserve = (uint64_t)((double)total * MEM_RESERVE_FRACTION);
    if (reserve < MEM_RESERVE_MIN) {
        reserve = MEM_RESERVE_MIN;
    }
    return total > 2 * reserve ? total - reserve : total / 2;
}

static void cuda_describe(uint32_t index, char *buf, size_t n)
{
    struct cudaDeviceProp prop;

    if (cudaGetDeviceProperties(&prop, (int)index) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(buf, n, "CUDA device %u", (unsigned)index);
        return;
    }
    snprintf(buf, n, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
}

static cudaError_t stage_init(struct stage *s)
{
    cudaError_t err;

    for (int i = 0; i < 2; i++) {
        err = cudaMallocHost(&s->buf[i], STAGE_BYTES);
        if (err != cudaSuccess) {
            return err;
        }
        err = cudaEventCreateWithFlags(&s->ev[i], cudaEventDisableTiming);
        if (err != cudaSuccess) {
            return err;
        }
    }
    return cudaSuccess;
}

static void stage_fini(struct stage *s)
{
    for (int i = 0; i < 2; i++) {
        if (s->ev[i] != NULL) {
            cudaEventDestroy(s->ev[i]);
        }
        if (s->buf[i] != NULL) {
            cudaFreeHost(s->buf[i]);
        }
    }
    pthread_mutex_destroy(&s->mutex);
}

/* Make device `id` current for a call that any thread may make (a worker, the
 * program's, another GPU's driver in the middle of a task), and give the thread
 * its own device back after (device_leave): each driver thread counts on its
 * device staying current between launch_begin and launch_end. */
static int device_enter(int id)
{
    int prev = -1;

    if (cudaGetDevice(&prev) != cudaSuccess) {
        (void)cudaGetLastError();
        prev = -1;
    }
    if (prev != id) {
        cudaSetDevice(id);
    }
    return prev;
}

static void device_leave(int id, int prev)
{
    if (prev >= 0 && prev != id) {
        cudaSetDevice(prev);
    }
}

static void cuda_close(void *state)
{
    struct cuda_dev *dev = state;

    if (dev == NULL) {
        return;
    }
    const int id = dev->id;
    const int prev = device_enter(id);
    for (uint32_t i = 0; dev->streams != NULL && i < dev->n_streams; i++) {
        if (dev->blas != NULL && dev->blas[i] != NULL) {
            probe.blas_destroy(dev->blas[i]);
        }
        if (dev->streams[i] != NULL) {
            cudaStreamSynchronize(dev->streams[i]);
            cudaStreamDestroy(dev->streams[i]);
        }
    }
    for (uint32_t i = 0; i < dev->n_pool; i++) {
        cudaEventDestroy(dev->pool[i]);
    }
    if (dev->h2d != NULL) {
        cudaStreamSynchronize(dev->h2d);
        cudaStreamDestroy(dev->h2d);
    }
    if (dev->d2h != NULL) {
        cudaStreamSynchronize(dev->d2h);
        cudaStreamDestroy(dev->d2h);
    }
    stage_fini(&dev->up);
    stage_fini(&dev->down);
    pthread_mutex_destroy(&dev->pool_mutex);
    free(dev->pool);
    free(dev->blas);
    free(dev->streams);
    free(dev);
    (void)cudaGetLastError();
    device_leave(id, prev);
}

/* Peer access from GPU id to the other GPUs this runtime uses (n_used of them),
 * not to every GPU found: enabling access to one makes a context on it. */
static void enable_peers(int id, int n_used)
{
    for (int j = 0; j < n_used; j++) {
        int can = 0;

        if (j != id && cudaDeviceCanAccessPeer(&can, id, j) == cudaSuccess && can) {
            /* Already enabled (another runtime of this process) is fine. */
            cudaDeviceEnablePeerAccess(j, 0);
        }
        (void)cudaGetLastError();
    }
}

/* The array kernels' scratch comes from the device's default pool
 * (cudaMallocAsync). Its release threshold is 0 by default, so every stream or
 * event synchronisation would unmap what was freed, and the next kernel would map
 * it again: keep up to SCRATCH_POOL_KEEP bytes mapped. */
#define SCRATCH_POOL_KEEP (256ull << 20)

static void keep_scratch_pool(int id)
{
    cudaMemPool_t pool;
    uint64_t keep = SCRATCH_POOL_KEEP;

    if (cudaDeviceGetDefaultMemPool(&pool, id) == cudaSuccess) {
        cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    }
    (void)cudaGetLastError();
}

static tsr_status_t open_fail(struct cuda_dev *dev, const char *what, cudaError_t err, char *msg,
                              size_t n_msg)
{
    cuda_msg(msg, n_msg, what, dev->id, err);
    cuda_close(dev);
    return TSR_EBACKEND;
}

/* The oldest compute capability (major * 10 + minor) this build has kernels for,
 * from CMAKE_CUDA_ARCHITECTURES ("90", "80,90-real", ...); 0 when unknown (a
 * list like "native" or "all"). A GPU older than that cannot run them. */
static int oldest_built_arch(void)
{
#ifdef TSR_CUDA_ARCHS
    const char *p = TSR_CUDA_ARCHS;
    int oldest = 0;

    while (*p != '\0') {
        char *end;
        long a = strtol(p, &end, 10);

        if (end == p) {
            return 0;
        }
        oldest = oldest == 0 || a < oldest ? (int)a : oldest;
        p = strchr(p, ',');
        if (p == NULL) {
            break;
        }
        p++;
    }
    return oldest;
#else
    return 0;
#endif
}

static tsr_status_t open_on(const tsr_config_t *resolved, uint32_t index, void **state_out,
                            char *msg, size_t n_msg);

/* Open GPU `index`, leaving the calling thread's current GPU as it was. */
static tsr_status_t cuda_open(const tsr_config_t *resolved, uint32_t index, void **state_out,
                              char *msg, size_t n_msg)
{
    int prev = device_enter((int)index);
    tsr_status_t st = open_on(resolved, index, state_out, msg, n_msg);

    device_leave((int)index, prev);
    return st;
}

static tsr_status_t open_on(const tsr_config_t *resolved, uint32_t index, void **state_out,
                            char *msg, size_t n_msg)
{
    const int oldest = oldest_built_arch();
    int major = 0;
    int minor = 0;
    struct cuda_dev *dev;
    cudaError_t err;

    if (oldest > 0 &&
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, (int)index) ==
            cudaSuccess &&
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, (int)index) ==
            cudaSuccess &&
        major * 10 + minor < oldest) {
        snprintf(msg, n_msg,
                 "it is sm_%d%d, and this build of Tessera has GPU kernels for sm_%d and newer: "
                 "rebuild with -DCMAKE_CUDA_ARCHITECTURES=\"%d%d;%d\"",
                 major, minor, oldest, major, minor, oldest);
        return TSR_ENOTSUP;
    }
    (void)cudaGetLastError();
    dev = calloc(1, sizeof(*dev));
    if (dev == NULL) {
        snprintf(msg, n_msg, "out of host memory");
        return TSR_ENOMEM;
    }
    dev->id = (int)index;
    dev->n_streams = resolved->cuda_streams > 0 ? resolved->cuda_streams : 4;
    pthread_mutex_init(&dev->pool_mutex, NULL);
    pthread_mutex_init(&dev->up.mutex, NULL); /* here: cuda_close destroys them */
    pthread_mutex_init(&dev->down.mutex, NULL);
    dev->streams = calloc(dev->n_streams, sizeof(*dev->streams));
    dev->blas = calloc(dev->n_streams, sizeof(*dev->blas));
    if (dev->streams == NULL || dev->blas == NULL) {
        return open_fail(dev, "out of host memory opening the device", cudaErrorMemoryAllocation,
                         msg, n_msg);
    }
    err = cudaSetDevice(dev->id);
    if (err != cudaSuccess) {
        return open_fail(dev, "cudaSetDevice", err, msg, n_msg);
    }
    for (uint32_t i = 0; i < dev->n_streams; i++) {
        err = cudaStreamCreateWithFlags(&dev->streams[i], cudaStreamNonBlocking);
        if (err != cudaSuccess) {
            return open_fail(dev, "cudaStreamCreate", err, msg, n_msg);
        }
        if (probe.blas_create != NULL && probe.blas_create(&dev->blas[i]) == 0) {
            probe.blas_set_stream(dev->blas[i], dev->streams[i]);
        } else {
            dev->blas[i] = NULL;
        }
    }
    err = cudaStreamCreateWithFlags(&dev->h2d, cudaStreamNonBlocking);
    if (err == cudaSuccess) {
        err = cudaStreamCreateWithFlags(&dev->d2h, cudaStreamNonBlocking);
    }
    if (err != cudaSuccess) {
        return open_fail(dev, "cudaStreamCreate", err, msg, n_msg);
    }
    err = stage_init(&dev->up);
    if (err == cudaSuccess) {
        err = stage_init(&dev->down);
    }
    if (err != cudaSuccess) {
        return open_fail(dev, "allocating pinned staging buffers", err, msg, n_msg);
    }
    keep_scratch_pool(dev->id);
    enable_peers(dev->id, (int)cuda_n_devices(resolved));
    *state_out = dev;
    return TSR_OK;
}

/* An event from the pool (created when the pool is empty), or NULL. */
static cudaEvent_t event_get(struct cuda_dev *dev)
{
    cudaEvent_t ev = NULL;

    pthread_mutex_lock(&dev->pool_mutex);
    if (dev->n_pool > 0) {
        ev = dev->pool[--dev->n_pool];
    }
    pthread_mutex_unlock(&dev->pool_mutex);
    if (ev == NULL && cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess) {
        ev = NULL;
    }
    return ev;
}

static void event_put(struct cuda_dev *dev, cudaEvent_t ev)
{
    pthread_mutex_lock(&dev->pool_mutex);
    if (dev->n_pool == dev->cap_pool) {
        uint32_t cap = dev->cap_pool > 0 ? 2 * dev->cap_pool : 64;
        cudaEvent_t *pool = realloc(dev->pool, cap * sizeof(*pool));

        if (pool == NULL) {
            pthread_mutex_unlock(&dev->pool_mutex);
            cudaEventDestroy(ev);
            return;
        }
        dev->pool = pool;
        dev->cap_pool = cap;
    }
    dev->pool[dev->n_pool++] = ev;
    pthread_mutex_unlock(&dev->pool_mutex);
}

/* Record *fence (created on first use) on stream. */
static cudaError_t fence_record(void **fence, cudaStream_t stream)
{
    cudaError_t err;

    if (*fence == NULL) {
        cudaEvent_t ev;

        err = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
        if (err != cudaSuccess) {
            return err;
        }
        *fence = ev;
    }
    return cudaEventRecord((cudaEvent_t)*fence, stream);
}

/* The replica's block goes back for reuse after this: a copy into it still on
 * its way (a prefetch of a replica then evicted) must not land in its next use. */
static void cuda_fence_free(void *state, void *fence)
{
    struct cuda_dev *dev = state;

    if (fence != NULL) {
        int prev = device_enter(dev->id);

        cudaEventSynchronize((cudaEvent_t)fence);
        cudaEventDestroy((cudaEvent_t)fence);
        (void)cudaGetLastError(); /* a failed wait shows in the task that queued it */
        device_leave(dev->id, prev);
    }
}

static tsr_status_t cuda_launch_begin(void *state, struct tsr__launch *l)
{
    struct cuda_dev *dev = state;
    uint32_t slot =
        l->prefer_slot < dev->n_streams ? l->prefer_slot : dev->next_stream++ % dev->n_streams;
    cudaStream_t s = dev->streams[slot];
    cudaError_t err = cudaSetDevice(dev->id);

    /* From here the thread's last error is the implementation's (launch_end). */
    (void)cudaGetLastError();

    /* Predecessors still running: stream order covers those on this stream. */
    for (uint32_t i = 0; i < l->n_waits && err == cudaSuccess; i++) {
        if (l->wait_slots[i] != slot) {
            err = cudaStreamWaitEvent(s, (cudaEvent_t)l->waits[i], 0);
        }
    }
    for (uint32_t i = 0; i < l->n_bufs && err == cudaSuccess; i++) {
        if (*l->fences[i] != NULL) {
            err = cudaStreamWaitEvent(s, (cudaEvent_t)*l->fences[i], 0);
        }
    }
    if (err != cudaSuccess) {
        cuda_msg(l->msg, sizeof(l->msg), "preparing a launch", dev->id, err);
        return TSR_EBACKEND;
    }
    l->stream = s;
    l->blas = dev->blas[slot];
    l->slot = slot;
    return TSR_OK;
}

static tsr_status_t cuda_launch_end(void *state, struct tsr__launch *l, tsr_status_t impl_status,
                                    void **token_out)
{
    struct cuda_dev *dev = state;
    cudaStream_t s = l->stream;
    cudaError_t err = cudaGetLastError(); /* launch errors of the implementation */
    cudaEvent_t done;

    /* The implementation may have left another GPU current: the events below
     * must belong to this one. */
    if (err == cudaSuccess) {
        err = cudaSetDevice(dev->id);
    }
    if (impl_status != TSR_OK || err != cudaSuccess) {
        if (err != cudaSuccess) {
            cuda_msg(l->msg, sizeof(l->msg), "kernel launch failed", dev->id, err);
        }
        /* Let whatever was queued finish before the task's buffers move on. */
        cudaStreamSynchronize(s);
        (void)cudaGetLastError();
        return impl_status != TSR_OK ? impl_status : TSR_EBACKEND;
    }
    for (uint32_t i = 0; i < l->n_bufs && err == cudaSuccess; i++) {
        if (l->modes[i] & TSR_W) {
            err = fence_record(l->fences[i], s);
        }
    }
    done = err == cudaSuccess ? event_get(dev) : NULL;
    if (done != NULL) {
        err = cudaEventRecord(done, s);
    }
    if (err != cudaSuccess || done == NULL) {
        cuda_msg(l->msg, sizeof(l->msg), "recording a task's completion", dev->id,
                 err != cudaSuccess ? err : cudaErrorMemoryAllocation);
        if (done != NULL) {
            event_put(dev, done);
        }
        cudaStreamSynchronize(s);
        return TSR_EBACKEND;
    }
    *token_out = done;
    return TSR_OK;
}

static tsr_status_t cuda_poll(void *state, void *token, int block, char *msg, size_t n_msg)
{
    struct cuda_dev *dev = state;
    cudaEvent_t done = token;
    cudaError_t err = block ? cudaEventSynchronize(done) : cudaEventQuery(done);

    if (err == cudaErrorNotReady) {
        (void)cudaGetLastError(); /* not an error: keep it from the next launch's check */
        return TSR_PENDING;
    }
    event_put(dev, done);
    if (err != cudaSuccess) {
        cuda_msg(msg, n_msg, "task failed while running", dev->id, err);
        return TSR_EBACKEND;
    }
    return TSR_OK;
}

static tsr_status_t cuda_mem_alloc(void *state, struct tsr__dev_mem *mem, size_t n_bytes,
                                   void **ptr_out)
{
    struct cuda_dev *dev = state;
    uint64_t used = atomic_fetch_add(&mem->used, n_bytes) + n_bytes;
    cudaError_t err;
    int prev;

    if (used > mem->capacity) {
        atomic_fetch_sub(&mem->used, n_bytes);
        return TSR_ENOMEM;
    }
    prev = device_enter(dev->id);
    err = cudaMalloc(ptr_out, n_bytes > 0 ? n_bytes : 1);
    device_leave(dev->id, prev);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        atomic_fetch_sub(&mem->used, n_bytes);
        return TSR_ENOMEM;
    }
    return TSR_OK;
}

static void cuda_mem_free(void *state, struct tsr__dev_mem *mem, void *ptr, size_t n_bytes)
{
    struct cuda_dev *dev = state;

    if (ptr != NULL) {
        int prev = device_enter(dev->id);

        cudaFree(ptr);
        device_leave(dev->id, prev);
        atomic_fetch_sub(&mem->used, n_bytes);
    }
}

static int is_pinned(const void *p)
{
    struct cudaPointerAttributes a;

    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeHost;
}

/* Host -> device through the two pinned buffers: the host copies a chunk in while
 * the previous one is on its way. */
static cudaError_t staged_up(struct cuda_dev *dev, char *dst, const char *src, size_t n)
{
    struct stage *st = &dev->up;
    cudaError_t err = cudaSuccess;
    uint32_t k = 0;

    for (size_t off = 0; off < n && err == cudaSuccess; off += STAGE_BYTES, k ^= 1) {
        size_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;

        err = cudaEventSynchronize(st->ev[k]);
        if (err == cudaSuccess) {
            memcpy(st->buf[k], src + off, len);
            err = cudaMemcpyAsync(dst + off, st->buf[k], len, cudaMemcpyHostToDevice, dev->h2d);
        }
        if (err == cudaSuccess) {
            err = cudaEventRecord(st->ev[k], dev->h2d);
        }
    }
    return err;
}

/* Device -> host through the two pinned buffers: chunk k+1 is on its way while the
 * host copies chunk k out. */
static cudaError_t staged_down(struct cuda_dev *dev, char *dst, const char *src, size_t n)
{
    struct stage *st = &dev->down;
    size_t n_chunks = (n + STAGE_BYTES - 1) / STAGE_BYTES;
    cudaError_t err = cudaSuccess;

    for (size_t c = 0; c <= n_chunks && err == cudaSuccess; c++) {
        if (c < n_chunks) {
            size_t off = c * STAGE_BYTES;
            size_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;

            err = cudaMemcpyAsync(st->buf[c & 1], src + off, len, cudaMemcpyDeviceToHost, dev->d2h);
            if (err == cudaSuccess) {
                err = cudaEventRecord(st->ev[c & 1], dev->d2h);
            }
        }
        if (c > 0 && err == cudaSuccess) {
            size_t off = (c - 1) * STAGE_BYTES;
            size_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;

            err = cudaEventSynchronize(st->ev[(c - 1) & 1]);
            if (err == cudaSuccess) {
                memcpy(dst + off, st->buf[(c - 1) & 1], len);
            }
        }
    }
    return err;
}

static cudaError_t copy_up(const struct tsr__copy *c, struct cuda_dev *dev)
{
    cudaError_t err;

    pthread_mutex_lock(&dev->up.mutex);
    if (c->n_bytes < STAGE_MIN_BYTES || is_pinned(c->src)) {
        err = cudaMemcpyAsync(c->dst, c->src, c->n_bytes, cudaMemcpyHostToDevice, dev->h2d);
    } else {
        err = staged_up(dev, c->dst, c->src, c->n_bytes);
    }
    if (err == cudaSuccess) {
        err = fence_record(c->dst_fence, dev->h2d);
    }
    pthread_mutex_unlock(&dev->up.mutex);
    return err;
}

static cudaError_t copy_down(const struct tsr__copy *c, struct cuda_dev *dev)
{
    cudaError_t err = cudaSuccess;

    pthread_mutex_lock(&dev->down.mutex);
    if (c->src_fence != NULL && *c->src_fence != NULL) {
        err = cudaStreamWaitEvent(dev->d2h, (cudaEvent_t)*c->src_fence, 0);
    }
    if (err == cudaSuccess) {
        if (c->n_bytes < STAGE_MIN_BYTES || is_pinned(c->dst)) {
            err = cudaMemcpyAsync(c->dst, c->src, c->n_bytes, cudaMemcpyDeviceToHost, dev->d2h);
            if (err == cudaSuccess) {
                err = cudaStreamSynchronize(dev->d2h);
            }
        } else {
            err = staged_down(dev, c->dst, c->src, c->n_bytes);
        }
    }
    pthread_mutex_unlock(&dev->down.mutex);
    return err;
}

/* Between two GPUs (or within one), on the destination's host-to-device stream,
 * behind the source's last write. The copy still reads the source when this
 * returns, so the source's fence is recorded again behind it (on a stream of the
 * source's GPU, where its events belong): the source's block is not reused (after
 * an eviction, say) before the copy has read it. */
static cudaError_t copy_across(const struct tsr__copy *c, struct cuda_dev *dst,
                               struct cuda_dev *src)
{
    cudaError_t err = cudaSuccess;

    pthread_mutex_lock(&dst->up.mutex);
    if (c->src_fence != NULL && *c->src_fence != NULL) {
        err = cudaStreamWaitEvent(dst->h2d, (cudaEvent_t)*c->src_fence, 0);
    }
    if (err == cudaSuccess) {
        err = dst == src
                  ? cudaMemcpyAsync(c->dst, c->src, c->n_bytes, cudaMemcpyDeviceToDevice, dst->h2d)
                  : cudaMemcpyPeerAsync(c->dst, dst->id, c->src, src->id, c->n_bytes, dst->h2d);
    }
    if (err == cudaSuccess) {
        err = fence_record(c->dst_fence, dst->h2d);
    }
    if (err == cudaSuccess && c->src_fence != NULL && !c->wait && dst == src) {
        err = fence_record(c->src_fence, dst->h2d);
    }
    pthread_mutex_unlock(&dst->up.mutex);
    if (err == cudaSuccess && c->src_fence != NULL && !c->wait && dst != src) {
        int prev = device_enter(src->id);

        pthread_mutex_lock(&src->down.mutex);
        err = cudaStreamWaitEvent(src->d2h, (cudaEvent_t)*c->dst_fence, 0);
        if (err == cudaSuccess) {
            err = fence_record(c->src_fence, src->d2h);
        }
        pthread_mutex_unlock(&src->down.mutex);
        device_leave(src->id, prev);
    }
    return err;
}

static tsr_status_t cuda_copy(const struct tsr__copy *c, char *msg, size_t n_msg)
{
    struct cuda_dev *dst = c->dst_dev;
    struct cuda_dev *src = c->src_dev;
    struct cuda_dev *dev = dst != NULL ? dst : src;
    int prev = device_enter(dev->id);
    cudaError_t err;

    if (dst != NULL && src != NULL) {
        err = copy_across(c, dst, src);
    } else if (dst != NULL) {
        err = copy_up(c, dst);
    } else {
        err = copy_down(c, src);
    }
    if (err == cudaSuccess && c->wait && dst != NULL) {
        err = cudaEventSynchronize((cudaEvent_t)*c->dst_fence);
    }
    device_leave(dev->id, prev);
    if (err != cudaSuccess) {
        cuda_msg(msg, n_msg, "copy", dev->id, err);
        return TSR_EBACKEND;
    }
    return TSR_OK;
}

/* FP32 peak (128 lanes per SM, Volta to Hopper, two flops per FMA) and the memory
 * bus's bandwidth (double data rate). */
static void cuda_peaks(void *state, double *flops_out, double *bytes_out)
{
    struct cuda_dev *dev = state;
    int sms = 0;
    int clock_khz = 0;
    int mem_khz = 0;
    int bus_bits = 0;

    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev->id);
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev->id);
    cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev->id);
    cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev->id);
    (void)cudaGetLastError();
    *flops_out = (double)sms * 128.0 * 2.0 * (double)clock_khz * 1e3;
    *bytes_out = 2.0 * (double)mem_khz * 1e3 * (double)bus_bits / 8.0;
}

const struct tsr__device_ops tsr__cuda_device_ops = {
    .name = "cuda",
    .kind = TSR_DEVICE_CUDA,
    .has_async_copies = 1,
    .n_devices = cuda_n_devices,
    .n_workers = cuda_n_workers,
    .mem_capacity = cuda_mem_capacity,
    .describe = cuda_describe,
    .open = cuda_open,
    .close = cuda_close,
    .launch_begin = cuda_launch_begin,
    .launch_end = cuda_launch_end,
    .poll = cuda_poll,
    .mem_alloc = cuda_mem_alloc,
    .mem_free = cuda_mem_free,
    .copy = cuda_copy,
    .fence_free = cuda_fence_free,
    .peaks = cuda_peaks,
};
