/* documents.c: ERASER documents: splitting text into words and sentences exactly as
 * rationale_benchmark/utils.py does, and loading docs/<docid> files or docs.jsonl (the
 * format is described in eraser.h). */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "common.h"
#include "eraser.h"
#include "jsonv.h"

/* Python's str.isspace() code points, which str.strip() removes. */
static int py_isspace(int32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Code point starting at s[i] (the text is valid UTF-8); *n gets its length in bytes. */
static int32_t decode_at(const char *s, size_t i, size_t len, size_t *n) {
    utf8proc_int32_t c = 0;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
    ASSERT(k > 0);
    *n = (size_t)k;
    return c;
}

/* Python str.strip() on s[a, b): narrows [*a, *b). */
static void py_strip(const char *s, size_t *a, size_t *b) {
    size_t n;
    while (*a < *b && py_isspace(decode_at(s, *a, *b, &n))) *a += n;
    while (*b > *a) {
        size_t start = *b - 1;
        while (start > *a && ((unsigned char)s[start] & 0xc0) == 0x80) start--;
        if (!py_isspace(decode_at(s, start, *b, &n))) break;
        *b = start;
    }
}

static int check_utf8(const char *text, size_t len) {
    for (size_t i = 0; i < len;) {
        if (text[i] == 0) return adp_seterr("NUL byte at offset %zu", i);
        utf8proc_int32_t c;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0) return adp_seterr("invalid UTF-8 at byte offset %zu", i);
        i += (size_t)k;
    }
    return ADP_OK;
}

void eraser_doc_free(eraser_doc *doc) {
    free(doc->docid);
    free(doc->words);
    free(doc->sentence_end);
    free(doc->buf);
    memset(doc, 0, sizeof *doc);
}

int eraser_doc_parse(eraser_doc *doc, const char *docid, const char *text, size_t len, int layout) {
    ASSERT(layout == ERASER_DOCS_DIR || layout == ERASER_DOCS_JSONL);
    memset(doc, 0, sizeof *doc);
    if (check_utf8(text, len) != ADP_OK) return ADP_ERR;
    char *buf = mallocCheck(len + 1);
    memcpy(buf, text, len);
    buf[len] = 0;
    size_t cap_w = 64, cap_s = 8, n_w = 0, n_s = 0;
    size_t *starts = mallocCheck(cap_w * sizeof *starts); /* word start offsets in buf */
    size_t *ends = mallocCheck(cap_w * sizeof *ends);
    size_t *sent = mallocCheck(cap_s * sizeof *sent);
    int dir = layout == ERASER_DOCS_DIR;
    for (size_t pos = 0;;) {
        /* the line [pos, eol) and where the next one starts */
        size_t eol = pos;
        while (eol < len && buf[eol] != '\n' && !(dir && buf[eol] == '\r')) eol++;
        size_t next = eol;
        if (next < len) next += (dir && buf[next] == '\r' && next + 1 < len && buf[next + 1] == '\n') ? 2 : 1;
        size_t a = pos, b = eol;
        py_strip(buf, &a, &b);
        if (!(dir && a == b)) {
            if (a == b) a = b = eol; /* the empty word of an empty line (docs.jsonl only) */
            for (size_t s = a;;) {
                size_t e = s;
                while (e < b && buf[e] != ' ') e++;
                if (e > s || !dir) {
                    if (n_w == cap_w) {
                        cap_w *= 2;
                        starts = reallocCheck(starts, cap_w * sizeof *starts);
                        ends = reallocCheck(ends, cap_w * sizeof *ends);
                    }
                    starts[n_w] = s;
                    ends[n_w++] = e;
                }
                if (e >= b) break;
                s = e + 1;
            }
            if (n_s == cap_s) sent = reallocCheck(sent, (cap_s *= 2) * sizeof *sent);
            sent[n_s++] = n_w;
        }
        if (eol >= len) break;
        pos = next;
    }
    /* Every word ends at a separator, a stripped character or the end of the text, and
     * no two words end at the same byte, so the words can be terminated in place. */
    doc->words = mallocCheck((n_w ? n_w : 1) * sizeof *doc->words);
    for (size_t i = 0; i < n_w; i++) {
        buf[ends[i]] = 0;
        doc->words[i] = buf + starts[i];
    }
    free(starts);
    free(ends);
    doc->docid = strdupCheck(docid);
    doc->n_words = n_w;
    doc->sentence_end = sent;
    doc->n_sentences = n_s;
    doc->buf = buf;
    return ADP_OK;
}

/* ---- the dataset's document table -------------------------------------------------------- */

static int push_doc(eraser_dataset *ds, eraser_doc *doc) {
    if (!strmap_put(&ds->doc_index, doc->docid, strlen(doc->docid), ds->n_docs, NULL)) {
        adp_seterr("document '%s' is defined twice", doc->docid);
        eraser_doc_free(doc);
        return ADP_ERR;
    }
    if (ds->n_docs == ds->cap_docs) {
        ds->cap_docs = ds->cap_docs ? 2 * ds->cap_docs : 64;
        ds->docs = reallocCheck(ds->docs, ds->cap_docs * sizeof *ds->docs);
    }
    ds->docs[ds->n_docs++] = *doc;
    return ADP_OK;
}

const eraser_doc *eraser_find_doc(const eraser_dataset *ds, const char *docid) {
    size_t i = strmap_get(&ds->doc_index, docid, strlen(docid));
    return i == (size_t)-1 ? NULL : &ds->docs[i];
}

int eraser_add_doc(eraser_dataset *ds, const char *docid, const char *const *words, size_t n_words) {
    size_t total = 0;
    for (size_t i = 0; i < n_words; i++) {
        if (strchr(words[i], ' ') || !words[i][0])
            return adp_seterr("document '%s': word %zu is empty or contains a space", docid, i);
        total += strlen(words[i]) + 1;
    }
    eraser_doc doc = {0};
    doc.docid = strdupCheck(docid);
    doc.buf = mallocCheck(total + 1);
    doc.words = mallocCheck((n_words ? n_words : 1) * sizeof *doc.words);
    char *p = doc.buf;
    for (size_t i = 0; i < n_words; i++) {
        size_t k = strlen(words[i]) + 1;
        memcpy(p, words[i], k);
        doc.words[i] = p;
        p += k;
    }
    doc.n_words = n_words;
    doc.sentence_end = mallocCheck(sizeof *doc.sentence_end);
    doc.sentence_end[0] = n_words;
    doc.n_sentences = 1;
    return push_doc(ds, &doc);
}

/* A docid names a file under docs/, so it must be a plain file name. */
static int check_docid_name(const char *docid) {
    if (!docid[0] || !strcmp(docid, ".") || !strcmp(docid, "..") || strchr(docid, '/'))
        return adp_seterr("docid '%s' is not a plain file name", docid);
    return ADP_OK;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int detect_layout(eraser_dataset *ds, const char *dir) {
    if (ds->layout != ERASER_DOCS_NONE) {
        if (dir && ds->dir && strcmp(dir, ds->dir) != 0)
            return adp_seterr("documents already come from %s, not %s", ds->dir, dir);
        return ADP_OK;
    }
    if (!dir) return adp_seterr("no dataset directory given for the documents");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs.jsonl", dir);
    int jsonl = is_file(path);
    snprintf(path, sizeof path, "%s/docs", dir);
    int docs = is_dir(path);
    if (jsonl && docs) return adp_seterr("%s: has both docs/ and docs.jsonl (ERASER allows one)", dir);
    if (!jsonl && !docs) return adp_seterr("%s: has neither docs/ nor docs.jsonl", dir);
    free(ds->dir);
    ds->dir = strdupCheck(dir);
    ds->layout = jsonl ? ERASER_DOCS_JSONL : ERASER_DOCS_DIR;
    return ADP_OK;
}

static int load_doc_file(eraser_dataset *ds, const char *docid) {
    if (check_docid_name(docid) != ADP_OK) return ADP_ERR;
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/%s", ds->dir, docid);
    char *text = NULL;
    size_t len = 0;
    if (adp_read_file(path, &text, &len) != ADP_OK) return ADP_ERR;
    eraser_doc doc;
    int rc = eraser_doc_parse(&doc, docid, text, len, ERASER_DOCS_DIR);
    free(text);
    if (rc != ADP_OK) return adp_preferr("%s: ", path);
    return push_doc(ds, &doc);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int load_docs_dir(eraser_dataset *ds, const char *const *docids, size_t n) {
    if (docids) {
        for (size_t i = 0; i < n; i++)
            if (!eraser_find_doc(ds, docids[i]) && load_doc_file(ds, docids[i]) != ADP_OK) return ADP_ERR;
        return ADP_OK;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/docs", ds->dir);
    DIR *d = opendir(path);
    if (!d) return adp_seterr("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 256, count = 0;
    char **names = mallocCheck(cap * sizeof *names);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        if (count == cap) names = reallocCheck(names, (cap *= 2) * sizeof *names);
        names[count++] = strdupCheck(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, cmp_str);
    int rc = ADP_OK;
    for (size_t i = 0; i < count && rc == ADP_OK; i++)
        if (!eraser_find_doc(ds, names[i])) rc = load_doc_file(ds, names[i]);
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
    return rc;
}

/* docs.jsonl: one {"docid": str, "document": str} per line.  The whole file is scanned
 * (it cannot be indexed without reading it) and the wanted documents are kept. */
static int load_docs_jsonl(eraser_dataset *ds, const char *const *docids, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/docs.jsonl", ds->dir);
    char *text = NULL;
    size_t len = 0;
    if (adp_read_file(path, &text, &len) != ADP_OK) return ADP_ERR;
    strmap wanted, seen;
    strmap_init(&wanted);
    strmap_init(&seen);
    for (size_t i = 0; docids && i < n; i++) strmap_put(&wanted, docids[i], strlen(docids[i]), i, NULL);
    int rc = ADP_OK;
    size_t lineno = 0;
    for (size_t pos = 0; pos < len && rc == ADP_OK;) {
        size_t eol = pos;
        while (eol < len && text[eol] != '\n') eol++;
        lineno++;
        cJSON *j = NULL;
        static const char *const names[] = {"docid", "document"};
        cJSON *it[2];
        char *docid = NULL, *document = NULL;
        if (eol == pos || (eol == pos + 1 && text[pos] == '\r'))
            rc = adp_seterr("empty line");
        else if (jv_parse_line(&j, text + pos, eol - pos) != ADP_OK)
            rc = ADP_ERR;
        else if (jv_members(j, "document", names, it, 2) != ADP_OK)
            rc = ADP_ERR;
        else if (!it[0] || !it[1])
            rc = adp_seterr("document: needs 'docid' and 'document'");
        else if (jv_string(it[0], "docid", &docid) != ADP_OK || jv_string(it[1], "document", &document) != ADP_OK)
            rc = ADP_ERR;
        else if (!strmap_put(&seen, docid, strlen(docid), lineno, NULL))
            rc = adp_seterr("docid '%s' appears twice", docid);
        else if ((!docids || strmap_get(&wanted, docid, strlen(docid)) != (size_t)-1) && !eraser_find_doc(ds, docid)) {
            eraser_doc doc;
            rc = eraser_doc_parse(&doc, docid, document, strlen(document), ERASER_DOCS_JSONL);
            if (rc == ADP_OK) rc = push_doc(ds, &doc);
        }
        if (rc != ADP_OK) adp_preferr("%s:%zu: ", path, lineno);
        free(docid);
        free(document);
        cJSON_Delete(j);
        pos = eol + 1;
    }
    for (size_t i = 0; rc == ADP_OK && docids && i < n; i++)
        if (!eraser_find_doc(ds, docids[i])) rc = adp_seterr("%s: no document '%s'", path, docids[i]);
    strmap_free(&wanted);
    strmap_free(&seen);
    free(text);
    return rc;
}

int eraser_load_docs(eraser_dataset *ds, const char *dir, const char *const *docids, size_t n) {
    if (detect_layout(ds, dir) != ADP_OK) return ADP_ERR;
    if (docids) {
        size_t missing = 0;
        for (size_t i = 0; i < n; i++) missing += !eraser_find_doc(ds, docids[i]);
        if (!missing) return ADP_OK;
    }
    return ds->layout == ERASER_DOCS_DIR ? load_docs_dir(ds, docids, n) : load_docs_jsonl(ds, docids, n);
}
