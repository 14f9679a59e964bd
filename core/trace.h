/* Per-worker trace buffers and the Chrome/Perfetto JSON writer. Private to core/. */
#ifndef TSR_CORE_TRACE_H
#define TSR_CORE_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/runtime.h>

struct trace_event {
    uint64_t t0_ns;
    uint64_t t1_ns;
    uint64_t value; /* task id, or bytes of a copy */
    const char *name;
    int32_t status;
    uint16_t src_node; /* copies; the node of a memory counter */
    uint16_t dst_node;
    uint32_t is_copy; /* 1: a copy, 2: a memory counter (value: bytes in use) */
};

struct tsr__trace_buf {
    struct trace_event *events;
    size_t n_events;
    size_t cap_events;
};

/* Append a span; drops it (and says so once at shutdown) when out of memory. */
void tsr__trace_span(struct tsr__trace_buf *buf, uint64_t t0_ns, uint64_t t1_ns, uint64_t task_id,
                     const char *name, int32_t status);
/* Append a copy between memory nodes. */
void tsr__trace_copy(struct tsr__trace_buf *buf, uint64_t t0_ns, uint64_t t1_ns, uint32_t src_node,
                     uint32_t dst_node, uint64_t n_bytes);
void tsr__trace_buf_fini(struct tsr__trace_buf *buf);
/* Memory node `node` now has `used_bytes` in replicas (a counter track per node).
 * Thread-safe; a no-op without a trace. */
void tsr__trace_memory(tsr_runtime_t *rt, uint32_t node, uint64_t used_bytes);
/* Write the spans of every worker of rt to rt's trace path. */
tsr_status_t tsr__trace_write(tsr_runtime_t *rt);

#endif /* TSR_CORE_TRACE_H */
