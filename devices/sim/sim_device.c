/* The simulated accelerator: its memory is a capacity-limited region of host
 * memory, reached only through explicit copies, and its kernel is the codelet's
 * CPU implementation (or its dedicated sim one). It is an asynchronous device, fed
 * by one driver thread through launch and poll as a GPU is, so every data-movement
 * and launch path of the runtime runs, with real data and results, on machines
 * without a GPU. The kernel runs during the launch, so fences are not needed, but
 * a launch reports completion only after 0-2 polls (in turn), as a GPU's work
 * completes later and out of order, so the runtime's waiting paths run too. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device_ops.h"

#define SIM_DEFAULT_MEM (256ull << 20)

struct sim_dev {
    atomic_uint n_launches;
};

/* Launched work, completed when polls_left reaches 0. */
struct sim_token {
    tsr_status_t status;
    uint32_t polls_left;
};

static uint32_t sim_n_devices(const tsr_config_t *resolved)
{
    return resolved->n_sim_devices;
}

static uint32_t sim_n_workers(const tsr_config_t *resolved)
{
    (void)resolved;
    return 1;
}

static uint64_t sim_mem_capacity(const tsr_config_t *resolved, uint32_t index)
{
    (void)index;
    return resolved->sim_mem_bytes != 0 ? resolved->sim_mem_bytes : SIM_DEFAULT_MEM;
}

static tsr_status_t sim_open(const tsr_config_t *resolved, uint32_t index, void **state_out,
                             char *msg, size_t n_msg)
{
    struct sim_dev *dev = calloc(1, sizeof(*dev));

    (void)resolved;
    (void)index;
    if (dev == NULL) {
        snprintf(msg, n_msg, "out of host memory");
        return TSR_ENOMEM;
    }
    atomic_init(&dev->n_launches, 0);
    *state_out = dev;
    return TSR_OK;
}

static void sim_close(void *state)
{
    free(state);
}

static tsr_status_t sim_launch_begin(void *state, struct tsr__launch *l)
{
    /* Nothing to wait for (l->waits): the work launched before ran during its launch. */
    (void)state;
    l->stream = NULL;
    l->blas = NULL;
    l->slot = 0;
    return TSR_OK;
}

static tsr_status_t sim_launch_end(void *state, struct tsr__launch *l, tsr_status_t impl_status,
                                   void **token_out)
{
    struct sim_dev *dev = state;
    struct sim_token *tok;

    (void)l;
    if (impl_status != TSR_OK) {
        return impl_status;
    }
    tok = malloc(sizeof(*tok));
    if (tok == NULL) {
        snprintf(l->msg, sizeof(l->msg), "sim: out of host memory for a launch token");
        return TSR_ENOMEM;
    }
    tok->status = TSR_OK;
    tok->polls_left = atomic_fetch_add_explicit(&dev->n_launches, 1, memory_order_relaxed) % 3;
    *token_out = tok;
    return TSR_OK;
}

static tsr_status_t sim_poll(void *state, void *token, int block, char *msg, size_t n_msg)
{
    struct sim_token *tok = token;
    tsr_status_t st;

    (void)state;
    (void)msg;
    (void)n_msg;
    if (!block && tok->polls_left > 0) {
        tok->polls_left--;
        return TSR_PENDING;
    }
    st = tok->status;
    free(tok);
    return st;
}

static tsr_status_t sim_mem_alloc(void *state, struct tsr__dev_mem *mem, size_t n_bytes,
                                  void **ptr_out)
{
    uint64_t used = atomic_fetch_add(&mem->used, n_bytes) + n_bytes;
    void *p;

    (void)state;
    if (used > mem->capacity) {
        atomic_fetch_sub(&mem->used, n_bytes);
        return TSR_ENOMEM;
    }
    p = malloc(n_bytes > 0 ? n_bytes : 1);
    if (p == NULL) {
        atomic_fetch_sub(&mem->used, n_bytes);
        return TSR_ENOMEM;
    }
    *ptr_out = p;
    return TSR_OK;
}

static void sim_mem_free(void *state, struct tsr__dev_mem *mem, void *ptr, size_t n_bytes)
{
    (void)state;
    if (ptr != NULL) {
        free(ptr);
        atomic_fetch_sub(&mem->used, n_bytes);
    }
}

static tsr_status_t sim_copy(const struct tsr__copy *c, char *msg, size_t n_msg)
{
    (void)msg;
    (void)n_msg;
    memcpy(c->dst, c->src, c->n_bytes);
    return TSR_OK;
}

static void sim_fence_free(void *state, void *fence)
{
    (void)state;
    (void)fence;
}

const struct tsr__device_ops tsr__sim_device_ops = {
    .name = "sim",
    .kind = TSR_DEVICE_SIM,
    .n_devices = sim_n_devices,
    .n_workers = sim_n_workers,
    .mem_capacity = sim_mem_capacity,
    .open = sim_open,
    .close = sim_close,
    .launch_begin = sim_launch_begin,
    .launch_end = sim_launch_end,
    .poll = sim_poll,
    .mem_alloc = sim_mem_alloc,
    .mem_free = sim_mem_free,
    .copy = sim_copy,
    .fence_free = sim_fence_free,
};
