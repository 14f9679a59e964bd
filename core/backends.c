/* Registry of device backends: CPU first, then accelerators in device order. A backend this
 * build does not contain is simply not listed. */
#include "core/backends.h"

#include <tessera/config.h>

#include "devices/device_ops.h"

static const struct tsr__device_ops *const backends[] = {
    &tsr__cpu_device_ops,
#if TSR_HAVE_CUDA
    &tsr__cuda_device_ops,
#endif
    &tsr__sim_device_ops,
};

const struct tsr__device_ops *const *tsr__backends(size_t *n_out)
{
    *n_out = sizeof(backends) / sizeof(backends[0]);
    return backends;
}
