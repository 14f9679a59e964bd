/* tessera-bench: locating a peer program and reading its results through popen. */
#include "bench_peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Directory of the running executable, from /proc/self/exe; "" if unknown. */
static void exe_dir(char *dir, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    char *slash;

    if (n <= 0) {
        dir[0] = '\0';
        return;
    }
    dir[n] = '\0';
    slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
    } else {
        dir[0] = '\0';
    }
}

static int try_dir(const char *dir, const char *prog, char *path, size_t size)
{
    int n;

    if (dir == NULL || dir[0] == '\0') {
        return 0;
    }
    n = snprintf(path, size, "%s/%s", dir, prog);
    return n > 0 && (size_t)n < size && access(path, X_OK) == 0;
}

/* Fill `path` with the peer's location; returns 1 if found. */
static int locate(const char *prog, char *path, size_t size)
{
    char dir[4096];
    char libexec[4200];

    if (try_dir(getenv("TESSERA_BENCH_PEER_DIR"), prog, path, size)) {
        return 1;
    }
    exe_dir(dir, sizeof(dir));
    if (try_dir(dir, prog, path, size)) {
        return 1;
    }
    snprintf(libexec, sizeof(libexec), "%s/../libexec/tessera", dir);
    return try_dir(libexec, prog, path, size);
}

/* A path is quoted only if it is free of single quotes; others are refused. */
static int build_command(const char *path, const char *args, char *cmd, size_t size)
{
    int n;

    if (strchr(path, '\'') != NULL) {
        return 0;
    }
    n = snprintf(cmd, size, "'%s' %s", path, args);
    return n > 0 && (size_t)n < size;
}

static void parse_line(const char *line, struct bench_peer_result *out)
{
    struct bench_peer_case c;

    if (out->n_cases >= BENCH_PEER_MAX_CASES) {
        return;
    }
    memset(&c, 0, sizeof(c));
    if (sscanf(line, "case=%63s value=%lf spread=%lf n=%d", c.name, &c.value, &c.spread,
               &c.n_runs) == 4) {
        out->cases[out->n_cases++] = c;
    }
}

static void note_exit(struct bench_peer_result *out, const char *prog, int wstatus)
{
    if (WIFEXITED(wstatus)) {
        snprintf(out->note, sizeof(out->note), "peer %s exited with status %d", prog,
                 WEXITSTATUS(wstatus));
    } else if (WIFSIGNALED(wstatus)) {
        snprintf(out->note, sizeof(out->note), "peer %s killed by signal %d", prog,
                 WTERMSIG(wstatus));
    } else {
        snprintf(out->note, sizeof(out->note), "peer %s could not be run", prog);
    }
}

void bench_peer_run(const char *prog_name, const char *args, struct bench_peer_result *out)
{
    char path[4096];
    char cmd[8192];
    char line[1024];
    FILE *pipe;
    int wstatus;

    memset(out, 0, sizeof(*out));
    if (!locate(prog_name, path, sizeof(path))) {
        snprintf(out->note, sizeof(out->note),
                 "peer %s not found (not built, or set TESSERA_BENCH_PEER_DIR)", prog_name);
        return;
    }
    if (!build_command(path, args, cmd, sizeof(cmd)) || (pipe = popen(cmd, "r")) == NULL) {
        snprintf(out->note, sizeof(out->note), "peer %s could not be started", prog_name);
        return;
    }
    while (fgets(line, sizeof(line), pipe) != NULL) {
        parse_line(line, out);
    }
    wstatus = pclose(pipe);
    if (wstatus != 0) {
        note_exit(out, prog_name, wstatus);
    } else if (out->n_cases == 0) {
        snprintf(out->note, sizeof(out->note), "peer %s printed no results", prog_name);
    } else {
        out->is_ok = 1;
    }
}

const struct bench_peer_case *bench_peer_find(const struct bench_peer_result *res, const char *name)
{
    if (!res->is_ok) {
        return NULL;
    }
    for (size_t i = 0; i < res->n_cases; i++) {
        if (strcmp(res->cases[i].name, name) == 0) {
            return &res->cases[i];
        }
    }
    return NULL;
}
