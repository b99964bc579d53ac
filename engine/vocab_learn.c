/* vocab_learn.c: WordPiece vocabulary learning by frequency-ranked pair merges; see
 * vocab_learn.h for the algorithm.
 *
 * Data structures (the classic incremental BPE trainer): every distinct word is an array of
 * symbol ids with a frequency; pair counts live in a hash table keyed by (left, right), and
 * each pair remembers the words it occurs in, so a merge touches only those words.  The
 * best pair comes from a max-heap with lazy deletion: whenever a count changes the pair is
 * pushed again, and a popped entry whose count is no longer current is discarded. */
#include "vocab_learn.h"

#include <string.h>

#include "common.h"

const char *const VOCAB_SPECIALS[VOCAB_N_SPECIAL] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

void vocab_learner_init(vocab_learner *vl, int lower) {
    memset(vl, 0, sizeof *vl);
    vl->lower = lower;
    symtab_init(&vl->words);
    basic_tokenizer_init(&vl->bt, lower);
}

void vocab_learner_free(vocab_learner *vl) {
    symtab_free(&vl->words);
    free(vl->freq);
    basic_tokenizer_free(&vl->bt);
    memset(vl, 0, sizeof *vl);
}

int vocab_learner_add(vocab_learner *vl, const char *text, size_t len) {
    if (basic_tokenize(&vl->bt, text, len) != ADP_OK) return ADP_ERR;
    vl->n_texts++;
    for (size_t t = 0; t < vl->bt.n_tok; t++) {
        const basic_token *tk = &vl->bt.tok[t];
        int added = 0;
        int32_t *v = symtab_put(&vl->words, vl->bt.buf + tk->off, tk->len, (int32_t)vl->words.n, &added);
        if (added) {
            if (vl->words.n > vl->cap) {
                vl->cap = vl->cap ? 2 * vl->cap : 4096;
                vl->freq = reallocCheck(vl->freq, vl->cap * sizeof *vl->freq);
            }
            vl->freq[*v] = 0;
        }
        vl->freq[*v]++;
        vl->n_words++;
    }
    return ADP_OK;
}

void vocab_tokens_free(char **tokens, size_t n) {
    for (size_t i = 0; i < n; i++) free(tokens[i]);
    free(tokens);
}

/* ---- the trainer ---- */

typedef struct {
    int32_t a, b;
    int64_t count;
    int32_t *where; /* words holding the pair (may repeat, may be stale) */
    size_t n_where, cap_where;
    uint32_t touched; /* merge step that last changed the count */
} pair_stat;

typedef struct {
    int64_t count;
    int32_t pair;
} heap_item;

typedef struct {
    symtab syms;       /* symbol string -> id */
    int32_t **word;    /* per word: its symbols */
    size_t *word_len;  /* current number of symbols */
    int64_t *word_freq;
    uint32_t *word_stamp;
    size_t n_word;
    pair_stat *pairs;
    size_t n_pairs, cap_pairs;
    uint64_t *pkey; /* pair hash table: key (a << 32 | b), value pairs index + 1 */
    int32_t *pval;
    size_t pslots;
    heap_item *heap;
    size_t n_heap, cap_heap;
    int32_t *touched;
    size_t n_touched, cap_touched;
    uint32_t step;
} trainer;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static void pair_table_grow(trainer *t) {
    size_t ns = t->pslots ? 2 * t->pslots : 1 << 16;
    uint64_t *k = mallocCheck(ns * sizeof *k);
    int32_t *v = callocCheck(ns, sizeof *v);
    for (size_t i = 0; i < t->n_pairs; i++) {
        uint64_t key = ((uint64_t)(uint32_t)t->pairs[i].a << 32) | (uint32_t)t->pairs[i].b;
        size_t s = mix64(key) & (ns - 1);
        while (v[s]) s = (s + 1) & (ns - 1);
        k[s] = key, v[s] = (int32_t)(i + 1);
    }
    free(t->pkey);
    free(t->pval);
    t->pkey = k, t->pval = v, t->pslots = ns;
}

/* Index of pair (a, b), created with count 0 if new. */
static int32_t pair_get(trainer *t, int32_t a, int32_t b) {
    if (2 * (t->n_pairs + 1) > t->pslots) pair_table_grow(t);
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t s = mix64(key) & (t->pslots - 1);
    while (t->pval[s]) {
        if (t->pkey[s] == key) return t->pval[s] - 1;
        s = (s + 1) & (t->pslots - 1);
    }
    if (t->n_pairs == t->cap_pairs) {
        t->cap_pairs = t->cap_pairs ? 2 * t->cap_pairs : 1 << 14;
        t->pairs = reallocCheck(t->pairs, t->cap_pairs * sizeof *t->pairs);
    }
    t->pairs[t->n_pairs] = (pair_stat){.a = a, .b = b};
    t->pkey[s] = key, t->pval[s] = (int32_t)(t->n_pairs + 1);
    return (int32_t)t->n_pairs++;
}

static void touch(trainer *t, int32_t p) {
    if (t->pairs[p].touched == t->step) return;
    t->pairs[p].touched = t->step;
    if (t->n_touched == t->cap_touched) {
        t->cap_touched = t->cap_touched ? 2 * t->cap_touched : 1024;
        t->touched = reallocCheck(t->touched, t->cap_touched * sizeof *t->touched);
    }
    t->touched[t->n_touched++] = p;
}

static void pair_add(trainer *t, int32_t a, int32_t b, int64_t n, int32_t w) {
    int32_t p = pair_get(t, a, b);
    pair_stat *ps = &t->pairs[p];
    ps->count += n;
    if (n > 0) {
        if (ps->n_where == ps->cap_where) {
            ps->cap_where = ps->cap_where ? 2 * ps->cap_where : 4;
            ps->where = reallocCheck(ps->where, ps->cap_where * sizeof *ps->where);
        }
        ps->where[ps->n_where++] = w;
    }
    touch(t, p);
}

/* Heap order: larger count first, then the smaller (left, right) strings. */
static int heap_before(const trainer *t, heap_item x, heap_item y) {
    if (x.count != y.count) return x.count > y.count;
    const pair_stat *px = &t->pairs[x.pair], *py = &t->pairs[y.pair];
    int c = strcmp(symtab_key(&t->syms, (size_t)px->a), symtab_key(&t->syms, (size_t)py->a));
    if (c) return c < 0;
    return strcmp(symtab_key(&t->syms, (size_t)px->b), symtab_key(&t->syms, (size_t)py->b)) < 0;
}

static void heap_push(trainer *t, heap_item it) {
    if (t->n_heap == t->cap_heap) {
        t->cap_heap = t->cap_heap ? 2 * t->cap_heap : 1 << 14;
        t->heap = reallocCheck(t->heap, t->cap_heap * sizeof *t->heap);
    }
    size_t i = t->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_before(t, it, t->heap[parent])) break;
        t->heap[i] = t->heap[parent];
        i = parent;
    }
    t->heap[i] = it;
}

static heap_item heap_pop(trainer *t) {
    heap_item top = t->heap[0], last = t->heap[--t->n_heap];
    size_t i = 0, n = t->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(t, t->heap[c + 1], t->heap[c])) c++;
        if (!heap_before(t, t->heap[c], last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n) t->heap[i] = last;
    return top;
}

static void push_touched(trainer *t) {
    for (size_t i = 0; i < t->n_touched; i++) {
        int32_t p = t->touched[i];
        if (t->pairs[p].count > 0) heap_push(t, (heap_item){t->pairs[p].count, p});
    }
    t->n_touched = 0;
}

static int32_t intern(trainer *t, const char *s, size_t len, int *added) {
    return *symtab_put(&t->syms, s, len, (int32_t)t->syms.n, added);
}

static int cmp_str(const void *x, const void *y) {
    const char *a = *(char *const *)x, *b = *(char *const *)y;
    int ca = a[0] == '#' && a[1] == '#', cb = b[0] == '#' && b[1] == '#';
    if (ca != cb) return ca - cb;
    return strcmp(a, b);
}

static void trainer_free(trainer *t) {
    symtab_free(&t->syms);
    for (size_t w = 0; w < t->n_word; w++) free(t->word[w]);
    free(t->word);
    free(t->word_len);
    free(t->word_freq);
    free(t->word_stamp);
    for (size_t p = 0; p < t->n_pairs; p++) free(t->pairs[p].where);
    free(t->pairs);
    free(t->pkey);
    free(t->pval);
    free(t->heap);
    free(t->touched);
}

int vocab_learner_build(vocab_learner *vl, size_t size, int64_t min_freq, char ***tokens_out, size_t *n_out,
                        size_t *n_alphabet) {
    trainer t;
    memset(&t, 0, sizeof t);
    symtab_init(&t.syms);
    t.n_word = vl->words.n;
    t.word = callocCheck(t.n_word, sizeof *t.word);
    t.word_len = callocCheck(t.n_word, sizeof *t.word_len);
    t.word_freq = callocCheck(t.n_word, sizeof *t.word_freq);
    t.word_stamp = callocCheck(t.n_word, sizeof *t.word_stamp);
    char buf[8];
    for (size_t w = 0; w < t.n_word; w++) {
        const char *s = symtab_key(&vl->words, w);
        size_t len = vl->words.entries[w].key_len, nc = 0;
        t.word[w] = mallocCheck((len ? len : 1) * sizeof(int32_t));
        t.word_freq[w] = vl->freq[vl->words.entries[w].value];
        for (size_t i = 0; i < len;) {
            size_t cl = 1;
            while (i + cl < len && ((uint8_t)s[i + cl] & 0xC0) == 0x80) cl++;
            size_t bl = 0;
            if (i > 0) buf[bl++] = '#', buf[bl++] = '#';
            memcpy(buf + bl, s + i, cl);
            t.word[w][nc++] = intern(&t, buf, bl + cl, NULL);
            i += cl;
        }
        t.word_len[w] = nc;
    }
    size_t n_alpha = t.syms.n;
    if (n_alphabet) *n_alphabet = n_alpha;
    if (size < VOCAB_N_SPECIAL + n_alpha) {
        trainer_free(&t);
        return adp_seterr("vocabulary size %zu cannot hold the %d special tokens and the %zu characters of the corpus "
                          "(every character gets a piece; use at least %zu)",
                          size, VOCAB_N_SPECIAL, n_alpha, VOCAB_N_SPECIAL + n_alpha);
    }
    size_t n_tok = 0, cap_tok = size;
    char **tok = mallocCheck(cap_tok * sizeof *tok);
    for (int i = 0; i < VOCAB_N_SPECIAL; i++) tok[n_tok++] = strdupCheck(VOCAB_SPECIALS[i]);
    for (size_t i = 0; i < n_alpha; i++) tok[n_tok++] = strdupCheck(symtab_key(&t.syms, i));
    qsort(tok + VOCAB_N_SPECIAL, n_alpha, sizeof *tok, cmp_str);

    t.step = 1;
    for (size_t w = 0; w < t.n_word; w++)
        for (size_t i = 0; i + 1 < t.word_len[w]; i++) pair_add(&t, t.word[w][i], t.word[w][i + 1], t.word_freq[w], (int32_t)w);
    push_touched(&t);

    char *merged = NULL;
    size_t merged_cap = 0;
    while (n_tok < size && t.n_heap > 0) {
        heap_item top = heap_pop(&t);
        pair_stat *best = &t.pairs[top.pair];
        if (top.count != best->count) continue; /* stale entry */
        if (best->count < min_freq) break;
        int32_t a = best->a, b = best->b;
        const char *sa = symtab_key(&t.syms, (size_t)a), *sb = symtab_key(&t.syms, (size_t)b) + 2;
        size_t la = strlen(sa), lb = strlen(sb);
        if (la + lb + 1 > merged_cap) merged = reallocCheck(merged, merged_cap = 2 * (la + lb + 1));
        memcpy(merged, sa, la);
        memcpy(merged + la, sb, lb);
        merged[la + lb] = 0;
        int added = 0;
        int32_t ab = intern(&t, merged, la + lb, &added);
        if (added) tok[n_tok++] = strdupCheck(merged);
        t.step++;
        best = &t.pairs[top.pair];
        size_t nw = best->n_where;
        int32_t *where = best->where;
        best->where = NULL, best->n_where = best->cap_where = 0;
        for (size_t k = 0; k < nw; k++) {
            int32_t w = where[k];
            if (t.word_stamp[w] == t.step) continue;
            t.word_stamp[w] = t.step;
            int32_t *s = t.word[w];
            size_t n = t.word_len[w];
            int64_t f = t.word_freq[w];
            for (size_t i = 0; i + 1 < n;) {
                if (s[i] != a || s[i + 1] != b) {
                    i++;
                    continue;
                }
                if (i > 0) pair_add(&t, s[i - 1], a, -f, w);
                if (i + 2 < n) pair_add(&t, b, s[i + 2], -f, w);
                pair_add(&t, a, b, -f, w);
                s[i] = ab;
                memmove(s + i + 1, s + i + 2, (n - i - 2) * sizeof *s);
                n--;
                if (i > 0) pair_add(&t, s[i - 1], ab, f, w);
                if (i + 1 < n) pair_add(&t, ab, s[i + 1], f, w);
                i++;
            }
            t.word_len[w] = n;
        }
        free(where);
        push_touched(&t);
    }
    free(merged);
    trainer_free(&t);
    *tokens_out = tok;
    *n_out = n_tok;
    return ADP_OK;
}

int vocab_write(const char *path, char *const *tokens, size_t n) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(tokens[i]) + 1;
    char *buf = mallocCheck(total + 1), *p = buf;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(tokens[i]);
        memcpy(p, tokens[i], l);
        p += l;
        *p++ = '\n';
    }
    int rc = adp_write_file_atomic(path, buf, (size_t)(p - buf));
    free(buf);
    return rc;
}
