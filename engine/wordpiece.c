/* wordpiece.c: vocabulary loading and greedy longest-match-first WordPiece encoding. */
#include "wordpiece.h"

#include <string.h>

#include "common.h"

static int32_t special_id(const wordpiece *wp, const char *tok) { return wordpiece_id(wp, tok); }

int wordpiece_from_list(wordpiece *wp, const char *const *tokens, size_t n, int lower) {
    memset(wp, 0, sizeof *wp);
    symtab_init(&wp->map);
    wp->lower = lower;
    if (n >= INT32_MAX) return adp_seterr("vocabulary too large (%zu entries)", n);
    wp->tokens = mallocCheck((n ? n : 1) * sizeof *wp->tokens);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(tokens[i]);
        if (utf8_validate(tokens[i], len) != ADP_OK) {
            adp_preferr("line %zu: ", i + 1);
            wp->n = i;
            wordpiece_free(wp);
            return ADP_ERR;
        }
        wp->tokens[i] = strdupCheck(tokens[i]);
        wp->n = i + 1;
        *symtab_put(&wp->map, tokens[i], len, 0, NULL) = (int32_t)i;
        size_t b = len >= 2 && tokens[i][0] == '#' && tokens[i][1] == '#' ? len - 2 : len;
        if (b > wp->max_bytes) wp->max_bytes = b;
    }
    wp->unk_id = special_id(wp, "[UNK]");
    wp->cls_id = special_id(wp, "[CLS]");
    wp->sep_id = special_id(wp, "[SEP]");
    wp->pad_id = special_id(wp, "[PAD]");
    wp->mask_id = special_id(wp, "[MASK]");
    const char *missing = wp->unk_id < 0 ? "[UNK]" : wp->cls_id < 0 ? "[CLS]" : wp->sep_id < 0 ? "[SEP]" : NULL;
    if (missing) {
        wordpiece_free(wp);
        return adp_seterr("vocabulary has no %s token", missing);
    }
    return ADP_OK;
}

int wordpiece_load(wordpiece *wp, const char *path, int lower) {
    char *data = NULL;
    size_t len = 0;
    memset(wp, 0, sizeof *wp);
    if (adp_read_file(path, &data, &len) != ADP_OK) return ADP_ERR;
    size_t n = 0, cap = 1024;
    const char **toks = mallocCheck(cap * sizeof *toks);
    for (char *p = data, *end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        size_t tl = (size_t)(e - p);
        if (tl && p[tl - 1] == '\r') tl--;
        if (memchr(p, 0, tl)) {
            free(toks);
            free(data);
            return adp_seterr("%s:%zu: NUL byte in token", path, n + 1);
        }
        p[tl] = 0;
        if (n == cap) toks = reallocCheck(toks, (cap *= 2) * sizeof *toks);
        toks[n++] = p;
        p = e + 1;
    }
    if (n == 0) {
        free(toks);
        free(data);
        return adp_seterr("%s: empty vocabulary", path);
    }
    int rc = wordpiece_from_list(wp, toks, n, lower);
    free(toks);
    free(data);
    if (rc != ADP_OK) return adp_preferr("%s:", path), ADP_ERR;
    return ADP_OK;
}

void wordpiece_free(wordpiece *wp) {
    for (size_t i = 0; i < wp->n; i++) free(wp->tokens[i]);
    free(wp->tokens);
    symtab_free(&wp->map);
    memset(wp, 0, sizeof *wp);
}

int32_t wordpiece_id(const wordpiece *wp, const char *token) {
    int32_t *v = symtab_get(&wp->map, token, strlen(token));
    return v ? *v : -1;
}

const char *wordpiece_token(const wordpiece *wp, int32_t id) {
    return id >= 0 && (size_t)id < wp->n ? wp->tokens[id] : NULL;
}

/* Id of bytes[0..len), prefixed with "##" when cont; -1 if absent.  Hashes the prefix and
 * the bytes in one stream so nothing is copied. */
static int32_t lookup(const wordpiece *wp, int cont, const char *bytes, size_t len) {
    const symtab *m = &wp->map;
    uint32_t h = 2166136261u;
    if (cont) h = (h ^ '#') * 16777619u, h = (h ^ '#') * 16777619u;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)bytes[i]) * 16777619u;
    size_t klen = len + (cont ? 2 : 0);
    size_t mask = m->nslots - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        uint32_t e = m->slots[s];
        if (!e) return -1;
        const symtab_entry *en = &m->entries[e - 1];
        if (en->hash != h || en->key_len != klen) continue;
        const char *k = m->keys + en->key_off;
        if (cont && (k[0] != '#' || k[1] != '#')) continue;
        if (memcmp(k + (cont ? 2 : 0), bytes, len) == 0) return en->value;
    }
}

static void pieces_push(struct wp_pieces *p, int32_t id, int32_t word, int32_t s, int32_t e) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 256;
        p->id = reallocCheck(p->id, p->cap * sizeof *p->id);
        p->word = reallocCheck(p->word, p->cap * sizeof *p->word);
        p->start = reallocCheck(p->start, p->cap * sizeof *p->start);
        p->end = reallocCheck(p->end, p->cap * sizeof *p->end);
    }
    p->id[p->n] = id, p->word[p->n] = word, p->start[p->n] = s, p->end[p->n] = e;
    p->n++;
}

/* WordPiece of every basic token of text into out. */
static int tokenize_into(const wordpiece *wp, wp_encoding *enc, struct wp_pieces *out, const char *text,
                         size_t len, size_t *n_words) {
    basic_tokenizer *bt = &enc->bt;
    if (bt->lower != wp->lower) {
        basic_tokenizer_free(bt);
        basic_tokenizer_init(bt, wp->lower);
    }
    out->n = 0;
    if (basic_tokenize(bt, text, len) != ADP_OK) return ADP_ERR;
    *n_words = bt->n_words;
    for (size_t t = 0; t < bt->n_tok; t++) {
        const basic_token *tk = &bt->tok[t];
        const uint32_t *cb = bt->cp_byte + tk->cp_off;
        const uint32_t *ss = bt->cp_src_start + tk->cp_off, *se = bt->cp_src_end + tk->cp_off;
        size_t nc = tk->n_cp;
        if (nc > WP_MAX_WORD_CHARS) {
            pieces_push(out, wp->unk_id, tk->word, (int32_t)ss[0], (int32_t)se[nc - 1]);
            continue;
        }
        size_t mark = out->n, start = 0;
        while (start < nc) {
            int32_t found = -1;
            size_t end = nc;
            for (; end > start; end--) {
                size_t nb = cb[end] - cb[start];
                if (nb > wp->max_bytes) continue;
                found = lookup(wp, start > 0, bt->buf + cb[start], nb);
                if (found >= 0) break;
            }
            if (found < 0) {
                out->n = mark;
                pieces_push(out, wp->unk_id, tk->word, (int32_t)ss[0], (int32_t)se[nc - 1]);
                break;
            }
            pieces_push(out, found, tk->word, (int32_t)ss[start], (int32_t)se[end - 1]);
            start = end;
        }
    }
    return ADP_OK;
}

static void out_reserve(wp_encoding *enc, size_t n) {
    if (n <= enc->cap) return;
    size_t cap = enc->cap ? enc->cap : 256;
    while (cap < n) cap *= 2;
    enc->ids = reallocCheck(enc->ids, cap * sizeof *enc->ids);
    enc->type_ids = reallocCheck(enc->type_ids, cap * sizeof *enc->type_ids);
    enc->word_ids = reallocCheck(enc->word_ids, cap * sizeof *enc->word_ids);
    enc->start = reallocCheck(enc->start, cap * sizeof *enc->start);
    enc->end = reallocCheck(enc->end, cap * sizeof *enc->end);
    enc->cap = cap;
}

static void out_push(wp_encoding *enc, int32_t id, int32_t type, int32_t word, int32_t s, int32_t e) {
    size_t i = enc->n++;
    enc->ids[i] = id, enc->type_ids[i] = type, enc->word_ids[i] = word, enc->start[i] = s, enc->end[i] = e;
}

static void out_copy(wp_encoding *enc, const struct wp_pieces *p, size_t n, int32_t type) {
    for (size_t i = 0; i < n; i++) out_push(enc, p->id[i], type, p->word[i], p->start[i], p->end[i]);
}

int wordpiece_tokenize(const wordpiece *wp, wp_encoding *enc, const char *text, size_t len) {
    enc->n = enc->n_a = enc->n_b = enc->n_truncated = enc->n_words_a = enc->n_words_b = 0;
    if (tokenize_into(wp, enc, &enc->a, text, len, &enc->n_words_a) != ADP_OK) return ADP_ERR;
    out_reserve(enc, enc->a.n);
    out_copy(enc, &enc->a, enc->a.n, 0);
    enc->n_a = enc->a.n;
    return ADP_OK;
}

int wordpiece_encode(const wordpiece *wp, wp_encoding *enc, const char *text, size_t len, const char *pair,
                     size_t pair_len, size_t max_len) {
    enc->n = enc->n_a = enc->n_b = enc->n_truncated = enc->n_words_a = enc->n_words_b = 0;
    size_t nspecial = pair ? 3 : 2;
    if (max_len && max_len < nspecial)
        return adp_seterr("max_len %zu leaves no room for the %zu special tokens", max_len, nspecial);
    if (tokenize_into(wp, enc, &enc->a, text, len, &enc->n_words_a) != ADP_OK) return adp_preferr("text: ");
    enc->b.n = 0;
    if (pair && tokenize_into(wp, enc, &enc->b, pair, pair_len, &enc->n_words_b) != ADP_OK)
        return adp_preferr("text_pair: ");
    size_t na = enc->a.n, nb = enc->b.n;
    if (max_len) {
        size_t budget = max_len - nspecial;
        while (na + nb > budget) {
            if (na > nb) na--;
            else nb--;
        }
    }
    enc->n_truncated = enc->a.n + enc->b.n - na - nb;
    enc->n_a = na, enc->n_b = nb;
    out_reserve(enc, na + nb + nspecial);
    out_push(enc, wp->cls_id, 0, -1, -1, -1);
    out_copy(enc, &enc->a, na, 0);
    out_push(enc, wp->sep_id, 0, -1, -1, -1);
    if (pair) {
        out_copy(enc, &enc->b, nb, 1);
        out_push(enc, wp->sep_id, 1, -1, -1, -1);
    }
    return ADP_OK;
}

void wp_encoding_free(wp_encoding *enc) {
    free(enc->ids);
    free(enc->type_ids);
    free(enc->word_ids);
    free(enc->start);
    free(enc->end);
    basic_tokenizer_free(&enc->bt);
    struct wp_pieces *ps[2] = {&enc->a, &enc->b};
    for (int k = 0; k < 2; k++) {
        free(ps[k]->id);
        free(ps[k]->word);
        free(ps[k]->start);
        free(ps[k]->end);
    }
    memset(enc, 0, sizeof *enc);
}
