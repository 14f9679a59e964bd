/* Arrays in files: .npy (NumPy's format) and raw C-order bytes.
 *
 * A store computes the array into chunk handles (or uses the chunks it already
 * has) and writes every chunk with pwrite at its place in the file, by one CPU
 * task per chunk, so the whole array is never gathered in host memory and the
 * chunks are written in parallel. A load reads one chunk per CPU task with pread
 * into a buffer the task allocates (a dynamic-size output), then makes a source
 * array of those handles. Files are little-endian, as is every host Tessera runs
 * on (checked below). */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <tessera/array.h>
#include <tessera/task.h>
#include <unistd.h>

#include "collections/array/array_impl.h"
#include "collections/array/lower.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__)
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "collections/array/io.c reads and writes little-endian data in place"
#endif
#endif

/* .npy: magic, major and minor version, then the header length (2 bytes in
 * version 1, 4 in versions 2 and 3) and the header, a Python dict literal padded
 * with spaces and a newline so that the data starts at a multiple of 64. */
static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
#define NPY_ALIGN 64
/* Largest header a load accepts (a real one is under 300 bytes). */
#define NPY_MAX_HEADER ((uint32_t)1 << 20)

/* Where one chunk lies in the file, and its place in memory: the argument of a
 * read or write task. `path` is only for messages and outlives the task. */
struct file_box {
    int fd;
    uint32_t ndim;
    uint32_t elem_size;
    uint32_t from_whole; /* write: the task reads the whole array's buffer, not a chunk */
    uint64_t base;       /* file offset of element 0 */
    int64_t shape[TSR_MAX_DIMS];
    int64_t cshape[TSR_MAX_DIMS];
    int64_t origin[TSR_MAX_DIMS];
    const char *path;
};

/* ---- runs of a chunk ----------------------------------------------------------------- */

typedef ssize_t (*io_fn)(int fd, char *buf, size_t n, off_t off);

static ssize_t do_pread(int fd, char *buf, size_t n, off_t off)
{
    return pread(fd, buf, n, off);
}

static ssize_t do_pwrite(int fd, char *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

/* All of [buf, buf + n) at file offset `off`, resuming after short transfers and
 * signals. Returns 0, else an errno value (EIO-like -1 for an early end of file). */
static int io_full(io_fn io, int fd, char *buf, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t k = io(fd, buf, n, (off_t)off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            return errno;
        }
        if (k == 0) {
            return -1;
        }
        buf += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* Transfer the chunk `b` describes between the file and `buf` (the C-order chunk,
 * or with from_whole the C-order array), one contiguous run of the file at a time:
 * the trailing dimensions the chunk spans in full make one run. */
static int box_io(io_fn io, const struct file_box *b, char *buf)
{
    int64_t fstride[TSR_MAX_DIMS];
    int64_t idx[TSR_MAX_DIMS] = {0};
    int64_t run = 1;
    int j = (int)b->ndim;
    size_t done = 0;

    for (int d = (int)b->ndim - 1; d >= 0; d--) {
        fstride[d] = run;
        run *= b->shape[d];
    }
    run = 1;
    while (j > 0 && (j == (int)b->ndim || b->cshape[j] == b->shape[j])) {
        run *= b->cshape[--j];
    }
    for (;;) {
        int64_t off = 0;
        size_t n = (size_t)run * b->elem_size;
        for (uint32_t d = 0; d < b->ndim; d++) {
            off += (b->origin[d] + (d < (uint32_t)j ? idx[d] : 0)) * fstride[d];
        }
        char *p = buf + (b->from_whole ? (size_t)off * b->elem_size : done);
        int err = io_full(io, b->fd, p, n, b->base + (uint64_t)off * b->elem_size);
        if (err != 0) {
            return err;
        }
        done += n;
        int d = j - 1;
        while (d >= 0 && ++idx[d] == b->cshape[d]) {
            idx[d--] = 0;
        }
        if (d < 0) {
            return 0;
        }
    }
}

static size_t box_bytes(const struct file_box *b)
{
    size_t n = b->elem_size;
    for (uint32_t d = 0; d < b->ndim; d++) {
        n *= (size_t)b->cshape[d];
    }
    return n;
}

static size_t array_bytes(const struct file_box *b)
{
    size_t n = b->elem_size;
    for (uint32_t d = 0; d < b->ndim; d++) {
        n *= (size_t)b->shape[d];
    }
    return n;
}

static tsr_status_t io_failed(tsr_task_ctx_t *ctx, const struct file_box *b, int err,
                              const char *verb)
{
    if (err < 0) {
        tsr_task_ctx_fail(ctx, "cannot %s %s: unexpected end of file", verb, b->path);
    } else {
        tsr_task_ctx_fail(ctx, "cannot %s %s: %s", verb, b->path, strerror(err));
    }
    return TSR_EIO;
}

static tsr_status_t write_task(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const struct file_box *b = arg;
    size_t want = b->from_whole ? array_bytes(b) : box_bytes(b);
    int err;

    if (bufs[0].ptr == NULL || bufs[0].n_bytes < want) {
        tsr_task_ctx_fail(ctx, "cannot write %s: a buffer of %zu bytes for %zu bytes of data",
                          b->path, bufs[0].n_bytes, want);
        return TSR_EINVAL;
    }
    err = box_io(do_pwrite, b, bufs[0].ptr);
    return err != 0 ? io_failed(ctx, b, err, "write") : TSR_OK;
}

static tsr_status_t read_task(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const struct file_box *b = arg;
    void *p = NULL;
    tsr_status_t st;
    int err;

    (void)bufs;
    st = tsr_task_ctx_alloc(ctx, 0, box_bytes(b), &p);
    if (st != TSR_OK) {
        tsr_task_ctx_fail(ctx, "cannot read %s: no memory for a chunk of %zu bytes", b->path,
                          box_bytes(b));
        return st;
    }
    err = box_io(do_pread, b, p);
    return err != 0 ? io_failed(ctx, b, err, "read") : TSR_OK;
}

static const tsr_codelet_t write_codelet = {
    "array_file_write", {write_task, NULL, NULL}, 1, {TSR_R}, NULL, NULL};
static const tsr_codelet_t read_codelet = {
    "array_file_read", {read_task, NULL, NULL}, 1, {TSR_W}, NULL, NULL};

/* Submit the task of chunk `c` of `a` on `handle`, pinned to the CPU (the file
 * is read and written by the host). */
static tsr_status_t submit_box(const tsr_array_t *a, int64_t c, struct file_box *b,
                               const tsr_codelet_t *cl, tsr_data_t *handle, tsr_future_t **f_out)
{
    int64_t coords[TSR_MAX_DIMS];
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;

    tsr__array_chunk_coords(a, c, coords);
    tsr__array_chunk_box(a, coords, b->cshape, b->origin);
    desc.codelet = cl;
    desc.handles = &handle;
    desc.n_handles = 1;
    desc.arg = b;
    desc.arg_size = sizeof(*b);
    desc.pin = TSR_PIN_KIND;
    desc.pin_value = TSR_DEVICE_CPU;
    return tsr_task_submit(a->rt, &desc, f_out);
}

static void box_init(struct file_box *b, const tsr_array_t *a, int fd, uint64_t base,
                     const char *path)
{
    memset(b, 0, sizeof(*b));
    b->fd = fd;
    b->ndim = a->ndim;
    b->elem_size = (uint32_t)tsr_dtype_size(a->dtype);
    b->base = base;
    memcpy(b->shape, a->shape, sizeof(b->shape));
    b->path = path;
}

/* Wait for `f` and release it. Its failure is reported under `fn` unless an
 * earlier one was (`prev` not TSR_OK), whose message is kept. */
static tsr_status_t wait_future(tsr_future_t *f, tsr_status_t prev, const char *fn)
{
    tsr_status_t st = tsr_future_wait(f);

    if (st != TSR_OK && prev == TSR_OK) {
        st = tsr__array_fail(st, "%s: %s", fn, tsr_future_message(f));
    }
    tsr_future_release(f);
    return st;
}

/* ---- .npy header ------------------------------------------------------------------- */

static const char *const NPY_DESCR[TSR_N_DTYPES] = {"|b1", "|u1", "<u2", "<i4",
                                                    "<i8", "<f4", "<f8"};

/* The header of `a` (magic to newline) in buf; returns its length. */
static size_t npy_header(const tsr_array_t *a, char *buf, size_t cap)
{
    char dict[64 + TSR_MAX_DIMS * 24];
    size_t pre = 10;
    size_t len;
    size_t total;
    int n = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     NPY_DESCR[a->dtype]);

    for (uint32_t d = 0; d < a->ndim; d++) {
        n += snprintf(dict + n, sizeof(dict) - (size_t)n, d + 1 < a->ndim ? "%lld, " : "%lld",
                      (long long)a->shape[d]);
    }
    n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%s), }", a->ndim == 1 ? "," : "");
    len = (size_t)n;
    total = (pre + len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    if (total - pre > 0xFFFF) {
        /* Version 2.0: a 4-byte length. Unreachable with TSR_MAX_DIMS dimensions,
         * kept so that the writer follows the format whatever the header. */
        pre = 12;
        total = (pre + len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    }
    if (total > cap) {
        return 0;
    }
    memcpy(buf, NPY_MAGIC, sizeof(NPY_MAGIC));
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) {
        buf[8 + i] = (char)(((total - pre) >> (8 * i)) & 0xFF);
    }
    memcpy(buf + pre, dict, len);
    memset(buf + pre + len, ' ', total - pre - len - 1);
    buf[total - 1] = '\n';
    return total;
}

/* What a .npy header says. */
struct npy_info {
    tsr_dtype_t dtype;
    uint32_t ndim;
    int64_t shape[TSR_MAX_DIMS];
    int is_fortran;
    uint32_t seen; /* bit 0 descr, 1 fortran_order, 2 shape */
};

/* A cursor over the header text; `err` gets the first problem. */
struct cursor {
    const char *p;
    const char *end;
    char err[160];
};

static int fail_at(struct cursor *c, const char *what)
{
    if (c->err[0] == '\0') {
        snprintf(c->err, sizeof(c->err), "%s", what);
    }
    return -1;
}

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

/* Consume `ch` after optional white space; 1 if it was there. */
static int accept(struct cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes into out[0..cap). */
static int parse_string(struct cursor *c, char *out, size_t cap)
{
    char q;
    size_t n = 0;

    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) {
        return fail_at(c, "expected a quoted string");
    }
    q = *c->p++;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) {
            return fail_at(c, "string too long or with escapes");
        }
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) {
        return fail_at(c, "unterminated string");
    }
    c->p++;
    out[n] = '\0';
    return 0;
}

/* A non-negative Python integer (with an optional Python 2 'L'). */
static int parse_int(struct cursor *c, int64_t *out)
{
    int64_t v = 0;
    const char *start;

    skip_ws(c);
    start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (INT64_MAX - (*c->p - '0')) / 10) {
            return fail_at(c, "a dimension does not fit in 64 bits");
        }
        v = v * 10 + (*c->p++ - '0');
    }
    if (c->p == start) {
        return fail_at(c, "expected a non-negative integer in 'shape'");
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) {
        c->p++;
    }
    *out = v;
    return 0;
}

/* A tuple of integers: (), (3,), (3, 4), trailing comma optional. */
static int parse_shape(struct cursor *c, struct npy_info *h)
{
    if (!accept(c, '(')) {
        return fail_at(c, "'shape' is not a tuple");
    }
    h->ndim = 0;
    while (!accept(c, ')')) {
        int64_t v;
        if (h->ndim == TSR_MAX_DIMS) {
            return fail_at(c, "more than TSR_MAX_DIMS (8) dimensions");
        }
        if (parse_int(c, &v) != 0) {
            return -1;
        }
        h->shape[h->ndim++] = v;
        if (!accept(c, ',')) {
            if (!accept(c, ')')) {
                return fail_at(c, "expected ',' or ')' in 'shape'");
            }
            break;
        }
    }
    return 0;
}

static int parse_bool(struct cursor *c, int *out)
{
    skip_ws(c);
    if (c->end - c->p >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *out = 1;
        return 0;
    }
    if (c->end - c->p >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *out = 0;
        return 0;
    }
    return fail_at(c, "'fortran_order' is not True or False");
}

/* The Tessera dtype of a NumPy type string: an optional byte order ('<', '=' or
 * none: little-endian; '|' and '>' also for one-byte types, where order means
 * nothing) and one of b1 u1 u2 i4 i8 f4 f8. */
static int descr_dtype(struct cursor *c, const char *s)
{
    static const char *const codes[TSR_N_DTYPES] = {"b1", "u1", "u2", "i4", "i8", "f4", "f8"};
    char order = s[0] != '\0' && strchr("<>|=", s[0]) != NULL ? s[0] : '=';
    const char *code = s + (order == s[0]);

    for (int t = 0; t < TSR_N_DTYPES; t++) {
        if (strcmp(code, codes[t]) != 0) {
            continue;
        }
        if (tsr_dtype_size((tsr_dtype_t)t) == 1 || order == '<' || order == '=') {
            return t;
        }
        snprintf(c->err, sizeof(c->err), "dtype '%.40s' %s (only little-endian data is supported)",
                 s, order == '>' ? "is big-endian" : "has no byte order");
        return -1;
    }
    snprintf(c->err, sizeof(c->err),
             "dtype '%.40s' is not supported (Tessera has |b1 |u1 <u2 <i4 <i8 <f4 <f8)", s);
    return -1;
}

static int parse_entry(struct cursor *c, struct npy_info *h)
{
    char key[32];
    char descr[64];
    int t;

    if (parse_string(c, key, sizeof(key)) != 0 || !accept(c, ':')) {
        return fail_at(c, "expected 'key': value");
    }
    if (strcmp(key, "descr") == 0) {
        if (accept(c, '[')) {
            return fail_at(c, "structured dtypes are not supported");
        }
        if (parse_string(c, descr, sizeof(descr)) != 0 || (t = descr_dtype(c, descr)) < 0) {
            return -1;
        }
        h->dtype = (tsr_dtype_t)t;
        h->seen |= 1u;
        return 0;
    }
    if (strcmp(key, "fortran_order") == 0) {
        h->seen |= 2u;
        return parse_bool(c, &h->is_fortran);
    }
    if (strcmp(key, "shape") == 0) {
        h->seen |= 4u;
        return parse_shape(c, h);
    }
    snprintf(c->err, sizeof(c->err), "unknown key '%s'", key);
    return -1;
}

/* Parse the dict literal text[0..n): keys in any order, white space and a
 * trailing comma anywhere Python allows them. */
static int parse_header(const char *text, size_t n, struct npy_info *h, char *err, size_t cap)
{
    struct cursor c = {text, text + n, {0}};
    int rc = accept(&c, '{') ? 0 : fail_at(&c, "the header is not a dict");
    int more = rc == 0 && !accept(&c, '}');

    memset(h, 0, sizeof(*h));
    while (rc == 0 && more) {
        rc = parse_entry(&c, h);
        if (rc == 0 && accept(&c, ',')) {
            more = !accept(&c, '}');
        } else if (rc == 0 && accept(&c, '}')) {
            more = 0;
        } else if (rc == 0) {
            rc = fail_at(&c, "expected ',' or '}' after a value");
        }
    }
    skip_ws(&c);
    if (rc == 0 && c.p != c.end) {
        rc = fail_at(&c, "text after the dict");
    }
    if (rc == 0 && h->seen != 7u) {
        rc = fail_at(&c, "'descr', 'fortran_order' or 'shape' is missing");
    }
    snprintf(err, cap, "%s", c.err);
    return rc;
}

/* Read and parse the header of the .npy file fd; *data_off_out is where the
 * data starts. */
static tsr_status_t npy_read_header(int fd, const char *path, struct npy_info *h,
                                    uint64_t *data_off_out)
{
    unsigned char pre[12];
    char err[160];
    uint32_t hlen;
    uint32_t npre;
    char *text;
    int rc;

    rc = io_full(do_pread, fd, (char *)pre, sizeof(pre), 0);
    if (rc > 0) {
        return tsr__array_fail(TSR_EIO, "tsr_array_from_npy: cannot read %s: %s", path,
                               strerror(rc));
    }
    if (rc < 0 || memcmp(pre, NPY_MAGIC, sizeof(NPY_MAGIC)) != 0) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_from_npy: %s is not a .npy file (%s)", path,
                               rc < 0 ? "too short" : "no \\x93NUMPY magic");
    }
    if (pre[6] < 1 || pre[6] > 3) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_from_npy: %s: .npy format version %u.%u is "
                               "not supported (1.0, 2.0, 3.0)",
                               path, pre[6], pre[7]);
    }
    npre = pre[6] == 1 ? 10 : 12;
    hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    if (npre == 12) {
        hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    }
    if (hlen > NPY_MAX_HEADER) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_from_npy: %s: header of %u bytes (at most %u)", path,
                               (unsigned)hlen, (unsigned)NPY_MAX_HEADER);
    }
    text = malloc(hlen + 1u);
    if (text == NULL) {
        return tsr__array_fail(TSR_ENOMEM, "tsr_array_from_npy: out of memory for the header");
    }
    rc = io_full(do_pread, fd, text, hlen, npre);
    if (rc == 0) {
        rc = parse_header(text, hlen, h, err, sizeof(err)) == 0 ? 0 : -2;
    }
    free(text);
    if (rc > 0) {
        return tsr__array_fail(TSR_EIO, "tsr_array_from_npy: cannot read %s: %s", path,
                               strerror(rc));
    }
    if (rc != 0) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_from_npy: %s: bad .npy header: %s", path,
                               rc == -1 ? "the file ends inside it" : err);
    }
    *data_off_out = npre + (uint64_t)hlen;
    return TSR_OK;
}

/* ---- store ------------------------------------------------------------------------- */

/* The chunk handles of `a` for a store: its own (*owned_out NULL), its whole
 * buffer (*whole_out), or computed now (*owned_out, to unregister). */
static tsr_status_t store_sources(tsr_array_t *a, tsr_data_t ***chunks_out, tsr_data_t ***owned_out,
                                  tsr_data_t **whole_out)
{
    tsr_status_t st;

    *owned_out = NULL;
    *whole_out = NULL;
    *chunks_out = NULL;
    if (tsr__array_is_data(a) && a->chunks != NULL) {
        *chunks_out = a->chunks;
        return TSR_OK;
    }
    if (tsr__array_is_data(a) && a->whole != NULL) {
        *whole_out = a->whole;
        return TSR_OK;
    }
    st = tsr__array_materialize(a, owned_out);
    *chunks_out = *owned_out;
    return st;
}

static int open_for_store(const char *path, const char *fn, tsr_status_t *st)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);

    *st = fd >= 0 ? TSR_OK
                  : tsr__array_fail(TSR_EIO, "%s: cannot create %s: %s", fn, path, strerror(errno));
    return fd;
}

static tsr_status_t write_header(tsr_array_t *a, int fd, const char *path, const char *fn,
                                 uint64_t *base_out)
{
    char hdr[512];
    size_t n = npy_header(a, hdr, sizeof(hdr));
    int err = n > 0 ? io_full(do_pwrite, fd, hdr, n, 0) : EOVERFLOW;

    if (err != 0) {
        return tsr__array_fail(TSR_EIO, "%s: cannot write %s: %s", fn, path,
                               strerror(err > 0 ? err : EIO));
    }
    *base_out = n;
    return TSR_OK;
}

/* One write task per chunk. A chunk computed for the store (`owned`) is
 * unregistered as soon as its task is done, so memory is given back as the
 * file fills. */
static tsr_status_t write_chunks(tsr_array_t *a, int fd, uint64_t base, const char *path,
                                 const char *fn, tsr_data_t **chunks, int owned, tsr_data_t *whole)
{
    int64_t n = tsr__array_n_chunks(a);
    tsr_future_t **futs = calloc((size_t)(n > 0 ? n : 1), sizeof(*futs));
    struct file_box b;
    tsr_status_t st = futs != NULL ? TSR_OK : tsr__array_fail(TSR_ENOMEM, "%s: out of memory", fn);
    int64_t n_sub = 0;

    box_init(&b, a, fd, base, path);
    b.from_whole = whole != NULL;
    while (st == TSR_OK && n_sub < n) {
        st = submit_box(a, n_sub, &b, &write_codelet, whole != NULL ? whole : chunks[n_sub],
                        &futs[n_sub]);
        n_sub += st == TSR_OK;
    }
    if (st != TSR_OK && futs != NULL) {
        st = tsr__array_fail(st, "%s: %s", fn, tsr_last_error());
    }
    for (int64_t c = 0; c < n; c++) {
        tsr_status_t s = c < n_sub ? wait_future(futs[c], st, fn) : TSR_OK;
        st = st != TSR_OK ? st : s;
        if (owned) {
            tsr_data_unregister(chunks[c]);
        }
    }
    free(futs);
    return st;
}

static tsr_status_t store(tsr_array_t *a, const char *path, int with_header, const char *fn)
{
    tsr_data_t **chunks;
    tsr_data_t **owned;
    tsr_data_t *whole;
    uint64_t base = 0;
    tsr_status_t st;
    int fd;

    if (a == NULL || path == NULL) {
        return tsr__array_fail(TSR_EINVAL, "%s: array or path is NULL", fn);
    }
    /* Computed before the file is opened, so that a failed compute leaves an
     * existing file as it was. */
    st = store_sources(a, &chunks, &owned, &whole);
    if (st != TSR_OK) {
        return tsr__array_fail(st, "%s: %s", fn, tsr_last_error());
    }
    fd = open_for_store(path, fn, &st);
    if (st == TSR_OK && with_header) {
        st = write_header(a, fd, path, fn, &base);
    }
    if (st == TSR_OK) {
        st = write_chunks(a, fd, base, path, fn, chunks, owned != NULL, whole);
    } else {
        for (int64_t c = 0; owned != NULL && c < tsr__array_n_chunks(a); c++) {
            tsr_data_unregister(owned[c]);
        }
    }
    free(owned);
    if (fd >= 0 && close(fd) != 0 && st == TSR_OK) {
        st = tsr__array_fail(TSR_EIO, "%s: cannot write %s: %s", fn, path, strerror(errno));
    }
    if (fd >= 0 && st != TSR_OK) {
        unlink(path);
    }
    return st;
}

tsr_status_t tsr_array_to_npy(tsr_array_t *a, const char *path)
{
    return store(a, path, 1, "tsr_array_to_npy");
}

tsr_status_t tsr_array_to_raw(tsr_array_t *a, const char *path)
{
    return store(a, path, 0, "tsr_array_to_raw");
}

/* ---- load -------------------------------------------------------------------------- */

/* What to load: dtype, shape and chunks, from a .npy header or a spec. */
struct load_req {
    tsr_runtime_t *rt;
    const char *path;
    const char *fn;
    int fd;
    uint64_t base;
    tsr_dtype_t dtype;
    uint32_t ndim;
    const int64_t *shape;
    const int64_t *chunks; /* NULL: automatic */
};

static tsr_status_t check_load(const struct load_req *r)
{
    uint64_t n_bytes = tsr_dtype_size(r->dtype);
    struct stat sb;

    if (tsr_dtype_size(r->dtype) == 0 || r->ndim > TSR_MAX_DIMS) {
        return tsr__array_fail(TSR_EINVAL, "%s: dtype %d or %u dimensions (at most %d)", r->fn,
                               (int)r->dtype, (unsigned)r->ndim, TSR_MAX_DIMS);
    }
    for (uint32_t d = 0; d < r->ndim; d++) {
        if (r->shape[d] < 0) {
            return tsr__array_fail(TSR_EINVAL, "%s: dimension %u has size %lld", r->fn,
                                   (unsigned)d, (long long)r->shape[d]);
        }
        if (r->chunks != NULL && r->chunks[d] < 0) {
            return tsr__array_fail(TSR_EINVAL, "%s: chunk size %lld along dimension %u", r->fn,
                                   (long long)r->chunks[d], (unsigned)d);
        }
        if (r->shape[d] > 0 && n_bytes > (uint64_t)INT64_MAX / (uint64_t)r->shape[d]) {
            return tsr__array_fail(TSR_EINVAL, "%s: the array's size overflows", r->fn);
        }
        n_bytes *= (uint64_t)r->shape[d];
    }
    if (fstat(r->fd, &sb) != 0) {
        return tsr__array_fail(TSR_EIO, "%s: cannot stat %s: %s", r->fn, r->path, strerror(errno));
    }
    if ((uint64_t)sb.st_size < r->base || (uint64_t)sb.st_size - r->base < n_bytes) {
        return tsr__array_fail(TSR_EINVAL,
                               "%s: %s has %lld bytes, too short for %llu bytes of "
                               "data at offset %llu",
                               r->fn, r->path, (long long)sb.st_size, (unsigned long long)n_bytes,
                               (unsigned long long)r->base);
    }
    return TSR_OK;
}

/* One read task per chunk into a new handle; waits for all of them. On TSR_OK
 * *handles_out is a new array of the chunk handles. */
static tsr_status_t read_chunks(const struct load_req *r, tsr_array_t *a, tsr_data_t ***handles_out)
{
    int64_t n = tsr__array_n_chunks(a);
    tsr_data_t **hs = calloc((size_t)(n > 0 ? n : 1), sizeof(*hs));
    tsr_future_t **futs = calloc((size_t)(n > 0 ? n : 1), sizeof(*futs));
    struct file_box b;
    tsr_status_t st = TSR_OK;
    int64_t n_sub = 0;

    if (hs == NULL || futs == NULL) {
        free(hs);
        free(futs);
        return tsr__array_fail(TSR_ENOMEM, "%s: out of memory", r->fn);
    }
    box_init(&b, a, r->fd, r->base, r->path);
    while (st == TSR_OK && n_sub < n) {
        st = tsr_data_create(r->rt, &hs[n_sub]);
        if (st == TSR_OK) {
            st = submit_box(a, n_sub, &b, &read_codelet, hs[n_sub], &futs[n_sub]);
            /* A handle whose task was not submitted is unregistered below. */
            n_sub += st == TSR_OK;
        }
    }
    if (st != TSR_OK) {
        st = tsr__array_fail(st, "%s: %s", r->fn, tsr_last_error());
    }
    for (int64_t c = 0; c < n_sub; c++) {
        tsr_status_t s = wait_future(futs[c], st, r->fn);
        st = st != TSR_OK ? st : s;
    }
    free(futs);
    if (st != TSR_OK) {
        for (int64_t c = 0; c < n; c++) {
            tsr_data_unregister(hs[c]);
        }
        free(hs);
        return st;
    }
    *handles_out = hs;
    return TSR_OK;
}

static tsr_status_t load(const struct load_req *r, tsr_array_t **out)
{
    tsr_array_t *a = NULL;
    tsr_data_t **hs = NULL;
    tsr_status_t st = check_load(r);

    if (st == TSR_OK) {
        st = tsr__array_new(r->rt, r->dtype, r->ndim, r->shape, r->chunks, &a);
    }
    if (st == TSR_OK) {
        st = read_chunks(r, a, &hs);
    }
    if (st != TSR_OK) {
        tsr_array_release(a);
        return st;
    }
    tsr__array_become_source(a, hs);
    *out = a;
    return TSR_OK;
}

static int open_for_load(const char *path, const char *fn, tsr_status_t *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *st = fd >= 0 ? TSR_OK
                  : tsr__array_fail(TSR_EIO, "%s: cannot open %s: %s", fn, path, strerror(errno));
    return fd;
}

/* Whether the C-order and Fortran-order layouts of `h` are the same bytes: at
 * most one dimension larger than 1. */
static int order_irrelevant(const struct npy_info *h)
{
    uint32_t n_big = 0;
    for (uint32_t d = 0; d < h->ndim; d++) {
        n_big += h->shape[d] > 1;
    }
    return n_big <= 1;
}

tsr_status_t tsr_array_from_npy(tsr_runtime_t *rt, const char *path, const int64_t *chunks,
                                tsr_array_t **out)
{
    struct load_req r = {rt, path, "tsr_array_from_npy", -1, 0, TSR_FLOAT64, 0, NULL, NULL};
    struct npy_info h;
    tsr_status_t st;

    if (rt == NULL || path == NULL || out == NULL) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_from_npy: runtime, path or out is NULL");
    }
    r.fd = open_for_load(path, r.fn, &st);
    if (st == TSR_OK) {
        st = npy_read_header(r.fd, path, &h, &r.base);
    }
    if (st == TSR_OK && h.is_fortran && !order_irrelevant(&h)) {
        st = tsr__array_fail(TSR_EINVAL,
                             "tsr_array_from_npy: %s is in Fortran order (only C "
                             "order is supported)",
                             path);
    }
    if (st == TSR_OK) {
        r.dtype = h.dtype;
        r.ndim = h.ndim;
        r.shape = h.shape;
        r.chunks = chunks;
        st = load(&r, out);
    }
    if (r.fd >= 0) {
        close(r.fd);
    }
    return st;
}

tsr_status_t tsr_array_from_raw(tsr_runtime_t *rt, const char *path, const tsr_array_spec_t *spec,
                                uint64_t offset, tsr_array_t **out)
{
    struct load_req r = {rt, path, "tsr_array_from_raw", -1, offset, TSR_FLOAT64, 0, NULL, NULL};
    tsr_status_t st;

    if (rt == NULL || path == NULL || spec == NULL || out == NULL) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_from_raw: runtime, path, spec or out is NULL");
    }
    if (offset > (uint64_t)INT64_MAX) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_from_raw: offset %llu is too large",
                               (unsigned long long)offset);
    }
    r.dtype = spec->dtype;
    r.ndim = spec->ndim;
    r.shape = spec->shape;
    r.chunks = spec->chunks;
    r.fd = open_for_load(path, r.fn, &st);
    if (st == TSR_OK) {
        st = load(&r, out);
    }
    if (r.fd >= 0) {
        close(r.fd);
    }
    return st;
}
