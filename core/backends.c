/* Registry of device backends: CPU first, then accelerators in device order. The CUDA backend
 * (issue 3) is listed here under #if TSR_HAVE_CUDA once it exists; an absent backend is simply not
 * listed. */
#include "core/backends.h"

#include <tessera/config.h>

#include "devices/device_ops.h"

static const struct tsr__device_ops *const backends[] = {
    &tsr__cpu_device_ops,
    &tsr__sim_device_ops,
};

const struct tsr__device_ops *const *tsr__backends(size_t *n_out)
{
    *n_out = sizeof(backends) / sizeof(backends[0]);
    return backends;
}
