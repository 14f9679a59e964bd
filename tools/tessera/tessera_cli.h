/* The `tessera` command-line tool: shared declarations of its subcommands. */
#ifndef TESSERA_CLI_H
#define TESSERA_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <tessera.h>

/* Exit codes of every subcommand. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* a check failed or a Tessera call returned an error */
#define CLI_EXIT_USAGE 2 /* bad command line */

/* Subcommands; argv[0] is the subcommand name. Return an exit code. */
int cli_demo(int argc, char **argv);
int cli_info(int argc, char **argv);

/* Print "tessera <cmd>: <what> failed: <TSR_...>: <tsr_last_error()>" to stderr. */
void cli_print_error(const char *cmd, const char *what, tsr_status_t st);

/* Parse `text` as an integer in [lo, hi] for option `opt` of `cmd`; on error
 * print why and return nonzero (the output is written only on success). */
int cli_parse_long(const char *cmd, const char *opt, const char *text, long lo, long hi, long *out);

/* Parse a policy name: eager | ws. */
int cli_parse_policy(const char *cmd, const char *text, tsr_sched_policy_t *out);

#endif /* TESSERA_CLI_H */
