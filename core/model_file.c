/* Model files. Everything here treats file contents as untrusted: sizes are
 * capped, fields are range-checked and a failed parse never leaves partial state
 * with the caller (the callers parse a line fully before applying it). */
#include "core/model_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static int is_dir(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

tsr_status_t tsr__mf_mkdirs(const char *dir)
{
    char *path;
    tsr_status_t st = TSR_OK;

    if (dir == NULL || dir[0] == '\0') {
        return TSR_EINVAL;
    }
    path = strdup(dir);
    if (path == NULL) {
        return TSR_ENOMEM;
    }
    /* Each prefix ending before a '/' (not the root), then the whole path. */
    for (char *c = path + 1;; c++) {
        char saved = *c;

        if (saved != '/' && saved != '\0') {
            continue;
        }
        *c = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            st = tsr__fail(TSR_EBACKEND, "cannot create directory %s: %s", path, strerror(errno));
            break;
        }
        *c = saved;
        if (saved == '\0') {
            break;
        }
    }
    if (st == TSR_OK && !is_dir(dir)) {
        st = tsr__fail(TSR_EBACKEND, "%s is not a directory", dir);
    }
    free(path);
    return st;
}

static int write_all(int fd, const char *text, size_t n_bytes)
{
    while (n_bytes > 0) {
        ssize_t n = write(fd, text, n_bytes);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        text += n;
        n_bytes -= (size_t)n;
    }
    return 0;
}

tsr_status_t tsr__mf_write_atomic(const char *path, const char *text, size_t n_bytes)
{
    size_t n_path = strlen(path);
    char *tmp = malloc(n_path + sizeof(".tmpXXXXXX"));
    int fd;
    int err = 0;

    if (tmp == NULL) {
        return TSR_ENOMEM;
    }
    memcpy(tmp, path, n_path);
    memcpy(tmp + n_path, ".tmpXXXXXX", sizeof(".tmpXXXXXX"));
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = errno;
        free(tmp);
        return tsr__fail(TSR_EBACKEND, "cannot create a file next to %s: %s", path, strerror(err));
    }
    if (write_all(fd, text, n_bytes) != 0 || fsync(fd) != 0) {
        err = errno != 0 ? errno : EIO;
    }
    if (close(fd) != 0 && err == 0) {
        err = errno;
    }
    if (err == 0 && rename(tmp, path) != 0) {
        err = errno;
    }
    if (err != 0) {
        unlink(tmp);
        free(tmp);
        return tsr__fail(TSR_EBACKEND, "cannot write %s: %s", path, strerror(err));
    }
    free(tmp);
    return TSR_OK;
}

tsr_status_t tsr__mf_read(const char *path, char **text_out)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    char *text;
    size_t n;

    if (f == NULL) {
        return tsr__fail(TSR_EBACKEND, "cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) ||
        (uint64_t)sb.st_size > TSR_MF_MAX_BYTES) {
        fclose(f);
        return tsr__fail(TSR_EINVAL, "%s is not a regular file of at most %zu bytes", path,
                         TSR_MF_MAX_BYTES);
    }
    /* Room for the NUL; a file growing meanwhile is read up to its size at fstat. */
    text = malloc((size_t)sb.st_size + 1);
    if (text == NULL) {
        fclose(f);
        return TSR_ENOMEM;
    }
    n = fread(text, 1, (size_t)sb.st_size, f);
    if (ferror(f)) {
        fclose(f);
        free(text);
        return tsr__fail(TSR_EBACKEND, "cannot read %s", path);
    }
    fclose(f);
    if (memchr(text, '\0', n) != NULL) {
        free(text);
        return tsr__fail(TSR_EINVAL, "%s is not text", path);
    }
    text[n] = '\0';
    *text_out = text;
    return TSR_OK;
}

char *tsr__mf_next_line(char **cursor)
{
    char *line = *cursor;
    char *nl;
    size_t n;

    if (*line == '\0') {
        return NULL;
    }
    nl = strchr(line, '\n');
    n = nl != NULL ? (size_t)(nl - line) : strlen(line);
    *cursor = nl != NULL ? nl + 1 : line + n;
    if (n > 0 && line[n - 1] == '\r') {
        n--;
    }
    line[n] = '\0';
    return line;
}

char *tsr__mf_next_record(char **cursor, uint32_t *line_no)
{
    char *line;

    while ((line = tsr__mf_next_line(cursor)) != NULL) {
        (*line_no)++;
        if (tsr__mf_end(line) != 0 && line[strspn(line, " \t")] != '#') {
            return line;
        }
    }
    return NULL;
}

char *tsr__mf_escape(const char *s)
{
    static const char hex[] = "0123456789abcdef";
    char *out = malloc(strlen(s) * 3 + 1);
    char *o = out;

    if (out == NULL) {
        return NULL;
    }
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (*c > ' ' && *c < 0x7f && *c != '%') {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    *o = '\0';
    return out;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

int tsr__mf_token(const char **p, char *buf, size_t n)
{
    const char *c = skip_blanks(*p);
    size_t len = 0;

    for (; *c != '\0' && *c != ' ' && *c != '\t'; c++) {
        int ch = (unsigned char)*c;

        if (ch == '%') {
            int hi = hex_digit(c[1]);
            int lo = hi < 0 ? -1 : hex_digit(c[2]);

            if (lo < 0 || (hi | lo) == 0) {
                return -1;
            }
            ch = hi * 16 + lo;
            c += 2;
        }
        if (len + 1 >= n) {
            return -1;
        }
        buf[len++] = (char)ch;
    }
    buf[len] = '\0';
    *p = c;
    return 0;
}

int tsr__mf_u64(const char **p, uint64_t *out)
{
    const char *c = skip_blanks(*p);
    char *end;
    unsigned long long v;

    if (*c < '0' || *c > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(c, &end, 10);
    if (errno != 0) {
        return -1;
    }
    *out = v;
    *p = end;
    return 0;
}

int tsr__mf_hex32(const char **p, uint32_t *out)
{
    const char *c = skip_blanks(*p);
    char *end;
    unsigned long long v;

    if (hex_digit(*c) < 0) {
        return -1;
    }
    errno = 0;
    v = strtoull(c, &end, 16);
    if (errno != 0 || v > UINT32_MAX || end - c > 8) {
        return -1;
    }
    *out = (uint32_t)v;
    *p = end;
    return 0;
}

int tsr__mf_f64(const char **p, double *out)
{
    const char *c = skip_blanks(*p);
    char *end;
    double v;

    /* strtod would take "inf", "nan", hex floats and a sign: only plain decimals. */
    if ((*c < '0' || *c > '9') && *c != '.') {
        return -1;
    }
    errno = 0;
    v = strtod(c, &end);
    if (end == c || errno == ERANGE || !isfinite(v) || v < 0) {
        return -1;
    }
    *out = v;
    *p = end;
    return 0;
}

int tsr__mf_end(const char *p)
{
    return *skip_blanks(p) == '\0' ? 0 : -1;
}

uint32_t tsr__mf_hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}
