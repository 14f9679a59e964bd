/* Computing array expressions (compute.c, lowering them to tasks in lower.c).
 * Private to collections/array/. */
#ifndef TSR_COLLECTIONS_ARRAY_LOWER_H
#define TSR_COLLECTIONS_ARRAY_LOWER_H

#include <tessera/array.h>
#include <tessera/data.h>

/* Compute `a` into new chunk handles (one per chunk of a's grid, C-order
 * chunks), waiting until they are written. On TSR_OK *chunks_out is a new
 * malloc'd array of handles owned by the caller (tsr__array_become_source takes
 * it). */
tsr_status_t tsr__array_materialize(tsr_array_t *a, tsr_data_t ***chunks_out);

#endif /* TSR_COLLECTIONS_ARRAY_LOWER_H */
