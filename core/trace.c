/* Trace: workers append spans to their own buffer (no sharing on the hot path);
 * at shutdown the spans are written as a Chrome/Perfetto "traceEvents" file. */
#include "core/trace.h"
#include "core/vtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/runtime_impl.h"
#include "core/worker.h"

static struct trace_event *append(struct tsr__trace_buf *buf)
{
    if (buf->n_events == buf->cap_events) {
        size_t cap = buf->cap_events ? 2 * buf->cap_events : 1024;
        struct trace_event *events = realloc(buf->events, cap * sizeof(*events));

        if (events == NULL) {
            return NULL;
        }
        buf->events = events;
        buf->cap_events = cap;
    }
    return memset(&buf->events[buf->n_events++], 0, sizeof(struct trace_event));
}

void tsr__trace_span(struct tsr__trace_buf *buf, uint64_t t0_ns, uint64_t t1_ns, uint64_t task_id,
                     const char *name, int32_t status)
{
    struct trace_event *ev = append(buf);

    if (ev != NULL) {
        ev->t0_ns = t0_ns;
        ev->t1_ns = t1_ns;
        ev->value = task_id;
        ev->name = name;
        ev->status = status;
    }
}

void tsr__trace_copy(struct tsr__trace_buf *buf, uint64_t t0_ns, uint64_t t1_ns, uint32_t src_node,
                     uint32_t dst_node, uint64_t n_bytes)
{
    struct trace_event *ev = append(buf);

    if (ev != NULL) {
        ev->t0_ns = t0_ns;
        ev->t1_ns = t1_ns;
        ev->value = n_bytes;
        ev->src_node = (uint16_t)src_node;
        ev->dst_node = (uint16_t)dst_node;
        ev->is_copy = 1;
    }
}

void tsr__trace_memory(tsr_runtime_t *rt, uint32_t node, uint64_t used_bytes)
{
    struct trace_event *ev;

    if (rt->trace_path == NULL) {
        return;
    }
    pthread_mutex_lock(&rt->mem_trace_mutex);
    ev = append(&rt->mem_trace);
    if (ev != NULL) {
        ev->t0_ns = rt->vt != NULL ? rt->t0_ns + tsr__vt_now_ns(rt) : tsr__now_ns();
        ev->t1_ns = ev->t0_ns;
        ev->value = used_bytes;
        ev->name = NULL;
        ev->status = 0;
        ev->src_node = (uint16_t)node;
        ev->dst_node = (uint16_t)node;
        ev->is_copy = 2;
    }
    pthread_mutex_unlock(&rt->mem_trace_mutex);
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

static void write_event(FILE *f, const tsr_runtime_t *rt, const struct tsr__worker *w,
                        const struct trace_event *ev)
{
    double ts_us = (double)(ev->t0_ns - rt->t0_ns) / 1e3;
    double dur_us = (double)(ev->t1_ns - ev->t0_ns) / 1e3;

    if (ev->is_copy == 2) {
        fprintf(f,
                ",\n{\"name\":\"memory %s\",\"cat\":\"memory\",\"ph\":\"C\",\"pid\":1,"
                "\"ts\":%.3f,\"args\":{\"used_bytes\":%llu}}",
                tsr__node_name(rt, ev->src_node), ts_us, (unsigned long long)ev->value);
        return;
    }
    if (ev->is_copy) {
        fprintf(f,
                ",\n{\"name\":\"copy %s->%s\",\"cat\":\"copy\",\"ph\":\"X\",\"pid\":1,"
                "\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"bytes\":%llu}}",
                tsr__node_name(rt, ev->src_node), tsr__node_name(rt, ev->dst_node),
                (unsigned)w->index, ts_us, dur_us, (unsigned long long)ev->value);
        return;
    }
    fputs(",\n{\"name\":", f);
    write_json_string(f, ev->name);
    fprintf(f,
            ",\"cat\":\"task\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,"
            "\"args\":{\"id\":%llu,\"status\":\"%s\"}}",
            (unsigned)w->index, ts_us, dur_us, (unsigned long long)ev->value,
            tsr_status_str((tsr_status_t)ev->status));
}

static void write_worker(FILE *f, const tsr_runtime_t *rt, const struct tsr__worker *w)
{
    fprintf(f,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,"
            "\"args\":{\"name\":\"%s worker %u\"}}",
            (unsigned)w->index, w->dev->name, (unsigned)(w->index - w->dev->first_worker));
    for (size_t i = 0; i < w->trace.n_events; i++) {
        write_event(f, rt, w, &w->trace.events[i]);
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
    for (size_t i = 0; i < rt->mem_trace.n_events; i++) {
        write_event(f, rt, &rt->workers[0], &rt->mem_trace.events[i]);
    }
    fputs("\n]}\n", f);
    failed = ferror(f);
    failed |= fclose(f) != 0;
    if (failed) {
        return tsr__fail(TSR_EBACKEND, "trace: error writing '%s'", rt->trace_path);
    }
    return TSR_OK;
}
