/* The models a runtime keeps (performance per codelet × device kind × size, and
 * transfers per pair of memory nodes), as the placement policies and `tessera
 * info` use them. Private to core/. */
#ifndef TSR_CORE_MODELS_H
#define TSR_CORE_MODELS_H

#include <stdint.h>
#include <stdio.h>
#include <tessera/runtime.h>

struct tsr_future;

/* Create rt->models when rt's policy uses them (dmda); loads the persisted models
 * from the configured directory. */
tsr_status_t tsr__models_init(tsr_runtime_t *rt);
/* Save and free. */
void tsr__models_fini(tsr_runtime_t *rt);

/* Predicted run time of t on a device of `kind`, in seconds; 0 when unknown. */
double tsr__model_predict(tsr_runtime_t *rt, struct tsr_future *t, uint32_t kind);

/* Predicted time to copy n_bytes from node src to node dst, in seconds. */
double tsr__xfer_predict(tsr_runtime_t *rt, uint32_t src, uint32_t dst, uint64_t n_bytes);

/* A copy of n_bytes from src to dst took `seconds` (it was waited for). */
void tsr__xfer_observe(tsr_runtime_t *rt, uint32_t src, uint32_t dst, uint64_t n_bytes,
                       double seconds);

/* Print the models' state (for tessera info). */
void tsr__models_print(tsr_runtime_t *rt, FILE *out);

#endif /* TSR_CORE_MODELS_H */
