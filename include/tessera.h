/* Tessera: a task-graph runtime for heterogeneous machines. Umbrella header.
 *
 * Conventions of the whole API:
 * - Every fallible call returns tsr_status_t (TSR_OK = 0, errors negative); the
 *   detail of an error is in tsr_last_error(), a thread-local string.
 * - Outputs come last, are named *_out and are written only on success.
 * - Doc comments say whether a call borrows, takes, or returns new objects.
 * - Destroy-like calls accept NULL. */
#ifndef TESSERA_H
#define TESSERA_H

#include <tessera/array.h>
#include <tessera/config.h>
#include <tessera/data.h>
#include <tessera/export.h>
#include <tessera/runtime.h>
#include <tessera/status.h>
#include <tessera/task.h>

#endif /* TESSERA_H */
