/* basic_tokenizer.c: BERT's BasicTokenizer; see basic_tokenizer.h for the exact rules.
 *
 * One pass over the input: characters are classified (separator / dropped / CJK / other)
 * and collected into a "segment", the same unit Python's BasicTokenizer lower-cases: a
 * whitespace word after CJK characters were spaced out.  Each segment is then normalised
 * (lower-case, NFD, strip Mn) and split on punctuation.  ASCII takes table look-ups only;
 * utf8proc is consulted for the rest. */
#include "basic_tokenizer.h"

#include <string.h>
#include <utf8proc.h>

#include "common.h"

enum { CL_OTHER = 0, CL_SEP = 1, CL_DROP = 2, CL_CJK = 3 };

/* ASCII: class, punctuation flag. */
static const uint8_t ASCII_CLASS[128] = {
    ['\t'] = CL_SEP, ['\n'] = CL_SEP, ['\r'] = CL_SEP, [' '] = CL_SEP,
    [0] = CL_DROP, [1] = CL_DROP, [2] = CL_DROP, [3] = CL_DROP, [4] = CL_DROP, [5] = CL_DROP,
    [6] = CL_DROP, [7] = CL_DROP, [8] = CL_DROP, [11] = CL_DROP, [12] = CL_DROP, [14] = CL_DROP,
    [15] = CL_DROP, [16] = CL_DROP, [17] = CL_DROP, [18] = CL_DROP, [19] = CL_DROP, [20] = CL_DROP,
    [21] = CL_DROP, [22] = CL_DROP, [23] = CL_DROP, [24] = CL_DROP, [25] = CL_DROP, [26] = CL_DROP,
    [27] = CL_DROP, [28] = CL_DROP, [29] = CL_DROP, [30] = CL_DROP, [31] = CL_DROP, [127] = CL_DROP,
};

static int ascii_punct(int32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

int basic_is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static int classify(int32_t cp) {
    if (cp < 128) return ASCII_CLASS[cp];
    if (cp == 0xFFFD) return CL_DROP;
    utf8proc_category_t cat = utf8proc_category(cp);
    switch (cat) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
        return CL_DROP;
    case UTF8PROC_CATEGORY_ZS:
        return CL_SEP;
    default:
        break;
    }
    if (cp == 0x2028 || cp == 0x2029) return CL_SEP;
    return basic_is_cjk(cp) ? CL_CJK : CL_OTHER;
}

int basic_is_separator(int32_t cp) { return classify(cp) == CL_SEP; }
int basic_is_dropped(int32_t cp) { return classify(cp) == CL_DROP; }

int basic_is_punct(int32_t cp) {
    if (cp < 128) return ascii_punct(cp);
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return 1;
    default:
        return 0;
    }
}

/* Unicode Case_Ignorable: Word_Break MidLetter/MidNumLet/Single_Quote, or Mn Me Cf Lm Sk
 * (in ASCII: apostrophe, period, colon, and the Sk characters ^ and `). */
static int is_case_ignorable(int32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0x5E: case 0x60: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55:
    case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    default:
        break;
    }
    if (c < 128) return 0;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK:
        return 1;
    default:
        return 0;
    }
}

/* Unicode Cased: Lowercase or Uppercase or Lt.  Letters with a case mapping, plus the few
 * Other_Lowercase/Other_Uppercase characters without one that are not case-ignorable. */
static int is_cased(int32_t c) {
    if (c < 128) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
        return 1;
    default:
        break;
    }
    if (utf8proc_tolower(c) != c || utf8proc_toupper(c) != c) return 1;
    return c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
           (c >= 0x1F170 && c <= 0x1F189);
}

/* CPython's handle_capital_sigma: U+03A3 at seg[i] lower-cases to final sigma U+03C2 when
 * preceded by a cased letter and not followed by one (case-ignorable characters skipped). */
static int32_t lower_sigma(const int32_t *seg, size_t n, size_t i) {
    size_t j = i;
    int32_t c = 0;
    while (j > 0) {
        c = seg[--j];
        if (!is_case_ignorable(c)) break;
        c = 0;
    }
    int final = c != 0 && is_cased(c);
    if (final) {
        for (j = i + 1; j < n; j++) {
            c = seg[j];
            if (!is_case_ignorable(c)) break;
        }
        final = j == n || !is_cased(c);
    }
    return final ? 0x3C2 : 0x3C3;
}

void basic_tokenizer_init(basic_tokenizer *bt, int lower) {
    memset(bt, 0, sizeof *bt);
    bt->lower = lower;
}

void basic_tokenizer_free(basic_tokenizer *bt) {
    free(bt->tok);
    free(bt->buf);
    free(bt->cp_byte);
    free(bt->cp_src_start);
    free(bt->cp_src_end);
    free(bt->seg_cp);
    free(bt->seg_s);
    free(bt->seg_e);
    free(bt->norm_cp);
    free(bt->norm_s);
    free(bt->norm_e);
    memset(bt, 0, sizeof *bt);
}

static void reserve_cp(basic_tokenizer *bt, size_t extra) {
    if (bt->n_cp + extra + 1 <= bt->cap_cp) return;
    size_t cap = bt->cap_cp ? bt->cap_cp : 256;
    while (cap < bt->n_cp + extra + 1) cap *= 2;
    bt->cp_byte = reallocCheck(bt->cp_byte, cap * sizeof *bt->cp_byte);
    bt->cp_src_start = reallocCheck(bt->cp_src_start, cap * sizeof *bt->cp_src_start);
    bt->cp_src_end = reallocCheck(bt->cp_src_end, cap * sizeof *bt->cp_src_end);
    bt->cap_cp = cap;
}

static void reserve_buf(basic_tokenizer *bt, size_t extra) {
    if (bt->buf_len + extra <= bt->buf_cap) return;
    size_t cap = bt->buf_cap ? bt->buf_cap : 1024;
    while (cap < bt->buf_len + extra) cap *= 2;
    bt->buf = reallocCheck(bt->buf, cap);
    bt->buf_cap = cap;
}

static void reserve_seg(basic_tokenizer *bt, size_t n) {
    if (n <= bt->cap_seg) return;
    size_t cap = bt->cap_seg ? bt->cap_seg : 64;
    while (cap < n) cap *= 2;
    bt->seg_cp = reallocCheck(bt->seg_cp, cap * sizeof *bt->seg_cp);
    bt->seg_s = reallocCheck(bt->seg_s, cap * sizeof *bt->seg_s);
    bt->seg_e = reallocCheck(bt->seg_e, cap * sizeof *bt->seg_e);
    bt->cap_seg = cap;
}

static void reserve_norm(basic_tokenizer *bt, size_t n) {
    if (n <= bt->cap_norm) return;
    size_t cap = bt->cap_norm ? bt->cap_norm : 64;
    while (cap < n) cap *= 2;
    bt->norm_cp = reallocCheck(bt->norm_cp, cap * sizeof *bt->norm_cp);
    bt->norm_s = reallocCheck(bt->norm_s, cap * sizeof *bt->norm_s);
    bt->norm_e = reallocCheck(bt->norm_e, cap * sizeof *bt->norm_e);
    bt->cap_norm = cap;
}

/* Append characters cps[a..b) as one token. */
static void emit_token(basic_tokenizer *bt, const int32_t *cps, const uint32_t *s, const uint32_t *e,
                       size_t a, size_t b, int32_t word) {
    if (a == b) return;
    if (bt->n_tok == bt->cap_tok) {
        bt->cap_tok = bt->cap_tok ? 2 * bt->cap_tok : 64;
        bt->tok = reallocCheck(bt->tok, bt->cap_tok * sizeof *bt->tok);
    }
    reserve_cp(bt, b - a);
    reserve_buf(bt, 4 * (b - a));
    basic_token *t = &bt->tok[bt->n_tok++];
    t->cp_off = (uint32_t)bt->n_cp;
    t->n_cp = (uint32_t)(b - a);
    t->off = (uint32_t)bt->buf_len;
    t->word = word;
    for (size_t i = a; i < b; i++) {
        bt->cp_byte[bt->n_cp] = (uint32_t)bt->buf_len;
        bt->cp_src_start[bt->n_cp] = s[i];
        bt->cp_src_end[bt->n_cp] = e[i];
        bt->n_cp++;
        int32_t c = cps[i];
        if (c < 0x80) bt->buf[bt->buf_len++] = (char)c;
        else bt->buf_len += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)bt->buf + bt->buf_len);
    }
    t->len = (uint32_t)(bt->buf_len - t->off);
    bt->cp_byte[bt->n_cp] = (uint32_t)bt->buf_len; /* sentinel: end of the last token */
}

/* Normalise the current segment (seg_*[0..n)) and split it on punctuation. */
static void flush_segment(basic_tokenizer *bt, size_t n, int32_t word) {
    if (n == 0) return;
    const int32_t *cps = bt->seg_cp;
    const uint32_t *s = bt->seg_s, *e = bt->seg_e;
    if (bt->lower) {
        /* lower-case, NFD (full canonical decomposition + canonical ordering), drop Mn */
        reserve_norm(bt, 4 * n + 16);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t c = bt->seg_cp[i];
            if (c < 0x80) {
                if (c >= 'A' && c <= 'Z') c += 32;
                bt->norm_cp[m] = c, bt->norm_s[m] = s[i], bt->norm_e[m] = e[i], m++;
                continue;
            }
            int32_t lc[2];
            int nl = 1;
            if (c == 0x130) lc[0] = 'i', lc[1] = 0x307, nl = 2;
            else if (c == 0x3A3) lc[0] = lower_sigma(bt->seg_cp, n, i);
            else lc[0] = utf8proc_tolower(c);
            for (int k = 0; k < nl; k++) {
                if (lc[k] < 0xC0) {
                    bt->norm_cp[m] = lc[k], bt->norm_s[m] = s[i], bt->norm_e[m] = e[i], m++;
                    continue;
                }
                utf8proc_int32_t dec[32];
                int last = 0;
                utf8proc_ssize_t nd = utf8proc_decompose_char(lc[k], dec, 32, UTF8PROC_DECOMPOSE, &last);
                ASSERT(nd >= 1 && nd <= 32);
                reserve_norm(bt, m + (size_t)nd + 4 * (n - i) + 16);
                for (utf8proc_ssize_t d = 0; d < nd; d++)
                    bt->norm_cp[m] = dec[d], bt->norm_s[m] = s[i], bt->norm_e[m] = e[i], m++;
            }
        }
        /* canonical ordering: stable sort of each run of non-starters by combining class */
        for (size_t i = 1; i < m; i++) {
            if (bt->norm_cp[i] < 0x300) continue;
            int ci = utf8proc_get_property(bt->norm_cp[i])->combining_class;
            if (!ci) continue;
            for (size_t j = i; j > 0; j--) {
                int32_t p = bt->norm_cp[j - 1];
                int cp_ = p < 0x300 ? 0 : utf8proc_get_property(p)->combining_class;
                if (cp_ <= ci) break;
                int32_t tc = bt->norm_cp[j];
                uint32_t ts = bt->norm_s[j], te = bt->norm_e[j];
                bt->norm_cp[j] = p, bt->norm_s[j] = bt->norm_s[j - 1], bt->norm_e[j] = bt->norm_e[j - 1];
                bt->norm_cp[j - 1] = tc, bt->norm_s[j - 1] = ts, bt->norm_e[j - 1] = te;
            }
        }
        size_t k = 0;
        for (size_t i = 0; i < m; i++) {
            int32_t c = bt->norm_cp[i];
            if (c >= 0x300 && utf8proc_category(c) == UTF8PROC_CATEGORY_MN) continue;
            bt->norm_cp[k] = c, bt->norm_s[k] = bt->norm_s[i], bt->norm_e[k] = bt->norm_e[i], k++;
        }
        cps = bt->norm_cp, s = bt->norm_s, e = bt->norm_e, n = k;
    }
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (!basic_is_punct(cps[i])) continue;
        emit_token(bt, cps, s, e, start, i, word);
        emit_token(bt, cps, s, e, i, i + 1, word);
        start = i + 1;
    }
    emit_token(bt, cps, s, e, start, n, word);
}

/* Decode one character at text[i]; returns its length, or -1 if the bytes are not UTF-8. */
static inline int decode(const char *text, size_t len, size_t i, int32_t *cp) {
    uint8_t c = (uint8_t)text[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    utf8proc_int32_t u;
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &u);
    if (n <= 0) return -1;
    *cp = u;
    return (int)n;
}

int basic_tokenize(basic_tokenizer *bt, const char *text, size_t len) {
    bt->n_tok = bt->buf_len = bt->n_cp = bt->n_words = 0;
    reserve_cp(bt, 0);
    bt->cp_byte[0] = 0;
    if (len >= UINT32_MAX) return adp_seterr("text too long (%zu bytes; the limit is 4 GiB)", len);
    size_t nseg = 0;
    int32_t word = -1;
    int in_word = 0;
    for (size_t i = 0; i < len;) {
        int32_t cp;
        int clen = decode(text, len, i, &cp);
        if (clen < 0) return adp_seterr("invalid UTF-8 at byte %zu", i);
        int cl = classify(cp);
        if (cl == CL_SEP) {
            flush_segment(bt, nseg, word);
            nseg = 0;
            in_word = 0;
        } else {
            if (!in_word) in_word = 1, word++;
            if (cl == CL_CJK) {
                flush_segment(bt, nseg, word);
                nseg = 0;
            }
            if (cl != CL_DROP) {
                reserve_seg(bt, nseg + 1);
                bt->seg_cp[nseg] = cp, bt->seg_s[nseg] = (uint32_t)i, bt->seg_e[nseg] = (uint32_t)(i + (size_t)clen);
                nseg++;
            }
            if (cl == CL_CJK) {
                flush_segment(bt, nseg, word);
                nseg = 0;
            }
        }
        i += (size_t)clen;
    }
    flush_segment(bt, nseg, word);
    bt->n_words = (size_t)(word + 1);
    return ADP_OK;
}

int utf8_validate(const char *text, size_t len) {
    for (size_t i = 0; i < len;) {
        if ((uint8_t)text[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        int n = decode(text, len, i, &cp);
        if (n < 0) return adp_seterr("invalid UTF-8 at byte %zu", i);
        i += (size_t)n;
    }
    return ADP_OK;
}

int basic_count_words(const char *text, size_t len, size_t *n_words) {
    size_t n = 0;
    int in_word = 0;
    for (size_t i = 0; i < len;) {
        int32_t cp;
        int clen = decode(text, len, i, &cp);
        if (clen < 0) return adp_seterr("invalid UTF-8 at byte %zu", i);
        if (classify(cp) == CL_SEP) in_word = 0;
        else if (!in_word) in_word = 1, n++;
        i += (size_t)clen;
    }
    *n_words = n;
    return ADP_OK;
}
