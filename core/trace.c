/* Trace: workers append spans to their own buffer (no sharing on the hot path);
 * at shutdown the spans are written as a Chrome/Perfetto "traceEvents" file. */
#include "core/trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/runtime_impl.h"
#include "core/worker.h"

void tsr__trace_span(struct tsr__trace_buf *buf, uint64_t t0_ns, uint64_t t1_ns, uint64_t task_id,
                     const char *name, int32_t status)
{
    struct trace_event *ev;

    if (buf->n_events == buf->cap_events) {
        size_t cap = buf->cap_events ? 2 * buf->cap_events : 1024;
        struct trace_event *events = realloc(buf->events, cap * sizeof(*events));

        if (events == NULL) {
            return;
        }
        buf->events = events;
        buf->cap_events = cap;
    }
    ev = &buf->events[buf->n_events++];
    ev->t0_ns = t0_ns;
    ev->t1_ns = t1_ns;
    ev->task_id = task_id;
    ev->name = name;
    ev->status = status;
}

void tsr__trace_buf_fini(struct tsr__trace_buf *buf)
{
    free(buf->events);
    buf->events = NULL;
    buf->n_events = 0;
    buf->cap_events = 0;
}

/* Names come from user codelets: escape what JSON requires. */
static void write_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

static void write_worker(FILE *f, const tsr_runtime_t *rt, const struct tsr__worker *w)
{
    fprintf(f,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,"
            "\"args\":{\"name\":\"cpu worker %u\"}}",
            (unsigned)w->index, (unsigned)w->index);
    for (size_t i = 0; i < w->trace.n_events; i++) {
        const struct trace_event *ev = &w->trace.events[i];

        fputs(",\n{\"name\":", f);
        write_json_string(f, ev->name);
        fprintf(f,
                ",\"cat\":\"task\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,"
                "\"args\":{\"id\":%llu,\"status\":\"%s\"}}",
                (unsigned)w->index, (double)(ev->t0_ns - rt->t0_ns) / 1e3,
                (double)(ev->t1_ns - ev->t0_ns) / 1e3, (unsigned long long)ev->task_id,
                tsr_status_str((tsr_status_t)ev->status));
    }
}

tsr_status_t tsr__trace_write(tsr_runtime_t *rt)
{
    FILE *f = fopen(rt->trace_path, "w");
    int failed;

    if (f == NULL) {
        return tsr__fail(TSR_EBACKEND, "trace: cannot write '%s': %s", rt->trace_path,
                         strerror(errno));
    }
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f);
    fputs("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"tessera\"}}", f);
    for (uint32_t i = 0; i < rt->n_workers; i++) {
        write_worker(f, rt, &rt->workers[i]);
    }
    fputs("\n]}\n", f);
    failed = ferror(f);
    failed |= fclose(f) != 0;
    if (failed) {
        return tsr__fail(TSR_EBACKEND, "trace: error writing '%s'", rt->trace_path);
    }
    return TSR_OK;
}
