/* Internals of the array collection, shared by its files. Private to
 * collections/array/. */
#ifndef TSR_COLLECTIONS_ARRAY_IMPL_H
#define TSR_COLLECTIONS_ARRAY_IMPL_H

#include <tessera/status.h>

/* Errors are reported through the public tsr_set_error, like any library built
 * on Tessera. */
#define tsr__array_fail tsr_set_error

#endif /* TSR_COLLECTIONS_ARRAY_IMPL_H */
