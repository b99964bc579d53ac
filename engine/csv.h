/* csv.h: a CSV/TSV record reader with line numbers for error messages.
 *
 * Quoting on (RFC 4180, Python's csv.reader defaults): a field that starts with '"' runs to
 * the next '"' not followed by another '"' ("" inside is one quote) and may span lines; it
 * must be followed by the delimiter or the end of the line.  A '"' inside an unquoted
 * field is an ordinary character.  Quoting off (GLUE TSV files): a record is one line and
 * fields are split on the delimiter, nothing else.  In both modes a "\r" before "\n" is
 * dropped and blank lines are skipped. */
#ifndef ADP_CSV_H
#define ADP_CSV_H

#include <stddef.h>

typedef struct {
    const char *path;
    char *data;
    size_t len, pos;
    size_t line;      /* 1-based line where the current record starts */
    size_t next_line; /* line of data[pos] */
    char delim;
    int quoting;
    /* current record: n_field fields, each NUL-terminated */
    char **field;
    size_t *field_len;
    size_t n_field, cap_field;
    char *buf;
    size_t buf_len, buf_cap;
    size_t *field_off;
} csv_reader;

/* Read the whole file.  ADP_ERR (message names the path) if it cannot be read. */
int csv_open(csv_reader *r, const char *path, char delim, int quoting);
/* Next record: 1 = a record, 0 = end of file, ADP_ERR = malformed
 * ("PATH:LINE: unterminated quoted field" / "...: unexpected 'x' after a closing quote"). */
int csv_next(csv_reader *r);
void csv_close(csv_reader *r);
/* Index of the field named `name` in the current record (the header), or -1. */
int csv_find(const csv_reader *r, const char *name);

#endif
