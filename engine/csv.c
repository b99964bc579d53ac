/* csv.c: CSV/TSV records; see csv.h for the dialect. */
#include "csv.h"

#include <string.h>

#include "common.h"

int csv_open(csv_reader *r, const char *path, char delim, int quoting) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->delim = delim;
    r->quoting = quoting;
    r->next_line = 1;
    return adp_read_file(path, &r->data, &r->len);
}

void csv_close(csv_reader *r) {
    free(r->data);
    free(r->field);
    free(r->field_len);
    free(r->field_off);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static void put(csv_reader *r, char c) {
    if (r->buf_len == r->buf_cap) {
        r->buf_cap = r->buf_cap ? 2 * r->buf_cap : 4096;
        r->buf = reallocCheck(r->buf, r->buf_cap);
    }
    r->buf[r->buf_len++] = c;
}

static void end_field(csv_reader *r, size_t start) {
    if (r->n_field == r->cap_field) {
        r->cap_field = r->cap_field ? 2 * r->cap_field : 16;
        r->field = reallocCheck(r->field, r->cap_field * sizeof *r->field);
        r->field_len = reallocCheck(r->field_len, r->cap_field * sizeof *r->field_len);
        r->field_off = reallocCheck(r->field_off, r->cap_field * sizeof *r->field_off);
    }
    r->field_off[r->n_field] = start;
    r->field_len[r->n_field] = r->buf_len - start;
    r->n_field++;
    put(r, 0);
}

int csv_next(csv_reader *r) {
    const char *d = r->data;
    size_t n = r->len;
    /* skip blank lines */
    for (;;) {
        if (r->pos >= n) return 0;
        if (d[r->pos] == '\n') r->pos++, r->next_line++;
        else if (d[r->pos] == '\r' && r->pos + 1 < n && d[r->pos + 1] == '\n') r->pos += 2, r->next_line++;
        else break;
    }
    r->line = r->next_line;
    r->n_field = 0;
    r->buf_len = 0;
    size_t p = r->pos;
    for (;;) { /* one field per iteration */
        size_t start = r->buf_len;
        if (r->quoting && p < n && d[p] == '"') {
            size_t open_line = r->next_line;
            p++;
            for (;;) {
                if (p >= n) {
                    r->pos = n;
                    return adp_seterr("%s:%zu: unterminated quoted field", r->path, open_line);
                }
                char c = d[p++];
                if (c == '"') {
                    if (p < n && d[p] == '"') {
                        put(r, '"');
                        p++;
                        continue;
                    }
                    break;
                }
                if (c == '\n') r->next_line++;
                put(r, c);
            }
            if (p < n && d[p] != r->delim && d[p] != '\n' && !(d[p] == '\r' && (p + 1 == n || d[p + 1] == '\n'))) {
                char c = d[p];
                r->pos = n;
                if ((unsigned char)c >= 32 && (unsigned char)c < 127)
                    return adp_seterr("%s:%zu: unexpected '%c' after a closing quote", r->path, r->next_line, c);
                return adp_seterr("%s:%zu: unexpected byte 0x%02x after a closing quote", r->path, r->next_line,
                                  (unsigned char)c);
            }
        } else {
            while (p < n && d[p] != r->delim && d[p] != '\n') put(r, d[p++]);
            if ((p >= n || d[p] == '\n') && r->buf_len > start && r->buf[r->buf_len - 1] == '\r') r->buf_len--;
        }
        end_field(r, start);
        if (p < n && d[p] == r->delim) {
            p++;
            continue;
        }
        if (p < n && d[p] == '\r') p++;
        if (p < n && d[p] == '\n') p++, r->next_line++;
        break;
    }
    r->pos = p;
    for (size_t i = 0; i < r->n_field; i++) r->field[i] = r->buf + r->field_off[i];
    return 1;
}

int csv_find(const csv_reader *r, const char *name) {
    for (size_t i = 0; i < r->n_field; i++)
        if (!strcmp(r->field[i], name)) return (int)i;
    return -1;
}
