/* cmd_tokenize.c: `adapler tokenize`, JSON lines in, JSON lines out.
 *
 * Input: one JSON object per line, {"text": "...", "text_pair": "..." (optional, may be
 * null), "id": ... (optional, copied to the output)}.  Blank lines are skipped.
 * Output, one line per input line:
 *   {"id": ..., "input_ids": [...], "token_type_ids": [...], "tokens": [...],
 *    "word_ids": [...], "offsets": [[start, end], ...] (with --offsets)}
 * word_ids: the index of the whitespace word of text (type 0) or text_pair (type 1) each
 * piece comes from, null for [CLS]/[SEP] (as Hugging Face's word_ids()).  offsets: byte
 * span of the piece in its own text, null for specials. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "common.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f, "usage: adapler tokenize --vocab FILE [--max-len N] [--no-lower] [--offsets] [--in FILE] [--out FILE]\n\n"
               "WordPiece-encode JSON lines {\"text\", optional \"text_pair\"} into\n"
               "{\"input_ids\", \"token_type_ids\", \"tokens\", \"word_ids\"} lines, exactly as BERT's tokenizer.\n\n"
               "  --vocab FILE   vocab.txt, one token per line (id = line number)\n"
               "  --max-len N    truncate to N pieces including [CLS]/[SEP], longest first (default 512, 0 = none)\n"
               "  --no-lower     cased model: no lower-casing, no accent stripping\n"
               "  --offsets      also print each piece's byte span in its text\n"
               "  --in FILE      read FILE instead of standard input\n"
               "  --out FILE     write FILE instead of standard output\n");
}

static cJSON *int_array(const int32_t *v, size_t n, int minus1_is_null) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, minus1_is_null && v[i] < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(v[i]));
    return a;
}

/* A JSON string field: NULL if absent or null, ADP_ERR if present but not a string. */
static int get_string(const cJSON *obj, const char *key, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return ADP_OK;
    if (!cJSON_IsString(v)) return adp_seterr("\"%s\" is not a string", key);
    *out = v->valuestring;
    return ADP_OK;
}

/* cJSON strings are NUL-terminated, so a "\u0000" escape would silently cut the text. */
static int has_nul_escape(const char *line, size_t len) {
    for (size_t i = 0; i + 6 <= len; i++)
        if (line[i] == '\\') {
            if (!memcmp(line + i + 1, "u0000", 5)) return 1;
            i++; /* skip the escaped character */
        }
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL, *in_path = NULL, *out_path = NULL;
    long max_len = 512;
    int lower = 1, offsets = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-lower")) {
            lower = 0;
        } else if (!strcmp(a, "--offsets")) {
            offsets = 1;
        } else if (i + 1 < argc && !strcmp(a, "--vocab")) {
            vocab = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--in")) {
            in_path = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--out")) {
            out_path = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--max-len")) {
            if (!cli_parse_int("tokenize", "--max-len", argv[++i], 0, 1L << 30, &max_len)) return 2;
        } else {
            fprintf(stderr, "tokenize: unknown or incomplete option '%s' (try --help)\n", a);
            return 2;
        }
    }
    if (!vocab) {
        fprintf(stderr, "tokenize: --vocab FILE is required (try --help)\n");
        return 2;
    }
    if (max_len == 1 || max_len == 2) {
        fprintf(stderr, "tokenize: --max-len must be 0 or at least 3\n");
        return 2;
    }
    wordpiece wp;
    if (wordpiece_load(&wp, vocab, lower) != ADP_OK) {
        fprintf(stderr, "tokenize: %s\n", adp_errmsg());
        return 1;
    }
    const char *in_name = in_path ? in_path : "<stdin>";
    FILE *in = in_path ? fopen(in_path, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "tokenize: %s: cannot open: %s\n", in_path, strerror(errno));
        wordpiece_free(&wp);
        return 1;
    }
    FILE *out = out_path ? fopen(out_path, "wb") : stdout;
    if (!out) {
        fprintf(stderr, "tokenize: %s: cannot create: %s\n", out_path, strerror(errno));
        if (in != stdin) fclose(in);
        wordpiece_free(&wp);
        return 1;
    }
    wp_encoding enc = {0};
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (strspn(line, " \t") == len) continue;
        cJSON *obj = cJSON_ParseWithLength(line, len);
        const char *text = NULL, *pair = NULL;
        const char *err = NULL;
        if (!obj || !cJSON_IsObject(obj)) err = "not a JSON object";
        else if (has_nul_escape(line, len)) err = "\\u0000 in a string is not supported";
        else if (get_string(obj, "text", &text) != ADP_OK || get_string(obj, "text_pair", &pair) != ADP_OK)
            err = adp_errmsg();
        else if (!text) err = "no \"text\" string";
        else if (wordpiece_encode(&wp, &enc, text, strlen(text), pair, pair ? strlen(pair) : 0, (size_t)max_len) != ADP_OK)
            err = adp_errmsg();
        if (err) {
            fprintf(stderr, "tokenize: %s:%zu: %s\n", in_name, lineno, err);
            cJSON_Delete(obj);
            rc = 1;
            break;
        }
        cJSON *res = cJSON_CreateObject();
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
        if (id) cJSON_AddItemToObject(res, "id", cJSON_Duplicate(id, 1));
        cJSON_AddItemToObject(res, "input_ids", int_array(enc.ids, enc.n, 0));
        cJSON_AddItemToObject(res, "token_type_ids", int_array(enc.type_ids, enc.n, 0));
        cJSON *toks = cJSON_CreateArray();
        for (size_t k = 0; k < enc.n; k++) cJSON_AddItemToArray(toks, cJSON_CreateString(wordpiece_token(&wp, enc.ids[k])));
        cJSON_AddItemToObject(res, "tokens", toks);
        cJSON_AddItemToObject(res, "word_ids", int_array(enc.word_ids, enc.n, 1));
        if (offsets) {
            cJSON *offs = cJSON_CreateArray();
            for (size_t k = 0; k < enc.n; k++) {
                if (enc.start[k] < 0) {
                    cJSON_AddItemToArray(offs, cJSON_CreateNull());
                } else {
                    int pr[2] = {enc.start[k], enc.end[k]};
                    cJSON_AddItemToArray(offs, cJSON_CreateIntArray(pr, 2));
                }
            }
            cJSON_AddItemToObject(res, "offsets", offs);
        }
        char *s = cJSON_PrintUnformatted(res);
        if (!s || fputs(s, out) < 0 || fputc('\n', out) < 0) {
            fprintf(stderr, "tokenize: %s: write error\n", out_path ? out_path : "<stdout>");
            rc = 1;
        }
        cJSON_free(s);
        cJSON_Delete(res);
        cJSON_Delete(obj);
        if (rc) break;
    }
    if (!rc && ferror(in)) {
        fprintf(stderr, "tokenize: %s: read error\n", in_name);
        rc = 1;
    }
    free(line);
    wp_encoding_free(&enc);
    wordpiece_free(&wp);
    if (in != stdin) fclose(in);
    if (out != stdout && fclose(out) != 0 && !rc) {
        fprintf(stderr, "tokenize: %s: write error\n", out_path);
        rc = 1;
    } else if (out == stdout && fflush(out) != 0 && !rc) {
        fprintf(stderr, "tokenize: <stdout>: write error\n");
        rc = 1;
    }
    return rc;
}
