/* Symbol export for the Tessera library: only TSR_API symbols are visible. */
#ifndef TESSERA_EXPORT_H
#define TESSERA_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define TSR_API __attribute__((visibility("default")))
#else
#define TSR_API
#endif

#endif /* TESSERA_EXPORT_H */
