/* tessera-bench: finding and running peer programs (bench/peers/).
 *
 * A peer is a separate executable that does the same work through another
 * system and prints one line per case on stdout:
 *     case=<name> value=<median> spread=<max-min> n=<runs>
 * Other lines (a library's chatter) are ignored. Peers are looked up in
 * $TESSERA_BENCH_PEER_DIR, then beside tessera-bench, then in
 * <bindir>/../libexec/tessera. */
#ifndef TESSERA_BENCH_PEER_H
#define TESSERA_BENCH_PEER_H

#include <stddef.h>

#define BENCH_PEER_MAX_CASES 16
#define BENCH_PEER_NOTE_MAX 256

struct bench_peer_case {
    char name[64];
    double value;
    double spread;
    int n_runs;
};

/* Outcome of one peer invocation. When is_ok is 0, `note` says why. */
struct bench_peer_result {
    int is_ok;
    char note[BENCH_PEER_NOTE_MAX];
    struct bench_peer_case cases[BENCH_PEER_MAX_CASES];
    size_t n_cases;
};

/* Run the peer executable `prog_name` with the argument string `args` (already
 * shell-safe) and collect its case lines into `*out`. Never fails: a missing
 * binary, a failing run or no output leaves is_ok 0 and a note. */
void bench_peer_run(const char *prog_name, const char *args, struct bench_peer_result *out);

/* The case named `name` in `res`, or NULL (not run, not reported). */
const struct bench_peer_case *bench_peer_find(const struct bench_peer_result *res,
                                              const char *name);

#endif /* TESSERA_BENCH_PEER_H */
