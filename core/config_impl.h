/* Configuration details the runtime needs beyond tsr_config_resolve. Private to
 * core/; like the rest of config.c, the only code that reads TESSERA_* variables. */
#ifndef TSR_CORE_CONFIG_IMPL_H
#define TSR_CORE_CONFIG_IMPL_H

#include <stddef.h>
#include <tessera/runtime.h>

/* Whether the policy of `config` (NULL: defaults) was left to the runtime: not set
 * in the struct, nor by TESSERA_SCHED. */
int tsr__config_policy_is_default(const tsr_config_t *config);

/* The directory of the persisted models for a resolved configuration into buf:
 * model_dir when set ("" = none), else the per-host default under the user's cache
 * directory ("" when there is none). */
void tsr__config_model_dir(const tsr_config_t *resolved, char *buf, size_t n);

#endif /* TSR_CORE_CONFIG_IMPL_H */
