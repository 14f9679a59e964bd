/* Configuration details the runtime needs beyond tsr_config_resolve. Private to
 * core/; like the rest of config.c, the only code that reads TESSERA_* variables. */
#ifndef TSR_CORE_CONFIG_IMPL_H
#define TSR_CORE_CONFIG_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/runtime.h>

/* Whether the policy of `config` (NULL: defaults) was left to the runtime: not set
 * in the struct, nor by TESSERA_SCHED. */
int tsr__config_policy_is_default(const tsr_config_t *config);

/* The directory of the persisted models for a resolved configuration into buf:
 * model_dir when set ("" = none), else the per-host default under the user's cache
 * directory ("" when there is none). */
void tsr__config_model_dir(const tsr_config_t *resolved, char *buf, size_t n);

/* The spill directory for a resolved configuration into buf. */
void tsr__config_spill_dir(const tsr_config_t *resolved, char *buf, size_t n);

/* A limit in bytes for a node of `memory` bytes (default: default_fraction of it). */
uint64_t tsr__config_limit(const tsr_mem_limit_t *limit, uint64_t memory, double default_fraction);

/* Physical memory of this machine (0 if unknown). */
uint64_t tsr__config_host_ram(void);

#endif /* TSR_CORE_CONFIG_IMPL_H */
