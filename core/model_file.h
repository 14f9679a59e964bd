/* Text files of the cost models (perfmodel.c, xfer_model.c): reading a whole
 * file, replacing one atomically, creating the cache directory, escaping free-form
 * strings into one token and parsing the fields of a line. Private to core/.
 *
 * The parsers take a cursor (`const char **p`), skip blanks, consume one field and
 * return 0, or return -1 and leave the cursor anywhere: a line with any bad field
 * is dropped as a whole. */
#ifndef TSR_CORE_MODEL_FILE_H
#define TSR_CORE_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest model file read; bigger ones are rejected as malformed. */
#define TSR_MF_MAX_BYTES ((size_t)16 << 20)

/* Create `dir` and its missing parents (mode 0755). Borrows dir. Errors:
 * TSR_EINVAL (empty), TSR_ENOMEM, TSR_EBACKEND (detail in tsr_last_error). */
tsr_status_t tsr__mf_mkdirs(const char *dir);

/* Replace `path` by the n_bytes of `text`: written to a temporary file in the same
 * directory, synced, then renamed over path, so readers see the old file or the
 * new one, never a mix. Borrows both. Errors: TSR_ENOMEM, TSR_EBACKEND. */
tsr_status_t tsr__mf_write_atomic(const char *path, const char *text, size_t n_bytes);

/* Read all of `path` (at most TSR_MF_MAX_BYTES, no NUL byte inside). On TSR_OK
 * *text_out is new (free it), NUL-terminated. Errors: TSR_EINVAL (too big, or
 * binary), TSR_ENOMEM, TSR_EBACKEND (cannot open or read; errno kept). */
tsr_status_t tsr__mf_read(const char *path, char **text_out);

/* The next line of a buffer from tsr__mf_read: NUL-terminates it in place (a '\r'
 * before the '\n' is dropped), advances *cursor, returns NULL at the end. */
char *tsr__mf_next_line(char **cursor);

/* The next line that is not blank or a '#' comment, counting every line read
 * in *line_no; NULL at the end. */
char *tsr__mf_next_record(char **cursor, uint32_t *line_no);

/* `s` as one token: bytes outside '!'..'~', and '%', become %XX. Returns new
 * (free it), or NULL when out of memory. */
char *tsr__mf_escape(const char *s);

/* Parse an escaped token (up to a blank or the end) into buf (n bytes, NUL
 * included). -1 on a malformed escape, an escaped NUL, or overflow. */
int tsr__mf_token(const char **p, char *buf, size_t n);

/* Fields: a decimal uint64 (no sign), a uint32 in hex (no 0x), a finite double
 * >= 0. */
int tsr__mf_u64(const char **p, uint64_t *out);
int tsr__mf_hex32(const char **p, uint32_t *out);
int tsr__mf_f64(const char **p, double *out);
/* 0 when only blanks remain, else -1. */
int tsr__mf_end(const char *p);

/* FNV-1a over a string, for hash tables and file names. */
uint32_t tsr__mf_hash_str(const char *s);

#ifdef __cplusplus
}
#endif

#endif /* TSR_CORE_MODEL_FILE_H */
