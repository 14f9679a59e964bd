/* The registry of device backends built into this library. Private to core/. */
#ifndef TSR_CORE_BACKENDS_H
#define TSR_CORE_BACKENDS_H

#include <stddef.h>

struct tsr__device_ops;

/* Backends compiled in, CPU first; sets *n_out. */
const struct tsr__device_ops *const *tsr__backends(size_t *n_out);

#endif /* TSR_CORE_BACKENDS_H */
