/* Progress of long work: every interval the tsr-progress thread reads the task
 * counters and, while a batch of work runs, redraws a bar on stderr and calls the
 * program's progress_fn (see tsr_config_t.progress and tsr_progress_t). The
 * thread only reads counters the workers keep anyway, so it costs the task path
 * nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/progress.h"
#include "core/runtime_impl.h"
#include "core/worker.h"

#define BAR_CELLS 20
#define TTY_DELAY_S 1.0    /* work shorter than this draws no bar on a terminal */
#define TTY_INTERVAL_S 0.2 /* default interval on a terminal and for progress_fn */
#define LOG_INTERVAL_S 5.0 /* default interval of lines written elsewhere */
#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * MIB)

/* The task counters at one look. */
struct counts {
    uint64_t tasks;  /* submitted (acquires left out) */
    uint64_t done;   /* of them finished */
    uint64_t failed; /* failed or cancelled */
    int is_idle;     /* every task and acquire submitted had finished */
};

struct tsr__progress {
    tsr_runtime_t *rt;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC; signalled to stop */
    int stop;
    int draws;  /* a bar or lines on stderr */
    int is_tty; /* stderr is a terminal: redraw in place */
    double interval_s;
    double delay_s; /* a batch younger than this is not drawn */
    /* The batch under way, under tick_mutex (in_batch is also read without it). */
    pthread_mutex_t tick_mutex;
    atomic_int in_batch;
    int drawn;          /* some of it is on stderr */
    struct counts base; /* the counters when the runtime was last seen idle */
    uint64_t t_begin_ns;
};

/* Acquires are left out: a program holding one is not running work. Completions
 * are read first, and an acquire takes its id before it is counted in n_aux, so
 * the tasks are never undercounted: is_idle never holds while a task counted in
 * next_id is unfinished. */
static struct counts look(tsr_runtime_t *rt)
{
    struct counts c;
    uint64_t done = 0;
    uint64_t aux;
    uint64_t ids;

    for (uint32_t i = 0; i < rt->n_workers; i++) {
        done += atomic_load(&rt->workers[i].n_completed);
    }
    aux = atomic_load(&rt->n_aux);
    ids = atomic_load(&rt->next_id);
    c.tasks = ids > aux ? ids - aux : 0;
    c.done = done;
    c.is_idle = done >= c.tasks;
    c.failed = atomic_load(&rt->n_failed) + atomic_load(&rt->n_cancelled);
    return c;
}

static uint64_t since(uint64_t now, uint64_t base)
{
    return now > base ? now - base : 0;
}

/* Append to buf (capacity cap, *len used), truncating at the end. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (*len + 1 >= cap) {
        return;
    }
    va_start(ap, fmt);
    k = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k > 0) {
        *len += (size_t)k < cap - *len ? (size_t)k : cap - *len - 1;
    }
}

/* "3.1 s", "2m05s", "1h02m". */
static void append_time(char *buf, size_t cap, size_t *len, double s)
{
    if (s < 59.95) {
        append(buf, cap, len, "%.1f s", s);
    } else if (s < 3600.0) {
        append(buf, cap, len, "%dm%02ds", (int)(s / 60.0), (int)s % 60);
    } else {
        append(buf, cap, len, "%dh%02dm", (int)(s / 3600.0), (int)(s / 60.0) % 60);
    }
}

/* "12.3 GiB", "512 MiB". */
static void append_bytes(char *buf, size_t cap, size_t *len, uint64_t b)
{
    if ((double)b >= GIB) {
        append(buf, cap, len, "%.1f GiB", (double)b / GIB);
    } else {
        append(buf, cap, len, "%.0f MiB", (double)b / MIB);
    }
}

/* The text of one update (no newline). */
static void format_line(const tsr_progress_t *r, int show_memory, char *buf, size_t cap)
{
    uint64_t cells = r->n_tasks > 0 ? r->n_done * BAR_CELLS / r->n_tasks : 0;
    uint64_t pct = r->n_tasks > 0 ? r->n_done * 100 / r->n_tasks : 0;
    size_t len = 0;

    buf[0] = '\0';
    append(buf, cap, &len, "tessera [");
    for (uint64_t i = 0; i < BAR_CELLS; i++) {
        append(buf, cap, &len, "%c", i < cells ? '#' : '-');
    }
    append(buf, cap, &len, "] %3u%%  %llu/%llu tasks  ", (unsigned)pct,
           (unsigned long long)r->n_done, (unsigned long long)r->n_tasks);
    append_time(buf, cap, &len, r->elapsed_s);
    if (!r->is_done && r->remaining_s >= 0.0) {
        append(buf, cap, &len, "  ~");
        append_time(buf, cap, &len, r->remaining_s);
        append(buf, cap, &len, " left");
    }
    if (r->n_failed > 0) {
        append(buf, cap, &len, "  %llu failed", (unsigned long long)r->n_failed);
    }
    if (show_memory) {
        append(buf, cap, &len, "  host ");
        append_bytes(buf, cap, &len, r->host_used);
        append(buf, cap, &len, " of ");
        append_bytes(buf, cap, &len, r->host_limit);
        if (r->disk_bytes > 0) {
            append(buf, cap, &len, ", disk ");
            append_bytes(buf, cap, &len, r->disk_bytes);
        }
    }
}

static void draw(struct tsr__progress *p, const tsr_progress_t *r)
{
    char line[256];

    format_line(r, p->rt->spill.enabled, line, sizeof(line));
    flockfile(stderr);
    if (p->is_tty) {
        /* back to the line's start, the text, then clear what a longer one left */
        fprintf(stderr, "\r%s\033[K%s", line, r->is_done ? "\n" : "");
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
    funlockfile(stderr);
    p->drawn = 1;
}

static void report(struct tsr__progress *p, const struct counts *c, uint64_t now)
{
    tsr_runtime_t *rt = p->rt;
    tsr_progress_t r;

    memset(&r, 0, sizeof(r));
    r.n_tasks = since(c->tasks, p->base.tasks);
    r.n_done = since(c->done, p->base.done);
    r.n_done = r.n_done < r.n_tasks ? r.n_done : r.n_tasks;
    r.n_failed = since(c->failed, p->base.failed);
    r.elapsed_s = (double)since(now, p->t_begin_ns) / 1e9;
    r.is_done = c->is_idle;
    r.remaining_s = -1.0;
    if (r.is_done) {
        r.remaining_s = 0.0;
    } else if (r.n_done > 0) {
        r.remaining_s = r.elapsed_s * (double)(r.n_tasks - r.n_done) / (double)r.n_done;
    }
    r.host_used = tsr__host_in_use(rt);
    r.host_limit = rt->host_limit;
    r.disk_bytes = atomic_load_explicit(&rt->spill.on_disk, memory_order_relaxed);
    if (rt->cfg.progress_fn != NULL) {
        rt->cfg.progress_fn(rt->cfg.progress_user, &r);
    }
    if (p->draws && (r.is_done ? p->drawn : r.elapsed_s >= p->delay_s)) {
        draw(p, &r);
    }
}

static void tick(struct tsr__progress *p)
{
    struct counts c;

    pthread_mutex_lock(&p->tick_mutex);
    c = look(p->rt);
    if (!atomic_load_explicit(&p->in_batch, memory_order_relaxed)) {
        if (c.is_idle) {
            p->base = c;
            pthread_mutex_unlock(&p->tick_mutex);
            return;
        }
        atomic_store_explicit(&p->in_batch, 1, memory_order_relaxed);
        p->drawn = 0;
        p->t_begin_ns = tsr__now_ns();
    }
    report(p, &c, tsr__now_ns());
    if (c.is_idle) {
        atomic_store_explicit(&p->in_batch, 0, memory_order_relaxed);
        p->base = c;
    }
    pthread_mutex_unlock(&p->tick_mutex);
}

void tsr__progress_settle(tsr_runtime_t *rt)
{
    struct tsr__progress *p = rt->progress;

    if (p != NULL && atomic_load_explicit(&p->in_batch, memory_order_relaxed)) {
        tick(p);
    }
}

static void deadline_after(struct timespec *ts, double seconds)
{
    int64_t ns = (int64_t)(seconds * 1e9);

    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ns / 1000000000);
    ts->tv_nsec += (long)(ns % 1000000000);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A look every interval; one more after the stop, which reports the end of the
 * batch (tsr_shutdown waited for every task). */
static void *progress_main(void *arg)
{
    struct tsr__progress *p = arg;
    int stop = 0;

    while (!stop) {
        struct timespec ts;
        int err = 0;

        deadline_after(&ts, p->interval_s);
        pthread_mutex_lock(&p->mutex);
        while (!p->stop && err != ETIMEDOUT) {
            err = pthread_cond_timedwait(&p->wake, &p->mutex, &ts);
        }
        stop = p->stop;
        pthread_mutex_unlock(&p->mutex);
        tick(p);
    }
    return NULL;
}

static void progress_free(struct tsr__progress *p)
{
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mutex);
    pthread_mutex_destroy(&p->tick_mutex);
    free(p);
}

tsr_status_t tsr__progress_start(tsr_runtime_t *rt)
{
    const tsr_config_t *cfg = &rt->cfg;
    int is_tty = isatty(STDERR_FILENO);
    int draws = cfg->progress == TSR_PROGRESS_ON || (cfg->progress == TSR_PROGRESS_AUTO && is_tty);
    struct tsr__progress *p;
    pthread_condattr_t attr;
    int err;

    if (!draws && cfg->progress_fn == NULL) {
        return TSR_OK;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return tsr__fail(TSR_ENOMEM, "tsr_init: out of memory");
    }
    p->rt = rt;
    p->draws = draws;
    p->is_tty = is_tty;
    p->interval_s = cfg->progress_interval_s > 0.0 ? cfg->progress_interval_s
                    : draws && !is_tty             ? LOG_INTERVAL_S
                                                   : TTY_INTERVAL_S;
    p->delay_s = is_tty ? TTY_DELAY_S : p->interval_s;
    p->base = look(rt);
    pthread_mutex_init(&p->mutex, NULL);
    pthread_mutex_init(&p->tick_mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &attr);
    pthread_condattr_destroy(&attr);
    err = pthread_create(&p->thread, NULL, progress_main, p);
    if (err != 0) {
        progress_free(p);
        return tsr__fail(TSR_EBACKEND, "tsr_init: cannot start the progress thread: %s",
                         strerror(err));
    }
    pthread_setname_np(p->thread, "tsr-progress");
    rt->progress = p;
    return TSR_OK;
}

void tsr__progress_stop(tsr_runtime_t *rt)
{
    struct tsr__progress *p = rt->progress;

    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->mutex);
    p->stop = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    pthread_join(p->thread, NULL);
    progress_free(p);
    rt->progress = NULL;
}
